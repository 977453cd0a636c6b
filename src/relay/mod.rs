//! Pull relays (`[[relay]]`): a local mount fed by another server's stream.
//!
//! Each relay is a task that connects to its upstream (Icecast, SHOUTcast
//! or any HTTP stream), asks for ICY metadata, and feeds what it receives to
//! its mount through the same ingest loop as a source that connected here:
//! framing, titles, renditions, HLS and recording all work as for any
//! source. When the upstream goes away it reconnects, waiting `retry` at
//! first and twice as long after each failure (at most a minute); the
//! mount's listeners follow its fallback meanwhile, like any source's, or
//! without one wait on the mount for a while. An on-demand relay
//! (`demand`) connects only while someone listens.

mod demand;
mod master;

pub use demand::demand;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::RelayConfig;
use crate::http::url::HttpUrl;
use crate::mount::{SourceInfo, StreamInfo};
use crate::source::ingest::{self, Attached, Body, IngestEnd};
use crate::state::AppState;

/// Longest wait between attempts.
const MAX_RETRY: Duration = Duration::from_secs(60);
/// A connection that streamed this long was a success: the next failure
/// starts the backoff again from `retry`.
const STEADY: Duration = Duration::from_secs(30);

/// Run every configured relay until shutdown (or until this future is
/// dropped: a binary upgrade's new process runs its own).
pub async fn run_all(state: AppState) {
    let mut relays = tokio::task::JoinSet::new();
    for relay in state.config.get().relays.clone() {
        relays.spawn(run(relay, state.clone()));
    }
    if let Some(master) = state.config.get().master.clone() {
        relays.spawn(master::follow(master, state.clone()));
    }
    while relays.join_next().await.is_some() {}
}

/// Why one attempt ended.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("no answer within the header timeout")]
    Timeout,
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the upstream answered {0}")]
    Status(String),
    #[error("malformed response head")]
    BadHead,
    #[error("{0}")]
    Source(#[from] crate::source::SourceError),
}

/// The mount, kept while the relay reconnects: its listeners wait (in
/// silence) instead of being closed.
struct Held {
    attached: Attached,
    /// When the upstream went away (none while streaming).
    since: Option<Instant>,
}

impl Held {
    /// Keep holding? Only while the mount has no live fallback to send its
    /// listeners to, for at most `source_timeout` (as long as a source may
    /// be silent), and unless an admin killed it.
    fn worth_keeping(&self, state: &AppState) -> bool {
        let patience = state.config.get().limits.source_timeout;
        !self.attached.info.is_killed()
            && self.since.is_some_and(|since| since.elapsed() < patience)
            && state.mounts.live_fallback(&self.attached.mount).is_none()
    }
}

/// How a run of attempts ended.
enum Stop {
    Shutdown,
    /// An on-demand relay's mount has no listeners left.
    Idle,
}

/// How one connection ended.
enum Ended {
    Ingest(IngestEnd),
    Idle,
}

async fn run(relay: RelayConfig, state: AppState) {
    if !relay.on_demand {
        relay_until(&relay, &state).await;
        return;
    }
    let registration = demand::OnDemand::register(&state, &relay.mount);
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = registration.wake.notified() => {}
            _ = shutdown.wait_for(|&down| down) => return,
        }
        tracing::info!(mount = relay.mount.as_str(), upstream = %relay.url, "a listener asks for the on-demand relay");
        if let Stop::Shutdown = relay_until(&relay, &state).await {
            return;
        }
        tracing::info!(mount = relay.mount.as_str(), upstream = %relay.url, "no listeners: on-demand relay stopped");
    }
}

/// Relay, reconnecting, until shutdown (or for an on-demand relay until
/// nobody listens).
async fn relay_until(relay: &RelayConfig, state: &AppState) -> Stop {
    let mut shutdown = state.shutdown.clone();
    let mut wait = relay.retry;
    let mut held: Option<Held> = None;
    loop {
        let started = Instant::now();
        match attempt(relay, state, &mut held).await {
            Ok(Ended::Ingest(IngestEnd::Shutdown)) => return Stop::Shutdown,
            Ok(Ended::Idle) => return Stop::Idle,
            Ok(Ended::Ingest(end)) => {
                tracing::info!(mount = relay.mount.as_str(), upstream = %relay.url, ?end, "relay ended")
            }
            Err(error) => {
                tracing::warn!(mount = relay.mount.as_str(), upstream = %relay.url, %error, "relay failed")
            }
        }
        if let Some(hold) = &mut held {
            hold.since.get_or_insert_with(Instant::now);
        }
        if held.as_ref().is_some_and(|hold| !hold.worth_keeping(state)) {
            // Listeners follow the fallback now, or are closed.
            held = None;
        }
        if relay.on_demand && held.is_none() {
            // Whoever asked has been answered (or has given up): the next
            // request starts it again.
            return Stop::Idle;
        }
        wait = match (&held, started.elapsed() >= STEADY) {
            // Holding listeners: try again soon, without backing off.
            (Some(_), _) | (None, true) => relay.retry,
            (None, false) => (wait * 2).min(MAX_RETRY),
        };
        let killed = async {
            match &held {
                Some(hold) => hold.attached.info.killed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = killed => held = None,
            _ = shutdown.wait_for(|&down| down) => return Stop::Shutdown,
        }
    }
}

/// One connection: request the stream, attach to the mount (or take it
/// back from `held`, when the stream is of the same type), ingest until
/// the upstream ends; the mount is left in `held`.
async fn attempt(relay: &RelayConfig, state: &AppState, held: &mut Option<Held>) -> Result<Ended, RelayError> {
    let credentials = relay.username.as_deref().map(|user| (user, relay.password.as_deref().unwrap_or("")));
    let (mut sock, buf, answer) = open(&relay.url, relay.metadata, credentials, state).await?;
    let content_type = crate::source::allowed_content_type(answer.header("content-type").unwrap_or("audio/mpeg"))?;
    let metaint = answer.header("icy-metaint").and_then(|m| m.trim().parse().ok());
    let attached = match held.take() {
        Some(hold) if hold.attached.info.content_type == content_type => {
            tracing::info!(mount = relay.mount.as_str(), upstream = %relay.url, "relay reconnected; listeners kept");
            hold.attached
        }
        // Another format: the mount starts over (its listeners could not
        // decode the new one as a continuation).
        _ => {
            let peer = sock.peer_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], relay.url.port)));
            let config = state.config.get().mount(&relay.mount);
            let info = StreamInfo::from_headers(|name| answer.header(name)).with_overrides(&config.info);
            let source =
                || SourceInfo::new(content_type.clone(), info.clone(), peer, Some(format!("relay from {}", relay.url)));
            let mut attached = ingest::attach(state, &relay.mount, source());
            if let Err(crate::source::SourceError::HeldByFeed) = attached {
                // The previous process's feed during an upgrade: the relay takes over.
                crate::upgrade::feed::displace(state, &relay.mount).await;
                attached = ingest::attach(state, &relay.mount, source());
            }
            let attached = attached?;
            tracing::info!(mount = relay.mount.as_str(), upstream = %relay.url, "relay connected");
            attached
        }
    };
    let ingest = ingest::run(&mut sock, buf, Body::Identity, metaint, &attached, state);
    let end = if relay.on_demand {
        tokio::select! {
            end = ingest => Ended::Ingest(end),
            _ = demand::idle(state, &attached.mount) => Ended::Idle,
        }
    } else {
        Ended::Ingest(ingest.await)
    };
    // Audio framed but held back for the next delivery goes out now.
    attached.mount.publish_scheduled();
    if let Ended::Ingest(end) = end {
        if !matches!(end, IngestEnd::Killed | IngestEnd::Shutdown) {
            *held = Some(Held { attached, since: None });
        }
    }
    Ok(end)
}

/// GET `url` (with ICY titles asked for, and Basic credentials): the
/// connection, what followed the response head, and the head, once it
/// said 200. Connecting and the head are bounded by the header timeout.
async fn open(
    url: &HttpUrl,
    metadata: bool,
    credentials: Option<(&str, &str)>,
    state: &AppState,
) -> Result<(TcpStream, BytesMut, Answer), RelayError> {
    let limits = state.config.get().limits.clone();
    let mut sock =
        match tokio::time::timeout(limits.header_timeout, TcpStream::connect((url.host.as_str(), url.port))).await {
            Ok(connected) => connected.map_err(RelayError::Connect)?,
            Err(_) => return Err(RelayError::Timeout),
        };
    sock.write_all(request(url, metadata, credentials).as_bytes()).await?;
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let head_len = match tokio::time::timeout(limits.header_timeout, read_head(&mut sock, &mut buf, &limits)).await {
        Ok(head) => head?,
        Err(_) => return Err(RelayError::Timeout),
    };
    let answer = Answer::parse(&buf.split_to(head_len))?;
    Ok((sock, buf, answer))
}

/// The request: HTTP/1.0, so the body is the stream as it is (no chunking).
fn request(url: &HttpUrl, metadata: bool, credentials: Option<(&str, &str)>) -> String {
    let mut request = format!(
        "GET {} HTTP/1.0\r\nHost: {}:{}\r\nUser-Agent: {}\r\n",
        url.target,
        url.host,
        url.port,
        crate::http::server_id::get()
    );
    if metadata {
        request.push_str("Icy-MetaData: 1\r\n");
    }
    if let Some((user, password)) = credentials {
        request.push_str(&format!("Authorization: {}\r\n", crate::auth::basic_header(user, password)));
    }
    request.push_str("\r\n");
    request
}

/// Read until the end of the response head (bounded by the request-head
/// limit); returns its length, the rest of `buf` being stream.
async fn read_head(
    sock: &mut TcpStream,
    buf: &mut BytesMut,
    limits: &crate::config::Limits,
) -> Result<usize, RelayError> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(end + 4);
        }
        if buf.len() > limits.max_header_size {
            return Err(RelayError::BadHead);
        }
        if sock.read_buf(buf).await? == 0 {
            return Err(RelayError::BadHead);
        }
    }
}

/// A response head: its headers, once the status said 200.
struct Answer(crate::client::Head);

impl Answer {
    fn parse(head: &[u8]) -> Result<Answer, RelayError> {
        // SHOUTcast v1 answers `ICY 200 OK`: the same head by another name.
        let normalized;
        let head = match head.strip_prefix(b"ICY ") {
            Some(rest) => {
                normalized = [b"HTTP/1.0 ".as_slice(), rest].concat();
                normalized.as_slice()
            }
            None => head,
        };
        let Ok(Some(head)) = crate::client::parse_head(head) else { return Err(RelayError::BadHead) };
        if head.status != 200 {
            let status = format!("{} {}", head.status, head.reason);
            return Err(RelayError::Status(crate::escape::escape_log(&status)));
        }
        Ok(Answer(head))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.0.header(&name.to_ascii_lowercase())
    }
}

/// The fuzz target's way in: a response head as an upstream sends it.
#[cfg(feature = "fuzzing")]
pub fn fuzz_answer(head: &[u8]) {
    if let Ok(answer) = Answer::parse(head) {
        for name in ["content-type", "icy-metaint", "icy-name", "ice-audio-info"] {
            let _ = answer.header(name);
        }
        let _ = StreamInfo::from_headers(|name| answer.header(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shoutcast_and_http_answers_parse() {
        let icy = Answer::parse(b"ICY 200 OK\r\nicy-name: Test\r\nicy-metaint: 8192\r\n\r\n").unwrap();
        assert_eq!(icy.header("Icy-MetaInt"), Some("8192"));
        let http = Answer::parse(b"HTTP/1.0 200 OK\r\nContent-Type: audio/ogg\r\n\r\n").unwrap();
        assert_eq!(http.header("content-type"), Some("audio/ogg"));
        assert!(
            matches!(Answer::parse(b"HTTP/1.1 404 Not Found\r\n\r\n"), Err(RelayError::Status(s)) if s == "404 Not Found")
        );
        assert!(matches!(Answer::parse(b"garbage\r\n\r\n"), Err(RelayError::BadHead)));
    }

    #[test]
    fn request_asks_for_titles_with_credentials() {
        let relay = RelayConfig {
            url: "http://origin.example:8000/live.mp3".parse().unwrap(),
            mount: "/live.mp3".into(),
            username: Some("relay".into()),
            password: Some("secret".into()),
            metadata: true,
            retry: Duration::from_secs(2),
            on_demand: false,
        };
        let text = request(&relay.url, relay.metadata, Some(("relay", "secret")));
        assert!(text.starts_with("GET /live.mp3 HTTP/1.0\r\nHost: origin.example:8000\r\n"));
        assert!(text.contains("Icy-MetaData: 1\r\n"));
        assert!(text.contains("Authorization: Basic cmVsYXk6c2VjcmV0\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }
}
