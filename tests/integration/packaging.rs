//! What contrib/ ships for running Floe as a service: the systemd unit
//! passes `systemd-analyze verify`, and the logrotate snippet, run by the
//! real logrotate, rotates the access log while listeners stay connected.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

const CONTRIB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib");

/// The unit as shipped, with the binary where this build put it.
#[test]
fn systemd_unit_verifies_clean() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(format!("{CONTRIB}/floe.service")).unwrap();
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID") && unit.contains("LimitNOFILE="));
    let path = dir.path().join("floe.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/floe", env!("CARGO_BIN_EXE_floe"))).unwrap();
    let out = run_bounded(Command::new("systemd-analyze").arg("verify").arg(&path), Duration::from_secs(30));
    assert!(out.status_ok, "{}", out.stderr);
    // Unknown keys and bad values are warnings (exit 0) naming the file.
    let about_unit: Vec<&str> = out.stderr.lines().filter(|l| l.contains("floe.service")).collect();
    assert!(about_unit.is_empty(), "{about_unit:#?}");
}

/// logrotate moves the log away and sends SIGUSR1 (to the server only);
/// Floe writes the next lines to a fresh file, and a listener connected
/// throughout keeps streaming.
#[test]
fn logrotate_snippet_rotates_the_access_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let server_lines: &'static str = Box::leak(format!("access_log = \"{}\"\n", log.display()).into_boxed_str());
    let server = TestServer::start(Opts { server: server_lines, ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let mut listener = Listener::connect(&server, "/live.mp3", &[]);
    listener.read_at_least(8000, WAIT);
    server.get("/status-json.xsl");
    eventually("the first line", WAIT, || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("status-json")));

    let snippet = std::fs::read_to_string(format!("{CONTRIB}/floe.logrotate")).unwrap();
    let postrotate = snippet.lines().find(|l| l.contains("--signal=USR1")).expect("the snippet signals USR1");
    let snippet = snippet
        .replace("/var/log/floe", &dir.path().display().to_string())
        .replace(postrotate.trim(), &format!("kill -USR1 {}", server.pid()));
    let config = dir.path().join("logrotate.conf");
    std::fs::write(&config, snippet).unwrap();
    let state = dir.path().join("logrotate.state");
    let out = run_bounded(
        Command::new(logrotate()).arg("--force").arg("--state").arg(&state).arg(&config),
        Duration::from_secs(30),
    );
    assert!(out.status_ok, "logrotate: {}{}", out.stdout, out.stderr);
    assert!(std::fs::read_to_string(dir.path().join("access.log.1")).unwrap().contains("status-json"));
    eventually("the log is reopened", WAIT, || server.log().contains("SIGUSR1: access log reopened"));
    server.get("/7.html");
    eventually("a fresh file gets the next line", WAIT, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("7.html") && !l.contains("status-json"))
    });
    let before = listener.body.len();
    listener.read_at_least(before + 8000, WAIT);
}

/// logrotate lives in /usr/sbin, which a user's PATH may lack.
fn logrotate() -> &'static str {
    let on_path = Command::new("logrotate").arg("--version").output().is_ok_and(|o| o.status.success());
    if on_path {
        "logrotate"
    } else {
        "/usr/sbin/logrotate"
    }
}
