//! WebM writing for one live Opus track, the container browsers without Ogg
//! (Safari) play.
//!
//! The stream is an EBML header and a Segment of unknown size (it never
//! ends) holding Info, Tracks, then Clusters. Each Cluster is written with its
//! size known, holding `BLOCKS_PER_CLUSTER` SimpleBlocks (100 ms of 20 ms
//! Opus packets, the same latency as the Ogg path's pages): a player or a
//! listener joining mid-stream starts at any Cluster. Timestamps are in
//! milliseconds, which 20 ms packets fill exactly; the encoder's lookahead
//! goes in CodecDelay, which players subtract.

/// SimpleBlocks per Cluster.
const BLOCKS_PER_CLUSTER: u32 = 5;
/// Track number of the one audio track.
const TRACK: u8 = 1;
/// Matroska's recommended Opus seek pre-roll: 80 ms, in nanoseconds.
const SEEK_PRE_ROLL_NS: u64 = 80_000_000;

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const AUDIO: u32 = 0xE1;
const CLUSTER: u32 = 0x1F43_B675;
const TIMECODE: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;

/// What the track header says about the Opus stream.
pub(super) struct OpusTrack<'a> {
    /// The OpusHead packet, carried as CodecPrivate.
    pub(super) opus_head: &'a [u8],
    /// Encoder lookahead in 48 kHz samples.
    pub(super) pre_skip: u16,
    pub(super) channels: u8,
}

/// Writes the headers once, then Clusters of SimpleBlocks, into a buffer the
/// encoder drains after each call.
pub(super) struct WebmWriter {
    out: Vec<u8>,
    /// Body of the open Cluster (its Timecode and blocks so far).
    cluster: Vec<u8>,
    cluster_ms: u64,
    blocks: u32,
}

impl WebmWriter {
    /// Start a stream: EBML header, the endless Segment, Info and Tracks.
    pub(super) fn new(track: &OpusTrack<'_>) -> Self {
        let mut out = Vec::with_capacity(256);
        let mut header = Vec::new();
        uint(&mut header, 0x4286, 1); // EBMLVersion
        uint(&mut header, 0x42F7, 1); // EBMLReadVersion
        uint(&mut header, 0x42F2, 4); // EBMLMaxIDLength
        uint(&mut header, 0x42F3, 8); // EBMLMaxSizeLength
        element(&mut header, 0x4282, b"webm"); // DocType
        uint(&mut header, 0x4287, 4); // DocTypeVersion
        uint(&mut header, 0x4285, 2); // DocTypeReadVersion
        element(&mut out, EBML, &header);

        id(&mut out, SEGMENT);
        out.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]); // unknown size

        let mut info = Vec::new();
        uint(&mut info, 0x2A_D7B1, 1_000_000); // TimestampScale: milliseconds
        element(&mut info, 0x4D80, b"Floe"); // MuxingApp
        element(&mut info, 0x5741, b"Floe"); // WritingApp
        element(&mut out, INFO, &info);

        let mut audio = Vec::new();
        element(&mut audio, 0xB5, &48_000f64.to_be_bytes()); // SamplingFrequency
        uint(&mut audio, 0x9F, u64::from(track.channels)); // Channels
        let mut entry = Vec::new();
        uint(&mut entry, 0xD7, u64::from(TRACK)); // TrackNumber
        uint(&mut entry, 0x73C5, 1); // TrackUID
        uint(&mut entry, 0x83, 2); // TrackType: audio
        element(&mut entry, 0x86, b"A_OPUS"); // CodecID
        element(&mut entry, 0x63A2, track.opus_head); // CodecPrivate
        uint(&mut entry, 0x56AA, u64::from(track.pre_skip) * 1_000_000_000 / 48_000); // CodecDelay, ns
        uint(&mut entry, 0x56BB, SEEK_PRE_ROLL_NS); // SeekPreRoll
        element(&mut entry, AUDIO, &audio);
        let mut tracks = Vec::new();
        element(&mut tracks, TRACK_ENTRY, &entry);
        element(&mut out, TRACKS, &tracks);

        WebmWriter { out, cluster: Vec::new(), cluster_ms: 0, blocks: 0 }
    }

    /// Add one packet starting `timestamp_ms` into the stream.
    pub(super) fn block(&mut self, packet: &[u8], timestamp_ms: u64) {
        if self.blocks == 0 {
            self.cluster_ms = timestamp_ms;
            uint(&mut self.cluster, TIMECODE, timestamp_ms);
        }
        // Clusters hold 100 ms, so the 16-bit relative timestamp never overflows.
        let relative = i16::try_from(timestamp_ms - self.cluster_ms).unwrap_or(i16::MAX);
        id(&mut self.cluster, SIMPLE_BLOCK);
        size(&mut self.cluster, 4 + packet.len() as u64);
        self.cluster.push(0x80 | TRACK); // track number as a 1-byte vint
        self.cluster.extend_from_slice(&relative.to_be_bytes());
        self.cluster.push(0x80); // keyframe: every Opus packet decodes on its own
        self.cluster.extend_from_slice(packet);
        self.blocks += 1;
        if self.blocks >= BLOCKS_PER_CLUSTER {
            self.flush();
        }
    }

    /// Close the open Cluster, if it holds anything.
    pub(super) fn flush(&mut self) {
        if self.blocks > 0 {
            element(&mut self.out, CLUSTER, &self.cluster);
            self.cluster.clear();
            self.blocks = 0;
        }
    }

    /// Move everything complete to `out`.
    pub(super) fn drain_into(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.out);
    }
}

/// An element ID, written with its length marker as IDs are quoted.
fn id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = (id.leading_zeros() / 8) as usize;
    out.extend_from_slice(&bytes[skip.min(3)..]);
}

/// An element size as the shortest EBML variable-length integer.
fn size(out: &mut Vec<u8>, n: u64) {
    // A length-k vint holds 7k value bits; all ones is reserved for "unknown".
    let len = (1..=8usize).find(|&k| n < (1u64 << (7 * k)) - 1).unwrap_or(8);
    let marked = n | 1u64 << (7 * len);
    out.extend_from_slice(&marked.to_be_bytes()[8 - len..]);
}

fn element(out: &mut Vec<u8>, element_id: u32, body: &[u8]) {
    id(out, element_id);
    size(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// An unsigned-integer element in as few bytes as hold the value.
fn uint(out: &mut Vec<u8>, element_id: u32, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = ((value.leading_zeros() / 8) as usize).min(7);
    element(out, element_id, &bytes[skip..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Format, Unit};

    #[test]
    fn vints_are_shortest() {
        let enc = |n| {
            let mut v = Vec::new();
            size(&mut v, n);
            v
        };
        assert_eq!(enc(0), [0x80]);
        assert_eq!(enc(126), [0xFE]);
        assert_eq!(enc(127), [0x40, 0x7F], "0xFF alone would mean unknown");
        assert_eq!(enc(300), [0x41, 0x2C]);
        let mut v = Vec::new();
        id(&mut v, CLUSTER);
        id(&mut v, SIMPLE_BLOCK);
        assert_eq!(v, [0x1F, 0x43, 0xB6, 0x75, 0xA3]);
    }

    /// The project's own WebM framer (what a mount runs on this output)
    /// finds the headers, the audio parameters and a sync point per Cluster.
    #[test]
    fn the_webm_framer_reads_it_back() {
        let head = [b"OpusHead".as_slice(), &[1, 2, 0x38, 0x01, 0x80, 0xBB, 0, 0, 0, 0, 0]].concat();
        let mut w = WebmWriter::new(&OpusTrack { opus_head: &head, pre_skip: 312, channels: 2 });
        for i in 0..12u64 {
            w.block(&[0xFC, i as u8, 1, 2, 3], i * 20);
        }
        w.flush();
        let mut bytes = Vec::new();
        w.drain_into(&mut bytes);

        let mut framer = Format::WebM.framer();
        let mut units = Vec::new();
        framer.push(&bytes, &mut units);
        let headers = units.iter().filter(|u| matches!(u, Unit::Headers { .. })).count();
        let syncs = units.iter().filter(|u| matches!(u, Unit::Data { sync: true, .. })).count();
        assert_eq!(headers, 1);
        assert_eq!(syncs, 3, "12 blocks make 3 clusters");
        let info = framer.audio_info().expect("audio info from Tracks");
        assert_eq!((info.sample_rate, info.channels), (48_000, 2));
    }
}
