//! Bad input: every limit answers clearly, and none of it disturbs a live
//! mount's existing listener.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;

/// Send raw bytes and expect a status, then the connection closed.
fn expect_status(server: &TestServer, request: &[u8], status: u16) {
    let response = raw_exchange(server.http, request);
    assert_eq!(
        response.status,
        status,
        "for {:?}: {}",
        String::from_utf8_lossy(&request[..request.len().min(60)]),
        response.head
    );
}

/// Every bad request is refused with the right status while a listener of a
/// live mount keeps receiving an unbroken stream.
#[test]
fn bad_requests_do_not_disturb_listeners() {
    let server = TestServer::start(Opts { limits: "header_timeout = 2\nmax_headers = 16\n", ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/safe.mp3", MP3);
    server.wait_live("/safe.mp3");
    let mut listener = Listener::connect(&server, "/safe.mp3", &[]);
    listener.read_at_least(1000, WAIT);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let mut listener = listener;
        std::thread::spawn(move || {
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                listener.read_for(Duration::from_millis(100));
            }
            (listener.body, started.elapsed())
        })
    };

    // Header line too long, head too large, too many headers: 431, closed.
    let long_line = format!("GET /safe.mp3 HTTP/1.0\r\nX-Long: {}\r\n\r\n", "a".repeat(9000));
    expect_status(&server, long_line.as_bytes(), 431);
    let big_head = format!("GET / HTTP/1.0\r\n{}\r\n", format!("X-Pad: {}\r\n", "b".repeat(7000)).repeat(3));
    expect_status(&server, big_head.as_bytes(), 431);
    let many = format!("GET / HTTP/1.0\r\n{}\r\n", (0..40).map(|i| format!("X-{i}: v\r\n")).collect::<String>());
    expect_status(&server, many.as_bytes(), 431);
    // Malformed request lines.
    expect_status(&server, b"THIS IS NOT HTTP\r\n\r\n", 400);
    expect_status(&server, b"GET / HTTP/7.0\r\n\r\n", 400);
    expect_status(&server, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400);
    // Bad Basic auth encodings on a source: 401 and nothing created.
    for auth in ["Basic %%%notbase64", "Basic bm9jb2xvbg==", "Digest abc", "Basic"] {
        let request = format!("PUT /evil.mp3 HTTP/1.1\r\nAuthorization: {auth}\r\nContent-Type: audio/mpeg\r\n\r\n");
        expect_status(&server, request.as_bytes(), 401);
    }
    // Mount paths with `..` or NUL.
    let dotdot = format!(
        "PUT /a/../safe.mp3 HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\n\r\n",
        basic("source", "hackme")
    );
    expect_status(&server, dotdot.as_bytes(), 400);
    let nul = format!(
        "PUT /a%00b.mp3 HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\n\r\n",
        basic("source", "hackme")
    );
    expect_status(&server, nul.as_bytes(), 400);
    let raw_nul = format!("PUT /a\0b.mp3 HTTP/1.1\r\nAuthorization: {}\r\n\r\n", basic("source", "hackme"));
    expect_status(&server, raw_nul.as_bytes(), 400);
    // A PUT without Content-Type is refused (403), as Icecast does.
    let untyped = format!("PUT /untyped HTTP/1.1\r\nAuthorization: {}\r\n\r\n", basic("source", "hackme"));
    expect_status(&server, untyped.as_bytes(), 403);
    // Unknown methods.
    expect_status(&server, b"DELETE /safe.mp3 HTTP/1.1\r\n\r\n", 405);
    // Slowloris: a head that never completes is cut off after header_timeout.
    let mut slow = TcpStream::connect(server.http).unwrap();
    slow.set_read_timeout(Some(WAIT)).unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /safe.mp3 HTTP/1.1\r\nX-Slow: ").unwrap();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    assert!(started.elapsed() < Duration::from_secs(10), "slow head cut off in time");
    assert_eq!(parse_response(&answer).status, 408);
    // A metadata update longer than 4080 bytes is accepted (and truncated).
    let long = server.admin(&format!("/admin/metadata?mount=/safe.mp3&mode=updinfo&song={}", "x".repeat(5000)));
    assert_eq!(long.status, 200);
    // A broken source (garbage bytes) on another mount.
    let mut garbage = TcpStream::connect(server.http).unwrap();
    write!(garbage, "SOURCE /garbage.mp3 HTTP/1.0\r\nAuthorization: {}\r\n\r\n", basic("source", "hackme")).unwrap();
    garbage.write_all(&[0xAB; 50_000]).unwrap();
    drop(garbage);

    assert!(!server.live_sources().iter().any(|s| s["listenurl"].as_str().unwrap().contains("evil")));
    assert!(server.is_live("/safe.mp3"));
    stop.store(true, Ordering::Relaxed);
    let (body, elapsed) = reader.join().unwrap();
    // No loss: an unbroken chain of MP3 frames at (at least most of) the full rate.
    let contiguous = mp3_frames_contiguous(&body);
    assert!(contiguous + 2000 >= body.len(), "stream broken at byte {contiguous} of {}", body.len());
    assert_full_rate(body.len(), elapsed, 0.8, "the listener");
}
