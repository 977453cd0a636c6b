//! One HTTP connection: read the request head within the time and size
//! limits, then hand the socket to a source, a listener stream, or write a
//! complete response. Every request ends in one access-log line.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::request::{scan_head, HeadError, Request};
use super::response::Response;
use super::routes::{route, Route};
use crate::access_log::{AccessEntry, RequestLine};
use crate::listener::{self, ListenRequest, Started};
use crate::mount::MountHandle;
use crate::state::AppState;

pub async fn handle(mut sock: TcpStream, peer: SocketAddr, state: AppState) {
    let started = Instant::now();
    let mut buf = BytesMut::with_capacity(1024);
    let limits = &state.config.limits;
    let head = match tokio::time::timeout(limits.header_timeout, read_head(&mut sock, &mut buf, &state)).await {
        Ok(Ok(Some(head))) => head,
        // The peer closed before sending anything: a port probe, not an error.
        Ok(Ok(None)) => return,
        Ok(Err(error)) => return refuse(&mut sock, peer, &state, error, started).await,
        Err(_) => return refuse(&mut sock, peer, &state, HeadError::Timeout, started).await,
    };
    let req = match Request::parse(&head, limits.max_headers) {
        Ok(req) => req,
        Err(error) => return refuse(&mut sock, peer, &state, error, started).await,
    };
    // Listeners live for hours: keep nothing per connection that is not needed.
    drop(head);
    let line = RequestLine::of(&req);
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
            (outcome.status, outcome.bytes, outcome.user)
        }
        Route::Respond(response, user) => {
            state.stats.client_connections.fetch_add(1, Ordering::Relaxed);
            let bytes = response.write_to(&mut sock, req.method == "HEAD").await.unwrap_or(0);
            (response.status, bytes, user)
        }
    };
    log_access(&state, peer, user.as_deref(), &line, status, bytes, started);
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
