//! Zero-downtime binary upgrade. SIGUSR2 starts the binary again from the
//! path this process was started from (a new version installed over it)
//! with the same arguments and the listening sockets. Once it reports ready
//! (`notify`) it accepts every new connection; this process stops
//! accepting, feeds its live mounts to it (`feed`), and serves the
//! connections it has for at most `limits.upgrade_drain` before it ends
//! them and exits. A new process that fails to start or to report ready
//! within `READY_TIMEOUT` is stopped, and nothing changes here.
//!
//! The same socket passing (`sockets`) and readiness (`notify`) serve
//! systemd's socket activation and `Type=notify`.

pub mod feed;
pub mod notify;
pub mod sockets;

use std::ffi::OsString;
use std::io::Read;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use command_fds::{CommandFdExt, FdMapping};

use crate::state::AppState;
use sockets::Role;

/// How long a new process has to take the sockets over and say so.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the new process finds the secret its feeds authenticate with.
const TOKEN_VAR: &str = "FLOE_HANDOVER_TOKEN";

/// Descriptors start here in systemd's protocol.
const FIRST_FD: i32 = 3;

/// The secret the process this one took over from feeds its mounts with,
/// if it was started by an upgrade. Call before any thread starts: the
/// variable is cleared so no child inherits it.
pub fn handover_token() -> Option<String> {
    let token = std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty());
    std::env::remove_var(TOKEN_VAR);
    token
}

/// Everything an upgrade needs: what to run and which sockets to pass.
pub struct Upgrader {
    exe: PathBuf,
    args: Vec<OsString>,
    sockets: Vec<(Role, OwnedFd)>,
    /// A plain HTTP port of this server, where feeds reach the new process.
    feed_to: Option<SocketAddr>,
}

/// Why an upgrade did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("cannot start {0}: {1}")]
    Spawn(String, std::io::Error),
    #[error("the new process did not report ready within {0:?}; it was stopped")]
    NotReady(Duration),
    #[error("the new process exited before it was ready ({0})")]
    Exited(std::process::ExitStatus),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Upgrader {
    /// `sockets`: every listening socket with its role (descriptors are
    /// duplicated: the originals stay with the accept loops).
    pub fn new(sockets: Vec<(Role, &impl AsFd)>) -> std::io::Result<Upgrader> {
        // The path as started (not /proc/self/exe, which keeps naming the
        // replaced file): what an install over it puts the new version at.
        let exe = std::env::args_os().next().map(PathBuf::from).filter(|p| p.components().count() > 1);
        let exe = match exe {
            Some(path) => path,
            None => std::env::current_exe()?,
        };
        let mut owned = Vec::new();
        let mut feed_to = None;
        for (role, socket) in sockets {
            let fd = socket.as_fd().try_clone_to_owned()?;
            if feed_to.is_none() && matches!(role, Role::Http | Role::Both) {
                feed_to = local_addr(&fd);
            }
            owned.push((role, fd));
        }
        Ok(Upgrader { exe, args: std::env::args_os().skip(1).collect(), sockets: owned, feed_to })
    }

    /// Start the new process and hand over to it: on success this process
    /// accepts no more connections (`handed_over` flips) and its live
    /// mounts are fed to the new one. Returns the new process's id.
    pub async fn upgrade(
        &self,
        state: &AppState,
        handed_over: &tokio::sync::watch::Sender<bool>,
    ) -> Result<u32, UpgradeError> {
        let readiness = notify::Readiness::open()?;
        let token = random_hex(16)?;
        let mut mappings = Vec::new();
        for (index, (_, fd)) in self.sockets.iter().enumerate() {
            mappings.push(FdMapping { parent_fd: fd.try_clone()?, child_fd: FIRST_FD + index as i32 });
        }
        let names: Vec<&str> = self.sockets.iter().map(|(role, _)| role.name()).collect();
        let mut command = tokio::process::Command::new(&self.exe);
        command
            .args(&self.args)
            .env("LISTEN_FDS", self.sockets.len().to_string())
            .env("LISTEN_FDNAMES", names.join(":"))
            .env_remove("LISTEN_PID")
            .env("NOTIFY_SOCKET", readiness.env_value())
            .env(TOKEN_VAR, &token)
            .stdin(std::process::Stdio::null());
        if let Some(manager) = notify::manager_socket() {
            command.env(notify::MANAGER_VAR, manager);
        }
        command.fd_mappings(mappings).map_err(std::io::Error::other)?;
        let exe = self.exe.display().to_string();
        let mut child = command.spawn().map_err(|error| UpgradeError::Spawn(exe, error))?;
        let pid = child.id().unwrap_or(0);
        tokio::select! {
            ready = readiness.ready(READY_TIMEOUT) => {
                if !ready {
                    let _ = child.kill().await;
                    return Err(UpgradeError::NotReady(READY_TIMEOUT));
                }
            }
            status = child.wait() => return Err(UpgradeError::Exited(status?)),
        }
        // systemd follows the new process from now on (`Type=notify`).
        notify::manager(&format!("MAINPID={pid}"));
        let _ = handed_over.send(true);
        // Feeds connect to the sockets just handed over: only once this
        // process has stopped accepting on them may they not land here.
        let mut closed = state.accepts_closed.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), closed.wait_for(|&c| c)).await;
        match self.feed_to {
            Some(to) => feed::start_all(state, to, &token),
            None => tracing::warn!("no plain HTTP port: live mounts are not fed to the new process"),
        }
        // The child is the server now; it is not waited for here.
        drop(child);
        Ok(pid)
    }
}

/// Where a listening socket is, as a loopback address if it listens on
/// every address (the feeds connect to it from here).
fn local_addr(fd: &OwnedFd) -> Option<SocketAddr> {
    let listener = std::net::TcpListener::from(fd.try_clone().ok()?);
    let mut addr = listener.local_addr().ok()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Some(addr)
}

/// `bytes` random bytes from the kernel, in hex.
pub(crate) fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
