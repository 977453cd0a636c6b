//! Incremental (sans-IO) decoder for HTTP/1.1 `Transfer-Encoding: chunked`
//! request bodies.
//!
//! Icecast 2.5-style source clients send their stream as a `PUT` whose body
//! may be chunked and, for a live stream, never ends. This module owns the
//! byte-level state machine that turns such a body back into the raw payload:
//! it accepts input split at arbitrary points (down to one byte per call),
//! skips chunk extensions and trailers, and enforces limits so a hostile
//! client cannot make us buffer or spin on an unbounded size line.
//!
//! The decoder never buffers payload itself; decoded bytes are appended
//! directly to the caller's [`BytesMut`].

use std::fmt;

use bytes::BytesMut;

/// Maximum length of a chunk-size line (hex size plus extensions, excluding
/// the CRLF). Real clients send a handful of bytes; anything longer is abuse.
pub const MAX_SIZE_LINE: usize = 1024;

/// Maximum size of a single chunk. Source streams send small chunks (a few
/// KiB of audio); a multi-megabyte chunk is not a real client.
pub const MAX_CHUNK_SIZE: u64 = 16 * 1024 * 1024;

/// Maximum total length of the trailer section after the last chunk.
pub const MAX_TRAILERS: usize = 16 * 1024;

/// Result of feeding input to [`ChunkedDecoder::decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// All input was consumed; the body has not ended yet.
    Continue,
    /// The terminating zero-size chunk and the (possibly empty) trailer
    /// section were seen. Any input after the terminator is left unconsumed;
    /// see [`ChunkedDecoder::trailing_bytes`].
    Done,
}

/// A malformed or abusive chunked body. Errors are sticky: once returned,
/// every further call to [`ChunkedDecoder::decode`] returns the same error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedError {
    /// The chunk-size line did not start with a hex digit, or contained a
    /// byte that is not allowed there.
    InvalidSizeLine,
    /// The chunk-size line exceeded [`MAX_SIZE_LINE`] bytes.
    SizeLineTooLong,
    /// A chunk declared a size larger than [`MAX_CHUNK_SIZE`].
    ChunkTooLarge,
    /// A line was terminated by something other than CRLF.
    BadLineEnding,
    /// Chunk data was not followed by CRLF.
    MissingDataCrlf,
    /// The trailer section exceeded [`MAX_TRAILERS`] bytes.
    TrailersTooLong,
}

impl fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            Self::InvalidSizeLine => "invalid chunk-size line",
            Self::SizeLineTooLong => "chunk-size line too long",
            Self::ChunkTooLarge => "chunk size too large",
            Self::BadLineEnding => "line not terminated by CRLF",
            Self::MissingDataCrlf => "chunk data not followed by CRLF",
            Self::TrailersTooLong => "chunked trailer section too long",
        };
        f.write_str(msg)
    }
}

impl std::error::Error for ChunkedError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of the chunk size. `digits` counts digits seen.
    Size {
        value: u64,
        digits: usize,
    },
    /// After the size digits: optional whitespace and `;ext=val` pairs up to
    /// the CR. Extensions carry nothing we use, so they are skipped.
    /// `in_ext` is set once a `;` was seen.
    SizeRest {
        value: u64,
        in_ext: bool,
    },
    /// Saw the CR ending the size line; expecting LF.
    SizeLf {
        value: u64,
    },
    /// Copying chunk payload; `remaining` bytes left in this chunk.
    Data {
        remaining: u64,
    },
    /// Chunk payload finished; expecting CR.
    DataCr,
    /// Expecting LF after the payload's CR.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a non-empty trailer line; skipping to CR.
    TrailerLine,
    /// Saw CR ending a trailer line; expecting LF. `last` is true when the
    /// line was empty, i.e. this CRLF ends the body.
    TrailerLf {
        last: bool,
    },
    Done,
    Failed(ChunkedError),
}

/// Incremental decoder for one chunked body.
///
/// Feed it the body bytes as they arrive; it appends the de-chunked payload
/// to the output buffer and reports when the body is complete.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Bytes of the current size line (for [`MAX_SIZE_LINE`]).
    line_len: usize,
    /// Bytes of trailer section seen so far (for [`MAX_TRAILERS`]).
    trailer_len: usize,
    /// Bytes of the last `decode` input that lay past the terminator.
    trailing: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// Creates a decoder positioned at the start of a chunked body.
    pub fn new() -> Self {
        Self { state: State::Size { value: 0, digits: 0 }, line_len: 0, trailer_len: 0, trailing: 0 }
    }

    /// Returns true once the terminating chunk and trailers were seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Number of bytes at the end of the most recent `decode` input that
    /// followed the end of the body and were not consumed (only non-zero
    /// when that call returned [`Progress::Done`]).
    pub fn trailing_bytes(&self) -> usize {
        self.trailing
    }

    /// Decodes `input`, appending payload bytes to `out`.
    ///
    /// Returns [`Progress::Done`] once the body has ended (input after the
    /// terminator is ignored and counted by [`Self::trailing_bytes`]), or
    /// [`Progress::Continue`] when more input is needed. On error, payload
    /// decoded before the offending byte has already been appended to `out`.
    ///
    /// # Errors
    ///
    /// Returns a [`ChunkedError`] when the framing is malformed or exceeds
    /// the limits ([`MAX_SIZE_LINE`], [`MAX_CHUNK_SIZE`], [`MAX_TRAILERS`]).
    /// The connection should then be dropped; the error is sticky.
    pub fn decode(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Progress, ChunkedError> {
        self.trailing = 0;
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Failed(e) => return Err(e),
                State::Done => break,
                State::Data { remaining } => {
                    // Fast path: copy as much payload as available at once.
                    let avail = input.len() - i;
                    let take = usize::try_from(remaining).map_or(avail, |r| r.min(avail));
                    out.extend_from_slice(&input[i..i + take]);
                    i += take;
                    let left = remaining - take as u64;
                    self.state = if left == 0 { State::DataCr } else { State::Data { remaining: left } };
                }
                _ => {
                    let b = input[i];
                    i += 1;
                    if let Err(e) = self.step(b) {
                        self.state = State::Failed(e);
                        return Err(e);
                    }
                }
            }
        }
        match self.state {
            State::Failed(e) => Err(e),
            State::Done => {
                self.trailing = input.len() - i;
                Ok(Progress::Done)
            }
            _ => Ok(Progress::Continue),
        }
    }

    /// Advances the framing state machine by one non-payload byte.
    fn step(&mut self, b: u8) -> Result<(), ChunkedError> {
        match self.state {
            State::Size { value, digits } => {
                if let Some(d) = hex_value(b) {
                    self.bump_line()?;
                    // Leading zeros are legal and keep `value` at 0; the line
                    // length limit bounds how many we accept.
                    let value = value * 16 + u64::from(d);
                    if value > MAX_CHUNK_SIZE {
                        return Err(ChunkedError::ChunkTooLarge);
                    }
                    self.state = State::Size { value, digits: digits + 1 };
                } else if digits == 0 {
                    return Err(ChunkedError::InvalidSizeLine);
                } else {
                    self.size_rest(b, value, false)?;
                }
            }
            State::SizeRest { value, in_ext } => self.size_rest(b, value, in_ext)?,
            State::SizeLf { value } => {
                if b != b'\n' {
                    return Err(ChunkedError::BadLineEnding);
                }
                self.line_len = 0;
                self.state = if value == 0 {
                    // Last chunk: a trailer section follows, ended by an
                    // empty line.
                    State::TrailerStart
                } else {
                    State::Data { remaining: value }
                };
            }
            State::DataCr => {
                if b != b'\r' {
                    return Err(ChunkedError::MissingDataCrlf);
                }
                self.state = State::DataLf;
            }
            State::DataLf => {
                if b != b'\n' {
                    return Err(ChunkedError::MissingDataCrlf);
                }
                self.state = State::Size { value: 0, digits: 0 };
            }
            State::TrailerStart => {
                self.bump_trailers()?;
                self.state = match b {
                    b'\r' => State::TrailerLf { last: true },
                    b'\n' => return Err(ChunkedError::BadLineEnding),
                    _ => State::TrailerLine,
                };
            }
            State::TrailerLine => {
                self.bump_trailers()?;
                match b {
                    b'\r' => self.state = State::TrailerLf { last: false },
                    b'\n' => return Err(ChunkedError::BadLineEnding),
                    _ => {}
                }
            }
            State::TrailerLf { last } => {
                self.bump_trailers()?;
                if b != b'\n' {
                    return Err(ChunkedError::BadLineEnding);
                }
                self.state = if last { State::Done } else { State::TrailerStart };
            }
            // Handled by the caller; listed for exhaustiveness.
            State::Data { .. } | State::Done | State::Failed(_) => {}
        }
        Ok(())
    }

    /// Handles a byte after the size digits: optional whitespace (BWS),
    /// then `;name=value` extensions, then the CR ending the line.
    fn size_rest(&mut self, b: u8, value: u64, in_ext: bool) -> Result<(), ChunkedError> {
        match b {
            b'\r' => {
                self.state = State::SizeLf { value };
                return Ok(());
            }
            // A bare LF is not accepted as a line terminator: being strict
            // about framing avoids ambiguity about where the body ends.
            b'\n' => return Err(ChunkedError::BadLineEnding),
            // Whitespace (BWS) and the extension separator.
            b'\t' | b' ' | b';' => {}
            // Other control bytes can't appear in tokens or quoted
            // extension values.
            0..=0x1f | 0x7f => return Err(ChunkedError::InvalidSizeLine),
            // Before the first `;` only whitespace may follow the digits
            // (rejects e.g. `1g` or `10 20`).
            _ if !in_ext => return Err(ChunkedError::InvalidSizeLine),
            _ => {}
        }
        self.bump_line()?;
        self.state = State::SizeRest { value, in_ext: in_ext || b == b';' };
        Ok(())
    }

    fn bump_line(&mut self) -> Result<(), ChunkedError> {
        self.line_len += 1;
        if self.line_len > MAX_SIZE_LINE {
            return Err(ChunkedError::SizeLineTooLong);
        }
        Ok(())
    }

    fn bump_trailers(&mut self) -> Result<(), ChunkedError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILERS {
            return Err(ChunkedError::TrailersTooLong);
        }
        Ok(())
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::Rng;

    fn decode_all(input: &[u8]) -> (Result<Progress, ChunkedError>, Vec<u8>) {
        let mut d = ChunkedDecoder::new();
        let mut out = BytesMut::new();
        let r = d.decode(input, &mut out);
        (r, out.to_vec())
    }

    /// Feeds `input` in pieces ending at `cuts`, stopping at the first error
    /// or at `Done`.
    fn decode_split(input: &[u8], cuts: &[usize]) -> (Result<Progress, ChunkedError>, Vec<u8>) {
        let mut d = ChunkedDecoder::new();
        let mut out = BytesMut::new();
        let mut r = Ok(Progress::Continue);
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&input.len())) {
            r = d.decode(&input[start..end], &mut out);
            start = end;
            if r != Ok(Progress::Continue) {
                break;
            }
        }
        (r, out.to_vec())
    }

    fn one_byte_at_a_time(input: &[u8]) -> (Result<Progress, ChunkedError>, Vec<u8>) {
        let cuts: Vec<usize> = (1..input.len()).collect();
        decode_split(input, &cuts)
    }

    /// Encodes `payload` into chunks of random sizes with random extras.
    fn encode(rng: &mut Rng, payload: &[u8], trailers: bool) -> Vec<u8> {
        let mut enc = Vec::new();
        let mut rest = payload;
        while !rest.is_empty() {
            let n = (1 + rng.below(300)).min(rest.len());
            let size = if rng.below(2) == 0 { format!("{n:x}") } else { format!("{n:X}") };
            enc.extend_from_slice(size.as_bytes());
            match rng.below(4) {
                0 => enc.extend_from_slice(b";foo=bar"),
                1 => enc.extend_from_slice(b" ; name=\"quoted;value\";flag"),
                _ => {}
            }
            enc.extend_from_slice(b"\r\n");
            enc.extend_from_slice(&rest[..n]);
            enc.extend_from_slice(b"\r\n");
            rest = &rest[n..];
        }
        enc.extend_from_slice(b"0\r\n");
        if trailers {
            enc.extend_from_slice(b"X-Trailer: 1\r\nExpires: never\r\n");
        }
        enc.extend_from_slice(b"\r\n");
        enc
    }

    #[test]
    fn simple_body() {
        let (r, out) = decode_all(b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n");
        assert_eq!(r, Ok(Progress::Done));
        assert_eq!(out, b"Wikipedia");
    }

    #[test]
    fn extensions_hex_case_and_trailers() {
        let body = b"1a;foo=bar\r\nabcdefghijklmnopqrstuvwxyz\r\n\
                     A ; x=\"y;z\"\r\n0123456789\r\n\
                     0;last\r\nTrailer-One: a\r\nTrailer-Two: b\r\n\r\n";
        let (r, out) = decode_all(body);
        assert_eq!(r, Ok(Progress::Done));
        assert_eq!(out, b"abcdefghijklmnopqrstuvwxyz0123456789");
        assert_eq!(one_byte_at_a_time(body), (r, out));
    }

    #[test]
    fn never_ending_stream_continues() {
        let mut d = ChunkedDecoder::new();
        let mut out = BytesMut::new();
        for _ in 0..100 {
            assert_eq!(d.decode(b"3\r\nabc\r\n", &mut out), Ok(Progress::Continue));
        }
        assert_eq!(out.len(), 300);
        assert!(!d.is_done());
    }

    #[test]
    fn bytes_after_terminator_are_not_consumed() {
        let mut d = ChunkedDecoder::new();
        let mut out = BytesMut::new();
        let r = d.decode(b"1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1", &mut out);
        assert_eq!(r, Ok(Progress::Done));
        assert_eq!(d.trailing_bytes(), 14);
        assert_eq!(&out[..], b"x");
        // Further calls stay done and don't emit anything.
        assert_eq!(d.decode(b"5\r\nhello\r\n", &mut out), Ok(Progress::Done));
        assert_eq!(d.trailing_bytes(), 10);
        assert_eq!(&out[..], b"x");
    }

    #[test]
    fn leading_zeros_and_max_size() {
        let (r, out) = decode_all(b"0001\r\nz\r\n");
        assert_eq!(r, Ok(Progress::Continue));
        assert_eq!(out, b"z");
        // Exactly the maximum is fine (we only check the header here).
        assert_eq!(decode_all(b"1000000\r\n").0, Ok(Progress::Continue));
    }

    #[test]
    fn malformed_inputs() {
        use ChunkedError::*;
        let cases: &[(&[u8], ChunkedError)] = &[
            (b"\r\n", InvalidSizeLine),
            (b";ext\r\n", InvalidSizeLine),
            (b"g\r\n", InvalidSizeLine),
            (b"-1\r\n", InvalidSizeLine),
            (b"1g\r\n", InvalidSizeLine),
            (b"10 20\r\n", InvalidSizeLine),
            (b"1;a\x00b\r\n", InvalidSizeLine),
            (b"1000001\r\n", ChunkTooLarge),
            (b"ffffffffffffffffffffffff\r\n", ChunkTooLarge),
            (b"3\nabc", BadLineEnding),
            (b"3\rabc", BadLineEnding),
            (b"3;x\nabc", BadLineEnding),
            (b"3\r\nabcX", MissingDataCrlf),
            (b"3\r\nabc\rX", MissingDataCrlf),
            (b"3\r\nabc\n", MissingDataCrlf),
            (b"3\r\nabcd\r\n", MissingDataCrlf),
            (b"0\r\n\n", BadLineEnding),
            (b"0\r\nX: y\n", BadLineEnding),
            (b"0\r\n\rX", BadLineEnding),
        ];
        for (input, err) in cases {
            assert_eq!(decode_all(input).0, Err(*err), "{:?}", String::from_utf8_lossy(input));
            assert_eq!(one_byte_at_a_time(input).0, Err(*err));
        }
    }

    #[test]
    fn size_line_limit() {
        let mut line = vec![b'0'; MAX_SIZE_LINE];
        line.extend_from_slice(b"\r\n");
        assert_eq!(decode_all(&line).0, Ok(Progress::Continue));
        let mut long = vec![b'0'; MAX_SIZE_LINE + 1];
        long.extend_from_slice(b"\r\n");
        assert_eq!(decode_all(&long).0, Err(ChunkedError::SizeLineTooLong));
        let mut ext = b"1;".to_vec();
        ext.resize(5000, b'x');
        assert_eq!(decode_all(&ext).0, Err(ChunkedError::SizeLineTooLong));
    }

    #[test]
    fn trailer_limit() {
        let mut body = b"0\r\n".to_vec();
        while body.len() < MAX_TRAILERS + 100 {
            body.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(decode_all(&body).0, Err(ChunkedError::TrailersTooLong));
    }

    #[test]
    fn errors_are_sticky() {
        let mut d = ChunkedDecoder::new();
        let mut out = BytesMut::new();
        assert!(d.decode(b"zz", &mut out).is_err());
        assert_eq!(d.decode(b"1\r\na\r\n", &mut out), Err(ChunkedError::InvalidSizeLine));
        assert!(out.is_empty());
        assert_eq!(ChunkedError::InvalidSizeLine.to_string(), "invalid chunk-size line");
    }

    #[test]
    fn random_bodies_any_split() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..200 {
            let len = rng.below(2000);
            let payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let enc = encode(&mut rng, &payload, round % 2 == 0);
            let whole = decode_all(&enc);
            assert_eq!(whole, (Ok(Progress::Done), payload.clone()));
            if round < 20 {
                assert_eq!(one_byte_at_a_time(&enc), whole);
            }
            let mut cuts: Vec<usize> = (0..rng.below(20)).map(|_| rng.below(enc.len() + 1)).collect();
            cuts.sort_unstable();
            assert_eq!(decode_split(&enc, &cuts), whole);
        }
    }

    #[test]
    fn random_garbage_never_panics_and_split_is_consistent() {
        let mut rng = Rng(12345);
        let alphabet = b"0123456789abcdefABCDEF;= \t\r\nxyz\"";
        for round in 0..3000 {
            let len = rng.below(200);
            let input: Vec<u8> = (0..len)
                .map(|_| if round % 2 == 0 { rng.next() as u8 } else { alphabet[rng.below(alphabet.len())] })
                .collect();
            let whole = decode_all(&input);
            let mut cuts: Vec<usize> = (0..rng.below(10)).map(|_| rng.below(input.len() + 1)).collect();
            cuts.sort_unstable();
            assert_eq!(decode_split(&input, &cuts), whole);
            assert_eq!(one_byte_at_a_time(&input), whole);
        }
    }
}
