//! Who may do what, and what the logs say about it: failed logins are
//! throttled per address, admin actions cannot be forged by a foreign page,
//! renditions answer to their parent's credentials, credentials and hostile
//! text never reach a log in clear, and SIGHUP reopens the access log.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// A server whose access log is `access.log` in a directory of the test's.
fn with_access_log(dir: &tempfile::TempDir, rest: &'static str) -> TestServer {
    let log = dir.path().join("access.log");
    let server: &'static str = Box::leak(format!("access_log = \"{}\"\n", log.display()).into_boxed_str());
    TestServer::start(Opts { server, rest, ..Opts::default() })
}

fn metadata_request(user: &str, password: &str, song: &str) -> String {
    format!(
        "GET /admin/metadata?mount=/live.mp3&mode=updinfo&song={song} HTTP/1.0\r\nAuthorization: {}\r\n\r\n",
        basic(user, password)
    )
}

/// Password guessing stops after five failures: the address is refused
/// (429, Retry-After) without its password being checked, for a time that
/// doubles; another address, and the right password from it, are not
/// slowed at all. The block is logged.
#[test]
fn failed_logins_are_throttled_per_address() {
    let server = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let attacker = [127, 0, 0, 2];
    for _ in 0..5 {
        assert_eq!(request_from(attacker, server.http, &metadata_request("admin", "guess", "x")).status, 401);
    }
    // The sixth failure starts a block; then even the right password is refused.
    assert_eq!(request_from(attacker, server.http, &metadata_request("admin", "guess", "x")).status, 401);
    let blocked = request_from(attacker, server.http, &metadata_request("admin", "hackme", "x"));
    assert_eq!(blocked.status, 429, "{}", blocked.head);
    assert!(blocked.header("Retry-After").is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)));
    // Sources and the SHOUTcast port answer to the same record.
    let put = format!(
        "PUT /x.mp3 HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\n\r\n",
        basic("source", "hackme")
    );
    assert_eq!(request_from(attacker, server.http, &put).status, 429);
    // Another address logs in at once.
    let fine = request_from([127, 0, 0, 3], server.http, &metadata_request("admin", "hackme", "ok"));
    assert_eq!(fine.status, 200, "{}", fine.head);
    assert!(server.log().contains("too many failed logins"), "{}", server.log());
    // The block runs out: the right password works again and clears the record.
    eventually("the block ends", Duration::from_secs(5), || {
        request_from(attacker, server.http, &metadata_request("admin", "hackme", "back")).status == 200
    });
}

/// Renditions answer to their parent mount's credentials: the global source
/// password cannot set titles on a rendition of a mount that has its own,
/// and `admin.cgi` without `mount=`/`sid=` never picks a rendition.
#[test]
fn renditions_answer_to_their_parents_credentials() {
    let server = TestServer::start(Opts {
        auth: "admin_password = \"4dm1n\"\n",
        rest: r#"
[[mount]]
name = "/live.mp3"
username = "dj"
password = "secret"
[[mount.transcode]]
name = "/live-64.mp3"
codec = "mp3"
bitrate = 64
"#,
        ..Opts::default()
    });
    let url = format!("icecast://dj:secret@{}/live.mp3", server.http);
    let mut ffmpeg = Command::new("ffmpeg");
    ffmpeg.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i"]);
    ffmpeg.args(["sine=frequency=440:sample_rate=44100", "-c:a", "libmp3lame", "-b:a", "128k"]);
    let mut source = ffmpeg
        .args(["-content_type", "audio/mpeg", "-f", "mp3"])
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ffmpeg");
    server.wait_live("/live-64.mp3");
    let path = "/admin/metadata?mount=/live-64.mp3&mode=updinfo&song=Injected";
    let global = server.request("GET", path, &[("Authorization", &basic("source", "hackme"))]);
    assert_eq!(global.status, 401, "the global password is not the parent's");
    let own = server.request("GET", path, &[("Authorization", &basic("dj", "secret"))]);
    assert_eq!(own.status, 200, "the parent's credentials are");
    let cgi = server.get("/admin.cgi?mode=updinfo&pass=hackme&song=Injected");
    assert_eq!(cgi.status, 401, "the default mount is /live.mp3, which has its own password");
    let cgi_rendition = server.get("/admin.cgi?mode=updinfo&pass=hackme&mount=/live-64.mp3&song=Injected");
    assert_eq!(cgi_rendition.status, 401);
    let _ = source.kill();
    let _ = source.wait();
}

/// Credentials in URLs are never written to the access log, and text from
/// requests (control characters, ESC sequences, bidi overrides, quotes)
/// cannot forge a line or hide in either log.
#[test]
fn logs_hold_no_credentials_and_no_raw_outside_text() {
    let dir = tempfile::tempdir().unwrap();
    let server = with_access_log(&dir, "");
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    assert_eq!(server.get("/admin.cgi?mode=updinfo&pass=hackme&song=Logged").status, 200);
    let agent = "Agent\u{202e}\u{85}\"forged\" 200 0 \"-\" \"x\\";
    server.request("GET", "/x\"y", &[("User-Agent", agent), ("Referer", "http://r/\u{2066}")]);
    // Sources named with control characters: refused, and logged escaped.
    server.request("SOURCE", "/bad%0d%0aname.mp3", &[("Authorization", &basic("source", "hackme"))]);
    server.request("SOURCE", "/x%1b[31m.mp3", &[("Authorization", &basic("source", "hackme"))]);
    let log = dir.path().join("access.log");
    eventually("the lines are written", WAIT, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Agent") && l.contains("Logged"))
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("hackme"), "{text}");
    assert!(text.contains("pass=***"), "{text}");
    assert!(!text.contains('\u{202e}') && !text.contains('\u{85}') && !text.contains('\u{2066}'), "{text:?}");
    let line = text.lines().find(|l| l.contains("Agent")).expect("the request's line");
    assert!(line.contains("\"GET /x\\\"y HTTP/1.0\""), "{line}");
    assert!(
        line.ends_with("\"http://r/\\x{2066}\" \"Agent\\x{202e}\\x{85}\\\"forged\\\" 200 0 \\\"-\\\" \\\"x\\\\\" 0"),
        "{line}"
    );
    let server_log = server.log();
    assert!(server_log.contains("bad\\r\\nname.mp3"), "{server_log}");
    assert!(!server_log.contains("\nname.mp3") && !server_log.contains('\u{1b}'), "{server_log:?}");
}

/// SIGHUP (what logrotate sends) reopens the access log and never ends the
/// server: listeners stay connected.
#[test]
fn sighup_reopens_the_access_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = with_access_log(&dir, "");
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let mut listener = Listener::connect(&server, "/live.mp3", &[]);
    listener.read_at_least(1000, WAIT);
    let log = dir.path().join("access.log");
    server.get("/status-json.xsl");
    eventually("the first line", WAIT, || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("status-json")));
    std::fs::rename(&log, dir.path().join("access.log.1")).unwrap();
    signal(server.pid(), Signal::HUP);
    eventually("the log is reopened", WAIT, || server.log().contains("access log reopened"));
    server.get("/7.html");
    eventually("a fresh file gets the next line", WAIT, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("7.html"))
    });
    assert!(server.alive());
    let before = listener.body.len();
    listener.read_at_least(before + 8000, WAIT);
}

/// Admin actions a foreign page starts in the admin's browser (with its
/// cached credentials) are refused; the same URL typed into the browser, and
/// tools like curl, still work.
#[test]
fn admin_actions_cannot_be_forged_by_a_foreign_page() {
    let server = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/csrf.mjs");
    let forged = server.url("/admin/metadata?mount=/live.mp3&mode=updinfo&song=Forged");
    let typed = server.url("/admin/metadata?mount=/live.mp3&mode=updinfo&song=Typed");
    let _turn = one_browser_at_a_time();
    let out = run_bounded(Command::new("node").arg(script).arg(&forged).arg(&typed), Duration::from_secs(60));
    assert!(out.status_ok, "{} {}", out.stdout, out.stderr);
    let result: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON result");
    assert_eq!(result["forged"], 403, "{result}");
    assert_eq!(result["typed"], 200, "{result}");
    let title = |s: &TestServer| s.live_sources()[0]["title"].as_str().unwrap_or("").to_string();
    assert_eq!(title(&server), "Typed");
    // curl, as panels and scripts use the API: no browser headers, works.
    let curl = run_bounded(
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "admin:hackme"])
            .arg(server.url("/admin/metadata?mount=/live.mp3&mode=updinfo&song=Curl")),
        WAIT,
    );
    assert_eq!(curl.stdout, "200");
    assert_eq!(title(&server), "Curl");
    // A killsource forged the same way is refused too.
    let kill = server.request(
        "GET",
        "/admin/killsource?mount=/live.mp3",
        &[("Authorization", &basic("admin", "hackme")), ("Sec-Fetch-Site", "cross-site")],
    );
    assert_eq!(kill.status, 403);
    assert!(server.is_live("/live.mp3"));
}
