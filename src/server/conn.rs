//! One HTTP connection, as the accept loop gets it: TLS or not (on a port
//! that serves both, by its first byte), then read the first request head
//! within the time and size limits and sniff it. Sources and listener
//! streams on plain connections keep the hand-written path (an endless
//! request body; a close-delimited raw response body that hardware players
//! need); every other connection, and HTTP/2, goes to hyper with the bytes
//! already read. Over TLS a mount stream is a hyper response body.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::rewind::Rewound;
use super::routes::stream_target;
use super::{gate, service};
use crate::access_log::RequestLine;
use crate::auth;
use crate::http::request::{scan_head, HeadError, Request};
use crate::http::response::Response;
use crate::http::status::Refusal;
use crate::listener::{self, ListenRequest, Started, StreamEnd};
use crate::mount::MountHandle;
use crate::slots::Held;
use crate::state::AppState;
use crate::tls::{Tls, HANDSHAKE_RECORD};

/// How an HTTP/2 connection with prior knowledge opens.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// What a port speaks.
#[derive(Clone)]
pub enum Speaks {
    Plain,
    Tls(Arc<Tls>),
    /// Both, told apart by the connection's first byte.
    Either(Arc<Tls>),
}

/// What a connection runs over: a TCP socket, or TLS over one.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Encrypted (its requests are `https`).
    const SECURE: bool;

    /// The socket itself, when a mount stream can be written straight to it.
    fn into_plain(self) -> Result<TcpStream, Self>
    where
        Self: Sized;
}

impl Transport for TcpStream {
    const SECURE: bool = false;

    fn into_plain(self) -> Result<TcpStream, Self> {
        Ok(self)
    }
}

impl Transport for TlsStream<TcpStream> {
    const SECURE: bool = true;

    fn into_plain(self) -> Result<TcpStream, Self> {
        Err(self)
    }
}

/// A connection just accepted on a port that speaks `speaks`.
///
/// `held` is the connection's claim on the server's and its address's
/// connection caps; it is
/// kept until the last thing the connection serves has ended.
pub async fn accept(mut sock: TcpStream, peer: SocketAddr, state: AppState, speaks: Speaks, held: Held) {
    let started = Instant::now();
    let limit = state.config.get().limits.header_timeout;
    let tls = match speaks {
        Speaks::Plain => return handle(sock, peer, state, held).await,
        Speaks::Tls(tls) => tls,
        Speaks::Either(tls) => {
            let mut first = [0u8; 1];
            match tokio::time::timeout(limit, sock.peek(&mut first)).await {
                Ok(Ok(1)) if first[0] == HANDSHAKE_RECORD => tls,
                Ok(Ok(1)) => return handle(sock, peer, state, held).await,
                // Closed or failed before a byte: a port probe.
                Ok(_) => return,
                Err(_) => return refuse(&mut sock, peer, &state, HeadError::Timeout, started).await,
            }
        }
    };
    match tls.accept(sock, limit).await {
        Ok(stream) => handle(stream, peer, state, held).await,
        Err(error) => tracing::debug!(%peer, %error, "TLS handshake failed"),
    }
}

async fn handle<S: Transport>(mut sock: S, peer: SocketAddr, state: AppState, held: Held) {
    let started = Instant::now();
    let limits = &state.config.get().limits;
    let mut buf = BytesMut::with_capacity(1024);
    let head = match tokio::time::timeout(limits.header_timeout, read_head(&mut sock, &mut buf, &state)).await {
        Ok(Ok(Some(head))) => head,
        // The peer closed before sending anything: a port probe, not an error.
        Ok(Ok(None)) => return,
        Ok(Err(error)) => return refuse(&mut sock, peer, &state, error, started).await,
        Err(_) => return refuse(&mut sock, peer, &state, HeadError::Timeout, started).await,
    };
    if head.starts_with(H2_PREFACE) {
        return hand_to_hyper(sock, head, buf, peer, state, held).await;
    }
    let req = match Request::parse(&head, limits.max_headers) {
        Ok(req) => req,
        Err(error) => return refuse(&mut sock, peer, &state, error, started).await,
    };
    // Hyper's requests pass the gate one by one (each may be forwarded for
    // another client); sources and streams here.
    let Some(mount) = stream_target(&req, &state) else {
        if !matches!(req.method.as_str(), "SOURCE" | "PUT") {
            drop(req);
            return hand_to_hyper(sock, head, buf, peer, state, held).await;
        }
        let line = RequestLine::of(&req);
        let peer = match gate::admit(&req, peer, &state) {
            Ok(client) => client,
            Err(response) => return answer(&mut sock, peer, &state, response, Some(&line), started).await,
        };
        // Boxed: sources are few, and their state would otherwise make every
        // connection's future as large.
        let outcome = Box::pin(crate::source::serve_http(&mut sock, &req, buf, peer, &state)).await;
        state.access_log.finished(
            peer.ip(),
            outcome.user.as_deref(),
            Some(&line),
            outcome.status,
            outcome.bytes,
            started,
        );
        return;
    };
    match sock.into_plain() {
        Ok(mut sock) => {
            let listen = ListenRequest::of(&req, RequestLine::of(&req), started);
            let line = Some(&listen.said);
            let peer = match gate::admit(&req, peer, &state) {
                Ok(client) => client,
                Err(response) => return answer(&mut sock, peer, &state, response, line, started).await,
            };
            let asked = auth::ListenerRequest::of(&req, false);
            let admission = match auth::listener(&state, mount.name(), &asked, peer.ip()).await {
                Ok(admission) => admission,
                Err(refused) => return answer(&mut sock, peer, &state, refused.response(), line, started).await,
            };
            // Listeners live for hours: keep nothing per connection that is not needed.
            drop((req, head, buf));
            listen_on(sock, listen, Client { peer, admission, held }, state, mount).await;
        }
        Err(sock) => {
            drop((req, mount));
            hand_to_hyper(sock, head, buf, peer, state, held).await;
        }
    }
}

/// Serve the connection with hyper, which parses it again from its first
/// byte (the head read here, then whatever followed it).
async fn hand_to_hyper<S: Transport>(
    sock: S,
    mut head: BytesMut,
    rest: BytesMut,
    peer: SocketAddr,
    state: AppState,
    held: Held,
) {
    head.unsplit(rest);
    service::serve_connection(Rewound::new(head, sock), peer, state, S::SECURE).await;
    drop(held);
}

/// Who a listener is, and its claim on its address's connection cap.
struct Client {
    peer: SocketAddr,
    /// What authentication said (`listener_auth`).
    admission: auth::Admission,
    held: Held,
}

/// A listener: admitted here, then streamed on its own (`listener::spawn`),
/// holding only what the stream needs (listeners last hours; their memory
/// is the cost that scales), and logged when it ends.
async fn listen_on(sock: TcpStream, listen: ListenRequest, client: Client, state: AppState, mount: MountHandle) {
    let Client { peer, mut admission, held } = client;
    let started = listen.arrived;
    state.stats.client_connections.fetch_add(1, Ordering::Relaxed);
    crate::relay::demand(&state, &mount).await;
    match listener::start(sock, &listen, peer, state.clone(), mount).await {
        Started::Answered(served) => {
            let user = admission.user();
            state.access_log.finished(peer.ip(), user, Some(&listen.said), served.status, served.bytes, started);
            admission.left(&state);
        }
        Started::Streaming(stream) => {
            let time_limit = admission.time_limit();
            let end = StreamEnd::new(admission, Some(held));
            listener::spawn(*stream, time_limit, end);
        }
    }
}

/// Read until the end of the head; the head is split off `buf`, leaving any
/// body bytes in it. `Ok(None)`: the peer closed without sending a byte.
async fn read_head<S: Transport>(
    sock: &mut S,
    buf: &mut BytesMut,
    state: &AppState,
) -> Result<Option<BytesMut>, HeadError> {
    loop {
        if let Some(len) = scan_head(buf, &state.config.get().limits)? {
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

async fn refuse<S: Transport>(sock: &mut S, peer: SocketAddr, state: &AppState, error: HeadError, started: Instant) {
    state.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%peer, %error, "request refused");
    let response = error.response();
    answer(sock, peer, state, response, None, started).await;
}

/// Send `response` and log it; the connection then closes.
async fn answer<S: Transport>(
    sock: &mut S,
    peer: SocketAddr,
    state: &AppState,
    response: Response,
    line: Option<&RequestLine>,
    started: Instant,
) {
    let bytes = response.write_to(sock, false).await.unwrap_or(0);
    state.access_log.finished(peer.ip(), None, line, response.status, bytes, started);
}

#[cfg(test)]
mod tests;
