//! Headless Chromium plays mounts from the status page's `<audio>` elements.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// Press play on `mount`'s player on the status page and check that
/// Chromium's `<audio>` plays it: `currentTime` advances past one second.
fn assert_chromium_plays(server: &TestServer, mount: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/play.mjs");
    let _turn = one_browser_at_a_time();
    let out = run_bounded(Command::new("node").arg(script).arg(server.url("/")).arg(mount), Duration::from_secs(60));
    assert!(out.status_ok, "chromium did not play {mount}: {} {}\n{}", out.stdout, out.stderr, server.log());
    let result: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON result");
    assert!(result["currentTime"].as_f64().unwrap() > 1.0, "{mount}: {result}");
    assert_eq!(result["paused"], false, "{mount}: {result}");
    assert!(result["src"].as_str().unwrap().ends_with(mount), "{mount}: {result}");
}

#[test]
fn chromium_plays_mp3_from_status_page() {
    let server = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    assert_chromium_plays(&server, "/live.mp3");
}

/// The browser renditions: Opus in WebM (the Safari container) and in Ogg,
/// the WebM one on demand (started by the browser's request).
#[test]
fn chromium_plays_webm_and_ogg_renditions() {
    let server = TestServer::with_mounts(
        r#"
[[mount]]
name = "/live.mp3"
[[mount.transcode]]
name = "/live.webm"
codec = "opus"
container = "webm"
on_demand = true
[[mount.transcode]]
name = "/live.opus"
codec = "opus"
"#,
    );
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.webm");
    server.wait_live("/live.opus");
    for mount in ["/live.webm", "/live.opus"] {
        assert_chromium_plays(&server, mount);
    }
}

/// The admin page in Chromium: it loads without console errors for the
/// admin user (and not at all without credentials), shows the mount, and
/// its buttons kick a listener, set the title and reload the configuration.
#[test]
fn admin_page_kicks_listeners_and_sets_titles() {
    let server = TestServer::start(Opts::default());
    server.rewrite_config(&Opts { rest: "[[mount]]\nname = \"/added.mp3\"\n", ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    for path in ["/admin/", "/admin/stats.xsl", "/admin/history.json"] {
        assert_eq!(server.get(path).status, 401, "{path}");
        assert_eq!(server.admin(path).status, 200, "{path}");
    }
    assert!(server.get("/status.xsl").text().contains("<title>Floe"), "Icecast's public page path");
    // The browser's turn first: a listener left unread while other browser
    // tests run would fall behind and be dropped.
    let _turn = one_browser_at_a_time();
    let mut listener = Listener::connect(&server, "/live.mp3", &[]);
    listener.read_at_least(1000, WAIT);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/admin.mjs");
    let title = "Admin \u{2013} <b>not markup</b>";
    let out = run_bounded(
        std::process::Command::new("node").arg(script).arg(server.url("/admin/")).arg("/live.mp3").arg(title),
        std::time::Duration::from_secs(90),
    );
    let report: serde_json::Value =
        serde_json::from_str(out.stdout.trim()).unwrap_or_else(|_| panic!("no report: {}\n{}", out.stdout, out.stderr));
    assert!(report.get("exception").is_none(), "{report}\n{}", server.log());
    assert_eq!(report["status"], 200);
    assert_eq!(report["errors"], serde_json::json!([]), "no console errors: {report}");
    assert!(report["listenersShown"].as_str().unwrap().starts_with('1'), "{report}");
    assert_eq!(report["rowsBefore"], 1);
    let shown = report["bytesShown"].as_str().unwrap_or_default();
    let received: f64 = shown.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0.0);
    assert!(received > 0.0, "the listener's bytes are shown: {report}");
    assert_eq!(report["spark"], true, "each mount has its graph");
    assert!(listener.closed_within(WAIT), "the kicked listener's connection ends");
    assert_eq!(report["titleShown"], format!("Now: {title}"), "set as text, shown as text");
    let status = server.status_json();
    assert_eq!(status["icestats"]["source"]["title"], title);
    let reloaded = report["reloadNotice"].as_str().unwrap_or_default();
    assert!(reloaded.starts_with("Configuration reloaded: mounts added: /added.mp3;"), "{report}");
}

/// The status page follows the public event feed: a new title shows up
/// without the page polling every few seconds (it reads the status once
/// per change), and the feed tells the public nothing about listeners.
#[test]
fn status_page_follows_the_public_event_feed() {
    let server = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let feed = run_bounded(
        std::process::Command::new("curl").args(["-sN", "--max-time", "3"]).arg(server.url("/status-events")),
        WAIT,
    );
    assert!(feed.stdout.contains("event: stats"), "{}", feed.stdout);
    assert!(!feed.stdout.contains("127.0.0.1"), "no addresses in the public feed: {}", feed.stdout);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/status_live.mjs");
    let title = "Live \u{2013} now";
    let _turn = one_browser_at_a_time();
    let mut child = std::process::Command::new("node")
        .arg(script)
        .arg(server.url("/"))
        .arg("/live.mp3")
        .arg(title)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    let polls_before = server.log().matches("GET /status-json.xsl HTTP/1.1").count();
    if ready == "READY" {
        let encoded = title.replace(' ', "%20").replace('\u{2013}', "%E2%80%93");
        assert_eq!(server.admin(&format!("/admin/metadata?mount=/live.mp3&mode=updinfo&song={encoded}")).status, 200);
    }
    let report = lines.next().and_then(Result::ok).unwrap_or_default();
    let _ = child.wait();
    let report: serde_json::Value =
        serde_json::from_str(&report).unwrap_or_else(|_| panic!("no report ({ready}): {report}\n{}", server.log()));
    assert!(report.get("exception").is_none(), "{report}");
    assert_eq!(report["shown"], title);
    assert_eq!(report["errors"], serde_json::json!([]));
    // 12 s or more after READY: polling every 5 s would have read the status at least twice more.
    let polls = server.log().matches("GET /status-json.xsl HTTP/1.1").count() - polls_before;
    assert!(polls <= 2, "{polls} status reads after the change: the page polls instead of following the feed");
}
