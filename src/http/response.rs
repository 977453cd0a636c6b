//! HTTP responses: status, headers and a body with a known length, or the
//! head of a stream that runs until the connection closes (a listener's).
//! Every head carries the same policy headers, built here (all but the bare
//! `HTTP/1.0 200 OK` a legacy `SOURCE` client gets, as Icecast sends it).
//! Hyper sends them on kept-alive and HTTP/2 connections; on the
//! hand-written path (sources, listeners, refusals, malformed heads) they go
//! out as HTTP/1.0 with `Connection: close`.

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::body::Body;
use super::status::{Refusal, Status};

/// A response with its whole body in memory.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: Status,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Response {
    pub fn new(status: Status, content_type: &str, body: impl Into<Bytes>) -> Response {
        Response { status, headers: vec![("Content-Type".into(), content_type.into())], body: body.into() }
    }

    /// A short plain-text message (errors, `OK`).
    pub fn text(status: Status, message: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", format!("{message}\n"))
    }

    pub fn json(body: String) -> Response {
        Response::new(Status::Ok, "application/json; charset=utf-8", body)
    }

    pub fn xml(body: String) -> Response {
        Response::new(Status::Ok, "text/xml; charset=utf-8", body)
    }

    pub fn html(body: impl Into<Bytes>) -> Response {
        Response::new(Status::Ok, "text/html; charset=utf-8", body)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The headers `refusal` calls for: the challenge of a 401, `Retry-After`.
    pub fn with_refusal_headers<R: Refusal + ?Sized>(self, refusal: &R) -> Response {
        let mut response = self;
        if refusal.status() == Status::Unauthorized {
            // libshout waits for the challenge before it sends credentials.
            let challenge = format!("Basic realm=\"{}\"", refusal.realm());
            response = response.with_header("WWW-Authenticate", &challenge);
        }
        match refusal.retry_after() {
            Some(secs) => response.with_header("Retry-After", &secs.to_string()),
            None => response,
        }
    }

    /// The headers every complete response carries besides its own.
    fn policy_headers(&self) -> impl Iterator<Item = (&'static str, std::borrow::Cow<'static, str>)> {
        let own = |name: &str| self.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        let html = self.headers.iter().any(|(k, v)| k == "Content-Type" && v.starts_with("text/html"));
        [
            Some(("Server", super::server_id::get().to_string().into())),
            // Documents are what they say they are; all but the status page
            // (whose script must run) render as sandboxed, origin-less documents.
            Some(("X-Content-Type-Options", "nosniff".into())),
            (!html && !own("Content-Security-Policy")).then_some(("Content-Security-Policy", "sandbox".into())),
            (!own("Cache-Control")).then_some(("Cache-Control", "no-cache, no-store".into())),
            (!own("Access-Control-Allow-Origin")).then_some(("Access-Control-Allow-Origin", "*".into())),
        ]
        .into_iter()
        .flatten()
    }

    /// Serialize the status line and headers (HTTP/1.0, closing).
    pub fn head_bytes(&self) -> Vec<u8> {
        self.head(Some(self.body.len()))
    }

    /// The head of an answer that ends when the connection closes (a
    /// listener's stream; a source's go-ahead, after which the source sends
    /// until it closes): no length.
    pub fn stream_head_bytes(&self) -> Vec<u8> {
        self.head(None)
    }

    fn head(&self, length: Option<usize>) -> Vec<u8> {
        let mut head = format!("HTTP/1.0 {} {}\r\n", self.status, self.status.reason());
        for (name, value) in self.policy_headers() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(length) = length {
            head.push_str(&format!("Content-Length: {length}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        head.into_bytes()
    }

    /// The response for hyper (which adds the length and connection headers).
    pub fn into_hyper(self) -> hyper::Response<Body> {
        let body = Body::full(self.body.clone());
        self.into_hyper_with(body)
    }

    /// Status and headers for hyper, with a body streamed from elsewhere.
    pub fn into_hyper_with(self, body: Body) -> hyper::Response<Body> {
        let mut builder = hyper::Response::builder().status(self.status.code());
        for (name, value) in self.policy_headers() {
            builder = builder.header(name, value.as_ref());
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder.body(body).unwrap_or_else(|error| {
            tracing::error!(%error, "response header refused by hyper");
            let mut response = hyper::Response::new(Body::full(Bytes::from_static(b"Internal error\n")));
            *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            response
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_has_length_and_close() {
        let r = Response::text(Status::NotFound, "Mount not found");
        let head = String::from_utf8(r.head_bytes()).unwrap();
        assert!(head.starts_with("HTTP/1.0 404 Not Found\r\n"));
        assert!(head.contains("Content-Length: 16\r\n"));
        assert!(head.contains("Connection: close\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn a_stream_head_has_the_policy_headers_and_no_length() {
        let r = Response::new(Status::Ok, "audio/mpeg", Bytes::new()).with_header("icy-br", "128");
        let head = String::from_utf8(r.stream_head_bytes()).unwrap();
        assert!(head.starts_with("HTTP/1.0 200 OK\r\nServer: "), "{head}");
        for line in ["X-Content-Type-Options: nosniff", "Content-Security-Policy: sandbox", "icy-br: 128"] {
            assert!(head.contains(&format!("\r\n{line}\r\n")), "{line} in {head}");
        }
        assert!(!head.contains("Content-Length"), "{head}");
        assert!(head.ends_with("\r\nConnection: close\r\n\r\n"), "{head}");
        // A response's own policy header replaces the default, never doubles it.
        let own = r.with_header("Content-Security-Policy", "sandbox");
        let head = String::from_utf8(own.stream_head_bytes()).unwrap();
        assert_eq!(head.matches("Content-Security-Policy").count(), 1, "{head}");
    }
}
