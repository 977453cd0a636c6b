//! The timeshift window of one mount's ladder: coded frames in, CMAF parts
//! and segments out, on one grid for every variant.
//!
//! Segment `n` of every variant starts at media time `n × segment length`
//! (48 kHz units), and holds `segment_parts` parts of equal length. A
//! frame belongs to the part its start falls in, and a part is published as
//! soon as a frame reaches its end, so low-latency players see it at once.
//! A session of the codec process (a start, a restart after a failure, a
//! source reconnecting) begins at the next free segment number with a
//! discontinuity: numbers and media times only ever grow. Numbers also
//! follow the wall clock (a session never starts below "now" in segments
//! since 1970), so a restarted server does not reuse a URL an HTTP cache
//! may hold, and DASH players can find the live edge from the clock.
//!
//! The window keeps `window` worth of segments within `window_bytes`;
//! older ones go. Nothing here does I/O or waits: `HlsStream` (in `mod.rs`)
//! wraps it with a lock and a wake-up for blocking requests.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};

use super::cmaf::{self, Event, Track, TIMESCALE};
use crate::config::{HlsConfig, TranscodeCodec};

/// One published part (a CMAF chunk) of a variant.
#[derive(Debug, Clone)]
pub struct Part {
    pub bytes: Bytes,
    /// Media duration in `TIMESCALE` units.
    pub duration: u64,
}

/// One segment of a variant: its parts so far.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Media sequence number, the same in every variant for the same time.
    pub msn: u64,
    /// Media time of its first part (later than `msn × length` when a
    /// session started inside it).
    pub start: u64,
    pub parts: Vec<Part>,
    /// No more parts will come.
    pub complete: bool,
    /// Wall-clock time of its first frame (`EXT-X-PROGRAM-DATE-TIME`).
    pub date: SystemTime,
    /// The audio breaks before it (a new session).
    pub discontinuity: bool,
    /// Which init segment it needs (see `Variant::inits`).
    pub init: u32,
    /// Once complete, the whole segment in one buffer (its parts are
    /// slices of it), so it is served without copying.
    pub whole: Bytes,
}

impl Segment {
    pub fn duration(&self) -> u64 {
        self.parts.iter().map(|p| p.duration).sum()
    }

    pub fn bytes(&self) -> usize {
        self.parts.iter().map(|p| p.bytes.len()).sum()
    }

    /// No more parts come: join them into one buffer.
    fn finish(&mut self) {
        if self.complete {
            return;
        }
        self.complete = true;
        let mut whole = BytesMut::with_capacity(self.bytes());
        for part in &self.parts {
            whole.extend_from_slice(&part.bytes);
        }
        let whole = whole.freeze();
        let mut at = 0;
        for part in &mut self.parts {
            let len = part.bytes.len();
            part.bytes = whole.slice(at..at + len);
            at += len;
        }
        self.whole = whole;
    }
}

/// A title change on the timeline (`EXT-X-DATERANGE`, and an `emsg` in the
/// first part that starts at or after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitleMark {
    pub id: u32,
    pub date: SystemTime,
    /// Media time it takes effect.
    pub time: u64,
    pub title: String,
    pub artist: Option<String>,
}

/// One variant of the ladder.
#[derive(Debug)]
pub struct Variant {
    pub id: String,
    pub codec: TranscodeCodec,
    pub bitrate: u32,
    /// Init segments, numbered; a session whose encoder differs (channels)
    /// gets a new one.
    pub inits: Vec<Bytes>,
    pub track: Option<Track>,
    pub segments: VecDeque<Segment>,
    /// Frames of the part being built, and where they start (media time).
    pending: Vec<Bytes>,
    pending_start: u64,
    /// Media time of the next frame, when the variant is running.
    next_time: Option<u64>,
    /// Titles not yet carried in a part.
    events: Vec<TitleMark>,
    /// Discontinuities in segments already dropped from the window
    /// (`EXT-X-DISCONTINUITY-SEQUENCE`).
    pub discontinuities_dropped: u64,
}

impl Variant {
    /// Media duration of one coded frame.
    pub fn frame_duration(&self) -> u64 {
        match self.codec {
            TranscodeCodec::HeAac => 2048,
            TranscodeCodec::Opus => 960,
            _ => 1024,
        }
    }

    /// The newest segment that has a part, and that part's index.
    pub fn last_part(&self) -> Option<(u64, usize)> {
        let segment = self.segments.iter().rev().find(|s| !s.parts.is_empty())?;
        Some((segment.msn, segment.parts.len() - 1))
    }

    /// Segment `msn`, if the window holds it (numbers may skip between sessions).
    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        let at = self.segments.binary_search_by_key(&msn, |s| s.msn).ok()?;
        self.segments.get(at)
    }
}

/// The window of one mount.
#[derive(Debug)]
pub struct Window {
    pub variants: Vec<Variant>,
    /// Segment and part lengths in media time.
    pub segment_len: u64,
    pub part_len: u64,
    window: Duration,
    window_bytes: u64,
    /// The segment the next session starts with.
    next_msn: u64,
    /// Media time the running session's first frame goes at.
    session_start: u64,
    /// A session is running (frames are accepted).
    running: bool,
    /// Sessions so far (the first one is no discontinuity).
    sessions: u64,
    pub titles: VecDeque<TitleMark>,
    next_title_id: u32,
    /// Bytes of every part and init segment held.
    held: usize,
}

fn media(duration: Duration) -> u64 {
    (duration.as_micros() * u128::from(TIMESCALE) / 1_000_000) as u64
}

impl Window {
    pub fn new(config: &HlsConfig) -> Window {
        let part_len = media(config.part);
        Window {
            variants: config
                .variants
                .iter()
                .map(|v| Variant {
                    id: v.id.clone(),
                    codec: v.codec,
                    bitrate: v.bitrate,
                    inits: Vec::new(),
                    track: None,
                    segments: VecDeque::new(),
                    pending: Vec::new(),
                    pending_start: 0,
                    next_time: None,
                    events: Vec::new(),
                    discontinuities_dropped: 0,
                })
                .collect(),
            segment_len: part_len * u64::from(config.segment_parts),
            part_len,
            window: config.window,
            window_bytes: config.window_bytes,
            next_msn: 0,
            session_start: 0,
            running: false,
            sessions: 0,
            titles: VecDeque::new(),
            next_title_id: 1,
            held: 0,
        }
    }

    pub fn running(&self) -> bool {
        self.running
    }

    /// A session starts: frames from now on begin at the next free segment,
    /// or at the wall clock's part if that is later (a session after a pause
    /// starts inside its segment, so media time keeps up with the clock, as
    /// DASH players expect).
    pub fn begin(&mut self, now: SystemTime) {
        self.end();
        let since_epoch = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let clock = media(since_epoch).div_ceil(self.part_len) * self.part_len;
        self.session_start = clock.max(self.next_msn * self.segment_len);
        self.next_msn = self.session_start / self.segment_len;
        self.running = true;
        self.sessions += 1;
    }

    /// The session ends: what is pending goes out as a last, short part,
    /// and every open segment is complete.
    pub fn end(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let now = SystemTime::now();
        for index in 0..self.variants.len() {
            self.close_part(index, now);
            let variant = &mut self.variants[index];
            variant.next_time = None;
            if let Some(last) = variant.segments.back_mut() {
                last.finish();
            }
        }
        let reached = self.variants.iter().filter_map(|v| v.segments.back()).map(|s| s.msn + 1).max();
        self.next_msn = self.next_msn.max(reached.unwrap_or(0));
    }

    /// A variant's encoder started with these parameters.
    pub fn started(&mut self, index: usize, channels: u8, pre_skip: u16) {
        let Some(variant) = self.variants.get_mut(index) else { return };
        let bitrate = variant.bitrate * 1000;
        let track = match variant.codec {
            TranscodeCodec::HeAac => Track::he_aac(channels, bitrate),
            TranscodeCodec::Opus => Track::opus(channels, bitrate, pre_skip),
            _ => Track::aac_lc(channels, bitrate),
        };
        if variant.track.as_ref() != Some(&track) {
            let init = Bytes::from(cmaf::init_segment(&track));
            self.held += init.len();
            variant.inits.push(init);
            variant.track = Some(track);
        }
    }

    /// Coded frames of a variant, in order. Returns whether a part was published.
    pub fn frames(&mut self, index: usize, frames: Vec<Bytes>, now: SystemTime) -> bool {
        if !self.running || self.variants.get(index).is_none_or(|v| v.track.is_none()) {
            return false;
        }
        let start = self.session_start;
        let mut published = false;
        for frame in frames {
            let variant = &mut self.variants[index];
            let time = *variant.next_time.get_or_insert(start);
            let duration = variant.frame_duration();
            if variant.pending.is_empty() {
                variant.pending_start = time;
            }
            variant.pending.push(frame);
            variant.next_time = Some(time + duration);
            let part_end = (variant.pending_start / self.part_len + 1) * self.part_len;
            if time + duration >= part_end {
                published |= self.close_part(index, now);
            }
        }
        if published {
            self.evict();
        }
        published
    }

    /// Cut the pending frames into a part of their segment; false if none.
    fn close_part(&mut self, index: usize, now: SystemTime) -> bool {
        let (segment_len, part_len) = (self.segment_len, self.part_len);
        let first_session = self.sessions <= 1;
        let next_msn = self.next_msn;
        let variant = &mut self.variants[index];
        if variant.pending.is_empty() {
            return false;
        }
        let frames = std::mem::take(&mut variant.pending);
        let start = variant.pending_start;
        let duration = variant.frame_duration() * frames.len() as u64;
        let msn = start / segment_len;
        let part_index = (start % segment_len) / part_len;
        let init = variant.inits.len().saturating_sub(1) as u32;
        let segment_start = variant.segments.back().is_none_or(|s| s.msn != msn);
        if segment_start {
            if let Some(previous) = variant.segments.back_mut() {
                previous.finish();
            }
            // The session's first segment follows a break (but the very first does not).
            let discontinuity = msn == next_msn && !first_session;
            let date = now - Duration::from_micros(duration * 1_000_000 / u64::from(TIMESCALE));
            variant.segments.push_back(Segment {
                msn,
                start,
                parts: Vec::new(),
                complete: false,
                date,
                discontinuity,
                init,
                whole: Bytes::new(),
            });
        }
        let event_at = variant.events.iter().position(|e| e.time < start + duration);
        let event = event_at.map(|at| variant.events.remove(at)).map(|mark| Event {
            time: mark.time.max(start),
            id: mark.id,
            id3: super::id3::title_tag(&mark.title, mark.artist.as_deref()),
        });
        let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_ref()).collect();
        let sequence = (msn * 64 + part_index) as u32;
        let chunk = cmaf::chunk(sequence, start, variant.frame_duration() as u32, &refs, segment_start, event.as_ref());
        let Some(segment) = variant.segments.back_mut().filter(|s| s.msn == msn) else {
            // A part whose segment start was never seen (a session began mid-segment): dropped.
            return false;
        };
        self.held += chunk.len();
        segment.parts.push(Part { bytes: Bytes::from(chunk), duration });
        if (part_index + 1) * part_len >= segment_len {
            segment.finish();
        }
        true
    }

    /// A title change: it takes effect at the next part of every variant.
    pub fn title(&mut self, title: String, artist: Option<String>, date: SystemTime) {
        if !self.running {
            return;
        }
        let time = self.variants.iter().filter_map(|v| v.next_time).max().unwrap_or(self.next_msn * self.segment_len);
        let mark = TitleMark { id: self.next_title_id, date, time, title, artist };
        self.next_title_id += 1;
        for variant in &mut self.variants {
            variant.events.retain(|e| e.time < time);
            variant.events.push(mark.clone());
        }
        self.titles.push_back(mark);
    }

    /// Drop what is older than the window or past its byte budget: whole
    /// segments, the same numbers in every variant (the newest stays).
    fn evict(&mut self) {
        let newest = self.newest_msn();
        let mut floor = newest.saturating_sub(media(self.window) / self.segment_len);
        self.drop_before(floor);
        while self.held as u64 > self.window_bytes && floor < newest {
            floor += 1;
            self.drop_before(floor);
        }
        let first_time = self.variants.iter().filter_map(|v| v.segments.front()).map(|s| s.msn).min();
        let first_time = first_time.unwrap_or(newest) * self.segment_len;
        // Titles before the window go, but the one playing at its start.
        while self.titles.get(1).is_some_and(|t| t.time <= first_time) {
            self.titles.pop_front();
        }
    }

    fn drop_before(&mut self, floor: u64) {
        for variant in &mut self.variants {
            while variant.segments.front().is_some_and(|s| s.msn < floor) {
                if let Some(old) = variant.segments.pop_front() {
                    self.held -= old.bytes();
                    variant.discontinuities_dropped += u64::from(old.discontinuity);
                }
            }
        }
    }

    fn newest_msn(&self) -> u64 {
        self.variants.iter().filter_map(|v| v.segments.back()).map(|s| s.msn).max().unwrap_or(0)
    }

    /// Bytes held: every part of every variant, and the init segments.
    pub fn bytes(&self) -> usize {
        self.held
    }

    /// Media time the window spans (48 kHz units): from the oldest segment
    /// held to the newest part, in the variant that holds the most.
    pub fn span(&self) -> u64 {
        let span = |v: &Variant| {
            let (first, last) = (v.segments.front()?, v.segments.back()?);
            Some(last.start + last.duration() - first.start)
        };
        self.variants.iter().filter_map(span).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HlsVariant;

    fn config() -> HlsConfig {
        HlsConfig {
            variants: vec![HlsVariant::encoded(TranscodeCodec::Aac, 64), HlsVariant::encoded(TranscodeCodec::Opus, 96)],
            ..HlsConfig::default()
        }
    }

    fn frames(n: usize) -> Vec<Bytes> {
        (0..n).map(|i| Bytes::from(vec![i as u8; 50])).collect()
    }

    fn started(window: &mut Window) {
        window.begin(SystemTime::UNIX_EPOCH);
        window.started(0, 2, 0);
        window.started(1, 2, 312);
    }

    #[test]
    fn frames_become_parts_on_one_grid() {
        let mut w = Window::new(&config());
        assert_eq!((w.part_len, w.segment_len), (15_360, 92_160));
        started(&mut w);
        let now = SystemTime::now();
        // 15 AAC frames and 16 Opus frames are one 320 ms part each.
        assert!(!w.frames(0, frames(14), now));
        assert!(w.frames(0, frames(1), now));
        assert!(w.frames(1, frames(16), now));
        for v in &w.variants {
            assert_eq!(v.segments.len(), 1);
            assert_eq!(v.segments[0].parts.len(), 1);
            assert_eq!(v.segments[0].parts[0].duration, 15_360);
            assert!(!v.segments[0].complete);
        }
        // Five more parts complete segment 0; segment 1 appears with its first part.
        w.frames(0, frames(75), now);
        assert!(w.variants[0].segments[0].complete);
        w.frames(0, frames(1), now);
        assert_eq!(w.variants[0].segments.len(), 1, "no part of segment 1 yet");
        w.frames(0, frames(14), now);
        let s1 = &w.variants[0].segments[1];
        assert_eq!((s1.msn, s1.parts.len()), (1, 1));
        assert_eq!(w.variants[0].last_part(), Some((1, 0)));
    }

    #[test]
    fn sessions_start_at_the_next_segment_with_a_discontinuity() {
        let mut w = Window::new(&config());
        started(&mut w);
        let now = SystemTime::now();
        w.frames(0, frames(40), now);
        assert!(!w.variants[0].segments[0].discontinuity);
        w.end();
        let first = &w.variants[0].segments[0];
        assert!(first.complete);
        assert_eq!(first.duration(), 40 * 1024, "the pending frames went out as a short part");
        started(&mut w);
        w.frames(0, frames(15), now);
        let second = &w.variants[0].segments[1];
        assert_eq!(second.msn, 1);
        assert!(second.discontinuity);
        // Its media time is on the grid: tfdt = 1 × segment length.
        let tfdt = second.parts[0].bytes.windows(4).position(|x| x == b"tfdt").unwrap();
        let at = tfdt + 8;
        assert_eq!(u64::from_be_bytes(second.parts[0].bytes[at..at + 8].try_into().unwrap()), 92_160);
        // A session after a pause starts at the wall clock's segment.
        w.end();
        w.begin(SystemTime::UNIX_EPOCH + Duration::from_secs(3840));
        w.frames(0, frames(15), now);
        let last = w.variants[0].segments.back().unwrap();
        assert_eq!((last.msn, last.start), (2000, 2000 * 92_160), "3840 s is a segment boundary");
        // One that begins inside a segment starts there, at the next part.
        w.end();
        w.begin(SystemTime::UNIX_EPOCH + Duration::from_millis(3_840_000 + 1920 + 700));
        w.frames(0, frames(15), now);
        let last = w.variants[0].segments.back().unwrap();
        assert_eq!((last.msn, last.start), (2001, 2001 * 92_160 + 3 * 15_360));
        assert!(last.discontinuity);
        assert!(w.variants[0].segment(2000).is_some() && w.variants[0].segment(1999).is_none());
    }

    #[test]
    fn titles_ride_the_next_part() {
        let mut w = Window::new(&config());
        started(&mut w);
        let now = SystemTime::now();
        w.frames(0, frames(15), now);
        w.title("Song".into(), Some("Artist".into()), now);
        w.frames(0, frames(15), now);
        let parts = &w.variants[0].segments[0].parts;
        assert!(!parts[0].bytes.windows(4).any(|x| x == b"emsg"));
        assert!(parts[1].bytes.windows(4).any(|x| x == b"emsg"));
        assert!(parts[1].bytes.windows(4).any(|x| x == b"TIT2"));
        assert_eq!(w.titles.len(), 1);
    }

    #[test]
    fn the_window_is_bounded_in_time_and_bytes() {
        let mut w = Window::new(&HlsConfig { window: Duration::from_secs(10), window_bytes: 1 << 30, ..config() });
        started(&mut w);
        let now = SystemTime::now();
        for _ in 0..30 {
            w.frames(0, frames(90), now);
        }
        let kept = w.variants[0].segments.len();
        assert!((5..=7).contains(&kept), "{kept} segments of 1.92 s for 10 s");
        let mut w = Window::new(&HlsConfig { window_bytes: 200_000, ..config() });
        started(&mut w);
        for _ in 0..30 {
            w.frames(0, frames(90), now);
        }
        assert!(w.bytes() <= 200_000 + 90 * 60, "{} bytes", w.bytes());
    }
}
