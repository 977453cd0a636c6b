//! Readiness, in systemd's notification protocol: a process started with
//! `NOTIFY_SOCKET` sends `READY=1` there once it accepts connections. The
//! server sends it to systemd (`Type=notify`) or to the process it is
//! taking over from, which listens on a socket of its own for it; systemd's
//! socket is then passed along in `FLOE_SYSTEMD_NOTIFY`, so that every later
//! upgrade can tell systemd its new main process too.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::OnceLock;
use std::time::Duration;

/// Where `READY=1` goes, and where the service manager listens.
#[derive(Debug, Default)]
struct Targets {
    ready: Option<String>,
    manager: Option<String>,
}

static TARGETS: OnceLock<Targets> = OnceLock::new();

/// The variable the service manager's socket is passed on in.
pub const MANAGER_VAR: &str = "FLOE_SYSTEMD_NOTIFY";

/// Read (and clear, so no child inherits them) the notification sockets.
/// Call before any thread starts.
pub fn init() {
    let ready = std::env::var("NOTIFY_SOCKET").ok().filter(|s| !s.is_empty());
    // Started by an upgrade, NOTIFY_SOCKET is the previous process's, not a manager's.
    let upgraded = std::env::var_os(super::TOKEN_VAR).is_some();
    let manager = std::env::var(MANAGER_VAR).ok().filter(|s| !s.is_empty());
    let manager = manager.or_else(|| if upgraded { None } else { ready.clone() });
    std::env::remove_var("NOTIFY_SOCKET");
    std::env::remove_var(MANAGER_VAR);
    let _ = TARGETS.set(Targets { ready, manager });
}

fn targets() -> &'static Targets {
    TARGETS.get_or_init(Targets::default)
}

/// Tell whoever started this process that it accepts connections now.
pub fn ready() {
    if let Some(socket) = &targets().ready {
        send(socket, "READY=1");
    }
}

/// Tell the service manager (systemd), if there is one.
pub fn manager(message: &str) {
    if let Some(socket) = &targets().manager {
        send(socket, message);
    }
}

/// The service manager's socket, for a new process to inherit.
pub fn manager_socket() -> Option<&'static str> {
    targets().manager.as_deref()
}

/// Where `NOTIFY_SOCKET` points (a path, or `@name` in the abstract namespace).
fn address(socket: &str) -> io::Result<SocketAddr> {
    match socket.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(socket),
    }
}

/// Send `message` (`READY=1`, `MAINPID=…`) to `socket`.
fn send(socket: &str, message: &str) {
    let sent = address(socket).and_then(|addr| UnixDatagram::unbound()?.send_to_addr(message.as_bytes(), &addr));
    if let Err(error) = sent {
        tracing::warn!(%error, "cannot notify {socket}");
    }
}

/// A socket a new process reports its readiness to.
pub struct Readiness {
    socket: tokio::net::UnixDatagram,
    name: String,
}

impl Readiness {
    /// Listen on a fresh abstract address.
    pub fn open() -> io::Result<Readiness> {
        let name = format!("floe-upgrade-{}-{}", std::process::id(), super::random_hex(8)?);
        let socket = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes())?)?;
        socket.set_nonblocking(true)?;
        Ok(Readiness { socket: tokio::net::UnixDatagram::from_std(socket)?, name })
    }

    /// The value for the new process's `NOTIFY_SOCKET`.
    pub fn env_value(&self) -> String {
        format!("@{}", self.name)
    }

    /// Wait (at most `limit`) for `READY=1`.
    pub async fn ready(&self, limit: Duration) -> bool {
        let wait = async {
            let mut buf = [0u8; 512];
            loop {
                let Ok(n) = self.socket.recv(&mut buf).await else { return false };
                if String::from_utf8_lossy(&buf[..n]).lines().any(|line| line == "READY=1") {
                    return true;
                }
            }
        };
        tokio::time::timeout(limit, wait).await.unwrap_or(false)
    }
}
