//! The access log: one line per finished request in combined log format,
//! plus the seconds the connection lasted (as Icecast writes it), to a file
//! or, when none is configured, through `tracing` (target `floe::access`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use crate::server::request::Request;
use crate::timefmt;

/// Where access lines go. Clone is cheap.
#[derive(Clone, Default)]
pub struct AccessLog {
    /// One short write per finished request; a plain mutex is enough.
    file: Option<Arc<Mutex<File>>>,
}

/// The parts of a request an access line needs, kept instead of the whole
/// request for connections that last hours.
#[derive(Debug, Clone)]
pub struct RequestLine {
    /// `METHOD target HTTP/x.y`
    pub line: String,
    pub referer: Option<String>,
    pub user_agent: Option<String>,
}

impl RequestLine {
    pub fn of(req: &Request) -> RequestLine {
        RequestLine {
            line: format!("{} {} {}", req.method, req.target, req.version_str()),
            referer: req.header("Referer").map(str::to_string),
            user_agent: req.header("User-Agent").map(str::to_string),
        }
    }
}

/// What one access line says.
pub struct AccessEntry<'a> {
    pub ip: IpAddr,
    pub user: Option<&'a str>,
    pub request: Option<&'a RequestLine>,
    pub status: u16,
    pub bytes: u64,
    pub duration: Duration,
}

impl AccessLog {
    pub fn open(path: &Path) -> std::io::Result<AccessLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AccessLog { file: Some(Arc::new(Mutex::new(file))) })
    }

    pub fn record(&self, entry: &AccessEntry<'_>) {
        let line = format_line(entry, SystemTime::now());
        match &self.file {
            Some(file) => {
                if let Err(error) = writeln!(file.lock(), "{line}") {
                    tracing::warn!(%error, "cannot write access log");
                }
            }
            None => tracing::info!(target: "floe::access", "{line}"),
        }
    }
}

/// `IP - user [date] "METHOD URI HTTP/x" status bytes "referer" "user-agent" seconds`
pub fn format_line(entry: &AccessEntry<'_>, now: SystemTime) -> String {
    let quote = |s: Option<&str>| s.unwrap_or("-").replace('"', "\\\"");
    let (request_line, referer, agent) = match entry.request {
        Some(r) => (r.line.clone(), quote(r.referer.as_deref()), quote(r.user_agent.as_deref())),
        None => ("-".to_string(), "-".to_string(), "-".to_string()),
    };
    format!(
        "{} - {} [{}] \"{}\" {} {} \"{}\" \"{}\" {}",
        entry.ip,
        entry.user.unwrap_or("-"),
        timefmt::clf(now),
        request_line.replace('"', "\\\""),
        entry.status,
        entry.bytes,
        referer,
        agent,
        entry.duration.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_format_with_seconds() {
        let req = Request::parse(b"GET /live.mp3 HTTP/1.1\r\nUser-Agent: VLC\r\n\r\n", 8).unwrap();
        let entry = AccessEntry {
            ip: "127.0.0.1".parse().unwrap(),
            user: None,
            request: Some(&RequestLine::of(&req)),
            status: 200,
            bytes: 1234,
            duration: Duration::from_secs(61),
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            format_line(&entry, now),
            "127.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"GET /live.mp3 HTTP/1.1\" 200 1234 \"-\" \"VLC\" 61"
        );
    }
}
