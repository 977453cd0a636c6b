//! WebM framer tests: streams built element by element.

use super::super::sync::testing::*;
use super::*;

const SIMPLE_BLOCK: u32 = 0xA3;
const UNKNOWN: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

fn id(id: u32) -> Vec<u8> {
    let bytes = id.to_be_bytes();
    let skip = (id.leading_zeros() / 8) as usize;
    bytes[skip..].to_vec()
}

fn size(n: usize) -> Vec<u8> {
    let len = (1..=8).find(|&l| (n as u64) < (1u64 << (7 * l)) - 1).unwrap();
    let value = (n as u64) | 1 << (7 * len);
    value.to_be_bytes()[8 - len..].to_vec()
}

fn el(i: u32, body: &[u8]) -> Vec<u8> {
    [id(i), size(body.len()), body.to_vec()].concat()
}

fn headers() -> Vec<u8> {
    let ebml = el(EBML, &[el(0x4286, &[1]), el(0x4282, b"webm"), el(0x4287, &[4])].concat());
    let segment = [id(SEGMENT), UNKNOWN.to_vec()].concat();
    let info = el(0x1549_A966, &el(0x2AD7B1, &[0x0F, 0x42, 0x40]));
    let audio = el(0xE1, &[el(0xB5, &48000f64.to_bits().to_be_bytes()), el(0x9F, &[2])].concat());
    let entry = el(0xAE, &[el(0xD7, &[1]), el(0x83, &[2]), el(0x86, b"A_OPUS"), audio].concat());
    [ebml, segment, info, el(TRACKS, &entry)].concat()
}

fn block(n: usize) -> Vec<u8> {
    let mut body = vec![0x81, 0, n as u8, 0x80];
    body.extend(std::iter::repeat_n(n as u8, 50 + n * 13 % 200));
    el(SIMPLE_BLOCK, &body)
}

/// A Cluster with a Timecode and `n` SimpleBlocks, known or unknown size.
fn cluster(tc: u8, n: usize, known: bool) -> Vec<u8> {
    let body: Vec<u8> = [el(TIMECODE, &[tc]), (0..n).flat_map(block).collect()].concat();
    if known {
        el(CLUSTER, &body)
    } else {
        [id(CLUSTER), UNKNOWN.to_vec(), body].concat()
    }
}

fn clusters(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| cluster(i as u8, 3 + i % 4, i % 2 == 0)).collect()
}

fn header_units(units: &[Unit]) -> Vec<(Vec<u8>, bool)> {
    units
        .iter()
        .filter_map(|u| match u {
            Unit::Headers { bytes, in_band } => Some((bytes.to_vec(), *in_band)),
            Unit::Data { .. } => None,
        })
        .collect()
}

/// Every data unit starts on an element boundary; sync units start with
/// a Cluster and its Timecode.
fn check_boundaries(units: &[Unit]) -> usize {
    let mut syncs = 0;
    for unit in units {
        if let Unit::Data { bytes, sync } = unit {
            if *sync {
                syncs += 1;
                assert!(bytes.starts_with(&id(CLUSTER)));
                let Parse::Element(head) = read_head(bytes) else { panic!() };
                assert_eq!(bytes.get(head.len), Some(&0xE7), "timecode in sync unit");
            } else {
                // A child, or a top-level element (Cues) between Clusters.
                assert!(matches!(bytes[0], 0xA3 | 0xE7 | 0x1C), "{:x}", bytes[0]);
            }
        }
    }
    syncs
}

#[test]
fn vint_sizes() {
    assert!(matches!(read_head(&[0xA3, 0x81]), Parse::Element(Head { id: 0xA3, size: Some(1), len: 2 })));
    assert!(matches!(read_head(&[0xA3, 0xFF]), Parse::Element(Head { size: None, .. })));
    assert!(matches!(read_head(&[0xA3, 0x7F, 0xFF]), Parse::Element(Head { size: None, .. })));
    assert!(matches!(read_head(&[0xA3, 0x40, 0x02]), Parse::Element(Head { size: Some(2), len: 3, .. })));
    assert!(matches!(read_head(&[0x1F, 0x43, 0xB6]), Parse::NeedMore));
    assert!(matches!(read_head(&[0x08]), Parse::Invalid));
    assert!(matches!(read_head(&[0xA3, 0x00]), Parse::Invalid));
}

#[test]
fn headers_and_clusters_for_any_split() {
    let head = headers();
    let body = clusters(8);
    let stream = [head.clone(), body.clone()].concat();
    for seed in 0..30 {
        let mut f = WebmFramer::new();
        let units = match seed {
            0 => feed_all(&mut f, &stream),
            1 => feed_bytewise(&mut f, &stream),
            _ => feed_random(&mut f, &stream, seed, 300),
        };
        assert_eq!(header_units(&units), vec![(head.clone(), false)]);
        assert!(matches!(units[0], Unit::Headers { .. }));
        assert_same(&concat(&units), &stream);
        assert_eq!(check_boundaries(&units), 8);
        assert_eq!(f.skipped_bytes(), 0);
        assert_eq!(f.audio_info(), Some(AudioInfo { sample_rate: 48000, channels: 2, bitrate: 0 }));
    }
}

#[test]
fn cluster_start_waits_for_its_timecode() {
    let head = headers();
    let c = cluster(1, 2, false);
    let mut f = WebmFramer::new();
    // Cluster header (12 bytes) and part of the Timecode element.
    let units = feed_all(&mut f, &[&head[..], &c[..14]].concat());
    assert_eq!(header_units(&units).len(), 1);
    assert_eq!(units.len(), 1, "the lone Cluster start is held");
    let units = feed_all(&mut f, &c[14..]);
    assert_eq!(units.len(), 1);
    assert!(matches!(&units[0], Unit::Data { sync: true, bytes } if bytes[..] == c[..]));
    // Children of a running Cluster go out as they complete.
    let units = feed_all(&mut f, &block(7));
    assert_eq!(units, vec![Unit::Data { bytes: block(7).into(), sync: false }]);
}

#[test]
fn truncated_element_is_held() {
    let stream = [headers(), cluster(0, 3, true)].concat();
    let mut f = WebmFramer::new();
    let units = feed_all(&mut f, &stream[..stream.len() - 1]);
    assert_same(&concat(&units), &stream[..stream.len() - block(2).len()]);
}

#[test]
fn garbage_is_skipped_and_counted() {
    let mut rng = Rng(5150);
    let mut garbage = rng.bytes(1500);
    // False Cluster IDs, one followed by a plausible size.
    garbage[200..204].copy_from_slice(&CLUSTER.to_be_bytes());
    garbage[700..706].copy_from_slice(&[0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF]);
    let head = headers();
    let stream = [&garbage[..], &head, &clusters(3), &garbage, &clusters(3)].concat();
    for seed in 1..12 {
        let mut f = WebmFramer::new();
        let units = feed_random(&mut f, &stream, seed, 500);
        assert_eq!(header_units(&units), vec![(head.clone(), false)]);
        assert_same(&concat(&units), &[head.clone(), clusters(3), clusters(3)].concat());
        assert_eq!(f.skipped_bytes(), 3000);
        assert_eq!(check_boundaries(&units), 6);
    }
}

#[test]
fn garbage_inside_cluster_resyncs() {
    let head = headers();
    let mut broken = cluster(0, 4, false);
    let cut = broken.len() - block(3).len();
    // A SimpleBlock ID announcing 1 MiB, then the next Cluster.
    broken.truncate(cut);
    broken.extend_from_slice(&[0xA3, 0x10, 0x10, 0x00, 0x00, 1, 2, 3]);
    let next = clusters(2);
    let mut f = WebmFramer::new();
    let units = feed_random(&mut f, &[&head[..], &broken, &next].concat(), 9, 200);
    assert_same(&concat(&units), &[&head[..], &broken[..cut], &next].concat());
    assert_eq!(f.skipped_bytes(), 8);
    assert_eq!(check_boundaries(&units), 3);
}

#[test]
fn new_ebml_header_mid_stream_is_in_band() {
    let head = headers();
    let stream = [head.clone(), clusters(2), head.clone(), clusters(2)].concat();
    let mut f = WebmFramer::new();
    let units = feed_random(&mut f, &stream, 4, 100);
    assert_eq!(header_units(&units), vec![(head.clone(), false), (head, true)]);
    assert_same(&concat(&units), &stream);
}

#[test]
fn joining_mid_stream_emits_clusters() {
    let body = clusters(4);
    let mut f = WebmFramer::new();
    let units = feed_random(&mut f, &body[5..], 8, 64);
    let first = cluster(0, 3, true).len();
    assert!(header_units(&units).is_empty());
    assert_same(&concat(&units), &body[first..]);
    assert_eq!(f.skipped_bytes(), first as u64 - 5);
}

#[test]
fn oversized_element_is_garbage() {
    let head = headers();
    // A 32 MiB SimpleBlock is refused at once rather than buffered.
    let huge = [0xA3, 0x02, 0x00, 0x00, 0x00];
    let stream = [&head[..], &cluster(0, 1, false), &huge, &clusters(1)].concat();
    let mut f = WebmFramer::new();
    let units = feed_all(&mut f, &stream);
    assert_same(&concat(&units), &[&head[..], &cluster(0, 1, false), &clusters(1)].concat());
    assert_eq!(f.skipped_bytes(), 5);
}

#[test]
fn random_input_never_panics() {
    let mut rng = Rng(8086);
    let valid = [headers(), clusters(2)].concat();
    for round in 0..60 {
        let mut data = rng.bytes(3000);
        if round % 2 == 0 {
            let at = rng.below(2000);
            let n = valid.len().min(data.len() - at);
            data[at..at + n].copy_from_slice(&valid[..n]);
            let hit = at + rng.below(n);
            data[hit] ^= 1 << rng.below(8);
        }
        let mut f = WebmFramer::new();
        let units = feed_random(&mut f, &data, round as u64 + 1, 250);
        assert!(concat(&units).len() as u64 + f.skipped_bytes() <= data.len() as u64);
    }
}

#[test]
fn void_padding_and_cues_between_clusters() {
    let head = headers();
    let ebml_len = el(EBML, &[el(0x4286, &[1]), el(0x4282, b"webm"), el(0x4287, &[4])].concat()).len();
    let void = el(VOID, &[0; 5]);
    let padded = [&head[..ebml_len], &void, &head[ebml_len..]].concat();
    let cues = el(0x1C53_BB6B, &el(0xBB, &[0xB3, 0x81, 0]));
    let stream = [padded.clone(), cluster(0, 2, false), cues.clone(), cluster(1, 2, false)].concat();
    let mut f = WebmFramer::new();
    let units = feed_random(&mut f, &stream, 12, 40);
    assert_eq!(header_units(&units), vec![(padded, false)]);
    assert_same(&concat(&units), &stream);
    assert_eq!(f.skipped_bytes(), 0);
    // The Cues element ends the unknown-size Cluster and is relayed as data.
    assert_eq!(check_boundaries(&units), 2);
}

/// What a source can make the framer hold is bounded: an element over the
/// limit is garbage at once, however it trickles in, and headers beyond
/// their cap are given up.
#[test]
fn buffering_is_bounded() {
    let big = el(SIMPLE_BLOCK, &vec![0x81; 3 << 20]);
    let stream = [headers(), cluster(0, 1, false), big, clusters(1)].concat();
    let mut f = WebmFramer::new();
    let mut out = Vec::new();
    for piece in stream.chunks(16 * 1024) {
        f.push(piece, &mut out);
        assert!(f.buffered() <= MAX_ELEMENT as usize + 32 * 1024, "{} bytes buffered", f.buffered());
    }
    assert!(f.skipped_bytes() >= 3 << 20);
    assert!(check_boundaries(&out) >= 2, "the clusters around it went out");
    // Headers that never end (Tags growing past the cap) are dropped.
    let tags = el(0x1254_C367, &vec![0u8; 600 * 1024]);
    let endless = [headers(), tags.clone(), tags.clone()].concat();
    let mut f = WebmFramer::new();
    for piece in endless.chunks(16 * 1024) {
        f.push(piece, &mut Vec::new());
        assert!(f.buffered() <= MAX_HEADERS + MAX_ELEMENT as usize);
    }
    assert!(f.capture.is_none(), "an over-long capture is given up");
}
