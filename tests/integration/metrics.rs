//! `/metrics`, read by Prometheus' own text-format parser (the Python
//! client's, as Debian packages it), following what the server does.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// Parse an exposition with `prometheus_client.parser`: every sample as
/// (name, labels, value); the parser rejects anything malformed.
fn parse_exposition(text: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    const PARSE: &str = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families as parse\n\
        out = []\n\
        for family in parse(sys.stdin.read()):\n\
        \x20   assert family.documentation, family.name\n\
        \x20   for s in family.samples:\n\
        \x20       out.append([s.name, s.labels, s.value, family.type])\n\
        print(json.dumps(out))\n";
    // Debian's python3-prometheus-client (scripts/test installs it) is for the system Python.
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is installed");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the Prometheus parser refused it: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    let samples: Vec<(String, HashMap<String, String>, f64, String)> = serde_json::from_slice(&out.stdout).unwrap();
    samples.into_iter().map(|(name, labels, value, _)| (name, labels, value)).collect()
}

fn value(samples: &[(String, HashMap<String, String>, f64)], name: &str, label: Option<(&str, &str)>) -> f64 {
    samples
        .iter()
        .find(|(n, labels, _)| n == name && label.is_none_or(|(k, v)| labels.get(k).map(String::as_str) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {name} {label:?}"))
        .2
}

/// Admin credentials are required; the counters follow a source, a
/// listener, HLS requests and refused requests.
#[test]
fn metrics_parse_and_follow_the_server() {
    let server = TestServer::with_mounts("[hls]\nmode = \"always\"\n");
    let refused = server.get("/metrics");
    assert_eq!(refused.status, 401);
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let mut listener = Listener::connect(&server, "/live.mp3", &[]);
    listener.read_at_least(32_000, WAIT);
    eventually("HLS answers", WAIT, || server.get("/hls/live.mp3/master.m3u8").status == 200);
    assert_eq!(server.get("/no-such-mount").status, 404);

    let response = server.admin("/metrics");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Content-Type").as_deref(), Some("text/plain; version=0.0.4; charset=utf-8"));
    let samples = parse_exposition(&response.text());
    let mount = Some(("mount", "/live.mp3"));
    assert_eq!(value(&samples, "floe_mount_listeners", mount), 1.0);
    assert_eq!(value(&samples, "floe_mount_source_connected", mount), 1.0);
    assert_eq!(value(&samples, "floe_mount_source_connections_total", mount), 1.0);
    assert!(value(&samples, "floe_mount_sent_bytes_total", mount) >= 32_000.0);
    assert!(value(&samples, "floe_mount_received_bytes_total", mount) > 0.0);
    assert!(value(&samples, "floe_mount_transcode_cpu_seconds_total", mount) > 0.0, "the ladder decodes");
    assert_eq!(value(&samples, "floe_sources", None), 1.0);
    assert_eq!(value(&samples, "floe_listeners", None), 1.0);
    assert!(value(&samples, "floe_adaptive_requests_total", Some(("kind", "master"))) >= 1.0);
    assert!(value(&samples, "floe_requests_total", Some(("code", "4xx"))) >= 2.0, "the 401 and the 404");
    assert_eq!(value(&samples, "floe_info", Some(("version", env!("CARGO_PKG_VERSION")))), 1.0);
    // The process's resident memory, as the system counts it, and the part
    // of it the long-lived region holds (the listener's state among it).
    let resident_kib = value(&samples, "process_resident_memory_bytes", None) / 1024.0;
    let system_kib = server.rss_kib() as f64;
    assert!((resident_kib - system_kib).abs() < system_kib / 5.0, "{resident_kib} KiB, the system says {system_kib}");
    let long_lived = value(&samples, "floe_long_lived_bytes", None);
    assert!(long_lived >= 4096.0 && long_lived < resident_kib * 1024.0, "{long_lived}");

    // A listener that leaves is counted out.
    drop(listener);
    eventually("the listener is gone from /metrics", Duration::from_secs(10), || {
        let samples = parse_exposition(&server.admin("/metrics").text());
        value(&samples, "floe_mount_listeners", mount) == 0.0
            && value(&samples, "floe_requests_total", Some(("code", "2xx"))) >= 1.0
    });
}
