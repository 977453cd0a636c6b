//! MP3 and Ogg decoding with symphonia's decoders (and its Ogg demuxer).
//!
//! Symphonia 0.6 behaviour this module works around (checked against the 0.6.1 sources):
//! * `OggReader` follows chains itself: on a new beginning-of-stream page it rebuilds its track
//!   list and returns `Error::ResetRequired`, after which we pick the audio track again and build
//!   a fresh decoder. It also demuxes Opus (track codec `CODEC_ID_OPUS`, `OpusHead` as extra
//!   data) although symphonia has no Opus decoder, so Opus packets go to [`OpusDecoder`].
//! * MP3 frames go to `MpaDecoder` without symphonia's `MpaReader`: the mount has cut them
//!   already. The decoder cannot follow a change of sample rate or channel count (it rejects
//!   every later packet), so it is rebuilt whenever a frame's parameters change. A new version,
//!   layer or rate only gets through once the mount's framer has locked onto two agreeing
//!   frames; mono and stereo may alternate frame by frame (concatenated files do).
//! * The MP3 decoder is built with `gapless = false`: a Xing/LAME tag's frame count describes
//!   one file, and a live stream (or a stream made of concatenated files) goes on past it. The
//!   tag frames themselves are dropped, as `MpaReader` drops them. Ogg keeps gapless trimming,
//!   which comes from page granule positions and is exact even for chains.

use symphonia::core::codecs::audio::well_known::{CODEC_ID_MP3, CODEC_ID_OPUS};
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::packet::Packet;
use symphonia::core::units::{Duration, Timestamp};
use symphonia::default::formats::OggReader;

use super::opus::OpusDecoder;
use super::{classify, emit, DecodeError, DecodeStats, ErrorStreak, Frames, Pcm, ReaderError};

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

    fn is_mpeg1(self) -> bool {
        (self.0 >> 19) & 0b11 == 0b11
    }

    fn is_mono(self) -> bool {
        self.0 & 1 == 1
    }

    /// Samples per channel in one layer III frame.
    fn frame_samples(self) -> u64 {
        if self.is_mpeg1() {
            1152
        } else {
            576
        }
    }
}

/// Whether a layer III frame is a Xing/Info or VBRI tag rather than audio: the tag's name right
/// after the (all-zero) side information, or at the fixed VBRI offset.
fn is_tag_frame(frame: &[u8], spec: MpaSpec) -> bool {
    let side_info = match (spec.is_mpeg1(), spec.is_mono()) {
        (true, false) => 32,
        (true, true) | (false, false) => 17,
        (false, true) => 9,
    };
    let crc = if frame.get(1).is_some_and(|b| b & 1 == 0) { 2 } else { 0 };
    let at = 4 + side_info;
    let xing = matches!(frame.get(at..at + 4), Some(b"Xing" | b"Info"))
        && frame.get(4 + crc..at).is_some_and(|side| side.iter().all(|&b| b == 0));
    xing || frame.get(36..40) == Some(b"VBRI")
}

/// Decodes the MP3 frames the mount cut.
pub(super) fn run_mp3(
    mut frames: impl Frames,
    stats: &mut DecodeStats,
    on_pcm: &mut dyn FnMut(Pcm),
) -> Result<(), DecodeError> {
    let mut params = AudioCodecParameters::new();
    params.for_codec(CODEC_ID_MP3);
    let mut current: Option<(MpaSpec, Box<dyn AudioDecoder>)> = None;
    let mut streak = ErrorStreak::default();
    let mut ts: i64 = 0;

    while let Some(frame) = frames.next_frame()? {
        stats.packets += 1;
        let Some(spec) = MpaSpec::of(&frame) else {
            stats.corrupt_packets += 1;
            streak.fail()?;
            continue;
        };
        if !spec.is_layer3() {
            if current.is_none() {
                return Err(DecodeError::Unsupported("MPEG audio layer I/II (only layer III is enabled)".into()));
            }
            stats.corrupt_packets += 1;
            streak.fail()?;
            continue;
        }
        if is_tag_frame(&frame, spec) {
            continue;
        }
        let decoder = match &mut current {
            Some((cur, decoder)) if *cur == spec => decoder,
            slot => {
                if slot.is_some() {
                    stats.resets += 1;
                    tracing::debug!(?spec, "MPEG audio parameters changed, decoder rebuilt");
                }
                &mut slot.insert((spec, make_decoder(&params, false)?)).1
            }
        };
        let duration = spec.frame_samples();
        let packet = Packet::new(0, Timestamp::new(ts), Duration::new(duration), &frame[..]);
        ts = ts.saturating_add(duration as i64);
        if decode_packet(&mut **decoder, &packet, on_pcm) {
            streak.ok();
        } else {
            stats.corrupt_packets += 1;
            streak.fail()?;
        }
    }
    Ok(())
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
pub(super) fn run_ogg(
    mss: MediaSourceStream<'static>,
    stats: &mut DecodeStats,
    on_pcm: &mut dyn FnMut(Pcm),
) -> Result<(), DecodeError> {
    let Some(mut reader) = open(OggReader::try_new(mss, FormatOptions::default()), "Ogg")? else {
        return Ok(());
    };
    let (mut track_id, mut decoder) = select_track(&reader)?;
    let mut streak = ErrorStreak::default();

    loop {
        let packet = match next_packet(&mut reader, stats, &mut streak)? {
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
