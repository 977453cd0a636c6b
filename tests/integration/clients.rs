//! Real third-party source clients: ezstream (libshout) and liquidsoap.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// Liquidsoap needs a few seconds to start; bound its waits generously.
const LIQUIDSOAP_WAIT: Duration = Duration::from_secs(60);

/// A source client process; killed when dropped. Its output goes to `log`.
pub(crate) struct ClientProcess {
    child: Child,
    log: PathBuf,
}

impl ClientProcess {
    fn spawn(cmd: &mut Command, log: PathBuf) -> ClientProcess {
        let out = std::fs::File::create(&log).expect("client log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?} (scripts/test installs ezstream and liquidsoap): {e}"));
        ClientProcess { child, log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Wait until `mount` is live; on failure (timeout or the client exiting) show both logs.
pub(crate) fn wait_live_or_explain(server: &TestServer, client: &mut ClientProcess, mount: &str, limit: Duration) {
    let mut exited = None;
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eventually(&format!("{mount} is live"), limit, || {
            exited = client.child.try_wait().expect("wait for client");
            exited.is_some() || server.is_live(mount)
        })
    }));
    if waited.is_err() || exited.is_some() {
        panic!(
            "{mount} did not go live (client exit: {exited:?})\n--- client output:\n{}\n--- server log:\n{}",
            client.output(),
            server.log()
        );
    }
}

/// Access-log lines (the part after the tracing prefix) from the server log.
fn access_lines(server: &TestServer) -> Vec<String> {
    server.log().lines().filter_map(|line| line.find("127.0.0.1 - ").map(|at| line[at..].to_string())).collect()
}

/// Position of the first access line containing every one of `parts`.
fn access_line(lines: &[String], parts: &[&str]) -> Option<usize> {
    lines.iter().position(|line| parts.iter().all(|p| line.contains(p)))
}

/// An MP3 file (20 s, 440 Hz, 128 kbit/s, 44.1 kHz stereo) with ID3 artist/title tags.
pub(crate) fn tagged_mp3(server: &TestServer) -> PathBuf {
    let args = ["-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "3"];
    let tags = ["-metadata", "artist=Ez Artist", "-metadata", "title=Ez Title"];
    ffmpeg_make(server, "tone.mp3", "sine=frequency=440:sample_rate=44100:duration=20", &[&args[..], &tags].concat())
}

/// Start ezstream looping `file` to `mount`; `tls` is the `<tls>` setting.
fn ezstream(server: &TestServer, mount: &str, file: &std::path::Path, tls: &str) -> ClientProcess {
    let connection = format!(
        "<protocol>HTTP</protocol><hostname>127.0.0.1</hostname><port>{}</port><tls>{tls}</tls>",
        server.http.port()
    );
    ezstream_with(server, mount, file, &connection)
}

/// Start ezstream looping `file` to `mount` over `connection` (the
/// `<server>` elements saying how to reach the server).
pub(crate) fn ezstream_with(
    server: &TestServer,
    mount: &str,
    file: &std::path::Path,
    connection: &str,
) -> ClientProcess {
    let config = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ezstream>
  <servers>
    <server>
      {connection}
      <user>source</user>
      <password>hackme</password>
      <reconnect_attempts>0</reconnect_attempts>
    </server>
  </servers>
  <streams>
    <stream>
      <mountpoint>{mount}</mountpoint>
      <format>MP3</format>
      <public>No</public>
      <stream_name>Ez Stream</stream_name>
      <stream_genre>Beeps</stream_genre>
    </stream>
  </streams>
  <intakes>
    <intake>
      <type>file</type>
      <filename>{file}</filename>
      <stream_once>No</stream_once>
    </intake>
  </intakes>
  <metadata>
    <format_str>@a@ - @t@</format_str>
  </metadata>
</ezstream>
"#,
        file = file.display(),
    );
    let name = format!("ezstream{}", mount.replace(['/', '.'], "_"));
    let path = server.dir().join(format!("{name}.xml"));
    std::fs::write(&path, config).unwrap();
    // ezstream refuses a configuration file that others can read.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    ClientProcess::spawn(
        Command::new("ezstream").arg("-v").arg("-c").arg(&path),
        server.dir().join(format!("{name}.log")),
    )
}

/// Start liquidsoap running `output` (an output expression ending in the source) from a script file.
fn liquidsoap(server: &TestServer, name: &str, output: &str) -> ClientProcess {
    let script = format!(
        "settings.init.allow_root.set(true)\n\
         settings.log.file.set(false)\n\
         settings.log.stdout.set(true)\n\
         settings.log.level.set(3)\n\
         {output}\n"
    );
    let path = server.dir().join(format!("{name}.liq"));
    std::fs::write(&path, script).unwrap();
    ClientProcess::spawn(Command::new("liquidsoap").arg(&path), server.dir().join(format!("{name}.log")))
}

/// ffprobe a listener capture of `mount` (at least 24 KiB).
fn probe_mount(server: &TestServer, mount: &str) -> serde_json::Value {
    let mut listener = Listener::connect(server, mount, &[]);
    listener.read_at_least(24 * 1024, WAIT);
    let path = server.dir().join(format!("probe{}", mount.replace('/', "_")));
    std::fs::write(&path, &listener.body).unwrap();
    ffprobe(path.to_str().unwrap())
}

/// The status JSON `source` entry of `mount`.
fn source_status(server: &TestServer, mount: &str) -> serde_json::Value {
    server
        .live_sources()
        .into_iter()
        .find(|s| s["listenurl"].as_str().is_some_and(|u| u.ends_with(mount)))
        .unwrap_or_else(|| panic!("{mount} is not in the status JSON"))
}

/// ezstream (libshout, TLS "may"): `OPTIONS *`, PUT without credentials → 401, PUT with Basic → live
/// MP3 that decodes cleanly, and its ID3-derived title arrives via `/admin/metadata`.
#[test]
fn ezstream_put_mp3_with_metadata() {
    let server = TestServer::start(Opts::default());
    let file = tagged_mp3(&server);
    let mut client = ezstream(&server, "/ez.mp3", &file, "may");
    wait_live_or_explain(&server, &mut client, "/ez.mp3", WAIT);

    let stream = probe_mount(&server, "/ez.mp3");
    assert_eq!(stream["codec_name"], "mp3", "{stream}");
    assert_eq!(stream["sample_rate"], "44100", "{stream}");
    let errors = ffmpeg_decode(&server.url("/ez.mp3"), 3);
    assert!(errors.trim().is_empty(), "decode errors on /ez.mp3: {errors}");

    eventually("ezstream's title shows in the status JSON", WAIT, || {
        source_status(&server, "/ez.mp3")["title"] == "Ez Artist - Ez Title"
    });
    let status = source_status(&server, "/ez.mp3");
    assert_eq!(status["server_name"], "Ez Stream", "{status}");
    assert_eq!(status["genre"], "Beeps", "{status}");

    // The source's access line is written when it disconnects.
    client.stop();
    eventually("the source's access line is logged", WAIT, || {
        access_line(&access_lines(&server), &["\"PUT /ez.mp3 HTTP/1.1\" 200"]).is_some()
    });
    let lines = access_lines(&server);
    let options = access_line(&lines, &["\"OPTIONS * HTTP/1.1\" 200", "libshout"]);
    let refused = access_line(&lines, &["127.0.0.1 - - ", "\"PUT /ez.mp3 HTTP/1.1\" 401", "libshout"]);
    let accepted = access_line(&lines, &["127.0.0.1 - source ", "\"PUT /ez.mp3 HTTP/1.1\" 200", "libshout"]);
    assert!(options.is_some(), "no OPTIONS * line:\n{}", lines.join("\n"));
    assert!(refused.is_some() && refused < accepted, "no 401 before the accepted PUT:\n{}", lines.join("\n"));
    assert!(
        access_line(&lines, &["127.0.0.1 - source ", "GET /admin/metadata?mode=updinfo&mount=%2fez%2emp3", "\" 200 "])
            .is_some(),
        "no authenticated metadata update:\n{}",
        lines.join("\n")
    );
}

/// ezstream with `<tls>none</tls>` uses the legacy SOURCE method: 401 without credentials, then live.
#[test]
fn ezstream_legacy_source_mp3() {
    let server = TestServer::start(Opts::default());
    let file = tagged_mp3(&server);
    let mut client = ezstream(&server, "/ez-legacy.mp3", &file, "none");
    wait_live_or_explain(&server, &mut client, "/ez-legacy.mp3", WAIT);
    let errors = ffmpeg_decode(&server.url("/ez-legacy.mp3"), 2);
    assert!(errors.trim().is_empty(), "decode errors on /ez-legacy.mp3: {errors}");

    client.stop();
    eventually("the source's access line is logged", WAIT, || {
        access_line(&access_lines(&server), &["\"SOURCE /ez-legacy.mp3 HTTP/1.0\" 200"]).is_some()
    });
    let lines = access_lines(&server);
    let refused = access_line(&lines, &["127.0.0.1 - - ", "\"SOURCE /ez-legacy.mp3 HTTP/1.0\" 401", "libshout"]);
    let accepted = access_line(&lines, &["127.0.0.1 - source ", "\"SOURCE /ez-legacy.mp3 HTTP/1.0\" 200"]);
    assert!(refused.is_some() && refused < accepted, "no 401 before the accepted SOURCE:\n{}", lines.join("\n"));
    assert!(
        access_line(&lines, &["OPTIONS"]).is_none(),
        "libshout without TLS sends no OPTIONS:\n{}",
        lines.join("\n")
    );
}

/// liquidsoap `output.icecast(%mp3)` from `sine()`: live with its ice-name/genre, decodes as 44.1 kHz MP3.
#[test]
fn liquidsoap_icecast_mp3() {
    let server = TestServer::start(Opts::default());
    let mut client = liquidsoap(
        &server,
        "liquidsoap-icecast",
        &format!(
            "output.icecast(%mp3(bitrate=128), host=\"127.0.0.1\", port={}, password=\"hackme\", \
             mount=\"/liq.mp3\", name=\"Liq Name\", genre=\"Liq Genre\", sine(440.))",
            server.http.port()
        ),
    );
    wait_live_or_explain(&server, &mut client, "/liq.mp3", LIQUIDSOAP_WAIT);

    let status = source_status(&server, "/liq.mp3");
    assert_eq!(status["server_name"], "Liq Name", "{status}");
    assert_eq!(status["genre"], "Liq Genre", "{status}");
    assert_eq!(status["server_type"], "audio/mpeg", "{status}");
    let stream = probe_mount(&server, "/liq.mp3");
    assert_eq!(stream["codec_name"], "mp3", "{stream}");
    assert_eq!(stream["sample_rate"], "44100", "{stream}");
    let errors = ffmpeg_decode(&server.url("/liq.mp3"), 3);
    assert!(errors.trim().is_empty(), "decode errors on /liq.mp3: {errors}");
}

/// liquidsoap `output.shoutcast` (SHOUTcast v1 on port+1) lands in /stream with its icy-name/genre/url.
#[test]
fn liquidsoap_shoutcast_v1() {
    let server = TestServer::start(Opts::default());
    // output.shoutcast connects to `port + 1` for the v1 source protocol.
    let mut client = liquidsoap(
        &server,
        "liquidsoap-shoutcast",
        &format!(
            "output.shoutcast(%mp3(bitrate=128), host=\"127.0.0.1\", port={}, password=\"hackme\", \
             name=\"Liq SC Name\", genre=\"Liq SC Genre\", url=\"http://example.invalid/\", sine(440.))",
            server.shoutcast.port() - 1
        ),
    );
    wait_live_or_explain(&server, &mut client, "/stream", LIQUIDSOAP_WAIT);

    let status = source_status(&server, "/stream");
    assert_eq!(status["server_name"], "Liq SC Name", "{status}");
    assert_eq!(status["genre"], "Liq SC Genre", "{status}");
    assert_eq!(status["server_url"], "http://example.invalid/", "{status}");
    assert_eq!(status["bitrate"], 128, "{status}");
    let errors = ffmpeg_decode(&server.url("/stream"), 3);
    assert!(errors.trim().is_empty(), "decode errors on /stream: {errors}");
}
