//! ID3v2.4 tags for titles in band: what an `emsg` box (scheme
//! `https://aomedia.org/emsg/ID3`) carries to hls.js, dash.js and Safari,
//! which turn it into a metadata cue.

/// A tag with `TIT2` (title) and, when known, `TPE1` (artist), UTF-8.
pub fn title_tag(title: &str, artist: Option<&str>) -> Vec<u8> {
    let mut frames = Vec::new();
    frame(&mut frames, b"TIT2", title);
    if let Some(artist) = artist.filter(|a| !a.is_empty()) {
        frame(&mut frames, b"TPE1", artist);
    }
    let mut tag = b"ID3\x04\x00\x00".to_vec();
    tag.extend_from_slice(&syncsafe(frames.len()));
    tag.extend_from_slice(&frames);
    tag
}

/// A text frame: id, size (syncsafe in v2.4), no flags, UTF-8 text.
fn frame(out: &mut Vec<u8>, id: &[u8; 4], text: &str) {
    // Tags stay small: a title is capped as ICY caps it.
    let text = crate::mount::truncate_on_char_boundary(text, 4000);
    out.extend_from_slice(id);
    out.extend_from_slice(&syncsafe(text.len() + 1));
    out.extend_from_slice(&[0, 0, 0x03]);
    out.extend_from_slice(text.as_bytes());
}

/// A 28-bit size as four 7-bit bytes.
fn syncsafe(n: usize) -> [u8; 4] {
    let n = n as u32;
    [(n >> 21 & 0x7f) as u8, (n >> 14 & 0x7f) as u8, (n >> 7 & 0x7f) as u8, (n & 0x7f) as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_well_formed() {
        let tag = title_tag("Song", Some("Artist"));
        assert_eq!(&tag[..6], b"ID3\x04\x00\x00");
        let size = tag[6..10].iter().fold(0usize, |n, &b| n << 7 | usize::from(b));
        assert_eq!(size, tag.len() - 10);
        assert_eq!(&tag[10..14], b"TIT2");
        assert_eq!(&tag[14..18], &[0, 0, 0, 5]);
        assert_eq!(&tag[18..21], &[0, 0, 3]);
        assert_eq!(&tag[21..25], b"Song");
        assert_eq!(&tag[25..29], b"TPE1");
        assert!(tag.ends_with(b"Artist"));
        assert!(!title_tag("Only", None).windows(4).any(|w| w == b"TPE1"));
        assert_eq!(syncsafe(200), [0, 0, 1, 0x48]);
    }
}
