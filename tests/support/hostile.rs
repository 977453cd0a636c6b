//! Crafted sources for the hostile-input tests, made from real ffmpeg output:
//! valid containers carrying what upsets a codec. Nothing here is committed
//! as a binary; every test builds its input from a fresh ffmpeg capture.

use super::mp3_frame_len;

/// Bits in a byte buffer, MSB first (MPEG side information).
fn put_bits_msb(data: &mut [u8], bit: usize, value: u32, n: usize) {
    for i in 0..n {
        let at = bit + i;
        let on = value >> (n - 1 - i) & 1 == 1;
        let mask = 0x80u8 >> (at % 8);
        if on {
            data[at / 8] |= mask;
        } else {
            data[at / 8] &= !mask;
        }
    }
}

/// An MP3 stream (MPEG-1 Layer III, as ffmpeg's libmp3lame writes it) with
/// the global gain of every granule and channel set to `gain`: still valid
/// frames, which decode to samples hundreds of times past full scale.
pub fn loud_mp3(mp3: &[u8], gain: u8) -> Vec<u8> {
    let mut data = mp3.to_vec();
    let mut at = 0;
    // An ID3v2 tag first: its size is four 7-bit bytes.
    if data.starts_with(b"ID3") && data.len() > 10 {
        at = 10 + data[6..10].iter().fold(0usize, |n, &b| n << 7 | usize::from(b & 0x7f));
    }
    let mut frames = 0;
    while at + 4 <= data.len() {
        let Some(len) = mp3_frame_len(&data[at..at + 4]) else {
            at += 1;
            continue;
        };
        if at + len > data.len() {
            break;
        }
        let header = &data[at..at + 4];
        assert_eq!(header[1] >> 3 & 3, 3, "MPEG-1 frames expected");
        let crc = if header[1] & 1 == 0 { 2 } else { 0 };
        let channels = if header[3] >> 6 == 3 { 1 } else { 2 };
        // main_data_begin, private bits, scfsi; then 59 bits per granule and channel.
        let side = (at + 4 + crc) * 8 + 9 + if channels == 1 { 5 } else { 3 } + 4 * channels;
        for block in 0..2 * channels {
            // part2_3_length (12) and big_values (9) come before global_gain.
            put_bits_msb(&mut data, side + block * 59 + 21, u32::from(gain), 8);
        }
        frames += 1;
        at += len;
    }
    assert!(frames > 10, "an MP3 stream ({frames} frames)");
    data
}

/// Ogg's page CRC (polynomial 0x04c11db7, no reflection, CRC field zeroed).
pub fn ogg_crc(page: &[u8]) -> u32 {
    let mut crc = 0u32;
    for (i, &byte) in page.iter().enumerate() {
        let byte = if (22..26).contains(&i) { 0 } else { byte };
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { crc << 1 ^ 0x04c1_1db7 } else { crc << 1 };
        }
    }
    crc
}

/// One Ogg page of a stream.
struct Page {
    flags: u8,
    granule: u64,
    serial: u32,
    /// (segment table, body).
    lacing: Vec<u8>,
    body: Vec<u8>,
}

fn parse_pages(ogg: &[u8]) -> Vec<Page> {
    let mut pages = Vec::new();
    let mut at = 0;
    while at + 27 <= ogg.len() {
        assert_eq!(&ogg[at..at + 4], b"OggS", "page at {at}");
        let segments = usize::from(ogg[at + 26]);
        let lacing = ogg[at + 27..at + 27 + segments].to_vec();
        let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        let body_at = at + 27 + segments;
        pages.push(Page {
            flags: ogg[at + 5],
            granule: u64::from_le_bytes(ogg[at + 6..at + 14].try_into().unwrap()),
            serial: u32::from_le_bytes(ogg[at + 14..at + 18].try_into().unwrap()),
            lacing,
            body: ogg[body_at..body_at + body_len].to_vec(),
        });
        at = body_at + body_len;
    }
    pages
}

fn write_page(out: &mut Vec<u8>, page: &Page, sequence: u32) {
    let start = out.len();
    out.extend_from_slice(b"OggS\0");
    out.push(page.flags);
    out.extend_from_slice(&page.granule.to_le_bytes());
    out.extend_from_slice(&page.serial.to_le_bytes());
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(page.lacing.len() as u8);
    out.extend_from_slice(&page.lacing);
    out.extend_from_slice(&page.body);
    let crc = ogg_crc(&out[start..]);
    out[start + 22..start + 26].copy_from_slice(&crc.to_le_bytes());
}

/// Pages holding `packets` (header packets: granule 0, each page flushed).
fn packets_to_pages(packets: &[Vec<u8>], serial: u32, first_flags: u8) -> Vec<Page> {
    let mut pages = Vec::new();
    for (i, packet) in packets.iter().enumerate() {
        let mut lacing = vec![255u8; packet.len() / 255];
        lacing.push((packet.len() % 255) as u8);
        let mut body_at = 0;
        for (n, chunk) in lacing.chunks(255).enumerate() {
            let len: usize = chunk.iter().map(|&l| usize::from(l)).sum();
            let mut flags = if i == 0 && n == 0 { first_flags } else { 0 };
            if n > 0 {
                flags |= 0x01; // continued packet
            }
            pages.push(Page {
                flags,
                granule: 0,
                serial,
                lacing: chunk.to_vec(),
                body: packet[body_at..body_at + len].to_vec(),
            });
            body_at += len;
        }
    }
    pages
}

/// An Ogg stream with its header pages (granule 0) kept and every audio
/// packet replaced by what `packet` makes of its length (a packet spanning
/// pages: each page's part), CRCs made right: the stream frames and its
/// decoder starts, then gets garbage for every packet.
pub fn ogg_with_garbage_packets(ogg: &[u8], packet: &mut dyn FnMut(usize) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    for (sequence, mut page) in (0u32..).zip(parse_pages(ogg)) {
        if page.granule != 0 {
            let mut body = Vec::with_capacity(page.body.len());
            let mut len = 0;
            for (i, &lace) in page.lacing.iter().enumerate() {
                len += usize::from(lace);
                if lace < 255 || i + 1 == page.lacing.len() {
                    body.extend(packet(len));
                    len = 0;
                }
            }
            assert_eq!(body.len(), page.body.len(), "garbage as long as the packets it replaces");
            page.body = body;
        }
        write_page(&mut out, &page, sequence);
    }
    out
}

/// LSB-first bit writer (Vorbis headers).
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    pos: usize,
}

impl Bits {
    fn put(&mut self, value: u32, n: u32) {
        for i in 0..n {
            if self.pos / 8 == self.bytes.len() {
                self.bytes.push(0);
            }
            self.bytes[self.pos / 8] |= ((value >> i & 1) as u8) << (self.pos % 8);
            self.pos += 1;
        }
    }
}

fn ilog(x: u32) -> u32 {
    32 - x.leading_zeros()
}

/// A Vorbis stream (one logical stream, as ffmpeg's libvorbis writes it)
/// whose setup header starts with extra codebooks of `(dimensions, entries)`
/// each: lookup-type-1 tables the decoder builds in full although the header
/// spends a few bits on them. The stream's own codebooks follow, so the
/// header stays well formed.
pub fn vorbis_with_codebooks(ogg: &[u8], extra: &[(u32, u32)]) -> Vec<u8> {
    let pages = parse_pages(ogg);
    let serial = pages[0].serial;
    // Reassemble the three header packets.
    let mut packets: Vec<Vec<u8>> = Vec::new();
    let mut current = Vec::new();
    let mut header_pages = 0;
    for page in &pages {
        if packets.len() == 3 {
            break;
        }
        header_pages += 1;
        let mut at = 0;
        for &lace in &page.lacing {
            current.extend_from_slice(&page.body[at..at + usize::from(lace)]);
            at += usize::from(lace);
            if lace < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        assert!(packets.len() < 3 || at == page.body.len(), "audio shares a page with the headers");
    }
    assert_eq!(packets.len(), 3, "three header packets");
    let setup = &packets[2];
    assert!(setup.starts_with(b"\x05vorbis"));
    let count = u32::from(setup[7]) + 1;
    assert!(count + extra.len() as u32 <= 256, "room for {} codebooks besides {count}", extra.len());
    let mut bits = Bits::default();
    bits.put(count + extra.len() as u32 - 1, 8);
    for &(dimensions, entries) in extra {
        bits.put(0x56_4342, 24);
        bits.put(dimensions, 16);
        bits.put(entries, 24);
        bits.put(1, 1); // ordered lengths: all entries share one length
        bits.put(ilog(entries) - 2, 5);
        bits.put(entries, ilog(entries));
        bits.put(1, 4); // lookup type 1
        bits.put(0, 32);
        bits.put(0, 32);
        bits.put(0, 4); // one bit per value
        bits.put(0, 1);
        // lookup1_values: the largest v with v^dimensions <= entries.
        let values = (1u32..).take_while(|v| v.checked_pow(dimensions).is_some_and(|p| p <= entries)).count();
        bits.put(0, values.max(1) as u32);
    }
    for &byte in &setup[8..] {
        bits.put(u32::from(byte), 8);
    }
    packets[2] = [b"\x05vorbis".as_slice(), &bits.bytes].concat();
    let mut out = Vec::new();
    let mut headers = packets_to_pages(&packets[..1], serial, 0x02);
    headers.extend(packets_to_pages(&packets[1..], serial, 0));
    for (sequence, page) in (0u32..).zip(headers.iter().chain(&pages[header_pages..])) {
        write_page(&mut out, page, sequence);
    }
    out
}
