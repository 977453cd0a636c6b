//! Ogg decoding from the pages the mount cut: packets are assembled here from
//! each page's lacing values, and the three audio mappings Floe decodes turn
//! them into decoders — Vorbis (Vorbis I §A), Opus (RFC 7845) and FLAC (the
//! Ogg FLAC mapping). The pages come from the mount's framer, whole and
//! CRC-checked, read with its own page parser (`format::ogg_pages`): nothing
//! here searches for pages or checks them again.
//!
//! A link of a chained stream is its beginning-of-stream pages and what
//! follows them; a beginning-of-stream page after data starts the next link,
//! whose audio stream gets a decoder of its own (the codec may change). Of a
//! multiplexed link (audio beside video, say) the first audio stream is
//! decoded and the rest ignored. At a link's last page the padding the
//! encoder added is cut, as the page's granule position says; a link's start
//! is taken as it comes (live streams begin wherever the source began).

use bytes::Bytes;
use symphonia::core::codecs::audio::well_known::{CODEC_ID_FLAC, CODEC_ID_VORBIS};
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder};
use symphonia::core::packet::Packet;
use symphonia::core::units::{Duration, Timestamp};

use super::opus::OpusDecoder;
use super::symphonia::{decode_packet, make_decoder};
use super::{vorbis_setup, DecodeError, DecodeStats, ErrorStreak, Frames, Pcm};
use crate::format::{
    ogg_codec, ogg_first_packet, ogg_pages, OggCodecKind, OggPage, OGG_FLAG_BOS, OGG_FLAG_CONTINUED, OGG_FLAG_EOS,
};

/// Largest packet assembled (real audio packets are a few KB, a Vorbis
/// setup header a few KB to tens of KB); a longer one is dropped.
const MAX_PACKET: usize = 1 << 20;
/// Header packets a FLAC stream of unknown header count may have.
const MAX_FLAC_HEADERS: usize = 64;
/// Pages of another stream after the decoded one ended, before giving up:
/// a new link's data whose headers never came.
const MAX_FOREIGN_PAGES: u32 = 16;

/// Decodes the Ogg pages `frames` yields (one page, or a unit of header
/// pages, at a time).
pub(super) fn run(
    mut frames: impl Frames,
    stats: &mut DecodeStats,
    on_pcm: &mut dyn FnMut(Pcm),
) -> Result<(), DecodeError> {
    let mut ogg = OggDecoder::default();
    while let Some(unit) = frames.next_frame()? {
        let pages = ogg_pages(&unit)
            .ok_or_else(|| DecodeError::Unsupported("the mount handed on a partial Ogg page".into()))?;
        for page in &pages {
            ogg.page(page, stats, on_pcm)?;
        }
    }
    Ok(())
}

/// Which mapping a stream uses, by the codec its first packet names (the
/// framer's identification, `format::ogg_codec`), and how many header
/// packets it has (`None`: FLAC that did not say; its headers end at the
/// first audio frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mapping {
    Vorbis,
    Opus,
    Flac,
}

impl Mapping {
    fn of(first: &[u8]) -> Option<(Mapping, Option<usize>)> {
        let codec = ogg_codec(first);
        let mapping = match codec.kind? {
            OggCodecKind::Vorbis => Mapping::Vorbis,
            OggCodecKind::Opus => Mapping::Opus,
            OggCodecKind::Flac => Mapping::Flac,
            OggCodecKind::Theora | OggCodecKind::Speex => return None,
        };
        Some((mapping, codec.headers.map(|n| n as usize)))
    }
}

/// Where in the stream the decoder is.
#[derive(Default)]
struct OggDecoder {
    /// The audio stream of the current link, once its first page was seen.
    stream: Option<Stream>,
    /// A page other than a beginning-of-stream one came since the last of
    /// those: the next one starts a new link.
    in_data: bool,
    /// Pages of another stream since the decoded one ended.
    foreign_after_end: u32,
    streak: ErrorStreak,
}

impl OggDecoder {
    fn page(
        &mut self,
        page: &OggPage<'_>,
        stats: &mut DecodeStats,
        on_pcm: &mut dyn FnMut(Pcm),
    ) -> Result<(), DecodeError> {
        if page.flags & OGG_FLAG_BOS != 0 {
            self.foreign_after_end = 0;
            if std::mem::take(&mut self.in_data) && self.stream.take().is_some() {
                stats.resets += 1;
                tracing::debug!("chained Ogg stream, decoder rebuilt");
            }
            if self.stream.is_none() {
                let first = ogg_first_packet(page.table, page.body);
                self.stream = Mapping::of(first).map(|mapping| Stream::new(page.serial, mapping));
            }
        } else {
            self.in_data = true;
            if self.stream.is_none() {
                return Err(DecodeError::Unsupported("no known audio codec in the Ogg stream".into()));
            }
        }
        match &mut self.stream {
            Some(stream) if stream.serial == page.serial => stream.page(page, stats, &mut self.streak, on_pcm),
            Some(stream) if stream.ended => {
                // Data of a stream whose beginning never came (the framer
                // gave up on a link's headers): it cannot be decoded, and
                // quietly ignoring it would leave the renditions silent.
                self.foreign_after_end += 1;
                if self.foreign_after_end > MAX_FOREIGN_PAGES {
                    return Err(DecodeError::Unsupported("the Ogg stream went on without its headers".into()));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// One logical stream: its packets as they complete, its headers until the
/// decoder can be built, then its audio.
struct Stream {
    serial: u32,
    mapping: Mapping,
    /// Header packets expected (see `Mapping::of`).
    header_count: Option<usize>,
    headers: Vec<Bytes>,
    decoder: Option<LinkDecoder>,
    /// The packet being assembled.
    packet: Vec<u8>,
    /// The current packet's start was lost (a page missing, or too long):
    /// its remaining segments are dropped.
    skipping: bool,
    /// Frames put out so far, for the end trim.
    position: u64,
    /// The sequence number the next page should have.
    next_sequence: Option<u32>,
    /// Its last page has come.
    ended: bool,
}

impl Stream {
    fn new(serial: u32, (mapping, header_count): (Mapping, Option<usize>)) -> Stream {
        Stream {
            serial,
            mapping,
            header_count,
            headers: Vec::new(),
            decoder: None,
            packet: Vec::new(),
            skipping: false,
            position: 0,
            next_sequence: None,
            ended: false,
        }
    }

    fn page(
        &mut self,
        page: &OggPage<'_>,
        stats: &mut DecodeStats,
        streak: &mut ErrorStreak,
        on_pcm: &mut dyn FnMut(Pcm),
    ) -> Result<(), DecodeError> {
        // A gap in the sequence: the framer dropped pages (a bad CRC) between.
        let gap = self.next_sequence.is_some_and(|next| next != page.sequence);
        self.next_sequence = Some(page.sequence.wrapping_add(1));
        let continued = page.flags & OGG_FLAG_CONTINUED != 0;
        let mut lost = false;
        if (gap || !continued) && !self.packet.is_empty() {
            // The rest of a packet never came.
            self.packet.clear();
            lost = true;
        }
        if gap || !continued {
            // An oversized packet being skipped (counted already) ends here.
            self.skipping = false;
        }
        if continued && self.packet.is_empty() && !self.skipping {
            // A continuation whose start we never had.
            self.skipping = true;
            lost = true;
        }
        if lost {
            stats.corrupt_packets += 1;
            streak.fail()?;
        }
        if page.flags & OGG_FLAG_EOS != 0 {
            self.ended = true;
        }
        let last_end = page.table.iter().rposition(|&lace| lace < 255);
        let mut at = 0;
        for (i, &lace) in page.table.iter().enumerate() {
            let segment = page.body.get(at..at + usize::from(lace)).unwrap_or_default();
            at += usize::from(lace);
            if !self.skipping {
                self.packet.extend_from_slice(segment);
                if self.packet.len() > MAX_PACKET {
                    self.packet = Vec::new();
                    self.skipping = true;
                    stats.corrupt_packets += 1;
                    streak.fail()?;
                }
            }
            if lace == 255 {
                continue;
            }
            if std::mem::take(&mut self.skipping) {
                continue;
            }
            let packet = Bytes::from(std::mem::take(&mut self.packet));
            let link_end = page.flags & OGG_FLAG_EOS != 0 && Some(i) == last_end;
            self.packet(packet, link_end.then_some(page.granule), stats, streak, on_pcm)?;
        }
        Ok(())
    }

    /// One whole packet; `end_granule` is the link's final granule position
    /// when this is its last packet.
    fn packet(
        &mut self,
        packet: Bytes,
        end_granule: Option<u64>,
        stats: &mut DecodeStats,
        streak: &mut ErrorStreak,
        on_pcm: &mut dyn FnMut(Pcm),
    ) -> Result<(), DecodeError> {
        if self.decoder.is_none() {
            let first_frame =
                self.mapping == Mapping::Flac && self.header_count.is_none() && packet.starts_with(&[0xFF]);
            if !first_frame {
                return self.header(packet);
            }
            self.decoder = Some(self.build()?);
        }
        let Some(decoder) = &mut self.decoder else { return Ok(()) };
        if packet.is_empty() {
            // Carries nothing (ffmpeg ends an Ogg FLAC stream with one).
            return Ok(());
        }
        stats.packets += 1;
        // Padding is cut only where the granule says there is some (FLAC
        // frames carry their exact length; an EOS page with no packet on it
        // cuts nothing).
        let mut budget = end_granule
            .filter(|_| self.mapping != Mapping::Flac)
            .and_then(|granule| granule.checked_sub(decoder.granule_origin + self.position));
        let mut put_out = 0u64;
        let decoded = decoder.decode(&packet, self.position, &mut |mut pcm| {
            let frames = pcm.frames() as u64;
            put_out += frames;
            if let Some(left) = &mut budget {
                let keep = frames.min(*left);
                pcm.samples.truncate(keep as usize * usize::from(pcm.channels));
                *left -= keep;
            }
            if !pcm.samples.is_empty() {
                on_pcm(pcm);
            }
        });
        self.position += put_out;
        if decoded {
            streak.ok();
            Ok(())
        } else {
            stats.corrupt_packets += 1;
            streak.fail()
        }
    }

    /// Keep a header packet; with the last one, build the decoder.
    fn header(&mut self, packet: Bytes) -> Result<(), DecodeError> {
        if self.headers.len() >= MAX_FLAC_HEADERS {
            return Err(DecodeError::Unsupported("an Ogg FLAC stream with no audio after 64 header packets".into()));
        }
        self.headers.push(packet);
        if Some(self.headers.len()) == self.header_count {
            self.decoder = Some(self.build()?);
        }
        Ok(())
    }

    fn build(&mut self) -> Result<LinkDecoder, DecodeError> {
        let headers = std::mem::take(&mut self.headers);
        let unsupported = |what: &str| DecodeError::Unsupported(what.to_string());
        let decoder = match self.mapping {
            Mapping::Vorbis => {
                let [ident, _comment, setup] = &headers[..] else { return Err(unsupported("Vorbis headers missing")) };
                if !setup.starts_with(b"\x05vorbis") {
                    return Err(unsupported("Vorbis setup header missing"));
                }
                // A hostile setup must not reach the decoder (see `vorbis_setup`).
                vorbis_setup::check(setup).map_err(DecodeError::Unsupported)?;
                let mut params = AudioCodecParameters::new();
                params.for_codec(CODEC_ID_VORBIS).with_extra_data([&ident[..], &setup[..]].concat().into_boxed_slice());
                LinkDecoder::symphonia(&params)?
            }
            Mapping::Opus => {
                let head = headers.first().ok_or_else(|| unsupported("OpusHead missing"))?;
                let decoder = OpusDecoder::new(head)?;
                // Opus granule positions count the pre-skip the decoder drops.
                LinkDecoder { granule_origin: decoder.pre_skip() as u64, kind: Kind::Opus(decoder) }
            }
            Mapping::Flac => {
                // "\x7fFLAC", version, header count, "fLaC", then the
                // STREAMINFO block: its 4-byte header and 34 bytes.
                let streaminfo = headers
                    .first()
                    .and_then(|first| first.get(13..17).zip(first.get(17..17 + 34)))
                    .filter(|(block, _)| block[0] & 0x7F == 0)
                    .map(|(_, info)| info)
                    .ok_or_else(|| unsupported("Ogg FLAC without a STREAMINFO block"))?;
                let mut params = AudioCodecParameters::new();
                params.for_codec(CODEC_ID_FLAC).with_extra_data(Box::from(streaminfo));
                LinkDecoder::symphonia(&params)?
            }
        };
        Ok(decoder)
    }
}

/// A link's decoder, and where its granule positions start counting.
struct LinkDecoder {
    granule_origin: u64,
    kind: Kind,
}

enum Kind {
    /// Vorbis and FLAC.
    Symphonia(Box<dyn AudioDecoder>),
    /// libopus, which symphonia does not have.
    Opus(OpusDecoder),
}

impl LinkDecoder {
    fn symphonia(params: &AudioCodecParameters) -> Result<LinkDecoder, DecodeError> {
        // Gapless: a Vorbis decoder then puts out nothing for a link's first
        // packet, as the specification (and the granule positions) count.
        Ok(LinkDecoder { granule_origin: 0, kind: Kind::Symphonia(make_decoder(params, true)?) })
    }

    /// Decode one packet; returns whether it decoded.
    fn decode(&mut self, packet: &[u8], position: u64, on_pcm: &mut dyn FnMut(Pcm)) -> bool {
        match &mut self.kind {
            Kind::Symphonia(decoder) => {
                let ts = Timestamp::new(i64::try_from(position).unwrap_or(i64::MAX));
                decode_packet(&mut **decoder, &Packet::new(0, ts, Duration::new(0), packet), on_pcm)
            }
            Kind::Opus(decoder) => decoder.decode(packet, on_pcm),
        }
    }
}
