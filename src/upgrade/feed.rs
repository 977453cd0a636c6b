//! During a binary upgrade, every live mount here is streamed to the same
//! mount of the new process as its source, titles inline as ICY metadata,
//! so listeners arriving there hear what the listeners here hear. The feed
//! is a listener of the mount here that ends with its source; a real source
//! connecting to the new process takes the mount over from the feed.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::listener::{self, ListenRequest, Sink};
use crate::mount::MountHandle;
use crate::state::AppState;

/// The user a feed authenticates as (with the token the new process was given).
pub const USER: &str = "floe-handover";

/// Bound for connecting and for the new process's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Feed every live mount that has a source of its own (renditions are
/// made again from their source there) to the server at `to`.
pub fn start_all(state: &AppState, to: SocketAddr, token: &str) {
    for mount in state.mounts.live() {
        if mount.config().derived_from.is_some() {
            continue;
        }
        let (state, token) = (state.clone(), token.to_string());
        tokio::spawn(async move {
            let name = mount.name().to_string();
            match feed(&state, mount, to, &token).await {
                Ok(bytes) => tracing::info!(mount = name, bytes, "handover feed ended"),
                Err(error) => tracing::warn!(mount = name, %error, "cannot feed the mount to the new process"),
            }
        });
    }
}

async fn feed(state: &AppState, mount: MountHandle, to: SocketAddr, token: &str) -> io::Result<u64> {
    let request = ListenRequest {
        head_only: false,
        wants_icy: true,
        said: crate::access_log::RequestLine {
            line: format!("GET {} HTTP/1.1", mount.name()),
            referer: None,
            user_agent: Some(USER.to_string()),
        },
        own_mount_only: true,
        arrived: std::time::Instant::now(),
    };
    let admitted = listener::admit(&request, to.ip(), state, mount.clone())
        .map_err(|refused| io::Error::other(format!("the mount refused its feed ({refused})")))?;
    let mut head = format!(
        "PUT {} HTTP/1.1\r\nHost: {to}\r\nAuthorization: {}\r\nUser-Agent: {USER}\r\n",
        mount.name(),
        crate::auth::basic_header(USER, token)
    );
    // The stream's own description, as a source would send it.
    for (name, value) in &admitted.response().headers {
        if name == "Content-Type" || name.starts_with("icy-") || name == "ice-audio-info" {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    let mut sock = tokio::time::timeout(ANSWER_TIMEOUT, TcpStream::connect(to)).await??;
    sock.set_nodelay(true)?;
    sock.write_all(head.as_bytes()).await?;
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, read_head(&mut sock)).await??;
    if !answer.starts_with("HTTP/1.1 200") && !answer.starts_with("HTTP/1.0 200") {
        let line = answer.lines().next().unwrap_or_default().to_string();
        return Err(io::Error::other(format!("the new process answered {line:?}")));
    }
    let mut stream = admitted
        .stream(Sink::Socket(sock), &request, to, state.clone(), None)
        .map_err(|(_, refused)| io::Error::other(format!("the mount refused its feed ({refused})")))?;
    let (_, bytes) = stream.run_to_end().await;
    Ok(bytes)
}

/// Does `creds` name the feed of the process this one took over from?
pub fn is_feed(state: &AppState, creds: Option<&crate::auth::Credentials>) -> bool {
    match (&state.handover_token, creds) {
        (Some(token), Some(creds)) => creds.user == USER && crate::auth::constant_time_eq(&creds.password, token),
        _ => false,
    }
}

/// A real source, its credentials checked, found `mount` held by the
/// previous process's feed: end the feed and wait (bounded) until it has
/// let go.
pub async fn displace(state: &AppState, mount: &str) {
    let Some(mount) = state.mounts.get(mount) else { return };
    let Some(source) = mount.source().filter(|s| s.handover) else { return };
    tracing::info!(mount = mount.name(), "a source connected: it takes the mount over from the handover feed");
    let mut head = mount.watch_head();
    source.kill();
    let _ = tokio::time::timeout(ANSWER_TIMEOUT, head.wait_for(|h| !h.live)).await;
}

/// The response head, byte by byte (a few hundred bytes, once per mount).
async fn read_head(sock: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 {
            return Err(io::Error::other("the new process's answer is too long"));
        }
        head.push(sock.read_u8().await?);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}
