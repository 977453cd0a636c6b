//! The slow-listener policy, `client_timeout` and delivery timing, in
//! process under tokio's paused clock: a source pushing 16 KB/s, a listener
//! whose client reads at a chosen pace, and exact virtual times instead of
//! wall-clock windows.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{admit, End, ListenRequest, Sink};
use crate::access_log::AccessLog;
use crate::config::LiveConfig;
use crate::format::Unit;
use crate::http::body::{Body, CHANNEL_PIECES};
use crate::mount::{MountHandle, SourceInfo, StreamInfo};
use crate::state::AppState;

/// What the source pushes every `TICK`: 128 kbit/s.
const PIECE: usize = 1600;
const TICK: Duration = Duration::from_millis(100);

struct Setup {
    state: AppState,
    mount: MountHandle,
    shutdown: watch::Sender<bool>,
}

/// A server state with one live mount `/t` under `limits` (TOML lines).
fn live_mount(limits: &str) -> Setup {
    // Delivered at once unless `limits` sets an interval.
    let interval = if limits.contains("delivery_interval_ms") { "" } else { "delivery_interval_ms = 0\n" };
    let text = format!("[limits]\n{interval}burst_size = 0\n{limits}\n[[mount]]\nname = \"/t\"\n");
    let config = crate::config::parse_str(&text, "test.toml", &crate::transcode::ENCODERS).expect("valid");
    let (shutdown, shutdown_rx) = watch::channel(false);
    let state = AppState::new(LiveConfig::new(config, None), AccessLog::default(), 0, shutdown_rx);
    let mount = state.mounts.get_or_create("/t");
    let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let source = SourceInfo::new("audio/mpeg".into(), StreamInfo::default(), peer, None);
    mount.attach_source(Arc::new(source)).expect("attach");
    Setup { state, mount, shutdown }
}

/// Push a piece every `TICK` for as long as the test runs, and publish what
/// is held back when a wake group falls due between pushes, as the ingest
/// loop does (a push first when both are due).
fn feed(mount: MountHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        for _ in 0..100_000 {
            let due = mount.publish_due();
            tokio::select! {
                biased;
                _ = tick.tick() => {
                    mount.push_units(&mut vec![Unit::Data { bytes: Bytes::from(vec![0x55; PIECE]), sync: true }]);
                }
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    mount.publish_scheduled();
                }
            }
        }
    })
}

/// A plain listener's request for `/t`.
fn plain_request() -> ListenRequest {
    ListenRequest {
        head_only: false,
        wants_icy: false,
        said: crate::access_log::RequestLine { line: "GET /t HTTP/1.1".into(), referer: None, user_agent: None },
        own_mount_only: false,
        arrived: std::time::Instant::now(),
    }
}

/// A plain listener joined to `/t`, on a body channel (so it never parks).
fn join(setup: &Setup) -> (super::ListenerStream, Body) {
    let request = plain_request();
    let peer: SocketAddr = "127.0.0.1:10".parse().unwrap();
    let admitted = admit(&request, peer.ip(), &setup.state, setup.mount.clone()).expect("admitted");
    let (sender, body) = Body::channel();
    let stream = admitted.stream(Sink::Body(sender), &request, peer, setup.state.clone(), None).ok().expect("joined");
    (stream, body)
}

/// Start a listener on `/t` whose client takes one piece of the body every
/// `read_every` (never, with `None`). Returns how the stream ended and when.
async fn listen(setup: &Setup, read_every: Option<Duration>) -> (End, Duration) {
    let (mut stream, body) = join(setup);
    let client = tokio::spawn(async move {
        let Body::Channel(mut pieces) = body else { unreachable!("a channel body") };
        let Some(every) = read_every else {
            // Holds the body open and reads nothing.
            std::future::pending::<()>().await;
            return;
        };
        while pieces.recv().await.is_some() {
            tokio::time::sleep(every).await;
        }
    });
    let started = Instant::now();
    let (end, _) = stream.run_to_end().await;
    client.abort();
    (end, started.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_client_that_reads_nothing_is_dropped_at_client_timeout() {
    let setup = live_mount("client_timeout = 10\nqueue_size = 10000000");
    let feeder = feed(setup.mount.clone());
    let (end, after) = listen(&setup, None).await;
    feeder.abort();
    assert_eq!(end, End::Stalled);
    // The body holds CHANNEL_PIECES pieces, one per tick: the write of the
    // next one blocks, and the listener goes exactly client_timeout later.
    assert_eq!(after, TICK * CHANNEL_PIECES as u32 + Duration::from_secs(10));
    assert_eq!(setup.state.stats.slow_listeners.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(setup.state.stats.stalled_listeners.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(setup.mount.stats().stalled_listeners.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn a_client_reading_too_slowly_is_dropped_as_slow_before_it_stalls() {
    // Reads a piece a second (never silent for client_timeout) while the
    // source makes ten: it falls behind by about 14 KB a second, so it
    // passes queue_size (64 KiB) within seconds of the body filling up.
    let setup = live_mount("client_timeout = 10\nqueue_size = 65536");
    let feeder = feed(setup.mount.clone());
    let (end, after) = listen(&setup, Some(Duration::from_secs(1))).await;
    feeder.abort();
    assert_eq!(end, End::Slow, "after {after:?}");
    // Dropped for its lag once the body is full, well before a stall could
    // be timed (it never stays silent for client_timeout).
    assert!(after > TICK * CHANNEL_PIECES as u32, "dropped after {after:?}");
    assert!(after < TICK * CHANNEL_PIECES as u32 + Duration::from_secs(10), "dropped after {after:?}");
    assert_eq!(setup.mount.stats().slow_listeners.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(setup.state.stats.slow_listeners.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_keeps_up_stays_for_good() {
    // A client reading faster than the source, a tight queue and timeout:
    // ten virtual minutes later it is still there, and leaves only when the
    // server shuts down.
    let setup = live_mount("client_timeout = 2\nqueue_size = 8192");
    let feeder = feed(setup.mount.clone());
    let (shutdown, mount) = (setup.shutdown.clone(), setup.mount.clone());
    let stop = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(600)).await;
        shutdown.send_replace(true);
        // Wake the listener, as the server's shutdown does.
        mount.nudge();
    });
    let (end, after) = listen(&setup, Some(TICK / 4)).await;
    feeder.abort();
    stop.await.unwrap();
    assert_eq!((end, after), (End::Shutdown, Duration::from_secs(600)));
    assert_eq!(setup.mount.stats().slow_listeners.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn a_listener_is_written_once_per_delivery_interval_at_its_groups_phase() {
    // 200 ms: every group's phase is a whole millisecond, which tokio's timer keeps exactly.
    let interval = Duration::from_millis(200);
    let setup = live_mount(&format!("delivery_interval_ms = {}", interval.as_millis()));
    let (mut stream, body) = join(&setup);
    let group = crate::mount::Heads::group_of(stream.lasting.registration.entry().id);
    let listener = tokio::spawn(async move { stream.run_to_end().await });
    let start = Instant::now();
    let feeder = feed(setup.mount.clone());
    // What arrives when, for two virtual seconds.
    let Body::Channel(mut pieces) = body else { unreachable!("a channel body") };
    let mut arrivals: Vec<(Duration, usize)> = Vec::new();
    let window = Duration::from_secs(2);
    while let Ok(Some(piece)) = tokio::time::timeout_at(start + window, pieces.recv()).await {
        let at = start.elapsed();
        match arrivals.last_mut() {
            Some((last, bytes)) if *last == at => *bytes += piece.len(),
            _ => arrivals.push((at, piece.len())),
        }
    }
    feeder.abort();
    listener.abort();
    // The first push goes to every group at once; then this listener's group
    // is due a quarter interval per group number later, and every interval on.
    let phase = interval * (group as u32 + 1) / 4;
    let mut expected = vec![Duration::ZERO];
    expected.extend((0..10).map(|k| phase + interval * k).filter(|&t| t < window));
    let times: Vec<Duration> = arrivals.iter().map(|&(at, _)| at).collect();
    assert_eq!(times, expected, "group {group}");
    // Each write carries everything the source pushed up to then (a push at
    // 0, 100, 200 ms, ...), held back in between.
    let mut total = 0;
    for &(at, bytes) in &arrivals {
        total += bytes;
        let pushed = (at.as_millis() / TICK.as_millis() + 1) as usize * PIECE;
        assert_eq!(total, pushed, "by {at:?}");
    }
}

/// A listener on a socket of its own parks once caught up, is written by
/// its mount's walks from then on, and what admin and the access log count
/// is exactly the stream bytes its client got (the response head not
/// included), whoever wrote them.
#[tokio::test]
async fn a_parked_listener_counts_the_stream_bytes_its_client_got() {
    use tokio::io::AsyncReadExt;
    let setup = live_mount("");
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = tokio::net::TcpStream::connect(server.local_addr().unwrap()).await.unwrap();
    let (sock, peer) = server.accept().await.unwrap();
    let super::Started::Streaming(stream) =
        super::start(sock, &plain_request(), peer, setup.state.clone(), setup.mount.clone()).await
    else {
        panic!("not admitted");
    };
    let entry = stream.lasting.registration.entry().clone();
    assert!(entry.head_len > 0);
    super::spawn(*stream, None, super::StreamEnd::new(crate::auth::Admission::default(), None));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut pushed = 0;
    let end_of_head = |got: &[u8]| got.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4);
    for round in 0..20 {
        if round > 0 {
            setup.mount.push_units(&mut vec![Unit::Data { bytes: Bytes::from(vec![0x55; PIECE]), sync: true }]);
            pushed += PIECE;
        }
        while end_of_head(&got).is_none_or(|head| got.len() - head < pushed) {
            assert!(std::time::Instant::now() < deadline, "round {round}: {} bytes", got.len());
            let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await.unwrap().unwrap();
            assert!(n > 0, "the server closed the stream");
            got.extend_from_slice(&buf[..n]);
        }
        if round == 0 {
            // Caught up (no burst here): it parks, and the walks write the rest.
            while setup.mount.parked() == 0 {
                assert!(std::time::Instant::now() < deadline, "never parked");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let head = end_of_head(&got).expect("a response head");
    assert_eq!(head, entry.head_len as usize);
    assert_eq!(got.len() - head, pushed);
    assert_eq!(entry.body_sent(), pushed as u64);
}

/// What a listener holds for hours stays within its budget (README,
/// Performance: every byte here is a byte per listener, 10k times over):
/// the entry (in an `Arc`), what it keeps when parked, its place in the
/// delivery set.
#[test]
fn a_listeners_lifelong_state_stays_small() {
    let entry = std::mem::size_of::<crate::mount::ListenerEntry>();
    assert!(entry <= 64, "{entry}");
    let lasting = std::mem::size_of::<super::Lasting>();
    assert!(lasting <= 80, "{lasting}");
    let parked = std::mem::size_of::<crate::mount::Parked>();
    assert!(parked <= 40, "{parked}");
}
