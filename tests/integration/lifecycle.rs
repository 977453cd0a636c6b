//! Process lifecycle: graceful shutdown and the access log.

use std::time::Duration;

use crate::support::*;

/// SIGTERM ends the server cleanly (exit 0) and closes listener connections.
#[test]
fn graceful_shutdown_on_sigterm() {
    let mut server = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&server, "/bye.mp3", MP3);
    server.wait_live("/bye.mp3");
    let mut listener = Listener::connect(&server, "/bye.mp3", &[]);
    listener.read_at_least(1000, WAIT);
    let status = server.terminate().expect("floe exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(listener.closed_within(Duration::from_secs(5)));
}

/// The access log is in combined format plus seconds connected.
#[test]
fn access_log_combined_format() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let server_line: &'static str = Box::leak(format!("access_log = \"{}\"\n", log.display()).into_boxed_str());
    let server = TestServer::start(Opts { server: server_line, ..Opts::default() });
    let response =
        server.request("GET", "/status-json.xsl", &[("User-Agent", "LogTest/1.0"), ("Referer", "http://ref.example/")]);
    assert_eq!(response.status, 200);
    let len = response.body.len();
    eventually("the request is logged", WAIT, || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("LogTest")));
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().find(|l| l.contains("LogTest")).unwrap();
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.ends_with(&format!(
            "\"GET /status-json.xsl HTTP/1.0\" 200 {len} \"http://ref.example/\" \"LogTest/1.0\" 0"
        )),
        "{line}"
    );
}
