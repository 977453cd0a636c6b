//! `fetch`: keep-alive connections asking for the same small files over and
//! over, as HLS and DASH players and the HTTP caches in front of a server
//! do (playlists, manifests, segments). Works against any HTTP/1.1 server,
//! so the same run measures Floe and nginx serving copies from disk.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::stats::Histogram;

/// Counts of one run.
#[derive(Default)]
pub struct FetchCounts {
    pub responses: Cell<u64>,
    pub body_bytes: Cell<u64>,
    pub errors: Cell<u64>,
    pub connections: Cell<u64>,
    pub latency: RefCell<Histogram>,
}

/// Why one exchange failed.
enum Failed {
    /// The server closed a kept-alive connection (or reset it): reconnect.
    Closed,
    /// Not a 200 with a length, or a broken response.
    Bad,
}

/// One connection's loop until `deadline`: request `paths` in turn (from
/// `first`), reconnecting when the server closes.
pub async fn worker(
    server: SocketAddr,
    paths: Rc<Vec<String>>,
    first: usize,
    deadline: Instant,
    counts: Rc<FetchCounts>,
) {
    let mut next = first;
    let mut buf = Vec::with_capacity(64 * 1024);
    while Instant::now() < deadline {
        let Ok(Ok(mut sock)) = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(server)).await else {
            counts.errors.set(counts.errors.get() + 1);
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = sock.set_nodelay(true);
        counts.connections.set(counts.connections.get() + 1);
        while Instant::now() < deadline {
            let path = &paths[next % paths.len()];
            next += 1;
            let started = Instant::now();
            match tokio::time::timeout(Duration::from_secs(5), exchange(&mut sock, server, path, &mut buf)).await {
                Ok(Ok(body)) => {
                    counts.responses.set(counts.responses.get() + 1);
                    counts.body_bytes.set(counts.body_bytes.get() + body);
                    counts.latency.borrow_mut().record(started.elapsed().as_micros() as u64);
                }
                Ok(Err(Failed::Closed)) => break,
                Ok(Err(Failed::Bad)) | Err(_) => {
                    counts.errors.set(counts.errors.get() + 1);
                    break;
                }
            }
        }
    }
}

/// One GET and its response on a kept-alive connection; the body length.
async fn exchange(sock: &mut TcpStream, server: SocketAddr, path: &str, buf: &mut Vec<u8>) -> Result<u64, Failed> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {server}\r\nUser-Agent: floe-bench-fetch\r\n\r\n");
    sock.write_all(request.as_bytes()).await.map_err(|_| Failed::Closed)?;
    buf.clear();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 16 * 1024 {
            return Err(Failed::Bad);
        }
        let mut chunk = [0u8; 16 * 1024];
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) if buf.is_empty() => return Err(Failed::Closed),
            Ok(0) | Err(_) => return Err(Failed::Bad),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(Failed::Bad);
    }
    let length: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or(Failed::Bad)?;
    let mut have = (buf.len() - head_end) as u64;
    let mut chunk = [0u8; 64 * 1024];
    while have < length {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(Failed::Bad),
            Ok(n) => have += n as u64,
        }
    }
    if have > length {
        // Nothing else was asked for: extra bytes mean a framing error.
        return Err(Failed::Bad);
    }
    Ok(length)
}
