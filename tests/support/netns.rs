//! A private network for drills that make a peer vanish.
//!
//! A listener whose phone leaves the Wi-Fi, or whose NAT forgets the
//! connection, sends nothing more: no FIN, no reset, not even the ACKs of
//! what the server keeps sending. On loopback a closed socket always answers
//! (with a reset), so such a peer can only be made by dropping its packets.
//! A drill does that in a network namespace of its own — its own loopback
//! and its own firewall, nothing of the machine's touched — by running its
//! test again inside `unshare --net` (as root; elsewhere with a user
//! namespace mapping root as well), where `nft` drops every packet to and
//! from an address its vanishing listeners connect from.

use std::net::Ipv4Addr;
use std::process::Command;

/// Set in the test run inside the namespace.
const INSIDE: &str = "FLOE_TEST_PRIVATE_NETWORK";

/// The test `name` (its path in the test binary) runs in a private network:
/// `Some` inside, where the drill goes on; `None` outside, once the run
/// inside has passed (a failed run panics with its output).
pub fn private_network(name: &str) -> Option<PrivateNetwork> {
    if std::env::var_os(INSIDE).is_some() {
        run("ip", &["link", "set", "lo", "up"]);
        return Some(PrivateNetwork);
    }
    let mut unshare = Command::new("unshare");
    if !running_as_root() {
        unshare.args(["--user", "--map-root-user"]);
    }
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let out = unshare
        .arg("--net")
        .arg("--")
        .arg(test_binary)
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(INSIDE, "1")
        .output()
        .expect("unshare (util-linux) runs");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{said}");
    assert!(out.status.success(), "{name} failed in its private network ({})", out.status);
    // A misspelt name runs nothing, and passes.
    assert!(said.contains("1 passed"), "{name} did not run in its private network");
    None
}

fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // "Uid:\treal\teffective\tsaved\tfs"
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|ids| ids.split_whitespace().nth(1)) == Some("0")
}

/// `ip` and `nft` live in /usr/sbin, which is not on everyone's path.
fn tool(name: &str) -> Command {
    let sbin = std::path::Path::new("/usr/sbin").join(name);
    Command::new(if sbin.exists() { sbin.into_os_string() } else { name.into() })
}

fn run(program: &str, args: &[&str]) {
    let out = tool(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} does not run ({e}); scripts/test installs it"));
    assert!(out.status.success(), "{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// Proof of being inside the private network.
pub struct PrivateNetwork;

impl PrivateNetwork {
    /// Every packet to and from `address` (a loopback address the vanishing
    /// peers connect from) is dropped until the returned guard goes.
    pub fn vanish(&self, address: Ipv4Addr) -> Vanished {
        let table = format!("vanished_{}", u32::from(address));
        let rules = format!(
            "table ip {table} {{\n chain out {{\n  type filter hook output priority 0;\n  \
             ip saddr {address} drop\n  ip daddr {address} drop\n }}\n}}\n"
        );
        let path = std::env::temp_dir().join(format!("{table}-{}.nft", std::process::id()));
        std::fs::write(&path, rules).expect("nft rules written");
        run("nft", &["-f", path.to_str().expect("a UTF-8 temp dir")]);
        let _ = std::fs::remove_file(&path);
        Vanished { table }
    }
}

/// Packets of a vanished address are dropped while this lives.
pub struct Vanished {
    table: String,
}

impl Drop for Vanished {
    fn drop(&mut self) {
        // Not `run`: this may drop during a failed test's unwinding, and the
        // namespace (with its firewall) goes with the test anyway.
        let _ = tool("nft").args(["delete", "table", "ip", &self.table]).status();
    }
}
