//! Connect storm: many concurrent loops of connect, request a mount, read the
//! response head, close with a reset (so the client side leaves no TIME_WAIT
//! behind to exhaust the loopback port range).

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// Counts of one storm.
#[derive(Default)]
pub struct StormCounts {
    pub attempts: Cell<u64>,
    pub accepted: Cell<u64>,
    pub errors: Cell<u64>,
}

/// One worker: loop until `deadline`.
pub async fn worker(server: SocketAddr, path: Rc<String>, deadline: Instant, counts: Rc<StormCounts>) {
    let request = format!("GET {path} HTTP/1.0\r\nHost: {server}\r\nUser-Agent: floe-bench-storm\r\n\r\n");
    while Instant::now() < deadline {
        counts.attempts.set(counts.attempts.get() + 1);
        let ok = tokio::time::timeout(Duration::from_secs(5), once(server, request.as_bytes())).await;
        match ok {
            Ok(Ok(true)) => counts.accepted.set(counts.accepted.get() + 1),
            _ => counts.errors.set(counts.errors.get() + 1),
        }
    }
}

async fn once(server: SocketAddr, request: &[u8]) -> std::io::Result<bool> {
    let socket = if server.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    let mut sock = socket.connect(server).await?;
    // Linger 0: close sends a reset (never blocks when the timeout is zero).
    socket2::SockRef::from(&sock).set_linger(Some(Duration::ZERO))?;
    sock.write_all(request).await?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut buf).await?;
        if n == 0 || head.len() > 16 * 1024 {
            return Ok(false);
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head.starts_with(b"HTTP/1.0 200") || head.starts_with(b"HTTP/1.1 200"))
}
