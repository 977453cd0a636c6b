//! Decoder tests on tiny fixtures: a 440 Hz sine encoded with ffmpeg 5.1
//! (`F="ffmpeg -f lavfi -i sine=f=440"`, `P="-page_duration 100000"` for ~0.1 s Ogg pages):
//!
//! ```sh
//! $F:d=1:r=44100 -ac 1 -c:a libmp3lame -b:a 32k -id3v2_version 0 -write_xing 0 p44.mp3
//! $F:d=0.6:r=48000 -ac 1 -c:a libmp3lame -b:a 32k p48.mp3   # with ID3v2 + Xing headers
//! cat p44.mp3 p48.mp3 > switch.mp3
//! $F:d=0.8:r=44100 -ac 2 -c:a aac -b:a 40k -f adts sine.aac
//! $F:d=0.6:r=44100 -ac 1 -c:a libvorbis -q:a 0 $P -f ogg v44.ogg
//! $F:d=0.6:r=22050 -ac 2 -c:a libvorbis -q:a 0 $P -f ogg v22.ogg
//! cat v44.ogg v22.ogg > chained_vorbis.ogg
//! $F:d=0.6:r=48000 -ac 2 -c:a libopus -b:a 16k $P -f ogg sine_opus.ogg
//! $F:d=0.5:r=8000 -ac 1 -sample_fmt s16 -c:a flac $P -f ogg sine_flac.ogg
//! ```

use std::io;

use super::*;
use crate::format::Unit;

/// 1 s at 44.1 kHz followed by 0.6 s at 48 kHz (with the second file's ID3v2 and Xing headers).
const SWITCH_MP3: &[u8] = include_bytes!("testdata/switch.mp3");
/// 0.8 s, 44.1 kHz stereo AAC-LC.
const SINE_AAC: &[u8] = include_bytes!("testdata/sine.aac");
/// Chained Ogg Vorbis: 0.6 s 44.1 kHz mono, then 0.6 s 22.05 kHz stereo.
const CHAINED_VORBIS: &[u8] = include_bytes!("testdata/chained_vorbis.ogg");
/// 0.6 s stereo Ogg Opus.
const SINE_OPUS: &[u8] = include_bytes!("testdata/sine_opus.ogg");
/// 0.5 s, 8 kHz mono FLAC in Ogg.
const SINE_FLAC: &[u8] = include_bytes!("testdata/sine_flac.ogg");

/// `frames` of a sine at `hz`, amplitude 0.5.
pub(crate) fn sine(hz: f64, rate: u32, frames: usize) -> Vec<f32> {
    (0..frames).map(|i| (0.5 * (std::f64::consts::TAU * hz * i as f64 / f64::from(rate)).sin()) as f32).collect()
}

/// Estimates the frequency of the tone in channel 0 from its rising zero crossings (with
/// hysteresis against codec noise, and interpolated between samples).
pub(crate) fn tone_hz(samples: &[f32], rate: u32, channels: usize) -> f64 {
    let x: Vec<f32> = samples.iter().step_by(channels).copied().collect();
    let peak = x.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    let mut armed = false;
    let mut crossings = Vec::new();
    for i in 1..x.len() {
        if x[i] < -0.2 * peak {
            armed = true;
        } else if armed && x[i - 1] < 0.0 && x[i] >= 0.0 {
            crossings.push((i - 1) as f64 + f64::from(-x[i - 1] / (x[i] - x[i - 1])));
            armed = false;
        }
    }
    match (crossings.first(), crossings.last()) {
        (Some(first), Some(last)) if crossings.len() > 2 => {
            (crossings.len() - 1) as f64 * f64::from(rate) / (last - first)
        }
        _ => 0.0,
    }
}

/// What the mount makes of `data` arriving in small, irregular pieces, like a live source: its
/// frames or pages (stream headers included) and the junk bytes its framer dropped.
fn framed(input: Input, data: &[u8]) -> (Vec<Bytes>, u64) {
    let mut framer = input.format().framer();
    let mut units = Vec::new();
    let (mut pos, mut step) = (0, 1);
    while pos < data.len() {
        step = step * 7 % 733 + 1;
        let n = step.min(data.len() - pos);
        framer.push(&data[pos..pos + n], &mut units);
        pos += n;
    }
    let frames = units.into_iter().map(Unit::into_bytes).collect();
    (frames, framer.skipped_bytes())
}

/// Consecutive blocks with the same format, merged.
#[derive(Debug)]
struct Segment {
    rate: u32,
    channels: u8,
    samples: Vec<f32>,
}

impl Segment {
    fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels)
    }

    fn secs(&self) -> f64 {
        self.frames() as f64 / f64::from(self.rate)
    }

    /// The tone frequency over the middle of the segment (away from codec start/end transients).
    fn tone_hz(&self) -> f64 {
        let ch = usize::from(self.channels);
        let (from, to) = (self.frames() / 10, self.frames() * 9 / 10);
        tone_hz(&self.samples[from * ch..to * ch], self.rate, ch)
    }
}

struct Decoded {
    segments: Vec<Segment>,
    stats: DecodeStats,
    /// Junk the mount's framer dropped before the decoder saw anything.
    skipped: u64,
    result: Result<(), DecodeError>,
}

fn decode(input: Input, data: &[u8]) -> Decoded {
    let (frames, skipped) = framed(input, data);
    Decoded { skipped, ..decode_units(input, frames) }
}

/// Decodes units as given (not through the framer).
fn decode_units(input: Input, units: Vec<Bytes>) -> Decoded {
    let mut segments: Vec<Segment> = Vec::new();
    let mut stats = DecodeStats::default();
    let result = run_decoder(input, units.into_iter(), &mut stats, &mut |pcm| {
        assert_eq!(pcm.samples.len() % usize::from(pcm.channels), 0);
        match segments.last_mut() {
            Some(s) if s.rate == pcm.sample_rate && s.channels == pcm.channels => s.samples.extend(pcm.samples),
            _ => segments.push(Segment { rate: pcm.sample_rate, channels: pcm.channels, samples: pcm.samples }),
        }
    });
    Decoded { segments, stats, skipped: 0, result }
}

fn formats(d: &Decoded) -> Vec<(u32, u8)> {
    d.segments.iter().map(|s| (s.rate, s.channels)).collect()
}

fn assert_tone(s: &Segment) {
    let hz = s.tone_hz();
    assert!((hz - 440.0).abs() < 2.0, "{hz} Hz in {s:?}", s = (s.rate, s.channels, s.frames()));
}

fn assert_secs(s: &Segment, min: f64, max: f64) {
    assert!((min..=max).contains(&s.secs()), "{} s, expected {min}..={max}", s.secs());
}

/// Deterministic junk (xorshift), seeded per test.
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// `data` with `len` bytes of junk spliced in at `at` (not at a frame boundary).
fn with_garbage(data: &[u8], at: usize, len: usize) -> Vec<u8> {
    [&data[..at], &garbage(len, 0x9e37_79b9_7f4a_7c15)[..], &data[at..]].concat()
}

/// Byte offsets inside audio pages (not header pages) of the Ogg fixtures, for corruption tests:
/// Ogg cannot decode a stream whose setup headers are lost.
const VORBIS_AUDIO_AT: [usize; 3] = [3600, 4200, 8700];

#[test]
fn mp3_with_rate_switch() {
    let d = decode(Input::Mp3, SWITCH_MP3);
    d.result.as_ref().expect("decodes");
    assert_eq!(formats(&d), [(44100, 1), (48000, 1)]);
    // LAME adds ~1105 samples of delay/padding; nothing is trimmed on a live stream.
    assert_secs(&d.segments[0], 1.0, 1.08);
    assert_secs(&d.segments[1], 0.6, 0.7);
    d.segments.iter().for_each(assert_tone);
    assert_eq!(d.stats.resets, 1);
    assert!(d.stats.packets >= 60, "{:?}", d.stats);
    assert_eq!(d.stats.corrupt_packets, 0, "the Xing frame is a tag, not a bad packet");
}

#[test]
fn mp3_joined_midway() {
    // Not even frame aligned: the mount resyncs, the bit reservoir underflows harmlessly.
    let d = decode(Input::Mp3, &SWITCH_MP3[1001..]);
    d.result.as_ref().expect("decodes");
    assert_eq!(formats(&d), [(44100, 1), (48000, 1)]);
    assert_secs(&d.segments[0], 0.7, 1.0);
    assert_tone(&d.segments[0]);
}

#[test]
fn adts_aac() {
    let d = decode(Input::Aac, SINE_AAC);
    d.result.as_ref().expect("decodes");
    assert_eq!(formats(&d), [(44100, 2)]);
    // Plus the encoder's 1024 priming samples and final-frame padding.
    assert_secs(&d.segments[0], 0.8, 0.9);
    assert_tone(&d.segments[0]);
    assert_eq!((d.stats.corrupt_packets, d.stats.resets), (0, 0));
}

#[test]
fn chained_ogg_vorbis() {
    let d = decode(Input::Ogg, CHAINED_VORBIS);
    d.result.as_ref().expect("decodes");
    assert_eq!(formats(&d), [(44100, 1), (22050, 2)]);
    // Gapless: exact lengths from the granule positions.
    assert_eq!(d.segments[0].frames(), 26460);
    assert_eq!(d.segments[1].frames(), 13230);
    d.segments.iter().for_each(assert_tone);
    assert_eq!(d.stats.resets, 1);
    assert_eq!(d.stats.corrupt_packets, 0);
}

#[test]
fn ogg_opus() {
    let d = decode(Input::Ogg, SINE_OPUS);
    d.result.as_ref().expect("decodes");
    assert_eq!(formats(&d), [(48000, 2)]);
    // Pre-skip and end padding removed.
    assert_eq!(d.segments[0].frames(), 28800);
    assert_tone(&d.segments[0]);
}

#[test]
fn ogg_flac() {
    let d = decode(Input::Ogg, SINE_FLAC);
    d.result.as_ref().expect("decodes");
    assert_eq!(formats(&d), [(8000, 1)]);
    assert_eq!(d.segments[0].frames(), 4000);
    assert_tone(&d.segments[0]);
}

#[test]
fn chained_ogg_opus_after_vorbis() {
    // A chain may switch codecs too.
    let d = decode(Input::Ogg, &[CHAINED_VORBIS, SINE_OPUS].concat());
    d.result.as_ref().expect("decodes");
    assert_eq!(formats(&d), [(44100, 1), (22050, 2), (48000, 2)]);
    assert_eq!(d.stats.resets, 2);
    d.segments.iter().for_each(assert_tone);
}

/// Decodes `data` clean and with junk at `at`; the junk must cost little audio (Ogg loses the
/// page it lands in, ~0.1 s in these fixtures).
fn survives_garbage(input: Input, data: &[u8], at: usize) -> Decoded {
    let clean: f64 = decode(input, data).segments.iter().map(Segment::secs).sum();
    let d = decode(input, &with_garbage(data, at, 700));
    d.result.as_ref().expect("decodes past the junk");
    let total: f64 = d.segments.iter().map(Segment::secs).sum();
    assert!(total > clean - 0.15 && total < clean + 0.05, "{total} s vs {clean} s clean");
    d
}

#[test]
fn mp3_garbage_is_skipped() {
    let d = survives_garbage(Input::Mp3, SWITCH_MP3, SWITCH_MP3.len() / 2 + 3);
    assert_eq!(formats(&d), [(44100, 1), (48000, 1)]);
    assert_eq!(d.stats.resets, 1, "junk must not look like a rate switch");
    assert_tone(&d.segments[1]);
}

#[test]
fn adts_garbage_is_skipped_and_counted() {
    let d = survives_garbage(Input::Aac, SINE_AAC, SINE_AAC.len() / 2 + 3);
    assert_eq!(formats(&d), [(44100, 2)]);
    assert!(d.skipped >= 700, "the mount drops the junk and the frame it cut: {}", d.skipped);
    assert_eq!(d.stats.resets, 0);
}

#[test]
fn ogg_garbage_is_skipped() {
    let d = survives_garbage(Input::Ogg, CHAINED_VORBIS, VORBIS_AUDIO_AT[0]);
    assert_eq!(formats(&d), [(44100, 1), (22050, 2)]);
    assert_eq!(d.stats.resets, 1);
    assert!(d.skipped > 700, "the junk and the page it damaged: {}", d.skipped);
    let d = survives_garbage(Input::Ogg, SINE_OPUS, SINE_OPUS.len() / 2);
    assert_eq!(formats(&d), [(48000, 2)]);
    assert!(d.skipped > 700, "{}", d.skipped);
}

#[test]
fn corrupted_bytes_inside_packets_are_survived() {
    // Overwrite bytes (no length change) at three places: bad frames in MP3/ADTS, CRC failures
    // (lost pages) in Ogg.
    let thirds = |data: &[u8]| [data.len() / 3, data.len() / 2, data.len() * 3 / 4];
    for (input, data, at) in [
        (Input::Mp3, SWITCH_MP3, thirds(SWITCH_MP3)),
        (Input::Aac, SINE_AAC, thirds(SINE_AAC)),
        (Input::Ogg, CHAINED_VORBIS, VORBIS_AUDIO_AT),
    ] {
        let clean: f64 = decode(input, data).segments.iter().map(Segment::secs).sum();
        let mut data = data.to_vec();
        for at in at {
            data[at..at + 40].copy_from_slice(&garbage(40, at as u64 + 1));
        }
        let d = decode(input, &data);
        d.result.as_ref().expect("decodes");
        let total: f64 = d.segments.iter().map(Segment::secs).sum();
        // Ogg loses each damaged page (~0.12 s here) plus the packet continued from it.
        assert!(total > clean - 0.45, "{input:?}: {total} s of {clean} s");
    }
}

#[test]
fn truncated_input_ends_cleanly() {
    for (input, data) in
        [(Input::Mp3, SWITCH_MP3), (Input::Aac, SINE_AAC), (Input::Ogg, CHAINED_VORBIS), (Input::Ogg, SINE_OPUS)]
    {
        let d = decode(input, &data[..data.len() * 6 / 10 + 1]);
        d.result.as_ref().expect("decodes");
        assert!(!d.segments.is_empty(), "{input:?}");
    }
}

#[test]
fn empty_and_junk_inputs_do_not_hang_or_panic() {
    for input in [Input::Mp3, Input::Aac, Input::Ogg] {
        let d = decode(input, &[]);
        assert!(d.result.is_ok() && d.segments.is_empty(), "{input:?}");
        let d = decode(input, &garbage(64 * 1024, 7));
        let total: f64 = d.segments.iter().map(Segment::secs).sum();
        assert!(total < 0.5, "{input:?}: {total} s of audio from junk");
    }
}

#[test]
fn io_errors_end_decoding() {
    struct Failing(std::vec::IntoIter<Bytes>);
    impl Frames for Failing {
        fn next_frame(&mut self) -> io::Result<Option<Bytes>> {
            match self.0.next() {
                Some(frame) => Ok(Some(frame)),
                None => Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone")),
            }
        }
    }
    let (frames, _) = framed(Input::Mp3, &SWITCH_MP3[..SWITCH_MP3.len() / 2]);
    let mut blocks = 0;
    let result =
        run_decoder(Input::Mp3, Failing(frames.into_iter()), &mut DecodeStats::default(), &mut |_| blocks += 1);
    assert!(matches!(result, Err(DecodeError::Io(_))), "{result:?}");
    assert!(blocks > 10);
}

#[test]
fn live_channel_input_on_a_decoder_thread() {
    // How the codec process uses it: pages arrive one at a time (here over a channel), decoding
    // runs on its own thread, and the stream ends when the sender is dropped.
    struct ChannelFrames(std::sync::mpsc::Receiver<Bytes>);
    impl Frames for ChannelFrames {
        fn next_frame(&mut self) -> io::Result<Option<Bytes>> {
            Ok(self.0.recv().ok())
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let decoder = std::thread::spawn(move || {
        let mut stats = DecodeStats::default();
        let mut frames = 0;
        let result = run_decoder(Input::Ogg, ChannelFrames(rx), &mut stats, &mut |pcm| frames += pcm.frames());
        result.map(|()| (frames, stats))
    });
    for page in framed(Input::Ogg, SINE_OPUS).0 {
        tx.send(page).expect("decoder alive");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    drop(tx);
    let (frames, stats) = decoder.join().expect("no panic").expect("decodes");
    assert_eq!(frames, 28800);
    assert_eq!(stats.corrupt_packets, 0);
}

/// An Ogg page (its CRC left zero: the framer checks CRCs, the decoder does not).
fn ogg_page(serial: u32, sequence: u32, flags: u8, granule: u64, table: &[u8], body: &[u8]) -> Bytes {
    let mut page = b"OggS\0".to_vec();
    page.push(flags);
    page.extend_from_slice(&granule.to_le_bytes());
    page.extend_from_slice(&serial.to_le_bytes());
    page.extend_from_slice(&sequence.to_le_bytes());
    page.extend_from_slice(&[0; 4]); // CRC
    page.push(table.len() as u8);
    page.extend_from_slice(table);
    page.extend_from_slice(body);
    Bytes::from(page)
}

/// `data`'s pages cut into pages of at most `per_page` segments, so packets span pages (the
/// granule position kept on each original page's last piece, where the end trim reads it).
fn repaged(data: &[u8], per_page: usize) -> Vec<Bytes> {
    use crate::format::{OGG_FLAG_BOS, OGG_FLAG_CONTINUED, OGG_FLAG_EOS};
    let mut units = Vec::new();
    let mut sequence = std::collections::HashMap::new();
    for page in crate::format::ogg_pages(data).expect("whole pages") {
        let pieces: Vec<&[u8]> = page.table.chunks(per_page).collect();
        let (mut at, mut continued) = (0, page.flags & OGG_FLAG_CONTINUED != 0);
        for (k, table) in pieces.iter().enumerate() {
            let last = k + 1 == pieces.len();
            let mut flags = if continued { OGG_FLAG_CONTINUED } else { 0 };
            flags |= if k == 0 { page.flags & OGG_FLAG_BOS } else { 0 };
            flags |= if last { page.flags & OGG_FLAG_EOS } else { 0 };
            let len: usize = table.iter().map(|&l| usize::from(l)).sum();
            let granule = if last { page.granule } else { u64::MAX };
            let next = sequence.entry(page.serial).or_insert(0);
            units.push(ogg_page(page.serial, *next, flags, granule, table, &page.body[at..at + len]));
            *next += 1;
            at += len;
            continued = table.last() == Some(&255);
        }
    }
    units
}

fn frames_of(d: &Decoded) -> Vec<usize> {
    d.segments.iter().map(Segment::frames).collect()
}

#[test]
fn ogg_packets_spanning_pages_are_joined() {
    // Two segments a page: every packet longer than 510 bytes (the Vorbis setup headers,
    // FLAC frames) spans pages; the end trim still finds each link's last granule.
    for (data, per_page) in [(CHAINED_VORBIS, 2), (SINE_OPUS, 1), (SINE_FLAC, 2)] {
        let whole = decode(Input::Ogg, data);
        let d = decode_units(Input::Ogg, repaged(data, per_page));
        d.result.as_ref().expect("decodes");
        assert_eq!((formats(&d), frames_of(&d)), (formats(&whole), frames_of(&whole)));
        assert_eq!(
            (d.stats.corrupt_packets, d.stats.resets),
            (whole.stats.corrupt_packets, whole.stats.resets),
            "{per_page}"
        );
        assert_eq!(whole.stats.corrupt_packets, 0, "{per_page}");
        d.segments.iter().for_each(assert_tone);
    }
}

#[test]
fn a_multiplexed_ogg_link_decodes_its_audio_stream() {
    // A video stream beside the audio: its pages (before, between and after the audio's
    // headers) are ignored.
    let video = |sequence, flags, body: &[u8]| ogg_page(0x99, sequence, flags, 0, &[body.len() as u8], body);
    let mut units = vec![video(0, crate::format::OGG_FLAG_BOS, b"\x80theora fake identification")];
    let mut audio = repaged(SINE_OPUS, 255).into_iter();
    units.extend(audio.by_ref().take(2));
    units.push(video(1, 0, b"a video frame"));
    units.extend(audio);
    let d = decode_units(Input::Ogg, units);
    d.result.as_ref().expect("decodes");
    assert_eq!((formats(&d), frames_of(&d)), (vec![(48000, 2)], vec![28800]));
}

#[test]
fn ogg_without_a_known_audio_codec_or_with_partial_pages_is_refused() {
    let speex = ogg_page(7, 0, crate::format::OGG_FLAG_BOS, 0, &[80], &[b"Speex   ".as_slice(), &[0; 72]].concat());
    let units = vec![speex, ogg_page(7, 1, 0, 0, &[4], b"data")];
    let d = decode_units(Input::Ogg, units);
    assert!(matches!(&d.result, Err(DecodeError::Unsupported(why)) if why.contains("no known audio codec")));
    let partial = Bytes::copy_from_slice(&repaged(SINE_OPUS, 255)[0][..20]);
    assert!(matches!(decode_units(Input::Ogg, vec![partial]).result, Err(DecodeError::Unsupported(_))));
}

#[test]
fn a_lost_page_inside_a_packet_costs_that_packet_only() {
    // With packets spanning pages, a page the framer dropped leaves a packet's head and the next
    // page's continuation: they must not be joined into one (the sequence numbers show the gap).
    let whole = decode_units(Input::Ogg, repaged(SINE_FLAC, 1));
    let mut units = repaged(SINE_FLAC, 1);
    let lost = units.len() / 2;
    units.remove(lost);
    let d = decode_units(Input::Ogg, units);
    d.result.as_ref().expect("decodes");
    assert_eq!(d.stats.corrupt_packets, 1, "one packet lost, no garbage decoded");
    assert_eq!(d.stats.packets + 1, whole.stats.packets);
    d.segments.iter().for_each(assert_tone);
}

#[test]
fn data_of_a_stream_without_headers_after_the_end_is_an_error_not_silence() {
    // The first link ends; pages of a second one whose beginning never came follow.
    let mut units = repaged(SINE_OPUS, 255);
    units.extend((0..20).map(|n| ogg_page(0x5EED, n + 2, 0, 0, &[4], b"data")));
    let d = decode_units(Input::Ogg, units);
    assert!(matches!(&d.result, Err(DecodeError::Unsupported(why)) if why.contains("without its headers")));
    assert_eq!(frames_of(&d), [28800], "the first link is decoded whole");
}
