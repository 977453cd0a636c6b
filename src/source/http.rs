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
    if sock.write_all(accept_head(req).as_bytes()).await.is_err() {
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

/// What an accepted source is told before it starts sending.
fn accept_head(req: &Request) -> String {
    let expects_continue = req.header("Expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
    if req.method == "SOURCE" && !expects_continue {
        return "HTTP/1.0 200 OK\r\n\r\n".to_string();
    }
    let mut head = String::new();
    if expects_continue {
        head.push_str("HTTP/1.1 100 Continue\r\n\r\n");
    }
    head.push_str(&format!(
        "HTTP/1.1 200 OK\r\nServer: {}\r\nConnection: close\r\nAccept-Encoding: identity\r\n\
         Allow: GET, SOURCE, PUT\r\nCache-Control: no-cache, no-store\r\n\r\n",
        crate::http::server_id::get()
    ));
    head
}
