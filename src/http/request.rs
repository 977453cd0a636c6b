//! Request heads: a sans-IO scanner that enforces the size limits while
//! bytes arrive, and the parsed `Request` the rest of the server reads.
//!
//! Floe parses heads itself (with `httparse`) rather than through a generic
//! HTTP server because source requests have an unbounded body with no length
//! and listener responses must be written byte-exact.

use super::status::{Refusal, Status};
use crate::config::Limits;

/// Why a request head was refused. Each maps to one status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("header line too long")]
    LineTooLong,
    #[error("request head too large")]
    HeadTooLarge,
    #[error("too many header fields")]
    TooManyHeaders,
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request head not received in time")]
    Timeout,
}

impl Refusal for HeadError {
    fn status(&self) -> Status {
        match self {
            HeadError::LineTooLong | HeadError::HeadTooLarge | HeadError::TooManyHeaders => {
                Status::HeaderFieldsTooLarge
            }
            HeadError::Malformed(_) => Status::BadRequest,
            HeadError::Timeout => Status::RequestTimeout,
        }
    }
}

/// Look for the end of a request head in `buf`, enforcing the limits on what
/// has arrived so far. `Ok(Some(n))`: the head is `buf[..n]`.
pub fn scan_head(buf: &[u8], limits: &Limits) -> Result<Option<usize>, HeadError> {
    let mut line_start = 0;
    let mut lines = 0;
    for (i, &b) in buf.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        let line = &buf[line_start..i];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > limits.max_header_line {
            return Err(HeadError::LineTooLong);
        }
        if line.is_empty() && lines > 0 {
            return check_size(i + 1, limits).map(|()| Some(i + 1));
        }
        if !line.is_empty() {
            lines += 1;
            // The request line plus max_headers fields.
            if lines > limits.max_headers + 1 {
                return Err(HeadError::TooManyHeaders);
            }
        }
        line_start = i + 1;
    }
    if buf.len() - line_start > limits.max_header_line {
        return Err(HeadError::LineTooLong);
    }
    check_size(buf.len(), limits).map(|()| None)
}

fn check_size(len: usize, limits: &Limits) -> Result<(), HeadError> {
    if len > limits.max_header_size {
        Err(HeadError::HeadTooLarge)
    } else {
        Ok(())
    }
}

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent, e.g. `/live.mp3?_ic2=1`.
    pub target: String,
    /// The percent-decoded path without the query.
    pub path: String,
    /// Decoded query pairs; values stay bytes so `charset=` can pick their encoding.
    pub query: Vec<(String, Vec<u8>)>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1, 2 for HTTP/2.
    pub version: u8,
    pub headers: Vec<(String, String)>,
    /// Came over TLS (set by the connection).
    pub secure: bool,
}

impl Request {
    /// Parse a complete head (as found by `scan_head`).
    pub fn parse(head: &[u8], max_headers: usize) -> Result<Request, HeadError> {
        let mut fields = vec![httparse::EMPTY_HEADER; max_headers];
        let mut req = httparse::Request::new(&mut fields);
        match req.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(HeadError::Malformed("incomplete head")),
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
            Err(_) => return Err(HeadError::Malformed("bad request line or header")),
        }
        let method = req.method.ok_or(HeadError::Malformed("no method"))?.to_string();
        let target = req.path.ok_or(HeadError::Malformed("no target"))?.to_string();
        let version = req.version.ok_or(HeadError::Malformed("no version"))?;
        let headers = req.headers.iter().map(|h| (h.name.to_string(), field_value(h.value))).collect();
        Request::new(method, target, version, headers)
    }

    /// The same shape from a request hyper parsed (kept-alive and HTTP/2
    /// connections).
    pub fn from_parts(parts: &hyper::http::request::Parts) -> Result<Request, HeadError> {
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let version = match parts.version {
            hyper::Version::HTTP_10 | hyper::Version::HTTP_09 => 0,
            hyper::Version::HTTP_11 => 1,
            _ => 2,
        };
        let mut headers: Vec<(String, String)> =
            parts.headers.iter().map(|(k, v)| (k.as_str().to_string(), field_value(v.as_bytes()))).collect();
        // HTTP/2 names the host in `:authority`, not in a Host header.
        if let Some(authority) = parts.uri.authority() {
            if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
                headers.push(("host".to_string(), authority.as_str().to_string()));
            }
        }
        Request::new(parts.method.as_str().to_string(), target, version, headers)
    }

    fn new(method: String, target: String, version: u8, headers: Vec<(String, String)>) -> Result<Request, HeadError> {
        let (raw_path, raw_query) = target.split_once('?').unwrap_or((&target, ""));
        let path = String::from_utf8(percent_decode(raw_path.as_bytes(), false))
            .map_err(|_| HeadError::Malformed("path is not UTF-8"))?;
        Ok(Request { method, path, query: parse_query(raw_query), target, version, headers, secure: false })
    }

    /// The host and port the client asked for (`Host`), if it is a plain
    /// `name[:port]` or `[v6][:port]` that can go into a URL as it is.
    pub fn host(&self) -> Option<&str> {
        let host = self.header("Host")?.trim();
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') || name.ends_with(']') => (name, Some(port)),
            _ => (host, None),
        };
        let name_ok = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
        };
        let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
        (name_ok && port_ok && host.len() <= 255).then_some(host)
    }

    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Raw query value.
    pub fn query_raw(&self, name: &str) -> Option<&[u8]> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
    }

    /// Query value as UTF-8 (lossy).
    pub fn query(&self, name: &str) -> Option<String> {
        self.query_raw(name).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// `HTTP/1.0` or `HTTP/1.1`, for the access log.
    pub fn version_str(&self) -> &'static str {
        match self.version {
            0 => "HTTP/1.0",
            1 => "HTTP/1.1",
            _ => "HTTP/2.0",
        }
    }
}

/// A header value as text (lossy: values are Latin-1 or UTF-8 in the wild).
fn field_value(value: &[u8]) -> String {
    String::from_utf8_lossy(value).trim().to_string()
}

/// Split and decode `a=1&b=x+y` (`+` is a space in query strings).
pub fn parse_query(raw: &str) -> Vec<(String, Vec<u8>)> {
    raw.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let key = String::from_utf8_lossy(&percent_decode(k.as_bytes(), true)).into_owned();
            (key, percent_decode(v.as_bytes(), true))
        })
        .collect()
}

/// Percent-decode; invalid escapes are kept literally.
pub fn percent_decode(input: &[u8], plus_is_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' if i + 2 < input.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(input[i + 1]), hex(input[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { max_header_line: 32, max_header_size: 128, max_headers: 3, ..Limits::default() }
    }

    #[test]
    fn host_is_taken_only_when_it_fits_a_url() {
        let host = |value: &str| {
            let head = format!("GET / HTTP/1.1\r\nHost: {value}\r\n\r\n");
            Request::parse(head.as_bytes(), 8).unwrap().host().map(str::to_string)
        };
        assert_eq!(host("radio.example:8000").as_deref(), Some("radio.example:8000"));
        assert_eq!(host("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(host("[::1]:8000").as_deref(), Some("[::1]:8000"));
        for bad in ["evil.example/x", "a@b", "host:port", "[::1", "x:123456", "a b", ""] {
            assert_eq!(host(bad), None, "{bad}");
        }
    }

    #[test]
    fn scan_finds_end_of_head() {
        assert_eq!(scan_head(b"GET / HTTP/1.0\r\nA: b\r\n\r\nbody", &limits()), Ok(Some(24)));
        assert_eq!(scan_head(b"GET / HTTP/1.0\nA: b\n\nbody", &limits()), Ok(Some(21)));
        assert_eq!(scan_head(b"GET / HTTP/1.0\r\nA: b\r\n", &limits()), Ok(None));
    }

    #[test]
    fn scan_enforces_limits() {
        let long = format!("GET /{} HTTP/1.0\r\n", "a".repeat(40));
        assert_eq!(scan_head(long.as_bytes(), &limits()), Err(HeadError::LineTooLong));
        // A partial line that is already too long fails before its newline arrives.
        assert_eq!(scan_head("x".repeat(33).as_bytes(), &limits()), Err(HeadError::LineTooLong));
        let many = "GET / HTTP/1.0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
        assert_eq!(scan_head(many.as_bytes(), &limits()), Err(HeadError::TooManyHeaders));
        let big = format!("GET / HTTP/1.0\r\n{}", "X: 0123456789012345678901\r\n".repeat(5));
        let lim = Limits { max_headers: 10, ..limits() };
        assert_eq!(scan_head(big.as_bytes(), &lim), Err(HeadError::HeadTooLarge));
    }

    #[test]
    fn parses_source_request() {
        let head = b"SOURCE /live.mp3 HTTP/1.0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nice-name: X\r\n\r\n";
        let req = Request::parse(head, 16).unwrap();
        assert_eq!(req.method, "SOURCE");
        assert_eq!(req.path, "/live.mp3");
        assert_eq!(req.version, 0);
        assert_eq!(req.header("ICE-NAME"), Some("X"));
    }

    #[test]
    fn parses_query_and_path() {
        let head = b"GET /admin/metadata?mount=%2Flive&mode=updinfo&song=A+%26+B HTTP/1.1\r\n\r\n";
        let req = Request::parse(head, 16).unwrap();
        assert_eq!(req.path, "/admin/metadata");
        assert_eq!(req.query("mount").as_deref(), Some("/live"));
        assert_eq!(req.query("song").as_deref(), Some("A & B"));
        assert_eq!(req.query("missing"), None);
    }

    #[test]
    fn malformed_requests_are_rejected() {
        assert!(matches!(Request::parse(b"GARBAGE\r\n\r\n", 16), Err(HeadError::Malformed(_))));
        assert!(matches!(Request::parse(b"GET / HTTP/9.9\r\n\r\n", 16), Err(HeadError::Malformed(_))));
        assert!(matches!(Request::parse(b"GET /%ff%fe HTTP/1.0\r\n\r\n", 16), Err(HeadError::Malformed(_))));
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode(b"a%2Fb%zz%4", false), b"a/b%zz%4".to_vec());
        assert_eq!(percent_decode(b"a+b", true), b"a b".to_vec());
        assert_eq!(percent_decode(b"%00", false), vec![0]);
    }
}
