//! Sources: HTTP `PUT`/`SOURCE` ingest (`http.rs`), SHOUTcast v1 on its own
//! port (`shoutcast.rs`), and the read loop both share (`ingest.rs`), which
//! decodes the body, strips inline ICY metadata and frames the stream into
//! the mount.

pub mod chunked;
mod http;
pub mod icy_strip;
mod ingest;
mod shoutcast;

pub use http::serve as serve_http;
pub use shoutcast::serve as serve_shoutcast;

/// Why a source was refused, mapped to one status and public message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("authentication required")]
    NeedAuth,
    #[error("wrong user name or password")]
    BadAuth,
    #[error("invalid mount name")]
    BadMount,
    #[error("mount in use")]
    MountInUse,
    #[error("no Content-Type given")]
    NoContentType,
    #[error("too many sources")]
    Limit,
    #[error("this mount is a rendition encoded by the server")]
    Derived,
}

impl SourceError {
    pub fn status(self) -> u16 {
        match self {
            SourceError::NeedAuth | SourceError::BadAuth => 401,
            SourceError::BadMount => 400,
            SourceError::MountInUse | SourceError::NoContentType | SourceError::Derived => 403,
            SourceError::Limit => 503,
        }
    }
}
