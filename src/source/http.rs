//! HTTP source ingest: `PUT` (Icecast 2.4+, ffmpeg's `icecast://`) and the
//! legacy `SOURCE` method (liquidsoap, libshout, `-legacy_icecast 1`).
//!
//! The head has been parsed already; this checks the mount name and
//! credentials, claims the mount, answers (including `100 Continue`) and
//! hands the socket to the ingest loop.

use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::ingest::{self, Body};
use super::SourceError;
use crate::auth::{self, AuthError, Refused};
use crate::http::chunked::ChunkedDecoder;
use crate::http::request::Request;
use crate::http::response::Response;
use crate::http::status::{Refusal, Status};
use crate::mount::{SourceInfo, StreamInfo};
use crate::state::AppState;

/// Outcome of a source request for the access log.
pub struct SourceOutcome {
    pub status: Status,
    pub user: Option<String>,
    pub bytes: u64,
}

/// Serve one `PUT`/`SOURCE` request on `sock` (TCP, or TLS over it).
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    sock: &mut S,
    req: &Request,
    leftover: BytesMut,
    peer: SocketAddr,
    state: &AppState,
) -> SourceOutcome {
    let creds = req.header("Authorization").and_then(|h| auth::parse_basic(h).ok());
    let user = creds.as_ref().map(|c| c.user.clone());
    let handover = crate::upgrade::feed::is_feed(state, creds.as_ref());
    let backend = match handover {
        true => Some(true),
        false => auth::url::stream_auth(state, &req.path, creds.as_ref(), peer.ip()).await,
    };
    let mut accepted = accept(req, peer, state, backend, handover);
    if let Err(SourceError::HeldByFeed) = accepted {
        crate::upgrade::feed::displace(state, &req.path).await;
        accepted = accept(req, peer, state, backend, handover);
    }
    let attached = match accepted {
        Ok(attached) => attached,
        Err(error) => {
            let response = error.response();
            tracing::info!(path = req.path.as_str(), %peer, %error, "source refused");
            let bytes = response.write_to(sock, false).await.unwrap_or(0);
            return SourceOutcome { status: error.status(), user, bytes };
        }
    };
    if sock.write_all(&accept_head(req)).await.is_err() {
        return SourceOutcome { status: Status::Ok, user, bytes: 0 };
    }
    let chunked = req.header("Transfer-Encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let body = if chunked { Body::Chunked(ChunkedDecoder::new()) } else { Body::Identity };
    let metaint = req.header("icy-metaint").and_then(|m| m.trim().parse().ok());
    let end = ingest::run(sock, leftover, body, metaint, &attached, state).await;
    let bytes = attached.mount.stats().bytes_read.load(std::sync::atomic::Ordering::Relaxed);
    tracing::debug!(mount = attached.mount.name(), ?end, "source ended");
    SourceOutcome { status: Status::Ok, user, bytes }
}

/// `backend`: what the mount's `stream_auth` URL said, which replaces the
/// password check when there is one.
fn accept(
    req: &Request,
    peer: SocketAddr,
    state: &AppState,
    backend: Option<bool>,
    handover: bool,
) -> Result<ingest::Attached, SourceError> {
    super::check_mount_name(&req.path)?;
    let mount_config = state.config.get().mount(&req.path);
    match backend {
        Some(true) => {}
        Some(false) => return Err(SourceError::BadAuth),
        None => {
            let creds = auth::request_credentials(
                req.header("Authorization"),
                req.header("ice-password"),
                &mount_config.username,
            )
            .map_err(|e| if e == AuthError::Missing { SourceError::NeedAuth } else { SourceError::BadAuth })?;
            let allowed = || auth::source_allowed(&state.config.get(), &mount_config, &creds);
            auth::attempt(&state.logins, peer.ip(), "source", allowed).map_err(|refused| match refused {
                Refused::Denied => SourceError::BadAuth,
                blocked => SourceError::Throttled(blocked.retry_after()),
            })?;
        }
    }
    let content_type = match (req.header("Content-Type"), req.method.as_str()) {
        (Some(ct), _) if !ct.trim().is_empty() => super::allowed_content_type(ct)?,
        // Legacy SOURCE clients predate Content-Type: Icecast assumes MP3.
        (_, "SOURCE") => "audio/mpeg".to_string(),
        _ => return Err(SourceError::NoContentType),
    };
    let info = StreamInfo::from_headers(|name| req.header(name)).with_overrides(&mount_config.info);
    let mut source = SourceInfo::new(content_type, info, peer, req.header("User-Agent").map(str::to_string));
    source.handover = handover;
    ingest::attach(state, &req.path, source)
}

/// What an accepted source is told before it starts sending: a legacy
/// `SOURCE` client a bare `200 OK` (as Icecast answers it), others the whole
/// head, after the `100 Continue` they asked for.
fn accept_head(req: &Request) -> Vec<u8> {
    let expects_continue = req.header("Expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
    if req.method == "SOURCE" && !expects_continue {
        return b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
    }
    let mut head = Vec::new();
    if expects_continue {
        head.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let response = Response { status: Status::Ok, headers: Vec::new(), body: bytes::Bytes::new() }
        .with_header("Accept-Encoding", "identity")
        .with_header("Allow", "GET, SOURCE, PUT");
    // No length: a client told the response is whole (`Content-Length: 0`)
    // may stop sending its body (curl does).
    head.extend(response.stream_head_bytes());
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_for(request: &str) -> String {
        String::from_utf8(accept_head(&Request::parse(request.as_bytes(), 16).unwrap())).unwrap()
    }

    #[test]
    fn sources_are_told_to_go_ahead_as_they_asked() {
        assert_eq!(head_for("SOURCE /a.mp3 HTTP/1.0\r\n\r\n"), "HTTP/1.0 200 OK\r\n\r\n", "legacy clients, as Icecast");
        let put = head_for("PUT /a.mp3 HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
        assert!(put.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nServer: "), "{put}");
        assert!(put.contains("\r\nAllow: GET, SOURCE, PUT\r\n"), "{put}");
        // A length would tell curl the answer is whole, and it stops sending.
        assert!(!put.contains("Content-Length"), "{put}");
        let plain = head_for("PUT /a.mp3 HTTP/1.1\r\n\r\n");
        assert!(plain.starts_with("HTTP/1.0 200 OK\r\n") && plain.ends_with("Connection: close\r\n\r\n"), "{plain}");
    }
}
