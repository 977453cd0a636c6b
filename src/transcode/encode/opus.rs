//! Opus encoding (libopus via the `opus` crate) muxed into chained Ogg, or
//! into WebM (`webm_mux`) for browsers without Ogg.
//!
//! 48 kHz only, 20 ms frames (960 samples/channel) buffered internally.
//! Each logical stream is OpusHead (alone on the BOS page), OpusTags (own
//! page), then audio packets whose granule positions count 48 kHz samples
//! *including* pre-skip (RFC 7845). Pages are closed every
//! `PACKETS_PER_PAGE` packets so a listener never waits long for a page.
//!
//! A title change ends the logical stream and starts a new one. The tail is
//! flushed gaplessly: the buffered partial frame and the encoder lookahead
//! are pushed out with zero padding, and the EOS page's granule position is
//! set to exactly pre-skip + real samples, so decoders trim the padding.
//! WebM has no such chaining: titles stay out of band there.

use opus::{Application, Bitrate, Channels};

use super::ogg_mux::{comment_packet, new_serial, OggLink, PageEnd};
use super::webm_mux::{OpusTrack, WebmWriter};
use super::{check_pcm, title_comments, Container, EncodeError, Encoder, EncoderSpec};

/// Samples per channel in one 20 ms Opus frame at 48 kHz.
const FRAME: usize = 960;
/// Close an Ogg page every 5 packets = 100 ms of audio (≈ 2.3 kbit/s of page
/// overhead); fewer would cut latency further at the cost of overhead.
const PACKETS_PER_PAGE: u32 = 5;
/// libopus' recommended maximum packet size.
const MAX_PACKET: usize = 4000;
/// Vendor string in OpusTags.
const VENDOR: &str = "Floe";

/// Opus needs 48 kHz input (the caller resamples) and 6–256 kbit/s per channel.
pub(super) fn validate(spec: &EncoderSpec) -> Result<(), String> {
    if spec.sample_rate != 48_000 {
        return Err(format!(
            "Opus encoding needs 48000 Hz input, got {} Hz (set the transcode sample rate to 48000)",
            spec.sample_rate
        ));
    }
    let max = (256 * u32::from(spec.channels)).min(510);
    if !(6..=max).contains(&spec.bitrate_kbps) {
        return Err(format!("Opus bitrate {} kbit/s is out of range (6–{max})", spec.bitrate_kbps));
    }
    Ok(())
}

/// Opus encoder writing chained Ogg Opus.
pub(super) struct OpusEncoder {
    enc: opus::Encoder,
    channels: usize,
    /// Encoder lookahead at 48 kHz, written as OpusHead pre-skip.
    pre_skip: u16,
    mux: Mux,
    /// Interleaved samples of the current, incomplete frame.
    pending: Vec<f32>,
    /// Scratch output buffer for one packet.
    packet: Vec<u8>,
    /// Real samples per channel handed in on this link.
    input_samples: u64,
    /// End granule of the last packet written (= packets × 960).
    granule: u64,
    /// Packets kept for `take_frames`, when asked to.
    frames: Option<Vec<bytes::Bytes>>,
    finished: bool,
}

/// Where the packets go.
enum Mux {
    /// The current link of a chained Ogg stream.
    Ogg { link: OggLink, packets_in_page: u32 },
    /// One endless WebM segment (block timestamps are `granule` in ms).
    WebM(WebmWriter),
    /// Nowhere: only kept frames leave (CMAF).
    Frames,
}

impl Mux {
    fn drain_into(&mut self, out: &mut Vec<u8>) {
        match self {
            Mux::Ogg { link, .. } => link.drain_into(out),
            Mux::WebM(w) => w.drain_into(out),
            Mux::Frames => {}
        }
    }
}

fn codec_err(what: &str) -> impl Fn(opus::Error) -> EncodeError + '_ {
    move |e| EncodeError::Codec(format!("Opus {what}: {e}"))
}

impl OpusEncoder {
    /// Create the encoder and queue the first link's headers (Ogg comments:
    /// `tags`); they come out
    /// at the front of the first `encode`/`set_title`/`finish` output.
    pub(super) fn new(spec: &EncoderSpec, tags: &[(&str, String)]) -> Result<Self, EncodeError> {
        let init = |e: opus::Error| EncodeError::Init(format!("Opus: {e}"));
        let channels = if spec.channels == 1 { Channels::Mono } else { Channels::Stereo };
        let mut enc = opus::Encoder::new(48_000, channels, Application::Audio).map_err(init)?;
        let bps = i32::try_from(spec.bitrate_kbps * 1000).unwrap_or(i32::MAX);
        enc.set_bitrate(Bitrate::Bits(bps)).map_err(init)?;
        let pre_skip = u16::try_from(enc.get_lookahead().map_err(init)?.max(0)).unwrap_or(u16::MAX);
        let mux = match spec.container {
            Container::WebM => {
                let head = opus_head(spec.channels, pre_skip);
                Mux::WebM(WebmWriter::new(&OpusTrack { opus_head: &head, pre_skip, channels: spec.channels }))
            }
            Container::Frames => Mux::Frames,
            _ => Mux::Ogg { link: OggLink::new(new_serial(None)), packets_in_page: 0 },
        };
        let mut me = Self {
            enc,
            channels: usize::from(spec.channels),
            pre_skip,
            mux,
            pending: Vec::with_capacity(FRAME * 2),
            packet: vec![0; MAX_PACKET],
            input_samples: 0,
            granule: 0,
            frames: None,
            finished: false,
        };
        me.start_link(tags)?;
        Ok(me)
    }

    /// Ogg: write OpusHead and OpusTags, each on its own page, and reset the
    /// per-link counters (granules restart at 0 in every link).
    fn start_link(&mut self, comments: &[(&str, String)]) -> Result<(), EncodeError> {
        let Mux::Ogg { link, packets_in_page } = &mut self.mux else { return Ok(()) };
        link.write(opus_head(self.channels as u8, self.pre_skip), 0, PageEnd::Flush)?;
        link.write(comment_packet(b"OpusTags", VENDOR, comments), 0, PageEnd::Flush)?;
        *packets_in_page = 0;
        self.input_samples = 0;
        self.granule = 0;
        Ok(())
    }

    /// Encode one full frame; `eos_granule` marks the final packet of a link.
    fn encode_frame(&mut self, frame: &[f32], eos_granule: Option<u64>) -> Result<(), EncodeError> {
        let len = self.enc.encode_float(frame, &mut self.packet).map_err(codec_err("encode"))?;
        let start = self.granule;
        self.granule += FRAME as u64;
        if let Some(frames) = &mut self.frames {
            frames.push(bytes::Bytes::copy_from_slice(&self.packet[..len]));
        }
        match &mut self.mux {
            Mux::Ogg { link, packets_in_page } => {
                *packets_in_page += 1;
                let (granule, end) = match eos_granule {
                    Some(g) => (g, PageEnd::EndOfStream),
                    None if *packets_in_page >= PACKETS_PER_PAGE => (self.granule, PageEnd::Flush),
                    None => (self.granule, PageEnd::Continue),
                };
                if end != PageEnd::Continue {
                    *packets_in_page = 0;
                }
                link.write(self.packet[..len].to_vec(), granule, end)
            }
            Mux::WebM(w) => {
                w.block(&self.packet[..len], start / 48);
                if eos_granule.is_some() {
                    w.flush();
                }
                Ok(())
            }
            Mux::Frames => Ok(()),
        }
    }

    /// End the current link: pad the partial frame with silence and keep
    /// encoding until every real sample has left the lookahead, then write
    /// the EOS page with the end-trimmed granule.
    fn end_link(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let target = self.input_samples + u64::from(self.pre_skip);
        let n = FRAME * self.channels;
        let mut frame = std::mem::take(&mut self.pending);
        loop {
            frame.resize(n, 0.0);
            // `granule` ≤ real input < target, so at least one packet is written.
            let last = self.granule + FRAME as u64 >= target;
            self.encode_frame(&frame, last.then_some(target))?;
            frame.clear();
            if last {
                break;
            }
        }
        self.pending = frame;
        self.mux.drain_into(out);
        Ok(())
    }
}

/// The OpusHead identification header (RFC 7845 §5.1), mapping family 0.
fn opus_head(channels: u8, pre_skip: u16) -> Vec<u8> {
    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1); // version
    head.push(channels);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes()); // input sample rate (informational)
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family 0: mono/stereo, no table
    head
}

impl Encoder for OpusEncoder {
    fn encode(&mut self, pcm: &[f32], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.finished {
            return Err(EncodeError::Finished);
        }
        let frames = check_pcm(pcm, self.channels)?;
        self.input_samples += frames as u64;
        let n = FRAME * self.channels;
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(pcm);
        let mut chunks = buf.chunks_exact(n);
        let mut result = Ok(());
        for frame in chunks.by_ref() {
            result = self.encode_frame(frame, None);
            if result.is_err() {
                break;
            }
        }
        let rest = chunks.remainder().len();
        buf.drain(..buf.len() - rest);
        self.pending = buf;
        self.mux.drain_into(out);
        result
    }

    fn set_title(&mut self, artist: Option<&str>, title: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.finished {
            return Err(EncodeError::Finished);
        }
        let Mux::Ogg { link, .. } = &self.mux else { return Ok(()) };
        let serial = link.serial();
        self.end_link(out)?;
        // A new link starts a new decoder, so start a fresh encoder state to
        // match (same settings, same lookahead → same pre-skip).
        self.enc.reset_state().map_err(codec_err("reset"))?;
        self.mux = Mux::Ogg { link: OggLink::new(new_serial(Some(serial))), packets_in_page: 0 };
        self.start_link(&title_comments(artist, title))?;
        self.mux.drain_into(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.end_link(out)
    }

    fn frame_samples(&self) -> usize {
        FRAME
    }

    fn keep_frames(&mut self) -> bool {
        self.frames.get_or_insert_with(Vec::new);
        true
    }

    fn take_frames(&mut self, out: &mut Vec<bytes::Bytes>) {
        if let Some(frames) = &mut self.frames {
            out.append(frames);
        }
    }

    fn pre_skip(&self) -> u16 {
        self.pre_skip
    }
}

#[cfg(test)]
mod tests {
    use super::super::ogg_mux::test_util::{comments, packets, pages};
    use super::super::test_util::{encode_sine, sine, spec};
    use super::super::{new_encoder, Codec};

    fn decode_rms(pkts: &[&[u8]], channels: u8, pre_skip: usize) -> (usize, f32) {
        let ch = if channels == 1 { opus::Channels::Mono } else { opus::Channels::Stereo };
        let mut dec = opus::Decoder::new(48_000, ch).expect("decoder");
        let mut pcm = Vec::new();
        let mut buf = vec![0f32; 5760 * usize::from(channels)];
        for p in pkts {
            let n = dec.decode_float(p, &mut buf, false).expect("decode");
            pcm.extend_from_slice(&buf[..n * usize::from(channels)]);
        }
        let body = &pcm[(pre_skip + 4800) * usize::from(channels)..];
        let rms = (body.iter().map(|s| s * s).sum::<f32>() / body.len() as f32).sqrt();
        (pcm.len() / usize::from(channels), rms)
    }

    #[test]
    fn ogg_opus_structure_and_granules() {
        let spec = spec(Codec::Opus, 96, 48_000, 2);
        let mut enc = new_encoder(&spec).expect("encoder");
        assert_eq!(enc.frame_samples(), 960);
        let out = encode_sine(enc.as_mut(), &spec, 2.0, 441);

        let pg = pages(&out);
        assert!(pg[0].bos && pg[0].packets_ended == 1 && pg[0].granule == 0, "OpusHead alone on BOS page");
        assert!(!pg[1].bos && pg[1].packets_ended == 1 && pg[1].granule == 0, "OpusTags on its own page");
        assert!(pg.iter().skip(2).all(|p| (1..=5).contains(&p.packets_ended)), "small pages");
        assert!(pg.windows(2).all(|w| w[0].granule <= w[1].granule), "granules increase");
        assert!(pg.last().is_some_and(|p| p.eos) && pg.iter().filter(|p| p.eos).count() == 1);

        let pk = packets(&out);
        let head = &pk[0].data;
        assert!(head.starts_with(b"OpusHead") && head.len() == 19);
        assert_eq!((head[8], head[9]), (1, 2), "version 1, stereo");
        let pre_skip = usize::from(u16::from_le_bytes([head[10], head[11]]));
        assert!((1..2000).contains(&pre_skip), "pre-skip {pre_skip}");
        assert_eq!(u32::from_le_bytes([head[12], head[13], head[14], head[15]]), 48_000);
        let (vendor, _) = comments(&pk[1].data, b"OpusTags");
        assert_eq!(vendor, "Floe");
        // Final granule = pre-skip + exactly the samples handed in (end trim).
        assert_eq!(pk.last().expect("packets").granule, (pre_skip + 96_000) as u64);

        let audio: Vec<&[u8]> = pk[2..].iter().map(|p| p.data.as_slice()).collect();
        assert_eq!(audio.len(), (96_000 + pre_skip).div_ceil(960));
        let (samples, rms) = decode_rms(&audio, 2, pre_skip);
        assert!(samples >= 96_000 + pre_skip);
        assert!((0.25..0.45).contains(&rms), "decoded sine RMS {rms}");
    }

    #[test]
    fn set_title_chains_a_new_link() {
        let mut enc = new_encoder(&spec(Codec::Opus, 64, 48_000, 1)).expect("encoder");
        let pcm = sine(48_000, 1, 2.0);
        let mut out = Vec::new();
        enc.encode(&pcm[..48_500], &mut out).expect("encode");
        let mut title_bytes = Vec::new();
        enc.set_title(Some("Artist"), "Song", &mut title_bytes).expect("title");
        let pg = pages(&title_bytes);
        assert!(pg.first().is_some_and(|p| p.eos), "set_title output starts by ending the link");
        assert!(pg.iter().any(|p| p.bos), "and begins a new one");
        out.extend_from_slice(&title_bytes);
        enc.encode(&pcm[48_500..], &mut out).expect("encode");
        enc.finish(&mut out).expect("finish");

        let pg = pages(&out);
        let bos: Vec<_> = pg.iter().filter(|p| p.bos).collect();
        assert_eq!(bos.len(), 2);
        assert_ne!(bos[0].serial, bos[1].serial);
        assert_eq!(pg.iter().filter(|p| p.eos).count(), 2);

        let pk = packets(&out);
        let second: Vec<_> = pk.iter().filter(|p| p.serial == bos[1].serial).collect();
        assert!(second[0].first && second[0].data.starts_with(b"OpusHead"));
        let (_, tags) = comments(&second[1].data, b"OpusTags");
        assert!(tags.contains(&"TITLE=Song".to_owned()) && tags.contains(&"ARTIST=Artist".to_owned()), "{tags:?}");
        // Granules restart in the new link and end at pre-skip + its samples.
        let pre_skip = u64::from(u16::from_le_bytes([second[0].data[10], second[0].data[11]]));
        assert!(second[2].granule <= 5 * 960);
        let last = second.last().expect("packets");
        assert!(last.last && last.granule == pre_skip + (96_000 - 48_500));
        let first_last = pk.iter().rfind(|p| p.serial == bos[0].serial).expect("first link");
        assert_eq!(first_last.granule, pre_skip + 48_500);
    }

    #[test]
    fn webm_output_has_headers_and_ignores_titles() {
        use super::super::{Container, EncoderSpec};
        let spec = EncoderSpec { container: Container::WebM, ..spec(Codec::Opus, 64, 48_000, 2) };
        let mut enc = new_encoder(&spec).expect("encoder");
        let mut out = Vec::new();
        enc.encode(&sine(48_000, 2, 1.0), &mut out).expect("encode");
        assert!(out.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]), "EBML header first");
        assert!(out.windows(6).any(|w| w == b"A_OPUS"));
        let mut title = Vec::new();
        enc.set_title(None, "Song", &mut title).expect("title");
        assert!(title.is_empty(), "WebM carries no in-band titles");
        let before = out.len();
        enc.finish(&mut out).expect("finish");
        assert!(out.len() > before, "the tail is flushed as a last cluster");
    }
}
