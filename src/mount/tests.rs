//! Mount data-plane behaviour: publishing, the delivery interval, metadata.

use std::time::Duration;

use bytes::Bytes;

use super::stream::MAX_HELD;
use super::*;
use crate::config::{Limits, MountConfig};
use crate::format::Unit;

fn mount(interval_ms: u64) -> MountHandle {
    let limits = Limits { delivery_interval: Duration::from_millis(interval_ms), ..Limits::default() };
    MountHandle::new(Arc::new(MountConfig::dynamic("/t")), true, &limits, crate::events::Events::default())
}

fn data(byte: u8, len: usize) -> Vec<Unit> {
    vec![Unit::Data { bytes: Bytes::from(vec![byte; len]), sync: true }]
}

fn read_all(mount: &MountHandle) -> Vec<Chunk> {
    let mut out = Vec::new();
    mount.read(0, usize::MAX, &mut out).unwrap();
    out
}

#[test]
fn without_interval_every_push_is_published() {
    let m = mount(0);
    m.push_units(&mut data(1, 10));
    m.push_units(&mut data(2, 10));
    assert_eq!(m.head().seq, 2);
    assert_eq!(read_all(&m).len(), 2);
    assert_eq!(m.publish_due(), None);
}

#[test]
fn without_interval_a_push_of_frames_is_one_chunk() {
    // Framers hand out a unit per frame; the ring still gets a chunk per push.
    let m = mount(0);
    let mut frames: Vec<Unit> = (1..=3).flat_map(|byte| data(byte, 4)).collect();
    m.push_units(&mut frames);
    assert_eq!(m.head().seq, 1);
    let chunks = read_all(&m);
    assert_eq!(chunks.len(), 1);
    assert_eq!(&chunks[0].data[..], &[[1u8; 4], [2; 4], [3; 4]].concat()[..]);
}

#[test]
fn interval_holds_data_and_publishes_it_as_one_chunk() {
    let m = mount(10_000);
    m.push_units(&mut data(1, 10)); // first push publishes at once
    assert_eq!(m.head().seq, 1);
    m.push_units(&mut data(2, 10));
    m.push_units(&mut data(3, 10));
    assert_eq!(m.head().seq, 1, "held back");
    assert_eq!(read_all(&m).len(), 1, "held data is not in the ring yet");
    assert!(m.publish_due().is_some());
    m.publish_now();
    assert_eq!(m.head().seq, 2);
    let chunks = read_all(&m);
    assert_eq!(chunks.len(), 2);
    assert_eq!(&chunks[1].data[..], &[[2u8; 10], [3u8; 10]].concat()[..]);
    assert_eq!(m.publish_due(), None);
}

#[test]
fn title_change_splits_held_data_at_the_change() {
    let m = mount(10_000);
    m.push_units(&mut data(1, 10));
    m.push_units(&mut data(2, 10));
    m.set_metadata(Metadata::from_song("New", None));
    m.push_units(&mut data(3, 10));
    m.publish_now();
    let chunks = read_all(&m);
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks[1].meta.song, "", "audio before the change keeps the old title");
    assert_eq!(chunks[2].meta.song, "New");
}

#[test]
fn detaching_the_source_publishes_held_data() {
    let m = mount(10_000);
    let info = Arc::new(SourceInfo::new("audio/mpeg".into(), StreamInfo::default(), ([127, 0, 0, 1], 1).into(), None));
    m.attach_source(info.clone()).unwrap();
    m.push_units(&mut data(1, 10));
    m.push_units(&mut data(2, 10));
    m.detach_source(&info);
    let head = m.head();
    assert!(!head.live);
    assert_eq!(head.seq, 2);
}

#[test]
fn a_second_source_is_refused() {
    let m = mount(0);
    let peer = ([127, 0, 0, 1], 1).into();
    let first = Arc::new(SourceInfo::new("audio/mpeg".into(), StreamInfo::default(), peer, None));
    let second = Arc::new(SourceInfo::new("audio/mpeg".into(), StreamInfo::default(), peer, None));
    m.attach_source(first.clone()).unwrap();
    assert_eq!(m.attach_source(second.clone()), Err(MountBusy));
    m.detach_source(&second);
    assert!(m.is_live(), "detaching a source that is not attached changes nothing");
}

#[test]
fn lag_is_measured_from_the_live_edge() {
    let limits = Limits { queue_size: 4096, delivery_interval: Duration::ZERO, ..Limits::default() };
    let m = MountHandle::new(Arc::new(MountConfig::dynamic("/t")), true, &limits, crate::events::Events::default());
    for i in 0..10 {
        m.push_units(&mut data(i, 1000));
    }
    let mut out = Vec::new();
    assert!(m.read(9, 1 << 20, &mut out).is_ok());
    assert_eq!(m.read(2, 1 << 20, &mut out).unwrap_err(), Lag::TooFar);
    assert_eq!(m.lag_at(10_000 - 4096), Lag::Within);
    assert_eq!(m.lag_at(10_000 - 4097), Lag::TooFar);
}

/// Trim as if `TRIM_INTERVAL` had passed, and report the oldest sequence kept.
fn trim_now(m: &MountHandle) -> u64 {
    let mut stream = m.0.stream.write();
    stream.last_trim = None;
    m.trim(&mut stream, Instant::now());
    stream.ring.first_seq()
}

#[test]
fn ring_keeps_only_what_listeners_and_new_joiners_need() {
    let limits = Limits { delivery_interval: Duration::ZERO, burst_size: 8 * 1024, ..Limits::default() };
    let m = MountHandle::new(Arc::new(MountConfig::dynamic("/t")), true, &limits, crate::events::Events::default());
    for i in 0..64 {
        m.push_units(&mut data(i, 1024));
    }
    // No listeners: only a new joiner's burst (the last 8 KiB) is kept.
    let burst = m.subscribe(0, true).cursor;
    assert_eq!(burst, 56);
    assert_eq!(trim_now(&m), 56);
    assert_eq!(m.subscribe(0, true).cursor, burst, "the burst is unchanged");

    // A listener behind the burst keeps its chunks in the ring.
    let entry = Arc::new(entry_for(1));
    entry.cursor.store(60, Ordering::Relaxed);
    let registration = m.register(entry.clone(), false).unwrap();
    for i in 0..16 {
        m.push_units(&mut data(i, 1024));
    }
    assert_eq!(trim_now(&m), 60, "the slow listener's next chunk is kept");
    let mut out = Vec::new();
    assert_eq!(m.read(60, usize::MAX, &mut out), Ok(80));

    // A listener still subscribing (cursor 0) holds trimming altogether.
    entry.cursor.store(0, Ordering::Relaxed);
    m.push_units(&mut data(9, 1024));
    assert_eq!(trim_now(&m), 60);
    drop(registration);
    assert_eq!(trim_now(&m), m.subscribe(0, true).cursor);
}

#[test]
fn read_copy_joins_chunks_into_one_buffer() {
    let m = mount(0);
    for i in 0..5 {
        m.push_units(&mut data(i, 100));
    }
    let (out, next) = m.read_copy(1, 250).unwrap();
    assert_eq!(next, 3);
    assert_eq!(&out[..], &[[1u8; 100], [2u8; 100]].concat()[..]);
}

/// Listeners asking for the same burst before anything new is published
/// share one copy; a publish makes the next one fresh.
#[test]
fn a_burst_copy_is_shared_until_the_next_publish() {
    let m = mount(0);
    for i in 0..3 {
        m.push_units(&mut data(i, 100));
    }
    let (first, next) = m.read_copy(0, 10_000).unwrap();
    let (second, again) = m.read_copy(0, 10_000).unwrap();
    assert_eq!((next, again), (3, 3));
    assert_eq!(first.as_ptr(), second.as_ptr(), "one copy, shared");
    // Another start, or another size, is another copy.
    assert_eq!(m.read_copy(1, 10_000).unwrap().0.len(), 200);
    assert_eq!(m.read_copy(0, 150).unwrap(), (Bytes::from(vec![0u8; 100]), 1));
    m.push_units(&mut data(3, 100));
    let (third, after) = m.read_copy(0, 10_000).unwrap();
    assert_eq!(after, 4);
    assert_eq!(third.len(), 400, "what was published since is in it");
    // Trimmed from the front (the head unchanged): the copy from 0 is not
    // handed out again; the lag check refuses the cursor.
    m.0.stream.write().ring.trim_before(2);
    assert_eq!(m.read_copy(0, 10_000), Err(Lag::TooFar));
    assert_eq!(m.read_copy(2, 10_000).unwrap(), (Bytes::from([[2u8; 100], [3u8; 100]].concat()), 4));
    // At the head: nothing to copy.
    assert_eq!(m.read_copy(4, 10_000).unwrap(), (Bytes::new(), 4));
}

/// The copy is stale once the ring grows, and counted while kept.
#[test]
fn a_burst_copy_is_counted_and_dropped_when_the_ring_grows() {
    let m = mount(0);
    m.push_units(&mut data(0, 100));
    let before = m.held_bytes();
    m.read_copy(0, 10_000).unwrap();
    assert_eq!(m.held_bytes(), before + 100);
    m.push_units(&mut data(1, 100));
    assert!(!m.0.stream.read().last_burst.holds_one());
}

fn source() -> Arc<SourceInfo> {
    Arc::new(SourceInfo::new("audio/mpeg".into(), StreamInfo::default(), ([127, 0, 0, 1], 1).into(), None))
}

/// A source gone and nobody listening: everything the mount held is released.
#[test]
fn an_ended_stream_without_listeners_is_released() {
    let m = mount(0);
    let info = source();
    m.attach_source(info.clone()).unwrap();
    m.push_units(&mut data(1, 5000));
    m.set_metadata(Metadata::from_song("A title", None));
    assert!(m.held_bytes() > 5000);
    m.read_copy(0, 10_000).unwrap();
    assert!(m.0.stream.read().last_burst.holds_one());
    m.detach_source(&info);
    assert_eq!(m.held_bytes(), 0);
    assert!(!m.0.stream.read().last_burst.holds_one(), "the copied burst goes too");
    assert_eq!(m.metadata().song, "");
}

/// With a listener still draining it, the stream stays until it leaves.
#[test]
fn the_last_listener_leaving_an_ended_stream_releases_it() {
    let m = mount(0);
    let info = source();
    m.attach_source(info.clone()).unwrap();
    m.push_units(&mut data(1, 5000));
    let registration = m.register(Arc::new(entry_for(1)), false).unwrap();
    m.detach_source(&info);
    assert!(m.held_bytes() >= 5000, "kept for the draining listener");
    drop(registration);
    assert_eq!(m.held_bytes(), 0);
}

/// A new source's listeners never get an earlier source's audio as burst.
#[test]
fn a_new_source_starts_a_new_burst() {
    let m = mount(0);
    let first = source();
    m.attach_source(first.clone()).unwrap();
    m.push_units(&mut data(1, 100));
    let _keep = m.register(Arc::new(entry_for(1)), false).unwrap();
    m.detach_source(&first);
    m.attach_source(source()).unwrap();
    let subscription = m.subscribe(2, true);
    assert_eq!(subscription.cursor, m.head().seq, "no burst from the old stream");
}

/// Titles faster than `MIN_TITLE_BYTES` of audio replace one another: one
/// chunk and one title per span, however many the source sends.
#[test]
fn rapid_titles_are_coalesced() {
    let m = mount(10_000);
    m.push_units(&mut data(0, 10));
    for i in 0..1000 {
        m.set_metadata(Metadata::from_song(&format!("title {i}"), None));
        m.push_units(&mut data(1, 1));
    }
    let chunks = read_all(&m);
    let titles: std::collections::HashSet<_> = chunks.iter().map(|c| c.meta.song.clone()).collect();
    assert!(titles.len() <= 2 + 1010 / MIN_TITLE_BYTES as usize, "{} titles kept", titles.len());
    assert_eq!(m.metadata().song, "title 999", "the latest title is current");
}

/// Held-back data is bounded whatever rate the source sends at.
#[test]
fn held_data_is_bounded() {
    let m = mount(10_000);
    m.push_units(&mut data(1, 10));
    for _ in 0..100 {
        m.push_units(&mut data(2, 10_000));
    }
    let held = m.0.stream.read().held.len();
    assert!(held < MAX_HELD, "{held} bytes held");
    assert!(m.held_bytes() <= m.0.stream.read().ring.held() + MAX_HELD + 16);
}

/// A loopback connection: the server's end (to park) and the client's.
async fn socket_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (server, client)
}

/// A parked listener's owner in these tests: what the walk hands back
/// arrives on a channel.
struct ToChannel(tokio::sync::oneshot::Sender<Unparked>);

impl Resume for ToChannel {
    fn resume(self: Box<Self>, back: Unparked) {
        let _ = self.0.send(back);
    }
}

/// A listener `id` at the head of `m`, to park, and where it comes back.
fn to_park(
    m: &MountHandle,
    id: u64,
    sock: std::net::TcpStream,
    icy: Option<usize>,
) -> (Parked, tokio::sync::oneshot::Receiver<Unparked>) {
    let entry = Arc::new(entry_for(id));
    // Caught up: at the head.
    let cursor = m.head().seq;
    entry.cursor.store(cursor, std::sync::atomic::Ordering::Relaxed);
    let (back, returned) = tokio::sync::oneshot::channel();
    let icy = icy.map(|metaint| Box::new(IcyInterleaver::new(metaint)));
    (Parked { entry, sock, icy, owner: Box::new(ToChannel(back)) }, returned)
}

fn parked(
    m: &MountHandle,
    sock: tokio::net::TcpStream,
    icy: Option<usize>,
) -> (Registration, tokio::sync::oneshot::Receiver<Unparked>) {
    let (parked, returned) = to_park(m, 1, sock.into_std().unwrap(), icy);
    let registration = m.register(parked.entry.clone(), true).unwrap();
    assert!(m.park(parked), "a caught-up listener parks");
    (registration, returned)
}

/// A parked listener is written what is published, ICY blocks and all,
/// without its task; when its socket is full it comes back with the rest
/// and the stream position of what it holds; the source leaving hands back
/// the others.
#[tokio::test]
async fn parked_listeners_are_written_and_handed_back() {
    use tokio::io::AsyncReadExt;
    let m = mount(0);
    m.attach_source(source()).unwrap();
    m.set_metadata(Metadata::from_song("T", None));
    m.push_units(&mut data(7, 10));
    let (server, mut client) = socket_pair().await;
    let (registration, mut returned) = parked(&m, server, Some(8));
    m.push_units(&mut data(1, 12));
    let mut got = vec![0u8; 8 + m.metadata().icy_block().len() + 4];
    tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut got)).await.unwrap().unwrap();
    assert_eq!(&got[..8], &[1; 8]);
    assert_eq!(&got[8..got.len() - 4], &m.metadata().icy_block()[..]);
    assert_eq!(&got[got.len() - 4..], &[1; 4]);
    assert!(returned.try_recv().is_err(), "still parked");

    // Nobody reads: the socket fills, and the listener comes back.
    let chunk = 256 * 1024;
    let mut pushed = 0;
    let back = loop {
        m.push_units(&mut data(2, chunk));
        pushed += 1;
        assert!(pushed < 200, "a full socket never handed the listener back");
        match tokio::time::timeout(Duration::from_millis(200), &mut returned).await {
            Ok(back) => break back.unwrap(),
            Err(_) => continue,
        }
    };
    assert!(!back.failed);
    assert!(!back.pending.is_empty(), "what the socket did not take comes back");
    assert!(back.position.is_some());
    assert!(registration.entry().sent.load(std::sync::atomic::Ordering::Relaxed) > 12, "written while parked, counted");

    // The source leaving hands back a listener with nothing pending.
    let (server, _client) = socket_pair().await;
    let (parked, rx) = to_park(&m, 2, server.into_std().unwrap(), None);
    let _second = m.register(parked.entry.clone(), true).unwrap();
    assert!(m.park(parked));
    let info = m.source().unwrap();
    m.detach_source(&info);
    let back = tokio::time::timeout(Duration::from_secs(5), rx).await.unwrap().unwrap();
    assert!(back.pending.is_empty() && !back.failed);
    let (refused, mut rx) = to_park(&m, 3, back.sock, None);
    assert!(!m.park(refused), "nobody parks on a mount without a source");
    assert!(rx.try_recv().is_ok(), "a refused listener is resumed at once");
}

/// Listener `id`'s entry, as the tests' listeners send their requests.
fn entry_for(id: u64) -> ListenerEntry {
    let said = crate::access_log::RequestLine { line: "GET /live HTTP/1.0".into(), referer: None, user_agent: None };
    ListenerEntry::new(id, [127, 0, 0, 1].into(), crate::mount::RequestTexts::of(&said), std::time::Instant::now(), 0)
}

/// A kill is never lost to a move taken at the same time: once killed, a
/// listener stays pending (so it never parks again) whatever `take_move`
/// clears. A move is asked of the mount a listener is on, and forgotten
/// when it leaves that mount.
#[test]
fn a_kill_outlasts_a_taken_move() {
    let (m, other) = (mount(0), mount(0));
    let entry = Arc::new(entry_for(1));
    m.ask_move(&entry, other.clone());
    assert!(!entry.pending(), "not a listener of this mount: nothing asked");
    let registration = m.register(entry.clone(), false).unwrap();
    m.ask_move(&entry, other.clone());
    assert!(entry.pending() && !entry.is_killed());
    assert!(m.take_move(&entry).is_some_and(|to| to.same(&other)));
    assert!(!entry.pending(), "a move taken is no longer pending");
    m.ask_move(&entry, m.clone());
    entry.kill();
    assert!(m.take_move(&entry).is_some());
    assert!(entry.pending() && entry.is_killed(), "the kill is still asked");
    assert!(m.take_move(&entry).is_none());
    assert!(entry.pending());
    m.ask_move(&entry, other.clone());
    drop(registration);
    assert!(m.take_move(&entry).is_none(), "gone from the mount, its move with it");
}
