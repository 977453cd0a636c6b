//! AAC in ADTS: the mount's frames feeding symphonia's `AacDecoder`.
//!
//! Each frame's header is read (with the framer's parser) for what the decoder needs: where
//! the payload starts and the stream parameters. symphonia's `AdtsReader` only reads the first
//! header, so a mid-stream change of sample rate or channel layout would go unnoticed and be
//! decoded with the wrong tables; reading every header lets us rebuild the decoder whenever a
//! frame announces new parameters.

use symphonia::core::audio::layouts::{CHANNEL_LAYOUT_MONO, CHANNEL_LAYOUT_STEREO};
use symphonia::core::codecs::audio::well_known::CODEC_ID_AAC;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder};
use symphonia::core::packet::Packet;
use symphonia::core::units::{Duration, Timestamp};

use super::symphonia::{decode_packet, make_decoder};
use super::{DecodeError, DecodeStats, ErrorStreak, Frames, Pcm};
use crate::format::AdtsHeader;

/// Samples per channel in an AAC-LC frame.
const FRAME_SAMPLES: u64 = 1024;
/// How many consecutive frames with undecodable parameters make the stream unsupported.
const UNSUPPORTED_LIMIT: u32 = 32;

/// What a decoder is built for: the header fields that change the decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AdtsSpec {
    /// `profile_ObjectType`: 0 = Main, 1 = LC, 2 = SSR.
    profile: u8,
    sample_rate: u32,
    channel_config: u8,
}

impl AdtsSpec {
    fn of(header: &AdtsHeader) -> AdtsSpec {
        AdtsSpec { profile: header.profile, sample_rate: header.sample_rate, channel_config: header.channel_config }
    }
}

/// A decoder, or why the stream's parameters cannot be decoded.
type MaybeDecoder = Result<Box<dyn AudioDecoder>, String>;

/// Builds an AAC-LC decoder for the parameters of an ADTS header.
fn make_aac_decoder(spec: AdtsSpec) -> Result<Box<dyn AudioDecoder>, DecodeError> {
    if spec.profile != 1 {
        return Err(DecodeError::Unsupported(format!("AAC profile {} (only LC is supported)", spec.profile)));
    }
    let channels = match spec.channel_config {
        1 => CHANNEL_LAYOUT_MONO,
        2 => CHANNEL_LAYOUT_STEREO,
        // 0 means "described by an in-band PCE"; 3+ are multichannel: symphonia handles neither.
        n => return Err(DecodeError::Unsupported(format!("AAC channel configuration {n}"))),
    };
    let mut params = AudioCodecParameters::new();
    params.for_codec(CODEC_ID_AAC).with_sample_rate(spec.sample_rate).with_channels(channels);
    make_decoder(&params, false)
}

/// Decodes the ADTS frames the mount cut.
pub(super) fn run(
    mut frames: impl Frames,
    stats: &mut DecodeStats,
    on_pcm: &mut dyn FnMut(Pcm),
) -> Result<(), DecodeError> {
    // The parameters of the current decoder, and the decoder (or why there is none).
    let mut current: Option<(AdtsSpec, MaybeDecoder)> = None;
    let mut unsupported_run = 0;
    let mut streak = ErrorStreak::default();
    let mut ts: i64 = 0;

    while let Some(frame) = frames.next_frame()? {
        stats.packets += 1;
        // The mount only hands on frames whose header parses; anything else is not ADTS.
        let Some(header) =
            AdtsHeader::parse(&frame).filter(|h| h.frame_len == frame.len() && h.frame_len > h.header_len)
        else {
            stats.corrupt_packets += 1;
            streak.fail()?;
            continue;
        };
        let spec = AdtsSpec::of(&header);
        if current.as_ref().is_none_or(|(cur, _)| *cur != spec) {
            if current.is_some() {
                stats.resets += 1;
                tracing::debug!(?spec, "ADTS parameters changed, decoder rebuilt");
            }
            current = Some((spec, make_aac_decoder(spec).map_err(|e| e.to_string())));
        }
        let Some((_, decoder)) = current.as_mut() else { continue };
        let decoder = match decoder {
            Ok(decoder) => decoder,
            Err(why) => {
                // Tolerate a few (a false sync could claim odd parameters), not a whole stream.
                stats.corrupt_packets += 1;
                unsupported_run += 1;
                if unsupported_run >= UNSUPPORTED_LIMIT {
                    return Err(DecodeError::Unsupported(why.clone()));
                }
                continue;
            }
        };
        unsupported_run = 0;
        // symphonia only takes one raw data block per packet (the common case); frames with
        // several blocks carry their offsets in the CRC area and are skipped.
        let payload = &frame[header.header_len..];
        let packet = Packet::new(0, Timestamp::new(ts), Duration::new(FRAME_SAMPLES), payload);
        ts = ts.saturating_add(FRAME_SAMPLES as i64);
        if header.raw_blocks == 1 && decode_packet(&mut **decoder, &packet, on_pcm) {
            streak.ok();
        } else {
            stats.corrupt_packets += 1;
            streak.fail()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_by_the_framers_header() {
        // LC, 44.1 kHz (index 4), stereo, no CRC, frame length 371.
        let h = AdtsHeader::parse(&[0xff, 0xf1, 0x50, 0x80, 0x2e, 0x7f, 0xfc]).expect("valid header");
        assert_eq!(AdtsSpec::of(&h), AdtsSpec { profile: 1, sample_rate: 44100, channel_config: 2 });
        assert_eq!((h.header_len, h.frame_len, h.raw_blocks), (7, 371, 1));
        assert!(AdtsHeader::parse(&[0xff, 0xf3, 0x50, 0x80, 0x2e, 0x7f, 0xfc]).is_none(), "layer != 0");
        assert!(AdtsHeader::parse(&[0xff, 0xf1, 0x7c, 0x80, 0x2e, 0x7f, 0xfc]).is_none(), "rate index 15");
        assert!(AdtsHeader::parse(&[0xff, 0xf1, 0x50, 0x80, 0x00, 0x1f, 0xfc]).is_none(), "too short");
    }

    #[test]
    fn rejects_unsupported_profiles() {
        let spec = AdtsSpec { profile: 1, sample_rate: 48000, channel_config: 2 };
        assert!(make_aac_decoder(spec).is_ok());
        assert!(make_aac_decoder(AdtsSpec { profile: 0, ..spec }).is_err());
        assert!(make_aac_decoder(AdtsSpec { channel_config: 6, ..spec }).is_err());
    }
}
