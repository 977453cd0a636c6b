//! Removal of inline ICY (SHOUTcast/Icecast) metadata from a source stream.
//!
//! A relay that pulls from another server with `Icy-MetaData: 1` receives a
//! body where, after every `metaint` audio bytes, one length byte `L` follows,
//! then `L * 16` bytes of metadata text such as
//! `StreamTitle='Artist - Title';StreamUrl='http://x';`, padded with NULs.
//! `L == 0` (the common case) means "no change".
//!
//! This module owns the sans-IO state machine that splits such a body into
//! pure audio plus metadata updates (each tagged with its position in the
//! audio), and the parser for the metadata text itself.

use bytes::BytesMut;

/// One metadata update found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcyMeta {
    /// `StreamTitle` value, if present (may be empty: a cleared title).
    pub title: Option<String>,
    /// `StreamUrl` value, if present.
    pub url: Option<String>,
    /// Number of audio bytes emitted by the stripper (over its whole
    /// lifetime) before this update; the title applies from this offset on.
    pub audio_offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Passing audio through; `remaining` bytes until the next length byte.
    Audio { remaining: usize },
    /// Expecting the metadata length byte.
    Length,
    /// Collecting a metadata block; `remaining` bytes still to come.
    Meta { remaining: usize },
}

/// Incremental splitter of an ICY-interleaved stream into audio and
/// metadata. Input may be split at any byte position.
#[derive(Debug, Clone)]
pub struct IcyStripper {
    metaint: usize,
    state: State,
    /// Partial metadata block (at most 255 * 16 bytes).
    meta: Vec<u8>,
    /// Total audio bytes emitted so far.
    emitted: u64,
}

impl IcyStripper {
    /// Creates a stripper for a stream with the given `icy-metaint`.
    ///
    /// A `metaint` of 0 is not a valid ICY interval; it is treated as "no
    /// inline metadata" and the input is passed through unchanged.
    pub fn new(metaint: usize) -> Self {
        Self { metaint, state: State::Audio { remaining: metaint }, meta: Vec::new(), emitted: 0 }
    }

    /// The metadata interval this stripper was created with.
    pub fn metaint(&self) -> usize {
        self.metaint
    }

    /// Total number of audio bytes emitted so far.
    pub fn audio_emitted(&self) -> u64 {
        self.emitted
    }

    /// Consumes `input`, appending the audio bytes to `audio` and returning
    /// the metadata updates completed within it, in stream order.
    ///
    /// Blocks with a zero length byte, and blocks that contain neither
    /// `StreamTitle` nor `StreamUrl`, produce no update. Repeated identical
    /// titles are reported each time they appear; deduplicate if needed.
    pub fn push(&mut self, input: &[u8], audio: &mut BytesMut) -> Vec<IcyMeta> {
        let mut updates = Vec::new();
        if self.metaint == 0 {
            audio.extend_from_slice(input);
            self.emitted += input.len() as u64;
            return updates;
        }
        let mut rest = input;
        while !rest.is_empty() {
            match self.state {
                State::Audio { remaining } => {
                    let take = remaining.min(rest.len());
                    audio.extend_from_slice(&rest[..take]);
                    self.emitted += take as u64;
                    rest = &rest[take..];
                    self.state =
                        if take == remaining { State::Length } else { State::Audio { remaining: remaining - take } };
                }
                State::Length => {
                    let len = usize::from(rest[0]) * 16;
                    rest = &rest[1..];
                    self.state = if len == 0 {
                        State::Audio { remaining: self.metaint }
                    } else {
                        self.meta.clear();
                        State::Meta { remaining: len }
                    };
                }
                State::Meta { remaining } => {
                    let take = remaining.min(rest.len());
                    self.meta.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if take == remaining {
                        let (title, url) = parse_icy_metadata(&self.meta);
                        if title.is_some() || url.is_some() {
                            updates.push(IcyMeta { title, url, audio_offset: self.emitted });
                        }
                        self.meta.clear();
                        self.state = State::Audio { remaining: self.metaint };
                    } else {
                        self.state = State::Meta { remaining: remaining - take };
                    }
                }
            }
        }
        updates
    }
}

/// Parses an ICY metadata block into `(StreamTitle, StreamUrl)`.
///
/// The block is a sequence of `Key='value';` pairs, NUL-padded. Values are
/// not escaped, so a title may itself contain `'` or `;` (or even `';`):
/// a value is taken to end at the first `';` that is followed by the end of
/// the block or by another `Key='`. Keys match case-insensitively. Values
/// that are valid UTF-8 are used as is; otherwise (many SHOUTcast-era
/// sources send Latin-1) the bytes are decoded as Latin-1.
pub fn parse_icy_metadata(text: &[u8]) -> (Option<String>, Option<String>) {
    let text = trim_end_nuls(text);
    let mut title = None;
    let mut url = None;
    let mut pos = 0;
    loop {
        pos += skip_filler(&text[pos..]);
        if pos >= text.len() {
            break;
        }
        let Some((key, value_start)) = parse_key(&text[pos..]) else {
            break;
        };
        let value_start = pos + value_start;
        let (value, next) = split_value(&text[value_start..]);
        if key.eq_ignore_ascii_case(b"StreamTitle") {
            title.get_or_insert_with(|| decode_text(value));
        } else if key.eq_ignore_ascii_case(b"StreamUrl") {
            url.get_or_insert_with(|| decode_text(value));
        }
        match next {
            Some(n) => pos = value_start + n,
            None => break,
        }
    }
    (title, url)
}

fn trim_end_nuls(mut text: &[u8]) -> &[u8] {
    while let [rest @ .., 0] = text {
        text = rest;
    }
    text
}

/// Length of NULs/whitespace/stray `;` before a key.
fn skip_filler(text: &[u8]) -> usize {
    text.iter().take_while(|&&b| b == 0 || b == b';' || b.is_ascii_whitespace()).count()
}

/// If `text` starts with `Key='`, returns the key and the offset of the
/// value's first byte.
fn parse_key(text: &[u8]) -> Option<(&[u8], usize)> {
    let key_len = text.iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'-').count();
    if key_len == 0 || text.get(key_len..key_len + 2) != Some(b"='".as_slice()) {
        return None;
    }
    Some((&text[..key_len], key_len + 2))
}

/// Splits a value (starting just after the opening quote) from what follows.
/// Returns the value and the offset just past its closing `';`, if any.
fn split_value(text: &[u8]) -> (&[u8], Option<usize>) {
    let ends = || text.windows(2).enumerate().filter(|(_, w)| *w == b"';").map(|(i, _)| i);
    // Preferred: a `';` followed by end-of-block or another key.
    for i in ends() {
        let after = &text[i + 2..];
        let after = &after[skip_filler(after)..];
        if after.is_empty() || parse_key(after).is_some() {
            return (&text[..i], Some(i + 2));
        }
    }
    // Malformed: fall back to the first `';`, then to a closing `'` at the
    // very end (a block missing its final `;`), then to everything.
    if let Some(i) = ends().next() {
        return (&text[..i], Some(i + 2));
    }
    match text {
        [value @ .., b'\''] => (value, None),
        _ => (text, None),
    }
}

fn decode_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        // Not UTF-8: Latin-1 maps each byte to the code point of equal value,
        // so this never fails. (A Latin-1 title ending in e.g. 0xE9 "é" looks
        // like truncated UTF-8, so no "truncated sequence" special case.)
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::Rng;

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    /// Builds a metadata block: length byte plus NUL-padded text.
    fn block(text: &[u8]) -> Vec<u8> {
        let len = text.len().div_ceil(16);
        let mut b = vec![len as u8];
        b.extend_from_slice(text);
        b.resize(1 + len * 16, 0);
        b
    }

    /// A stream with metaint 16: three audio intervals, with a title after
    /// the first, "no change" after the second and a URL+title after the
    /// third. Returns (stream, audio, expected updates).
    fn sample() -> (Vec<u8>, Vec<u8>, Vec<IcyMeta>) {
        let audio: Vec<u8> = (0u8..48).collect();
        let mut stream = Vec::new();
        stream.extend_from_slice(&audio[..16]);
        stream.extend(block(b"StreamTitle='Guns N' Roses - Rock; Roll';"));
        stream.extend_from_slice(&audio[16..32]);
        stream.push(0);
        stream.extend_from_slice(&audio[32..48]);
        stream.extend(block(b"StreamTitle='B';StreamUrl='http://x/?a=1;b=2';"));
        stream.extend_from_slice(b"\x00\x00"); // tail: partial next interval
        let mut audio = audio;
        audio.extend_from_slice(b"\x00\x00");
        let metas = vec![
            IcyMeta { title: s("Guns N' Roses - Rock; Roll"), url: None, audio_offset: 16 },
            IcyMeta { title: s("B"), url: s("http://x/?a=1;b=2"), audio_offset: 48 },
        ];
        (stream, audio, metas)
    }

    fn run(metaint: usize, stream: &[u8], cuts: &[usize]) -> (Vec<u8>, Vec<IcyMeta>) {
        let mut st = IcyStripper::new(metaint);
        let mut audio = BytesMut::new();
        let mut metas = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&stream.len())) {
            metas.extend(st.push(&stream[start..end], &mut audio));
            start = end;
        }
        assert_eq!(st.audio_emitted(), audio.len() as u64);
        (audio.to_vec(), metas)
    }

    #[test]
    fn exact_framing() {
        let (stream, audio, metas) = sample();
        assert_eq!(run(16, &stream, &[]), (audio, metas));
    }

    #[test]
    fn every_single_split_point() {
        let (stream, audio, metas) = sample();
        let expected = (audio, metas);
        for i in 0..=stream.len() {
            assert_eq!(run(16, &stream, &[i]), expected, "split at {i}");
            for j in i..=stream.len() {
                assert_eq!(run(16, &stream, &[i, j]), expected, "split at {i},{j}");
            }
        }
        let all: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(run(16, &stream, &all), expected);
    }

    #[test]
    fn random_streams_random_splits() {
        let mut rng = Rng(0xDEAD_BEEF);
        for _ in 0..300 {
            let metaint = 1 + rng.below(64);
            let mut stream = Vec::new();
            let mut audio = Vec::new();
            let mut metas = Vec::new();
            for n in 0..rng.below(20) {
                let chunk: Vec<u8> = (0..metaint).map(|_| rng.next() as u8).collect();
                stream.extend_from_slice(&chunk);
                audio.extend_from_slice(&chunk);
                if rng.below(3) == 0 {
                    let title = format!("Song {n} ';x");
                    stream.extend(block(format!("StreamTitle='{title}';").as_bytes()));
                    metas.push(IcyMeta { title: Some(title), url: None, audio_offset: audio.len() as u64 });
                } else {
                    stream.push(0);
                }
            }
            let mut cuts: Vec<usize> = (0..rng.below(12)).map(|_| rng.below(stream.len() + 1)).collect();
            cuts.sort_unstable();
            assert_eq!(run(metaint, &stream, &cuts), (audio, metas));
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(7);
        for _ in 0..2000 {
            let input: Vec<u8> = (0..rng.below(3000)).map(|_| rng.next() as u8).collect();
            let metaint = rng.below(40);
            let whole = run(metaint, &input, &[]);
            let mut cuts: Vec<usize> = (0..rng.below(8)).map(|_| rng.below(input.len() + 1)).collect();
            cuts.sort_unstable();
            assert_eq!(run(metaint, &input, &cuts), whole);
            let _ = parse_icy_metadata(&input);
        }
    }

    #[test]
    fn zero_metaint_passes_through() {
        let mut st = IcyStripper::new(0);
        let mut audio = BytesMut::new();
        assert!(st.push(b"\x01StreamTitle='x';", &mut audio).is_empty());
        assert_eq!(&audio[..], b"\x01StreamTitle='x';");
    }

    #[test]
    fn block_without_known_keys_is_not_an_update() {
        let mut stream = vec![7u8; 4];
        stream.extend(block(b"Foo='bar';"));
        stream.extend_from_slice(&[8u8; 4]);
        stream.extend(block(b"")); // L = 0
        stream.extend_from_slice(&[9u8; 4]);
        stream.extend(block(b"\0\0\0garbage"));
        let (audio, metas) = run(4, &stream, &[]);
        assert_eq!(audio, [7, 7, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9]);
        assert!(metas.is_empty());
    }

    #[test]
    fn parse_basic() {
        assert_eq!(
            parse_icy_metadata(b"StreamTitle='Artist - Title';StreamUrl='http://x';\0\0\0"),
            (s("Artist - Title"), s("http://x"))
        );
        assert_eq!(parse_icy_metadata(b"StreamTitle='';"), (s(""), None));
        assert_eq!(parse_icy_metadata(b"StreamUrl='u';"), (None, s("u")));
        assert_eq!(parse_icy_metadata(b""), (None, None));
        assert_eq!(parse_icy_metadata(b"\0\0\0\0"), (None, None));
        assert_eq!(parse_icy_metadata(b"garbage"), (None, None));
    }

    #[test]
    fn parse_quotes_and_semicolons() {
        assert_eq!(parse_icy_metadata(b"StreamTitle='Rock 'n' Roll';"), (s("Rock 'n' Roll"), None));
        assert_eq!(parse_icy_metadata(b"StreamTitle='a;b ; c';StreamUrl='';"), (s("a;b ; c"), s("")));
        // A `';` inside the title that is not followed by a key.
        assert_eq!(parse_icy_metadata(b"StreamTitle='It's';over';StreamUrl='u';\0"), (s("It's';over"), s("u")));
        assert_eq!(parse_icy_metadata(b"StreamTitle='x'';"), (s("x'"), None));
        // Unknown keys before the title, lowercase keys, whitespace.
        assert_eq!(parse_icy_metadata(b"Other='1'; streamtitle='T'; streamurl='U'"), (s("T"), s("U")));
        // Missing final `;` / missing closing quote.
        assert_eq!(parse_icy_metadata(b"StreamTitle='T'\0\0"), (s("T"), None));
        assert_eq!(parse_icy_metadata(b"StreamTitle='T"), (s("T"), None));
        // Only the first StreamTitle counts.
        assert_eq!(parse_icy_metadata(b"StreamTitle='A';StreamTitle='B';"), (s("A"), None));
    }

    #[test]
    fn parse_encodings() {
        assert_eq!(parse_icy_metadata("StreamTitle='Björk – Jóga';".as_bytes()), (s("Björk – Jóga"), None));
        // Latin-1 bytes (invalid UTF-8), including one at the very end.
        assert_eq!(parse_icy_metadata(b"StreamTitle='Bj\xf6rk - Caf\xe9';"), (s("Björk - Café"), None));
    }
}
