//! Turning counters into the result: JSON for scripts, a table for people.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fetch::FetchCounts;
use crate::net::Shared;
use crate::stats::{percentile, ProcSample};
use crate::storm::StormCounts;
use crate::ListenersArgs;

/// Status code of a one-shot request, if the server answered.
pub async fn probe(server: SocketAddr, request: &str) -> Option<u16> {
    let mut sock = TcpStream::connect(server).await.ok()?;
    sock.write_all(request.as_bytes()).await.ok()?;
    let mut head = [0u8; 64];
    let n = sock.read(&mut head).await.ok()?;
    let text = String::from_utf8_lossy(&head[..n]);
    text.split_whitespace().nth(1)?.parse().ok()
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

fn cores(before: Option<ProcSample>, after: Option<ProcSample>, window: Duration) -> Option<f64> {
    Some(round((after?.cpu_s - before?.cpu_s) / window.as_secs_f64(), 3))
}

pub fn listeners(
    args: &ListenersArgs,
    shared: &Shared,
    window: Duration,
    baseline: Option<ProcSample>,
    before: Option<ProcSample>,
    after: Option<ProcSample>,
) -> Value {
    let expected = f64::from(args.common.bitrate) * 1000.0 / 8.0 * window.as_secs_f64();
    // Listeners streaming for the whole window: connected before it, not lost during it.
    let mut throughput: Vec<f64> = shared
        .window_bytes
        .iter()
        .zip(shared.lost_in_window.iter().zip(&shared.streaming))
        .filter(|(_, (lost, streaming))| streaming.get() && !lost.get())
        .map(|(bytes, _)| 100.0 * bytes.get() as f64 / expected)
        .collect();
    let min = throughput.iter().copied().fold(f64::INFINITY, f64::min);
    let latency = shared.latency.borrow();
    let first = shared.first_byte.borrow();
    let connected = shared.connected.get();
    let rss_per_listener = match (baseline, after) {
        (Some(b), Some(a)) if connected > 0 => Some((a.rss_kib.saturating_sub(b.rss_kib) * 1024) / connected),
        _ => None,
    };
    json!({
        "scenario": "listeners",
        "server": args.common.server.to_string(),
        "mounts": args.mounts,
        "listeners_per_mount": args.listeners,
        "icy": args.icy,
        "title_every_s": args.title_every,
        "bitrate_kbps": args.common.bitrate,
        "interval_ms": args.common.interval_ms,
        "connected": connected,
        "measured_listeners": throughput.len(),
        "failed": shared.failed.get(),
        "dropped": shared.dropped.get(),
        "source_failures": shared.source_failed.get(),
        "source_late_ms_max": round(shared.source_late_us.get() as f64 / 1000.0, 1),
        "throughput_pct": {
            "min": round(if min.is_finite() { min } else { 0.0 }, 1),
            "p1": round(percentile(&mut throughput, 0.01), 1),
            "p50": round(percentile(&mut throughput, 0.5), 1),
        },
        "latency_ms": {
            "samples": latency.count(),
            "p50": latency.quantile_ms(0.5),
            "p99": latency.quantile_ms(0.99),
            "p999": latency.quantile_ms(0.999),
            "max": latency.max_ms(),
        },
        "first_byte_ms": { "p50": first.quantile_ms(0.5), "p99": first.quantile_ms(0.99) },
        "server_cpu_cores": cores(before, after, window),
        "server_rss_kib": after.map(|a| a.rss_kib),
        "baseline_rss_kib": baseline.map(|b| b.rss_kib),
        "rss_per_listener_bytes": rss_per_listener,
        "window_s": round(window.as_secs_f64(), 2),
    })
}

pub fn storm(counts: &StormCounts, elapsed: Duration, before: Option<ProcSample>, after: Option<ProcSample>) -> Value {
    let accepted = counts.accepted.get();
    json!({
        "scenario": "storm",
        "attempts": counts.attempts.get(),
        "accepted": accepted,
        "accepted_per_s": round(accepted as f64 / elapsed.as_secs_f64(), 0),
        "errors": counts.errors.get(),
        "duration_s": round(elapsed.as_secs_f64(), 2),
        "server_cpu_cores": cores(before, after, elapsed),
    })
}

pub fn fetch(
    paths: &[String],
    connections: usize,
    counts: &FetchCounts,
    elapsed: Duration,
    before: Option<ProcSample>,
    after: Option<ProcSample>,
) -> Value {
    let secs = elapsed.as_secs_f64();
    let latency = counts.latency.borrow();
    json!({
        "scenario": "fetch",
        "paths": paths,
        "connections": connections,
        "requests_per_s": round(counts.responses.get() as f64 / secs, 0),
        "mbit_per_s": round(counts.body_bytes.get() as f64 * 8.0 / secs / 1e6, 1),
        "latency_p50_ms": latency.quantile_ms(0.5),
        "latency_p99_ms": latency.quantile_ms(0.99),
        "errors": counts.errors.get(),
        "connections_opened": counts.connections.get(),
        "server_cpu_cores": cores(before, after, elapsed),
    })
}

/// Print a readable table and write the JSON file if asked.
pub fn emit(result: &Value, json_path: Option<&Path>) -> Result<(), String> {
    print_table(result, "");
    if let Some(path) = json_path {
        let text = serde_json::to_string_pretty(result).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

fn print_table(value: &Value, prefix: &str) {
    if let Value::Object(map) = value {
        for (key, v) in map {
            let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            match v {
                Value::Object(_) => print_table(v, &name),
                other => println!("{name:<32} {other}"),
            }
        }
    }
}
