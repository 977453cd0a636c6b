//! Fault drills, at a size `.ci/run` can afford; larger by environment
//! (`FLOE_DRILL_FLAPS`, `FLOE_DRILL_LISTENERS`, `FLOE_DRILL_CYCLES`,
//! `FLOE_DRILL_IDLERS`). Each checks that ordinary faults cost no listener
//! anything and leave nothing behind.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::sources::sine_mp3;
use crate::support::*;

/// A size from the environment, or the CI default.
fn size(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

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

/// The server's open file descriptors.
fn open_fds(server: &TestServer) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid())).map(|d| d.count()).unwrap_or(0)
}

/// `cycles` listeners of `mount` on four threads, each ending one of the
/// ways a client can: a clean close, a reset, or a half-close (it stops
/// sending, and vanishes only 50 cycles later: a few hundred descriptors at
/// most, whatever the machine's limit).
fn churn(server: &TestServer, mount: &str, cycles: usize) {
    std::thread::scope(|scope| {
        for worker in 0..4 {
            scope.spawn(move || {
                let mut half_closed = std::collections::VecDeque::new();
                for cycle in (worker..cycles).step_by(4) {
                    let mut listener = Listener::connect(server, mount, &[]);
                    listener.read_at_least(1, WAIT);
                    match cycle % 3 {
                        0 => drop(listener),
                        1 => {
                            socket2::SockRef::from(&listener.sock).set_linger(Some(Duration::ZERO)).unwrap();
                            drop(listener);
                        }
                        _ => {
                            listener.sock.shutdown(std::net::Shutdown::Write).unwrap();
                            half_closed.push_back(listener);
                            if half_closed.len() > 50 {
                                half_closed.pop_front();
                            }
                        }
                    }
                }
            });
        }
    });
    eventually("every churned listener is gone", WAIT, || server.mount_stat(mount, "listeners") == 0);
}

/// Listeners come and go many times, ending every way a client can.
/// Afterwards the server holds no more descriptors than before, and a
/// second round leaves its memory within 5 % (or 1 MiB) of where the first
/// left it: whatever one round costs is given back, not kept.
#[test]
fn listener_churn_leaves_nothing_behind() {
    let cycles = size("FLOE_DRILL_CYCLES", 3000);
    let server = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&server, "/churn.mp3", MP3);
    server.wait_live("/churn.mp3");
    let fds_before = open_fds(&server);
    // The first round sizes the allocator's and the runtime's pools.
    churn(&server, "/churn.mp3", cycles);
    eventually("descriptors are back to the start", WAIT, || open_fds(&server) <= fds_before);
    let rss_before = server.rss_kib();
    churn(&server, "/churn.mp3", cycles);
    eventually("descriptors are back to the start again", WAIT, || open_fds(&server) <= fds_before);
    let rss_after = server.rss_kib();
    let allowed = (rss_before / 20).max(1024);
    assert!(
        rss_after <= rss_before + allowed,
        "a second round of {cycles} cycles grew the server from {rss_before} KiB to {rss_after} KiB"
    );
}

/// Slowloris (a header byte a second, never finishing) and idle
/// connections (nothing at all) do not slow the listeners of a live mount,
/// nor stop new requests from being answered; the header timeout closes
/// them all.
#[test]
fn slow_and_idle_connections_cost_listeners_nothing() {
    let (idlers, listeners) = (size("FLOE_DRILL_IDLERS", 300), size("FLOE_DRILL_LISTENERS", 20));
    let server = TestServer::start(Opts { limits: "header_timeout = 4\n", ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let flags = Arc::new(Flags::default());
    let readers: Vec<_> = (0..listeners).map(|_| keep_reading(&server, "/live.mp3", &flags)).collect();
    eventually("the listeners are connected", WAIT, || server.mount_stat("/live.mp3", "listeners") == listeners as u64);

    let idle: Vec<TcpStream> = (0..idlers).map(|_| TcpStream::connect(server.http).unwrap()).collect();
    let mut slow: Vec<TcpStream> = (0..idlers).map(|_| TcpStream::connect(server.http).unwrap()).collect();
    // From here on (their bursts are in) listeners get the stream's own rate.
    flags.mark.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut sent = 0usize;
    // One header byte per connection per second for 3 s (within the timeout).
    for second in 0..3 {
        for sock in &mut slow {
            let _ = sock.write_all(&b"GET / HTTP/1.1\r\nX-Slow: 1"[second..second + 1]);
        }
        sent += 1;
        let status = server.get("/status-json.xsl");
        assert_eq!(status.status, 200, "a request during the flood is answered");
        std::thread::sleep(Duration::from_secs(1));
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
    let window = started.elapsed();
    flags.stop.store(true, Ordering::Relaxed);
    for (n, reader) in readers.into_iter().enumerate() {
        let Reading { body, at_mark, closed } = reader.join().unwrap();
        assert!(!closed, "listener {n} was disconnected");
        // 128 kbit/s through the window, give or take a delivery interval
        // and the source's own jitter.
        let got = body.len() - at_mark;
        let expected = 0.9 * (window.as_secs_f64() - 0.5) * 16_000.0;
        assert!(got as f64 >= expected, "listener {n} got {got} bytes in {window:?}, expected {expected:.0}");
    }
}
