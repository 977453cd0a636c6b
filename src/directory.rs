//! YP directory listing (`[[directory]]`, Icecast's `<directory>`): every
//! public mount (its source sent `ice-public: 1`, or its `public` setting
//! says so) is announced to each directory with Icecast's yp-cgi protocol:
//! `action=add` with the stream's name, genre, description, URLs, type and
//! bitrate, answered with a session id and how often to `touch`; `touch`
//! with the current title and listener count that often; `remove` when the
//! source leaves or the server stops. A directory that refuses
//! (`YPResponse: 0`) or cannot be reached is logged with its message and
//! asked again later; it never holds anything else up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{post_form, Head};
use crate::config::DirectoryConfig;
use crate::mount::{MountHandle, SourceInfo};
use crate::state::AppState;

/// How often the public mounts are looked at.
const TICK: Duration = Duration::from_secs(1);
/// After a failed `add`, the wait before the next.
const RETRY: Duration = Duration::from_secs(60);
/// Bounds on the touch interval a directory may ask for.
const TOUCH_MIN: Duration = Duration::from_secs(1);
const TOUCH_MAX: Duration = Duration::from_secs(3600);
/// At shutdown, the most a `remove` may take.
const REMOVE_AT_EXIT: Duration = Duration::from_secs(2);

/// List the public mounts in every configured directory until shutdown,
/// then take them off (briefly: the server does not wait long for this).
pub async fn run_all(state: AppState) {
    let mut directories = tokio::task::JoinSet::new();
    for directory in state.config.get().directories.clone() {
        directories.spawn(list_in(directory, state.clone()));
    }
    while directories.join_next().await.is_some() {}
}

/// One mount's entry in a directory.
struct Listing {
    sid: String,
    touch_every: Duration,
    next_touch: Instant,
    /// The source listed: another source on the mount is listed anew.
    source: Arc<SourceInfo>,
}

async fn list_in(directory: DirectoryConfig, state: AppState) {
    let mut listed: HashMap<String, Listing> = HashMap::new();
    let mut retry_at: HashMap<String, Instant> = HashMap::new();
    let mut shutdown = state.shutdown.clone();
    loop {
        let public = public_mounts(&state);
        let gone: Vec<String> = listed
            .iter()
            .filter(|(name, listing)| !public.iter().any(|(m, s)| m.name() == *name && Arc::ptr_eq(s, &listing.source)))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some(listing) = listed.remove(&name) {
                remove(&directory, &name, &listing.sid, directory.timeout).await;
            }
        }
        retry_at.retain(|name, _| public.iter().any(|(m, _)| m.name() == name));
        let now = Instant::now();
        for (mount, source) in &public {
            match listed.get_mut(mount.name()) {
                None if retry_at.get(mount.name()).is_none_or(|at| *at <= now) => {
                    match add(&directory, &state, mount, source).await {
                        Ok(listing) => {
                            retry_at.remove(mount.name());
                            listed.insert(mount.name().to_string(), listing);
                        }
                        Err(why) => {
                            tracing::warn!(mount = mount.name(), directory = %directory.url, "YP add failed: {why}");
                            retry_at.insert(mount.name().to_string(), now + RETRY);
                        }
                    }
                }
                Some(listing) if listing.next_touch <= now => {
                    listing.next_touch = now + listing.touch_every;
                    match touch(&directory, &state, mount, listing).await {
                        Ok(()) => {}
                        // The directory forgot the stream: add it again, as Icecast does.
                        Err(YpError::Refused(why)) => {
                            tracing::warn!(mount = mount.name(), directory = %directory.url, "YP touch refused: {why}");
                            listed.remove(mount.name());
                        }
                        // Unreachable for now: the listing stands, the next touch tries again.
                        Err(YpError::Failed(why)) => {
                            tracing::warn!(mount = mount.name(), directory = %directory.url, "YP touch failed: {why}");
                        }
                    }
                }
                _ => {}
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.wait_for(|&down| down) => break,
        }
    }
    for (name, listing) in listed {
        remove(&directory, &name, &listing.sid, directory.timeout.min(REMOVE_AT_EXIT)).await;
    }
}

/// Live, visible mounts whose stream is public, with their sources.
fn public_mounts(state: &AppState) -> Vec<(MountHandle, Arc<SourceInfo>)> {
    crate::admin::status::visible_live_mounts(state)
        .into_iter()
        .filter_map(|mount| mount.source().filter(|s| s.info.public).map(|source| (mount, source)))
        .collect()
}

/// The sub-type directories show: the codec inside an Ogg or WebM stream,
/// found in its header pages (empty for MP3 and AAC, whose type says it).
fn subtype(mount: &MountHandle) -> String {
    codec_in(&mount.stream_headers()).to_string()
}

fn codec_in(headers: &[u8]) -> &'static str {
    const CODECS: [(&[u8], &str); 5] = [
        (b"OpusHead", "Opus"),
        (b"\x01vorbis", "Vorbis"),
        (b"\x7fFLAC", "FLAC"),
        (b"A_OPUS", "Opus"),
        (b"A_VORBIS", "Vorbis"),
    ];
    let found = CODECS.iter().find(|(magic, _)| headers.windows(magic.len()).any(|w| w == *magic));
    found.map_or("", |(_, name)| name)
}

async fn add(
    directory: &DirectoryConfig,
    state: &AppState,
    mount: &MountHandle,
    source: &Arc<SourceInfo>,
) -> Result<Listing, String> {
    let info = &source.info;
    let form = [
        ("action", "add".to_string()),
        ("sn", info.name.clone().unwrap_or_else(|| "unset".into())),
        ("genre", info.genre.clone().unwrap_or_default()),
        ("cpswd", String::new()),
        ("desc", info.description.clone().unwrap_or_default()),
        ("url", info.url.clone().unwrap_or_default()),
        ("listenurl", crate::admin::status::listen_url(state, mount.name())),
        ("type", source.content_type.clone()),
        ("stype", subtype(mount)),
        ("b", source.bitrate().map_or(String::new(), |b| b.to_string())),
    ];
    let head = ask(directory, &form, directory.timeout).await.map_err(|e| e.to_string())?;
    let sid = head.header("sid").filter(|s| !s.is_empty()).ok_or("the directory gave no SID")?;
    let touch_every = head
        .header("touchfreq")
        .and_then(|t| t.parse().ok())
        .map_or(Duration::from_secs(180), Duration::from_secs)
        .clamp(TOUCH_MIN, TOUCH_MAX);
    tracing::info!(mount = mount.name(), directory = %directory.url, "listed in the YP directory");
    Ok(Listing { sid: sid.to_string(), touch_every, next_touch: Instant::now() + touch_every, source: source.clone() })
}

async fn touch(
    directory: &DirectoryConfig,
    state: &AppState,
    mount: &MountHandle,
    listing: &Listing,
) -> Result<(), YpError> {
    let max = mount.config().max_listeners.unwrap_or(state.config.get().limits.clients);
    let form = [
        ("action", "touch".to_string()),
        ("sid", listing.sid.clone()),
        ("st", mount.metadata().song.clone()),
        ("listeners", mount.listener_count().to_string()),
        ("max_listeners", max.to_string()),
        ("stype", subtype(mount)),
    ];
    ask(directory, &form, directory.timeout).await.map(drop)
}

async fn remove(directory: &DirectoryConfig, mount: &str, sid: &str, limit: Duration) {
    let form = [("action", "remove".to_string()), ("sid", sid.to_string())];
    match ask(directory, &form, limit).await {
        Ok(_) => tracing::info!(mount, directory = %directory.url, "removed from the YP directory"),
        Err(why) => tracing::warn!(mount, directory = %directory.url, "YP remove failed: {why}"),
    }
}

/// Why a request to a directory did not succeed.
#[derive(Debug, thiserror::Error)]
enum YpError {
    /// It answered, and said no (`YPResponse` other than 1).
    #[error("{0}")]
    Refused(String),
    /// No usable answer: unreachable, too slow, not HTTP.
    #[error("{0}")]
    Failed(String),
}

/// POST one request; its answer must say `YPResponse: 1`.
async fn ask(directory: &DirectoryConfig, form: &[(&str, String)], limit: Duration) -> Result<Head, YpError> {
    let head = match tokio::time::timeout(limit, post_form(&directory.url, None, form)).await {
        Ok(answer) => answer.map_err(YpError::Failed)?,
        Err(_) => return Err(YpError::Failed(format!("no answer within {} s", limit.as_secs()))),
    };
    if head.header("ypresponse") == Some("1") {
        return Ok(head);
    }
    let message = head.header("ypmessage").map(crate::escape::escape_log);
    Err(YpError::Refused(match message {
        Some(message) => format!("the directory answered {}: {message}", head.status),
        None => format!("the directory answered {} without YPResponse: 1", head.status),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ogg_and_webm_streams_name_their_codec() {
        assert_eq!(codec_in(b""), "", "MP3 and AAC have no header pages");
        assert_eq!(codec_in(b"OggS\0\x02....OpusHead\x01\x02"), "Opus");
        assert_eq!(codec_in(b"OggS\0\x02....\x01vorbis\0\0"), "Vorbis");
        assert_eq!(codec_in(b"\x1aE\xdf\xa3....\x86\x88A_VORBIS"), "Vorbis");
    }
}
