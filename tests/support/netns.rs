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

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Set in the test run inside the namespace.
const INSIDE: &str = "FLOE_TEST_PRIVATE_NETWORK";

/// Whether this process's network has no interface but loopback, as a
/// fresh namespace has (so a stray `INSIDE` cannot pass the machine's own
/// network off as private).
fn only_loopback() -> bool {
    let devices = std::fs::read_to_string("/proc/self/net/dev").unwrap_or_default();
    // Two header lines, then "  name: counters…" per interface.
    devices.lines().skip(2).filter_map(|l| l.split_once(':')).all(|(name, _)| name.trim() == "lo")
}

/// The test `name` (its path in the test binary) runs in a private network:
/// `Some` inside, where the drill goes on; `None` outside, once the run
/// inside has passed (a failed run panics with its output).
pub fn private_network(name: &str) -> Option<PrivateNetwork> {
    if std::env::var_os(INSIDE).is_some() {
        assert!(only_loopback(), "{INSIDE} is set, but this network has more than a loopback");
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
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{output}");
    // unshare's own failures start with its name; the test harness's exit is 101.
    let no_namespace = output.lines().any(|l| l.starts_with("unshare:"));
    assert!(
        !no_namespace,
        "{name} could not make a network namespace: it needs root (CAP_SYS_ADMIN) or unprivileged user namespaces"
    );
    assert!(out.status.success(), "{name} failed in its private network ({})", out.status);
    // A misspelt name runs nothing, and passes.
    assert!(output.contains("test result: ok. 1 passed"), "{name} did not run in its private network");
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
        let mut nft = tool("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("nft does not run ({e}); scripts/test installs nftables"));
        nft.stdin.take().expect("nft's stdin").write_all(rules.as_bytes()).expect("rules written to nft");
        let out = nft.wait_with_output().expect("nft ran");
        assert!(out.status.success(), "nft: {}", String::from_utf8_lossy(&out.stderr));
        Vanished { table }
    }
}

/// Packets of a vanished address are dropped while this lives.
pub struct Vanished {
    table: String,
}

impl Drop for Vanished {
    fn drop(&mut self) {
        // Not `run` while unwinding from a failed test (a second panic
        // aborts): the namespace, firewall and all, goes with the test anyway.
        let deleted = tool("nft").args(["delete", "table", "ip", &self.table]).status();
        if !std::thread::panicking() {
            assert!(deleted.is_ok_and(|s| s.success()), "nft could not delete table {}", self.table);
        }
    }
}
