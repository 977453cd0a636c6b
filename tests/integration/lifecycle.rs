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

/// The shutdown drain is bounded: a listener that reads nothing (its
/// socket full, the server's write blocked) does not hold the exit up.
#[test]
fn shutdown_does_not_wait_for_a_listener_that_reads_nothing() {
    // A queue long enough that the stuck listener is not dropped as slow first.
    let mut server = TestServer::start(Opts { limits: "queue_size = 16777216\n", ..Opts::default() });
    // Ten times real time (160 kB/s) fills its socket buffers within seconds.
    let _source = FfmpegSource::start(&server, "/fast.mp3", MP3, "sine=frequency=440:sample_rate=44100", "10", &[]);
    server.wait_live("/fast.mp3");
    let stuck = Listener::connect(&server, "/fast.mp3", &[]);
    let mut reader = Listener::connect(&server, "/fast.mp3", &[]);
    reader.read_at_least(64_000, WAIT);
    let before = reader.body.len();
    reader.read_for(Duration::from_secs(4));
    assert!(reader.body.len() > before + 300_000, "the source runs fast");
    assert_eq!(server.mount_stat("/fast.mp3", "listeners"), 2, "the stuck listener is still there");
    let started = std::time::Instant::now();
    let status = server.terminate().expect("floe exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "the drain took {:?}", started.elapsed());
    drop(stuck);
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
    // A listener's line, written when it leaves, names it the same way.
    let _source = FfmpegSource::sine(&server, "/log.mp3", MP3);
    server.wait_live("/log.mp3");
    let mut listener = Listener::connect(&server, "/log.mp3", &[("Referer", "http://page.example/")]);
    listener.read_at_least(1000, WAIT);
    drop(listener);
    let listened = |l: &str| l.contains("GET /log.mp3");
    eventually("the listener is logged", WAIT, || std::fs::read_to_string(&log).is_ok_and(|l| l.lines().any(listened)));
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().find(|l| listened(l)).unwrap();
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(line.contains("\"GET /log.mp3 HTTP/1.1\" 200 "), "{line}");
    assert!(line.contains(" \"http://page.example/\" \"floe-test\" "), "{line}");
}

/// SIGTERM waits (bounded) for every listener's stream to end: each one's
/// last write done and its access-log line written before the process
/// exits, however many there are.
#[test]
fn shutdown_waits_for_listener_streams_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let server_line: &'static str = Box::leak(format!("access_log = \"{}\"\n", log.display()).into_boxed_str());
    let mut server = TestServer::start(Opts { server: server_line, ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/bye.mp3", MP3);
    server.wait_live("/bye.mp3");
    let mut listeners: Vec<Listener> = (0..40).map(|_| Listener::connect(&server, "/bye.mp3", &[])).collect();
    for listener in &mut listeners {
        listener.read_at_least(1000, WAIT);
    }
    let status = server.terminate().expect("floe exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let logged = text.lines().filter(|l| l.contains("\"GET /bye.mp3 HTTP/1.1\" 200 ")).count();
    assert_eq!(logged, listeners.len(), "every listener's stream ended and was logged before the exit:\n{text}");
    for listener in &mut listeners {
        assert!(listener.closed_within(Duration::from_secs(5)));
    }
}
