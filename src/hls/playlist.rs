//! HLS playlists rendered from the window (RFC 8216bis with its Low-Latency
//! extensions): the master playlist of the ladder, and each variant's media
//! playlist with parts, a preload hint, blocking reload, delta updates,
//! rendition reports, program date-times and titles as date ranges.
//!
//! Rules kept (and unit-tested): every segment's `EXTINF` rounds to at most
//! `EXT-X-TARGETDURATION`; every part is at most `PART-TARGET`;
//! `PART-HOLD-BACK` is three part targets; `CAN-SKIP-UNTIL` six target
//! durations; parts are listed for the last few segments only.

use std::fmt::Write;

use super::cmaf::TIMESCALE;
use super::window::{Segment, Variant, Window};
use crate::timefmt::rfc3339_millis;

/// Segments at the end of a media playlist whose parts are listed (more
/// than the three target durations the spec asks for).
const PARTS_FOR_LAST: usize = 4;

/// Seconds of media time, for tags.
fn secs(media: u64) -> f64 {
    media as f64 / f64::from(TIMESCALE)
}

/// `EXT-X-TARGETDURATION`: whole seconds, at least every segment's rounded length.
pub fn target_duration(window: &Window) -> u64 {
    (window.segment_len.div_ceil(u64::from(TIMESCALE))).max(1)
}

/// `PART-TARGET`, in seconds: at least every part's length (HE-AAC parts
/// end on 2048-sample frames, so they can run a frame over the grid).
pub fn part_target(window: &Window, variant: &Variant) -> f64 {
    let frame = variant.frame_duration();
    secs(window.part_len.div_ceil(frame) * frame)
}

/// Peak and average bits per second a variant needs: the codec's rate, and
/// the fragments' boxes on top (a few hundred bytes a part).
pub fn bandwidth(window: &Window, variant: &Variant) -> (u64, u64) {
    let average = u64::from(variant.bitrate) * 1000 + 400 * 8 * u64::from(TIMESCALE) / window.part_len;
    (average * 12 / 10, average)
}

/// The master playlist: one audio-only variant stream per ladder variant.
pub fn master(window: &Window) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let mut order: Vec<&Variant> = window.variants.iter().filter(|v| v.track.is_some()).collect();
    order.sort_by_key(|v| v.bitrate);
    for variant in order {
        let (peak, average) = bandwidth(window, variant);
        let codecs = variant.track.as_ref().map_or_else(String::new, |t| t.codecs());
        let _ = writeln!(out, "#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},CODECS=\"{codecs}\"");
        let _ = writeln!(out, "{}/index.m3u8", variant.id);
    }
    out
}

/// A variant's media playlist; with `skip`, a delta update that leaves out
/// segments older than `CAN-SKIP-UNTIL`.
pub fn media(window: &Window, index: usize, skip: bool) -> String {
    let variant = &window.variants[index];
    let target = target_duration(window);
    let part_target = part_target(window, variant);
    let mut out = String::with_capacity(256 + variant.segments.len() * 96);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-PART-INF:PART-TARGET={part_target:.5}\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.5},CAN-SKIP-UNTIL={:.1}\n",
        part_target * 3.0,
        (target * 6) as f64
    );
    let first = variant.segments.front().map_or(0, |s| s.msn);
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first}");
    let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", variant.discontinuities_dropped);
    for title in &window.titles {
        let artist = title.artist.as_deref().map(|a| format!(",X-ARTIST=\"{}\"", quoted(a))).unwrap_or_default();
        let _ = writeln!(
            out,
            "#EXT-X-DATERANGE:ID=\"title-{}\",CLASS=\"org.floe.title\",START-DATE=\"{}\",X-TITLE=\"{}\"{artist}",
            title.id,
            rfc3339_millis(title.date),
            quoted(&title.title)
        );
    }
    // Complete segments older than this may be skipped in a delta update.
    let skip_before = skip_boundary(variant, target * 6).filter(|_| skip);
    let listed = variant.segments.iter().filter(|s| !s.parts.is_empty());
    let with_parts_from = variant.segments.len().saturating_sub(PARTS_FOR_LAST);
    let mut skipped = 0;
    let mut map: Option<u32> = None;
    for (i, segment) in listed.enumerate() {
        if skip_before.is_some_and(|b| segment.msn < b) {
            skipped += 1;
            continue;
        }
        if skipped > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
            skipped = 0;
        }
        // Even on the first listed segment: once it leaves the window the
        // discontinuity sequence counts it, and numbers stay the same.
        if segment.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if map != Some(segment.init) {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"init-{}.mp4\"", segment.init);
            map = Some(segment.init);
        }
        let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", rfc3339_millis(segment.date));
        if i >= with_parts_from {
            for (p, part) in segment.parts.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "#EXT-X-PART:DURATION={:.5},URI=\"part-{}.{p}.m4s\",INDEPENDENT=YES",
                    secs(part.duration),
                    segment.msn
                );
            }
        }
        if segment.complete {
            let _ = writeln!(out, "#EXTINF:{:.5},\nseg-{}.m4s", secs(segment.duration()), segment.msn);
        }
    }
    if let Some((msn, part)) = next_part(window, variant) {
        let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-{msn}.{part}.m4s\"");
    }
    for (other, report) in window.variants.iter().enumerate().filter(|(o, _)| *o != index) {
        if let Some((msn, part)) = report.last_part() {
            let _ = writeln!(
                out,
                "#EXT-X-RENDITION-REPORT:URI=\"../{}/index.m3u8\",LAST-MSN={msn},LAST-PART={part}",
                window.variants[other].id
            );
        }
    }
    out
}

/// The oldest segment number a delta update must still list: segments
/// ending more than `until` seconds before the playlist's end may go.
fn skip_boundary(variant: &Variant, until: u64) -> Option<u64> {
    let mut age = 0u64;
    let limit = until * u64::from(TIMESCALE);
    for segment in variant.segments.iter().rev() {
        if age >= limit && segment.complete {
            return Some(segment.msn + 1);
        }
        age += segment.duration();
    }
    None
}

/// The part a player should ask for next (it is held until published).
pub fn next_part(window: &Window, variant: &Variant) -> Option<(u64, usize)> {
    if !window.running() {
        return None;
    }
    let last: &Segment = variant.segments.back()?;
    if last.complete {
        Some((last.msn + 1, 0))
    } else {
        Some((last.msn, last.parts.len()))
    }
}

/// A value for a quoted-string attribute: no `"`, no line breaks.
fn quoted(text: &str) -> String {
    crate::escape::header_value(text).replace('"', "'")
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use bytes::Bytes;

    use super::*;
    use crate::config::{HlsConfig, HlsVariant, TranscodeCodec};

    fn window(segments: usize) -> Window {
        let config = HlsConfig {
            variants: vec![HlsVariant::encoded(TranscodeCodec::Aac, 64), HlsVariant::encoded(TranscodeCodec::Opus, 96)],
            ..HlsConfig::default()
        };
        let mut w = Window::new(&config);
        w.begin(SystemTime::UNIX_EPOCH);
        w.started(0, 2, 0);
        w.started(1, 2, 312);
        let frames = |n: usize| (0..n).map(|_| Bytes::from_static(&[1; 40])).collect();
        let now = SystemTime::UNIX_EPOCH;
        w.frames(0, frames(90 * segments + 20), now);
        w.frames(1, frames(96 * segments + 16), now);
        w
    }

    fn tag_values<'a>(text: &'a str, tag: &str) -> Vec<&'a str> {
        text.lines().filter_map(|l| l.strip_prefix(tag)).collect()
    }

    #[test]
    fn master_lists_every_variant_with_codecs() {
        let text = master(&window(2));
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:9\n"));
        let streams = tag_values(&text, "#EXT-X-STREAM-INF:");
        assert_eq!(streams.len(), 2);
        assert!(streams[0].contains("CODECS=\"mp4a.40.2\"") && streams[1].contains("CODECS=\"opus\""));
        assert!(text.contains("\naac-64/index.m3u8\n") && text.contains("\nopus-96/index.m3u8\n"));
    }

    #[test]
    fn media_playlists_keep_the_ll_hls_rules() {
        let w = window(5);
        let text = media(&w, 0, false);
        let target: f64 = tag_values(&text, "#EXT-X-TARGETDURATION:")[0].parse().unwrap();
        for extinf in tag_values(&text, "#EXTINF:") {
            let d: f64 = extinf.trim_end_matches(',').parse().unwrap();
            assert!(d.round() <= target, "{d} vs {target}");
        }
        let part_target: f64 = tag_values(&text, "#EXT-X-PART-INF:PART-TARGET=")[0].parse().unwrap();
        for part in tag_values(&text, "#EXT-X-PART:DURATION=") {
            let d: f64 = part.split(',').next().unwrap().parse().unwrap();
            assert!(d <= part_target + 1e-9);
        }
        let control = tag_values(&text, "#EXT-X-SERVER-CONTROL:")[0];
        assert!(control.contains("CAN-BLOCK-RELOAD=YES"));
        assert!(control.contains(&format!("PART-HOLD-BACK={:.5}", part_target * 3.0)));
        assert!(control.contains(&format!("CAN-SKIP-UNTIL={:.1}", target * 6.0)));
        assert_eq!(tag_values(&text, "#EXTINF:").len(), 5, "five complete segments");
        assert_eq!(tag_values(&text, "#EXT-X-PART:").len(), 4 * 6 - 6 + 1, "parts of the last four segments");
        let msn = w.variants[0].segments.back().unwrap().msn;
        assert!(text.contains(&format!("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-{msn}.1.m4s\"")), "{text}");
        assert!(text.contains("#EXT-X-RENDITION-REPORT:URI=\"../opus-96/index.m3u8\",LAST-MSN="));
        assert!(text.contains("#EXT-X-MAP:URI=\"init-0.mp4\""));
        assert_eq!(tag_values(&text, "#EXT-X-PROGRAM-DATE-TIME:").len(), 6);
    }

    #[test]
    fn delta_updates_skip_old_segments() {
        let w = window(12);
        let full = media(&w, 0, false);
        let delta = media(&w, 0, true);
        let skipped: usize = tag_values(&delta, "#EXT-X-SKIP:SKIPPED-SEGMENTS=")[0].parse().unwrap();
        assert!(skipped >= 1, "{delta}");
        let listed = |t: &str| tag_values(t, "#EXTINF:").len();
        assert_eq!(listed(&full), listed(&delta) + skipped);
        // What is left still spans CAN-SKIP-UNTIL (12 s) of complete segments.
        let left: f64 =
            tag_values(&delta, "#EXTINF:").iter().map(|d| d.trim_end_matches(',').parse::<f64>().unwrap()).sum();
        assert!(left >= 12.0, "{left}");
        assert_eq!(tag_values(&delta, "#EXT-X-MEDIA-SEQUENCE:"), tag_values(&full, "#EXT-X-MEDIA-SEQUENCE:"));
        assert!(!media(&window(3), 0, true).contains("#EXT-X-SKIP"), "nothing to skip in a short playlist");
    }

    #[test]
    fn titles_are_date_ranges_and_quotes_cannot_break_them() {
        let mut w = window(1);
        w.title("A \"quoted\"\nsong".into(), Some("Artist".into()), SystemTime::UNIX_EPOCH);
        let text = media(&w, 1, false);
        let range = tag_values(&text, "#EXT-X-DATERANGE:")[0];
        assert!(range.starts_with("ID=\"title-1\",CLASS=\"org.floe.title\",START-DATE=\"1970-01-01T00:00:00.000Z\""));
        assert!(range.ends_with("X-TITLE=\"A 'quoted'song\",X-ARTIST=\"Artist\""), "{range}");
    }
}
