//! Who may connect: address allow and deny lists (CIDR) and a user-agent
//! deny list, server-wide (`[access]`) and per mount; the client's real
//! address behind trusted proxies; and how many connections one address
//! may hold.

mod cidr;
mod forwarded;
mod per_ip;

pub use cidr::Cidr;
pub use forwarded::client_addr;
pub use per_ip::{PerIp, PerIpSlot};

use std::net::IpAddr;

use crate::http::status::{Refusal, Status};

/// Allow and deny lists, as `[access]` and each `[[mount]]` give them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// When not empty, only these addresses may connect.
    pub allow: Vec<Cidr>,
    /// These may not, whatever `allow` says.
    pub deny: Vec<Cidr>,
    /// User agents containing one of these (compared in lower case) may not connect.
    pub deny_user_agents: Vec<String>,
}

/// Why a request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    Address,
    UserAgent,
}

impl Rules {
    pub fn check(&self, ip: IpAddr, user_agent: Option<&str>) -> Result<(), Denied> {
        let listed = |nets: &[Cidr]| nets.iter().any(|net| net.contains(ip));
        if listed(&self.deny) || (!self.allow.is_empty() && !listed(&self.allow)) {
            return Err(Denied::Address);
        }
        // Most servers have no agent list: no lower-casing per request then.
        if self.deny_user_agents.is_empty() {
            return Ok(());
        }
        let agent = user_agent.unwrap_or("").to_lowercase();
        if self.deny_user_agents.iter().any(|denied| agent.contains(denied.as_str())) {
            return Err(Denied::UserAgent);
        }
        Ok(())
    }
}

impl Refusal for Denied {
    fn status(&self) -> Status {
        Status::Forbidden
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Denied::Address => "connections from your address are not allowed here",
            Denied::UserAgent => "your player is not allowed here",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_wins_and_allow_restricts() {
        let rules = Rules {
            allow: vec!["192.0.2.0/24".parse().unwrap()],
            deny: vec!["192.0.2.66".parse().unwrap()],
            deny_user_agents: vec!["streamripper".into()],
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(rules.check(ip("192.0.2.1"), Some("VLC/3.0")), Ok(()));
        assert_eq!(rules.check(ip("192.0.2.66"), None), Err(Denied::Address));
        assert_eq!(rules.check(ip("198.51.100.1"), None), Err(Denied::Address));
        assert_eq!(rules.check(ip("192.0.2.1"), Some("StreamRipper/1.64")), Err(Denied::UserAgent));
        assert_eq!(Rules::default().check(ip("198.51.100.1"), None), Ok(()));
    }
}
