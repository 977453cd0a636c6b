//! What a connected source told us about its stream (`ice-*`/`icy-*`
//! headers), merged with the mount's overrides, plus the handle admin uses
//! to end it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::config::StreamInfoOverride;
use crate::format::{AudioInfo, Format};

/// Stream information as listeners and directories see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamInfo {
    pub name: Option<String>,
    pub description: Option<String>,
    pub genre: Option<String>,
    pub url: Option<String>,
    pub public: bool,
    /// Nominal bitrate in kbit/s (`ice-bitrate`/`icy-br`).
    pub bitrate: Option<u32>,
    /// `ice-audio-info` as sent, e.g. `ice-samplerate=44100;ice-bitrate=128;ice-channels=2`.
    pub audio_info: Option<String>,
}

impl StreamInfo {
    /// Read stream info from source request headers (first match wins, as Icecast).
    pub fn from_headers<'a>(header: impl Fn(&str) -> Option<&'a str>) -> StreamInfo {
        // Control characters (a bare CR in a SHOUTcast v1 header line, say)
        // never reach a playlist, a header or a page.
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| header(n))
                .map(|v| crate::escape::header_value(v).trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let audio_info = first(&["ice-audio-info"]);
        let bitrate = first(&["ice-bitrate", "icy-br"])
            .and_then(|b| b.split(',').next().and_then(|b| b.trim().parse().ok()))
            .or_else(|| audio_info.as_deref().and_then(|a| audio_info_field(a, "bitrate")));
        StreamInfo {
            name: first(&["ice-name", "icy-name"]),
            description: first(&["ice-description", "icy-description"]),
            genre: first(&["ice-genre", "icy-genre"]),
            url: first(&["ice-url", "icy-url"]),
            public: first(&["ice-public", "icy-pub", "icy-public"]).is_some_and(|p| p == "1" || p == "true"),
            bitrate,
            audio_info,
        }
    }

    /// Apply the mount's configured overrides.
    pub fn with_overrides(mut self, o: &StreamInfoOverride) -> StreamInfo {
        let pick = |over: &Option<String>, mine: Option<String>| over.clone().or(mine);
        self.name = pick(&o.name, self.name);
        self.description = pick(&o.description, self.description);
        self.genre = pick(&o.genre, self.genre);
        self.url = pick(&o.url, self.url);
        if let Some(public) = o.public {
            self.public = public;
        }
        self
    }
}

/// One `key=value` of `ice-audio-info` (`ice-samplerate=…;ice-bitrate=…`), numeric.
fn audio_info_field(audio_info: &str, key: &str) -> Option<u32> {
    audio_info.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        let k = k.trim().trim_start_matches("ice-");
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// A live source on a mount.
#[derive(Debug)]
pub struct SourceInfo {
    pub content_type: String,
    pub format: Format,
    pub info: StreamInfo,
    pub peer: SocketAddr,
    pub user_agent: Option<String>,
    pub started: SystemTime,
    pub started_at: Instant,
    /// Parameters read from the stream itself by the framer.
    pub audio: Mutex<Option<AudioInfo>>,
    kill: Notify,
    killed: AtomicBool,
    /// The previous process feeding this mount during a binary upgrade; a
    /// real source takes the mount over from it.
    pub handover: bool,
}

impl SourceInfo {
    pub fn new(content_type: String, info: StreamInfo, peer: SocketAddr, user_agent: Option<String>) -> SourceInfo {
        SourceInfo {
            format: Format::from_content_type(&content_type),
            content_type,
            info,
            peer,
            user_agent,
            started: SystemTime::now(),
            started_at: Instant::now(),
            audio: Mutex::new(None),
            kill: Notify::new(),
            killed: AtomicBool::new(false),
            handover: false,
        }
    }

    /// Ask the source's task to end (admin `killsource`).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill.notify_waiters();
    }

    /// Has `kill` been called?
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Resolves once `kill` has been called.
    pub async fn killed(&self) {
        loop {
            let notified = self.kill.notified();
            if self.killed.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// Bitrate for status: the declared one, else what the stream says.
    pub fn bitrate(&self) -> Option<u32> {
        self.info.bitrate.or_else(|| self.audio.lock().map(|a| a.bitrate).filter(|&b| b > 0))
    }

    /// `audio_info` string for status: as sent, else built from the stream.
    pub fn audio_info(&self) -> Option<String> {
        if let Some(sent) = &self.info.audio_info {
            return Some(sent.clone());
        }
        let audio = (*self.audio.lock())?;
        let mut parts = vec![format!("samplerate={}", audio.sample_rate), format!("channels={}", audio.channels)];
        if let Some(bitrate) = self.bitrate() {
            parts.push(format!("bitrate={bitrate}"));
        }
        Some(parts.join(";"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_header_wins_and_overrides_apply() {
        let headers = [("ice-name", "Ice"), ("icy-name", "Icy"), ("icy-br", "128"), ("icy-pub", "1")];
        let get = |n: &str| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        let info = StreamInfo::from_headers(get);
        assert_eq!(info.name.as_deref(), Some("Ice"));
        assert_eq!(info.bitrate, Some(128));
        assert!(info.public);
        let over = StreamInfoOverride { name: Some("Mine".into()), public: Some(false), ..Default::default() };
        let info = info.with_overrides(&over);
        assert_eq!(info.name.as_deref(), Some("Mine"));
        assert!(!info.public);
    }

    #[test]
    fn control_characters_are_dropped() {
        let headers = [("icy-name", "Evil\rhttp://x/\u{85}"), ("icy-genre", "\r\n")];
        let get = |n: &str| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        let info = StreamInfo::from_headers(get);
        assert_eq!(info.name.as_deref(), Some("Evilhttp://x/"));
        assert_eq!(info.genre, None);
    }

    #[test]
    fn bitrate_from_audio_info() {
        let headers = [("ice-audio-info", "ice-samplerate=44100;ice-bitrate=96;ice-channels=2")];
        let get = |n: &str| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        assert_eq!(StreamInfo::from_headers(get).bitrate, Some(96));
    }
}
