//! Real clients and media: ffmpeg as a source and decoder, ffprobe, bounded
//! runs of external programs, and the MP3 and ICY helpers tests read
//! streams with.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TestServer;

/// An ffmpeg process streaming a generated signal to a mount; killed on drop.
pub struct FfmpegSource {
    child: Child,
    pub log: PathBuf,
}

/// Codec settings for a generated source stream.
#[derive(Clone, Copy)]
pub struct Codec {
    pub args: &'static [&'static str],
    pub content_type: &'static str,
    pub muxer: &'static str,
}

pub const MP3: Codec =
    Codec { args: &["-c:a", "libmp3lame", "-b:a", "128k"], content_type: "audio/mpeg", muxer: "mp3" };
pub const AAC: Codec = Codec { args: &["-c:a", "aac", "-b:a", "96k"], content_type: "audio/aac", muxer: "adts" };
pub const OPUS: Codec = Codec { args: &["-c:a", "libopus", "-b:a", "96k"], content_type: "audio/ogg", muxer: "ogg" };
pub const VORBIS: Codec = Codec { args: &["-c:a", "libvorbis", "-q:a", "3"], content_type: "audio/ogg", muxer: "ogg" };

impl FfmpegSource {
    /// Stream `input` (an lavfi graph) with `codec` to `mount` via `icecast://` (HTTP PUT),
    /// at `rate` × real time. `extra` goes before the output URL (e.g. `-legacy_icecast 1`).
    pub fn start(
        server: &TestServer,
        mount: &str,
        codec: Codec,
        input: &str,
        rate: &str,
        extra: &[&str],
    ) -> FfmpegSource {
        let url = format!("icecast://source:hackme@{}{}", server.http, mount);
        FfmpegSource::start_url(server, &url, codec, input, rate, extra)
    }

    /// As `start`, to any `icecast://` URL (another port, `-tls 1` in `extra`).
    pub fn start_url(
        server: &TestServer,
        url: &str,
        codec: Codec,
        input: &str,
        rate: &str,
        extra: &[&str],
    ) -> FfmpegSource {
        let mount = url.split_once("://").and_then(|(_, rest)| rest.split_once('/')).map_or("", |(_, path)| path);
        let log = server.dir().join(format!("ffmpeg_{}.log", mount.replace('/', "_")));
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-readrate", rate, "-f", "lavfi", "-i", input]);
        cmd.args(codec.args).args(["-content_type", codec.content_type, "-f", codec.muxer]);
        cmd.args(extra).arg(url);
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("ffmpeg is installed (scripts/test installs it)");
        FfmpegSource { child, log }
    }

    /// Stream a file as it is (`-c copy`), in real time.
    pub fn file(
        server: &TestServer,
        mount: &str,
        path: &std::path::Path,
        content_type: &str,
        muxer: &str,
    ) -> FfmpegSource {
        let log = server.dir().join(format!("ffmpeg{}.log", mount.replace('/', "_")));
        let url = format!("icecast://source:hackme@{}{}", server.http, mount);
        let child = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i"])
            .arg(path)
            .args(["-c", "copy", "-content_type", content_type, "-f", muxer])
            .arg(url)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("ffmpeg is installed (scripts/test installs it)");
        FfmpegSource { child, log }
    }

    /// A 440 Hz sine at 44.1 kHz, real time.
    pub fn sine(server: &TestServer, mount: &str, codec: Codec) -> FfmpegSource {
        FfmpegSource::start(server, mount, codec, "sine=frequency=440:sample_rate=44100", "1", &[])
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FfmpegSource {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Make `name` in the server's directory with ffmpeg from the lavfi graph
/// `input` and the output options `args`; returns its path.
pub fn ffmpeg_make(server: &TestServer, name: &str, input: &str, args: &[&str]) -> PathBuf {
    let path = server.dir().join(name);
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", input]).args(args).arg(&path);
    let out = run_bounded(&mut cmd, Duration::from_secs(30));
    assert!(out.status_ok, "ffmpeg could not make {name}: {}", out.stderr);
    path
}

/// `input` decoded by ffmpeg to 16 kHz mono samples.
pub fn decode_mono_16k(input: &str) -> Vec<i16> {
    decode_mono_16k_with(input, &[])
}

/// The first `seconds` of `input` (a live one never ends) as 16 kHz mono.
pub fn decode_mono_16k_for(input: &str, seconds: u32) -> Vec<i16> {
    decode_mono_16k_with(input, &["-t", &seconds.to_string()])
}

fn decode_mono_16k_with(input: &str, options: &[&str]) -> Vec<i16> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", input])
        .args(options)
        .args(["-ac", "1", "-ar", "16000", "-f", "s16le", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg");
    out.stdout.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// The frequency of the tone in 16 kHz `samples`, by counting zero
/// crossings; asserts there is at least a second of it and that it is not
/// silence.
pub fn tone_frequency_of(samples: &[i16]) -> f64 {
    assert!(samples.len() > 16000, "at least a second of audio ({} samples)", samples.len());
    let loud = samples.iter().map(|s| i32::from(*s).abs()).max().unwrap_or(0);
    assert!(loud > 1000, "not silence (peak {loud})");
    let crossings = samples.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (samples.len() as f64 / 16000.0)
}

/// Decode `seconds` of `url` with ffmpeg; returns ffmpeg's error output (empty = clean).
pub fn ffmpeg_decode(url: &str, seconds: u32) -> String {
    let out = run_bounded(
        Command::new("ffmpeg").args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-i",
            url,
            "-t",
            &seconds.to_string(),
            "-f",
            "null",
            "-",
        ]),
        Duration::from_secs(u64::from(seconds) + 20),
    );
    assert!(out.status_ok, "ffmpeg failed to decode {url}: {}", out.stderr);
    out.stderr
}

/// ffprobe a file or URL: the first audio stream's description.
pub fn ffprobe(input: &str) -> serde_json::Value {
    let out = run_bounded(
        Command::new("ffprobe").args(["-v", "error", "-show_streams", "-select_streams", "a:0", "-of", "json", input]),
        Duration::from_secs(30),
    );
    assert!(out.status_ok, "ffprobe failed on {input}: {}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("ffprobe JSON");
    json["streams"][0].clone()
}

/// Output of a finished process.
pub struct Output {
    pub status_ok: bool,
    /// Exit code; `None` if killed (by a signal or the time limit).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run a command to completion, killing it after `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status_ok: status.is_some_and(|s| s.success()),
        code: status.and_then(|s| s.code()),
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

/// Assert a listener of a 128 kbit/s mount received at least `share` of the
/// full rate over `elapsed`. Floe delivers in ticks (`delivery_interval_ms`,
/// 250 by default), so a window may end just before a tick: one tick and a
/// little scheduling are allowed for, and a window shorter than that asserts
/// only that something arrived.
pub fn assert_full_rate(got: usize, elapsed: Duration, share: f64, who: &str) {
    const TICK_SLACK: Duration = Duration::from_millis(350);
    let counted = elapsed.saturating_sub(TICK_SLACK).as_secs_f64();
    assert!(got > 0, "{who} got nothing in {elapsed:?}");
    assert!(got as f64 >= share * 16_000.0 * counted, "{who} got {got} bytes in {elapsed:?}");
}

/// Walk MP3 frames from the start of `data`; returns how many bytes form
/// back-to-back valid frames (a partial final frame is allowed).
pub fn mp3_frames_contiguous(data: &[u8]) -> usize {
    let mut at = 0;
    while at + 4 <= data.len() {
        let Some(len) = mp3_frame_len(&data[at..at + 4]) else { break };
        if at + len > data.len() {
            return data.len();
        }
        at += len;
    }
    at
}

/// Length of the MPEG-1/2 Layer III frame starting with this header.
pub fn mp3_frame_len(h: &[u8]) -> Option<usize> {
    if h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (h[1] >> 3) & 3; // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
    let layer = (h[1] >> 1) & 3; // 1 = Layer III
    let bitrate_index = (h[2] >> 4) as usize;
    let rate_index = ((h[2] >> 2) & 3) as usize;
    let padding = ((h[2] >> 1) & 1) as usize;
    if layer != 1 || version == 1 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    const V1: [usize; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
    const V2: [usize; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let rates = [[11025, 12000, 8000], [0, 0, 0], [22050, 24000, 16000], [44100, 48000, 32000]];
    let rate = rates[version as usize][rate_index];
    Some(if version == 3 {
        144 * V1[bitrate_index] * 1000 / rate + padding
    } else {
        72 * V2[bitrate_index] * 1000 / rate + padding
    })
}

/// Split an ICY-interleaved body into audio and the metadata block texts,
/// each with the audio offset it followed.
pub fn split_icy(body: &[u8], metaint: usize) -> (Vec<u8>, Vec<(usize, String)>) {
    let mut audio = Vec::new();
    let mut blocks = Vec::new();
    let mut at = 0;
    loop {
        let take = metaint.min(body.len() - at);
        audio.extend_from_slice(&body[at..at + take]);
        at += take;
        if at >= body.len() {
            break;
        }
        let len = body[at] as usize * 16;
        if at + 1 + len > body.len() {
            break;
        }
        let text = String::from_utf8(body[at + 1..at + 1 + len].to_vec()).expect("metadata is UTF-8");
        blocks.push((audio.len(), text.trim_end_matches('\0').to_string()));
        at += 1 + len;
    }
    (audio, blocks)
}
