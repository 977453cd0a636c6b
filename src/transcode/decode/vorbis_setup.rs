//! A check of Vorbis setup headers before symphonia reads them.
//!
//! A setup header describes codebooks in a few bits each, but the decoder
//! builds a table of `entries × dimensions` floats for every VQ codebook:
//! a 6 KB header of a couple of hundred large lookup-type-1 codebooks asks
//! for gigabytes (symphonia caps one codebook, not their sum). And symphonia's
//! `lookup1_values` asserts on codebooks its own arithmetic overflows on (32
//! dimensions), which panics. This walks the codebooks with the same
//! arithmetic, adds up what decoding them would allocate, and refuses the
//! stream when that exceeds a budget or would trip those assertions.

/// Decoder memory all codebooks of one stream may need. Real encoders'
/// setups need well under a megabyte.
pub(super) const CODEBOOK_BUDGET: u64 = 32 << 20;

/// symphonia's limits on one codebook (beyond them it refuses the stream).
const MAX_DIMENSIONS: u32 = 32;
const MAX_ENTRIES: u32 = 128 * 1024;

/// Bytes per entry besides the VQ table: code length, value, codeword and
/// the decoder's lookup table entries.
const ENTRY_OVERHEAD: u64 = 16;

/// LSB-first bit reader (Vorbis packs bits from the least significant up).
struct Bits<'a> {
    data: &'a [u8],
    pos: u64,
}

impl Bits<'_> {
    fn read(&mut self, n: u32) -> Option<u32> {
        let mut value = 0u32;
        for i in 0..n {
            let byte = *self.data.get(usize::try_from(self.pos / 8).ok()?)?;
            value |= u32::from(byte >> (self.pos % 8) & 1) << i;
            self.pos += 1;
        }
        Some(value)
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        (end <= self.data.len() as u64 * 8).then(|| self.pos = end)
    }
}

/// Bits needed to hold `x` (Vorbis' `ilog`).
fn ilog(x: u32) -> u32 {
    32 - x.leading_zeros()
}

/// Check a complete setup header packet (`\x05vorbis` …). `Err` says why the
/// stream must not reach the decoder. A header that is merely malformed is
/// left for the decoder to refuse.
pub(super) fn check(packet: &[u8]) -> Result<(), String> {
    codebook_memory(packet).map(drop)
}

/// What the decoder would allocate for the codebooks of a setup header (of
/// those before any malformed one), or why they are refused.
fn codebook_memory(packet: &[u8]) -> Result<u64, String> {
    let Some(body) = packet.strip_prefix(b"\x05vorbis") else { return Ok(0) };
    let mut bits = Bits { data: body, pos: 0 };
    let Some(count) = bits.read(8).map(|c| c + 1) else { return Ok(0) };
    let mut total = 0u64;
    for index in 0..count {
        match codebook_cost(&mut bits) {
            Ok(Some(cost)) => total += cost,
            Ok(None) => break,
            Err(why) => return Err(format!("Vorbis codebook {index} refused: {why}")),
        }
        if total > CODEBOOK_BUDGET {
            return Err(format!(
                "Vorbis setup header refused: its codebooks would need more than {} MiB of decoder memory",
                CODEBOOK_BUDGET >> 20
            ));
        }
    }
    Ok(total)
}

/// What decoding one codebook allocates; `Ok(None)` when it is malformed
/// (the decoder refuses it without allocating).
fn codebook_cost(bits: &mut Bits<'_>) -> Result<Option<u64>, String> {
    let Some(sync) = bits.read(24) else { return Ok(None) };
    if sync != 0x56_4342 {
        return Ok(None);
    }
    let (Some(dimensions), Some(entries)) = (bits.read(16), bits.read(24)) else { return Ok(None) };
    if dimensions == 0 {
        return Ok(None);
    }
    if dimensions > MAX_DIMENSIONS || entries > MAX_ENTRIES {
        return Err(format!("{dimensions} dimensions and {entries} entries"));
    }
    if skip_lengths(bits, entries).is_none() {
        return Ok(None);
    }
    let Some(lookup_type) = bits.read(4) else { return Ok(None) };
    let mut cost = u64::from(entries) * ENTRY_OVERHEAD;
    if lookup_type == 1 || lookup_type == 2 {
        let (Some(_min), Some(_delta)) = (bits.read(32), bits.read(32)) else { return Ok(None) };
        let (Some(value_bits), Some(_sequence)) = (bits.read(4).map(|b| b + 1), bits.read(1)) else { return Ok(None) };
        let values = if lookup_type == 1 { lookup1_values(entries, dimensions)? } else { entries * dimensions };
        if bits.skip(u64::from(values) * u64::from(value_bits)).is_none() {
            return Ok(None);
        }
        cost += u64::from(entries) * u64::from(dimensions) * 4;
    }
    Ok(Some(cost))
}

/// Skip the codeword lengths; `None` if the header ends or is inconsistent.
fn skip_lengths(bits: &mut Bits<'_>, entries: u32) -> Option<()> {
    if bits.read(1)? == 0 {
        let sparse = bits.read(1)? == 1;
        for _ in 0..entries {
            if !sparse || bits.read(1)? == 1 {
                bits.skip(5)?;
            }
        }
        return Some(());
    }
    let mut length = bits.read(5)? + 1;
    let mut entry = 0u32;
    while entry < entries {
        if length > 32 {
            return None;
        }
        entry = entry.checked_add(bits.read(ilog(entries - entry))?)?;
        length += 1;
    }
    (entry == entries).then_some(())
}

/// Vorbis' `lookup1_values`, computed as symphonia computes it (in `f32`),
/// refusing the codebooks on which symphonia's own checks of the result
/// would overflow or fail (and panic).
fn lookup1_values(entries: u32, dimensions: u32) -> Result<u32, String> {
    let value = (entries as f32).powf(1.0 / dimensions as f32).floor() as u32;
    let fits = value.checked_pow(dimensions).is_some_and(|v| v <= entries)
        && (value + 1).checked_pow(dimensions).is_some_and(|v| v > entries);
    if !fits {
        return Err(format!("lookup table of {entries} entries in {dimensions} dimensions overflows the decoder"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LSB-first bit writer for building setup headers.
    #[derive(Default)]
    struct Writer {
        bytes: Vec<u8>,
        pos: usize,
    }

    impl Writer {
        fn put(&mut self, value: u32, n: u32) {
            for i in 0..n {
                if self.pos / 8 == self.bytes.len() {
                    self.bytes.push(0);
                }
                self.bytes[self.pos / 8] |= ((value >> i & 1) as u8) << (self.pos % 8);
                self.pos += 1;
            }
        }

        /// A codebook of `entries` entries, all of one code length, with a
        /// lookup-type-1 table of `dimensions`.
        fn codebook(&mut self, dimensions: u32, entries: u32) {
            self.put(0x56_4342, 24);
            self.put(dimensions, 16);
            self.put(entries, 24);
            self.put(1, 1); // ordered
            self.put(ilog(entries) - 2, 5); // length - 1: a complete tree
            self.put(entries, ilog(entries));
            self.put(1, 4); // lookup type 1
            self.put(0, 32);
            self.put(0, 32);
            self.put(0, 4); // 1 bit per value
            self.put(0, 1);
            let values = lookup1_values(entries, dimensions).unwrap_or(1);
            self.put(0, values);
        }
    }

    fn setup(books: &[(u32, u32)]) -> Vec<u8> {
        let mut w = Writer::default();
        w.put(books.len() as u32 - 1, 8);
        for &(dimensions, entries) in books {
            w.codebook(dimensions, entries);
        }
        [b"\x05vorbis".as_slice(), &w.bytes].concat()
    }

    #[test]
    fn modest_codebooks_pass() {
        assert_eq!(check(&setup(&[(2, 256), (4, 625), (8, 6561)])), Ok(()));
    }

    #[test]
    fn a_pile_of_large_tables_is_refused() {
        let bomb = setup(&vec![(31, MAX_ENTRIES); 200]);
        assert!(bomb.len() < 8 * 1024, "a few KB ({} bytes) asking for gigabytes", bomb.len());
        let error = check(&bomb).expect_err("refused");
        assert!(error.contains("decoder memory"), "{error}");
    }

    #[test]
    fn codebooks_that_overflow_the_decoder_are_refused() {
        let error = check(&setup(&[(32, 1024)])).expect_err("refused");
        assert!(error.contains("overflows"), "{error}");
        assert!(check(&setup(&[(33, 4)])).is_err());
    }

    #[test]
    fn truncated_and_foreign_packets_are_left_to_the_decoder() {
        let whole = setup(&[(2, 256)]);
        for cut in 0..whole.len() {
            assert_eq!(check(&whole[..cut]), Ok(()));
        }
        assert_eq!(check(b"\x01vorbis"), Ok(()));
    }

    #[test]
    fn a_real_encoder_setup_is_cheap() {
        // The setup header of a libvorbis stream, from the test data.
        let ogg = include_bytes!("testdata/chained_vorbis.ogg");
        let at = ogg.windows(7).position(|w| w == b"\x05vorbis").expect("a setup header");
        let memory = codebook_memory(&ogg[at..]).expect("accepted");
        assert!((64 * 1024..4 << 20).contains(&memory), "{memory} bytes");
    }
}
