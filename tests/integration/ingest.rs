//! Ingest details: chunked bodies, garbage resync, inline ICY metadata from a
//! source, the source timeout, and WebM.

use std::io::{Read, Write};
use std::time::Duration;

use crate::sources::sine_mp3;
use crate::support::*;

/// A chunked `PUT` body is de-chunked: listeners get exactly the source's MP3.
#[test]
fn chunked_put_body() {
    let server = TestServer::start(Opts::default());
    let mp3 = sine_mp3(&server, 4);
    let mut sock = open_source(
        &server,
        &format!(
            "PUT /chunked.mp3 HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\nTransfer-Encoding: chunked\r\n\r\n",
            basic("source", "hackme")
        ),
    );
    let (first, rest) = mp3.split_at(20_000);
    for piece in first.chunks(777) {
        write!(sock, "{:x};ext=1\r\n", piece.len()).unwrap();
        sock.write_all(piece).unwrap();
        sock.write_all(b"\r\n").unwrap();
    }
    server.wait_live("/chunked.mp3");
    let mut listener = Listener::connect(&server, "/chunked.mp3", &[]);
    for piece in rest.chunks(1000) {
        write!(sock, "{:X}\r\n", piece.len()).unwrap();
        sock.write_all(piece).unwrap();
        sock.write_all(b"\r\n").unwrap();
    }
    listener.read_at_least(30_000, WAIT);
    let start = find(&mp3, &listener.body[..256]).expect("listener data is the source's");
    assert_eq!(&mp3[start..start + listener.body.len()], &listener.body[..]);
    assert!(mp3_frame_len(&listener.body[..4]).is_some());
    sock.write_all(b"0\r\n\r\n").unwrap();
    eventually("the source ends with the last chunk", WAIT, || !server.is_live("/chunked.mp3"));
}

/// Garbage inside a source's MP3 is skipped: listeners get only whole frames.
#[test]
fn garbage_is_resynced_not_relayed() {
    let server = TestServer::start(Opts::default());
    let mp3 = sine_mp3(&server, 4);
    let mut sock = open_source(
        &server,
        &format!("SOURCE /dirty.mp3 HTTP/1.0\r\nAuthorization: {}\r\n\r\n", basic("source", "hackme")),
    );
    server.wait_live("/dirty.mp3");
    let mut listener = Listener::connect(&server, "/dirty.mp3", &[]);
    let garbage: Vec<u8> = (0..3000u32).map(|i| if i % 7 == 0 { 0xFF } else { 0xAB }).collect();
    for (i, piece) in mp3.chunks(5000).enumerate() {
        sock.write_all(piece).unwrap();
        if i % 2 == 0 {
            sock.write_all(&garbage).unwrap();
        }
    }
    listener.read_at_least(50_000, WAIT);
    let body = &listener.body;
    assert!(mp3_frames_contiguous(body) + 1500 >= body.len(), "unbroken frames");
    assert!(find(body, &garbage[..64]).is_none(), "no garbage reached the listener");
}

/// A source that sends `icy-metaint` (a relay pulling with ICY) has its
/// metadata stripped from the audio and its titles used.
#[test]
fn inline_icy_metadata_from_source() {
    let server = TestServer::start(Opts::default());
    let mp3 = sine_mp3(&server, 4);
    let mut sock = open_source(
        &server,
        &format!(
            "SOURCE /relay.mp3 HTTP/1.0\r\nAuthorization: {}\r\nicy-metaint: 1000\r\n\r\n",
            basic("source", "hackme")
        ),
    );
    let meta = b"StreamTitle='Relay Song';StreamUrl='http://relay.example';";
    let mut block = vec![meta.len().div_ceil(16) as u8];
    block.extend_from_slice(meta);
    block.resize(1 + 16 * meta.len().div_ceil(16), 0);
    for (i, piece) in mp3.chunks(1000).enumerate() {
        sock.write_all(piece).unwrap();
        if piece.len() == 1000 {
            sock.write_all(if i == 0 { &block } else { &[0] }).unwrap();
        }
    }
    server.wait_live("/relay.mp3");
    eventually("the relayed title is used", WAIT, || {
        server.live_sources().first().is_some_and(|s| s["title"] == "Relay Song")
    });
    let mut listener = Listener::connect(&server, "/relay.mp3", &[]);
    listener.read_at_least(30_000, WAIT);
    assert!(find(&listener.body, b"StreamTitle").is_none(), "metadata stripped from the audio");
    assert!(mp3_frames_contiguous(&listener.body) + 1500 >= listener.body.len());
}

/// A source that goes silent is ended after `source_timeout`, and so is its listener.
#[test]
fn stalled_source_times_out() {
    let server = TestServer::start(Opts { limits: "source_timeout = 1\n", ..Opts::default() });
    let mp3 = sine_mp3(&server, 2);
    let mut sock = open_source(
        &server,
        &format!("SOURCE /stall.mp3 HTTP/1.0\r\nAuthorization: {}\r\n\r\n", basic("source", "hackme")),
    );
    sock.write_all(&mp3[..20_000]).unwrap();
    server.wait_live("/stall.mp3");
    let mut listener = Listener::connect(&server, "/stall.mp3", &[]);
    eventually("the stalled source is gone", Duration::from_secs(10), || !server.is_live("/stall.mp3"));
    assert!(listener.closed_within(WAIT), "its listener is closed once the ring is drained");
    // The source socket was closed by the server.
    let mut buf = [0u8; 16];
    assert!(matches!(sock.read(&mut buf), Ok(0) | Err(_)));
}

/// WebM (Opus) from ffmpeg: a late joiner starts with the EBML header and decodes.
#[test]
fn webm_source() {
    let server = TestServer::start(Opts::default());
    let webm = Codec { args: &["-c:a", "libopus", "-b:a", "96k"], content_type: "audio/webm", muxer: "webm" };
    let _source = FfmpegSource::start(&server, "/live.webm", webm, "sine=frequency=440:sample_rate=48000", "2", &[]);
    server.wait_live("/live.webm");
    let mut listener = Listener::connect(&server, "/live.webm", &[]);
    listener.read_at_least(20_000, WAIT);
    assert!(listener.body.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]), "starts with the EBML header");
    let path = server.dir().join("late.webm");
    std::fs::write(&path, &listener.body).unwrap();
    assert_eq!(ffprobe(path.to_str().unwrap())["codec_name"], "opus");
    let errors = ffmpeg_decode(path.to_str().unwrap(), 30);
    assert!(errors.trim().is_empty(), "{errors}");
}

/// An Ogg file made by ffmpeg with a title tag.
fn opus_file(server: &TestServer, name: &str, frequency: u32, title: &str) -> Vec<u8> {
    let input = format!("sine=frequency={frequency}:sample_rate=48000:duration=3");
    let title = format!("title={title}");
    let args = ["-c:a", "libopus", "-b:a", "64k", "-metadata", &title, "-f", "ogg"];
    std::fs::read(ffmpeg_make(server, name, &input, &args)).unwrap()
}

/// A chained Ogg stream (a new BOS after data): listeners already playing get
/// the new header pages in band, and new listeners start with them.
#[test]
fn chained_ogg_replaces_headers() {
    let server = TestServer::start(Opts::default());
    let first = opus_file(&server, "first.opus", 440, "First Song");
    let second = opus_file(&server, "second.opus", 660, "Second Song");
    let mut sock = open_source(
        &server,
        &format!(
            "SOURCE /chain.opus HTTP/1.0\r\nAuthorization: {}\r\nContent-Type: audio/ogg\r\n\r\n",
            basic("source", "hackme")
        ),
    );
    sock.write_all(&first[..first.len() / 2]).unwrap();
    server.wait_live("/chain.opus");
    let mut early = Listener::connect(&server, "/chain.opus", &[]);
    early.read_at_least(200, WAIT);
    assert!(find(&early.body[..200], b"OpusHead").is_some());
    sock.write_all(&first[first.len() / 2..]).unwrap();
    sock.write_all(&second).unwrap();
    eventually("the early listener receives the second stream's headers", WAIT, || {
        early.read_for(Duration::from_millis(100));
        find(&early.body, b"Second Song").is_some()
    });
    let mut late = Listener::connect(&server, "/chain.opus", &[]);
    late.read_at_least(2000, WAIT);
    assert!(late.body.starts_with(b"OggS") && late.body[5] & 0x02 == 0x02, "late joiner starts on a BOS page");
    assert!(find(&late.body[..2000], b"Second Song").is_some(), "with the current stream's comments");
    assert!(find(&late.body, b"First Song").is_none(), "never the old stream's");
    // The source ends; the late listener receives the rest of the ring, then EOF.
    drop(sock);
    assert!(late.closed_within(WAIT));
    let path = server.dir().join("late.opus");
    std::fs::write(&path, &late.body).unwrap();
    let errors = ffmpeg_decode(path.to_str().unwrap(), 30);
    assert!(errors.trim().is_empty(), "{errors}");
}
