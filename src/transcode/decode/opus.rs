//! Opus decoding (libopus through the `opus` crate) for the Opus streams of an Ogg source
//! (symphonia has no Opus decoder).
//!
//! Ogg Opus quirks handled here (RFC 7845):
//! * output is always 48 kHz, whatever "input sample rate" the `OpusHead` advertises;
//! * the first `pre_skip` samples of a stream are encoder warm-up and must be discarded;
//! * `OpusHead` carries an output gain (Q7.8 dB) that players must apply.

use opus::{Channels, Decoder};

use super::{DecodeError, Pcm};

/// Ogg Opus always decodes at 48 kHz.
const OPUS_RATE: u32 = 48_000;
/// The longest Opus packet is 120 ms.
const MAX_FRAMES_PER_PACKET: usize = 120 * 48;

/// A libopus decoder for one Ogg Opus stream (one chain link).
pub(super) struct OpusDecoder {
    decoder: Decoder,
    channels: u8,
    /// Samples per channel still to drop from the start of the stream.
    pre_skip: usize,
    buf: Vec<f32>,
}

/// The fields of an `OpusHead` identification header we need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpusHead {
    channels: u8,
    pre_skip: u16,
    output_gain: i16,
}

impl OpusHead {
    /// Parses `OpusHead`: magic, version, channel count, pre-skip (LE u16), input rate (LE u32),
    /// output gain (LE i16), channel mapping family.
    fn parse(head: &[u8]) -> Option<Self> {
        if head.len() < 19 || !head.starts_with(b"OpusHead") || head[8] >> 4 != 0 {
            return None;
        }
        Some(Self {
            channels: head[9],
            pre_skip: u16::from_le_bytes([head[10], head[11]]),
            output_gain: i16::from_le_bytes([head[16], head[17]]),
        })
    }
}

impl OpusDecoder {
    /// Creates a decoder from the stream's `OpusHead` packet.
    pub(super) fn new(head: &[u8]) -> Result<Self, DecodeError> {
        let head = OpusHead::parse(head).ok_or_else(|| DecodeError::Unsupported("invalid OpusHead".into()))?;
        // Mapping family 0 (and family 1 with one or two channels) is a single Opus stream; more
        // channels need libopus' multistream API, which the `opus` crate does not wrap.
        let channels = match head.channels {
            1 => Channels::Mono,
            2 => Channels::Stereo,
            n => return Err(DecodeError::Unsupported(format!("Opus with {n} channels"))),
        };
        let mut decoder = Decoder::new(OPUS_RATE, channels).map_err(|e| DecodeError::Unsupported(e.to_string()))?;
        if head.output_gain != 0 {
            // Both are Q7.8 dB, so the header value can be passed straight through.
            decoder.set_gain(i32::from(head.output_gain)).map_err(|e| DecodeError::Unsupported(e.to_string()))?;
        }
        Ok(Self {
            decoder,
            channels: head.channels,
            pre_skip: usize::from(head.pre_skip),
            buf: vec![0.0; MAX_FRAMES_PER_PACKET * usize::from(head.channels)],
        })
    }

    /// Samples per channel still to be dropped from the start; before the first packet, the
    /// stream's whole pre-skip (which its granule positions count).
    pub(super) fn pre_skip(&self) -> usize {
        self.pre_skip
    }

    /// Decodes one packet, emitting its audio minus pre-skip; returns whether it decoded.
    pub(super) fn decode(&mut self, packet: &[u8], on_pcm: &mut dyn FnMut(Pcm)) -> bool {
        // An empty packet would mean "conceal a lost packet" to libopus; in Ogg it is just junk.
        if packet.is_empty() {
            return false;
        }
        let frames = match self.decoder.decode_float(packet, &mut self.buf, false) {
            Ok(frames) => frames,
            Err(_) => return false,
        };
        let skip = self.pre_skip.min(frames);
        self.pre_skip -= skip;
        if frames > skip {
            let ch = usize::from(self.channels);
            let mut samples = self.buf[skip * ch..frames * ch].to_vec();
            super::sanitize(&mut samples);
            on_pcm(Pcm { sample_rate: OPUS_RATE, channels: self.channels, samples });
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_opus_head() {
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 2, 0x38, 0x01, 0x44, 0xac, 0, 0, 0x00, 0xff, 0]);
        assert_eq!(OpusHead::parse(&head), Some(OpusHead { channels: 2, pre_skip: 312, output_gain: -256 }));
        assert_eq!(OpusHead::parse(&head[..18]), None);
        head[8] = 0x10; // major version 1 is incompatible
        assert_eq!(OpusHead::parse(&head), None);
    }

    #[test]
    fn rejects_multichannel_and_garbage() {
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 6, 0, 0, 0x80, 0xbb, 0, 0, 0, 0, 1]);
        assert!(matches!(OpusDecoder::new(&head), Err(DecodeError::Unsupported(_))));
        head[9] = 1;
        let mut decoder = OpusDecoder::new(&head).expect("mono decoder");
        let mut blocks = 0;
        assert!(!decoder.decode(&[], &mut |_| blocks += 1));
        // TOC code 3 with a frame count of 0 is invalid.
        assert!(!decoder.decode(&[0x03, 0x00], &mut |_| blocks += 1));
        assert_eq!(blocks, 0);
    }
}
