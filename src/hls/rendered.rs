//! Playlists as served: rendered once per change of the window, with their
//! `ETag` and (when first asked for) their gzipped form. Between two parts
//! every player asks for the same playlists, and an hour's media playlist
//! is tens of kilobytes to build, hash and compress.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

/// Which document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKey {
    Master,
    Media { variant: usize, skip: bool },
}

/// A rendered playlist.
#[derive(Debug)]
pub struct Document {
    pub body: Bytes,
    pub etag: String,
    gzipped: OnceLock<Option<Bytes>>,
}

/// Smaller bodies are not worth compressing.
const GZIP_FROM: usize = 512;

impl Document {
    pub fn new(body: String) -> Document {
        let etag = format!("\"{:016x}\"", fnv1a(body.as_bytes()));
        Document { body: Bytes::from(body), etag, gzipped: OnceLock::new() }
    }

    /// The body gzipped, if it is worth it (computed once).
    pub fn gzipped(&self) -> Option<Bytes> {
        self.gzipped
            .get_or_init(|| {
                if self.body.len() < GZIP_FROM {
                    return None;
                }
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder.write_all(&self.body).and_then(|()| encoder.finish()).ok().map(Bytes::from)
            })
            .clone()
    }
}

/// The documents rendered at one version of the window.
#[derive(Debug, Default)]
pub struct Rendered {
    version: u64,
    documents: HashMap<DocumentKey, Arc<Document>>,
}

impl Rendered {
    pub fn get(&self, version: u64, key: DocumentKey) -> Option<Arc<Document>> {
        (self.version == version).then(|| self.documents.get(&key).cloned()).flatten()
    }

    /// Keep `document`, rendered at `version`; older ones go.
    pub fn put(&mut self, version: u64, key: DocumentKey, document: Arc<Document>) {
        if version != self.version {
            if version < self.version {
                return;
            }
            self.version = version;
            self.documents.clear();
        }
        self.documents.insert(key, document);
    }
}

/// FNV-1a: a cheap, stable fingerprint for `ETag`s.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_last_until_the_window_changes() {
        let mut rendered = Rendered::default();
        let key = DocumentKey::Media { variant: 0, skip: false };
        let doc = Arc::new(Document::new("#EXTM3U\n".repeat(100)));
        rendered.put(3, key, doc.clone());
        assert!(rendered.get(3, key).is_some_and(|d| Arc::ptr_eq(&d, &doc)));
        assert!(rendered.get(4, key).is_none(), "a newer window renders again");
        rendered.put(2, DocumentKey::Master, doc.clone());
        assert!(rendered.get(2, DocumentKey::Master).is_none(), "a late render of an older window is not kept");
        let gz = doc.gzipped().expect("800 bytes compress");
        assert!(gz.len() < doc.body.len() && gz.starts_with(&[0x1f, 0x8b]));
        assert_eq!(doc.etag.len(), 18);
    }
}
