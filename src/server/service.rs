//! The hyper side of a connection: every request on a kept-alive HTTP/1.1
//! or an HTTP/2 connection goes through `serve`, which routes it like the
//! hand-written path and answers with a complete response, a segment
//! streamed as it is written, or a listener's stream as a response body.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;

use super::gate;
use super::rewind::Rewound;
use super::routes::{route, Route};
use crate::access_log::RequestLine;
use crate::auth;
use crate::hls::serve::{self as adaptive, Asset, Reply};
use crate::http::body::Body;
use crate::http::request::Request;
use crate::http::response::Response;
use crate::http::status::{Refusal, Status};
use crate::listener::{self, ListenRequest, Sink, StreamEnd};
use crate::mount::MountHandle;
use crate::state::AppState;

/// How long a kept-alive connection may wait for its next request head.
const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(15);
/// HTTP/2 streams one connection may have open at once.
const MAX_STREAMS: u32 = 64;
/// How long connections get to finish their responses at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Serve a connection with hyper until the peer leaves or the server shuts
/// down: HTTP/1.1 with keep-alive and pipelining, or HTTP/2 (prior
/// knowledge, `h2c`) when the connection opens with its preface.
pub async fn serve_connection<S>(io: Rewound<S>, peer: SocketAddr, state: AppState, secure: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = &state.config.get().limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(KEEP_ALIVE_IDLE.max(limits.header_timeout))
        .max_headers(limits.max_headers)
        // Hyper's floor is 8 KiB; past it a head is refused with a 431.
        .max_buf_size(limits.max_header_size.max(8192))
        .title_case_headers(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(u32::try_from(limits.max_header_size).unwrap_or(u32::MAX))
        .keep_alive_interval(KEEP_ALIVE_IDLE)
        .keep_alive_timeout(KEEP_ALIVE_IDLE);
    let service_state = state.clone();
    let service = hyper::service::service_fn(move |req| serve(req, peer, service_state.clone(), secure));
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut shutdown = state.shutdown.clone();
    let shutting_down = async move {
        let _ = shutdown.wait_for(|&down| down).await;
    };
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        }
        () = shutting_down => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
        }
    }
}

/// One request on a hyper connection.
async fn serve(
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    state: AppState,
    secure: bool,
) -> Result<hyper::Response<Body>, Infallible> {
    let started = Instant::now();
    let (parts, _body) = req.into_parts();
    let req = match Request::from_parts(&parts) {
        Ok(req) => Request { secure, ..req },
        Err(error) => {
            state.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            let response = error.response();
            state.access_log.finished(peer.ip(), None, None, response.status, response.body.len() as u64, started);
            return Ok(response.into_hyper());
        }
    };
    let line = RequestLine::of(&req);
    let head_only = req.method == "HEAD";
    let (peer, refused) = match gate::admit(&req, peer, &state) {
        Ok(client) => (client, None),
        Err(response) => (peer, Some(response)),
    };
    let complete = |response: Response, user: Option<&str>| {
        let bytes = if head_only { 0 } else { response.body.len() as u64 };
        state.access_log.finished(peer.ip(), user, Some(&line), response.status, bytes, started);
        Ok(response.into_hyper())
    };
    if let Some(response) = refused {
        return complete(response, None);
    }
    match route(&req, peer, &state) {
        Route::Respond(response, user) => {
            state.stats.client_connections.fetch_add(1, Ordering::Relaxed);
            complete(response, user.as_deref())
        }
        Route::Adaptive(mount, asset) => {
            state.stats.client_connections.fetch_add(1, Ordering::Relaxed);
            state.stats.adaptive_requests[asset.kind()].fetch_add(1, Ordering::Relaxed);
            let asked = auth::ListenerRequest::of(&req, true);
            let user = match auth::listener(&state, &mount, &asked, peer.ip()).await {
                Ok(admission) => admission.into_user(),
                Err(refused) => return complete(refused.response(), None),
            };
            if let Some(relayed) = state.mounts.get(&mount) {
                crate::relay::demand(&state, &relayed).await;
            }
            match answer_adaptive(&req, &state, &mount, asset).await {
                Ok(response) => complete(response, user.as_deref()),
                Err((stream, variant, msn)) => {
                    let (sender, body) = Body::channel();
                    let state = state.clone();
                    tokio::spawn(async move {
                        let sent = adaptive::stream_segment(sender, stream, variant, msn).await;
                        state.access_log.finished(peer.ip(), None, Some(&line), Status::Ok, sent, started);
                    });
                    Ok(adaptive::streaming_head().into_hyper_with(body))
                }
            }
        }
        Route::Stream(mount) => {
            match auth::listener(&state, mount.name(), &auth::ListenerRequest::of(&req, false), peer.ip()).await {
                Ok(admission) => {
                    crate::relay::demand(&state, &mount).await;
                    Ok(listen(&req, line, (peer, admission), state.clone(), mount, started))
                }
                Err(refused) => complete(refused.response(), None),
            }
        }
        Route::Events(user) => {
            use crate::admin::events::{feed, Audience};
            let (sender, body) = Body::channel();
            let state = state.clone();
            let audience = if user.is_some() { Audience::Admin } else { Audience::Public };
            tokio::spawn(async move {
                let sent = feed(state.clone(), sender, audience).await;
                state.access_log.finished(peer.ip(), user.as_deref(), Some(&line), Status::Ok, sent, started);
            });
            let head = Response::new(Status::Ok, "text/event-stream; charset=utf-8", "")
                .with_header("Cache-Control", "no-cache")
                .with_header("X-Accel-Buffering", "no");
            Ok(head.into_hyper_with(body))
        }
        // A source's body is an endless stream hyper would not hand over.
        Route::Source => {
            complete(Response::text(Status::BadRequest, "Sources must send their request on a new connection"), None)
        }
    }
}

/// The answer to an HLS or DASH request, or (as the error) the segment to
/// stream as it is written.
async fn answer_adaptive(
    req: &Request,
    state: &AppState,
    mount: &str,
    asset: Asset,
) -> Result<Response, (Arc<crate::hls::HlsStream>, usize, u64)> {
    let Some(stream) = state.hls.get(mount) else {
        return Ok(Response::text(
            Status::NotFound,
            "This mount is not offered as HLS or DASH (or its source is not live)",
        ));
    };
    match adaptive::answer(req, &stream, mount, asset).await {
        Reply::Full(response) => Ok(response),
        Reply::Streaming { variant, msn } => Err((stream, variant, msn)),
    }
}

/// A mount stream asked for on a kept-alive or HTTP/2 connection (a browser
/// reusing its connection): the stream becomes the response body, fed by
/// the same listener task as on a connection of its own.
fn listen(
    req: &Request,
    line: RequestLine,
    (peer, mut admission): (SocketAddr, auth::Admission),
    state: AppState,
    mount: MountHandle,
    started: Instant,
) -> hyper::Response<Body> {
    state.stats.client_connections.fetch_add(1, Ordering::Relaxed);
    let listen = ListenRequest::of(req, line, started);
    let finished = |status: Status, admission: &mut auth::Admission| {
        state.access_log.finished(peer.ip(), admission.user(), Some(&listen.said), status, 0, started);
        admission.left(&state);
    };
    let admitted = match listener::admit(&listen, peer.ip(), &state, mount) {
        Ok(admitted) => admitted,
        Err(refused) => {
            finished(refused.status(), &mut admission);
            return refused.response().into_hyper();
        }
    };
    let head = admitted.response();
    if listen.head_only {
        finished(Status::Ok, &mut admission);
        return head.into_hyper();
    }
    let (sender, body) = Body::channel();
    let stream = match admitted.stream(Sink::Body(sender), &listen, peer, state.clone(), None) {
        Ok(stream) => stream,
        Err((_, refused)) => {
            finished(refused.status(), &mut admission);
            return refused.response().into_hyper();
        }
    };
    let response = head.into_hyper_with(body);
    if response.status() != hyper::StatusCode::OK {
        // Hyper refused a header (logged): dropping the stream leaves the mount.
        finished(Status::InternalServerError, &mut admission);
        return response;
    }
    let time_limit = admission.time_limit();
    listener::spawn(stream, time_limit, StreamEnd::new(admission, None));
    response
}
