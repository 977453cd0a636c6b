//! Forms Floe POSTs to other HTTP services (URL authentication backends, YP
//! directories), and the head of their answer: plain HTTP/1.1, one request
//! per connection, the head bounded in size. Callers bound the time. Relays
//! read their upstreams' answers with `parse_head` too.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::url::HttpUrl;

/// Largest response head read.
const MAX_HEAD: usize = 16 * 1024;

/// A response head: its status and headers (names in lower case).
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

/// The response head at the start of `bytes`: `Ok(None)` while it is
/// incomplete, an error when it is not HTTP.
pub fn parse_head(bytes: &[u8]) -> Result<Option<Head>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    Ok(match response.parse(bytes)? {
        httparse::Status::Complete(_) => Some(Head {
            status: response.code.unwrap_or(0),
            reason: response.reason.unwrap_or("").to_string(),
            headers: response
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
                .collect(),
        }),
        httparse::Status::Partial => None,
    })
}

impl Head {
    /// The first value of header `name` (lower case), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim())
    }
}

/// POST `form` to `url` (with Basic `credentials`) and read the response head.
pub async fn post_form(
    url: &HttpUrl,
    credentials: Option<(&str, &str)>,
    form: &[(&str, String)],
) -> Result<Head, String> {
    let mut sock = TcpStream::connect((url.host.as_str(), url.port)).await.map_err(|e| format!("{url}: {e}"))?;
    let body = encode_form(form);
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        url.target,
        url.host,
        url.port,
        crate::http::server_id::get(),
        body.len()
    );
    if let Some((user, password)) = credentials {
        request.push_str(&format!("Authorization: {}\r\n", crate::auth::basic_header(user, password)));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    sock.write_all(request.as_bytes()).await.map_err(|e| format!("{url}: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    loop {
        match parse_head(&buf) {
            Ok(Some(head)) => return Ok(head),
            Ok(None) if buf.len() < MAX_HEAD => {}
            Ok(None) => return Err(format!("{url}: response head over {MAX_HEAD} bytes")),
            Err(error) => return Err(format!("{url}: not an HTTP response ({error})")),
        }
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await.map_err(|e| format!("{url}: {e}"))?;
        if n == 0 {
            return Err(format!("{url}: closed before a response"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `application/x-www-form-urlencoded`.
pub fn encode_form(form: &[(&str, String)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    form.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_encoded() {
        let form = [("action", "listener_add".to_string()), ("agent", "VLC/3.0 (x&y=z)".to_string())];
        assert_eq!(encode_form(&form), "action=listener_add&agent=VLC%2F3.0%20%28x%26y%3Dz%29");
    }
}
