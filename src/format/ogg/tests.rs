//! Ogg framer tests: pages built by hand with a real CRC.

use super::super::sync::testing::*;
use super::page::{crc_update, page_crc};
use super::*;

const BOS: u8 = 0x02;
const EOS: u8 = 0x04;
const CONT: u8 = 0x01;

/// An Ogg page holding `packets`; with `open`, the last one continues on
/// the next page (its length must then be a multiple of 255).
fn page(flags: u8, granule: u64, serial: u32, seq: u32, packets: &[&[u8]], open: bool) -> Vec<u8> {
    let mut table = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        table.extend(std::iter::repeat_n(255, p.len() / 255));
        if !(open && i + 1 == packets.len()) {
            table.push((p.len() % 255) as u8);
        }
    }
    let mut page = b"OggS\0".to_vec();
    page.push(flags);
    page.extend_from_slice(&granule.to_le_bytes());
    page.extend_from_slice(&serial.to_le_bytes());
    page.extend_from_slice(&seq.to_le_bytes());
    page.extend_from_slice(&[0; 4]);
    page.push(table.len() as u8);
    page.extend_from_slice(&table);
    packets.iter().for_each(|p| page.extend_from_slice(p));
    let crc = page_crc(&page);
    page[22..26].copy_from_slice(&crc.to_le_bytes());
    page
}

fn vorbis_id(rate: u32, channels: u8) -> Vec<u8> {
    let mut p = b"\x01vorbis\0\0\0\0".to_vec();
    p.push(channels);
    p.extend_from_slice(&rate.to_le_bytes());
    p.extend_from_slice(&[0; 12]);
    p.extend_from_slice(&[0xB8, 1]);
    p
}

/// Vorbis BOS + one page with comment and setup headers.
fn vorbis_headers(serial: u32, comment: &[u8]) -> Vec<Vec<u8>> {
    let mut c = b"\x03vorbis".to_vec();
    c.extend_from_slice(comment);
    let setup = b"\x05vorbis-setup";
    vec![page(BOS, 0, serial, 0, &[&vorbis_id(44100, 2)], false), page(0, 0, serial, 1, &[&c, setup], false)]
}

fn opus_headers(serial: u32) -> Vec<Vec<u8>> {
    let head = b"OpusHead\x01\x01\x38\x01\x80\xbb\0\0\0\0\0";
    vec![page(BOS, 0, serial, 0, &[head], false), page(0, 0, serial, 1, &[b"OpusTags\0\0\0\0\0\0\0\0"], false)]
}

fn data_pages(serial: u32, first_seq: u32, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let body = vec![i as u8; 100 + i * 7];
            page(0, 960 * (i as u64 + 1), serial, first_seq + i as u32, &[&body, b"xy"], false)
        })
        .collect()
}

fn headers_of(units: &[Unit]) -> Vec<(Vec<u8>, bool)> {
    units
        .iter()
        .filter_map(|u| match u {
            Unit::Headers { bytes, in_band } => Some((bytes.to_vec(), *in_band)),
            Unit::Data { .. } => None,
        })
        .collect()
}

fn data_of(units: &[Unit]) -> Vec<u8> {
    let data: Vec<Unit> = units.iter().filter(|u| matches!(u, Unit::Data { .. })).cloned().collect();
    concat(&data)
}

#[test]
fn crc_matches_the_ogg_polynomial() {
    // CRC-32/CKSUM check value without its final xor.
    assert_eq!(crc_update(0, b"123456789"), 0x765E_7680 ^ 0xFFFF_FFFF);
}

#[test]
fn vorbis_headers_captured_for_any_split() {
    let headers = vorbis_headers(7, b"comment").concat();
    let data = data_pages(7, 2, 10).concat();
    let stream = [headers.clone(), data.clone()].concat();
    for seed in 0..30 {
        let mut f = OggFramer::new();
        let units = match seed {
            0 => feed_all(&mut f, &stream),
            1 => feed_bytewise(&mut f, &stream),
            _ => feed_random(&mut f, &stream, seed, 400),
        };
        assert_eq!(headers_of(&units), vec![(headers.clone(), false)]);
        assert!(matches!(units[0], Unit::Headers { .. }));
        assert_same(&data_of(&units), &data);
        for u in &units[1..] {
            let Unit::Data { bytes, sync: true } = u else { panic!("{u:?}") };
            assert!(bytes.starts_with(b"OggS"));
        }
        assert_eq!(f.skipped_bytes(), 0);
        let info = f.audio_info().unwrap();
        assert_eq!((info.sample_rate, info.channels), (44100, 2));
    }
}

#[test]
fn header_packet_spanning_pages() {
    // A 510-byte comment packet continued over a second page.
    let mut comment = b"\x03vorbis".to_vec();
    comment.resize(510, b'c');
    let (first, rest) = comment.split_at(255);
    let pages = [
        page(BOS, 0, 1, 0, &[&vorbis_id(48000, 1)], false),
        page(0, u64::MAX, 1, 1, &[first], true),
        page(CONT, 0, 1, 2, &[rest, b"\x05vorbis"], false),
    ];
    let data = data_pages(1, 3, 3).concat();
    let mut f = OggFramer::new();
    let units = feed_all(&mut f, &[pages.concat(), data.clone()].concat());
    assert_eq!(headers_of(&units), vec![(pages.concat(), false)]);
    assert_same(&data_of(&units), &data);
}

#[test]
fn opus_then_chained_vorbis() {
    let opus = opus_headers(10).concat();
    let vorbis = vorbis_headers(20, b"new song").concat();
    let mut eos = data_pages(10, 2, 3);
    let last = eos.len() - 1;
    eos[last] = page(EOS, 9999, 10, 4, &[b"end"], false);
    let link2 = data_pages(20, 2, 4).concat();
    let stream = [opus.clone(), eos.concat(), vorbis.clone(), link2.clone()].concat();
    for seed in 1..20 {
        let mut f = OggFramer::new();
        let units = feed_random(&mut f, &stream, seed, 300);
        assert_eq!(headers_of(&units), vec![(opus.clone(), false), (vorbis.clone(), true)]);
        assert_same(&concat(&units), &stream);
        // The in-band headers sit between the two links' data.
        let at = units.iter().position(|u| matches!(u, Unit::Headers { in_band: true, .. }));
        assert_same(&concat(&units[..at.unwrap()]), &[opus.clone(), eos.concat()].concat());
        assert_eq!(f.audio_info().map(|i| i.sample_rate), Some(44100));
    }
    let mut f = OggFramer::new();
    feed_all(&mut f, &[opus, eos.concat()].concat());
    assert_eq!(f.audio_info(), Some(AudioInfo { sample_rate: 48000, channels: 1, bitrate: 0 }));
}

#[test]
fn multiplexed_group_headers() {
    let v = vorbis_headers(1, b"");
    let theora_bos = page(BOS, 0, 2, 0, &[b"\x80theora-id"], false);
    let theora_rest = page(0, 0, 2, 1, &[b"\x81theora-c", b"\x82theora-s"], false);
    let headers = [v[0].clone(), theora_bos, v[1].clone(), theora_rest].concat();
    let data = [data_pages(1, 2, 2).concat(), data_pages(2, 2, 2).concat()].concat();
    let mut f = OggFramer::new();
    let units = feed_bytewise(&mut f, &[headers.clone(), data.clone()].concat());
    assert_eq!(headers_of(&units), vec![(headers, false)]);
    assert_same(&data_of(&units), &data);
}

#[test]
fn flac_and_unknown_codecs() {
    let mut flac_id = b"\x7fFLAC\x01\x00\x00\x01fLaC\x00\x00\x00\x22".to_vec();
    flac_id.extend_from_slice(&[0x10, 0, 0x10, 0, 0, 0, 0, 0, 0, 0]);
    // 44100 Hz = 0x0AC44, 2 channels, 16 bits.
    flac_id.extend_from_slice(&[0x0A, 0xC4, 0x42, 0xF0, 0, 0, 0, 0]);
    let flac = [page(BOS, 0, 5, 0, &[&flac_id], false), page(0, 0, 5, 1, &[b"\x84comment"], false)];
    let data = data_pages(5, 2, 2).concat();
    let mut f = OggFramer::new();
    let units = feed_all(&mut f, &[flac.concat(), data.clone()].concat());
    assert_eq!(headers_of(&units), vec![(flac.concat(), false)]);
    assert_eq!(f.audio_info(), Some(AudioInfo { sample_rate: 44100, channels: 2, bitrate: 0 }));
    // Unknown codec: granule-0 pages after the BOS are headers.
    let odd = [
        page(BOS, 0, 9, 0, &[b"mystery"], false),
        page(0, 0, 9, 1, &[b"h1"], false),
        page(0, 0, 9, 2, &[b"h2"], false),
    ];
    let mut f = OggFramer::new();
    let units = feed_all(&mut f, &[odd.concat(), data_pages(9, 3, 1).concat()].concat());
    assert_eq!(headers_of(&units), vec![(odd.concat(), false)]);
    assert_same(&data_of(&units), &data_pages(9, 3, 1).concat());
}

#[test]
fn bad_crc_page_is_dropped() {
    let headers = opus_headers(3).concat();
    let mut pages = data_pages(3, 2, 5);
    let bad_len = pages[2].len();
    pages[2][40] ^= 0x55;
    let mut expected = pages.clone();
    expected.remove(2);
    let mut f = OggFramer::new();
    let units = feed_random(&mut f, &[headers, pages.concat()].concat(), 5, 200);
    assert_same(&data_of(&units), &expected.concat());
    assert_eq!(f.skipped_bytes(), bad_len as u64);
}

#[test]
fn garbage_is_skipped_and_counted() {
    let mut rng = Rng(31337);
    let mut garbage = rng.bytes(1000);
    // False capture patterns in the garbage, one with a plausible header.
    garbage[100..104].copy_from_slice(b"OggS");
    garbage[500..506].copy_from_slice(b"OggS\0\0");
    let headers = vorbis_headers(4, b"x").concat();
    let d = data_pages(4, 2, 6);
    let stream = [&garbage[..], &headers, &d[..3].concat(), &garbage, &d[3..].concat()].concat();
    for seed in 1..10 {
        let mut f = OggFramer::new();
        let units = feed_random(&mut f, &stream, seed, 700);
        assert_eq!(headers_of(&units), vec![(headers.clone(), false)]);
        assert_same(&data_of(&units), &d.concat());
        assert_eq!(f.skipped_bytes(), 2000);
        for u in &units {
            let (Unit::Data { bytes, .. } | Unit::Headers { bytes, .. }) = u;
            assert!(bytes.starts_with(b"OggS"));
        }
    }
}

#[test]
fn pages_without_headers_are_relayed() {
    let data = data_pages(8, 50, 4).concat();
    let mut f = OggFramer::new();
    let units = feed_random(&mut f, &data, 3, 100);
    assert!(headers_of(&units).is_empty());
    assert_same(&concat(&units), &data);
    // Headers arriving later are in-band: listeners already play.
    let units = feed_all(&mut f, &opus_headers(9).concat());
    assert_eq!(headers_of(&units), vec![(opus_headers(9).concat(), true)]);
}

#[test]
fn truncated_page_is_held() {
    let stream = [opus_headers(1).concat(), data_pages(1, 2, 3).concat()].concat();
    let mut f = OggFramer::new();
    let units = feed_all(&mut f, &stream[..stream.len() - 1]);
    let last = data_pages(1, 2, 3)[2].len();
    assert_same(&concat(&units), &stream[..stream.len() - last]);
    assert_eq!(f.skipped_bytes(), 0);
}

#[test]
fn random_input_never_panics() {
    let mut rng = Rng(2024);
    let valid = [vorbis_headers(1, b"c").concat(), data_pages(1, 2, 3).concat()].concat();
    for round in 0..60 {
        let mut data = rng.bytes(3000);
        if round % 2 == 0 {
            let at = rng.below(2000);
            let n = valid.len().min(data.len() - at);
            data[at..at + n].copy_from_slice(&valid[..n]);
            // Corrupt one byte of the embedded stream at random.
            let hit = at + rng.below(n);
            data[hit] ^= 1 << rng.below(8);
        }
        let mut f = OggFramer::new();
        let units = feed_random(&mut f, &data, round as u64 + 1, 250);
        assert!(concat(&units).len() as u64 + f.skipped_bytes() <= data.len() as u64);
    }
}

#[test]
fn false_capture_pattern_does_not_stall() {
    // A fake header announcing 255 full segments (65 KiB) in front of a
    // short valid stream: the valid pages must not wait for 65 KiB.
    let mut fake = b"OggS\0\0".to_vec();
    fake.extend_from_slice(&[0; 20]);
    fake.push(255);
    fake.extend_from_slice(&[255; 255]);
    let stream = [opus_headers(2).concat(), data_pages(2, 2, 2).concat()].concat();
    let mut f = OggFramer::new();
    let units = feed_random(&mut f, &[fake.clone(), stream.clone()].concat(), 6, 90);
    assert_same(&concat(&units), &stream);
    assert_eq!(f.skipped_bytes(), fake.len() as u64);
}

/// A flood of BOS pages of unknown codecs (each a new logical stream) is
/// dropped group by group: the framer never follows more than a few streams,
/// so each page costs a bounded amount of work, and nothing piles up.
#[test]
fn bos_flood_is_bounded() {
    let mut framer = OggFramer::new();
    let mut out = Vec::new();
    let mut flood = Vec::new();
    for serial in 0..50_000u32 {
        flood.extend_from_slice(&page(BOS, 0, serial, 0, &[b"junk codec"], false));
    }
    for piece in flood.chunks(16 * 1024) {
        framer.push(piece, &mut out);
        let streams = framer.capture.as_ref().map_or(0, |c| c.streams.len());
        assert!(streams <= MAX_GROUP_STREAMS, "{streams} streams followed");
        assert!(framer.buffered() < 64 * 1024, "{} bytes buffered", framer.buffered());
    }
    assert!(out.is_empty(), "no headers or data came of it");
    assert!(framer.skipped_bytes() as usize > flood.len() * 9 / 10);
}
