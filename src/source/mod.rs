//! Sources: HTTP `PUT`/`SOURCE` ingest (`http.rs`), SHOUTcast v1 on its own
//! port (`shoutcast.rs`), and the read loop both share (`ingest.rs`), which
//! decodes the body, strips inline ICY metadata and frames the stream into
//! the mount.

mod http;
pub mod icy_strip;
pub(crate) mod ingest;
mod shoutcast;

pub use http::serve as serve_http;
pub use shoutcast::parse_login as parse_shoutcast_login;
pub use shoutcast::serve as serve_shoutcast;

use crate::config::{mount_name, MountNameError};
use crate::http::status::{Refusal, Status};

/// Check a mount name a source asked for.
fn check_mount_name(name: &str) -> Result<(), SourceError> {
    mount_name::check(name).map_err(|e| match e {
        MountNameError::Invalid(_) => SourceError::BadMount,
        MountNameError::Reserved(_) => SourceError::ReservedMount,
    })
}

/// Longest `Content-Type` a source may declare.
const MAX_CONTENT_TYPE: usize = 128;

/// The stream's `Content-Type` if listeners may be served it: audio of any
/// kind, WebM and Ogg (Icecast's set). Anything else — `text/html` above
/// all, which a browser would run on the server's origin, with the admin's
/// cached credentials — is refused, as is text that could break a header.
pub fn allowed_content_type(content_type: &str) -> Result<String, SourceError> {
    let content_type = content_type.trim();
    let printable = content_type.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    if content_type.len() > MAX_CONTENT_TYPE || !printable {
        return Err(SourceError::UnsupportedType);
    }
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/').ok_or(SourceError::UnsupportedType)?;
    let token = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    let allowed = match kind {
        "audio" => true,
        "video" => matches!(subtype, "webm" | "ogg"),
        "application" => matches!(subtype, "ogg" | "x-ogg"),
        _ => false,
    };
    if allowed && token(kind) && token(subtype) {
        Ok(content_type.to_string())
    } else {
        Err(SourceError::UnsupportedType)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_types_only() {
        for ok in ["audio/mpeg", "Audio/AAC", "audio/ogg; codecs=opus", "video/webm", "application/ogg", "audio/x-foo"]
        {
            assert!(allowed_content_type(ok).is_ok(), "{ok}");
        }
        for bad in [
            "text/html",
            "text/html; charset=utf-8",
            "application/javascript",
            "image/svg+xml",
            "application/xhtml+xml",
            "video/mp4",
            "audio",
            "audio/",
            "audio/mpeg\r\nSet-Cookie: x=1",
            "audio/mp\u{e9}g",
            "audio/<script>",
        ] {
            assert_eq!(allowed_content_type(bad), Err(SourceError::UnsupportedType), "{bad:?}");
        }
    }
}

/// Why a source was refused, mapped to one status and public message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("authentication required")]
    NeedAuth,
    #[error("wrong user name or password")]
    BadAuth,
    #[error("invalid mount name")]
    BadMount,
    #[error("mount name reserved for the server's own pages")]
    ReservedMount,
    #[error("Content-Type not allowed: streams must be audio/*, video/webm, video/ogg or application/ogg")]
    UnsupportedType,
    #[error("mount in use")]
    MountInUse,
    /// Held by the previous process's feed during a binary upgrade: the
    /// caller ends the feed (`upgrade::feed::displace`) and tries again.
    #[error("mount in use (by the handover feed)")]
    HeldByFeed,
    #[error("no Content-Type given")]
    NoContentType,
    #[error("too many sources")]
    Limit,
    #[error("this mount is a rendition encoded by the server")]
    Derived,
    #[error("too many failed logins from this address; retry later")]
    Throttled(u64),
    #[error("{0}")]
    Refused(crate::access::Denied),
}

impl Refusal for SourceError {
    fn status(&self) -> Status {
        match self {
            SourceError::NeedAuth | SourceError::BadAuth => Status::Unauthorized,
            SourceError::BadMount => Status::BadRequest,
            SourceError::MountInUse
            | SourceError::HeldByFeed
            | SourceError::NoContentType
            | SourceError::Derived
            | SourceError::ReservedMount
            | SourceError::UnsupportedType
            | SourceError::Refused(_) => Status::Forbidden,
            SourceError::Limit => Status::ServiceUnavailable,
            SourceError::Throttled(_) => Status::TooManyRequests,
        }
    }

    fn realm(&self) -> &'static str {
        "Floe source"
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            SourceError::Throttled(secs) => Some(*secs),
            _ => None,
        }
    }
}
