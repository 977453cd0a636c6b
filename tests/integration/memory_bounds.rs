//! Every byte a source can make Floe hold is bounded and counted
//! (`held_bytes` in `/admin/stats`), and released when the stream ends:
//! inline metadata on every byte, floods of Ogg streams, WebM elements that
//! never end.

use std::io::Write;
use std::time::Duration;

use crate::support::*;

/// Everything a mount may hold with the default limits: queue, burst, their
/// bookkeeping and titles, and a framer's largest unit.
const MOUNT_BUDGET: u64 = 3 << 20;

fn put_head(mount: &str, content_type: &str, extra: &str) -> String {
    format!(
        "PUT {mount} HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: {content_type}\r\n{extra}\r\n",
        basic("source", "hackme")
    )
}

/// `icy-metaint: 1` on an opaque stream, with a new 4 KB title after every
/// audio byte, used to pin gigabytes (a chunk and a title per byte, the ring
/// counting only the audio). Now the mount stays within its budget while it
/// lasts, listeners still get titles, and it all goes when the source does.
#[test]
fn a_title_on_every_byte_stays_within_the_budget() {
    let server = TestServer::with_mounts("[[mount]]\nname = \"/meta.bin\"\nmetaint = 1000\n");
    let rss_before = server.rss_kib();
    let mut sock = open_source(&server, &put_head("/meta.bin", "audio/x-unknown", "icy-metaint: 1\r\n"));
    let mut listener = Listener::connect(&server, "/meta.bin", &[("Icy-MetaData", "1")]);
    assert_eq!(listener.head.header("icy-metaint").as_deref(), Some("1000"));
    let mut sent = 0usize;
    let mut title = 0u64;
    while sent < 40 << 20 {
        let mut burst = Vec::with_capacity(64 * 4082);
        for _ in 0..64 {
            let text = format!("StreamTitle='{title:010}{}';", "x".repeat(4000));
            burst.push(b'A');
            burst.push(255);
            burst.extend_from_slice(text.as_bytes());
            burst.resize(burst.len() + 4080 - text.len(), 0);
            title += 1;
        }
        sock.write_all(&burst).expect("the server takes the stream");
        sent += burst.len();
        if title.is_multiple_of(4096) {
            let held = server.mount_stat("/meta.bin", "held_bytes");
            assert!(held > 0 && held <= MOUNT_BUDGET, "the mount holds {held} bytes");
        }
    }
    listener.read_at_least(8000, WAIT);
    let (_, blocks) = split_icy(&listener.body, 1000);
    assert!(blocks.iter().any(|(_, text)| text.starts_with("StreamTitle='")), "titles reach listeners");
    let grown = server.rss_kib().saturating_sub(rss_before);
    assert!(grown < 48 * 1024, "40 MiB of titles grew the server by {grown} KiB");
    drop(sock);
    drop(listener);
    eventually("the ended stream is released", WAIT, || server.server_stat("held_bytes") == 0);
}

/// 14 MB of Ogg BOS pages of unknown codecs (each a new logical stream) are
/// dropped at the cost of reading them, bounded in memory; a listener of
/// another mount keeps its full rate meanwhile.
#[test]
fn a_flood_of_ogg_streams_is_dropped_in_linear_time() {
    let server = TestServer::start(Opts::default());
    let _safe = FfmpegSource::sine(&server, "/safe.mp3", MP3);
    server.wait_live("/safe.mp3");
    let mut bystander = Listener::connect(&server, "/safe.mp3", &[]);
    bystander.read_at_least(1000, WAIT);
    let mut sock = open_source(&server, &put_head("/flood.ogg", "audio/ogg", ""));
    let mut flood = Vec::with_capacity(14 << 20);
    for serial in 0u32.. {
        if flood.len() >= 14 << 20 {
            break;
        }
        let mut page = b"OggS\0\x02".to_vec();
        page.extend_from_slice(&[0; 8]);
        page.extend_from_slice(&serial.to_le_bytes());
        page.extend_from_slice(&[0; 8]);
        page.extend_from_slice(&[1, 10]);
        page.extend_from_slice(b"junk codec");
        let crc = hostile::ogg_crc(&page);
        page[22..26].copy_from_slice(&crc.to_le_bytes());
        flood.extend_from_slice(&page);
    }
    let started = std::time::Instant::now();
    let before = bystander.body.len();
    for piece in flood.chunks(256 * 1024) {
        sock.write_all(piece).expect("the server reads the flood");
        bystander.read_for(Duration::from_millis(1));
        let held = server.mount_stat("/flood.ogg", "held_bytes");
        assert!(held <= MOUNT_BUDGET, "the mount holds {held} bytes");
    }
    eventually("the flood is read", WAIT, || server.mount_stat("/flood.ogg", "total_bytes_read") >= flood.len() as u64);
    bystander.read_for(Duration::from_millis(500));
    assert_full_rate(bystander.body.len() - before, started.elapsed(), 0.8, "the bystander");
    assert!(mp3_frames_contiguous(&bystander.body) + 2000 >= bystander.body.len());
}

/// A WebM element announced larger than any real one is garbage at once,
/// and one that trickles in is held only up to the element limit.
#[test]
fn webm_elements_are_held_within_the_limit() {
    let server = TestServer::start(Opts::default());
    let mut sock = open_source(&server, &put_head("/big.webm", "video/webm", ""));
    // EBML header, Segment of unknown size, a Cluster with its Timecode,
    // then a SimpleBlock that claims 64 MiB and never ends.
    let mut stream = vec![0x1A, 0x45, 0xDF, 0xA3, 0x84, 0x42, 0x82, 0x81, 0x77];
    stream.extend_from_slice(&[0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    stream.extend_from_slice(&[0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    stream.extend_from_slice(&[0xE7, 0x81, 0x00]);
    stream.extend_from_slice(&[0xA3, 0x08, 0x00, 0x00, 0x00, 0x81, 0x00, 0x00, 0x80]);
    sock.write_all(&stream).unwrap();
    let filler = vec![0x55u8; 1 << 20];
    for _ in 0..24 {
        sock.write_all(&filler).expect("the server reads on");
    }
    eventually("the stream is read", WAIT, || server.mount_stat("/big.webm", "total_bytes_read") >= 24 << 20);
    let held = server.mount_stat("/big.webm", "held_bytes");
    assert!(held <= MOUNT_BUDGET, "the mount holds {held} bytes");
    assert!(server.mount_stat("/big.webm", "held_bytes") <= MOUNT_BUDGET);
}
