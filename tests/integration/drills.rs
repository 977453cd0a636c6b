//! Fault drills, at a size `.ci/run` can afford; larger by environment
//! (`FLOE_DRILL_FLAPS`, `FLOE_DRILL_LISTENERS`, `FLOE_DRILL_IDLERS` and the
//! others named at each drill; listener churn is in `churn.rs`). Each
//! checks that ordinary faults cost no listener anything and leave nothing
//! behind.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::sources::sine_mp3;
use crate::support::*;

/// What reader threads watch: when to note how much they have (`mark`),
/// and when to stop.
#[derive(Default)]
struct Flags {
    mark: AtomicBool,
    stop: AtomicBool,
}

/// What one listener read.
struct Reading {
    body: Vec<u8>,
    /// Bytes it had when `mark` was set.
    at_mark: usize,
    /// The server closed it before `stop`.
    closed: bool,
}

/// A listener read on a thread of its own until `flags.stop`.
fn keep_reading(server: &TestServer, path: &str, flags: &Arc<Flags>) -> JoinHandle<Reading> {
    let mut listener = Listener::connect(server, path, &[]);
    let flags = flags.clone();
    std::thread::spawn(move || {
        listener.sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        let mut at_mark = None;
        let closed = loop {
            if flags.stop.load(Ordering::Relaxed) {
                break false;
            }
            if at_mark.is_none() && flags.mark.load(Ordering::Relaxed) {
                at_mark = Some(listener.body.len());
            }
            match listener.sock.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => listener.body.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => break true,
            }
        };
        Reading { at_mark: at_mark.unwrap_or(0), body: listener.body, closed }
    })
}

/// Listeners of one mount, each read on its own thread, for checking that
/// they keep up with the source while a drill does its worst.
struct Steady {
    mount: String,
    flags: Arc<Flags>,
    readers: Vec<JoinHandle<Reading>>,
    /// What the mount's source had sent when the readers noted theirs.
    read_at_mark: u64,
}

impl Steady {
    /// `n` listeners of `mount`, connected.
    fn connect(server: &TestServer, mount: &str, n: usize) -> Steady {
        let flags = Arc::new(Flags::default());
        let readers: Vec<_> = (0..n).map(|_| keep_reading(server, mount, &flags)).collect();
        eventually("the listeners are connected", WAIT, || server.mount_stat(mount, "listeners") == n as u64);
        Steady { mount: mount.to_string(), flags, readers, read_at_mark: 0 }
    }

    /// From here on (their bursts are in) count what they get.
    fn mark(&mut self, server: &TestServer) {
        self.read_at_mark = server.mount_stat(&self.mount, "total_bytes_read");
        self.flags.mark.store(true, Ordering::Relaxed);
    }

    /// Stop the readers and check that none was disconnected and each got
    /// everything the source sent since `mark` (less a second of it: a
    /// delivery interval, a partial frame, the readers' own timing),
    /// `beside` whatever the drill did. Measured against the source, not
    /// the clock, so a source slowed by a busy machine is no failure.
    fn check(self, server: &TestServer, beside: &str) {
        let sent = server.mount_stat(&self.mount, "total_bytes_read") - self.read_at_mark;
        self.flags.stop.store(true, Ordering::Relaxed);
        assert!(sent > 16_000, "the source sent {sent} bytes");
        for (n, reader) in self.readers.into_iter().enumerate() {
            let Reading { body, at_mark, closed } = reader.join().unwrap();
            assert!(!closed, "listener {n} was disconnected");
            let got = (body.len() - at_mark) as u64;
            assert!(
                got + 16_000 >= sent,
                "listener {n} got {got} of the {sent} bytes the source sent, beside {beside}"
            );
        }
    }
}

/// ffmpeg's complaints decoding `mp3` (empty when it decodes cleanly).
fn decode_errors(server: &TestServer, name: &str, mp3: &[u8]) -> String {
    let path = server.dir().join(name);
    std::fs::write(&path, mp3).unwrap();
    let out = run_bounded(
        std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
            .arg(&path)
            .args(["-f", "null", "-"]),
        Duration::from_secs(60),
    );
    out.stderr
}

/// A live source comes and goes again and again while listeners stay: they
/// wait on the fallback and come back with `fallback_override`, nobody is
/// disconnected, and every listener's stream decodes cleanly across every
/// switch.
#[test]
fn source_flaps_cost_listeners_nothing() {
    let (flaps, listeners) = (size("FLOE_DRILL_FLAPS", 10), size("FLOE_DRILL_LISTENERS", 40));
    let server = TestServer::with_mounts(
        "[[mount]]\nname = \"/live.mp3\"\nfallback_mount = \"/backup.mp3\"\nfallback_override = true\n",
    );
    let _backup = FfmpegSource::sine(&server, "/backup.mp3", MP3);
    server.wait_live("/backup.mp3");
    let mp3 = sine_mp3(&server, 3);
    let head = format!(
        "PUT /live.mp3 HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\n\r\n",
        basic("source", "hackme")
    );
    let flags = Arc::new(Flags::default());
    let readers: Vec<_> = (0..listeners).map(|_| keep_reading(&server, "/live.mp3", &flags)).collect();
    eventually("every listener waits on the fallback", WAIT, || server.listener_ids("/backup.mp3").len() == listeners);
    for flap in 0..flaps {
        let mut source = open_source(&server, &head);
        source.write_all(&mp3).unwrap();
        eventually(&format!("flap {flap}: everyone is back on the live mount"), WAIT, || {
            server.listener_ids("/live.mp3").len() == listeners
        });
        drop(source);
        eventually(&format!("flap {flap}: everyone is on the fallback"), WAIT, || {
            server.listener_ids("/backup.mp3").len() == listeners
        });
    }
    flags.stop.store(true, Ordering::Relaxed);
    for (n, reader) in readers.into_iter().enumerate() {
        let Reading { body, closed, .. } = reader.join().unwrap();
        assert!(!closed, "listener {n} was disconnected");
        let errors = decode_errors(&server, &format!("listener-{n}.mp3"), &body);
        assert!(
            errors.trim().is_empty(),
            "listener {n}'s stream ({} bytes) decodes with errors:\n{errors}",
            body.len()
        );
    }
}

/// Slowloris (a header byte every `FLOE_DRILL_SLOW_EVERY_S` seconds, 1 in
/// CI, never finishing) and idle connections (nothing at all) do not slow
/// the listeners of a live mount, nor stop new requests from being answered;
/// the header timeout (three bytes' time and a second) closes them all.
#[test]
fn slow_and_idle_connections_cost_listeners_nothing() {
    let (idlers, listeners) = (size("FLOE_DRILL_IDLERS", 300), size("FLOE_DRILL_LISTENERS", 20));
    let every = Duration::from_secs(size("FLOE_DRILL_SLOW_EVERY_S", 1) as u64);
    // Leaked: the options are `'static`, and this is one short string per test run.
    let limits = format!("header_timeout = {}\n", every.as_secs() * 3 + 1).leak();
    let server = TestServer::start(Opts { limits, ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let mut steady = Steady::connect(&server, "/live.mp3", listeners);

    let idle: Vec<TcpStream> = (0..idlers).map(|_| TcpStream::connect(server.http).unwrap()).collect();
    let mut slow: Vec<TcpStream> = (0..idlers).map(|_| TcpStream::connect(server.http).unwrap()).collect();
    steady.mark(&server);
    let mut sent = 0usize;
    // One header byte per connection every `every`, three times (within the timeout).
    for byte in 0..3 {
        for sock in &mut slow {
            let _ = sock.write_all(&b"GET / HTTP/1.1\r\nX-Slow: 1"[byte..byte + 1]);
        }
        sent += 1;
        let status = server.get("/status-json.xsl");
        assert_eq!(status.status, 200, "a request during the flood is answered");
        std::thread::sleep(every);
    }
    assert_eq!(sent, 3);
    // The timeout closes every one of them (reading gives EOF or a 408).
    for mut sock in idle.into_iter().chain(slow) {
        sock.set_read_timeout(Some(WAIT)).unwrap();
        let mut rest = Vec::new();
        let ended = sock.read_to_end(&mut rest);
        let timed_out = ended
            .as_ref()
            .is_err_and(|e| matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
        assert!(!timed_out, "the header timeout closes a connection that never finishes its head");
        assert!(rest.is_empty() || rest.starts_with(b"HTTP/1.1 408") || rest.starts_with(b"HTTP/1.0 408"), "{rest:?}");
    }
    steady.check(&server, &format!("{idlers} slow and {idlers} idle connections"));
}

/// A thousand title updates a second (an automation system gone wrong, or
/// someone with the source password; unpaced by
/// `FLOE_DRILL_TITLES_UNPACED`) never stall the mount's listeners: they keep
/// full rate and see the titles.
#[test]
fn a_title_flood_does_not_stall_listeners() {
    let server = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let mut steady = Steady::connect(&server, "/live.mp3", 10);
    steady.mark(&server);
    let started = Instant::now();
    let auth = basic("admin", "hackme");
    let updates = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let (auth, updates, server) = (&auth, &updates, &server);
            scope.spawn(move || {
                let mut n = worker;
                while started.elapsed() < Duration::from_secs(3) {
                    let path = format!("/admin/metadata?mount=/live.mp3&mode=updinfo&song=Flood+{n}");
                    let head = format!("GET {path} HTTP/1.0\r\nAuthorization: {auth}\r\n\r\n");
                    assert_eq!(raw_exchange(server.http, head.as_bytes()).status, 200);
                    let done = updates.fetch_add(1, Ordering::Relaxed) + 1;
                    n += 4;
                    // A thousand a second across the four threads (unpaced by
                    // `FLOE_DRILL_TITLES_UNPACED`, ~12,000 a second here).
                    if std::env::var_os("FLOE_DRILL_TITLES_UNPACED").is_none() {
                        let due = Duration::from_secs_f64(done as f64 / 1000.0);
                        std::thread::sleep(due.saturating_sub(started.elapsed()));
                    }
                }
            });
        }
    });
    let window = started.elapsed();
    let sent = updates.load(Ordering::Relaxed);
    let title = server.live_sources()[0]["title"].as_str().unwrap_or("").to_string();
    assert!(title.starts_with("Flood "), "the titles arrived: {title}");
    steady.check(&server, &format!("{sent} title updates"));
    println!("{sent} title updates in {window:?}");
}

/// CPU time the server has used, in clock ticks (user + system).
fn cpu_ticks(server: &TestServer) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.pid())).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    fields.get(11).zip(fields.get(12)).map_or(0, |(u, s)| u.parse::<u64>().unwrap_or(0) + s.parse::<u64>().unwrap_or(0))
}

/// Out of descriptors (EMFILE): the accept loop backs off instead of
/// spinning, the listeners already streaming keep their stream, and the
/// server recovers by itself once descriptors are free again.
#[test]
fn running_out_of_descriptors_is_survived() {
    let server = TestServer::start(Opts { fd_limit: Some(96), limits: "header_timeout = 60\n", ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let flags = Arc::new(Flags::default());
    let reader = keep_reading(&server, "/live.mp3", &flags);
    // Connections that say nothing hold descriptors until the server has none.
    let hogs: Vec<TcpStream> = (0..150).filter_map(|_| TcpStream::connect(server.http).ok()).collect();
    eventually("the server runs out of descriptors", WAIT, || server.log().contains("accept failed"));
    let before = cpu_ticks(&server);
    // A measuring window, not a wait for an event: how much CPU two
    // seconds without descriptors cost.
    std::thread::sleep(Duration::from_secs(2));
    let spent = cpu_ticks(&server) - before;
    assert!(spent < 50, "the accept loop spun: {spent} ticks of CPU in 2 s without descriptors");
    drop(hogs);
    eventually("new requests are answered again", WAIT, || {
        TcpStream::connect(server.http).is_ok() && server.get("/status-json.xsl").status == 200
    });
    flags.stop.store(true, Ordering::Relaxed);
    let Reading { body, closed, .. } = reader.join().unwrap();
    assert!(!closed && body.len() > 16_000, "the listener streamed throughout ({} bytes)", body.len());
}

/// A source pushing a hundred times its bitrate (or, by
/// `FLOE_DRILL_RUNAWAY=0`, as fast as loopback allows) does not starve
/// another mount's listeners.
#[test]
fn a_runaway_source_does_not_starve_other_mounts() {
    let server = TestServer::start(Opts::default());
    let _steady = FfmpegSource::sine(&server, "/steady.mp3", MP3);
    server.wait_live("/steady.mp3");
    let mp3 = sine_mp3(&server, 10);
    let head = format!(
        "PUT /runaway.mp3 HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\n\r\n",
        basic("source", "hackme")
    );
    let mut steady = Steady::connect(&server, "/steady.mp3", 10);
    let mut runaway = open_source(&server, &head);
    steady.mark(&server);
    let started = Instant::now();
    // A hundred times its 128 kbit/s (1.6 MB/s): what the drill
    // asks, and not so much that it starves the rest of a busy CI machine.
    // `FLOE_DRILL_RUNAWAY` multiplies it (0 = as fast as loopback allows).
    let times = size("FLOE_DRILL_RUNAWAY", 1);
    let mut pushed = 0usize;
    let mut cycle = mp3.chunks(160_000).cycle();
    while started.elapsed() < Duration::from_secs(4) {
        let piece = cycle.next().unwrap();
        if runaway.write_all(piece).is_err() {
            break;
        }
        pushed += piece.len();
        if times > 0 {
            let due = Duration::from_secs_f64(pushed as f64 / (1_600_000.0 * times as f64));
            std::thread::sleep(due.saturating_sub(started.elapsed()));
        }
    }
    let window = started.elapsed();
    steady.check(&server, &format!("a source pushing {pushed} bytes"));
    println!("the runaway source pushed {} MB in {window:?}", pushed >> 20);
}

/// Garbage for every codec at once — an MP3 stream of frames decoding far
/// past full scale cut with junk, ADTS headers over random payloads, a
/// Vorbis setup header asking for gigabytes, Ogg Opus and Ogg FLAC streams
/// whose every audio packet is noise — on mounts with renditions, while
/// another mount's listeners get everything their source sends.
#[test]
fn codec_garbage_costs_other_mounts_nothing() {
    let server = TestServer::with_mounts(
        "[[mount]]\nname = \"/g.mp3\"\n[[mount.transcode]]\nname = \"/g.opus\"\ncodec = \"opus\"\nbitrate = 48\n\
         [[mount]]\nname = \"/g.aac\"\n[[mount.transcode]]\nname = \"/g-aac.mp3\"\ncodec = \"mp3\"\nbitrate = 64\n\
         [[mount]]\nname = \"/g.ogg\"\n[[mount.transcode]]\nname = \"/g-ogg.mp3\"\ncodec = \"mp3\"\nbitrate = 64\n\
         [[mount]]\nname = \"/in.opus\"\n[[mount.transcode]]\nname = \"/in-opus.mp3\"\ncodec = \"mp3\"\nbitrate = 64\n\
         [[mount]]\nname = \"/in.oga\"\n[[mount.transcode]]\nname = \"/in-flac.mp3\"\ncodec = \"mp3\"\nbitrate = 64\n",
    );
    let _steady = FfmpegSource::sine(&server, "/steady.mp3", MP3);
    server.wait_live("/steady.mp3");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut junk = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    // Loud frames, cut every 20 KB by 2 KB of junk.
    let loud = hostile::loud_mp3(&sine_mp3(&server, 8), 255);
    let mut mp3 = Vec::new();
    for piece in loud.chunks(20_000) {
        mp3.extend_from_slice(piece);
        mp3.extend(junk(2_000));
    }
    // Every ADTS frame's payload replaced by noise, its header kept.
    let aac_path = ffmpeg_make(&server, "garbage.aac", "sine=frequency=440:duration=8", &["-c:a", "aac", "-f", "adts"]);
    let mut aac = std::fs::read(aac_path).unwrap();
    let mut at = 0;
    while at + 7 <= aac.len() && aac[at] == 0xFF && aac[at + 1] & 0xF0 == 0xF0 {
        let len =
            ((usize::from(aac[at + 3]) & 3) << 11) | (usize::from(aac[at + 4]) << 3) | (usize::from(aac[at + 5]) >> 5);
        let end = (at + len.max(7)).min(aac.len());
        let noise = junk(end - at - 7);
        aac[at + 7..end].copy_from_slice(&noise);
        at = end;
    }
    let ogg_path =
        ffmpeg_make(&server, "garbage.ogg", "sine=frequency=440:duration=8", &["-c:a", "libvorbis", "-f", "ogg"]);
    let ogg = hostile::vorbis_with_codebooks(&std::fs::read(ogg_path).unwrap(), &[(8, 1 << 20); 4]);
    let opus_path =
        ffmpeg_make(&server, "garbage.opus", "sine=frequency=440:duration=8", &["-c:a", "libopus", "-f", "ogg"]);
    let opus = hostile::ogg_with_garbage_packets(&std::fs::read(opus_path).unwrap(), &mut junk);
    let flac_path =
        ffmpeg_make(&server, "garbage.oga", "sine=frequency=440:duration=4", &["-c:a", "flac", "-f", "ogg"]);
    let flac = hostile::ogg_with_garbage_packets(&std::fs::read(flac_path).unwrap(), &mut junk);

    let mut steady = Steady::connect(&server, "/steady.mp3", 10);
    steady.mark(&server);
    // Bytes a listener of the Opus mount's rendition got (none until it has looked).
    let decoded = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for (mount, content_type, body) in [
            ("/g.mp3", "audio/mpeg", &mp3),
            ("/g.aac", "audio/aac", &aac),
            ("/g.ogg", "audio/ogg", &ogg),
            ("/in.opus", "audio/ogg", &opus),
            ("/in.oga", "audio/ogg", &flac),
        ] {
            let (server, decoded) = (&server, &decoded);
            scope.spawn(move || {
                let head = format!(
                    "PUT {mount} HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: {content_type}\r\n\r\n",
                    basic("source", "hackme")
                );
                let mut source = open_source(server, &head);
                // Twice real time, so the codecs work through all of it.
                for piece in body.chunks(32_000) {
                    if source.write_all(piece).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1000));
                }
                // libopus decodes noise (as sound): it went through the decoder into the
                // rendition, read while the source is still here. (Ogg FLAC's noise goes
                // no further than the Ogg reader's FLAC mapping, which skips a packet
                // that is no FLAC frame.)
                if mount == "/in.opus" {
                    let mut rendition = Listener::connect(server, "/in-opus.mp3", &[]);
                    decoded.store(rendition.read_at_least(1_000, WAIT).len(), Ordering::Relaxed);
                }
            });
        }
    });
    steady.check(&server, "garbage for MP3, AAC, Vorbis, Opus and FLAC decoders");
    assert!(decoded.into_inner() >= 1_000, "Opus noise decoded: {}", server.log());
    assert!(server.is_live("/steady.mp3"));
    // The garbage did reach the codecs: the hostile Vorbis header ended its renditions.
    assert!(server.server_stat("transcode_failures") >= 1, "{}", server.log());
    assert_eq!(server.get("/status-json.xsl").status, 200, "the server answers: {}", server.log());
}

/// Every class of connection has a cap, and reaching one costs the others
/// nothing: sources (`sources`, on the HTTP and the SHOUTcast port alike),
/// listeners (`clients`), and connections of any kind (`connections`, on
/// every port: one over is closed at once, unanswered). A listener streams
/// on throughout, and the server answers again once connections close.
#[test]
fn every_connection_class_has_a_cap() {
    let server = TestServer::start(Opts { limits: "clients = 2\nsources = 1\nconnections = 8\n", ..Opts::default() });
    // Connection 1 of 8, source 1 of 1.
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    // Connection 2, listener 1 of 2.
    let mut steady = Steady::connect(&server, "/live.mp3", 1);
    steady.mark(&server);

    let put = format!(
        "PUT /other.mp3 HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\n\r\n",
        basic("source", "hackme")
    );
    let refused = raw_exchange(server.http, put.as_bytes());
    assert_eq!((refused.status, refused.text().trim()), (503, "too many sources"));
    let mut shout = TcpStream::connect(server.shoutcast).unwrap();
    shout.set_read_timeout(Some(WAIT)).unwrap();
    shout.write_all(b"hackme\r\nicy-name:Over\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = shout.read_to_end(&mut answer);
    assert!(answer.starts_with(b"OK2"), "{answer:?}");
    assert!(!server.is_live("/stream"), "the SHOUTcast source was let go, not attached");

    // Connection 3, listener 2 of 2; a third listener is turned away.
    let mut second = Listener::connect(&server, "/live.mp3", &[]);
    second.read_at_least(1000, WAIT);
    let full = server.get("/live.mp3");
    assert_eq!((full.status, full.text().trim()), (503, "Server full: too many listeners"));

    // Connections 4 to 8 say nothing; the ninth, on either port, is closed.
    let hogs: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(server.http).unwrap()).collect();
    eventually("a connection over the cap is closed unanswered", WAIT, || {
        let mut sock = TcpStream::connect(server.http).unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        let _ = sock.write_all(b"GET /status-json.xsl HTTP/1.0\r\n\r\n");
        let mut data = Vec::new();
        let _ = sock.read_to_end(&mut data);
        data.is_empty()
    });
    let mut shout = TcpStream::connect(server.shoutcast).unwrap();
    shout.set_read_timeout(Some(WAIT)).unwrap();
    let _ = shout.write_all(b"hackme\r\n");
    let mut answer = Vec::new();
    let _ = shout.read_to_end(&mut answer);
    assert!(answer.is_empty(), "the SHOUTcast port is under the same cap: {answer:?}");
    // Two seconds of audio go out while every cap is reached.
    let held = second.body.len();
    second.read_at_least(held + 32_000, WAIT);

    drop(hogs);
    eventually("requests are answered again", WAIT, || server.get("/status-json.xsl").status == 200);
    steady.check(&server, "every cap reached");
}
