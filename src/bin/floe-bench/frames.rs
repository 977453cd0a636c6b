//! The synthetic stream: valid MPEG-1 Layer III frame headers (48 kHz, no
//! padding, so every frame has the same length: 3 bytes per kbit/s) whose
//! payload carries a marker, the time the frame was completely sent, and its
//! sequence number. Servers relay it like any MP3; listeners time each frame.

use std::time::Duration;

/// Marker right after the 4-byte header.
pub const MARKER: &[u8; 8] = b"FLOEBNCH";
/// Bytes of a frame a listener must see to time it: header, marker, time, sequence.
pub const STAMP_LEN: usize = 28;

/// Frame length at 48 kHz without padding: 144 × bitrate / 48000 = 3 bytes per kbit/s.
pub fn frame_len(kbps: u32) -> usize {
    3 * kbps as usize
}

/// Bitrate index of MPEG-1 Layer III for the supported rates.
fn bitrate_index(kbps: u32) -> Option<u8> {
    const RATES: [u32; 14] = [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
    RATES.iter().position(|&r| r == kbps).map(|i| i as u8 + 1)
}

/// Generates the byte stream one write at a time.
pub struct FrameSource {
    header: [u8; 4],
    frame_len: usize,
    write_len: usize,
    interval: Duration,
    /// Stream offset of the next byte to generate.
    offset: u64,
    /// Micros (bench clock) at which write 0 is scheduled.
    start_us: u64,
}

impl FrameSource {
    pub fn new(kbps: u32, interval: Duration, start_us: u64) -> Result<FrameSource, String> {
        let index = bitrate_index(kbps).ok_or_else(|| format!("unsupported bitrate {kbps} kbit/s"))?;
        // Sync, MPEG-1, Layer III, no CRC; bitrate, 48 kHz, no padding; mono.
        let header = [0xFF, 0xFB, index << 4 | 0b01 << 2, 0xC4];
        let write_len = (u64::from(kbps) * 1000 / 8 * interval.as_millis() as u64 / 1000) as usize;
        Ok(FrameSource { header, frame_len: frame_len(kbps), write_len, interval, offset: 0, start_us })
    }

    /// When (bench micros) the write holding stream byte `offset` is scheduled.
    fn write_time_us(&self, offset: u64) -> u64 {
        self.start_us + (offset / self.write_len as u64) * self.interval.as_micros() as u64
    }

    /// The bytes of the next write.
    pub fn next_write(&mut self, out: &mut Vec<u8>) {
        out.clear();
        let frame_len = self.frame_len as u64;
        for _ in 0..self.write_len {
            let in_frame = (self.offset % frame_len) as usize;
            let byte = if in_frame < 4 {
                self.header[in_frame]
            } else if in_frame < 12 {
                MARKER[in_frame - 4]
            } else if in_frame < STAMP_LEN {
                let seq = self.offset / frame_len;
                // The frame counts as delivered when its last byte arrives, so
                // it is stamped with the time its last byte is sent.
                let done = self.write_time_us(seq * frame_len + frame_len - 1);
                let field = if in_frame < 20 { done } else { seq };
                field.to_le_bytes()[(in_frame - 12) % 8]
            } else {
                0
            };
            out.push(byte);
            self.offset += 1;
        }
    }
}

/// Finds frames in a listener's audio and reports each completed frame's stamp.
pub struct FrameClock {
    frame_len: usize,
    /// Bytes before the first frame are searched for the marker.
    search: Vec<u8>,
    synced: bool,
    in_frame: usize,
    stamp: [u8; STAMP_LEN],
}

impl FrameClock {
    pub fn new(frame_len: usize) -> FrameClock {
        FrameClock { frame_len, search: Vec::new(), synced: false, in_frame: 0, stamp: [0; STAMP_LEN] }
    }

    /// Feed audio; calls `done(sent_us)` for every frame completed.
    pub fn feed(&mut self, audio: &[u8], mut done: impl FnMut(u64)) {
        if !self.synced {
            self.search.extend_from_slice(audio);
            let Some(at) = self.search.windows(MARKER.len()).position(|w| w == MARKER).filter(|&p| p >= 4) else {
                // Keep only a tail that could still hold the start of a marker.
                let keep = self.search.len().min(STAMP_LEN);
                self.search.drain(..self.search.len() - keep);
                return;
            };
            let rest = self.search.split_off(at - 4);
            self.search.clear();
            self.synced = true;
            self.feed_synced(&rest, &mut done);
            return;
        }
        self.feed_synced(audio, &mut done);
    }

    fn feed_synced(&mut self, mut audio: &[u8], done: &mut impl FnMut(u64)) {
        while !audio.is_empty() {
            let take = (self.frame_len - self.in_frame).min(audio.len());
            if self.in_frame < STAMP_LEN {
                let n = take.min(STAMP_LEN - self.in_frame);
                self.stamp[self.in_frame..self.in_frame + n].copy_from_slice(&audio[..n]);
            }
            self.in_frame += take;
            audio = &audio[take..];
            if self.in_frame == self.frame_len {
                self.in_frame = 0;
                if &self.stamp[4..12] == MARKER {
                    let mut t = [0u8; 8];
                    t.copy_from_slice(&self.stamp[12..20]);
                    done(u64::from_le_bytes(t));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_clock() {
        let mut source = FrameSource::new(128, Duration::from_millis(20), 1_000_000).unwrap();
        assert_eq!(frame_len(128), 384);
        let mut stream = Vec::new();
        let mut write = Vec::new();
        for _ in 0..30 {
            source.next_write(&mut write);
            assert_eq!(write.len(), 320);
            stream.extend_from_slice(&write);
        }
        assert_eq!(&stream[..4], &[0xFF, 0xFB, 0x94, 0xC4]);
        let mut clock = FrameClock::new(384);
        let mut stamps = Vec::new();
        // Start mid-frame, feed in odd pieces.
        for piece in stream[500..].chunks(77) {
            clock.feed(piece, |t| stamps.push(t));
        }
        // Frame 2 ends at byte 1151, sent by write 3 (bytes 960..1280) at 1_000_000 + 60_000.
        assert_eq!(stamps[0], 1_060_000);
        assert!(stamps.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(stamps.len(), (9600 - 768) / 384);
    }
}
