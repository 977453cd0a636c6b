//! `http://host[:port]/path?query` URLs of the services Floe calls (URL
//! authentication backends). Plain HTTP only: such backends sit beside the
//! server.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub target: String,
}

impl FromStr for HttpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<HttpUrl, String> {
        let rest = match text.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(format!("{scheme}:// is not supported: the backend must speak plain http://"))
            }
            None => return Err(format!("{text:?} is not an http:// URL")),
        };
        let (authority, target) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err("put the backend's credentials in username and password, not the URL".into());
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') || host.starts_with('[') => {
                (host, port.parse().map_err(|_| format!("{port:?} is not a port"))?)
            }
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let valid = |c: char| c.is_ascii_alphanumeric() || "-._:".contains(c);
        if host.is_empty() || !host.chars().all(valid) || target.chars().any(|c| c.is_ascii_control() || c == ' ') {
            return Err(format!("{text:?} is not a valid http:// URL"));
        }
        Ok(HttpUrl { host: host.to_string(), port, target: target.to_string() })
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.contains(':') {
            true => write!(f, "http://[{}]:{}{}", self.host, self.port, self.target),
            false => write!(f, "http://{}:{}{}", self.host, self.port, self.target),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_backends_use() {
        let url: HttpUrl = "http://127.0.0.1:9000/auth.php?x=1".parse().unwrap();
        assert_eq!((url.host.as_str(), url.port, url.target.as_str()), ("127.0.0.1", 9000, "/auth.php?x=1"));
        let url: HttpUrl = "http://auth.example".parse().unwrap();
        assert_eq!((url.port, url.target.as_str()), (80, "/"));
        let url: HttpUrl = "http://[::1]:81/a".parse().unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 81));
        assert_eq!(url.to_string(), "http://[::1]:81/a");
        for bad in ["https://x/", "ftp://x", "x/y", "http://u:p@x/", "http://x:99999/", "http:///", "http://a b/"] {
            assert!(bad.parse::<HttpUrl>().is_err(), "{bad}");
        }
    }
}
