//! What a listener's request said (its request line, user agent and
//! referer), which admin and its access-log line show, kept for the
//! listener's whole life — once for all the listeners that said the same.
//!
//! A station's listeners mostly send the same few texts: each mount's
//! request line, a few dozen players' user agents. Kept per listener they
//! cost tens of bytes each, for hours; a small table of texts seen hands out
//! the copy it has instead. A text's hash picks one of `SETS` sets of
//! `WAYS` places; a text not there takes the place of the one the fewest
//! listeners hold (none, ideally), so popular texts stay while one-offs
//! come and go. The table keeps nothing per listener, holds at most
//! `SETS * WAYS` texts of at most `KEPT_LEN` bytes (about 140 KiB), and a
//! listener whose texts are its own costs about what it did without it.
//!
//! The table holds only texts some listener holds: the last listener to
//! let go of a text takes the table's copy out. Texts live in the
//! long-lived region (`heap::long_lived`), which hands a page back only
//! once nothing in it is live; a copy kept after its listeners left would
//! keep its page, and the crowd's blocks beside it, for good.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::access_log::RequestLine;

/// Sets of the table, and places in each: 256 texts. A station with more
/// distinct popular texts than this shares less, and loses nothing else.
const SETS: usize = 32;
const WAYS: usize = 8;
/// Longer texts are not remembered (players' own run to ~200 bytes).
const KEPT_LEN: usize = 512;

/// The texts of one request, shared by every listener that sent the same.
/// Not `Clone`: copies are handed out by the table only, under its lock,
/// so the holders' count read there is exact.
#[derive(Debug)]
pub struct RequestTexts(Option<Arc<Said>>);

/// The request line, the user agent and the referer, back to back, in one
/// allocation.
#[derive(Debug)]
struct Said {
    text: Box<str>,
    /// Length of the user agent in `text` (`ABSENT`: none was sent).
    agent_len: u32,
    /// Length of the referer in `text`, last (`ABSENT`: none was sent).
    referer_len: u32,
    /// The table's set these texts belong in.
    set: u32,
}

const ABSENT: u32 = u32::MAX;

/// Texts seen, by their hash's set.
static SEEN: Mutex<[[Option<Arc<Said>>; WAYS]; SETS]> = Mutex::new([const { [const { None }; WAYS] }; SETS]);

impl RequestTexts {
    /// The texts `said`: the copy the table has if it has one.
    pub fn of(said: &RequestLine) -> RequestTexts {
        static KEYS: OnceLock<std::hash::RandomState> = OnceLock::new();
        let hash =
            KEYS.get_or_init(Default::default).hash_one((&said.line, part(&said.user_agent), part(&said.referer)));
        let set = (hash % SETS as u64) as u32;
        let mut seen = table();
        let places = &mut seen[set as usize];
        if let Some(texts) = places.iter().flatten().find(|texts| texts.says(said)) {
            return RequestTexts(Some(texts.clone()));
        }
        let texts = Arc::new(Said::of(said, set));
        if texts.text.len() <= KEPT_LEN {
            let least_held = places.iter_mut().min_by_key(|place| place.as_ref().map_or(0, Arc::strong_count));
            if let Some(place) = least_held {
                *place = Some(texts.clone());
            }
        }
        RequestTexts(Some(texts))
    }

    fn said(&self) -> &Said {
        self.0.as_deref().expect("texts are held until dropped")
    }

    /// `METHOD target HTTP/x.y`.
    pub fn line(&self) -> &str {
        self.said().line()
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.said().user_agent()
    }

    pub fn referer(&self) -> Option<&str> {
        self.said().referer()
    }

    /// The texts as the access log takes them.
    pub fn to_request_line(&self) -> RequestLine {
        RequestLine {
            line: self.line().to_string(),
            referer: self.referer().map(str::to_string),
            user_agent: self.user_agent().map(str::to_string),
        }
    }
}

impl Drop for RequestTexts {
    /// The last listener holding texts the table has takes the table's
    /// copy out (after the lock, so nothing is freed under it).
    fn drop(&mut self) {
        let Some(texts) = self.0.take() else { return };
        if Arc::strong_count(&texts) == 1 {
            // Not in the table, and no one else can copy it.
            return;
        }
        let mut seen = table();
        // Two holders: this listener, and the table if it has them.
        let table_copy = (Arc::strong_count(&texts) == 2)
            .then(|| seen[texts.set as usize].iter_mut().find_map(|place| place.take_if(|t| Arc::ptr_eq(t, &texts))))
            .flatten();
        // Let go under the lock, so the count another listener's drop reads is exact.
        drop(texts);
        drop(seen);
        drop(table_copy);
    }
}

/// The table, locked. Nothing can panic with the lock held; a poisoned
/// table is as good as any.
fn table() -> std::sync::MutexGuard<'static, [[Option<Arc<Said>>; WAYS]; SETS]> {
    SEEN.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Said {
    fn says(&self, said: &RequestLine) -> bool {
        self.line() == said.line && self.user_agent() == part(&said.user_agent) && self.referer() == part(&said.referer)
    }

    fn line(&self) -> &str {
        &self.text[..self.text.len() - part_len(self.agent_len) - part_len(self.referer_len)]
    }

    fn user_agent(&self) -> Option<&str> {
        let end = self.text.len() - part_len(self.referer_len);
        (self.agent_len != ABSENT).then(|| &self.text[end - self.agent_len as usize..end])
    }

    fn referer(&self) -> Option<&str> {
        (self.referer_len != ABSENT).then(|| &self.text[self.text.len() - self.referer_len as usize..])
    }

    fn of(said: &RequestLine, set: u32) -> Said {
        let parts = [part(&said.user_agent), part(&said.referer)];
        let total = said.line.len() + parts.iter().map(|p| p.map_or(0, str::len)).sum::<usize>();
        let mut text = String::with_capacity(total);
        text.push_str(&said.line);
        for p in parts.iter().flatten() {
            text.push_str(p);
        }
        let len = |p: Option<&str>| p.map_or(ABSENT, |p| p.len() as u32);
        Said { text: text.into_boxed_str(), agent_len: len(parts[0]), referer_len: len(parts[1]), set }
    }
}

/// A header as kept: heads are a few KiB at most, and a text too long for
/// its length to fit counts as not sent.
fn part(text: &Option<String>) -> Option<&str> {
    text.as_deref().filter(|t| u32::try_from(t.len()).is_ok_and(|n| n != ABSENT))
}

fn part_len(n: u32) -> usize {
    if n == ABSENT {
        0
    } else {
        n as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl RequestTexts {
        fn shared(&self) -> &Arc<Said> {
            self.0.as_ref().unwrap()
        }
    }

    /// Is a copy of `texts` in the table?
    fn in_table(texts: &RequestTexts) -> bool {
        table().iter().flatten().flatten().any(|t| Arc::ptr_eq(t, texts.shared()))
    }

    fn said(line: &str, agent: Option<&str>, referer: Option<&str>) -> RequestLine {
        RequestLine { line: line.into(), user_agent: agent.map(str::to_string), referer: referer.map(str::to_string) }
    }

    #[test]
    fn texts_keep_what_was_said() {
        for (agent, referer) in [(None, None), (Some("VLC/3"), None), (None, Some("http://x/")), (Some(""), Some("r"))]
        {
            let texts = RequestTexts::of(&said("GET /live HTTP/1.1", agent, referer));
            assert_eq!(texts.line(), "GET /live HTTP/1.1");
            assert_eq!(texts.user_agent(), agent);
            assert_eq!(texts.referer(), referer);
        }
    }

    /// The same texts are one copy; texts that differ anywhere, or where
    /// one is absent and the other empty, are not.
    #[test]
    fn listeners_that_said_the_same_share_one_copy() {
        let one = RequestTexts::of(&said("GET /shared-test HTTP/1.1", Some("mpv 0.35"), None));
        let again = RequestTexts::of(&said("GET /shared-test HTTP/1.1", Some("mpv 0.35"), None));
        assert!(Arc::ptr_eq(one.shared(), again.shared()));
        for other in [
            said("GET /shared-test HTTP/1.1", Some("mpv 0.36"), None),
            said("GET /shared-test HTTP/1.1", Some("mpv 0.35"), Some("")),
            said("GET /shared-test HTTP/1.0", Some("mpv 0.35"), None),
            said("GET /shared-test HTTP/1.1mpv 0.35", Some(""), None),
        ] {
            let texts = RequestTexts::of(&other);
            assert!(!Arc::ptr_eq(one.shared(), texts.shared()), "{other:?}");
            assert_eq!(
                (texts.line(), texts.user_agent(), texts.referer()),
                (&*other.line, part(&other.user_agent), part(&other.referer))
            );
        }
    }

    /// Texts many listeners hold stay in the table while one-offs come and
    /// go through it.
    #[test]
    fn popular_texts_outlast_one_offs() {
        let popular = RequestTexts::of(&said("GET /popular-test HTTP/1.1", Some("VLC/3.0.18"), None));
        let crowd: Vec<_> =
            (0..10).map(|_| RequestTexts::of(&said("GET /popular-test HTTP/1.1", Some("VLC/3.0.18"), None))).collect();
        for n in 0..(SETS * WAYS * 4) {
            RequestTexts::of(&said(&format!("GET /one-off-{n} HTTP/1.1"), None, None));
        }
        let again = RequestTexts::of(&said("GET /popular-test HTTP/1.1", Some("VLC/3.0.18"), None));
        assert!(Arc::ptr_eq(popular.shared(), again.shared()));
        assert!(crowd.iter().all(|t| Arc::ptr_eq(t.shared(), again.shared())));
    }

    /// Texts no listener holds any more leave the table.
    #[test]
    fn the_last_listener_takes_the_tables_copy_out() {
        let one = RequestTexts::of(&said("GET /last-test HTTP/1.1", Some("ffmpeg"), None));
        let two = RequestTexts::of(&said("GET /last-test HTTP/1.1", Some("ffmpeg"), None));
        let weak = Arc::downgrade(one.shared());
        drop(one);
        assert!(in_table(&two), "a listener still holds them");
        drop(two);
        assert_eq!(weak.strong_count(), 0, "nothing keeps them");
    }

    /// What the table keeps is bounded: long texts are not remembered.
    #[test]
    fn long_texts_are_kept_by_their_listener_only() {
        let agent = "a".repeat(KEPT_LEN);
        let one = RequestTexts::of(&said("GET /long-test HTTP/1.1", Some(&agent), None));
        let again = RequestTexts::of(&said("GET /long-test HTTP/1.1", Some(&agent), None));
        assert!(!Arc::ptr_eq(one.shared(), again.shared()));
        assert_eq!(again.user_agent(), Some(&*agent));
    }
}
