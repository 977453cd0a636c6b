//! nginx (Debian's package, which scripts/test installs) as an HTTP cache in
//! front of a Floe, on a free 127.0.0.1 port, for the scale-out tests.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};

use super::{eventually, raw_exchange, HttpResponse, WAIT};

/// A running nginx with `proxy_cache` in front of `origin`; killed when dropped.
pub struct CachingProxy {
    child: Child,
    pub http: SocketAddr,
    dir: tempfile::TempDir,
}

impl CachingProxy {
    /// Everything proxied to `origin` and cached as the origin's
    /// `Cache-Control` says; each answer says `X-Cache-Status` (HIT, MISS …).
    pub fn start(origin: SocketAddr) -> CachingProxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let http = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        let d = dir.path().display();
        let config = format!(
            r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    proxy_cache_path {d}/cache levels=1:2 keys_zone=floe:1m max_size=64m inactive=10m use_temp_path=off;
    server {{
        listen {http};
        location / {{
            proxy_pass http://{origin};
            proxy_http_version 1.1;
            proxy_cache floe;
            # One origin fetch per object however many ask at once.
            proxy_cache_lock on;
            proxy_cache_use_stale updating;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
}}
"#
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, config).expect("write nginx.conf");
        let child = Command::new(nginx())
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (scripts/test installs it)");
        let proxy = CachingProxy { child, http, dir };
        eventually("nginx answers", WAIT, || {
            std::net::TcpStream::connect(proxy.http).is_ok() && proxy.get("/status-json.xsl").status == 200
        });
        proxy
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        let head = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.http);
        raw_exchange(self.http, head.as_bytes())
    }

    /// nginx's error log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for CachingProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian puts nginx in /usr/sbin, which a non-root PATH may lack.
fn nginx() -> &'static str {
    if std::path::Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}
