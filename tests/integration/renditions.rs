//! Rendition mounts beyond the basic ladder: HE-AAC and WebM/Opus, on-demand
//! encoding, their own fallback rules, and an Ogg source that changes rate
//! and channels mid-stream.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::support::*;
use crate::transcode::{assert_clean_tone, capture};

/// HE-AAC and WebM/Opus renditions carry the tone with the configured
/// codec, profile and container; a late WebM joiner decodes from its first byte.
#[test]
fn he_aac_and_webm_renditions() {
    let server = TestServer::with_mounts(
        r#"
[[mount]]
name = "/src.mp3"
[[mount.transcode]]
name = "/r-he.aac"
codec = "he-aac"
bitrate = 48
[[mount.transcode]]
name = "/r.webm"
codec = "opus"
bitrate = 64
container = "webm"
"#,
    );
    let _source =
        FfmpegSource::start(&server, "/src.mp3", MP3, "sine=frequency=440:sample_rate=44100", "1", &["-ac", "2"]);
    server.wait_live("/r.webm");
    assert_eq!(server.request("HEAD", "/r.webm", &[]).header("content-type").as_deref(), Some("audio/webm"));

    let (path, bytes_per_s) = capture(&server, "/r-he.aac", 4);
    let stream = ffprobe(&path);
    assert_eq!(stream["codec_name"], "aac", "{stream}");
    assert_eq!(stream["profile"], "HE-AAC", "{stream}");
    assert_eq!(stream["sample_rate"], "44100", "{stream}");
    assert_eq!(stream["channels"], 2, "{stream}");
    let kbps = bytes_per_s * 8.0 / 1000.0;
    assert!((36.0..72.0).contains(&kbps), "HE-AAC at {kbps:.0} kbit/s for 48");
    assert_clean_tone(&path, "HE-AAC");

    // Joining late: the listener gets the stored headers, then Clusters.
    let (path, bytes_per_s) = capture(&server, "/r.webm", 3);
    let kbps = bytes_per_s * 8.0 / 1000.0;
    assert!((48.0..96.0).contains(&kbps), "WebM Opus at {kbps:.0} kbit/s for 64");
    let body = std::fs::read(&path).unwrap();
    assert!(body.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]), "starts with the EBML header");
    let stream = ffprobe(&path);
    assert_eq!(stream["codec_name"], "opus", "{stream}");
    assert_eq!((stream["sample_rate"].as_str(), stream["channels"].as_u64()), (Some("48000"), Some(2)));
    assert_clean_tone(&path, "WebM");
    let status = server.admin("/admin/stats.json").text();
    assert!(status.contains("\"audio_info\":\"samplerate=48000;channels=2"), "{status}");
    // The HE-AAC output rate, not the half-rate core its ADTS headers state.
    assert!(status.contains("\"audio_info\":\"samplerate=44100;channels=2;bitrate=48\""), "{status}");
}

/// An on-demand rendition encodes only while it has listeners: idle before
/// the first, running for it, idle again after it leaves, and a fresh
/// stream (headers first, clean decode) for the next one.
#[test]
fn on_demand_renditions_encode_only_for_listeners() {
    let server = TestServer::with_mounts(
        r#"
[[mount]]
name = "/src.mp3"
[[mount.transcode]]
name = "/od.opus"
codec = "opus"
bitrate = 48
on_demand = true
"#,
    );
    let _source = FfmpegSource::start(&server, "/src.mp3", MP3, "sine=frequency=440:sample_rate=44100", "2", &[]);
    server.wait_live("/od.opus");
    // Several seconds of source audio go by with nobody listening.
    eventually("the source streamed", WAIT, || server.mount_stat("/src.mp3", "total_bytes_read") > 4 * 16_000);
    assert_eq!(server.mount_stat("/od.opus", "encoding"), 0, "idle without listeners");
    assert_eq!(server.mount_stat("/od.opus", "total_bytes_read"), 0);

    for round in ["first", "second"] {
        let mut listener = Listener::connect(&server, "/od.opus", &[]);
        assert_eq!(listener.head.status, 200);
        listener.read_at_least(12_000, WAIT);
        assert_eq!(server.mount_stat("/od.opus", "encoding"), 1, "{round} listener: encoding");
        assert!(listener.body.starts_with(b"OggS") && listener.body[5] & 2 == 2, "{round}: a new stream's BOS");
        let path = server.dir().join(format!("od-{round}.opus"));
        std::fs::write(&path, &listener.body).unwrap();
        let errors = ffmpeg_decode(path.to_str().unwrap(), 60);
        assert!(errors.trim().is_empty(), "{round}: {errors}");
        drop(listener);
        // The encoder lingers a few seconds for reconnecting players, then stops.
        eventually("the rendition goes idle", WAIT, || server.mount_stat("/od.opus", "encoding") == 0);
    }
    assert!(server.is_live("/od.opus"), "an idle rendition is still a mount listeners can join");
}

/// With `ogg_metadata = false` a title change does not chain a new Ogg
/// stream: one logical stream throughout, the title in the status only.
#[test]
fn ogg_metadata_off_keeps_one_logical_stream() {
    let server = TestServer::with_mounts(
        r#"
[[mount]]
name = "/src.mp3"
[[mount.transcode]]
name = "/flat.opus"
codec = "opus"
bitrate = 48
ogg_metadata = false
"#,
    );
    let _source = FfmpegSource::sine(&server, "/src.mp3", MP3);
    server.wait_live("/flat.opus");
    let mut listener = Listener::connect(&server, "/flat.opus", &[]);
    listener.read_at_least(2000, WAIT);
    let set = server.admin("/admin/metadata?mount=/src.mp3&mode=updinfo&song=Flat+Title");
    assert_eq!(set.status, 200);
    eventually("the title reaches the rendition's status", WAIT, || {
        let json: serde_json::Value = serde_json::from_slice(&server.admin("/admin/stats.json").body).unwrap();
        let sources = json["icestats"]["source"].as_array().cloned().unwrap_or_default();
        sources.iter().any(|s| s["mount"] == "/flat.opus" && s["title"] == "Flat Title")
    });
    let after = listener.body.len();
    listener.read_at_least(after + 12_000, WAIT);
    let bos_pages = listener.body.windows(6).filter(|w| &w[..4] == b"OggS" && w[5] & 2 == 2).count();
    assert_eq!(bos_pages, 1, "no chained stream for the title");
    assert!(find(&listener.body, b"Flat Title").is_none(), "the title stays out of band");
}

/// A rendition's listeners follow its own fallback when the source leaves,
/// and return (`fallback_override`) when it comes back.
#[test]
fn rendition_listeners_fall_back_and_return() {
    let server = TestServer::with_mounts(
        r#"
[[mount]]
name = "/main.mp3"
[[mount.transcode]]
name = "/main.aac"
codec = "aac"
bitrate = 64
fallback_mount = "/backup.aac"
fallback_override = true
[[mount]]
name = "/backup.mp3"
[[mount.transcode]]
name = "/backup.aac"
codec = "aac"
bitrate = 64
"#,
    );
    let _backup = FfmpegSource::start(&server, "/backup.mp3", MP3, "sine=frequency=660:sample_rate=44100", "1", &[]);
    let mut main = FfmpegSource::sine(&server, "/main.mp3", MP3);
    server.wait_live("/backup.aac");
    server.wait_live("/main.aac");
    let mut listener = Listener::connect(&server, "/main.aac", &[]);
    listener.read_at_least(4000, WAIT);

    main.stop();
    eventually("the listener moved to /backup.aac", WAIT, || {
        listener.read_for(Duration::from_millis(100));
        server.listener_ids("/backup.aac").len() == 1
    });
    let moved_at = listener.body.len();
    listener.read_at_least(moved_at + 4000, WAIT);

    let _main = FfmpegSource::sine(&server, "/main.mp3", MP3);
    eventually("the listener came back to /main.aac", WAIT, || {
        listener.read_for(Duration::from_millis(100));
        server.listener_ids("/main.aac").len() == 1 && server.listener_ids("/backup.aac").is_empty()
    });
    let back_at = listener.body.len();
    listener.read_at_least(back_at + 4000, WAIT);
    // One ADTS stream throughout: it decodes cleanly across both moves.
    let path = server.dir().join("moved.aac");
    std::fs::write(&path, &listener.body).unwrap();
    let errors = ffmpeg_decode(path.to_str().unwrap(), 60);
    assert!(errors.trim().is_empty(), "{errors}");
}

/// An Ogg source whose chained second stream has another rate and channel
/// count: rendition listeners stay connected, and what they hear after the
/// switch is still the tone at the right pitch (the resampler was remade).
#[test]
fn chained_ogg_source_changing_rate_and_channels() {
    let server = TestServer::with_mounts(
        r#"
[[mount]]
name = "/src.ogg"
[[mount.transcode]]
name = "/c.mp3"
codec = "mp3"
bitrate = 64
[[mount.transcode]]
name = "/c.opus"
codec = "opus"
bitrate = 48
"#,
    );
    let vorbis = |name: &str, rate: u32, channels: &str| {
        let input = format!("sine=frequency=440:sample_rate={rate}:duration=4");
        std::fs::read(ffmpeg_make(&server, name, &input, &["-ac", channels, "-c:a", "libvorbis", "-f", "ogg"])).unwrap()
    };
    let first = vorbis("stereo44.ogg", 44100, "2");
    let second = vorbis("mono22.ogg", 22050, "1");

    let mut sock = TcpStream::connect(server.http).unwrap();
    write!(
        sock,
        "SOURCE /src.ogg HTTP/1.0\r\nAuthorization: {}\r\nContent-Type: application/ogg\r\n\r\n",
        basic("source", "hackme")
    )
    .unwrap();
    sock.write_all(&first[..first.len() / 4]).unwrap();
    // Each rendition goes live when its own encoder starts: wait for both.
    server.wait_live("/c.mp3");
    server.wait_live("/c.opus");
    let mut listeners = [Listener::connect(&server, "/c.mp3", &[]), Listener::connect(&server, "/c.opus", &[])];
    sock.write_all(&first[first.len() / 4..]).unwrap();
    for l in &mut listeners {
        l.read_at_least(4000, WAIT);
    }
    sock.write_all(&second).unwrap();
    // All of the second stream reaches both listeners: 4 s of audio each.
    let before: Vec<usize> = listeners.iter().map(|l| l.body.len()).collect();
    for (l, (before, bytes_per_s)) in listeners.iter_mut().zip(before.into_iter().zip([8000, 6000])) {
        let deadline = std::time::Instant::now() + WAIT;
        while l.body.len() < before + 3 * bytes_per_s && std::time::Instant::now() < deadline {
            if l.read_for(Duration::from_millis(200)) == 0 && l.closed_within(Duration::from_millis(1)) {
                panic!("a rendition listener was cut off after {} bytes\n{}", l.body.len(), server.log());
            }
        }
        assert!(l.body.len() >= before + 3 * bytes_per_s, "a rendition listener starved");
    }
    for (l, name) in listeners.iter().zip(["switch.mp3", "switch.opus"]) {
        let path = server.dir().join(name);
        std::fs::write(&path, &l.body).unwrap();
        let samples = decode_mono_16k(path.to_str().unwrap());
        // The last two seconds come from the 22.05 kHz mono stream.
        let tail = &samples[samples.len().saturating_sub(2 * 16000 + 4000)..samples.len().saturating_sub(4000)];
        let freq = tone_frequency_of(tail);
        assert!((freq - 440.0).abs() <= 2.0, "{name}: tone at {freq:.1} Hz after the switch");
    }
    assert_eq!(ffprobe(server.dir().join("switch.mp3").to_str().unwrap())["sample_rate"], "44100");
}
