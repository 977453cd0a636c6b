//! The transcoding scenario: stream a real MP3 file at its own bitrate into a
//! mount that has renditions, and read what the ladder costs: the server's
//! CPU over the window, and per mount (from `/admin/stats.json`) the time the
//! transcoder spent decoding or encoding it and the delay it added.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::net::{basic, Shared};

/// Bytes per second of an MP3 stream, from its first frame header (CBR).
pub fn mp3_byte_rate(data: &[u8]) -> Option<u64> {
    let at = data.windows(2).position(|w| w[0] == 0xFF && w[1] & 0xE0 == 0xE0)?;
    let h = data.get(at..at + 4)?;
    const V1_L3: [u64; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
    let mpeg1 = (h[1] >> 3) & 3 == 3;
    let index = (h[2] >> 4) as usize;
    if !mpeg1 || index == 0 || index == 15 {
        return None;
    }
    Some(V1_L3[index] * 1000 / 8)
}

/// Stream `data` (looping) to `mount` with `SOURCE`, paced at `byte_rate`.
pub async fn stream_file(
    server: SocketAddr,
    mount: String,
    password: String,
    data: Rc<Vec<u8>>,
    byte_rate: u64,
    shared: Rc<Shared>,
) {
    let Ok(mut sock) = TcpStream::connect(server).await else {
        shared.source_failed.set(shared.source_failed.get() + 1);
        return;
    };
    let head = format!(
        "SOURCE {mount} HTTP/1.0\r\nAuthorization: Basic {}\r\nContent-Type: audio/mpeg\r\nUser-Agent: floe-bench\r\n\r\n",
        basic("source", &password)
    );
    let mut reply = [0u8; 64];
    if sock.write_all(head.as_bytes()).await.is_err() || sock.read(&mut reply).await.unwrap_or(0) == 0 {
        shared.source_failed.set(shared.source_failed.get() + 1);
        return;
    }
    let per_write = (byte_rate / 50).max(1) as usize;
    let mut interval = tokio::time::interval(Duration::from_millis(20));
    let mut at = 0usize;
    while !shared.stop.get() {
        interval.tick().await;
        let end = (at + per_write).min(data.len());
        if sock.write_all(&data[at..end]).await.is_err() {
            shared.source_failed.set(shared.source_failed.get() + 1);
            return;
        }
        at = if end == data.len() { 0 } else { end };
    }
}

/// `/admin/stats.json` as JSON.
pub async fn admin_stats(server: SocketAddr, admin: &str) -> Option<Value> {
    let mut sock = TcpStream::connect(server).await.ok()?;
    let request = format!("GET /admin/stats.json HTTP/1.0\r\nAuthorization: Basic {admin}\r\n\r\n");
    sock.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    sock.read_to_end(&mut response).await.ok()?;
    let body = response.windows(4).position(|w| w == b"\r\n\r\n").map(|i| &response[i + 4..])?;
    serde_json::from_slice(body).ok()
}

fn per_mount(stats: &Value) -> Vec<(String, u64, u64, u64)> {
    let sources = stats["icestats"]["source"].as_array().cloned().unwrap_or_default();
    sources
        .iter()
        .filter_map(|s| {
            let mount = s["mount"].as_str()?.to_string();
            let cpu = s["transcode_cpu_ms"].as_u64().unwrap_or(0);
            let delay = s["transcode_delay_ms"].as_u64().unwrap_or(0);
            let delay_max = s["transcode_delay_max_ms"].as_u64().unwrap_or(0);
            Some((mount, cpu, delay, delay_max))
        })
        .collect()
}

/// Per mount: cores used over the window (and × real time), and the delay added.
pub fn report(before: &Value, after: &Value, window: Duration) -> Value {
    let before = per_mount(before);
    let secs = window.as_secs_f64();
    let mounts: Vec<Value> = per_mount(after)
        .into_iter()
        .map(|(mount, cpu, delay, delay_max)| {
            let start = before.iter().find(|b| b.0 == mount).map_or(0, |b| b.1);
            let cores = (cpu.saturating_sub(start)) as f64 / 1000.0 / secs;
            let realtime = if cores > 0.0 { (1.0 / cores).round() } else { 0.0 };
            json!({"mount": mount, "cores": (cores * 10000.0).round() / 10000.0, "x_realtime": realtime,
                   "delay_ms": delay, "delay_max_ms": delay_max})
        })
        .collect();
    Value::Array(mounts)
}
