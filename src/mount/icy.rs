//! ICY metadata interleaving for one listener (sans-IO).
//!
//! After every `metaint` audio bytes a block is inserted: the encoded title
//! of the chunk the last audio byte came from if it differs from what this
//! listener was last sent, else a lone zero byte. Because each chunk carries
//! the metadata current when it was written, titles change exactly where in
//! the audio they changed, whenever the listener joined.

use std::sync::Arc;

use bytes::Bytes;

use super::{Metadata, ICY_NO_CHANGE};

/// One piece of an ICY listener's stream: a range of the audio bytes, or a
/// metadata block.
#[derive(Debug)]
pub enum Piece {
    Audio(std::ops::Range<usize>),
    Block(Bytes),
}

/// Per-listener interleaving state.
#[derive(Debug)]
pub struct IcyInterleaver {
    metaint: usize,
    /// Audio bytes left before the next block.
    until_block: usize,
    last_sent: Option<Arc<Metadata>>,
    /// The title current when the listener joined: the first block
    /// carries it, even if the audio before it (the burst) is older.
    ahead: Option<Arc<Metadata>>,
    /// Audio bytes of the burst (written before the listener joined) not
    /// yet planned; negative once past it. Blocks within the burst say
    /// nothing more (their titles are older than `ahead`); after it, blocks
    /// follow the audio's titles again.
    burst_left: i64,
}

impl IcyInterleaver {
    pub fn new(metaint: usize) -> IcyInterleaver {
        let metaint = metaint.max(1);
        IcyInterleaver { metaint, until_block: metaint, last_sent: None, ahead: None, burst_left: -1 }
    }

    /// For a listener joining now, while `current` is the mount's title and
    /// its first `burst` audio bytes were written before it joined: its
    /// first block names `current` even if the burst's audio predates it (a
    /// scraper reads one block and hangs up), blocks within the rest of the
    /// burst say nothing, and after it titles follow the audio.
    pub fn starting_with(metaint: usize, current: Arc<Metadata>, burst: u64) -> IcyInterleaver {
        let burst_left = i64::try_from(burst).unwrap_or(i64::MAX);
        IcyInterleaver { ahead: Some(current), burst_left, ..IcyInterleaver::new(metaint) }
    }

    /// Append `data` (written under `meta`) to `out`, split by metadata blocks.
    pub fn feed(&mut self, data: &Bytes, meta: &Arc<Metadata>, out: &mut impl Extend<Bytes>) {
        self.plan(data.len(), meta, |piece| match piece {
            Piece::Audio(range) => out.extend(Some(data.slice(range))),
            Piece::Block(block) => out.extend(Some(block)),
        });
    }

    /// Cut `len` audio bytes (written under `meta`) into the pieces to send,
    /// in order, without touching the bytes themselves: the fan-out points
    /// its write at shared stream bytes, so no listener copies or takes a
    /// reference to them.
    pub fn plan(&mut self, len: usize, meta: &Arc<Metadata>, mut piece: impl FnMut(Piece)) {
        let mut at = 0;
        while len - at >= self.until_block {
            piece(Piece::Audio(at..at + self.until_block));
            at += self.until_block;
            self.planned(self.until_block);
            piece(Piece::Block(self.block_for(meta)));
            self.until_block = self.metaint;
        }
        if at < len {
            self.until_block -= len - at;
            self.planned(len - at);
            piece(Piece::Audio(at..len));
        }
    }

    fn planned(&mut self, audio: usize) {
        if self.burst_left >= 0 {
            self.burst_left = (self.burst_left - audio as i64).max(-1);
        }
    }

    fn block_for(&mut self, meta: &Arc<Metadata>) -> Bytes {
        if self.last_sent.is_none() {
            if let Some(ahead) = self.ahead.take() {
                let block = ahead.icy_block();
                self.last_sent = Some(ahead);
                return block;
            }
        }
        if self.burst_left >= 0 {
            // This block follows audio from before the join.
            return Bytes::from_static(ICY_NO_CHANGE);
        }
        let unchanged = self.last_sent.as_ref().is_some_and(|m| Arc::ptr_eq(m, meta) || **m == **meta);
        if unchanged {
            Bytes::from_static(ICY_NO_CHANGE)
        } else {
            self.last_sent = Some(meta.clone());
            meta.icy_block()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concat(parts: &[Bytes]) -> Vec<u8> {
        parts.iter().flat_map(|b| b.iter().copied()).collect()
    }

    #[test]
    fn blocks_every_metaint_bytes() {
        let a = Arc::new(Metadata::from_song("A", None));
        let mut icy = IcyInterleaver::new(4);
        let mut out = Vec::new();
        icy.feed(&Bytes::from_static(b"0123456789"), &a, &mut out);
        let bytes = concat(&out);
        let block = a.icy_block();
        let mut expected = b"0123".to_vec();
        expected.extend_from_slice(&block);
        expected.extend_from_slice(b"4567");
        expected.push(0);
        expected.extend_from_slice(b"89");
        assert_eq!(bytes, expected);
    }

    /// A listener joining just after a title change: the burst's audio is
    /// still under the old title, but the first block names the new one, and
    /// the old one is never sent after it.
    #[test]
    fn first_block_carries_the_current_title() {
        let old = Arc::new(Metadata::from_song("Old", None));
        let current = Arc::new(Metadata::from_song("Current", None));
        let next = Arc::new(Metadata::from_song("Next", None));
        let mut icy = IcyInterleaver::starting_with(2, current.clone(), 4);
        let mut out = Vec::new();
        icy.feed(&Bytes::from_static(b"aabb"), &old, &mut out);
        icy.feed(&Bytes::from_static(b"cc"), &current, &mut out);
        icy.feed(&Bytes::from_static(b"dd"), &next, &mut out);
        let expected: Vec<Bytes> = vec![
            Bytes::from_static(b"aa"),
            current.icy_block(),
            Bytes::from_static(b"bb"),
            Bytes::from_static(ICY_NO_CHANGE),
            Bytes::from_static(b"cc"),
            Bytes::from_static(ICY_NO_CHANGE),
            Bytes::from_static(b"dd"),
            next.icy_block(),
        ];
        assert_eq!(out, expected);
    }

    /// The title current at the join never reaches the audio (a quicker
    /// change replaced it in place): after the burst, the audio's title.
    #[test]
    fn titles_follow_the_audio_after_the_burst() {
        let old = Arc::new(Metadata::from_song("Old", None));
        let current = Arc::new(Metadata::from_song("Current", None));
        let replaced = Arc::new(Metadata::from_song("Replaced", None));
        let mut icy = IcyInterleaver::starting_with(2, current.clone(), 2);
        let mut out = Vec::new();
        icy.feed(&Bytes::from_static(b"aa"), &old, &mut out);
        icy.feed(&Bytes::from_static(b"bb"), &replaced, &mut out);
        assert_eq!(out[1], current.icy_block());
        assert_eq!(out[3], replaced.icy_block());
    }

    #[test]
    fn title_change_lands_where_the_chunk_changes() {
        let a = Arc::new(Metadata::from_song("A", None));
        let b = Arc::new(Metadata::from_song("B", None));
        let mut icy = IcyInterleaver::new(4);
        let mut out = Vec::new();
        icy.feed(&Bytes::from_static(b"0123"), &a, &mut out);
        icy.feed(&Bytes::from_static(b"45"), &a, &mut out);
        icy.feed(&Bytes::from_static(b"67"), &b, &mut out);
        let bytes = concat(&out);
        let mut expected = b"0123".to_vec();
        expected.extend_from_slice(&a.icy_block());
        expected.extend_from_slice(b"4567");
        expected.extend_from_slice(&b.icy_block());
        assert_eq!(bytes, expected);
    }

    proptest::proptest! {
        /// For any metaint, join-time title, burst and run of chunks and
        /// titles: taking the blocks out again (as a relay's ingest does)
        /// gives back exactly the audio, the first block names the title
        /// current at the join, blocks within the rest of the burst say
        /// nothing, and after it every title change lands where the audio's
        /// title changed.
        #[test]
        fn stripping_the_blocks_gives_back_the_audio_and_titles_in_step(
            metaint in 1usize..600,
            chunks in proptest::collection::vec((0usize..900, 0usize..3), 0..40),
            burst_fraction in 0.0f64..1.0,
        ) {
            let titles: Vec<Arc<Metadata>> =
                (0..3).map(|i| Arc::new(Metadata::from_song(&format!("Title {i}"), None))).collect();
            let current = Arc::new(Metadata::from_song("Current", None));
            let total: usize = chunks.iter().map(|c| c.0).sum();
            let burst = (total as f64 * burst_fraction) as u64;
            let mut icy = IcyInterleaver::starting_with(metaint, current.clone(), burst);
            let (mut out, mut audio, mut title_of_byte) = (Vec::new(), Vec::new(), Vec::new());
            for (n, &(len, title)) in chunks.iter().enumerate() {
                let data: Vec<u8> = (0..len).map(|i| (n * 31 + i) as u8).collect();
                audio.extend_from_slice(&data);
                title_of_byte.extend(std::iter::repeat_n(title, len));
                icy.feed(&Bytes::from(data), &titles[title], &mut out);
            }
            let mut stripper = crate::source::icy_strip::IcyStripper::new(metaint);
            let mut stripped = bytes::BytesMut::new();
            let updates = stripper.push(&concat(&out), &mut stripped);
            proptest::prop_assert_eq!(&stripped[..], &audio[..]);

            let mut expected = Vec::new();
            let mut last: Option<String> = None;
            for at in (1..=total / metaint).map(|k| k * metaint) {
                let title = if at == metaint {
                    Some(current.song.clone())
                } else if at as u64 <= burst {
                    None
                } else {
                    Some(titles[title_of_byte[at - 1]].song.clone()).filter(|t| last.as_ref() != Some(t))
                };
                if let Some(title) = title {
                    last = Some(title.clone());
                    expected.push((at as u64, title));
                }
            }
            let got: Vec<(u64, String)> =
                updates.into_iter().map(|u| (u.audio_offset, u.title.unwrap_or_default())).collect();
            proptest::prop_assert_eq!(got, expected);
        }
    }
}
