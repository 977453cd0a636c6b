//! Transcoding with real decoders: each rendition's codec, rate, channels and
//! bitrate as configured, the same tone as the source, late joiners, titles,
//! and sources that misbehave.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::sources::sine_mp3_at;
use crate::support::*;

const LADDER: &str = r#"
[[mount]]
name = "/src.mp3"
[[mount.transcode]]
name = "/r.mp3"
codec = "mp3"
bitrate = 64
[[mount.transcode]]
name = "/r.aac"
codec = "aac"
bitrate = 64
[[mount.transcode]]
name = "/r.opus"
codec = "opus"
bitrate = 48
[[mount.transcode]]
name = "/r.ogg"
codec = "vorbis"
bitrate = 96
[[mount.transcode]]
name = "/r-mono.mp3"
codec = "mp3"
bitrate = 48
channels = 1
sample_rate = 22050
"#;

fn source_bytes(server: &TestServer) -> u64 {
    server.mount_stat("/src.mp3", "total_bytes_read")
}

fn ladder_server() -> TestServer {
    TestServer::with_mounts(LADDER)
}

/// Capture `seconds` of a mount to a file, returning the path and the bytes
/// per second measured after the burst.
pub fn capture(server: &TestServer, mount: &str, seconds: u64) -> (String, f64) {
    let mut listener = Listener::connect(server, mount, &[]);
    listener.read_for(Duration::from_millis(1500));
    let start = listener.body.len();
    let began = std::time::Instant::now();
    listener.read_for(Duration::from_secs(seconds));
    let rate = (listener.body.len() - start) as f64 / began.elapsed().as_secs_f64();
    let path = server.dir().join(format!("cap{}", mount.replace('/', "_")));
    std::fs::write(&path, &listener.body).unwrap();
    (path.to_str().unwrap().to_string(), rate)
}

/// The frequency of the tone in `path`, after its first half second.
fn tone_frequency(path: &str) -> f64 {
    let samples = decode_mono_16k(path);
    tone_frequency_of(&samples[samples.len().min(8000)..])
}

/// `path` decodes with no errors and carries the 440 Hz tone.
pub fn assert_clean_tone(path: &str, what: &str) {
    let errors = ffmpeg_decode(path, 60);
    assert!(errors.trim().is_empty(), "{what}: {errors}");
    let freq = tone_frequency(path);
    assert!((freq - 440.0).abs() <= 2.0, "{what}: tone at {freq:.1} Hz");
}

/// Every rendition decodes cleanly with its configured codec, rate and
/// channels, near its bitrate, carrying the source's 440 Hz tone.
#[test]
fn every_codec_carries_the_tone() {
    let server = ladder_server();
    // A stereo source: renditions keep its channels unless told otherwise.
    let _source =
        FfmpegSource::start(&server, "/src.mp3", MP3, "sine=frequency=440:sample_rate=44100", "1", &["-ac", "2"]);
    for mount in ["/src.mp3", "/r.mp3", "/r.aac", "/r.opus", "/r.ogg", "/r-mono.mp3"] {
        server.wait_live(mount);
    }
    let cases = [
        ("/r.mp3", "mp3", "44100", 2, 64.0),
        ("/r.aac", "aac", "44100", 2, 64.0),
        ("/r.opus", "opus", "48000", 2, 48.0),
        ("/r.ogg", "vorbis", "44100", 2, 96.0),
        ("/r-mono.mp3", "mp3", "22050", 1, 48.0),
    ];
    for (mount, codec, rate, channels, kbps) in cases {
        let (path, bytes_per_s) = capture(&server, mount, 4);
        let stream = ffprobe(&path);
        assert_eq!(stream["codec_name"], codec, "{mount}: {stream}");
        assert_eq!(stream["sample_rate"], rate, "{mount}: {stream}");
        assert_eq!(stream["channels"], channels, "{mount}: {stream}");
        let measured = bytes_per_s * 8.0 / 1000.0;
        // libvorbis is quality-driven VBR: a pure sine needs far less than its target.
        let low = if codec == "vorbis" { 0.35 } else { 0.75 };
        assert!(measured > kbps * low && measured < kbps * 1.5, "{mount}: {measured:.0} kbit/s for {kbps}");
        assert_clean_tone(&path, mount);
    }
    let status = server.admin("/admin/stats").text();
    assert!(status.contains("<source mount=\"/r.opus\">"), "renditions are ordinary mounts");
}

/// A listener joining a rendition late decodes from its first byte.
#[test]
fn late_joiners_decode_from_first_byte() {
    let server = ladder_server();
    let _source = FfmpegSource::start(&server, "/src.mp3", MP3, "sine=frequency=440:sample_rate=44100", "3", &[]);
    server.wait_live("/r.opus");
    // 3× real time: about 6 s of audio are in after 2 s.
    eventually("several seconds were streamed", WAIT, || source_bytes(&server) > 6 * 16_000);
    for mount in ["/r.mp3", "/r.aac", "/r.opus", "/r.ogg"] {
        let mut listener = Listener::connect(&server, mount, &[]);
        listener.read_at_least(8000, WAIT);
        if mount.ends_with(".opus") || mount.ends_with(".ogg") {
            assert!(listener.body.starts_with(b"OggS") && listener.body[5] & 2 == 2, "{mount} starts with a BOS page");
        }
        let path = server.dir().join(format!("late{}", mount.replace('/', "_")));
        std::fs::write(&path, &listener.body).unwrap();
        let errors = ffmpeg_decode(path.to_str().unwrap(), 60);
        assert!(errors.trim().is_empty(), "{mount}: {errors}");
    }
}

/// A title set on the source reaches the MP3/AAC renditions as ICY metadata
/// and the Opus/Vorbis renditions as Ogg comments of a new chained stream.
#[test]
fn titles_follow_the_source() {
    let server = ladder_server();
    let _source = FfmpegSource::sine(&server, "/src.mp3", MP3);
    server.wait_live("/r.ogg");
    let mut icy_mp3 = Listener::connect(&server, "/r.mp3", &[("Icy-MetaData", "1")]);
    let mut icy_aac = Listener::connect(&server, "/r.aac", &[("Icy-MetaData", "1")]);
    let mut opus = Listener::connect(&server, "/r.opus", &[]);
    let mut vorbis = Listener::connect(&server, "/r.ogg", &[]);
    opus.read_at_least(2000, WAIT);
    let set = server.admin("/admin/metadata?mount=/src.mp3&mode=updinfo&artist=Floe&title=Transcoded+Title");
    assert_eq!(set.status, 200);
    eventually("titles reach every rendition", WAIT, || {
        for l in [&mut icy_mp3, &mut icy_aac, &mut opus, &mut vorbis] {
            l.read_for(Duration::from_millis(50));
        }
        let icy = |l: &Listener| find(&l.body, b"StreamTitle='Floe - Transcoded Title'").is_some();
        let ogg = |l: &Listener| find(&l.body, b"Transcoded Title").is_some();
        icy(&icy_mp3) && icy(&icy_aac) && ogg(&opus) && ogg(&vorbis)
    });
}

/// Garbage from the source and a sample-rate switch keep rendition listeners
/// connected and fed.
#[test]
fn bad_sources_keep_renditions_alive() {
    let server = ladder_server();
    let (a, b) = (sine_mp3_at(&server, 44100, 4), sine_mp3_at(&server, 48000, 4));
    let mut sock = TcpStream::connect(server.http).unwrap();
    write!(
        sock,
        "SOURCE /src.mp3 HTTP/1.0\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\n\r\n",
        basic("source", "hackme")
    )
    .unwrap();
    sock.write_all(&a[..a.len() / 2]).unwrap();
    server.wait_live("/r.mp3");
    let mut listeners: Vec<Listener> =
        ["/r.mp3", "/r.opus", "/r.ogg", "/r.aac"].iter().map(|m| Listener::connect(&server, m, &[])).collect();
    // Half a file, garbage, the rest, then the same tone at 48 kHz.
    sock.write_all(&vec![0x5A; 20_000]).unwrap();
    sock.write_all(&a[a.len() / 2..]).unwrap();
    let before: Vec<usize> = listeners
        .iter_mut()
        .map(|l| {
            l.read_for(Duration::from_millis(300));
            l.body.len()
        })
        .collect();
    sock.write_all(&b).unwrap();
    // Still streaming after the garbage and across the rate switch.
    assert!(server.is_live("/r.mp3") && server.is_live("/r.opus"));
    for (l, before) in listeners.iter_mut().zip(before) {
        let deadline = std::time::Instant::now() + WAIT;
        while l.body.len() < before + 2000 && std::time::Instant::now() < deadline {
            if l.read_for(Duration::from_millis(200)) == 0 && l.closed_within(Duration::from_millis(1)) {
                panic!("a rendition listener was cut off after {} bytes\n{}", l.body.len(), server.log());
            }
        }
        assert!(l.body.len() >= before + 2000, "a rendition listener starved");
    }
    let stats = server.admin("/admin/stats").text();
    assert!(stats.contains("<corrupt_packets>"), "{stats}");
}

/// Renditions are fed by the server: a source cannot take one over.
#[test]
fn sources_cannot_stream_to_a_rendition() {
    let server = ladder_server();
    let response = raw_exchange(
        server.http,
        format!("SOURCE /r.mp3 HTTP/1.0\r\nAuthorization: {}\r\n\r\n", basic("source", "hackme")).as_bytes(),
    );
    assert_eq!(response.status, 403);
}
