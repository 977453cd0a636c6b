//! The Ogg pages the source mount cut, as the byte stream symphonia's `OggReader` reads.
//!
//! The mount's framer only passes whole pages with a valid CRC (junk and damaged pages are
//! dropped and counted there), which is what `OggReader` needs: while it sets up a stream a CRC
//! error would abort the setup, and with only valid pages a damaged one is just a gap. So pages
//! pass through as they are; the one thing looked at on the way is each Vorbis stream's setup
//! header, which the decoder must not see when it is hostile (`vorbis_setup`): the read fails
//! with `InvalidData` instead, which ends decoding as an unsupported stream.

use std::io::{self, Read};

use bytes::{Buf, Bytes};

use super::{vorbis_setup, Frames};
use crate::format::{ogg_pages, OggPage, OGG_FLAG_BOS};

/// A reader of the pages `frames` yields (a unit of stream headers holds several).
pub(super) struct Pages<F> {
    frames: F,
    /// What is left of the current unit.
    current: Bytes,
    vorbis: VorbisHeaders,
}

impl<F: Frames> Pages<F> {
    pub(super) fn new(frames: F) -> Self {
        Pages { frames, current: Bytes::new(), vorbis: VorbisHeaders::default() }
    }

    /// Moves the next unit into `current`, its pages inspected; false at the end of the input.
    fn next_unit(&mut self) -> io::Result<bool> {
        let Some(unit) = self.frames.next_frame()? else {
            return Ok(false);
        };
        let pages = ogg_pages(&unit).ok_or_else(|| invalid("the mount handed on a partial Ogg page".into()))?;
        for page in &pages {
            self.vorbis.inspect(page).map_err(invalid)?;
        }
        self.current = unit;
        Ok(true)
    }
}

impl<F: Frames> Read for Pages<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if !self.next_unit()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
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
    /// Look at one whole page; `Err` refuses the stream.
    fn inspect(&mut self, page: &OggPage<'_>) -> Result<(), String> {
        let OggPage { serial, flags, table, body } = *page;
        if flags & OGG_FLAG_BOS != 0 && body.starts_with(b"\x01vorbis") && self.pending.len() < MAX_PENDING {
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

    fn read_all(units: Vec<Bytes>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Pages::new(units.into_iter()).read_to_end(&mut out).map(|_| out)
    }

    #[test]
    fn passes_units_of_whole_pages_through() {
        // The first unit holds two pages (as a unit of stream headers does).
        let pages = ogg_pages(OPUS).expect("whole pages");
        let len = |p: &OggPage<'_>| 27 + p.table.len() + p.body.len();
        let second = len(&pages[0]) + len(&pages[1]);
        let units = vec![Bytes::from_static(&OPUS[..second]), Bytes::from_static(&OPUS[second..])];
        assert_eq!(read_all(units).expect("reads"), OPUS);
    }

    #[test]
    fn a_partial_page_is_refused() {
        let error = read_all(vec![Bytes::from_static(&OPUS[..40])]).expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
