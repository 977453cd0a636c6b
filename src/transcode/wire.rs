//! The pipe protocol between the server and a codec process (sans-IO).
//!
//! Every message is one frame: a 4-byte little-endian length (of what
//! follows), a tag byte and the payload. Audio travels as raw bytes behind a
//! small fixed header; the rare structured messages (the job, titles, errors)
//! as JSON. Frames are capped at [`MAX_FRAME`] in both directions, so a codec
//! process gone wrong cannot make the server hold more than that per message.

use std::io::{self, Read};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::decode::Input;
use crate::config::{HlsVariant, TranscodeConfig};
use crate::mount::Metadata;

/// Largest frame accepted, tag and payload included.
pub const MAX_FRAME: usize = 1 << 20;

/// What a codec process is asked to do: the first message it reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The source mount, for logs.
    pub mount: String,
    pub input: Input,
    pub renditions: Vec<RenditionJob>,
    /// The CMAF ladder (HLS and DASH variants).
    pub variants: Vec<VariantJob>,
    /// Encode the ladder from the start (or only once a `Want` says so).
    pub ladder_wanted: bool,
    /// Address space the process may use, in bytes (`RLIMIT_AS`).
    pub memory_limit: u64,
    /// The server's process id: the codec process exits if its parent is another.
    pub server_pid: u32,
    /// The title already playing (the first Ogg stream's comments carry it).
    pub title: Title,
}

/// One rendition to encode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenditionJob {
    pub config: TranscodeConfig,
    /// Encode from the start (false: an on-demand rendition without listeners).
    pub wanted: bool,
}

/// One variant of the CMAF ladder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantJob {
    pub variant: HlsVariant,
    /// The rendition (index into `renditions`) whose encoder it shares, if any.
    pub rendition: Option<u8>,
}

/// What a `Want` message switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One rendition (on-demand ones encode only for listeners).
    Rendition(u8),
    /// The whole CMAF ladder (it encodes while HLS or DASH is asked for).
    Ladder,
}

/// A title change, as the fields of [`Metadata`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Title {
    pub song: String,
    pub artist: Option<String>,
    pub title: Option<String>,
    pub url: Option<String>,
}

impl Title {
    pub fn of(meta: &Metadata) -> Title {
        Title { song: meta.song.clone(), artist: meta.artist.clone(), title: meta.title.clone(), url: meta.url.clone() }
    }

    pub fn to_metadata(&self) -> Metadata {
        Metadata::from_fields(&self.song, self.artist.as_deref(), self.title.as_deref(), self.url.as_deref())
    }
}

/// Server → codec process.
#[derive(Debug, Clone)]
pub enum ToCodec {
    Job(Box<Job>),
    /// Source bytes, with when they arrived (µs since the session started).
    Data {
        arrived_us: u64,
        bytes: Bytes,
    },
    /// The source's title changed here, in the stream.
    Title(Title),
    /// Start or stop encoding a rendition or the ladder.
    Want {
        target: Target,
        wanted: bool,
    },
}

/// Codec process → server.
#[derive(Debug, Clone, PartialEq)]
pub enum FromCodec {
    /// A rendition's encoder started: its output rate and channels.
    Started { rendition: u8, sample_rate: u32, channels: u8 },
    /// Encoded bytes of a rendition; `arrived_us` is the arrival time of the
    /// newest source data decoded into them, `busy_ns` the time spent on this
    /// rendition since its previous output.
    Output { rendition: u8, arrived_us: u64, busy_ns: u64, bytes: Bytes },
    /// An on-demand rendition stopped encoding (its stream ended).
    Idle { rendition: u8 },
    /// A rendition failed and stopped; the others go on.
    Failed { rendition: u8, error: String },
    /// A variant's encoder started: its channels and (Opus) pre-skip.
    VariantStarted { variant: u8, channels: u8, pre_skip: u16 },
    /// Coded frames of a variant, in order (see `Output` for `arrived_us`).
    Frames { variant: u8, arrived_us: u64, frames: Vec<Bytes> },
    /// The decoder reached a title change.
    Title(Title),
    /// Still working: decode time so far (ns), and corrupt packets so far.
    Progress { decode_ns: u64, corrupt_packets: u64 },
    /// Decoding ended: the input ended (`None`) or failed.
    Done { error: Option<String> },
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("malformed {0} frame")]
    Malformed(&'static str),
    #[error("unknown frame tag {0}")]
    UnknownTag(u8),
    #[error("reading the pipe failed: {0}")]
    Io(#[from] io::Error),
}

mod tag {
    pub const JOB: u8 = 1;
    pub const DATA: u8 = 2;
    pub const TITLE: u8 = 3;
    pub const WANT: u8 = 4;
    pub const STARTED: u8 = 10;
    pub const OUTPUT: u8 = 11;
    pub const IDLE: u8 = 12;
    pub const FAILED: u8 = 13;
    pub const TITLE_REACHED: u8 = 14;
    pub const PROGRESS: u8 = 15;
    pub const DONE: u8 = 16;
    pub const VARIANT_STARTED: u8 = 17;
    pub const FRAMES: u8 = 18;
}

/// Append one frame: length, tag, payload.
fn frame(out: &mut Vec<u8>, tag: u8, parts: &[&[u8]]) {
    let len = 1 + parts.iter().map(|p| p.len()).sum::<usize>();
    out.reserve(4 + len);
    out.put_u32_le(len as u32);
    out.push(tag);
    for part in parts {
        out.extend_from_slice(part);
    }
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain data structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn from_json<'a, T: Deserialize<'a>>(payload: &'a [u8], what: &'static str) -> Result<T, WireError> {
    serde_json::from_slice(payload).map_err(|_| WireError::Malformed(what))
}

impl ToCodec {
    /// Append this message as one frame (audio larger than a frame is split).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ToCodec::Job(job) => frame(out, tag::JOB, &[&json(job)]),
            ToCodec::Data { arrived_us, bytes } => {
                for piece in bytes.chunks(MAX_FRAME - 16) {
                    frame(out, tag::DATA, &[&arrived_us.to_le_bytes(), piece]);
                }
            }
            ToCodec::Title(title) => frame(out, tag::TITLE, &[&json(title)]),
            ToCodec::Want { target, wanted } => {
                let target = match target {
                    Target::Rendition(index) => [0, *index],
                    Target::Ladder => [1, 0],
                };
                frame(out, tag::WANT, &[&target, &[u8::from(*wanted)]]);
            }
        }
    }

    pub fn decode(tag: u8, mut payload: Bytes) -> Result<ToCodec, WireError> {
        Ok(match tag {
            tag::JOB => ToCodec::Job(Box::new(from_json(&payload, "job")?)),
            tag::DATA => {
                let arrived_us = take_u64(&mut payload, "data")?;
                ToCodec::Data { arrived_us, bytes: payload }
            }
            tag::TITLE => ToCodec::Title(from_json(&payload, "title")?),
            tag::WANT => match payload.as_ref() {
                [0, index, wanted] => ToCodec::Want { target: Target::Rendition(*index), wanted: *wanted != 0 },
                [1, _, wanted] => ToCodec::Want { target: Target::Ladder, wanted: *wanted != 0 },
                _ => return Err(WireError::Malformed("want")),
            },
            other => return Err(WireError::UnknownTag(other)),
        })
    }
}

impl FromCodec {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            FromCodec::Started { rendition, sample_rate, channels } => {
                frame(out, tag::STARTED, &[&[*rendition, *channels], &sample_rate.to_le_bytes()]);
            }
            FromCodec::Output { rendition, arrived_us, busy_ns, bytes } => {
                for piece in bytes.chunks(MAX_FRAME - 32) {
                    let head = [&[*rendition][..], &arrived_us.to_le_bytes(), &busy_ns.to_le_bytes()].concat();
                    frame(out, tag::OUTPUT, &[&head, piece]);
                }
            }
            FromCodec::Idle { rendition } => frame(out, tag::IDLE, &[&[*rendition]]),
            FromCodec::VariantStarted { variant, channels, pre_skip } => {
                frame(out, tag::VARIANT_STARTED, &[&[*variant, *channels], &pre_skip.to_be_bytes()]);
            }
            FromCodec::Frames { variant, arrived_us, frames } => {
                // Frames are small (tens of ms of audio each): one message
                // per batch, split only if a batch would pass the limit.
                let mut batch: Vec<u8> = Vec::new();
                let flush = |batch: &mut Vec<u8>, out: &mut Vec<u8>| {
                    if !batch.is_empty() {
                        frame(out, tag::FRAMES, &[&[*variant], &arrived_us.to_le_bytes(), batch]);
                        batch.clear();
                    }
                };
                for f in frames {
                    if batch.len() + f.len() + 4 > MAX_FRAME - 32 {
                        flush(&mut batch, out);
                    }
                    batch.extend_from_slice(&(f.len() as u32).to_le_bytes());
                    batch.extend_from_slice(f);
                }
                flush(&mut batch, out);
            }
            FromCodec::Failed { rendition, error } => frame(out, tag::FAILED, &[&[*rendition], error.as_bytes()]),
            FromCodec::Title(title) => frame(out, tag::TITLE_REACHED, &[&json(title)]),
            FromCodec::Progress { decode_ns, corrupt_packets } => {
                frame(out, tag::PROGRESS, &[&decode_ns.to_le_bytes(), &corrupt_packets.to_le_bytes()]);
            }
            FromCodec::Done { error } => frame(out, tag::DONE, &[error.as_deref().unwrap_or("").as_bytes()]),
        }
    }

    pub fn decode(tag: u8, mut payload: Bytes) -> Result<FromCodec, WireError> {
        let text = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
        Ok(match tag {
            tag::STARTED => {
                let [rendition, channels, a, b, c, d] = payload.as_ref()[..] else {
                    return Err(WireError::Malformed("started"));
                };
                FromCodec::Started { rendition, channels, sample_rate: u32::from_le_bytes([a, b, c, d]) }
            }
            tag::OUTPUT => {
                let rendition = take_u8(&mut payload, "output")?;
                let arrived_us = take_u64(&mut payload, "output")?;
                let busy_ns = take_u64(&mut payload, "output")?;
                FromCodec::Output { rendition, arrived_us, busy_ns, bytes: payload }
            }
            tag::IDLE => FromCodec::Idle { rendition: take_u8(&mut payload, "idle")? },
            tag::VARIANT_STARTED => match payload.as_ref() {
                [variant, channels, a, b] => FromCodec::VariantStarted {
                    variant: *variant,
                    channels: *channels,
                    pre_skip: u16::from_be_bytes([*a, *b]),
                },
                _ => return Err(WireError::Malformed("variant started")),
            },
            tag::FRAMES => {
                let variant = take_u8(&mut payload, "frames")?;
                let arrived_us = take_u64(&mut payload, "frames")?;
                let mut frames = Vec::new();
                while !payload.is_empty() {
                    if payload.len() < 4 {
                        return Err(WireError::Malformed("frames"));
                    }
                    let len = payload.get_u32_le() as usize;
                    if payload.len() < len {
                        return Err(WireError::Malformed("frames"));
                    }
                    frames.push(payload.split_to(len));
                }
                FromCodec::Frames { variant, arrived_us, frames }
            }
            tag::FAILED => FromCodec::Failed { rendition: take_u8(&mut payload, "failed")?, error: text(&payload) },
            tag::TITLE_REACHED => FromCodec::Title(from_json(&payload, "title")?),
            tag::PROGRESS => FromCodec::Progress {
                decode_ns: take_u64(&mut payload, "progress")?,
                corrupt_packets: take_u64(&mut payload, "progress")?,
            },
            tag::DONE => FromCodec::Done { error: (!payload.is_empty()).then(|| text(&payload)) },
            other => return Err(WireError::UnknownTag(other)),
        })
    }
}

fn take_u8(payload: &mut Bytes, what: &'static str) -> Result<u8, WireError> {
    if payload.is_empty() {
        return Err(WireError::Malformed(what));
    }
    Ok(payload.get_u8())
}

fn take_u64(payload: &mut Bytes, what: &'static str) -> Result<u64, WireError> {
    if payload.len() < 8 {
        return Err(WireError::Malformed(what));
    }
    Ok(payload.get_u64_le())
}

/// Split the next complete frame off `buf`: `Ok(None)` until it is all there.
pub fn split_frame(buf: &mut BytesMut) -> Result<Option<(u8, Bytes)>, WireError> {
    let Some(head) = buf.get(..4) else { return Ok(None) };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    let mut body = buf.split_to(len).freeze();
    let tag = body.get_u8();
    Ok(Some((tag, body)))
}

/// Read one frame from a blocking reader; `Ok(None)` at a clean end of input.
pub fn read_frame(reader: &mut impl Read) -> Result<Option<(u8, Bytes)>, WireError> {
    let mut head = [0u8; 4];
    match reader.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(head) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let mut body = Bytes::from(body);
    let tag = body.get_u8();
    Ok(Some((tag, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip_to(msg: ToCodec) -> Vec<String> {
        let mut wire = Vec::new();
        msg.encode(&mut wire);
        let mut buf = BytesMut::from(&wire[..]);
        let mut out = Vec::new();
        while let Some((tag, payload)) = split_frame(&mut buf).expect("valid frames") {
            out.push(format!("{:?}", ToCodec::decode(tag, payload).expect("decodes")));
        }
        assert!(buf.is_empty());
        out
    }

    fn round_trip_from(msg: &FromCodec) -> FromCodec {
        let mut wire = Vec::new();
        msg.encode(&mut wire);
        let (tag, payload) = read_frame(&mut &wire[..]).expect("reads").expect("a frame");
        FromCodec::decode(tag, payload).expect("decodes")
    }

    #[test]
    fn messages_survive_the_pipe() {
        let title = Title { song: "A - B".into(), artist: Some("A".into()), title: Some("B".into()), url: None };
        for msg in [
            ToCodec::Data { arrived_us: 42, bytes: Bytes::from_static(b"\xff\xfb audio") },
            ToCodec::Want { target: Target::Rendition(3), wanted: true },
            ToCodec::Want { target: Target::Ladder, wanted: false },
            ToCodec::Title(title.clone()),
        ] {
            assert_eq!(round_trip_to(msg.clone()), vec![format!("{msg:?}")]);
        }
        for msg in [
            FromCodec::Started { rendition: 1, sample_rate: 48_000, channels: 2 },
            FromCodec::Output { rendition: 2, arrived_us: 7, busy_ns: 9, bytes: Bytes::from_static(b"OggS") },
            FromCodec::Idle { rendition: 0 },
            FromCodec::Failed { rendition: 4, error: "LAME refused".into() },
            FromCodec::Title(title),
            FromCodec::Progress { decode_ns: 1, corrupt_packets: 2 },
            FromCodec::VariantStarted { variant: 2, channels: 1, pre_skip: 312 },
            FromCodec::Frames {
                variant: 1,
                arrived_us: 5,
                frames: vec![Bytes::from_static(b"ab"), Bytes::new(), Bytes::from_static(b"cde")],
            },
            FromCodec::Done { error: None },
            FromCodec::Done { error: Some("unsupported".into()) },
        ] {
            assert_eq!(round_trip_from(&msg), msg);
        }
    }

    #[test]
    fn large_audio_is_split_into_frames() {
        let big = Bytes::from(vec![7u8; MAX_FRAME * 2 + 5]);
        let parts = round_trip_to(ToCodec::Data { arrived_us: 1, bytes: big.clone() });
        assert_eq!(parts.len(), 3);
        let mut wire = Vec::new();
        ToCodec::Data { arrived_us: 1, bytes: big.clone() }.encode(&mut wire);
        let mut buf = BytesMut::from(&wire[..]);
        let mut joined = Vec::new();
        while let Some((tag, payload)) = split_frame(&mut buf).expect("valid frames") {
            if let ToCodec::Data { bytes, .. } = ToCodec::decode(tag, payload).expect("decodes") {
                joined.extend_from_slice(&bytes);
            }
        }
        assert_eq!(joined, big);
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut huge = BytesMut::from(&((MAX_FRAME as u32) + 1).to_le_bytes()[..]);
        assert!(matches!(split_frame(&mut huge), Err(WireError::TooLarge(_))));
        let mut partial = BytesMut::from(&[5u8, 0, 0, 0, 2][..]);
        assert!(matches!(split_frame(&mut partial), Ok(None)));
        assert!(matches!(FromCodec::decode(99, Bytes::new()), Err(WireError::UnknownTag(99))));
        assert!(matches!(
            FromCodec::decode(tag::OUTPUT, Bytes::from_static(b"\x01\x02")),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(read_frame(&mut &[0u8, 0, 0, 0][..]), Err(WireError::TooLarge(0))));
        assert!(read_frame(&mut &[][..]).expect("clean end").is_none());
    }
}
