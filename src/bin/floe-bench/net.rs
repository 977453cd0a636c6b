//! The bench's network clients: the synthetic source (HTTP PUT), listeners
//! (with optional ICY stripping) and the title updater. All run as local
//! tasks on one current-thread runtime, so shared counters are plain cells.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::frames::{FrameClock, FrameSource};
use crate::stats::Histogram;

/// State shared by every task of a run.
pub struct Shared {
    pub epoch: Instant,
    pub measuring: Cell<bool>,
    pub stop: Cell<bool>,
    pub latency: RefCell<Histogram>,
    pub first_byte: RefCell<Histogram>,
    pub connected: Cell<u64>,
    pub failed: Cell<u64>,
    pub dropped: Cell<u64>,
    /// Audio bytes each listener received while measuring.
    pub window_bytes: Vec<Cell<u64>>,
    /// Listeners that lost their connection during the window (excluded from throughput).
    pub lost_in_window: Vec<Cell<bool>>,
    /// Listeners streaming (head received) — throughput counts only those
    /// that were streaming when the window opened.
    pub streaming: Vec<Cell<bool>>,
    pub source_late_us: Cell<u64>,
    pub source_failed: Cell<u64>,
}

impl Shared {
    pub fn new(listeners: usize) -> Shared {
        Shared {
            epoch: Instant::now(),
            measuring: Cell::new(false),
            stop: Cell::new(false),
            latency: RefCell::default(),
            first_byte: RefCell::default(),
            connected: Cell::new(0),
            failed: Cell::new(0),
            dropped: Cell::new(0),
            window_bytes: (0..listeners).map(|_| Cell::new(0)).collect(),
            lost_in_window: (0..listeners).map(|_| Cell::new(false)).collect(),
            streaming: (0..listeners).map(|_| Cell::new(false)).collect(),
            source_late_us: Cell::new(0),
            source_failed: Cell::new(0),
        }
    }

    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

pub fn basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// Read a response head; returns it as text (without the body bytes that followed).
async fn read_head(sock: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<(String, usize)> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            return Ok((head, end + 4));
        }
        if buf.len() > 16 * 1024 {
            return Err(std::io::Error::other("response head too large"));
        }
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn status_of(head: &str) -> u16 {
    head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Source settings.
#[derive(Clone)]
pub struct SourceConfig {
    pub server: SocketAddr,
    pub mount: String,
    pub password: String,
    pub kbps: u32,
    pub interval: Duration,
}

/// Connect as a source with `PUT` and stream frames on schedule until stopped.
pub async fn run_source(cfg: SourceConfig, shared: Rc<Shared>) {
    let result = source_session(&cfg, &shared).await;
    if let Err(error) = result {
        if !shared.stop.get() {
            eprintln!("floe-bench: source {} failed: {error}", cfg.mount);
            shared.source_failed.set(shared.source_failed.get() + 1);
        }
    }
}

async fn source_session(cfg: &SourceConfig, shared: &Shared) -> std::io::Result<()> {
    let mut sock = TcpStream::connect(cfg.server).await?;
    sock.set_nodelay(true)?;
    let head = format!(
        "PUT {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {}\r\nContent-Type: audio/mpeg\r\n\
         User-Agent: floe-bench\r\nice-name: floe-bench\r\nice-bitrate: {}\r\nExpect: 100-continue\r\n\r\n",
        cfg.mount,
        cfg.server,
        basic("source", &cfg.password),
        cfg.kbps
    );
    sock.write_all(head.as_bytes()).await?;
    let mut buf = Vec::new();
    loop {
        let (head, used) = read_head(&mut sock, &mut buf).await?;
        buf.drain(..used);
        match status_of(&head) {
            100 => continue,
            200 => break,
            status => return Err(std::io::Error::other(format!("source refused with {status}"))),
        }
    }
    let start_us = shared.now_us() + 10_000;
    let mut frames = FrameSource::new(cfg.kbps, cfg.interval, start_us).map_err(std::io::Error::other)?;
    let mut write = Vec::new();
    let mut k: u64 = 0;
    while !shared.stop.get() {
        let due_us = start_us + k * cfg.interval.as_micros() as u64;
        let now = shared.now_us();
        if due_us > now {
            tokio::time::sleep(Duration::from_micros(due_us - now)).await;
        } else if shared.measuring.get() {
            shared.source_late_us.set(shared.source_late_us.get().max(now - due_us));
        }
        frames.next_write(&mut write);
        sock.write_all(&write).await?;
        k += 1;
    }
    Ok(())
}

/// Listener settings.
#[derive(Clone)]
pub struct ListenerConfig {
    pub server: SocketAddr,
    pub mount: String,
    pub icy: bool,
    pub frame_len: usize,
}

/// One listener: connect, read the head, then time every frame until stopped.
pub async fn run_listener(cfg: Rc<ListenerConfig>, index: usize, shared: Rc<Shared>) {
    let started = Instant::now();
    let Ok(mut sock) = TcpStream::connect(cfg.server).await else {
        shared.failed.set(shared.failed.get() + 1);
        return;
    };
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: floe-bench\r\n{}\r\n",
        cfg.mount,
        cfg.server,
        if cfg.icy { "Icy-MetaData: 1\r\n" } else { "" }
    );
    let mut buf = Vec::with_capacity(16 * 1024);
    let head = match sock.write_all(request.as_bytes()).await {
        Ok(()) => read_head(&mut sock, &mut buf).await,
        Err(e) => Err(e),
    };
    let Ok((head, used)) = head else {
        shared.failed.set(shared.failed.get() + 1);
        return;
    };
    if status_of(&head) != 200 {
        shared.failed.set(shared.failed.get() + 1);
        return;
    }
    shared.connected.set(shared.connected.get() + 1);
    shared.streaming[index].set(!shared.measuring.get());
    let metaint = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("icy-metaint")))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    let mut body = Body { icy: metaint.map(IcyStrip::new), clock: FrameClock::new(cfg.frame_len), first: true };
    let mut data = buf.split_off(used);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        if !data.is_empty() {
            if body.first {
                body.first = false;
                shared.first_byte.borrow_mut().record(started.elapsed().as_micros() as u64);
            }
            body.consume(&data, index, &shared);
            data.clear();
        }
        match sock.read(&mut chunk).await {
            Ok(n) if n > 0 => data.extend_from_slice(&chunk[..n]),
            _ => break,
        }
        if shared.stop.get() {
            return;
        }
    }
    if !shared.stop.get() {
        shared.dropped.set(shared.dropped.get() + 1);
        if shared.measuring.get() {
            shared.lost_in_window[index].set(true);
        }
    }
}

/// A listener's body decoder: ICY stripping, then the frame clock.
struct Body {
    icy: Option<IcyStrip>,
    clock: FrameClock,
    first: bool,
}

impl Body {
    fn consume(&mut self, data: &[u8], index: usize, shared: &Shared) {
        let measuring = shared.measuring.get();
        let now = shared.now_us();
        let mut audio_bytes = 0u64;
        let clock = &mut self.clock;
        let mut on_audio = |audio: &[u8]| {
            audio_bytes += audio.len() as u64;
            clock.feed(audio, |sent| {
                if measuring {
                    shared.latency.borrow_mut().record(now.saturating_sub(sent));
                }
            });
        };
        match &mut self.icy {
            Some(icy) => icy.split(data, &mut on_audio),
            None => on_audio(data),
        }
        if measuring {
            let cell = &shared.window_bytes[index];
            cell.set(cell.get() + audio_bytes);
        }
    }
}

/// Removes ICY metadata blocks from a listener's body.
struct IcyStrip {
    metaint: usize,
    state: IcyState,
}

#[derive(Clone, Copy)]
enum IcyState {
    /// Audio bytes left before the next length byte.
    Audio(usize),
    Length,
    /// Metadata bytes left to skip.
    Meta(usize),
}

impl IcyStrip {
    fn new(metaint: usize) -> IcyStrip {
        IcyStrip { metaint, state: IcyState::Audio(metaint) }
    }

    fn split(&mut self, mut data: &[u8], on_audio: &mut impl FnMut(&[u8])) {
        while let Some(&first) = data.first() {
            self.state = match self.state {
                IcyState::Audio(left) => {
                    let n = left.min(data.len());
                    on_audio(&data[..n]);
                    data = &data[n..];
                    if n == left {
                        IcyState::Length
                    } else {
                        IcyState::Audio(left - n)
                    }
                }
                IcyState::Length => {
                    data = &data[1..];
                    match first as usize * 16 {
                        0 => IcyState::Audio(self.metaint),
                        len => IcyState::Meta(len),
                    }
                }
                IcyState::Meta(left) => {
                    let n = left.min(data.len());
                    data = &data[n..];
                    if n == left {
                        IcyState::Audio(self.metaint)
                    } else {
                        IcyState::Meta(left - n)
                    }
                }
            };
        }
    }
}

/// Update the title of `mount` every `every` via `/admin/metadata` (Icecast's API).
pub async fn run_titles(server: SocketAddr, mount: String, every: Duration, admin: String, shared: Rc<Shared>) {
    let mut n = 0u64;
    while !shared.stop.get() {
        tokio::time::sleep(every).await;
        n += 1;
        let request = format!(
            "GET /admin/metadata?mount={mount}&mode=updinfo&song=Bench+Title+{n} HTTP/1.0\r\nHost: {server}\r\n\
             Authorization: Basic {admin}\r\n\r\n"
        );
        if let Ok(mut sock) = TcpStream::connect(server).await {
            let _ = sock.write_all(request.as_bytes()).await;
            let mut sink = Vec::new();
            let _ = sock.read_to_end(&mut sink).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icy_strip_removes_blocks() {
        let mut body = Vec::new();
        body.extend_from_slice(b"aaaa");
        body.push(1);
        body.extend_from_slice(b"StreamTitle='x';");
        body.extend_from_slice(b"bbbb");
        body.push(0);
        body.extend_from_slice(b"cc");
        for split in 1..body.len() {
            let mut strip = IcyStrip::new(4);
            let mut audio = Vec::new();
            for piece in body.chunks(split) {
                strip.split(piece, &mut |a: &[u8]| audio.extend_from_slice(a));
            }
            assert_eq!(audio, b"aaaabbbbcc", "split {split}");
        }
    }
}
