//! EBML syntax: variable-length IDs and sizes, walking a master element's
//! children, and the bits of Matroska the framer reads (Cluster starts, the
//! audio track's parameters).

use super::super::AudioInfo;
use super::{CLUSTER, TIMECODE};

/// An element header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    /// Element ID, length marker included (as IDs are usually written).
    pub id: u32,
    /// Body size; `None` for the reserved "unknown" value.
    pub size: Option<u64>,
    /// Bytes taken by the ID and size.
    pub len: usize,
}

/// Outcome of reading an element header at the start of a buffer.
pub(super) enum Parse {
    NeedMore,
    Invalid,
    Element(Head),
}

/// Read an element ID (marker bits kept, at most 4 bytes) and size (at most
/// 8 bytes, all value bits set = unknown).
pub(super) fn read_head(buf: &[u8]) -> Parse {
    let Some(&first) = buf.first() else {
        return Parse::NeedMore;
    };
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 {
        return Parse::Invalid;
    }
    let Some(id_bytes) = buf.get(..id_len) else {
        return Parse::NeedMore;
    };
    let id = id_bytes.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b));
    let Some(&size_first) = buf.get(id_len) else {
        return Parse::NeedMore;
    };
    let size_len = size_first.leading_zeros() as usize + 1;
    if size_len > 8 {
        return Parse::Invalid;
    }
    let Some(size_bytes) = buf.get(id_len..id_len + size_len) else {
        return Parse::NeedMore;
    };
    let size = vint_value(size_bytes);
    let unknown = size == (1u64 << (7 * size_len)) - 1;
    Parse::Element(Head { id, size: (!unknown).then_some(size), len: id_len + size_len })
}

/// Whether `buf` starts with a Cluster header followed by a complete
/// Timecode element (`None`: not enough bytes to tell).
pub(super) fn cluster_start(buf: &[u8]) -> Option<bool> {
    let cluster = match read_head(buf) {
        Parse::NeedMore => return None,
        Parse::Invalid => return Some(false),
        Parse::Element(head) if head.id == CLUSTER => head,
        Parse::Element(_) => return Some(false),
    };
    let rest = buf.get(cluster.len..).unwrap_or(&[]);
    match read_head(rest) {
        Parse::NeedMore => None,
        Parse::Invalid => Some(false),
        Parse::Element(t) if t.id == TIMECODE && t.size.is_some_and(|s| (1..=8).contains(&s)) => {
            let end = t.len + t.size.map_or(0, |s| s as usize);
            rest.get(..end).map(|_| true)
        }
        Parse::Element(_) => Some(false),
    }
}

/// The value of a VINT (length marker removed).
fn vint_value(bytes: &[u8]) -> u64 {
    let marker_mask = 0xFFu8.checked_shr(bytes.len() as u32).unwrap_or(0);
    let first = bytes.first().map_or(0, |&b| b & marker_mask);
    bytes.iter().skip(1).fold(u64::from(first), |acc, &b| acc << 8 | u64::from(b))
}

/// The known-size child elements of a master element body.
fn children(mut body: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    std::iter::from_fn(move || {
        let Parse::Element(head) = read_head(body) else {
            return None;
        };
        let end = usize::try_from(head.size?).ok()?.checked_add(head.len)?;
        let data = body.get(head.len..end)?;
        body = body.get(end..)?;
        Some((head.id, data))
    })
}

fn uint(data: &[u8]) -> u64 {
    data.iter().take(8).fold(0, |acc, &b| acc << 8 | u64::from(b))
}

/// Sample rate and channels of the first audio track in a Tracks body.
pub(super) fn audio_info(tracks: &[u8]) -> Option<AudioInfo> {
    const TRACK_ENTRY: u32 = 0xAE;
    const TRACK_TYPE: u32 = 0x83;
    const AUDIO: u32 = 0xE1;
    const AUDIO_TRACK: u64 = 2;
    let entry = children(tracks)
        .filter(|&(id, _)| id == TRACK_ENTRY)
        .find(|(_, entry)| children(entry).any(|(id, v)| id == TRACK_TYPE && uint(v) == AUDIO_TRACK))?;
    let audio = children(entry.1).find(|&(id, _)| id == AUDIO)?.1;
    // Defaults from the Matroska spec: 8 kHz, one channel.
    let mut info = AudioInfo { sample_rate: 8000, channels: 1, bitrate: 0 };
    for (id, value) in children(audio) {
        match (id, value.len()) {
            (0xB5, 4) => info.sample_rate = f32::from_bits(uint(value) as u32) as u32,
            (0xB5, 8) => info.sample_rate = f64::from_bits(uint(value)) as u32,
            (0x9F, _) => info.channels = u8::try_from(uint(value)).unwrap_or(u8::MAX),
            _ => {}
        }
    }
    Some(info)
}
