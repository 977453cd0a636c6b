//! `header_timeout` under tokio's paused clock, over an in-memory
//! connection: a head trickling in is cut at exactly the limit, wherever
//! its bytes stand, and a head completed just inside it is served.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{handle, Transport};
use crate::access_log::AccessLog;
use crate::config::LiveConfig;
use crate::state::AppState;

impl Transport for DuplexStream {
    const SECURE: bool = false;

    fn into_plain(self) -> Result<tokio::net::TcpStream, Self> {
        Err(self)
    }
}

const HEADER_TIMEOUT: Duration = Duration::from_secs(15);

/// Serve one connection; returns the client's end and the shutdown handle
/// that keeps the state alive.
fn connect() -> (DuplexStream, watch::Sender<bool>) {
    let text = "[limits]\nheader_timeout = 15\n";
    let config = crate::config::parse_str(text, "test.toml", &crate::transcode::ENCODERS).expect("valid");
    let (shutdown, shutdown_rx) = watch::channel(false);
    let state = AppState::new(LiveConfig::new(config, None), AccessLog::default(), 0, shutdown_rx);
    let (client, server) = tokio::io::duplex(64 * 1024);
    let held = crate::slots::Held { connection: state.connections.try_claim().expect("a free slot"), per_ip: None };
    tokio::spawn(handle(server, "127.0.0.1:9".parse().unwrap(), state, held));
    (client, shutdown)
}

/// Send `head` a byte every `pace` (stopping if the server answers), then
/// read the answer. Returns it and when it began.
async fn trickle(client: &mut DuplexStream, head: &[u8], pace: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut answered = None;
    for byte in head {
        if client.write_all(&[*byte]).await.is_err() {
            break;
        }
        let mut piece = [0u8; 4096];
        match tokio::time::timeout(pace, client.read(&mut piece)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answered = Some(started.elapsed());
                answer.extend_from_slice(&piece[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    if answered.is_none() {
        let mut piece = [0u8; 4096];
        let n = client.read(&mut piece).await.unwrap_or(0);
        answered = Some(started.elapsed());
        answer.extend_from_slice(&piece[..n]);
    }
    let _ = client.read_to_end(&mut answer).await;
    (String::from_utf8_lossy(&answer).into_owned(), answered.unwrap_or_default())
}

#[tokio::test(start_paused = true)]
async fn a_head_trickling_in_is_cut_at_header_timeout() {
    let (mut client, _state) = connect();
    // A slowloris: a header byte every 5 s, never an end of head.
    let head = b"GET /status-json.xsl HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let (answer, after) = trickle(&mut client, head, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.0 408 Request Timeout\r\n"), "{answer}");
    assert_eq!(after, HEADER_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_head_completed_inside_header_timeout_is_served() {
    let (mut client, _state) = connect();
    // 61 bytes, one each 200 ms: the head is whole 12 s in, and answered then.
    let head = b"GET /status-json.xsl HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let (answer, after) = trickle(&mut client, head, Duration::from_millis(200)).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("\"icestats\""), "{answer}");
    assert_eq!(after, Duration::from_millis(200) * (head.len() as u32 - 1));
}
