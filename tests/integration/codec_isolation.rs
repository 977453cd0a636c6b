//! A source can never take the server down through the transcoder: crafted
//! audio reaches no codec unsanitised, hostile headers are refused, and a
//! codec process that dies or hangs costs only its mount's renditions a
//! visible restart. Each test keeps a listener on an unrelated mount and
//! checks its stream stayed whole.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::hostile::{loud_mp3, vorbis_with_codebooks};
use crate::support::*;

/// A listener of `/safe.mp3` read in the background until `finish`.
struct Bystander {
    started: Instant,
    stop: Arc<AtomicBool>,
    reader: JoinHandle<(Vec<u8>, Duration)>,
}

impl Bystander {
    fn start(server: &TestServer) -> (Bystander, FfmpegSource) {
        let source = FfmpegSource::sine(server, "/safe.mp3", MP3);
        server.wait_live("/safe.mp3");
        let mut listener = Listener::connect(server, "/safe.mp3", &[]);
        listener.read_at_least(1000, WAIT);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let started = Instant::now();
        let reader = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                listener.read_for(Duration::from_millis(100));
            }
            (listener.body, started.elapsed())
        });
        (Bystander { started, stop, reader }, source)
    }

    /// The bystander's stream: unbroken MP3 frames at the full rate, over
    /// a window of at least two seconds (a few delivery ticks).
    fn finish(self) {
        let window = Duration::from_secs(2);
        std::thread::sleep(window.saturating_sub(self.started.elapsed()));
        self.stop.store(true, Ordering::Relaxed);
        let (body, elapsed) = self.reader.join().expect("bystander");
        let contiguous = mp3_frames_contiguous(&body);
        assert!(contiguous + 2000 >= body.len(), "bystander's stream broken at byte {contiguous} of {}", body.len());
        assert_full_rate(body.len(), elapsed, 0.85, "the bystander");
    }
}

/// The one codec process of `mount`, once it runs.
fn codec_pid(server: &TestServer, mount: &str) -> u32 {
    let mut pids = Vec::new();
    eventually(&format!("a codec process for {mount}"), WAIT, || {
        pids = server.codec_pids(mount);
        pids.len() == 1
    });
    pids[0]
}

/// Capture `secs` of a mount and return (bytes, decoded 16 kHz mono samples).
fn capture(server: &TestServer, mount: &str, secs: u64) -> (usize, Vec<i16>) {
    let mut listener = Listener::connect(server, mount, &[]);
    assert_eq!(listener.head.status, 200, "{mount}");
    listener.read_for(Duration::from_secs(secs));
    let path = server.dir().join(format!("capture{}", mount.replace('/', "_")));
    std::fs::write(&path, &listener.body).unwrap();
    (listener.body.len(), decode_mono_16k(path.to_str().unwrap()))
}

/// MP3 frames with a global gain of 250 decode to samples hundreds of times
/// past full scale (LAME used to assert and abort the whole server on them):
/// every rendition keeps running, near its bitrate, and is not silent.
#[test]
fn loud_mp3_keeps_every_rendition_sane() {
    let mut server = TestServer::with_mounts(
        r#"
[[mount]]
name = "/loud.mp3"
[[mount.transcode]]
name = "/loud-64.mp3"
codec = "mp3"
bitrate = 64
[[mount.transcode]]
name = "/loud.aac"
codec = "aac"
bitrate = 64
[[mount.transcode]]
name = "/loud.opus"
codec = "opus"
bitrate = 64
[[mount.transcode]]
name = "/loud.ogg"
codec = "vorbis"
bitrate = 96
"#,
    );
    let (bystander, _safe) = Bystander::start(&server);
    let plain = ffmpeg_make(
        &server,
        "sine.mp3",
        "sine=frequency=440:sample_rate=44100:duration=14",
        &["-c:a", "libmp3lame", "-b:a", "128k"],
    );
    let loud = server.dir().join("loud.mp3");
    std::fs::write(&loud, loud_mp3(&std::fs::read(plain).unwrap(), 250)).unwrap();
    let _source = FfmpegSource::file(&server, "/loud.mp3", &loud, "audio/mpeg", "mp3");
    let renditions = [("/loud-64.mp3", 64.0), ("/loud.aac", 64.0), ("/loud.opus", 64.0), ("/loud.ogg", 96.0)];
    for (mount, _) in renditions {
        server.wait_live(mount);
    }
    let captures: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = renditions.iter().map(|(m, _)| s.spawn(|| capture(&server, m, 5))).collect();
        handles.into_iter().map(|h| h.join().expect("capture")).collect()
    });
    for ((mount, kbps), (bytes, samples)) in renditions.iter().zip(captures) {
        let secs = samples.len() as f64 / 16_000.0;
        assert!(secs > 2.0, "{mount}: {secs:.1} s decoded");
        let made = bytes as f64 * 8.0 / secs / 1000.0;
        assert!(made < kbps * 1.6, "{mount} made {made:.0} kbit/s for {kbps}");
        let rms = (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt() / 32768.0;
        assert!(rms > 0.2, "{mount} is near-silent (RMS {rms:.3})");
    }
    assert_eq!(server.mount_stat("/loud.mp3", "transcode_failures"), 0, "{}", server.log());
    assert!(server.alive());
    bystander.finish();
}

/// Vorbis setup headers that ask the decoder for gigabytes (a few KB of
/// large lookup-type-1 codebooks), or for arithmetic that overflows in it,
/// are refused before decoding: the mount's renditions end, the failure is
/// counted and explained, the server's memory does not move, and the source
/// itself keeps streaming to its own listeners.
#[test]
fn hostile_vorbis_setup_headers_are_refused() {
    let mut server = TestServer::with_mounts(
        r#"
[[mount]]
name = "/bomb.ogg"
[[mount.transcode]]
name = "/bomb.mp3"
codec = "mp3"
bitrate = 64
[[mount]]
name = "/overflow.ogg"
[[mount.transcode]]
name = "/overflow.mp3"
codec = "mp3"
bitrate = 64
"#,
    );
    let (bystander, _safe) = Bystander::start(&server);
    let rss_before = server.rss_kib();
    let vorbis = ffmpeg_make(
        &server,
        "sine.ogg",
        "sine=frequency=440:sample_rate=44100:duration=20",
        &["-c:a", "libvorbis", "-q:a", "3"],
    );
    let vorbis = std::fs::read(vorbis).unwrap();
    // 200 codebooks of 128 Ki entries in 31 dimensions: 15.5 MiB each.
    let bomb = server.dir().join("bomb.ogg");
    std::fs::write(&bomb, vorbis_with_codebooks(&vorbis, &[(31, 131_072); 200])).unwrap();
    let overflow = server.dir().join("overflow.ogg");
    std::fs::write(&overflow, vorbis_with_codebooks(&vorbis, &[(32, 1024)])).unwrap();
    let upload = |mount: &str, path: &std::path::Path| {
        // curl as the source: the crafted bytes exactly, paced like a live stream.
        Command::new("curl")
            .args(["-sS", "--limit-rate", "16k", "-u", "source:hackme", "-H", "Content-Type: audio/ogg", "-T"])
            .arg(path)
            .arg(server.url(mount))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("curl")
    };
    let mut curls = [upload("/bomb.ogg", &bomb), upload("/overflow.ogg", &overflow)];
    server.wait_live("/bomb.ogg");
    server.wait_live("/overflow.ogg");
    eventually("both transcoders refused their stream", WAIT, || {
        server.mount_stat("/bomb.ogg", "transcode_failures") >= 1
            && server.mount_stat("/overflow.ogg", "transcode_failures") >= 1
    });
    let log = server.log();
    assert!(log.contains("decoder memory"), "the bomb is named: {log}");
    assert!(log.contains("overflows the decoder"), "the overflow is named: {log}");
    // The source mounts themselves still stream the (valid Ogg) bytes.
    let mut direct = Listener::connect(&server, "/bomb.ogg", &[]);
    assert_eq!(direct.head.status, 200);
    direct.read_at_least(4096, WAIT);
    let grown = server.rss_kib().saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "the server grew by {grown} KiB");
    assert!(server.alive());
    for curl in &mut curls {
        let _ = curl.kill();
        let _ = curl.wait();
    }
    bystander.finish();
}

/// A codec process killed by SIGABRT (what a C library's failed assertion
/// or an allocation failure does) ends only its mount's renditions, and
/// visibly: a rendition listener without a fallback is closed, one with a
/// fallback moves there, the failure is counted and logged; the source's own
/// listeners and other mounts never notice. A new process takes over after a
/// backoff, and the moved listener comes home.
#[test]
fn crashed_codec_process_restarts_its_renditions() {
    let mut server = TestServer::with_mounts(
        r#"
[[mount]]
name = "/live.mp3"
[[mount.transcode]]
name = "/live-64.mp3"
codec = "mp3"
bitrate = 64
fallback_mount = "/safe.mp3"
fallback_override = true
[[mount.transcode]]
name = "/live.opus"
codec = "opus"
bitrate = 64
"#,
    );
    let (bystander, _safe) = Bystander::start(&server);
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live-64.mp3");
    server.wait_live("/live.opus");
    let mut own = Listener::connect(&server, "/live.mp3", &[]);
    let mut moved = Listener::connect(&server, "/live-64.mp3", &[]);
    let mut closed = Listener::connect(&server, "/live.opus", &[]);
    moved.read_at_least(2000, WAIT);
    closed.read_at_least(2000, WAIT);
    let moved_id = server.listener_ids("/live-64.mp3")[0];
    let first = codec_pid(&server, "/live.mp3");

    signal(first, Signal::ABORT);
    assert!(closed.closed_within(WAIT), "the Opus listener is told the rendition ended");
    eventually("the moved listener is on the fallback", WAIT, || server.listener_ids("/safe.mp3").contains(&moved_id));
    eventually("the failure is counted", WAIT, || server.mount_stat("/live.mp3", "transcode_failures") == 1);
    assert!(server.log().contains("killed by signal 6"), "{}", server.log());

    // A new process, the renditions back, the moved listener home.
    eventually("a new codec process", WAIT, || server.codec_pids("/live.mp3").iter().any(|&p| p != first));
    server.wait_live("/live.opus");
    eventually("the moved listener is home", WAIT, || server.listener_ids("/live-64.mp3").contains(&moved_id));
    let mut again = Listener::connect(&server, "/live.opus", &[]);
    assert!(again.read_at_least(4, WAIT).starts_with(b"OggS"));
    let before = moved.body.len();
    moved.read_at_least(before + 4000, WAIT);
    // The source mount's own listener: one unbroken stream throughout.
    own.read_for(Duration::from_secs(1));
    assert!(mp3_frames_contiguous(&own.body) + 2000 >= own.body.len());
    assert!(server.alive());
    bystander.finish();
}

/// A codec process that stops answering (here: SIGSTOP) is found by the
/// server's watchdog, killed and replaced.
#[test]
fn stalled_codec_process_is_replaced() {
    let mut server = TestServer::with_mounts(
        r#"
[[mount]]
name = "/live.mp3"
[[mount.transcode]]
name = "/live.opus"
codec = "opus"
bitrate = 64
"#,
    );
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.opus");
    let first = codec_pid(&server, "/live.mp3");
    signal(first, Signal::STOP);
    eventually("the stall is found and counted", Duration::from_secs(30), || {
        server.mount_stat("/live.mp3", "transcode_failures") == 1
    });
    assert!(server.log().contains("stalled"), "{}", server.log());
    eventually("a new codec process", WAIT, || server.codec_pids("/live.mp3").iter().any(|&p| p != first));
    server.wait_live("/live.opus");
    let mut listener = Listener::connect(&server, "/live.opus", &[]);
    assert!(listener.read_at_least(4, WAIT).starts_with(b"OggS"));
    assert!(server.alive());
}

/// The codec process is confined as configured: its address space is
/// limited to `transcode_memory` (an allocation past it fails in that
/// process alone), it runs at a lower priority than the server, and it dies
/// with the server even when the server is killed outright.
#[test]
fn codec_process_is_confined_and_dies_with_the_server() {
    let mut server = TestServer::start(Opts {
        limits: "transcode_memory = 268435456\n",
        rest: "[[mount]]\nname = \"/live.mp3\"\n[[mount.transcode]]\nname = \"/live.opus\"\ncodec = \"opus\"\nbitrate = 64\n",
        ..Opts::default()
    });
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.opus");
    let pid = codec_pid(&server, "/live.mp3");
    // The process confines itself first thing after it starts.
    let address_space = || {
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let line = limits.lines().find(|l| l.starts_with("Max address space")).expect("the limit line").to_string();
        line.split_whitespace().skip(3).take(2).collect::<Vec<_>>().join(" ")
    };
    eventually("the address space is limited", WAIT, || address_space() == "268435456 268435456");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
    assert_eq!(fields[16], "10", "niceness (field 19)");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "floe-codec");
    signal(server.pid(), Signal::KILL);
    eventually("the server is gone", WAIT, || !server.alive());
    eventually("the codec process died with the server", WAIT, || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    });
}
