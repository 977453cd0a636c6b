//! Source protocols with real source clients, checked by real decoders.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::support::*;

/// ffprobe a few seconds of a mount into a file and return its stream description.
fn probe_mount(server: &TestServer, mount: &str) -> serde_json::Value {
    let mut listener = Listener::connect(server, mount, &[]);
    listener.read_at_least(24 * 1024, WAIT);
    let path = server.dir().join(format!("probe{}", mount.replace('/', "_")));
    std::fs::write(&path, &listener.body).unwrap();
    ffprobe(path.to_str().unwrap())
}

fn check_codec(codec: Codec, mount: &str, expected_codec: &str, extra: &[&str]) {
    let server = TestServer::start(Opts::default());
    let _source = FfmpegSource::start(&server, mount, codec, "sine=frequency=440:sample_rate=44100", "1", extra);
    server.wait_live(mount);
    let stream = probe_mount(&server, mount);
    assert_eq!(stream["codec_name"], expected_codec, "{stream}");
    let rate = if expected_codec == "opus" { "48000" } else { "44100" };
    assert_eq!(stream["sample_rate"], rate, "{stream}");
    let errors = ffmpeg_decode(&server.url(mount), 3);
    assert!(errors.trim().is_empty(), "decode errors on {mount}: {errors}\n{}", server.log());
}

/// ffmpeg's `icecast://` (HTTP PUT with Expect: 100-continue) MP3 source decodes cleanly.
#[test]
fn ffmpeg_put_mp3() {
    check_codec(MP3, "/live.mp3", "mp3", &[]);
}

/// ffmpeg with `-legacy_icecast 1` (the SOURCE method) works the same.
#[test]
fn ffmpeg_legacy_source_mp3() {
    check_codec(MP3, "/legacy.mp3", "mp3", &["-legacy_icecast", "1"]);
}

/// Ogg Opus source: listeners get the headers and decode Opus at 48 kHz.
#[test]
fn ffmpeg_ogg_opus() {
    check_codec(OPUS, "/live.opus", "opus", &[]);
}

/// Ogg Vorbis source decodes as Vorbis at the sent rate.
#[test]
fn ffmpeg_ogg_vorbis() {
    check_codec(VORBIS, "/live.ogg", "vorbis", &[]);
}

/// AAC in ADTS decodes as AAC.
#[test]
fn ffmpeg_aac_adts() {
    check_codec(AAC, "/live.aac", "aac", &[]);
}

/// Wrong credentials get 401 with a Basic challenge, and no mount appears.
#[test]
fn wrong_password_is_refused_and_creates_nothing() {
    let server = TestServer::start(Opts::default());
    let response = raw_exchange(
        server.http,
        format!(
            "PUT /nope.mp3 HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\n\r\n",
            basic("source", "wrong")
        )
        .as_bytes(),
    );
    assert_eq!(response.status, 401);
    assert!(response.header("WWW-Authenticate").is_some_and(|h| h.starts_with("Basic")));
    // libshout's first try carries no credentials at all: same answer.
    let response = raw_exchange(server.http, b"SOURCE /nope.mp3 HTTP/1.0\r\nContent-Type: audio/mpeg\r\n\r\n");
    assert_eq!(response.status, 401);
    assert!(server.live_sources().is_empty());
    assert_eq!(server.get("/nope.mp3").status, 404);
}

/// A second source on a live mount gets 403 while the first keeps streaming.
#[test]
fn second_source_is_refused_while_first_streams() {
    let server = TestServer::start(Opts::default());
    let _first = FfmpegSource::sine(&server, "/busy.mp3", MP3);
    server.wait_live("/busy.mp3");
    let mut listener = Listener::connect(&server, "/busy.mp3", &[]);
    listener.read_at_least(1000, WAIT);
    let response = raw_exchange(
        server.http,
        format!(
            "PUT /busy.mp3 HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\n\r\n",
            basic("source", "hackme")
        )
        .as_bytes(),
    );
    assert_eq!(response.status, 403, "{}", response.head);
    let before = listener.body.len();
    listener.read_at_least(before + 16_000, WAIT);
    assert!(server.is_live("/busy.mp3"));
}

/// Per-mount credentials replace the global password for that mount only.
#[test]
fn per_mount_credentials() {
    let server = TestServer::start(Opts {
        rest:
            "[[mount]]\nname = \"/dj.mp3\"\nusername = \"dj\"\npassword = \"secret\"\nstream_name = \"Forced Name\"\n",
        ..Opts::default()
    });
    let global = raw_exchange(
        server.http,
        format!("SOURCE /dj.mp3 HTTP/1.0\r\nAuthorization: {}\r\n\r\n", basic("source", "hackme")).as_bytes(),
    );
    assert_eq!(global.status, 401);
    // The right credentials are accepted: the source stays connected and the mount goes live.
    let mut sock = TcpStream::connect(server.http).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    write!(sock, "SOURCE /dj.mp3 HTTP/1.0\r\nAuthorization: {}\r\nice-name: Sent Name\r\n\r\n", basic("dj", "secret"))
        .unwrap();
    let mut reply = [0u8; 19];
    sock.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"HTTP/1.0 200 OK\r\n\r\n");
    server.wait_live("/dj.mp3");
    assert_eq!(server.live_sources()[0]["server_name"], "Forced Name");
}

/// A hand-written SHOUTcast v1 source: `password` → `OK2`, icy headers, audio into /stream.
#[test]
fn shoutcast_v1_source() {
    let server = TestServer::start(Opts::default());
    let mp3 = sine_mp3(&server, 6);
    let mut bad = TcpStream::connect(server.shoutcast).unwrap();
    bad.set_read_timeout(Some(WAIT)).unwrap();
    bad.write_all(b"wrong\r\n").unwrap();
    let mut answer = String::new();
    let _ = bad.read_to_string(&mut answer);
    assert_eq!(answer, "invalid password\r\n");

    let mut sock = TcpStream::connect(server.shoutcast).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.write_all(b"hackme\r\n").unwrap();
    let mut ok = [0u8; 20];
    sock.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"OK2\r\nicy-caps:11\r\n\r\n");
    sock.write_all(b"icy-name:Shout Test\r\nicy-genre:Test\r\nicy-br:128\r\nicy-pub:0\r\nicy-reset:1\r\n\r\n").unwrap();
    sock.write_all(&mp3[..32 * 1024]).unwrap();
    server.wait_live("/stream");
    let source = &server.live_sources()[0];
    assert_eq!(source["server_name"], "Shout Test");
    assert_eq!(source["genre"], "Test");
    assert_eq!(source["bitrate"], 128);
    let mut listener = Listener::connect(&server, "/stream", &[]);
    assert_eq!(listener.head.header("icy-name").as_deref(), Some("Shout Test"));
    sock.write_all(&mp3[32 * 1024..64 * 1024]).unwrap();
    listener.read_at_least(20_000, WAIT);
    // What arrives is exactly the source's MP3, starting on a frame.
    let start = find(&mp3, &listener.body[..512]).expect("listener data comes from the source");
    assert_eq!(&mp3[start..start + listener.body.len()], &listener.body[..]);
    assert!(mp3_frame_len(&listener.body[..4]).is_some(), "starts on a frame header");
}

/// The Icecast-KH `mount:password` form picks the mount.
#[test]
fn shoutcast_v1_mount_password_form() {
    let server = TestServer::start(Opts::default());
    let mp3 = sine_mp3(&server, 2);
    let mut sock = TcpStream::connect(server.shoutcast).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.write_all(b"/kh.mp3:hackme\n").unwrap();
    let mut ok = [0u8; 20];
    sock.read_exact(&mut ok).unwrap();
    assert!(ok.starts_with(b"OK2"));
    sock.write_all(b"icy-name:KH\r\n\r\n").unwrap();
    sock.write_all(&mp3).unwrap();
    server.wait_live("/kh.mp3");
}

/// `seconds` of a 440 Hz sine as MP3 (128 kbit/s, 44.1 kHz), made by ffmpeg.
pub fn sine_mp3(server: &TestServer, seconds: u32) -> Vec<u8> {
    sine_mp3_at(server, 44100, seconds)
}

/// `seconds` of a 440 Hz sine as MP3 at 128 kbit/s and `rate` Hz, without Xing or ID3 tags.
pub fn sine_mp3_at(server: &TestServer, rate: u32, seconds: u32) -> Vec<u8> {
    let input = format!("sine=frequency=440:sample_rate={rate}:duration={seconds}");
    let args = ["-c:a", "libmp3lame", "-b:a", "128k", "-write_xing", "0", "-id3v2_version", "0"];
    std::fs::read(ffmpeg_make(server, &format!("sine{rate}-{seconds}.mp3"), &input, &args)).unwrap()
}
