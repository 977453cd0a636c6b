//! Listener behaviour: late joiners, slow listeners, fallback, limits,
//! playlists and the HTTP details players depend on.

use std::time::{Duration, Instant};

use crate::support::*;

/// A listener joining 10 s into an Ogg Opus stream gets the header pages
/// first and decodes from its first byte.
#[test]
fn ogg_late_joiner_decodes_from_first_byte() {
    let server = TestServer::start(Opts::default());
    // 4× real time: 10 s of audio are in after about 2.5 s.
    let _source = FfmpegSource::start(&server, "/late.opus", OPUS, "sine=frequency=440:sample_rate=48000", "4", &[]);
    server.wait_live("/late.opus");
    eventually("10 s of audio were streamed", WAIT, || {
        server.admin("/admin/stats.json").text().contains("\"total_bytes_read\"")
            && bytes_read(&server, "/late.opus") > 10 * 12_000
    });
    let mut listener = Listener::connect(&server, "/late.opus", &[]);
    listener.read_at_least(30_000, WAIT);
    assert!(listener.body.starts_with(b"OggS"), "starts on a page");
    assert_eq!(listener.body[5] & 0x02, 0x02, "first page is a BOS page");
    assert!(find(&listener.body[..200], b"OpusHead").is_some(), "OpusHead comes first");
    let path = server.dir().join("late.opus");
    std::fs::write(&path, &listener.body).unwrap();
    let errors = ffmpeg_decode(path.to_str().unwrap(), 60);
    assert!(errors.trim().is_empty(), "decode errors: {errors}");
}

fn bytes_read(server: &TestServer, mount: &str) -> u64 {
    let json: serde_json::Value = serde_json::from_slice(&server.admin("/admin/stats.json").body).unwrap();
    json["icestats"]["source"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["mount"] == mount))
        .and_then(|s| s["total_bytes_read"].as_u64())
        .unwrap_or(0)
}

fn stat(server: &TestServer, name: &str) -> u64 {
    let json: serde_json::Value = serde_json::from_slice(&server.admin("/admin/stats.json").body).unwrap();
    json["icestats"][name].as_u64().unwrap_or(0)
}

/// A listener that stops reading is dropped once it is `queue_size` behind and
/// counted as slow, while a listener reading normally keeps the full rate.
#[test]
fn slow_listener_dropped_fast_listener_unaffected() {
    let server = TestServer::start(Opts { limits: "queue_size = 65536\nburst_size = 16384\n", ..Opts::default() });
    // 4× real time = 64 KB/s: the queue limit is crossed within seconds.
    let _source = FfmpegSource::start(&server, "/rate.mp3", MP3, "sine=frequency=440:sample_rate=44100", "4", &[]);
    server.wait_live("/rate.mp3");
    let slow = slow_reader(&server, "/rate.mp3");
    let mut fast = Listener::connect(&server, "/rate.mp3", &[]);
    let start = Instant::now();
    let read_before = bytes_read(&server, "/rate.mp3");
    eventually("the slow listener is dropped", WAIT, || {
        fast.read_for(Duration::from_millis(100));
        stat(&server, "slow_listeners") == 1
    });
    fast.read_for(Duration::from_secs(2));
    let produced = bytes_read(&server, "/rate.mp3") - read_before;
    let elapsed = start.elapsed();
    assert!(
        fast.body.len() as u64 + 40_000 >= produced,
        "fast listener got {} of {produced} bytes in {elapsed:?}",
        fast.body.len()
    );
    assert_eq!(server.listener_ids("/rate.mp3").len(), 1, "only the fast listener remains");
    drop(slow);
    assert!(mp3_frames_contiguous(&fast.body) + 2000 >= fast.body.len());
}

/// A socket with a tiny receive window that never reads.
fn slow_reader(server: &TestServer, path: &str) -> std::net::TcpStream {
    use std::io::Write;
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.http.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    stream
}

/// Listeners move to the fallback mount when the source leaves, without being
/// disconnected, and back when it returns (`fallback_override`).
#[test]
fn fallback_move_and_return() {
    let server = TestServer::start(Opts {
        rest: "[[mount]]\nname = \"/main.mp3\"\nfallback_mount = \"/backup.mp3\"\nfallback_override = true\n\
               [[mount]]\nname = \"/backup.mp3\"\n",
        ..Opts::default()
    });
    let _backup = FfmpegSource::sine(&server, "/backup.mp3", MP3);
    let mut main = FfmpegSource::sine(&server, "/main.mp3", MP3);
    server.wait_live("/backup.mp3");
    server.wait_live("/main.mp3");
    let mut listener = Listener::connect(&server, "/main.mp3", &[]);
    listener.read_at_least(20_000, WAIT);
    let id = server.listener_ids("/main.mp3")[0];
    main.stop();
    eventually("the listener is on the backup", WAIT, || {
        listener.read_for(Duration::from_millis(100));
        server.listener_ids("/backup.mp3") == vec![id]
    });
    let before = listener.body.len();
    listener.read_at_least(before + 16_000, WAIT);
    let _main_again = FfmpegSource::sine(&server, "/main.mp3", MP3);
    eventually("the listener is back on main", WAIT, || {
        listener.read_for(Duration::from_millis(100));
        server.listener_ids("/main.mp3") == vec![id]
    });
    let before = listener.body.len();
    listener.read_at_least(before + 16_000, WAIT);
    assert!(server.listener_ids("/backup.mp3").is_empty());
}

/// `max_listeners` answers a clear 503, not a dropped socket; unknown mounts 404.
#[test]
fn listener_limits_and_unknown_mounts() {
    let server =
        TestServer::start(Opts { rest: "[[mount]]\nname = \"/one.mp3\"\nmax_listeners = 1\n", ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/one.mp3", MP3);
    server.wait_live("/one.mp3");
    let mut first = Listener::connect(&server, "/one.mp3", &[]);
    first.read_at_least(1000, WAIT);
    let second = server.get("/one.mp3");
    assert_eq!(second.status, 503, "{}", second.head);
    assert!(second.text().contains("too many listeners"));
    assert_eq!(server.get("/nothing.mp3").status, 404);
    first.read_at_least(first.body.len() + 16_000, WAIT);
}

/// Global `clients` cap: the listener over the cap gets 503.
#[test]
fn global_client_limit() {
    let server = TestServer::start(Opts { limits: "clients = 1\n", ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/cap.mp3", MP3);
    server.wait_live("/cap.mp3");
    let mut first = Listener::connect(&server, "/cap.mp3", &[]);
    first.read_at_least(1000, WAIT);
    assert_eq!(server.get("/cap.mp3").status, 503);
}

/// Response head details: raw close-delimited HTTP/1.0 body, icy-* and CORS
/// headers, `HEAD` without a body, and the CORS preflight.
#[test]
fn stream_head_and_cors() {
    let server = TestServer::start(Opts::default());
    let mut source = std::net::TcpStream::connect(server.http).unwrap();
    use std::io::Write;
    write!(
        source,
        "PUT /head.mp3 HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\nice-name: Head Radio\r\n\
         ice-genre: Jazz\r\nice-url: http://example.org\r\nice-public: 1\r\nice-bitrate: 128\r\n\
         ice-description: Testing\r\n\r\n",
        basic("source", "hackme")
    )
    .unwrap();
    server.wait_live("/head.mp3");
    let head = server.request("HEAD", "/head.mp3", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for (name, value) in [
        ("Content-Type", "audio/mpeg"),
        ("icy-name", "Head Radio"),
        ("icy-genre", "Jazz"),
        ("icy-url", "http://example.org"),
        ("icy-pub", "1"),
        ("icy-br", "128"),
        ("icy-description", "Testing"),
        ("Access-Control-Allow-Origin", "*"),
    ] {
        assert_eq!(head.header(name).as_deref(), Some(value), "{name} in {}", head.head);
    }
    assert!(head.header("Cache-Control").is_some_and(|c| c.contains("no-cache")));
    assert!(head.header("Access-Control-Expose-Headers").is_some_and(|c| c.contains("icy-metaint")));
    let preflight = server.request(
        "OPTIONS",
        "/head.mp3",
        &[("Origin", "http://player.example"), ("Access-Control-Request-Headers", "icy-metadata")],
    );
    assert!(preflight.status == 200 || preflight.status == 204);
    assert!(preflight.header("Access-Control-Allow-Headers").is_some_and(|h| h.contains("Icy-MetaData")));
    assert_eq!(preflight.header("Access-Control-Allow-Origin").as_deref(), Some("*"));
    // A reverse proxy's `?_ic2=1` does not change the mount.
    assert_eq!(server.request("HEAD", "/head.mp3?_ic2=1", &[]).status, 200);
}

/// `.m3u`, `.pls` and `.xspf` point at the stream URL.
#[test]
fn playlists() {
    let server = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&server, "/pl.mp3", MP3);
    server.wait_live("/pl.mp3");
    let url = format!("http://127.0.0.1:{}/pl.mp3", server.http.port());
    let m3u = server.get("/pl.mp3.m3u");
    assert_eq!(m3u.header("Content-Type").as_deref(), Some("audio/x-mpegurl"));
    assert!(m3u.text().lines().any(|l| l == url));
    assert!(server.get("/pl.mp3.pls").text().contains(&format!("File1={url}")));
    assert!(server.get("/pl.mp3.xspf").text().contains(&format!("<location>{url}</location>")));
    // curl, as a user would fetch it.
    let out = run_bounded(
        std::process::Command::new("curl").args(["-sS", "--max-time", "10", &server.url("/pl.mp3.m3u")]),
        Duration::from_secs(15),
    );
    assert!(out.status_ok && out.stdout.contains(&url), "{}", out.stderr);

    // A listener on another machine reaches the server by the name it used.
    let with_host = |path: &str, host: &str| {
        raw_exchange(server.http, format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
    };
    let remote = with_host("/pl.mp3.m3u", "radio.example:8123");
    assert!(remote.text().lines().any(|l| l == "http://radio.example:8123/pl.mp3"), "{}", remote.text());
    // A Host that could not be a URL's authority falls back to the configured name.
    let odd = with_host("/pl.mp3.pls", "evil.example/x?y");
    assert!(odd.text().contains(&format!("File1={url}")), "{}", odd.text());
    // .xspf carries what is playing now.
    assert_eq!(server.admin("/admin/metadata?mount=/pl.mp3&mode=updinfo&song=Now%20%26%20Then").status, 200);
    assert!(server.get("/pl.mp3.xspf").text().contains("<annotation>Now &amp; Then</annotation>"));
}

/// A mount's intro plays to each new listener before the live stream: the
/// listener hears the intro's 880 Hz, then the source's 440 Hz.
#[test]
fn new_listeners_hear_the_intro_first() {
    let dir = tempfile::tempdir().unwrap();
    let intro = dir.path().join("intro.mp3");
    let out = run_bounded(
        std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=44100:duration=2"])
            .args(["-c:a", "libmp3lame", "-b:a", "128k"])
            .arg(&intro),
        WAIT,
    );
    assert!(out.status_ok, "{}", out.stderr);
    let rest: &'static str =
        Box::leak(format!("[[mount]]\nname = \"/live.mp3\"\nintro = \"{}\"\n", intro.display()).into_boxed_str());
    let server = TestServer::start(Opts { rest, limits: "burst_size = 0\n", ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let heard = decode_mono_16k_for(&server.url("/live.mp3"), 5);
    assert!(heard.len() > 4 * 16000, "{} samples", heard.len());
    let first = tone_frequency_of(&heard[..24000]);
    let last = tone_frequency_of(&heard[heard.len() - 24000..]);
    assert!((860.0..900.0).contains(&first), "the intro first: {first} Hz");
    assert!((430.0..450.0).contains(&last), "then the live stream: {last} Hz");
}
