//! Listening sockets passed between processes: by a binary upgrade to the
//! new process, or by systemd socket activation. Both use systemd's
//! protocol: descriptors from 3 on, `LISTEN_FDS` counting them and
//! `LISTEN_FDNAMES` naming them (`http`, `https`, `http+https` for a port
//! serving both, `shoutcast`).

use std::net::TcpListener;

/// What an inherited socket is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Http,
    Https,
    /// HTTP and HTTPS told apart by the first byte.
    Both,
    Shoutcast,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Http => "http",
            Role::Https => "https",
            Role::Both => "http+https",
            Role::Shoutcast => "shoutcast",
        }
    }

    fn parse(name: &str) -> Option<Role> {
        [Role::Http, Role::Https, Role::Both, Role::Shoutcast].into_iter().find(|r| r.name() == name)
    }
}

/// Take the sockets this process was started with, if any. Call before
/// any thread starts: it clears the variables (so no child inherits them).
pub fn inherited() -> Result<Vec<(Role, TcpListener)>, String> {
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    std::env::remove_var("LISTEN_FDNAMES");
    let mut fds = listenfd::ListenFd::from_env();
    let mut sockets = Vec::new();
    let names: Vec<&str> = names.split(':').collect();
    for index in 0..fds.len() {
        let name = names.get(index).copied().unwrap_or("");
        let role = Role::parse(name).ok_or_else(|| {
            format!("inherited socket {index} is named {name:?}: expected http, https, http+https or shoutcast")
        })?;
        let listener = fds
            .take_tcp_listener(index)
            .map_err(|error| format!("inherited socket {index} ({name}): {error}"))?
            .ok_or_else(|| format!("inherited socket {index} ({name}) is missing"))?;
        listener.set_nonblocking(true).map_err(|error| format!("inherited socket {index}: {error}"))?;
        sockets.push((role, listener));
    }
    Ok(sockets)
}
