//! Vorbis encoding (libvorbis/aoTuV via `vorbis_rs`) into chained Ogg.
//!
//! `vorbis_rs` writes finished Ogg pages to a `Write` sink it owns; a shared
//! buffer (`SharedSink`) lets us take them back after each call. The encoder
//! holds raw libvorbis pointers and is not `Send`: it lives, like every
//! encoder, on the codec process's one thread.
//!
//! Pages: libogg closes a page once it holds ≥ 4 packets past the requested
//! minimum fill, which we set to 0 bytes. With 2048-sample long blocks a
//! packet covers 1024 samples, so pages come out about every 4096 samples
//! (≈ 93 ms at 44.1 kHz). Measured with 20 ms input chunks at 44.1 kHz /
//! 128 kbit/s: first audio page after 120 ms of input, and never more than
//! 120 ms of input without output.

use std::cell::RefCell;
use std::io::{self, Write};
use std::num::{NonZeroU32, NonZeroU8};
use std::rc::Rc;

use vorbis_rs::{VorbisBitrateManagementStrategy, VorbisEncoderBuilder};

use super::ogg_mux::new_serial;
use super::{check_pcm, title_comments, EncodeError, Encoder, EncoderSpec};

/// Sample rates libvorbis has tuned setups for.
const RATES: [u32; 11] = [8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000, 88_200, 96_000];

/// Check the rate statically, then let libvorbis judge the bitrate: its
/// usable range depends on rate and channel count (e.g. ≈ 45–500 kbit/s for
/// 44.1 kHz stereo), so a throw-away encoder is set up on an `io::sink`.
pub(super) fn validate(spec: &EncoderSpec) -> Result<(), String> {
    if !RATES.contains(&spec.sample_rate) {
        return Err(format!(
            "Vorbis sample rate {} Hz is not supported (use one of {})",
            spec.sample_rate,
            RATES.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
        ));
    }
    let params = Params::new(spec).map_err(|e| e.to_string())?;
    params.builder(io::sink(), 0).build().map(drop).map_err(|e| {
        format!(
            "Vorbis cannot encode {} kbit/s at {} Hz with {} channel(s): {e}",
            spec.bitrate_kbps, spec.sample_rate, spec.channels
        )
    })
}

/// Encoder parameters.
#[derive(Clone, Copy)]
struct Params {
    rate: NonZeroU32,
    channels: NonZeroU8,
    bitrate: NonZeroU32,
}

impl Params {
    fn new(spec: &EncoderSpec) -> Result<Self, EncodeError> {
        let bad = |what: &str| EncodeError::Unsupported(format!("Vorbis {what} must be non-zero"));
        Ok(Self {
            rate: NonZeroU32::new(spec.sample_rate).ok_or_else(|| bad("sample rate"))?,
            channels: NonZeroU8::new(spec.channels).ok_or_else(|| bad("channel count"))?,
            bitrate: NonZeroU32::new(spec.bitrate_kbps.saturating_mul(1000)).ok_or_else(|| bad("bitrate"))?,
        })
    }

    /// A builder for one chain link writing to `sink`.
    fn builder<W: Write>(&self, sink: W, serial: u32) -> VorbisEncoderBuilder<W> {
        let mut b = VorbisEncoderBuilder::new_with_serial(self.rate, self.channels, sink, serial as i32);
        // Quality-VBR picked from the target bitrate (no bitrate manager):
        // steadier quality than ABR, and the average stays near the target.
        b.bitrate_management_strategy(VorbisBitrateManagementStrategy::Vbr { target_bitrate: self.bitrate });
        // 0 = close a page as soon as libogg allows (every 4 packets): low latency.
        b.minimum_page_data_size(Some(0));
        b
    }
}

/// `Write` sink shared between us and the `vorbis_rs` encoder, which owns
/// its sink and offers no way to borrow it back.
#[derive(Clone, Default)]
struct SharedSink(Rc<RefCell<Vec<u8>>>);

impl Write for SharedSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SharedSink {
    /// Move what was written so far to `out`.
    fn drain_into(&self, out: &mut Vec<u8>) {
        out.append(&mut self.0.borrow_mut());
    }
}

fn vorbis_err(what: &str) -> impl Fn(vorbis_rs::VorbisError) -> EncodeError + '_ {
    move |e| EncodeError::Codec(format!("Vorbis {what}: {e}"))
}

/// A Vorbis encoder writing chained Ogg: one link per title.
pub(super) struct VorbisEncoder {
    params: Params,
    sink: SharedSink,
    /// The current link; `None` once finished.
    enc: Option<vorbis_rs::VorbisEncoder<SharedSink>>,
    serial: u32,
    /// Reusable planar buffers (vorbis_rs wants planar channels).
    planar: Vec<Vec<f32>>,
    channels: usize,
    /// Long block size, for `frame_samples`.
    block: usize,
}

impl VorbisEncoder {
    /// Start the first link, whose comment header holds `tags`; its header
    /// pages come out with the first call that takes an `out`.
    pub(super) fn new(spec: &EncoderSpec, tags: Vec<(&'static str, String)>) -> Result<Self, EncodeError> {
        let params = Params::new(spec)?;
        let mut encoder = Self {
            params,
            sink: SharedSink::default(),
            enc: None,
            serial: new_serial(None),
            planar: vec![Vec::new(); usize::from(spec.channels)],
            channels: usize::from(spec.channels),
            block: 2048,
        };
        encoder.start_link(&tags)?;
        encoder.block = long_block_size(&encoder.sink.0.borrow()).unwrap_or(2048);
        Ok(encoder)
    }

    /// Start a link: a new encoder (fresh serial) whose comment header holds `tags`.
    fn start_link(&mut self, tags: &[(&'static str, String)]) -> Result<(), EncodeError> {
        self.serial = new_serial(Some(self.serial));
        let mut b = self.params.builder(self.sink.clone(), self.serial);
        b.comment_tags(tags.iter().map(|(k, v)| (*k, v.as_str()))).map_err(vorbis_err("comments"))?;
        self.enc = Some(b.build().map_err(|e| EncodeError::Init(format!("Vorbis: {e}")))?);
        Ok(())
    }

    /// Finish the current link (flushes the tail and writes the EOS page).
    fn end_link(&mut self) -> Result<(), EncodeError> {
        match self.enc.take() {
            Some(enc) => enc.finish().map(drop).map_err(vorbis_err("finish")),
            None => Ok(()),
        }
    }
}

/// Long block size from the identification header on the first page
/// (`blocksize_1` is the high nibble of packet byte 28, as log2).
fn long_block_size(first_page: &[u8]) -> Option<usize> {
    let nseg = usize::from(*first_page.get(26)?);
    let packet = first_page.get(27 + nseg..)?;
    if packet.get(..7)? != b"\x01vorbis" {
        return None;
    }
    Some(1 << (packet.get(28)? >> 4))
}

impl Encoder for VorbisEncoder {
    fn encode(&mut self, pcm: &[f32], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let frames = check_pcm(pcm, self.channels)?;
        let enc = self.enc.as_mut().ok_or(EncodeError::Finished)?;
        if frames > 0 {
            for (c, plane) in self.planar.iter_mut().enumerate() {
                plane.clear();
                plane.extend(pcm.iter().skip(c).step_by(self.channels));
            }
            enc.encode_audio_block(&self.planar).map_err(vorbis_err("encode"))?;
        }
        self.sink.drain_into(out);
        Ok(())
    }

    fn set_title(&mut self, artist: Option<&str>, title: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.enc.is_none() {
            return Err(EncodeError::Finished);
        }
        self.end_link()?;
        self.start_link(&title_comments(artist, title))?;
        self.sink.drain_into(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.end_link()?;
        self.sink.drain_into(out);
        Ok(())
    }

    fn frame_samples(&self) -> usize {
        self.block
    }
}

#[cfg(test)]
mod tests {
    use super::super::ogg_mux::test_util::{comments, packets, pages};
    use super::super::test_util::{encode_sine, sine, spec};
    use super::super::{new_encoder, validate, Codec};

    #[test]
    fn ogg_vorbis_structure_and_granules() {
        let spec = spec(Codec::Vorbis, 128, 44_100, 2);
        let mut enc = new_encoder(&spec).expect("encoder");
        assert_eq!(enc.frame_samples(), 2048);
        let out = encode_sine(enc.as_mut(), &spec, 2.0, 882);

        let pg = pages(&out);
        assert!(pg[0].bos && pg[0].packets_ended == 1, "identification header alone on BOS page");
        assert_eq!(pg.iter().filter(|p| p.bos).count(), 1);
        assert!(pg.last().is_some_and(|p| p.eos));
        assert!(pg.windows(2).all(|w| w[0].granule <= w[1].granule || w[1].granule == u64::MAX));

        let pk = packets(&out);
        for (i, kind) in [1u8, 3, 5].into_iter().enumerate() {
            assert_eq!(pk[i].data[0], kind);
            assert_eq!(&pk[i].data[1..7], b"vorbis");
        }
        let id = &pk[0].data;
        assert_eq!(id[11], 2, "channels");
        assert_eq!(u32::from_le_bytes([id[12], id[13], id[14], id[15]]), 44_100);
        // libvorbis sets the last granule to exactly the samples encoded.
        assert_eq!(pk.last().expect("packets").granule, 88_200);
        // Sanity: roughly the requested bitrate (quality VBR, so loose bounds).
        let kbps = out.len() as f32 * 8.0 / 2.0 / 1000.0;
        assert!((40.0..250.0).contains(&kbps), "{kbps} kbit/s");
    }

    #[test]
    fn pages_come_out_regularly() {
        let mut enc = new_encoder(&spec(Codec::Vorbis, 96, 44_100, 2)).expect("encoder");
        let mut out = Vec::new();
        enc.encode(&[], &mut out).expect("headers");
        assert_eq!(pages(&out).len(), 2, "id page + comment/setup page");
        // Feed 20 ms chunks; track the longest stretch of input without output.
        let (mut since, mut worst, mut first) = (0usize, 0usize, None);
        for (i, chunk) in sine(44_100, 2, 3.0).chunks(2 * 882).enumerate() {
            out.clear();
            enc.encode(chunk, &mut out).expect("encode");
            since += 882;
            if !out.is_empty() {
                first.get_or_insert((i + 1) * 882);
                worst = worst.max(since);
                since = 0;
            }
        }
        let first = first.expect("pages produced");
        eprintln!("vorbis: first page after {first} samples, longest gap {worst} samples");
        assert!(first <= 44_100 / 4 && worst <= 44_100 / 4, "first {first}, gap {worst}");
    }

    #[test]
    fn set_title_chains_with_comment() {
        let mut enc = new_encoder(&spec(Codec::Vorbis, 64, 48_000, 1)).expect("encoder");
        let pcm = sine(48_000, 1, 2.0);
        let mut out = Vec::new();
        enc.encode(&pcm[..48_000], &mut out).expect("encode");
        enc.set_title(None, "Only Title", &mut out).expect("title");
        enc.encode(&pcm[48_000..], &mut out).expect("encode");
        enc.finish(&mut out).expect("finish");
        assert!(enc.set_title(None, "late", &mut out).is_err());

        let pg = pages(&out);
        let bos: Vec<_> = pg.iter().filter(|p| p.bos).collect();
        assert_eq!(bos.len(), 2);
        assert_ne!(bos[0].serial, bos[1].serial);
        assert_eq!(pg.iter().filter(|p| p.eos).count(), 2);
        let pk = packets(&out);
        let second: Vec<_> = pk.iter().filter(|p| p.serial == bos[1].serial).collect();
        assert!(second[0].first && second[0].data.starts_with(b"\x01vorbis"));
        let (_, tags) = comments(&second[1].data, b"\x03vorbis");
        assert_eq!(tags, ["TITLE=Only Title"]);
        assert_eq!(second.last().expect("packets").granule, 48_000);
    }

    #[test]
    fn validate_asks_libvorbis() {
        assert!(validate(&spec(Codec::Vorbis, 128, 44_100, 2)).is_ok());
        assert!(validate(&spec(Codec::Vorbis, 2000, 44_100, 2)).is_err());
        assert!(validate(&spec(Codec::Vorbis, 128, 44_000, 2)).is_err());
    }
}
