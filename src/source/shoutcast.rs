//! SHOUTcast v1 sources on their own port: the client sends its password
//! line, we answer `OK2` (or `invalid password`), then it sends `icy-*`
//! header lines, a blank line, and audio.
//!
//! Password forms: `pass` (into the configured SHOUTcast mount), DNAS 2.x
//! `pass:#sid` (stream id 1 is that mount, id N is `<mount>N`), and
//! Icecast-KH `/mount:pass`.

use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ingest::{self, Body};
use crate::auth::{self, Refused};
use crate::mount::{SourceInfo, StreamInfo};
use crate::state::AppState;

/// The mount and password a v1 login line names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub mount: String,
    pub password: String,
}

/// Interpret the first line a SHOUTcast v1 source sends.
pub fn parse_login(line: &str, default_mount: &str) -> Login {
    if let Some((password, sid)) = line.rsplit_once(":#") {
        if let Ok(sid) = sid.trim().parse::<u32>() {
            let mount = if sid <= 1 { default_mount.to_string() } else { format!("{default_mount}{sid}") };
            return Login { mount, password: password.to_string() };
        }
    }
    if line.starts_with('/') {
        if let Some((mount, password)) = line.split_once(':') {
            return Login { mount: mount.to_string(), password: password.to_string() };
        }
    }
    Login { mount: default_mount.to_string(), password: line.to_string() }
}

/// What the login line and header block came to.
enum Handshake {
    Accepted(Login, Vec<(String, String)>),
    /// Refused with this reply line, for this reason (logged).
    Refused(Login, &'static str, String),
}

/// Serve one connection on the SHOUTcast source port.
pub async fn serve(mut sock: TcpStream, peer: SocketAddr, state: AppState) {
    if let Err(refusal) = state.config.get().access.rules.check(peer.ip(), None) {
        state.stats.access_refusals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(%peer, %refusal, "SHOUTcast source refused");
        let _ = sock.write_all(format!("{refusal}\r\n").as_bytes()).await;
        return;
    }
    let limits = &state.config.get().limits;
    let mut buf = BytesMut::with_capacity(1024);
    let head = tokio::time::timeout(limits.header_timeout, read_login(&mut sock, &mut buf, peer, &state)).await;
    let (login, headers) = match head {
        Ok(Some(Handshake::Accepted(login, headers))) => (login, headers),
        Ok(Some(Handshake::Refused(login, reply, why))) => {
            tracing::info!(%peer, mount = login.mount.as_str(), why, "SHOUTcast source refused");
            let _ = sock.write_all(reply.as_bytes()).await;
            return;
        }
        _ => {
            tracing::info!(%peer, "SHOUTcast source sent no valid login in time");
            return;
        }
    };
    let refuse = |why: &str| tracing::info!(%peer, mount = login.mount.as_str(), why, "SHOUTcast source refused");
    let mount_config = state.config.get().mount(&login.mount);
    let get = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let content_type = match super::allowed_content_type(get("content-type").unwrap_or("audio/mpeg")) {
        Ok(content_type) => content_type,
        Err(error) => {
            refuse(&error.to_string());
            let _ = sock.write_all(format!("{error}\r\n").as_bytes()).await;
            return;
        }
    };
    let info = StreamInfo::from_headers(get).with_overrides(&mount_config.info);
    let source = || SourceInfo::new(content_type.clone(), info.clone(), peer, get("user-agent").map(str::to_string));
    let mut attached = ingest::attach(&state, &login.mount, source());
    if let Err(super::SourceError::HeldByFeed) = attached {
        crate::upgrade::feed::displace(&state, &login.mount).await;
        attached = ingest::attach(&state, &login.mount, source());
    }
    let attached = match attached {
        Ok(attached) => attached,
        Err(error) => {
            refuse(&error.to_string());
            let _ = sock.write_all(format!("{error}\r\n").as_bytes()).await;
            return;
        }
    };
    let end = ingest::run(&mut sock, buf, Body::Identity, None, &attached, &state).await;
    tracing::debug!(mount = attached.mount.name(), ?end, "SHOUTcast source ended");
}

/// Read the password line, answer it, then read the header block. Leaves
/// any audio that arrived with the headers in `buf`.
async fn read_login(sock: &mut TcpStream, buf: &mut BytesMut, peer: SocketAddr, state: &AppState) -> Option<Handshake> {
    let max_line = state.config.get().limits.max_header_line;
    let line = read_line(sock, buf, max_line).await?;
    let login = parse_login(&line, &state.config.get().shoutcast.mount);
    if let Err(error) = super::check_mount_name(&login.mount) {
        return Some(Handshake::Refused(login, "invalid mount\r\n", error.to_string()));
    }
    let mount_config = state.config.get().mount(&login.mount);
    let allowed = || auth::shoutcast_password_allowed(&state.config.get(), &mount_config, &login.password);
    // v1 has no "retry later": a blocked address just hears "invalid password".
    if let Err(refused) = auth::attempt(&state.logins, peer.ip(), "SHOUTcast source", allowed) {
        let why = if refused == Refused::Denied { "bad password" } else { "address blocked after failed logins" };
        return Some(Handshake::Refused(login, "invalid password\r\n", why.to_string()));
    }
    sock.write_all(b"OK2\r\nicy-caps:11\r\n\r\n").await.ok()?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(sock, buf, max_line).await?;
        if line.is_empty() {
            return Some(Handshake::Accepted(login, headers));
        }
        if headers.len() >= state.config.get().limits.max_headers {
            return None;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
}

/// One `\n`-terminated line (a trailing `\r` dropped), at most `max` bytes.
async fn read_line(sock: &mut TcpStream, buf: &mut BytesMut, max: usize) -> Option<String> {
    loop {
        if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line = buf.split_to(pos);
            buf.advance(1);
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            return Some(String::from_utf8_lossy(line).into_owned());
        }
        if buf.len() > max {
            return None;
        }
        if sock.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_forms() {
        assert_eq!(parse_login("hackme", "/stream"), Login { mount: "/stream".into(), password: "hackme".into() });
        assert_eq!(parse_login("hackme:#1", "/stream"), Login { mount: "/stream".into(), password: "hackme".into() });
        assert_eq!(parse_login("hackme:#2", "/stream"), Login { mount: "/stream2".into(), password: "hackme".into() });
        assert_eq!(parse_login("/live.mp3:pw", "/stream"), Login { mount: "/live.mp3".into(), password: "pw".into() });
        // A password with a colon that is neither form stays whole.
        assert_eq!(parse_login("a:b", "/stream"), Login { mount: "/stream".into(), password: "a:b".into() });
    }
}
