//! `floe-bench floor`: the least a relay can do, as a yardstick.
//!
//! One thread, plain non-blocking sockets, no framing, no burst, no ICY, no
//! limits worth the name: every tick each listener gets one write of the
//! bytes its mount's source sent since the last tick. What this costs on a
//! machine is the floor under any server's CPU for the same listeners at the
//! same cadence (most of it is the kernel's TCP work), so `scripts/bench`
//! runs it beside Floe and Icecast and reports Floe's distance from it.
//!
//! Not a server to use: it trusts every request, keeps whatever a stalled
//! listener cannot take up to `BACKLOG_MAX` and then drops it, and polls its
//! sockets every `POLL` instead of waiting on readiness (it only ever
//! blocks on the clock; that costs about 1 % of a core).

use std::collections::HashMap;
use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use clap::Args;

/// How often pending connections and sources are read between ticks.
const POLL: Duration = Duration::from_millis(2);
/// Most bytes kept for a listener whose socket is full before it is dropped.
const BACKLOG_MAX: usize = 512 * 1024;
/// Longest request head accepted.
const HEAD_MAX: usize = 8 * 1024;
/// Listener send buffer, as Floe sets it (the kernel doubles it).
const SEND_BUFFER: usize = 64 * 1024;

#[derive(Args)]
pub struct FloorArgs {
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Milliseconds between fan-outs (Floe's `delivery_interval_ms`).
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
}

/// A mount: its source, what arrived since the last tick, its listeners.
#[derive(Default)]
struct Mount {
    source: Option<TcpStream>,
    fresh: Vec<u8>,
    listeners: Vec<Listener>,
}

struct Listener {
    sock: TcpStream,
    /// Bytes the socket did not take at earlier ticks.
    backlog: Vec<u8>,
}

/// A connection whose request head is still arriving.
struct Pending {
    sock: TcpStream,
    head: Vec<u8>,
}

pub fn run(args: FloorArgs) -> std::io::Result<()> {
    if !args.listen.ip().is_loopback() {
        return Err(std::io::Error::other("the floor relay listens on loopback only"));
    }
    let listener = TcpListener::bind(args.listen)?;
    listener.set_nonblocking(true)?;
    println!("floor: listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let tick = Duration::from_millis(args.tick_ms.max(1));
    let mut mounts: HashMap<String, Mount> = HashMap::new();
    let mut pending: Vec<Pending> = Vec::new();
    let mut next_tick = Instant::now() + tick;
    loop {
        accept(&listener, &mut pending);
        read_heads(&mut pending, &mut mounts);
        for mount in mounts.values_mut() {
            read_source(mount);
        }
        if Instant::now() >= next_tick {
            for mount in mounts.values_mut() {
                fan_out(mount);
            }
            next_tick += tick;
        }
        std::thread::sleep(POLL.min(next_tick.saturating_duration_since(Instant::now())));
    }
}

fn accept(listener: &TcpListener, pending: &mut Vec<Pending>) {
    loop {
        match listener.accept() {
            Ok((sock, _)) => {
                if sock.set_nonblocking(true).is_ok() {
                    pending.push(Pending { sock, head: Vec::new() });
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(_) => {
                // Out of descriptors and the like: try again next poll.
                return;
            }
        }
    }
}

/// Read request heads; a complete one makes its connection a source or a
/// listener of its mount.
fn read_heads(pending: &mut Vec<Pending>, mounts: &mut HashMap<String, Mount>) {
    let mut i = 0;
    while i < pending.len() {
        let conn = &mut pending[i];
        let mut buf = [0u8; 2048];
        let keep = match conn.sock.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                conn.head.extend_from_slice(&buf[..n]);
                conn.head.len() <= HEAD_MAX
            }
            Err(e) => e.kind() == ErrorKind::WouldBlock,
        };
        let end = conn.head.windows(4).position(|w| w == b"\r\n\r\n");
        if !keep {
            pending.swap_remove(i);
        } else if let Some(end) = end {
            let conn = pending.swap_remove(i);
            admit(conn, end + 4, mounts);
        } else {
            i += 1;
        }
    }
}

fn admit(mut conn: Pending, head_len: usize, mounts: &mut HashMap<String, Mount>) {
    let head = String::from_utf8_lossy(&conn.head[..head_len]).into_owned();
    let mut words = head.split_whitespace();
    let (Some(method), Some(path)) = (words.next(), words.next()) else { return };
    match method {
        "PUT" | "SOURCE" => {
            let mount = mounts.entry(path.to_string()).or_default();
            if mount.source.is_some() {
                let _ = conn.sock.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n");
                return;
            }
            if conn.sock.write_all(b"HTTP/1.1 200 OK\r\n\r\n").is_ok() {
                mount.fresh.extend_from_slice(&conn.head[head_len..]);
                mount.source = Some(conn.sock);
            }
        }
        "GET" => match mounts.get_mut(path).filter(|m| m.source.is_some()) {
            Some(mount) => {
                let _ = socket2::SockRef::from(&conn.sock).set_send_buffer_size(SEND_BUFFER);
                let head = b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\nCache-Control: no-cache\r\n\r\n";
                if conn.sock.write_all(head).is_ok() {
                    mount.listeners.push(Listener { sock: conn.sock, backlog: Vec::new() });
                }
            }
            None => {
                let _ = conn.sock.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            }
        },
        _ => {
            let _ = conn.sock.write_all(b"HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
        }
    }
}

fn read_source(mount: &mut Mount) {
    let Some(source) = &mut mount.source else { return };
    let mut buf = [0u8; 16 * 1024];
    loop {
        match source.read(&mut buf) {
            Ok(0) => {
                mount.source = None;
                return;
            }
            Ok(n) => mount.fresh.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(_) => {
                mount.source = None;
                return;
            }
        }
    }
}

/// One write per listener of what arrived since the last tick (after what
/// it still owes from earlier ones).
fn fan_out(mount: &mut Mount) {
    if mount.fresh.is_empty() {
        return;
    }
    let fresh = std::mem::take(&mut mount.fresh);
    mount.listeners.retain_mut(|listener| {
        let total = listener.backlog.len() + fresh.len();
        let written = {
            let slices = [IoSlice::new(&listener.backlog), IoSlice::new(&fresh)];
            let slices = if listener.backlog.is_empty() { &slices[1..] } else { &slices[..] };
            match listener.sock.write_vectored(slices) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
                Err(_) => return false,
            }
        };
        if written == total {
            listener.backlog.clear();
            return true;
        }
        let from_backlog = written.min(listener.backlog.len());
        listener.backlog.drain(..from_backlog);
        listener.backlog.extend_from_slice(&fresh[written - from_backlog..]);
        listener.backlog.len() <= BACKLOG_MAX
    });
    mount.fresh = fresh;
    mount.fresh.clear();
}
