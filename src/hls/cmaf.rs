//! CMAF (fragmented MP4) for one audio track, sans-IO: the init segment
//! (`ftyp` + `moov` with `mvex`) and media chunks (`moof` + `mdat`, with
//! `styp` in front of a segment's first chunk and an `emsg` carrying a title
//! when one changed). One set of these serves HLS and DASH alike.
//!
//! Boxes are written by hand: the handful a live audio track needs, with the
//! fields hls.js, dash.js, Safari and ffmpeg read (ISO/IEC 14496-12, CMAF
//! ISO/IEC 23000-19; `esds` from 14496-1, `dOps` from the Opus-in-ISOBMFF
//! spec).

/// Media timescale: every variant runs at 48 kHz, the grid all codecs share.
pub const TIMESCALE: u32 = 48_000;

/// What a track carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackCodec {
    /// AAC (LC or HE), with its AudioSpecificConfig.
    Aac { object_type: u8, config: Vec<u8> },
    /// Opus, with the encoder's pre-skip (48 kHz samples).
    Opus { pre_skip: u16 },
}

/// One audio track (a variant of the ladder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub codec: TrackCodec,
    pub channels: u8,
    /// Average bitrate in bit/s (for `esds`).
    pub bitrate: u32,
}

impl Track {
    /// AAC-LC at 48 kHz (`mp4a.40.2`).
    pub fn aac_lc(channels: u8, bitrate: u32) -> Track {
        let config = audio_specific_config(2, 3, channels, None);
        Track { codec: TrackCodec::Aac { object_type: 2, config }, channels, bitrate }
    }

    /// HE-AAC v1 at 48 kHz output (`mp4a.40.5`): SBR over a 24 kHz core,
    /// signalled explicitly.
    pub fn he_aac(channels: u8, bitrate: u32) -> Track {
        let config = audio_specific_config(5, 6, channels, Some(3));
        Track { codec: TrackCodec::Aac { object_type: 5, config }, channels, bitrate }
    }

    pub fn opus(channels: u8, bitrate: u32, pre_skip: u16) -> Track {
        Track { codec: TrackCodec::Opus { pre_skip }, channels, bitrate }
    }

    /// The RFC 6381 `CODECS` value.
    pub fn codecs(&self) -> String {
        match &self.codec {
            TrackCodec::Aac { object_type, .. } => format!("mp4a.40.{object_type}"),
            TrackCodec::Opus { .. } => "opus".to_string(),
        }
    }
}

/// AudioSpecificConfig: object type, sampling frequency index, channel
/// configuration; with `sbr` (explicit hierarchical signalling) the SBR
/// output rate's index and the AAC-LC core after it.
fn audio_specific_config(object_type: u8, rate_index: u8, channels: u8, sbr: Option<u8>) -> Vec<u8> {
    let mut bits = Bits::default();
    bits.put(u32::from(object_type), 5);
    bits.put(u32::from(rate_index), 4);
    bits.put(u32::from(channels), 4);
    if let Some(extension_index) = sbr {
        bits.put(u32::from(extension_index), 4);
        bits.put(2, 5); // the core: AAC-LC
    }
    bits.put(0, 3); // GASpecificConfig: 1024-sample frames, no core coder, no extension
    bits.finish()
}

/// MSB-first bit packing for small configs.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    len: usize,
}

impl Bits {
    fn put(&mut self, value: u32, n: usize) {
        for i in (0..n).rev() {
            if self.len.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if value >> i & 1 == 1 {
                let last = self.bytes.len() - 1;
                self.bytes[last] |= 0x80 >> (self.len % 8);
            }
            self.len += 1;
        }
    }

    fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Append a box: size, type, then what `body` writes.
fn boxed(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A full box: version and flags first.
fn full_box(out: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Vec<u8>)) {
    boxed(out, kind, |out| {
        out.extend_from_slice(&((u32::from(version) << 24) | flags).to_be_bytes());
        body(out);
    });
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// The init segment of `track`.
pub fn init_segment(track: &Track) -> Vec<u8> {
    let mut out = Vec::with_capacity(700);
    boxed(&mut out, b"ftyp", |out| {
        out.extend_from_slice(b"iso6");
        put_u32(out, 0);
        for brand in [b"iso6", b"cmfc", b"mp41", b"dash"] {
            out.extend_from_slice(brand);
        }
    });
    boxed(&mut out, b"moov", |out| {
        full_box(out, b"mvhd", 0, 0, |out| {
            out.extend_from_slice(&[0; 8]); // creation, modification
            put_u32(out, 1000);
            put_u32(out, 0); // duration: unknown (fragmented)
            put_u32(out, 0x0001_0000); // rate 1.0
            put_u16(out, 0x0100); // volume 1.0
            out.extend_from_slice(&[0; 10]);
            MATRIX.iter().for_each(|&m| put_u32(out, m));
            out.extend_from_slice(&[0; 24]);
            put_u32(out, 2); // next track id
        });
        boxed(out, b"trak", |out| {
            full_box(out, b"tkhd", 0, 0x3, |out| {
                out.extend_from_slice(&[0; 8]);
                put_u32(out, 1); // track id
                put_u32(out, 0);
                put_u32(out, 0); // duration
                out.extend_from_slice(&[0; 8]);
                put_u16(out, 0); // layer
                put_u16(out, 0); // alternate group
                put_u16(out, 0x0100); // volume
                put_u16(out, 0);
                MATRIX.iter().for_each(|&m| put_u32(out, m));
                put_u32(out, 0); // width
                put_u32(out, 0); // height
            });
            boxed(out, b"mdia", |out| {
                full_box(out, b"mdhd", 0, 0, |out| {
                    out.extend_from_slice(&[0; 8]);
                    put_u32(out, TIMESCALE);
                    put_u32(out, 0);
                    put_u16(out, 0x55C4); // "und"
                    put_u16(out, 0);
                });
                full_box(out, b"hdlr", 0, 0, |out| {
                    put_u32(out, 0);
                    out.extend_from_slice(b"soun");
                    out.extend_from_slice(&[0; 12]);
                    out.extend_from_slice(b"Floe audio\0");
                });
                boxed(out, b"minf", |out| {
                    full_box(out, b"smhd", 0, 0, |out| out.extend_from_slice(&[0; 4]));
                    boxed(out, b"dinf", |out| {
                        full_box(out, b"dref", 0, 0, |out| {
                            put_u32(out, 1);
                            full_box(out, b"url ", 0, 1, |_| {});
                        });
                    });
                    boxed(out, b"stbl", |out| {
                        full_box(out, b"stsd", 0, 0, |out| {
                            put_u32(out, 1);
                            sample_entry(out, track);
                        });
                        for kind in [b"stts", b"stsc", b"stco"] {
                            full_box(out, kind, 0, 0, |out| put_u32(out, 0));
                        }
                        full_box(out, b"stsz", 0, 0, |out| out.extend_from_slice(&[0; 8]));
                    });
                });
            });
        });
        boxed(out, b"mvex", |out| {
            full_box(out, b"trex", 0, 0, |out| {
                put_u32(out, 1); // track id
                put_u32(out, 1); // sample description index
                out.extend_from_slice(&[0; 12]); // default duration, size, flags
            });
        });
    });
    out
}

/// `mp4a` with `esds`, or `Opus` with `dOps`.
fn sample_entry(out: &mut Vec<u8>, track: &Track) {
    let kind = match track.codec {
        TrackCodec::Aac { .. } => b"mp4a",
        TrackCodec::Opus { .. } => b"Opus",
    };
    boxed(out, kind, |out| {
        out.extend_from_slice(&[0; 6]);
        put_u16(out, 1); // data reference index
        out.extend_from_slice(&[0; 8]);
        put_u16(out, u16::from(track.channels));
        put_u16(out, 16); // sample size
        put_u32(out, 0);
        put_u32(out, TIMESCALE << 16);
        match &track.codec {
            TrackCodec::Aac { config, .. } => esds(out, config, track.bitrate),
            TrackCodec::Opus { pre_skip } => boxed(out, b"dOps", |out| {
                out.push(0); // version
                out.push(track.channels);
                put_u16(out, *pre_skip);
                put_u32(out, TIMESCALE); // input sample rate
                put_u16(out, 0); // output gain
                out.push(0); // channel mapping family
            }),
        }
    });
}

/// The MPEG-4 elementary stream descriptor of an AAC track.
fn esds(out: &mut Vec<u8>, config: &[u8], bitrate: u32) {
    let descriptor = |out: &mut Vec<u8>, tag: u8, body: &[u8]| {
        out.push(tag);
        out.push(body.len() as u8);
        out.extend_from_slice(body);
    };
    let mut specific = Vec::new();
    descriptor(&mut specific, 0x05, config);
    let mut decoder = vec![0x40, 0x15, 0, 0x18, 0]; // AAC, audio stream, 6 KiB buffer
    decoder.extend_from_slice(&bitrate.to_be_bytes()); // max
    decoder.extend_from_slice(&bitrate.to_be_bytes()); // average
    decoder.extend_from_slice(&specific);
    let mut es = vec![0, 0, 0]; // ES id, flags
    descriptor(&mut es, 0x04, &decoder);
    descriptor(&mut es, 0x06, &[0x02]); // SL config: MP4
    full_box(out, b"esds", 0, 0, |out| descriptor(out, 0x03, &es));
}

/// A timed title for an `emsg` box: an ID3 tag at a presentation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Presentation time in `TIMESCALE` units.
    pub time: u64,
    pub id: u32,
    pub id3: Vec<u8>,
}

/// The event scheme hls.js and dash.js read ID3 titles from.
pub const ID3_SCHEME: &str = "https://aomedia.org/emsg/ID3";

/// One CMAF chunk: `moof` + `mdat` for `frames` (coded frames, each
/// `duration` long) starting at `base_time`; `segment_start` puts `styp` in
/// front, `event` an `emsg` before the `moof`.
pub fn chunk(
    sequence: u32,
    base_time: u64,
    duration: u32,
    frames: &[&[u8]],
    segment_start: bool,
    event: Option<&Event>,
) -> Vec<u8> {
    let payload: usize = frames.iter().map(|f| f.len()).sum();
    let mut out = Vec::with_capacity(payload + 120 + frames.len() * 8);
    if segment_start {
        boxed(&mut out, b"styp", |out| {
            out.extend_from_slice(b"msdh");
            put_u32(out, 0);
            for brand in [b"msdh", b"msix", b"cmfs"] {
                out.extend_from_slice(brand);
            }
        });
    }
    if let Some(event) = event {
        full_box(&mut out, b"emsg", 1, 0, |out| {
            put_u32(out, TIMESCALE);
            put_u64(out, event.time);
            put_u32(out, 0xFFFF_FFFF); // duration: until the next title
            put_u32(out, event.id);
            out.extend_from_slice(ID3_SCHEME.as_bytes());
            out.push(0);
            out.push(0); // value: empty
            out.extend_from_slice(&event.id3);
        });
    }
    let moof_start = out.len();
    let mut data_offset_at = 0;
    boxed(&mut out, b"moof", |out| {
        full_box(out, b"mfhd", 0, 0, |out| put_u32(out, sequence));
        boxed(out, b"traf", |out| {
            // default-base-is-moof: data offsets count from this moof.
            full_box(out, b"tfhd", 0, 0x02_0000, |out| put_u32(out, 1));
            full_box(out, b"tfdt", 1, 0, |out| put_u64(out, base_time));
            // data offset, sample durations and sizes present.
            full_box(out, b"trun", 0, 0x0301, |out| {
                put_u32(out, frames.len() as u32);
                data_offset_at = out.len();
                put_u32(out, 0);
                for frame in frames {
                    put_u32(out, duration);
                    put_u32(out, frame.len() as u32);
                }
            });
        });
    });
    let data_offset = (out.len() - moof_start + 8) as u32;
    out[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    boxed(&mut out, b"mdat", |out| frames.iter().for_each(|f| out.extend_from_slice(f)));
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Walk boxes at one level: (type, body).
    pub(crate) fn boxes(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 8 <= data.len() {
            let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
            assert!(size >= 8 && at + size <= data.len(), "box size {size} at {at}");
            out.push((data[at + 4..at + 8].try_into().unwrap(), &data[at + 8..at + size]));
            at += size;
        }
        assert_eq!(at, data.len(), "boxes fill the buffer");
        out
    }

    fn child<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> &'a [u8] {
        let mut here = data;
        for (depth, kind) in path.iter().enumerate() {
            let found = boxes(here).into_iter().find(|(k, _)| k == *kind).unwrap_or_else(|| panic!("no {kind:?}"));
            here = found.1;
            // Step over full-box headers and fixed fields to reach children.
            let skip = match **kind {
                [b'd', b'r', b'e', b'f'] | [b's', b't', b's', b'd'] => 8,
                _ => 0,
            };
            if depth + 1 < path.len() {
                here = &here[skip..];
            }
        }
        here
    }

    #[test]
    fn aac_configs_are_right() {
        assert_eq!(audio_specific_config(2, 3, 2, None), vec![0x11, 0x90]);
        assert_eq!(audio_specific_config(2, 4, 1, None), vec![0x12, 0x08]);
        // HE-AAC explicit: AOT 5, core 24 kHz (6), stereo, extension 48 kHz (3), core AOT 2.
        assert_eq!(audio_specific_config(5, 6, 2, Some(3)), vec![0x2B, 0x11, 0x88, 0x00]);
        assert_eq!(Track::aac_lc(2, 128_000).codecs(), "mp4a.40.2");
        assert_eq!(Track::he_aac(2, 48_000).codecs(), "mp4a.40.5");
        assert_eq!(Track::opus(2, 96_000, 312).codecs(), "opus");
    }

    #[test]
    fn init_segments_parse_back() {
        for track in [Track::aac_lc(2, 128_000), Track::opus(1, 64_000, 312)] {
            let init = init_segment(&track);
            let top: Vec<[u8; 4]> = boxes(&init).into_iter().map(|(k, _)| k).collect();
            assert_eq!(top, [*b"ftyp", *b"moov"]);
            let moov = child(&init, &[b"moov"]);
            let kinds: Vec<[u8; 4]> = boxes(moov).into_iter().map(|(k, _)| k).collect();
            assert_eq!(kinds, [*b"mvhd", *b"trak", *b"mvex"]);
            let mdhd = child(&init, &[b"moov", b"trak", b"mdia", b"mdhd"]);
            assert_eq!(u32::from_be_bytes(mdhd[12..16].try_into().unwrap()), TIMESCALE);
            let stsd = child(&init, &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"]);
            let entry = &boxes(&stsd[8..])[0];
            match track.codec {
                TrackCodec::Aac { .. } => {
                    assert_eq!(&entry.0, b"mp4a");
                    let esds = boxes(&entry.1[28..]);
                    assert_eq!(&esds[0].0, b"esds");
                    // ... 0x05 <len> <AudioSpecificConfig> inside.
                    assert!(esds[0].1.windows(4).any(|w| w == [0x05, 2, 0x11, 0x90]));
                }
                TrackCodec::Opus { .. } => {
                    assert_eq!(&entry.0, b"Opus");
                    let dops = boxes(&entry.1[28..]);
                    assert_eq!(&dops[0].0, b"dOps");
                    assert_eq!(dops[0].1, &[0, 1, 0x01, 0x38, 0, 0, 0xBB, 0x80, 0, 0, 0]);
                }
            }
        }
    }

    #[test]
    fn chunks_point_at_their_samples() {
        let frames: Vec<Vec<u8>> = (0..15u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let event = Event { time: 96_000, id: 7, id3: b"ID3-tag".to_vec() };
        let data = chunk(42, 96_000, 1024, &refs, true, Some(&event));
        let top: Vec<[u8; 4]> = boxes(&data).into_iter().map(|(k, _)| k).collect();
        assert_eq!(top, [*b"styp", *b"emsg", *b"moof", *b"mdat"]);
        let emsg = child(&data, &[b"emsg"]);
        assert!(emsg.windows(ID3_SCHEME.len()).any(|w| w == ID3_SCHEME.as_bytes()));
        assert!(emsg.ends_with(b"\0\0ID3-tag"));
        let tfdt = child(&data, &[b"moof", b"traf", b"tfdt"]);
        assert_eq!(u64::from_be_bytes(tfdt[4..12].try_into().unwrap()), 96_000);
        let mfhd = child(&data, &[b"moof", b"mfhd"]);
        assert_eq!(u32::from_be_bytes(mfhd[4..8].try_into().unwrap()), 42);
        let trun = child(&data, &[b"moof", b"traf", b"trun"]);
        assert_eq!(u32::from_be_bytes(trun[4..8].try_into().unwrap()), 15);
        let offset = u32::from_be_bytes(trun[8..12].try_into().unwrap()) as usize;
        let moof_at = data.windows(4).position(|w| w == b"moof").unwrap() - 4;
        assert_eq!(&data[moof_at + offset..moof_at + offset + 100], &frames[0][..]);
        assert_eq!(u32::from_be_bytes(trun[12..16].try_into().unwrap()), 1024);
        assert_eq!(u32::from_be_bytes(trun[16..20].try_into().unwrap()), 100);
        let mdat = child(&data, &[b"mdat"]);
        assert_eq!(mdat.len(), frames.iter().map(Vec::len).sum::<usize>());
    }
}
