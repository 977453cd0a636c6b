//! Readiness, in systemd's notification protocol: a process started with
//! `NOTIFY_SOCKET` sends `READY=1` there once it accepts connections. The
//! server sends it to systemd (`Type=notify`) or to the process it is
//! taking over from, which listens on a socket of its own for it.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where `NOTIFY_SOCKET` points (a path, or `@name` in the abstract namespace).
fn address(socket: &str) -> io::Result<SocketAddr> {
    match socket.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(socket),
    }
}

/// Send `message` (`READY=1`, `MAINPID=…`) to the socket `NOTIFY_SOCKET`
/// named when this process started, if any.
pub fn notify(message: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let sent = socket
        .to_str()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))
        .and_then(address)
        .and_then(|addr| UnixDatagram::unbound()?.send_to_addr(message.as_bytes(), &addr));
    if let Err(error) = sent {
        tracing::warn!(%error, "cannot notify {}", socket.to_string_lossy());
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
