//! A tiny smoke run of the load tool against a test server (the benchmark
//! itself is run by `scripts/bench`, not in CI).

use std::process::Command;
use std::time::Duration;

use crate::support::*;

fn bench(server: &TestServer, args: &[&str]) -> serde_json::Value {
    let json = server.dir().join("bench.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_floe-bench"));
    cmd.args(args).arg("--server").arg(server.http.to_string()).arg("--json").arg(&json);
    let out = run_bounded(&mut cmd, Duration::from_secs(60));
    assert!(out.status_ok, "floe-bench failed: {}{}\n{}", out.stdout, out.stderr, server.log());
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

/// `floe-bench listeners`: every listener connects, receives the full rate
/// and gets timed frames, with ICY stripping and title updates on.
#[test]
fn load_tool_listeners_smoke() {
    let server = TestServer::start(Opts::default());
    let result = bench(
        &server,
        &[
            "listeners",
            "--listeners",
            "20",
            "--mounts",
            "2",
            "--icy",
            "--title-every",
            "1",
            "--warmup",
            "1",
            "--duration",
            "2",
        ],
    );
    assert_eq!(result["connected"], 40, "{result}");
    assert_eq!(result["failed"], 0);
    assert_eq!(result["dropped"], 0);
    assert!(result["latency_ms"]["samples"].as_u64().unwrap() > 40 * 50, "{result}");
    // Over a 2 s window one delivery interval (250 ms) shifts the count by up to 12.5 %,
    // and a loaded test machine can delay the source a little more.
    assert!(result["throughput_pct"]["p1"].as_f64().unwrap() > 80.0, "{result}");
    assert!(result["latency_ms"]["p50"].as_f64().unwrap() < 1000.0, "{result}");
}

/// `floe-bench storm`: connections are accepted with no errors.
#[test]
fn load_tool_storm_smoke() {
    let server = TestServer::start(Opts::default());
    let result = bench(&server, &["storm", "--duration", "1", "--concurrency", "8"]);
    assert!(result["accepted"].as_u64().unwrap() > 10, "{result}");
    assert_eq!(result["errors"], 0, "{result}");
}

/// `floe-bench floor`, the minimal relay `scripts/bench` compares Floe with:
/// it relays the tool's source to its listeners at full rate.
#[test]
fn floor_relay_smoke() {
    use std::io::{BufRead, BufReader};

    let mut floor = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_floe-bench"))
            .args(["floor", "--listen", "127.0.0.1:0", "--tick-ms", "100"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("floe-bench floor starts"),
    );
    // Its first line names the port (the read ends if it exits).
    let mut line = String::new();
    BufReader::new(floor.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("floor: listening on http://").unwrap_or_else(|| panic!("{line:?}"));
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("floor.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_floe-bench"));
    cmd.args(["listeners", "--listeners", "10", "--warmup", "1", "--duration", "2", "--server", addr, "--json"])
        .arg(&json)
        .arg("--pid")
        .arg(floor.0.id().to_string());
    let out = run_bounded(&mut cmd, Duration::from_secs(60));
    assert!(out.status_ok, "floe-bench failed: {}{}", out.stdout, out.stderr);
    let result: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(result["connected"], 10, "{result}");
    assert_eq!(result["failed"], 0, "{result}");
    assert!(result["throughput_pct"]["p1"].as_f64().unwrap() > 80.0, "{result}");
    assert!(result["server_cpu_cores"].as_f64().is_some(), "{result}");
}
