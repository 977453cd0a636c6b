//! An Ogg page filter in front of symphonia's `OggReader`: only whole pages with a valid CRC get
//! through; junk and damaged pages are dropped (and counted).
//!
//! symphonia resyncs after a bad page in the middle of a stream, but while it sets up a stream
//! (`OggReader::try_new`, or a new chain link) a CRC error aborts the setup: at the start that
//! fails the whole stream, mid-stream it leaves the reader ignoring the new chain link. With
//! only valid pages reaching it, a damaged page is just a gap (symphonia notices the sequence
//! discontinuity and carries on). A damaged *header* page still cannot be recovered from: that
//! is inherent to Ogg codecs, which cannot decode without their setup headers.
//!
//! The filter also holds back Vorbis setup headers the decoder must not see (`vorbis_setup`):
//! the read fails with `InvalidData` instead, which ends decoding as an unsupported stream.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::lookahead::Lookahead;
use super::vorbis_setup;

const HEADER_LEN: usize = 27;
const CAPTURE: &[u8; 4] = b"OggS";

/// Checks the CRC of a complete page (the CRC field, bytes 22..26, counts as zero).
fn crc_ok(page: &[u8]) -> bool {
    crate::format::ogg_page_crc(page) == u32::from_le_bytes([page[22], page[23], page[24], page[25]])
}

/// A reader yielding only the valid Ogg pages of `inner`.
pub(super) struct PageFilter<R> {
    input: Lookahead<R>,
    /// The page being handed out, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    /// Runs of junk or damaged pages dropped so far.
    dropped: Arc<AtomicU64>,
    vorbis: VorbisHeaders,
}

impl<R: Read> PageFilter<R> {
    /// Wraps `inner`; `dropped` counts the junk runs and damaged pages removed.
    pub(super) fn new(inner: R, dropped: Arc<AtomicU64>) -> Self {
        Self {
            input: Lookahead::new(inner, 8192),
            out: Vec::new(),
            out_pos: 0,
            dropped,
            vorbis: VorbisHeaders::default(),
        }
    }

    /// Moves the next valid page into `out`; returns false at the end of the input.
    fn next_page(&mut self) -> io::Result<bool> {
        let mut junk = false;
        let found = loop {
            if !self.input.fill(HEADER_LEN)? {
                junk |= !self.input.available().is_empty();
                break false;
            }
            let avail = self.input.available();
            if !avail.starts_with(CAPTURE) || avail[4] != 0 {
                // Skip to the next capture pattern (keeping a possible partial one at the end).
                let skip = avail.windows(4).skip(1).position(|w| w == CAPTURE).map_or(avail.len() - 3, |p| p + 1);
                self.input.consume(skip);
                junk = true;
                continue;
            }
            let segments = usize::from(avail[26]);
            if !self.input.fill(HEADER_LEN + segments)? {
                junk = true;
                break false;
            }
            let lacing = &self.input.available()[HEADER_LEN..HEADER_LEN + segments];
            let len = HEADER_LEN + segments + lacing.iter().map(|&l| usize::from(l)).sum::<usize>();
            if !self.input.fill(len)? {
                junk = true;
                break false;
            }
            if !crc_ok(&self.input.available()[..len]) {
                self.input.consume(1);
                junk = true;
                continue;
            }
            self.out.clear();
            self.out.extend_from_slice(&self.input.available()[..len]);
            self.out_pos = 0;
            self.input.consume(len);
            self.vorbis.inspect(&self.out).map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
            break true;
        };
        if junk {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Ok(found)
    }
}

impl<R: Read> Read for PageFilter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out_pos == self.out.len() && !self.next_page()? {
            return Ok(0);
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// Largest Vorbis setup header looked at (real ones are a few KB).
const MAX_SETUP: usize = 1 << 20;
/// Vorbis streams whose headers are being collected at once.
const MAX_PENDING: usize = 16;

/// Collects the setup header of each Vorbis stream to check it before the
/// decoder reads it.
#[derive(Default)]
struct VorbisHeaders {
    /// (serial, header packets completed, the setup packet so far).
    pending: Vec<(u32, u32, Vec<u8>)>,
}

impl VorbisHeaders {
    /// Look at one valid page; `Err` refuses the stream.
    fn inspect(&mut self, page: &[u8]) -> Result<(), String> {
        let serial = u32::from_le_bytes([page[14], page[15], page[16], page[17]]);
        let segments = usize::from(page[26]);
        let (table, body) = page[HEADER_LEN..].split_at(segments);
        if page[5] & 0x02 != 0 && body.starts_with(b"\x01vorbis") && self.pending.len() < MAX_PENDING {
            self.pending.retain(|(s, ..)| *s != serial);
            self.pending.push((serial, 0, Vec::new()));
        }
        let Some(index) = self.pending.iter().position(|(s, ..)| *s == serial) else { return Ok(()) };
        let (_, done, setup) = &mut self.pending[index];
        let mut at = 0;
        for &lace in table {
            let segment = body.get(at..at + usize::from(lace)).unwrap_or_default();
            at += usize::from(lace);
            // Packets 0 and 1 are the identification and comment headers.
            if *done == 2 {
                setup.extend_from_slice(segment);
                if setup.len() > MAX_SETUP {
                    return Err(format!("Vorbis setup header larger than {} KiB refused", MAX_SETUP >> 10));
                }
            }
            if lace < 255 {
                if *done == 2 {
                    let verdict = vorbis_setup::check(setup);
                    self.pending.remove(index);
                    return verdict;
                }
                *done += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPUS: &[u8] = include_bytes!("testdata/sine_opus.ogg");

    fn filter(data: &[u8]) -> (Vec<u8>, u64) {
        let dropped = Arc::new(AtomicU64::new(0));
        let mut out = Vec::new();
        PageFilter::new(data, dropped.clone()).read_to_end(&mut out).expect("in-memory read");
        (out, dropped.load(Ordering::Relaxed))
    }

    #[test]
    fn passes_valid_pages_through() {
        assert_eq!(filter(OPUS), (OPUS.to_vec(), 0));
    }

    #[test]
    fn drops_junk_and_damaged_pages() {
        // Junk before the first page and between pages 2 and 3 (at byte 137), a flipped byte
        // in page 4 (bytes 463..752), and a truncated page at the end.
        let mut damaged = OPUS.to_vec();
        damaged[600] ^= 0x55;
        let data = [b"junk OggS".as_slice(), &OPUS[..137], b"more junk", &damaged[137..], b"OggS\0\0"].concat();
        let expected = [&OPUS[..463], &OPUS[752..]].concat();
        assert_eq!(filter(&data), (expected, 4));
    }
}
