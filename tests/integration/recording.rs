//! Recording (`dump_file`): files named by strftime, a new one by size or
//! age, each playable on its own; a stuck disk costs the recording only.

use std::time::Duration;

use crate::support::*;

/// Files in `dir` whose names start with `prefix`, sorted.
fn files(dir: &std::path::Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
        .collect();
    found.sort();
    found
}

/// An MP3 mount rotated by age and an Ogg Opus mount rotated by size:
/// every file decodes on its own (the Opus ones start with their headers),
/// and everything the sources sent was recorded.
#[test]
fn recordings_rotate_by_age_and_size_and_each_file_plays() {
    let server = TestServer::with_mounts(
        "[[mount]]\nname = \"/rec.mp3\"\ndump_file = \"rec-%Y%m%d-%H%M%S.mp3\"\ndump_max_seconds = 1\n\n\
         [[mount]]\nname = \"/rec.opus\"\ndump_file = \"opus-%s.ogg\"\ndump_max_bytes = 12000\n",
    );
    let mut mp3 = FfmpegSource::start(&server, "/rec.mp3", MP3, "sine=frequency=440:sample_rate=44100", "2", &[]);
    let mut opus = FfmpegSource::start(&server, "/rec.opus", OPUS, "sine=frequency=440:sample_rate=48000", "2", &[]);
    server.wait_live("/rec.mp3");
    server.wait_live("/rec.opus");
    let dir = server.dir();
    eventually("several recordings of each mount", Duration::from_secs(30), || {
        files(&dir, "rec-").len() >= 3 && files(&dir, "opus-").len() >= 3
    });
    let recorded = server.mount_stat("/rec.mp3", "dump_bytes");
    assert!(recorded > 0);
    mp3.stop();
    opus.stop();
    eventually("the sources are gone", WAIT, || !server.is_live("/rec.mp3") && !server.is_live("/rec.opus"));

    let mp3_files = files(&dir, "rec-");
    let total: u64 = mp3_files.iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    assert!(total >= recorded, "{total} bytes in files, {recorded} counted earlier");
    for path in mp3_files.iter().chain(files(&dir, "opus-").iter()) {
        let stream = ffprobe(path.to_str().unwrap());
        let codec = stream["codec_name"].as_str().unwrap_or_default().to_string();
        assert!(codec == "mp3" || codec == "opus", "{}: {stream}", path.display());
        let data = std::fs::read(path).unwrap();
        if codec == "opus" {
            assert!(
                data.starts_with(b"OggS") && find(&data, b"OpusHead").is_some(),
                "{} has its headers",
                path.display()
            );
        }
    }
}

/// A recording that cannot be written (a FIFO nobody reads: the open never
/// returns) does not slow the mount's listeners, and the server still
/// shuts down promptly.
#[test]
fn a_stuck_recording_costs_listeners_nothing() {
    let mut server = TestServer::with_mounts("[[mount]]\nname = \"/stuck.mp3\"\ndump_file = \"stuck.fifo\"\n");
    let fifo = server.dir().join("stuck.fifo");
    let made = run_bounded(std::process::Command::new("mkfifo").arg(&fifo), Duration::from_secs(10));
    assert!(made.status_ok, "{}", made.stderr);
    let _source = FfmpegSource::start(&server, "/stuck.mp3", MP3, "sine=frequency=440:sample_rate=44100", "1", &[]);
    server.wait_live("/stuck.mp3");
    let mut listener = Listener::connect(&server, "/stuck.mp3", &[]);
    listener.read_at_least(64_000, WAIT);
    // 128 kbit/s is 16 kB/s: three more seconds arrive on time.
    let got = listener.read_for(Duration::from_secs(3));
    assert!(got >= 40_000, "only {got} bytes in 3 s");
    assert_eq!(server.mount_stat("/stuck.mp3", "dump_bytes"), 0);
    let started = std::time::Instant::now();
    let status = server.terminate().expect("exits");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "shutdown took {:?}", started.elapsed());
}
