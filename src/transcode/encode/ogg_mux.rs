//! Ogg plumbing for the Ogg-wrapped codecs: stream serials, Vorbis-comment
//! style packets, and a page writer for one logical stream (used by Opus;
//! Vorbis gets its pages from libogg inside `vorbis_rs`).
//!
//! A live Ogg stream here is a *chain*: each title change ends the current
//! logical stream (EOS page) and begins a new one (BOS page) with a fresh
//! serial, which is how Icecast clients learn about new titles in Ogg.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

use super::EncodeError;

/// A new logical-stream serial, different from `previous`.
///
/// Ogg wants serials unique within a physical stream; listeners joining
/// mid-stream and players concatenating links rely on that. Without an RNG
/// dependency we mix wall-clock nanoseconds, the process id and a global
/// counter through the SplitMix64 finaliser.
pub(super) fn new_serial(previous: Option<u32>) -> u32 {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = u64::from(COUNTER.fetch_add(1, Ordering::Relaxed));
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let mut z = nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(std::process::id()) << 40);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let serial = (z >> 32) as u32 ^ z as u32;
        if Some(serial) != previous {
            return serial;
        }
    }
}

/// Build a Vorbis-comment structured packet: `magic`, vendor string, then
/// `KEY=value` comments, all lengths little-endian u32 (used for OpusTags).
pub(super) fn comment_packet(magic: &[u8], vendor: &str, comments: &[(&str, String)]) -> Vec<u8> {
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let mut p = Vec::with_capacity(magic.len() + 8 + vendor.len() + 64);
    p.extend_from_slice(magic);
    p.extend_from_slice(&len32(vendor.len()));
    p.extend_from_slice(vendor.as_bytes());
    p.extend_from_slice(&len32(comments.len()));
    for (key, value) in comments {
        p.extend_from_slice(&len32(key.len() + 1 + value.len()));
        p.extend_from_slice(key.as_bytes());
        p.push(b'=');
        p.extend_from_slice(value.as_bytes());
    }
    p
}

/// How a packet relates to page boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PageEnd {
    /// Keep filling the current page.
    Continue,
    /// Close the page after this packet (header pages, latency flushes).
    Flush,
    /// Close the page and mark it end-of-stream.
    EndOfStream,
}

/// Page writer for one logical Ogg stream, buffering into memory.
///
/// A fresh `OggLink` is made per chain link: the `ogg` crate keeps per-serial
/// state in a map it never prunes, so reusing one writer across title
/// changes would grow without bound on a long-running stream.
pub(super) struct OggLink {
    writer: PacketWriter<'static, Vec<u8>>,
    serial: u32,
}

impl OggLink {
    /// Start a logical stream with `serial`; the first packet written goes on the BOS page.
    pub(super) fn new(serial: u32) -> Self {
        Self { writer: PacketWriter::new(Vec::new()), serial }
    }

    /// This link's serial.
    pub(super) fn serial(&self) -> u32 {
        self.serial
    }

    /// Queue `packet`, whose last sample ends at `granule`.
    pub(super) fn write(&mut self, packet: Vec<u8>, granule: u64, end: PageEnd) -> Result<(), EncodeError> {
        let info = match end {
            PageEnd::Continue => PacketWriteEndInfo::NormalPacket,
            PageEnd::Flush => PacketWriteEndInfo::EndPage,
            PageEnd::EndOfStream => PacketWriteEndInfo::EndStream,
        };
        self.writer
            .write_packet(packet, self.serial, info, granule)
            .map_err(|e| EncodeError::Codec(format!("Ogg page write: {e}")))
    }

    /// Move all completed pages to `out`.
    pub(super) fn drain_into(&mut self, out: &mut Vec<u8>) {
        out.append(self.writer.inner_mut());
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Ogg parsing for the Opus/Vorbis tests.

    use std::io::Cursor;

    /// One raw Ogg page header, walked by hand to see page boundaries.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Page {
        pub(crate) bos: bool,
        pub(crate) eos: bool,
        pub(crate) granule: u64,
        pub(crate) serial: u32,
        /// Packets that end on this page.
        pub(crate) packets_ended: usize,
    }

    /// Walk back-to-back pages (panics on garbage between pages).
    pub(crate) fn pages(bytes: &[u8]) -> Vec<Page> {
        let mut pos = 0;
        let mut out = Vec::new();
        while pos < bytes.len() {
            let h = &bytes[pos..];
            assert!(h.len() >= 27 && &h[..4] == b"OggS", "no page at byte {pos}");
            let nseg = usize::from(h[26]);
            let lacing = &h[27..27 + nseg];
            let body: usize = lacing.iter().map(|&l| usize::from(l)).sum();
            out.push(Page {
                bos: h[5] & 2 != 0,
                eos: h[5] & 4 != 0,
                granule: u64::from_le_bytes(h[6..14].try_into().expect("8 bytes")),
                serial: u32::from_le_bytes(h[14..18].try_into().expect("4 bytes")),
                packets_ended: lacing.iter().filter(|&&l| l < 255).count(),
            });
            pos += 27 + nseg + body;
        }
        out
    }

    /// A packet read back with the `ogg` crate (which also checks page CRCs).
    pub(crate) struct Pkt {
        pub(crate) data: Vec<u8>,
        pub(crate) serial: u32,
        pub(crate) granule: u64,
        pub(crate) first: bool,
        pub(crate) last: bool,
    }

    /// All packets of a (possibly chained) physical stream, in order.
    pub(crate) fn packets(bytes: &[u8]) -> Vec<Pkt> {
        let mut reader = ogg::PacketReader::new(Cursor::new(bytes.to_vec()));
        let mut out = Vec::new();
        while let Some(p) = reader.read_packet().expect("valid Ogg") {
            out.push(Pkt {
                serial: p.stream_serial(),
                granule: p.absgp_page(),
                first: p.first_in_stream(),
                last: p.last_in_stream(),
                data: p.data,
            });
        }
        out
    }

    /// `KEY=value` strings of a Vorbis-comment packet after its `magic`.
    pub(crate) fn comments(packet: &[u8], magic: &[u8]) -> (String, Vec<String>) {
        assert!(packet.starts_with(magic), "not a comment packet");
        let mut pos = magic.len();
        let mut take = move |n: usize| {
            let s = &packet[pos..pos + n];
            pos += n;
            s
        };
        let len = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize;
        let vendor_len = len(take(4));
        let vendor = String::from_utf8_lossy(take(vendor_len)).into_owned();
        let count = len(take(4));
        let mut list = Vec::new();
        for _ in 0..count {
            let n = len(take(4));
            list.push(String::from_utf8_lossy(take(n)).into_owned());
        }
        (vendor, list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_differ() {
        let a = new_serial(None);
        let b = new_serial(Some(a));
        assert_ne!(a, b);
    }

    #[test]
    fn comment_packet_round_trips() {
        let p = comment_packet(b"OpusTags", "Floe", &[("TITLE", "Song".into()), ("ARTIST", "Band".into())]);
        let (vendor, list) = test_util::comments(&p, b"OpusTags");
        assert_eq!(vendor, "Floe");
        assert_eq!(list, ["TITLE=Song", "ARTIST=Band"]);
    }

    #[test]
    fn link_writes_bos_and_eos() {
        let mut link = OggLink::new(7);
        let mut out = Vec::new();
        link.write(b"head".to_vec(), 0, PageEnd::Flush).expect("write");
        link.write(vec![1; 300], 960, PageEnd::Continue).expect("write");
        link.write(vec![2; 10], 1920, PageEnd::EndOfStream).expect("write");
        link.drain_into(&mut out);
        let pages = test_util::pages(&out);
        assert_eq!(pages.len(), 2);
        assert!(pages[0].bos && !pages[0].eos && pages[0].serial == 7);
        assert!(pages[1].eos && pages[1].granule == 1920 && pages[1].packets_ended == 2);
        assert_eq!(test_util::packets(&out).len(), 3);
    }
}
