//! MP3 and Ogg decoding through symphonia's format readers.
//!
//! Symphonia 0.6 behaviour this module works around (checked against the 0.6.1 sources):
//! * `OggReader` follows chains itself: on a new beginning-of-stream page it rebuilds its track
//!   list and returns `Error::ResetRequired`, after which we pick the audio track again and build
//!   a fresh decoder. It also demuxes Opus (track codec `CODEC_ID_OPUS`, `OpusHead` as extra
//!   data) although symphonia has no Opus decoder, so Opus packets go to [`OpusDecoder`].
//! * `MpaReader` does not notice sample-rate or channel changes; `MpaDecoder` then rejects every
//!   packet ("invalid audio buffer signal spec"). We watch the frame headers ourselves and
//!   rebuild the decoder when two consecutive frames agree on new parameters.
//! * The MP3 decoder is built with `gapless = false`: `MpaReader` trims packets against the frame
//!   count of a Xing/LAME tag, which on a live stream (or a stream made of concatenated files)
//!   would silently drop everything after the first file's length. Ogg keeps gapless trimming,
//!   which comes from page granule positions and is exact even for chains.

use std::sync::atomic::{AtomicU64, Ordering};

use symphonia::core::codecs::audio::well_known::{CODEC_ID_MP3, CODEC_ID_OPUS};
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::packet::Packet;
use symphonia::default::formats::{MpaReader, OggReader};

use super::opus::OpusDecoder;
use super::{classify, emit, DecodeError, DecodeStats, ErrorStreak, Pcm, ReaderError};

/// Makes a symphonia decoder, mapping failure to [`DecodeError::Unsupported`]. With `gapless`,
/// the decoder honours the packets' trim (encoder delay/padding) information.
pub(super) fn make_decoder(params: &AudioCodecParameters, gapless: bool) -> Result<Box<dyn AudioDecoder>, DecodeError> {
    symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default().gapless(gapless))
        .map_err(|e| DecodeError::Unsupported(e.to_string()))
}

/// Decodes one packet with a symphonia decoder; returns whether it decoded.
pub(super) fn decode_packet(decoder: &mut dyn AudioDecoder, packet: &Packet, on_pcm: &mut dyn FnMut(Pcm)) -> bool {
    match decoder.decode(packet) {
        Ok(buf) => {
            emit(&buf, on_pcm);
            true
        }
        Err(_) => false,
    }
}

/// What a format reader produced next.
enum Next {
    Packet(Packet),
    /// The reader switched to a new stream (Ogg chain): rebuild the decoder.
    Reset,
    End,
}

/// Reads the next packet, skipping (and counting) malformed data.
fn next_packet(
    reader: &mut dyn FormatReader,
    stats: &mut DecodeStats,
    streak: &mut ErrorStreak,
) -> Result<Next, DecodeError> {
    loop {
        match reader.next_packet() {
            Ok(Some(packet)) => return Ok(Next::Packet(packet)),
            Ok(None) => return Ok(Next::End),
            Err(e) => match classify(e) {
                ReaderError::End => return Ok(Next::End),
                ReaderError::Fatal(e) => return Err(e),
                ReaderError::Reset => return Ok(Next::Reset),
                ReaderError::Skip => {
                    stats.corrupt_packets += 1;
                    streak.fail()?;
                }
            },
        }
    }
}

/// Opens a format reader; an input that ends before the first frame is not an error.
fn open<R>(opened: Result<R, SymphoniaError>, what: &str) -> Result<Option<R>, DecodeError> {
    match opened {
        Ok(reader) => Ok(Some(reader)),
        Err(e) => match classify(e) {
            ReaderError::End => Ok(None),
            ReaderError::Fatal(e) => Err(e),
            ReaderError::Reset | ReaderError::Skip => {
                Err(DecodeError::Unsupported(format!("not a valid {what} stream")))
            }
        },
    }
}

/// The parameters of an MPEG audio frame that require a new decoder when they change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MpaSpec(u32);

impl MpaSpec {
    /// Extracts version, layer, sample-rate index and mono/stereo from a frame header.
    ///
    /// Stereo, joint stereo and dual channel all decode to two channels and may alternate frame
    /// by frame, so only "mono or not" is part of the spec.
    fn of(frame: &[u8]) -> Option<Self> {
        let header = u32::from_be_bytes(frame.get(..4)?.try_into().ok()?);
        let mono = u32::from((header >> 6) & 0b11 == 0b11);
        Some(Self((header & 0x001e_0c00) | mono))
    }

    fn is_layer3(self) -> bool {
        (self.0 >> 17) & 0b11 == 0b01
    }
}

/// Decodes an MP3 stream.
pub(super) fn run_mp3(
    mss: MediaSourceStream<'static>,
    stats: &mut DecodeStats,
    on_pcm: &mut dyn FnMut(Pcm),
) -> Result<(), DecodeError> {
    let Some(mut reader) = open(MpaReader::try_new(mss, FormatOptions::default()), "MPEG audio")? else {
        return Ok(());
    };
    let params = reader
        .tracks()
        .first()
        .and_then(|t| t.codec_params.as_ref())
        .and_then(|p| p.audio())
        .cloned()
        .ok_or_else(|| DecodeError::Unsupported("MPEG audio stream without a track".into()))?;
    if params.codec != CODEC_ID_MP3 {
        return Err(DecodeError::Unsupported("MPEG audio layer I/II (only layer III is enabled)".into()));
    }
    let mut decoder = make_decoder(&params, false)?;
    let mut current: Option<MpaSpec> = None;
    // A frame with new parameters waits here until the next frame confirms them, so a false
    // sync inside junk cannot throw away the decoder state (and the bit reservoir).
    let mut pending: Option<(MpaSpec, Packet)> = None;
    let mut streak = ErrorStreak::default();

    loop {
        let packet = match next_packet(&mut reader, stats, &mut streak)? {
            Next::Packet(packet) => packet,
            // MpaReader never asks for a reset.
            Next::Reset => continue,
            Next::End => return Ok(()),
        };
        stats.packets += 1;
        let Some(spec) = MpaSpec::of(&packet.data).filter(|s| s.is_layer3()) else {
            stats.corrupt_packets += 1;
            streak.fail()?;
            continue;
        };
        let mut packets = Vec::with_capacity(2);
        match current {
            Some(cur) if cur != spec => match pending.take() {
                Some((candidate, first)) if candidate == spec => {
                    decoder = make_decoder(&params, false)?;
                    stats.resets += 1;
                    tracing::debug!(?spec, "MPEG audio parameters changed, decoder rebuilt");
                    current = Some(spec);
                    packets.push(first);
                    packets.push(packet);
                }
                stale => {
                    if stale.is_some() {
                        stats.corrupt_packets += 1;
                        streak.fail()?;
                    }
                    pending = Some((spec, packet));
                }
            },
            _ => {
                if pending.take().is_some() {
                    stats.corrupt_packets += 1;
                }
                current = Some(spec);
                packets.push(packet);
            }
        }
        for packet in &packets {
            if decode_packet(&mut *decoder, packet, on_pcm) {
                streak.ok();
            } else {
                stats.corrupt_packets += 1;
                streak.fail()?;
            }
        }
    }
}

/// The decoder for the selected track of an Ogg stream.
enum TrackDecoder {
    Symphonia(Box<dyn AudioDecoder>),
    Opus(OpusDecoder),
}

impl TrackDecoder {
    fn decode(&mut self, packet: &Packet, on_pcm: &mut dyn FnMut(Pcm)) -> bool {
        match self {
            Self::Symphonia(decoder) => decode_packet(&mut **decoder, packet, on_pcm),
            Self::Opus(decoder) => decoder.decode(&packet.data, packet.trim_end.get() as usize, on_pcm),
        }
    }
}

/// Picks the audio track of the current (chain link of the) Ogg stream and builds its decoder.
fn select_track(reader: &OggReader<'_>) -> Result<(u32, TrackDecoder), DecodeError> {
    let track = reader
        .default_track(TrackType::Audio)
        .ok_or_else(|| DecodeError::Unsupported("no known audio codec in the Ogg stream".into()))?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| DecodeError::Unsupported("Ogg audio track without codec parameters".into()))?;
    let decoder = if params.codec == CODEC_ID_OPUS {
        let head = params.extra_data.as_deref().unwrap_or_default();
        TrackDecoder::Opus(OpusDecoder::new(head)?)
    } else {
        TrackDecoder::Symphonia(make_decoder(params, true)?)
    };
    Ok((track.id, decoder))
}

/// Decodes an Ogg stream (Vorbis, FLAC or Opus; chained streams are followed).
///
/// `dropped` counts the junk runs and damaged pages the page filter in front of the reader
/// removed; they are added to `corrupt_packets`.
pub(super) fn run_ogg(
    mss: MediaSourceStream<'static>,
    dropped: &AtomicU64,
    stats: &mut DecodeStats,
    on_pcm: &mut dyn FnMut(Pcm),
) -> Result<(), DecodeError> {
    let Some(mut reader) = open(OggReader::try_new(mss, FormatOptions::default()), "Ogg")? else {
        return Ok(());
    };
    let (mut track_id, mut decoder) = select_track(&reader)?;
    let mut streak = ErrorStreak::default();

    loop {
        let next = next_packet(&mut reader, stats, &mut streak)?;
        stats.corrupt_packets += dropped.swap(0, Ordering::Relaxed);
        let packet = match next {
            Next::Packet(packet) => packet,
            Next::Reset => {
                // A new chain link (beginning-of-stream page): new codec setup, maybe a new codec.
                (track_id, decoder) = select_track(&reader)?;
                stats.resets += 1;
                tracing::debug!("chained Ogg stream, decoder rebuilt");
                continue;
            }
            Next::End => return Ok(()),
        };
        if packet.track_id != track_id {
            continue;
        }
        stats.packets += 1;
        if decoder.decode(&packet, on_pcm) {
            streak.ok();
        } else {
            stats.corrupt_packets += 1;
            streak.fail()?;
        }
    }
}
