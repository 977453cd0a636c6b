//! One HTTP connection: read the request head within the time and size
//! limits, then hand the socket to a source, a listener stream, or write a
//! complete response. Every request ends in one access-log line.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::routes::{route, Route};
use crate::access_log::{AccessEntry, RequestLine};
use crate::hls::{self, serve::Asset, serve::Reply};
use crate::http::request::{scan_head, HeadError, Request};
use crate::http::response::Response;
use crate::listener::{self, ListenRequest, Started};
use crate::mount::MountHandle;
use crate::state::AppState;

/// How long a kept-alive connection may wait for its next request.
const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(15);

/// Serve requests on one connection: a source or a listener stream takes the
/// socket; complete responses (status, admin, playlists, HLS and DASH) may
/// keep it alive for the next request (HTTP/1.1).
pub async fn handle(mut sock: TcpStream, peer: SocketAddr, state: AppState) {
    let mut buf = BytesMut::with_capacity(1024);
    let limits = &state.config.limits;
    let mut first = true;
    loop {
        let started = Instant::now();
        let wait = if first { limits.header_timeout } else { KEEP_ALIVE_IDLE };
        let head = match tokio::time::timeout(wait, read_head(&mut sock, &mut buf, &state)).await {
            Ok(Ok(Some(head))) => head,
            // The peer closed before sending anything: a port probe (or a
            // kept-alive connection closed), not an error.
            Ok(Ok(None)) => return,
            Ok(Err(error)) => return refuse(&mut sock, peer, &state, error, started).await,
            Err(_) if first => return refuse(&mut sock, peer, &state, HeadError::Timeout, started).await,
            Err(_) => return,
        };
        first = false;
        let req = match Request::parse(&head, limits.max_headers) {
            Ok(req) => req,
            Err(error) => return refuse(&mut sock, peer, &state, error, started).await,
        };
        // Listeners live for hours: keep nothing per connection that is not needed.
        drop(head);
        let line = RequestLine::of(&req);
        let head_only = req.method == "HEAD";
        let (status, bytes, user) = match route(&req, peer, &state) {
            Route::Stream(mount) => {
                let listen = ListenRequest::of(&req);
                drop((req, buf));
                return listen_on(sock, listen, line, peer, state, mount, started).await;
            }
            Route::Source => {
                // Boxed: sources are few, and their state would otherwise make
                // every connection's future as large.
                let outcome = Box::pin(crate::source::serve_http(&mut sock, &req, buf, peer, &state)).await;
                log_access(&state, peer, outcome.user.as_deref(), &line, outcome.status, outcome.bytes, started);
                return;
            }
            Route::Respond(mut response, user) => {
                state.stats.client_connections.fetch_add(1, Ordering::Relaxed);
                response.keep_alive = keeps_alive(&req, response.status);
                let bytes = response.write_to(&mut sock, head_only).await.unwrap_or(0);
                (response.status, bytes, user)
            }
            Route::Adaptive(mount, asset) => {
                state.stats.client_connections.fetch_add(1, Ordering::Relaxed);
                let served = Box::pin(adaptive(&mut sock, &req, &state, &mount, asset)).await;
                log_access(&state, peer, None, &line, served.0, served.1, started);
                if !served.2 {
                    return;
                }
                continue;
            }
        };
        log_access(&state, peer, user.as_deref(), &line, status, bytes, started);
        if !keeps_alive(&req, status) {
            return;
        }
    }
}

/// Keep the connection for another request? HTTP/1.1 GET and HEAD answered
/// with success, unless the client says `Connection: close`; errors close.
fn keeps_alive(req: &Request, status: u16) -> bool {
    let close = req.header("Connection").is_some_and(|c| c.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
    req.version == 1 && !close && matches!(req.method.as_str(), "GET" | "HEAD") && (200..400).contains(&status)
}

/// An HLS or DASH request: the answer, or a segment streamed as it is
/// written. Returns status, body bytes, and whether the connection stays.
async fn adaptive(
    sock: &mut TcpStream,
    req: &Request,
    state: &AppState,
    mount: &str,
    asset: Asset,
) -> (u16, u64, bool) {
    let head_only = req.method == "HEAD";
    let Some(stream) = state.hls.get(mount) else {
        let response = Response::text(404, "This mount is not offered as HLS or DASH (or its source is not live)");
        let bytes = response.write_to(sock, head_only).await.unwrap_or(0);
        return (404, bytes, false);
    };
    match hls::serve::answer(req, &stream, mount, asset).await {
        Reply::Full(mut response) => {
            let keep = keeps_alive(req, response.status);
            response.keep_alive = keep;
            let bytes = response.write_to(sock, head_only).await.unwrap_or(0);
            (response.status, bytes, keep)
        }
        Reply::Streaming { variant, msn } => {
            // Chunked for HTTP/1.1 (the connection stays); close-delimited for 1.0.
            let chunked = req.version == 1;
            let sent = hls::serve::stream_segment(sock, &stream, variant, msn, chunked, head_only).await;
            let keep = chunked && sent.is_ok() && keeps_alive(req, 200);
            (200, sent.unwrap_or(0), keep)
        }
    }
}

fn log_access(
    state: &AppState,
    peer: SocketAddr,
    user: Option<&str>,
    line: &RequestLine,
    status: u16,
    bytes: u64,
    started: Instant,
) {
    state.access_log.record(&AccessEntry {
        ip: peer.ip(),
        user,
        request: Some(line),
        status,
        bytes,
        duration: started.elapsed(),
    });
}

/// A listener: admitted here, then streamed in a task of its own that holds
/// only the stream's state (listeners last hours; their memory is the cost
/// that scales), and logged when it ends.
async fn listen_on(
    sock: TcpStream,
    listen: ListenRequest,
    line: RequestLine,
    peer: SocketAddr,
    state: AppState,
    mount: MountHandle,
    started: Instant,
) {
    state.stats.client_connections.fetch_add(1, Ordering::Relaxed);
    match listener::start(sock, listen, peer, state.clone(), mount).await {
        Started::Answered(served) => log_access(&state, peer, None, &line, served.status, served.bytes, started),
        Started::Streaming(mut stream) => {
            drop(state);
            tokio::spawn(async move {
                let (_, sent) = stream.run_to_end().await;
                log_access(stream.state(), peer, None, &line, 200, sent, started);
            });
        }
    }
}

/// Read until the end of the head; the head is split off `buf`, leaving any
/// body bytes in it. `Ok(None)`: the peer closed without sending a byte.
async fn read_head(sock: &mut TcpStream, buf: &mut BytesMut, state: &AppState) -> Result<Option<BytesMut>, HeadError> {
    loop {
        if let Some(len) = scan_head(buf, &state.config.limits)? {
            return Ok(Some(buf.split_to(len)));
        }
        match sock.read_buf(buf).await {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(HeadError::Malformed("connection closed inside the request head")),
            Ok(_) => {}
            Err(_) => return Ok(None),
        }
    }
}

async fn refuse(sock: &mut TcpStream, peer: SocketAddr, state: &AppState, error: HeadError, started: Instant) {
    state.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%peer, %error, "request refused");
    let response = Response::text(error.status(), &error.to_string());
    let bytes = response.write_to(sock, false).await.unwrap_or(0);
    state.access_log.record(&AccessEntry {
        ip: peer.ip(),
        user: None,
        request: None,
        status: response.status,
        bytes,
        duration: started.elapsed(),
    });
}
