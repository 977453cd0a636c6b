//! Test harness: start the real `floe` binary on 127.0.0.1 port 0, talk to
//! it with raw sockets, and drive real clients (ffmpeg, ffprobe, curl).
//! Everything here is bounded by timeouts; nothing sleeps to synchronise.

#![allow(dead_code)]

pub mod hostile;
mod icecast;
mod media;
mod netns;
mod nginx;

pub use icecast::Icecast;
pub use media::*;
pub use netns::{private_network, PrivateNetwork};
pub use nginx::CachingProxy;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A drill's size from the environment, or its CI default.
pub fn size(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Default bound for any single network wait.
pub const WAIT: Duration = Duration::from_secs(20);

/// Extra configuration for a test server, as TOML fragments.
#[derive(Default, Clone)]
pub struct Opts {
    /// Lines added to `[server]`.
    pub server: &'static str,
    /// Lines added to `[limits]`.
    pub limits: &'static str,
    /// Lines added to `[auth]`.
    pub auth: &'static str,
    /// Further sections (`[[mount]]` …).
    pub rest: &'static str,
    /// Files written next to the config before the server starts (name, content).
    pub files: Vec<(&'static str, Vec<u8>)>,
    /// Open files the process may have (`prlimit --nofile`), when set.
    pub fd_limit: Option<u32>,
}

/// A running `floe` process; killed when dropped.
pub struct TestServer {
    child: Child,
    pub http: SocketAddr,
    pub shoutcast: SocketAddr,
    /// The ports serving TLS, in the order announced.
    pub https: Vec<SocketAddr>,
    dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with the default options plus these mount sections.
    pub fn with_mounts(rest: &'static str) -> TestServer {
        TestServer::start(Opts { rest, ..Opts::default() })
    }

    pub fn start(opts: Opts) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write_config(dir.path(), &opts);
        let stderr = std::fs::File::create(dir.path().join("floe.log")).expect("log file");
        // prlimit execs floe itself, so the child's pid is the server's.
        let mut command = match opts.fd_limit {
            Some(limit) => {
                let mut command = Command::new("prlimit");
                command.arg(format!("--nofile={limit}:{limit}")).arg(env!("CARGO_BIN_EXE_floe"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_floe")),
        };
        let mut child = command
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start floe");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (mut http, mut shoutcast, mut https) = (None, None, Vec::new());
        let deadline = Instant::now() + WAIT;
        while http.is_none() || shoutcast.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).expect("floe did not announce its ports");
            if let Some(addr) = line.strip_prefix("floe: listening on http://") {
                http = addr.parse().ok();
            } else if let Some(addr) = line.strip_prefix("floe: listening on https://") {
                https.extend(addr.parse::<SocketAddr>().ok());
            } else if let Some(rest) = line.strip_prefix("floe: SHOUTcast v1 sources on ") {
                shoutcast = rest.split_whitespace().next().and_then(|a| a.parse().ok());
            }
        }
        TestServer { child, http: http.unwrap(), shoutcast: shoutcast.unwrap(), https, dir }
    }

    /// Replace the configuration file (and write `opts.files`) for a reload.
    pub fn rewrite_config(&self, opts: &Opts) {
        write_config(self.dir.path(), opts);
    }

    /// Send SIGTERM and wait (bounded) for the process to exit.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        signal(self.child.id(), Signal::TERM);
        self.wait_exit(WAIT)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// Anonymous resident memory (heaps and stacks, not the program's own
    /// pages as they are first touched), in KiB.
    pub fn rss_anon_kib(&self) -> u64 {
        self.status_kib("RssAnon:")
    }

    /// A KiB field of `/proc/<pid>/status`.
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Wait (at most `limit`) for the process to exit on its own.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Is the server process still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Pids of the server's codec processes (`floe codec-worker <mount>`).
    pub fn codec_pids(&self, mount: &str) -> Vec<u32> {
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let Some(after) = stat.rfind(')').map(|at| &stat[at + 1..]) else { continue };
            let parent = after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            if parent == Some(self.pid())
                && args.get(1) == Some(&&b"codec-worker"[..])
                && args.get(2) == Some(&mount.as_bytes())
            {
                pids.push(pid);
            }
        }
        pids
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("floe.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// A complete request/response exchange over a raw socket.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {}\r\n", self.http);
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        raw_exchange(self.http, head.as_bytes())
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        self.request("GET", path, &[])
    }

    /// GET with the default admin credentials.
    pub fn admin(&self, path_and_query: &str) -> HttpResponse {
        self.request("GET", path_and_query, &[("Authorization", &basic("admin", "hackme"))])
    }

    pub fn status_json(&self) -> serde_json::Value {
        let response = self.get("/status-json.xsl");
        assert_eq!(response.status, 200);
        serde_json::from_slice(&response.body).expect("status JSON parses")
    }

    /// The `source` entries of the status JSON, as a list.
    pub fn live_sources(&self) -> Vec<serde_json::Value> {
        let status = self.status_json();
        match &status["icestats"]["source"] {
            serde_json::Value::Array(items) => items.clone(),
            one @ serde_json::Value::Object(_) => vec![one.clone()],
            _ => Vec::new(),
        }
    }

    /// Is `mount` listed as live in the status JSON?
    pub fn is_live(&self, mount: &str) -> bool {
        self.live_sources().iter().any(|s| s["listenurl"].as_str().is_some_and(|u| u.ends_with(mount)))
    }

    pub fn wait_live(&self, mount: &str) {
        eventually(&format!("{mount} is live"), WAIT, || self.is_live(mount));
    }

    /// A numeric server-wide field of `/admin/stats.json` (0 when absent).
    pub fn server_stat(&self, field: &str) -> u64 {
        let json: serde_json::Value = serde_json::from_slice(&self.admin("/admin/stats.json").body).unwrap();
        json["icestats"][field].as_u64().unwrap_or(0)
    }

    /// A numeric field of `mount` in `/admin/stats.json` (0 when absent).
    pub fn mount_stat(&self, mount: &str, field: &str) -> u64 {
        let json: serde_json::Value = serde_json::from_slice(&self.admin("/admin/stats.json").body).unwrap();
        let sources = json["icestats"]["source"].as_array().cloned().unwrap_or_default();
        sources.iter().find(|s| s["mount"] == mount).and_then(|s| s[field].as_u64()).unwrap_or(0)
    }

    pub fn listener_ids(&self, mount: &str) -> Vec<u64> {
        self.listeners(mount).iter().filter_map(|l| l["id"].as_u64()).collect()
    }

    /// `mount`'s listeners as `/admin/listclients.json` shows them (none
    /// when the mount is not there).
    pub fn listeners(&self, mount: &str) -> Vec<serde_json::Value> {
        let response = self.admin(&format!("/admin/listclients.json?mount={mount}"));
        if response.status != 200 {
            return Vec::new();
        }
        let json: serde_json::Value = serde_json::from_slice(&response.body).expect("listclients JSON");
        json["icestats"]["source"][0]["listener"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Open a source connection with the raw request `head` and wait until it
/// is accepted; returns the socket, ready for the body.
pub fn open_source(server: &TestServer, head: &str) -> TcpStream {
    let mut sock = TcpStream::connect(server.http).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.write_all(head.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while find(&reply, b"200 OK").is_none() || !reply.ends_with(b"\r\n\r\n") {
        sock.read_exact(&mut byte).expect("source accepted");
        reply.push(byte[0]);
    }
    sock
}

/// Send raw bytes, read until the server closes (bounded).
/// A connection from `from` (another loopback address) to `to`.
pub fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    socket.connect(&to.into()).unwrap();
    let sock: TcpStream = socket.into();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock
}

/// A request sent from `from` to the server, read to the end.
pub fn request_from(from: [u8; 4], to: SocketAddr, request: &str) -> HttpResponse {
    let mut sock = connect_from(from, to);
    sock.write_all(request.as_bytes()).unwrap();
    let mut data = Vec::new();
    let _ = sock.read_to_end(&mut data);
    parse_response(&data)
}

/// The response head to a request sent from `from` (a stream never ends).
pub fn head_from(from: [u8; 4], to: SocketAddr, request: &str) -> HttpResponse {
    let mut sock = connect_from(from, to);
    sock.write_all(request.as_bytes()).unwrap();
    let (mut data, mut buf) = (Vec::new(), [0u8; 4096]);
    while find(&data, b"\r\n\r\n").is_none() {
        match sock.read(&mut buf) {
            Ok(n) if n > 0 => data.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    parse_response(&data)
}

pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    let mut sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.write_all(request).expect("send request");
    let mut data = Vec::new();
    let _ = sock.read_to_end(&mut data);
    parse_response(&data)
}

pub fn parse_response(data: &[u8]) -> HttpResponse {
    let end = find(data, b"\r\n\r\n").map(|i| i + 4).unwrap_or(data.len());
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    HttpResponse { status, head, body: data[end..].to_vec() }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

pub use rustix::process::Signal;

/// Write `floe.toml` for `opts` (and its files) into `dir`; returns its path.
fn write_config(dir: &std::path::Path, opts: &Opts) -> PathBuf {
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nhostname = \"127.0.0.1\"\n{}\n[limits]\n{}\n[auth]\n{}\n[shoutcast]\nport = 0\n{}\n",
        opts.server, opts.limits, opts.auth, opts.rest
    );
    let path = dir.join("floe.toml");
    std::fs::write(&path, config).expect("write config");
    for (name, content) in &opts.files {
        std::fs::write(dir.join(name), content).expect("write a file for the config");
    }
    path
}

/// Send `signal` to process `pid`.
pub fn signal(pid: u32, signal: Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("a process id");
    rustix::process::kill_process(pid, signal).expect("the process exists");
}

/// Headless Chromium is heavy on a two-core machine: browser tests take
/// turns, so a player under test is not starved by another test's browser.
pub fn one_browser_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    BROWSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Poll `check` until it holds, failing after `limit`.
pub fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// A child process (a client, a helper server) killed and reaped when dropped.
pub struct KillOnDrop(pub std::process::Child);

impl KillOnDrop {
    /// Has it not exited yet?
    pub fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A listener on a raw socket: the head is parsed, the body read on demand.
pub struct Listener {
    pub sock: TcpStream,
    pub head: HttpResponse,
    /// Body bytes read so far.
    pub body: Vec<u8>,
}

impl Listener {
    pub fn connect(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Listener {
        let sock = TcpStream::connect(server.http).expect("connect");
        sock.set_read_timeout(Some(WAIT)).unwrap();
        Listener::ask(sock, server, path, headers)
    }

    /// A listener connecting from `from` (another loopback address).
    pub fn connect_from(from: [u8; 4], server: &TestServer, path: &str) -> Listener {
        Listener::ask(connect_from(from, server.http), server, path, &[])
    }

    /// Send the request on `sock` and read the response head.
    fn ask(mut sock: TcpStream, server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Listener {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: floe-test\r\n", server.http);
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        sock.write_all(request.as_bytes()).unwrap();
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        while find(&data, b"\r\n\r\n").is_none() {
            let n = sock.read(&mut buf).expect("read head");
            assert!(n > 0, "closed before the head: {}", String::from_utf8_lossy(&data));
            data.extend_from_slice(&buf[..n]);
        }
        let head = parse_response(&data);
        let body = head.body.clone();
        Listener { sock, head, body }
    }

    /// Read until at least `n` body bytes are in, failing after `limit`.
    pub fn read_at_least(&mut self, n: usize, limit: Duration) -> &[u8] {
        let deadline = Instant::now() + limit;
        let mut buf = vec![0u8; 64 * 1024];
        while self.body.len() < n {
            assert!(Instant::now() < deadline, "only {} of {n} bytes arrived", self.body.len());
            let got = self.sock.read(&mut buf).expect("read body");
            assert!(got > 0, "stream ended after {} of {n} bytes", self.body.len());
            self.body.extend_from_slice(&buf[..got]);
        }
        &self.body
    }

    /// Read whatever arrives for `time` (bounded by it); returns bytes read.
    pub fn read_for(&mut self, time: Duration) -> usize {
        let deadline = Instant::now() + time;
        let before = self.body.len();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.sock.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
            match self.sock.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.body.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        self.sock.set_read_timeout(Some(WAIT)).unwrap();
        self.body.len() - before
    }

    /// True once the server has closed the connection; what arrives meanwhile is kept.
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut buf = vec![0u8; 64 * 1024];
        while Instant::now() < deadline {
            self.sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            match self.sock.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => self.body.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return true,
            }
        }
        false
    }
}
