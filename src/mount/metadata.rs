//! Now-playing metadata of a mount, and its ICY wire encoding.
//!
//! A `Metadata` value is immutable and shared (`Arc`) by every chunk written
//! while it was current, so a listener can tell where in the audio a title
//! changed by comparing pointers. The ICY block is encoded once, here, not per
//! listener.

use bytes::Bytes;

/// Longest ICY metadata payload: the length byte counts 16-byte units, at most 255.
pub const MAX_ICY_PAYLOAD: usize = 255 * 16;

/// Title information of a mount at one point in its stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// `StreamTitle`: "Artist - Title", or whatever the source sent as the song.
    pub song: String,
    pub artist: Option<String>,
    pub title: Option<String>,
    /// `StreamUrl`, when the source or admin set one.
    pub url: Option<String>,
    /// The encoded ICY block (length byte + padded payload), built once.
    icy_block: Bytes,
}

impl Metadata {
    /// Metadata for a song string (`song=` in the admin API, ICY `StreamTitle`).
    pub fn from_song(song: &str, url: Option<&str>) -> Metadata {
        Metadata::build(song.to_string(), None, None, url)
    }

    /// Metadata from separate artist and title (`artist=&title=`).
    pub fn from_parts(artist: Option<&str>, title: Option<&str>, url: Option<&str>) -> Metadata {
        let song = match (artist, title) {
            (Some(a), Some(t)) if !a.is_empty() && !t.is_empty() => format!("{a} - {t}"),
            (Some(a), _) if !a.is_empty() => a.to_string(),
            (_, Some(t)) => t.to_string(),
            _ => String::new(),
        };
        Metadata::build(song, artist.map(str::to_string), title.map(str::to_string), url)
    }

    /// Metadata from all its fields (as they travel to and from a codec process).
    pub fn from_fields(song: &str, artist: Option<&str>, title: Option<&str>, url: Option<&str>) -> Metadata {
        Metadata::build(song.to_string(), artist.map(str::to_string), title.map(str::to_string), url)
    }

    fn build(song: String, artist: Option<String>, title: Option<String>, url: Option<&str>) -> Metadata {
        let url = url.filter(|u| !u.is_empty()).map(str::to_string);
        let icy_block = encode_icy_block(&song, url.as_deref());
        Metadata { song, artist, title, url, icy_block }
    }

    /// Bytes this value keeps on the heap (its strings and encoded block),
    /// plus itself: what a ring chunk starting a new title costs extra.
    pub fn heap_size(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        std::mem::size_of::<Metadata>()
            + self.song.capacity()
            + text(&self.artist)
            + text(&self.title)
            + text(&self.url)
            + self.icy_block.len()
    }

    /// The ICY block to interleave when this metadata is new to a listener.
    pub fn icy_block(&self) -> Bytes {
        if self.icy_block.is_empty() {
            // `Default` metadata: an empty title, still a valid full block.
            encode_icy_block("", None)
        } else {
            self.icy_block.clone()
        }
    }
}

/// The ICY block for "no change": a single zero length byte.
pub const ICY_NO_CHANGE: &[u8] = &[0];

/// Encode `StreamTitle='…';StreamUrl='…';` as an ICY block: a length byte,
/// then the payload NUL-padded to a multiple of 16. Over-long text is cut on a
/// UTF-8 character boundary so the block never exceeds 4080 payload bytes.
/// Values are escaped (`escape::icy_value`) so that no title can end its
/// field early and forge another.
pub fn encode_icy_block(song: &str, url: Option<&str>) -> Bytes {
    let song = crate::escape::icy_value(song, false);
    let song = song.as_str();
    let url_part = url.map(|u| format!("StreamUrl='{}';", crate::escape::icy_value(u, true))).unwrap_or_default();
    let overhead = "StreamTitle='';".len();
    let url_part = if url_part.len() + overhead > MAX_ICY_PAYLOAD { String::new() } else { url_part };
    let room = MAX_ICY_PAYLOAD - overhead - url_part.len();
    let song = truncate_on_char_boundary(song, room);
    let payload = format!("StreamTitle='{song}';{url_part}");
    let units = payload.len().div_ceil(16);
    let mut block = Vec::with_capacity(1 + units * 16);
    block.push(units as u8);
    block.extend_from_slice(payload.as_bytes());
    block.resize(1 + units * 16, 0);
    Bytes::from(block)
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub fn truncate_on_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Decode a query value sent with `charset=`: Latin-1 (ISO-8859-1) bytes map
/// one-to-one onto the first 256 code points; anything else is UTF-8.
pub fn decode_with_charset(raw: &[u8], charset: Option<&str>) -> String {
    let latin1 = charset.is_some_and(|c| {
        let c = c.to_ascii_lowercase();
        c == "iso-8859-1" || c == "latin1" || c == "latin-1" || c == "iso8859-1"
    });
    if latin1 {
        raw.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8_lossy(raw).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_framing_is_exact() {
        let block = encode_icy_block("A - B", None);
        // "StreamTitle='A - B';" is 20 bytes -> 2 units of 16.
        assert_eq!(block[0], 2);
        assert_eq!(block.len(), 33);
        assert_eq!(&block[1..21], b"StreamTitle='A - B';");
        assert!(block[21..].iter().all(|&b| b == 0));
    }

    #[test]
    fn url_is_included() {
        let block = encode_icy_block("x", Some("http://a"));
        let text = String::from_utf8_lossy(&block[1..]);
        assert!(text.starts_with("StreamTitle='x';StreamUrl='http://a';"));
    }

    /// A title or URL holding `';` cannot end its field and inject another:
    /// the block parses back to exactly one title and one URL.
    #[test]
    fn quotes_cannot_forge_fields() {
        let block = encode_icy_block("A';StreamUrl='http://evil/';X='", Some("http://ok/?q='1';"));
        let text = std::str::from_utf8(&block[1..]).unwrap().trim_end_matches('\0');
        assert_eq!(text.matches("';").count(), 2, "{text}");
        let (title, url) = crate::source::icy_strip::parse_icy_metadata(&block[1..]);
        assert_eq!(title.as_deref(), Some("A\u{2019};StreamUrl=\u{2019}http://evil/\u{2019};X=\u{2019}"));
        assert_eq!(url.as_deref(), Some("http://ok/?q=%271%27;"));
    }

    #[test]
    fn long_titles_truncate_on_char_boundary() {
        let title = "é".repeat(3000); // 6000 bytes
        let block = encode_icy_block(&title, None);
        assert_eq!(block[0], 255);
        assert_eq!(block.len(), 1 + MAX_ICY_PAYLOAD);
        let payload = &block[1..];
        let end = payload.iter().rposition(|&b| b != 0).unwrap() + 1;
        let text = std::str::from_utf8(&payload[..end]).expect("valid UTF-8 after truncation");
        assert!(text.ends_with("';"));
    }

    #[test]
    fn parts_make_a_song() {
        let m = Metadata::from_parts(Some("Artist"), Some("Title"), None);
        assert_eq!(m.song, "Artist - Title");
        assert_eq!(Metadata::from_parts(None, Some("T"), None).song, "T");
    }

    #[test]
    fn latin1_decoding() {
        assert_eq!(decode_with_charset(&[0x63, 0x61, 0x66, 0xe9], Some("ISO-8859-1")), "café");
        assert_eq!(decode_with_charset("café".as_bytes(), None), "café");
    }
}
