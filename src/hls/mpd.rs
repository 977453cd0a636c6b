//! The DASH manifest over the same CMAF segments the HLS playlists list: a
//! dynamic MPD with a `SegmentTimeline` per representation (`$Number$` is
//! the HLS media sequence number), the timeshift window as
//! `timeShiftBufferDepth`, and low latency through `availabilityTimeOffset`
//! (a segment may be asked for as soon as its first part exists; it then
//! arrives part by part) and a `ServiceDescription` latency target.
//!
//! Media time is wall-clock time since 1970 in 48 kHz units (the window
//! numbers segments from the clock), so `availabilityStartTime` is the epoch
//! and players find the live edge from `UTCTiming`.

use std::fmt::Write;
use std::time::SystemTime;

use super::cmaf::{ID3_SCHEME, TIMESCALE};
use super::playlist::bandwidth;
use super::window::{Variant, Window};
use crate::config::TranscodeCodec;
use crate::escape::escape_xml;
use crate::timefmt::rfc3339_millis;

/// `PT1.920S`.
fn duration(media: u64) -> String {
    format!("PT{:.3}S", media as f64 / f64::from(TIMESCALE))
}

/// The manifest; `prefix` is where the variants' files are (`/hls/<mount>`).
pub fn manifest(window: &Window, prefix: &str, window_secs: u64, now: SystemTime) -> String {
    let mut out = String::with_capacity(4096);
    let latency_ms = (window.part_len * 4 * 1000 / u64::from(TIMESCALE)).max(1500);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
         profiles=\"urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019\" type=\"dynamic\" \
         availabilityStartTime=\"1970-01-01T00:00:00Z\" publishTime=\"{}\" minimumUpdatePeriod=\"{}\" \
         timeShiftBufferDepth=\"{}\" maxSegmentDuration=\"{}\" minBufferTime=\"{}\">\n\
         <ServiceDescription id=\"0\"><Latency referenceId=\"0\" target=\"{latency_ms}\" min=\"{}\" max=\"{}\"/>\
         <PlaybackRate min=\"0.96\" max=\"1.04\"/></ServiceDescription>\n\
         <Period id=\"0\" start=\"PT0S\">\n",
        rfc3339_millis(now),
        duration(window.segment_len),
        duration(depth(window, window_secs)),
        duration(window.segment_len),
        duration(window.part_len * 2),
        latency_ms / 2,
        latency_ms * 3,
    );
    for (set, name) in ["aac", "opus"].into_iter().enumerate() {
        let listed = |v: &&Variant| switching_set(v.codec) == Some(name) && v.track.is_some() && !v.segments.is_empty();
        let variants: Vec<&Variant> = window.variants.iter().filter(listed).collect();
        // One grid for every variant: the set shares one template (where
        // dash.js looks for low-latency signalling), timed by the variant
        // with the most segments.
        let Some(timed) = variants.iter().max_by_key(|v| v.segments.len()) else { continue };
        let _ = write!(
            out,
            "<AdaptationSet id=\"{set}\" contentType=\"audio\" mimeType=\"audio/mp4\" lang=\"und\" \
             segmentAlignment=\"true\" startWithSAP=\"1\" label=\"{name}\">\n\
             <InbandEventStream schemeIdUri=\"{ID3_SCHEME}\" value=\"\"/>\n"
        );
        template(&mut out, window, timed, prefix);
        for variant in &variants {
            representation(&mut out, window, variant);
        }
        out.push_str("</AdaptationSet>\n");
    }
    let _ = write!(
        out,
        "</Period>\n<UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" value=\"{}\"/>\n</MPD>\n",
        rfc3339_millis(now)
    );
    out
}

/// How far back players may seek: the configured window, or what the
/// window holds while it is still filling (players would otherwise seek to
/// segments that never existed).
fn depth(window: &Window, window_secs: u64) -> u64 {
    window.span().min(window_secs * u64::from(TIMESCALE))
}

/// The adaptation set a codec's variants join: players switch within a set,
/// so AAC variants form one and Opus ones another.
fn switching_set(codec: TranscodeCodec) -> Option<&'static str> {
    match codec {
        TranscodeCodec::Aac | TranscodeCodec::HeAac => Some("aac"),
        TranscodeCodec::Opus => Some("opus"),
        _ => None,
    }
}

fn representation(out: &mut String, window: &Window, variant: &Variant) {
    let Some(track) = &variant.track else { return };
    let (peak, _) = bandwidth(window, variant);
    let _ = write!(
        out,
        "<Representation id=\"{}\" codecs=\"{}\" bandwidth=\"{peak}\" audioSamplingRate=\"{TIMESCALE}\">\n\
         <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{}\"/>\n\
         </Representation>\n",
        escape_xml(&variant.id),
        track.codecs(),
        track.channels,
    );
}

/// The set's `SegmentTemplate` with the timeline of `timed`.
fn template(out: &mut String, window: &Window, timed: &Variant, prefix: &str) {
    let base = escape_xml(&format!("{prefix}/$RepresentationID$"));
    let first = timed.segments.front().map_or(0, |s| s.msn);
    let init = timed.inits.len().saturating_sub(1);
    let offset = (window.segment_len - window.part_len) as f64 / f64::from(TIMESCALE);
    let _ = write!(
        out,
        "<SegmentTemplate timescale=\"{TIMESCALE}\" initialization=\"{base}/init-{init}.mp4\" \
         media=\"{base}/seg-$Number$.m4s\" startNumber=\"{first}\" availabilityTimeOffset=\"{offset:.3}\" \
         availabilityTimeComplete=\"false\">\n<SegmentTimeline>"
    );
    // One S per run of segments that follow each other with one duration;
    // the segment being written counts at its full length.
    let mut runs: Vec<(u64, u64, u64)> = Vec::new();
    for segment in &timed.segments {
        let start = segment.start;
        let length = if segment.complete { segment.duration() } else { (segment.msn + 1) * window.segment_len - start };
        match runs.last_mut() {
            Some((t, d, r)) if *d == length && *t + *d * (*r + 1) == start => *r += 1,
            _ => runs.push((start, length, 0)),
        }
    }
    for (t, d, r) in runs {
        if r > 0 {
            let _ = write!(out, "<S t=\"{t}\" d=\"{d}\" r=\"{r}\"/>");
        } else {
            let _ = write!(out, "<S t=\"{t}\" d=\"{d}\"/>");
        }
    }
    out.push_str("</SegmentTimeline>\n</SegmentTemplate>\n");
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::config::{HlsConfig, HlsVariant};

    #[test]
    fn one_manifest_over_the_hls_segments() {
        let config = HlsConfig {
            variants: vec![
                HlsVariant::encoded(TranscodeCodec::Aac, 64),
                HlsVariant::encoded(TranscodeCodec::Aac, 128),
                HlsVariant::encoded(TranscodeCodec::Opus, 96),
            ],
            ..HlsConfig::default()
        };
        let mut w = Window::new(&config);
        w.begin(SystemTime::UNIX_EPOCH);
        for v in 0..3 {
            w.started(v, 2, 312);
        }
        let frames = |n: usize| (0..n).map(|_| Bytes::from_static(&[1; 40])).collect();
        w.frames(0, frames(90 * 3 + 30), SystemTime::UNIX_EPOCH);
        w.frames(2, frames(96 * 3), SystemTime::UNIX_EPOCH);
        let mpd = manifest(&w, "/hls/live.mp3", 3600, SystemTime::UNIX_EPOCH);
        // The window holds 3 × 1.92 + 0.64 s of aac-64 so far.
        assert!(mpd.contains("type=\"dynamic\"") && mpd.contains("timeShiftBufferDepth=\"PT6.400S\""), "{mpd}");
        assert_eq!(mpd.matches("<AdaptationSet ").count(), 2, "AAC and Opus sets");
        assert_eq!(mpd.matches("<Representation ").count(), 2, "aac-128 has no segment yet");
        assert!(mpd.contains("media=\"/hls/live.mp3/$RepresentationID$/seg-$Number$.m4s\" startNumber=\"0\""));
        assert!(mpd.contains("availabilityTimeOffset=\"1.600\""));
        // aac-64: three complete segments and one being written, all 1.92 s.
        assert!(mpd.contains("<SegmentTimeline><S t=\"0\" d=\"92160\" r=\"3\"/></SegmentTimeline>"), "{mpd}");
        assert!(mpd.contains("schemeIdUri=\"https://aomedia.org/emsg/ID3\""));
        assert!(mpd.contains("<Latency referenceId=\"0\" target=\"1500\""));
    }
}
