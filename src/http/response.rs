//! Complete (non-stream) HTTP responses: status, headers and a body with a
//! known length, written as HTTP/1.0 with `Connection: close`.

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// The `Server:` header value.
pub const SERVER_ID: &str = concat!("Floe/", env!("CARGO_PKG_VERSION"));

/// A response with its whole body in memory.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Answer as HTTP/1.1 and keep the connection (the caller decides).
    pub keep_alive: bool,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
            keep_alive: false,
        }
    }

    /// A short plain-text message (errors, `OK`).
    pub fn text(status: u16, message: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", format!("{message}\n"))
    }

    pub fn json(body: String) -> Response {
        Response::new(200, "application/json; charset=utf-8", body)
    }

    pub fn xml(body: String) -> Response {
        Response::new(200, "text/xml; charset=utf-8", body)
    }

    pub fn html(body: impl Into<Bytes>) -> Response {
        Response::new(200, "text/html; charset=utf-8", body)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// 401 asking for Basic credentials (libshout waits for this before it sends them).
    pub fn unauthorized(realm: &str) -> Response {
        Response::text(401, "Authentication required")
            .with_header("WWW-Authenticate", &format!("Basic realm=\"{realm}\""))
    }

    /// Serialize the status line and headers.
    pub fn head_bytes(&self) -> Vec<u8> {
        let version = if self.keep_alive { "HTTP/1.1" } else { "HTTP/1.0" };
        let mut head = format!("{version} {} {}\r\nServer: {SERVER_ID}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        // Documents are what they say they are; all but the status page (whose
        // script must run) render as sandboxed, origin-less documents.
        head.push_str("X-Content-Type-Options: nosniff\r\n");
        if !self.headers.iter().any(|(k, v)| k == "Content-Type" && v.starts_with("text/html")) {
            head.push_str("Content-Security-Policy: sandbox\r\n");
        }
        if !self.headers.iter().any(|(k, _)| k == "Cache-Control") {
            head.push_str("Cache-Control: no-cache, no-store\r\n");
        }
        let connection = if self.keep_alive { "keep-alive" } else { "close" };
        head.push_str(&format!(
            "Content-Length: {}\r\nAccess-Control-Allow-Origin: *\r\nConnection: {connection}\r\n\r\n",
            self.body.len()
        ));
        head.into_bytes()
    }

    /// Write the response (without the body for `HEAD`). Returns body bytes sent.
    pub async fn write_to<W: AsyncWrite + Unpin>(&self, out: &mut W, head_only: bool) -> std::io::Result<u64> {
        // One write: head and body leave in one segment when they fit.
        let mut bytes = self.head_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        out.write_all(&bytes).await?;
        out.flush().await?;
        Ok(if head_only { 0 } else { self.body.len() as u64 })
    }
}

/// Reason phrase for the statuses Floe sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_has_length_and_close() {
        let r = Response::text(404, "Mount not found");
        let head = String::from_utf8(r.head_bytes()).unwrap();
        assert!(head.starts_with("HTTP/1.0 404 Not Found\r\n"));
        assert!(head.contains("Content-Length: 16\r\n"));
        assert!(head.contains("Connection: close\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
    }
}
