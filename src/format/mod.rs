//! Stream formats: sans-IO framers that re-chunk a source's byte stream on
//! frame (MP3, AAC/ADTS), page (Ogg) or cluster (WebM) boundaries, capture the
//! headers a late joiner needs, and resync past garbage.
//!
//! Framers never touch sockets: ingest feeds them whatever it read and
//! appends the units they return to the mount's ring.

mod adts;
mod mp3;
mod ogg;
mod opaque;

/// Reading the Ogg pages a framer made (the transcoder's way in).
pub use adts::AdtsHeader;
pub use ogg::{
    codec as ogg_codec, first_packet as ogg_first_packet, pages_of as ogg_pages, Codec as OggCodec,
    CodecKind as OggCodecKind, PageRef as OggPage, FLAG_BOS as OGG_FLAG_BOS, FLAG_CONTINUED as OGG_FLAG_CONTINUED,
    FLAG_EOS as OGG_FLAG_EOS,
};
mod sync;
mod webm;

use bytes::Bytes;

/// What a framer hands back for the mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit {
    /// Stream data that starts on a frame/page/element boundary (it may hold
    /// several frames). `sync` is true when a new listener may start playback
    /// here (every MP3/ADTS frame and Ogg page; WebM cluster starts only).
    Data { bytes: Bytes, sync: bool },
    /// The stream headers changed: new joiners get `bytes` before any data
    /// (Ogg BOS and header pages of the current logical streams, WebM EBML
    /// header + Segment start + Tracks). `in_band` is true when listeners
    /// already playing must receive them too, at this position in the stream
    /// (a chained Ogg stream), false for the headers at the start of a stream.
    Headers { bytes: Bytes, in_band: bool },
}

impl Unit {
    /// The stream bytes it carries.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Unit::Data { bytes, .. } | Unit::Headers { bytes, .. } => bytes,
        }
    }
}

/// Audio parameters read from the stream itself, for status pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AudioInfo {
    pub sample_rate: u32,
    pub channels: u8,
    /// kbit/s when the format states it (MP3 frame headers); 0 otherwise.
    pub bitrate: u32,
}

/// A sans-IO framer for one format.
pub trait Framer: Send {
    /// Feed bytes read from the source; complete units are appended to `out`.
    /// Incomplete trailing data is kept until the next call.
    fn push(&mut self, input: &[u8], out: &mut Vec<Unit>);
    /// Bytes thrown away so far because they were not part of a valid
    /// frame/page (garbage, truncated frames, unparseable elements).
    fn skipped_bytes(&self) -> u64;
    /// Audio parameters seen so far, if the format tells them.
    fn audio_info(&self) -> Option<AudioInfo> {
        None
    }

    /// Bytes held between pushes (partial frames, pages or elements, header
    /// captures): bounded by each format's largest unit.
    fn buffered(&self) -> usize {
        0
    }
}

/// The formats Floe frames, chosen by the source's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Mp3,
    Aac,
    Ogg,
    WebM,
    /// Unknown types are relayed as they come, each read a sync point.
    Opaque,
}

impl Format {
    /// Pick the framer for a `Content-Type` (parameters ignored, case-insensitive).
    pub fn from_content_type(content_type: &str) -> Format {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "audio/mpeg" | "audio/mp3" | "audio/mpeg3" | "audio/x-mpeg" => Format::Mp3,
            "audio/aac" | "audio/aacp" | "audio/x-aac" | "audio/x-aacp" => Format::Aac,
            "application/ogg" | "audio/ogg" | "video/ogg" | "audio/x-ogg" | "audio/opus" | "audio/flac"
            | "audio/vorbis" => Format::Ogg,
            "audio/webm" | "video/webm" => Format::WebM,
            _ => Format::Opaque,
        }
    }

    /// A fresh framer for this format.
    pub fn framer(self) -> Box<dyn Framer> {
        match self {
            Format::Mp3 => Box::new(mp3::Mp3Framer::new()),
            Format::Aac => Box::new(adts::AdtsFramer::new()),
            Format::Ogg => Box::new(ogg::OggFramer::new()),
            Format::WebM => Box::new(webm::WebmFramer::new()),
            Format::Opaque => Box::new(opaque::OpaqueFramer::default()),
        }
    }

    /// Whether ICY metadata blocks may be interleaved into this format for
    /// listeners that ask (Icecast never puts them into Ogg or WebM).
    pub fn supports_icy(self) -> bool {
        matches!(self, Format::Mp3 | Format::Aac | Format::Opaque)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(Format::from_content_type("audio/mpeg"), Format::Mp3);
        assert_eq!(Format::from_content_type("Audio/MPEG; charset=x"), Format::Mp3);
        assert_eq!(Format::from_content_type("audio/aacp"), Format::Aac);
        assert_eq!(Format::from_content_type("application/ogg"), Format::Ogg);
        assert_eq!(Format::from_content_type("audio/ogg"), Format::Ogg);
        assert_eq!(Format::from_content_type("video/webm"), Format::WebM);
        assert_eq!(Format::from_content_type("application/x-foo"), Format::Opaque);
    }
}
