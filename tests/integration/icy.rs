//! ICY metadata: exact framing, titles in step with the audio, and limits.

use std::time::Duration;

use crate::support::*;

const SMALL_METAINT: &str = "[[mount]]\nname = \"/icy.mp3\"\nmetaint = 1000\n";

fn set_title(server: &TestServer, song: &str) {
    let path = format!("/admin/metadata?mount=/icy.mp3&mode=updinfo&song={song}");
    let response = server.admin(&path);
    assert_eq!(response.status, 200, "{}", response.text());
}

/// With `Icy-MetaData: 1`: `icy-metaint` header, a block after exactly every
/// metaint audio bytes, `StreamTitle='…';` padded to 16; without it, pure audio.
#[test]
fn exact_icy_framing() {
    let server = TestServer::start(Opts { rest: SMALL_METAINT, ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/icy.mp3", MP3);
    server.wait_live("/icy.mp3");
    set_title(&server, "First+Song");
    let mut icy = Listener::connect(&server, "/icy.mp3", &[("Icy-MetaData", "1")]);
    assert_eq!(icy.head.header("icy-metaint").as_deref(), Some("1000"));
    assert!(icy.head.head.starts_with("HTTP/1.0 200 OK\r\n"));
    assert!(icy.head.header("Transfer-Encoding").is_none());
    icy.read_at_least(20_000, WAIT);
    let body = icy.body.clone();
    // Walk the framing by hand: 1000 audio bytes, a length byte, 16×len bytes.
    let mut at = 0;
    let mut blocks = 0;
    while at + 1000 < body.len() {
        at += 1000;
        let len = body[at] as usize * 16;
        if at + 1 + len > body.len() {
            break;
        }
        let block = &body[at + 1..at + 1 + len];
        if len > 0 {
            let text = std::str::from_utf8(block).unwrap().trim_end_matches('\0');
            assert!(text.starts_with("StreamTitle='") && text.ends_with("';"), "{text:?}");
            assert!(block.len().is_multiple_of(16));
        }
        at += 1 + len;
        blocks += 1;
    }
    assert!(blocks >= 15, "only {blocks} blocks");
    let (audio, _) = split_icy(&body, 1000);
    assert!(mp3_frames_contiguous(&audio) + 2000 >= audio.len(), "audio between blocks is intact MP3");

    let mut plain = Listener::connect(&server, "/icy.mp3", &[]);
    assert!(plain.head.header("icy-metaint").is_none());
    plain.read_at_least(20_000, WAIT);
    assert!(mp3_frames_contiguous(&plain.body) + 2000 >= plain.body.len(), "plain body is pure MP3");
}

/// A new listener's first block names the current title even while its
/// burst still plays audio from before the change (stream scrapers and
/// "now playing" widgets read one block and hang up), the older title is
/// never sent after it, and from then on titles change where they changed in
/// the audio, for early and late listeners alike.
#[test]
fn title_changes_in_step_with_audio() {
    // A burst shorter than what is streamed under "Old" before "New", so the
    // late joiner's burst surely starts under "Old".
    let rest = "[[mount]]\nname = \"/icy.mp3\"\nmetaint = 1000\nburst_size = 8192\n";
    let server = TestServer::start(Opts { rest, ..Opts::default() });
    // Noise, so every MP3 frame is unique and positions can be matched.
    let _source =
        FfmpegSource::start(&server, "/icy.mp3", MP3, "anoisesrc=color=pink:sample_rate=44100:seed=7", "1", &[]);
    server.wait_live("/icy.mp3");
    set_title(&server, "Old");
    let mut early = Listener::connect(&server, "/icy.mp3", &[("Icy-MetaData", "1")]);
    early.read_at_least(40_000, WAIT);
    set_title(&server, "New");
    let mut late = Listener::connect(&server, "/icy.mp3", &[("Icy-MetaData", "1")]);
    late.read_at_least(40_000, WAIT);
    early.read_at_least(early.body.len() + 20_000, WAIT);
    set_title(&server, "Third");
    late.read_at_least(late.body.len() + 60_000, WAIT);
    early.read_at_least(early.body.len() + 60_000, WAIT);

    let (early_audio, early_blocks) = split_icy(&early.body, 1000);
    let (late_audio, late_blocks) = split_icy(&late.body, 1000);
    // The late joiner's burst predates the change, but its first block is the current title.
    assert_eq!(late_blocks.first().map(|b| b.1.as_str()), Some("StreamTitle='New';"));
    assert!(late_blocks.iter().all(|(_, t)| !t.contains("'Old'")), "the old title came back: {late_blocks:?}");
    let change = |blocks: &[(usize, String)]| {
        blocks.iter().find(|(_, t)| t.contains("'Third'")).map(|(offset, _)| *offset).expect("title changes")
    };
    // Map the late listener's audio into the early listener's coordinates.
    let shift = find(&early_audio, &late_audio[..4096]).expect("late audio is part of the early stream");
    let early_change = change(&early_blocks);
    let late_change = change(&late_blocks) + shift;
    assert!(
        early_change.abs_diff(late_change) <= 1000,
        "title changed at {early_change} for one listener and {late_change} for the other"
    );
}

/// Titles over the 4080-byte ICY limit are cut on a character boundary.
#[test]
fn long_titles_are_truncated_on_char_boundary() {
    // The percent-encoded title needs a longer request line than the default.
    let limits = "max_header_line = 32768\nmax_header_size = 65536\n";
    let server = TestServer::start(Opts { rest: SMALL_METAINT, limits, ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/icy.mp3", MP3);
    server.wait_live("/icy.mp3");
    let mut listener = Listener::connect(&server, "/icy.mp3", &[("Icy-MetaData", "1")]);
    listener.read_at_least(5_000, WAIT);
    // 3000 × "é" (percent-encoded UTF-8) is 6000 bytes.
    set_title(&server, &"%C3%A9".repeat(3000));
    let found = |listener: &Listener| {
        let (_, blocks) = split_icy(&listener.body, 1000);
        blocks.into_iter().find(|(_, t)| t.contains('é'))
    };
    let deadline = std::time::Instant::now() + WAIT;
    while found(&listener).is_none() {
        assert!(std::time::Instant::now() < deadline, "long title never arrived");
        listener.read_for(Duration::from_millis(200));
    }
    let (_, text) = found(&listener).unwrap();
    assert!(text.len() <= 4080);
    assert!(text.starts_with("StreamTitle='é") && text.ends_with("';"), "cut inside the value, still well-formed");
    assert!(text.len() > 4000, "only as much as needed was cut");
    // The stream continues normally after the long block.
    listener.read_at_least(listener.body.len() + 10_000, WAIT);
}
