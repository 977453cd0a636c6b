//! The access log: one line per finished request in combined log format,
//! plus the seconds the connection lasted (as Icecast writes it), to a file
//! or, when none is configured, through `tracing` (target `floe::access`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

use crate::escape::escape_log;
use crate::http::request::Request;
use crate::http::status::Status;
use crate::timefmt;

/// Where access lines go. Clone is cheap; clones share the file, so a
/// `reopen` or a reload's `redirect` reaches every connection.
#[derive(Clone, Default)]
pub struct AccessLog {
    /// One short write per finished request; a plain mutex is enough.
    target: Arc<Mutex<Target>>,
    /// Every request logged, by status class (`/metrics`).
    classes: Arc<StatusClasses>,
}

/// The file and the name it was opened by; no file logs through tracing.
#[derive(Default)]
struct Target {
    file: Option<LogFile>,
}

/// An access log file opened for appending, and its name.
pub struct LogFile {
    file: File,
    path: PathBuf,
}

impl LogFile {
    pub fn open(path: &Path) -> std::io::Result<LogFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LogFile { file, path: path.to_path_buf() })
    }
}

/// Finished requests by status class: index 1 is 1xx … 5 is 5xx.
#[derive(Default)]
pub struct StatusClasses([AtomicU64; 6]);

impl StatusClasses {
    fn count(&self, status: Status) {
        self.0[usize::from(status.code() / 100).min(5)].fetch_add(1, Ordering::Relaxed);
    }

    /// (`"2xx"`, count) for each class from 1xx to 5xx.
    pub fn counts(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        (1..6).map(|class| (format!("{class}xx"), self.0[class].load(Ordering::Relaxed)))
    }
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
            line: format!("{} {} {}", req.method, redact_target(&req.target), req.version_str()),
            referer: req.header("Referer").map(str::to_string),
            user_agent: req.header("User-Agent").map(str::to_string),
        }
    }
}

/// Query keys whose values are credentials (SHOUTcast's `admin.cgi?pass=`,
/// and what tools put in URLs): never written to the log in clear.
const SECRET_KEYS: [&str; 6] = ["pass", "password", "passwd", "pwd", "token", "key"];

/// The request target with credential values in its query replaced by `***`.
pub fn redact_target(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else { return target.to_string() };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if SECRET_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k)) => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// What one access line says.
pub struct AccessEntry<'a> {
    pub ip: IpAddr,
    pub user: Option<&'a str>,
    pub request: Option<&'a RequestLine>,
    pub status: Status,
    pub bytes: u64,
    pub duration: Duration,
}

impl AccessLog {
    pub fn open(path: &Path) -> std::io::Result<AccessLog> {
        let log = AccessLog::default();
        log.write_to(Some(LogFile::open(path)?));
        Ok(log)
    }

    /// Open the file by its name again (logrotate moved the old one away and
    /// sent SIGHUP). If that fails, lines keep going to the old file.
    pub fn reopen(&self) -> std::io::Result<()> {
        let Some(path) = self.path() else { return Ok(()) };
        self.write_to(Some(LogFile::open(&path)?));
        Ok(())
    }

    /// Write to `file` from now on (`None`: through tracing).
    pub fn write_to(&self, file: Option<LogFile>) {
        self.target.lock().file = file;
    }

    /// The file lines go to, if any.
    pub fn path(&self) -> Option<PathBuf> {
        self.target.lock().file.as_ref().map(|log| log.path.clone())
    }

    /// Requests logged so far by status class.
    pub fn status_classes(&self) -> &StatusClasses {
        &self.classes
    }

    /// Record a request that began at `started` and has just finished.
    pub fn finished(
        &self,
        ip: IpAddr,
        user: Option<&str>,
        request: Option<&RequestLine>,
        status: Status,
        bytes: u64,
        started: Instant,
    ) {
        self.record(&AccessEntry { ip, user, request, status, bytes, duration: started.elapsed() });
    }

    pub fn record(&self, entry: &AccessEntry<'_>) {
        self.classes.count(entry.status);
        let line = format_line(entry, SystemTime::now());
        let mut target = self.target.lock();
        match &mut target.file {
            Some(log) => {
                if let Err(error) = writeln!(log.file, "{line}") {
                    drop(target);
                    tracing::warn!(%error, "cannot write access log");
                }
            }
            None => {
                drop(target);
                tracing::info!(target: "floe::access", "{line}")
            }
        }
    }
}

/// `IP - user [date] "METHOD URI HTTP/x" status bytes "referer" "user-agent" seconds`
pub fn format_line(entry: &AccessEntry<'_>, now: SystemTime) -> String {
    let quote = |s: Option<&str>| s.map_or_else(|| "-".to_string(), escape_log);
    let (request_line, referer, agent) = match entry.request {
        Some(r) => (escape_log(&r.line), quote(r.referer.as_deref()), quote(r.user_agent.as_deref())),
        None => ("-".to_string(), "-".to_string(), "-".to_string()),
    };
    // The user name is a field of its own, unquoted: no spaces either.
    let user = entry.user.map_or_else(|| "-".to_string(), |u| escape_log(u).replace(' ', "\\x{20}"));
    format!(
        "{} - {} [{}] \"{}\" {} {} \"{}\" \"{}\" {}",
        entry.ip,
        user,
        timefmt::clf(now),
        request_line,
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
    fn credentials_never_reach_the_log() {
        assert_eq!(
            redact_target("/admin.cgi?mode=updinfo&pass=hackme&song=A"),
            "/admin.cgi?mode=updinfo&pass=***&song=A"
        );
        assert_eq!(redact_target("/admin/stats?PASSWORD=x&user=admin"), "/admin/stats?PASSWORD=***&user=admin");
        assert_eq!(redact_target("/live.mp3"), "/live.mp3");
        assert_eq!(redact_target("/live.mp3?_ic2=1"), "/live.mp3?_ic2=1");
    }

    #[test]
    fn user_names_stay_one_field() {
        let entry = AccessEntry {
            ip: "127.0.0.1".parse().unwrap(),
            user: Some("ad min\n"),
            request: None,
            status: Status::Unauthorized,
            bytes: 0,
            duration: Duration::ZERO,
        };
        let line = format_line(&entry, SystemTime::UNIX_EPOCH);
        assert!(line.starts_with("127.0.0.1 - ad\\x{20}min\\x{a} ["), "{line}");
    }

    #[test]
    fn combined_format_with_seconds() {
        let req = Request::parse(b"GET /live.mp3 HTTP/1.1\r\nUser-Agent: VLC\r\n\r\n", 8).unwrap();
        let entry = AccessEntry {
            ip: "127.0.0.1".parse().unwrap(),
            user: None,
            request: Some(&RequestLine::of(&req)),
            status: Status::Ok,
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
