//! Letting a listener in: which mount serves it (the requested one or its
//! live fallback), the caps it must fit under, the response head, and the
//! refusals. What follows admission, the stream itself, is the parent
//! module's `ListenerStream`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{ListenerStream, Sink, SEND_BUFFER};
use crate::access_log::RequestLine;
use crate::escape::header_value;
use crate::http::request::Request;
use crate::http::response::Response;
use crate::http::status::{Refusal, Status};
use crate::mount::{ListenerEntry, MountHandle, RequestTexts, SourceInfo};
use crate::state::AppState;

/// Why a listener was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotAdmitted {
    #[error("{0}")]
    Denied(crate::access::Denied),
    #[error("Mount not found or not live")]
    NotLive,
    #[error("Server full: too many listeners")]
    ServerFull,
    #[error("Mount full: too many listeners")]
    MountFull,
}

impl Refusal for NotAdmitted {
    fn status(&self) -> Status {
        match self {
            NotAdmitted::Denied(denied) => denied.status(),
            NotAdmitted::NotLive => Status::NotFound,
            NotAdmitted::ServerFull | NotAdmitted::MountFull => Status::ServiceUnavailable,
        }
    }
}

/// Result of serving a mount request: status and body bytes, for the access log.
pub struct Served {
    pub status: Status,
    pub bytes: u64,
}

/// What a listener asked for: the few request fields kept for the stream's life.
#[derive(Debug, Clone)]
pub struct ListenRequest {
    pub head_only: bool,
    /// `Icy-MetaData: 1`.
    pub wants_icy: bool,
    /// Its request line, user agent and referer (admin's list, the access log).
    pub said: RequestLine,
    /// Ends with the mount's source instead of following its fallback (a
    /// binary upgrade's feed: the new process has the fallback itself).
    pub own_mount_only: bool,
    /// When the connection was accepted (on a kept-alive or HTTP/2
    /// connection: when the request began): the listener's time (admin's
    /// list, the access log) counts from it.
    pub arrived: std::time::Instant,
}

impl ListenRequest {
    /// `said`: the request's line as the caller already made it for its
    /// own access-log lines (`RequestLine::of(req)`).
    pub fn of(req: &Request, said: RequestLine, arrived: std::time::Instant) -> ListenRequest {
        ListenRequest {
            head_only: req.method == "HEAD",
            wants_icy: req.header("Icy-MetaData").is_some_and(|v| v.trim() == "1"),
            said,
            own_mount_only: false,
            arrived,
        }
    }
}

/// What `start` made of a listener request.
pub enum Started {
    /// Answered and done (refused, or `HEAD`): status and body bytes for the access log.
    Answered(Served),
    /// Streaming: run it (in its own task) until it ends.
    Streaming(Box<ListenerStream>),
}

/// Admit a `GET`/`HEAD` on a mount on a connection of its own (the
/// hand-written path): pick the live mount (or its fallback), enforce the
/// listener caps and queue the response head. The stream that follows owns
/// everything it needs, so the caller can give it a task of its own and free
/// the request-handling state.
pub async fn start(
    mut sock: TcpStream,
    req: &ListenRequest,
    peer: SocketAddr,
    state: AppState,
    requested: MountHandle,
) -> Started {
    let admitted = match admit(req, peer.ip(), &state, requested) {
        Ok(admitted) => admitted,
        Err(refused) => return Started::Answered(refuse(&mut sock, req.head_only, refused).await),
    };
    let head = admitted.response().stream_head_bytes();
    if req.head_only {
        let _ = sock.write_all(&head).await;
        return Started::Answered(Served { status: Status::Ok, bytes: 0 });
    }
    if let Err(error) = socket2::SockRef::from(&sock).set_send_buffer_size(SEND_BUFFER) {
        tracing::debug!(%error, "cannot size the listener send buffer");
    }
    // The response head goes out with the stream headers and the burst, in
    // one write.
    match admitted.stream(Sink::Socket(sock), req, peer, state, Some(Bytes::from(head))) {
        Ok(stream) => Started::Streaming(Box::new(stream)),
        Err((sink, refused)) => Started::Answered(match sink {
            Sink::Socket(mut sock) => refuse(&mut sock, false, refused).await,
            Sink::Body(_) => Served { status: refused.status(), bytes: 0 },
        }),
    }
}

/// A listener allowed onto a mount: where, from which source, under which permit.
pub struct Admitted {
    mount: MountHandle,
    home: Option<MountHandle>,
    source: Arc<SourceInfo>,
    metaint: Option<usize>,
    permit: crate::slots::Slot,
}

/// Pick the live mount (or its live fallback) and take a client slot.
pub fn admit(
    req: &ListenRequest,
    client: std::net::IpAddr,
    state: &AppState,
    requested: MountHandle,
) -> Result<Admitted, NotAdmitted> {
    if let Err(denied) = requested.config().access.check(client, req.said.user_agent.as_deref()) {
        state.stats.access_refusals.fetch_add(1, Ordering::Relaxed);
        return Err(NotAdmitted::Denied(denied));
    }
    let (mount, home) = if requested.is_live() {
        (requested, None)
    } else if let Some(fallback) = state.mounts.live_fallback(&requested) {
        let home = requested.config().fallback_override.then(|| requested.clone());
        (fallback, home)
    } else {
        return Err(NotAdmitted::NotLive);
    };
    let source = mount.source().ok_or(NotAdmitted::NotLive)?;
    let permit = state.clients.try_claim().ok_or(NotAdmitted::ServerFull)?;
    let metaint = (req.wants_icy && source.format.supports_icy()).then_some(mount.config().metaint);
    Ok(Admitted { mount, home, source, metaint, permit })
}

impl Admitted {
    /// The stream's response: status and headers (the body is the stream).
    /// The hand-written path sends its head close-delimited, never chunked,
    /// never `ICY 200 OK` (browsers reject it).
    pub fn response(&self) -> Response {
        stream_response(&self.source, self.metaint)
    }

    /// Join the mount's listeners and build the stream into `sink`, the raw
    /// response head (if any) first. A full mount gives the sink back with
    /// the refusal.
    pub fn stream(
        self,
        sink: Sink,
        req: &ListenRequest,
        peer: SocketAddr,
        state: AppState,
        head: Option<Bytes>,
    ) -> Result<ListenerStream, (Sink, NotAdmitted)> {
        let id = state.mounts.next_listener_id();
        let head = head.unwrap_or_default();
        let head_len = u32::try_from(head.len()).unwrap_or(u32::MAX);
        let entry = {
            let _kept_for_hours = crate::heap::long_lived();
            Arc::new(ListenerEntry::new(id, peer.ip(), RequestTexts::of(&req.said), req.arrived, head_len))
        };
        let Some(registration) = self.mount.register(entry, false) else {
            return Err((sink, NotAdmitted::MountFull));
        };
        state.stats.listener_connections.fetch_add(1, Ordering::Relaxed);
        let mut stream = ListenerStream::new(sink, state, registration, self.home, self.metaint, self.permit, head);
        stream.own_mount_only(req.own_mount_only);
        Ok(stream)
    }
}

async fn refuse(sock: &mut TcpStream, head_only: bool, refused: NotAdmitted) -> Served {
    let response = refused.response();
    let bytes = response.write_to(sock, head_only).await.unwrap_or(0);
    Served { status: response.status, bytes }
}

/// A stream's response (its head: the body is the stream). The bytes are
/// the source's; the policy headers every response carries tell the browser
/// not to sniff them into something else and to treat whatever it renders
/// as a sandboxed, origin-less document.
fn stream_response(source: &SourceInfo, metaint: Option<usize>) -> Response {
    let mut response = Response::new(Status::Ok, &source.content_type, Bytes::new())
        // Whatever the source's type says (a document one too, should it
        // ever get past the source rules), the stream renders sandboxed.
        .with_header("Content-Security-Policy", "sandbox")
        .with_header("Date", &crate::timefmt::http_date(std::time::SystemTime::now()))
        .with_header("Pragma", "no-cache")
        .with_header("Expires", "Mon, 26 Jul 1997 05:00:00 GMT")
        .with_header("Access-Control-Allow-Headers", "Origin, Accept, X-Requested-With, Content-Type, Icy-MetaData")
        .with_header(
            "Access-Control-Expose-Headers",
            "icy-metaint, icy-br, icy-description, icy-genre, icy-name, icy-pub, icy-url",
        );
    let info = &source.info;
    let fields = [
        ("icy-name", info.name.as_deref()),
        ("icy-description", info.description.as_deref()),
        ("icy-genre", info.genre.as_deref()),
        ("icy-url", info.url.as_deref()),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            response = response.with_header(name, &header_value(value));
        }
    }
    if let Some(bitrate) = source.bitrate() {
        response = response.with_header("icy-br", &bitrate.to_string());
    }
    if let Some(audio_info) = &info.audio_info {
        response = response.with_header("ice-audio-info", &header_value(audio_info));
    }
    response = response.with_header("icy-pub", &u8::from(info.public).to_string());
    if let Some(metaint) = metaint {
        // Both, as Icecast sends them: some players look for the first.
        response = response.with_header("icy-metadata", "1").with_header("icy-metaint", &metaint.to_string());
    }
    response
}
