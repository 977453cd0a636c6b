//! Read-only views of the server: `/status-json.xsl` in Icecast's exact
//! shape (an object for one source, an array for several), and the
//! per-source and server-wide fields `/admin/stats` shares with it.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::doc::{or_empty, Icestats};
use super::xml::Attr;
use crate::mount::{Metadata, MountHandle};
use crate::state::AppState;
use crate::timefmt;
use crate::transcode::TranscodeStats;

/// `http://hostname:port/mount`, the URL listeners use.
pub fn listen_url(state: &AppState, mount: &str) -> String {
    format!("http://{}:{}{}", state.config.get().server.hostname, state.http_port, mount)
}

/// Mounts that status pages show: live and not hidden.
pub fn visible_live_mounts(state: &AppState) -> Vec<MountHandle> {
    state.mounts.live().into_iter().filter(|m| !m.config().hidden).collect()
}

/// `/status-json.xsl`, or with `only` (its `?mount=`) that mount alone: as
/// Icecast does, an unknown, hidden or idle mount gives a document without
/// `source` (widgets and "is my mount live?" checks read it that way).
pub fn status_json(state: &AppState, only: Option<&str>) -> String {
    let config = state.config.get();
    let sources: Vec<SourceStatus> = visible_live_mounts(state)
        .iter()
        .filter(|m| only.is_none_or(|name| m.name() == name))
        .filter_map(|m| SourceStatus::of(state, m))
        .collect();
    let document = StatusJson {
        icestats: IceStats {
            admin: &config.server.admin_email,
            host: &config.server.hostname,
            location: &config.server.location,
            server_id: crate::http::server_id::get().to_string(),
            server_start: timefmt::rfc2822(state.started),
            server_start_iso8601: timefmt::iso8601(state.started),
            source: Sources::of(sources),
        },
    };
    serde_json::to_string(&document).unwrap_or_else(|error| {
        tracing::error!(%error, "status document not serialisable");
        "{}".into()
    })
}

/// `/status-json.xsl`'s document, in Icecast's shape and key names.
#[derive(Serialize)]
struct StatusJson<'a> {
    icestats: IceStats<'a>,
}

#[derive(Serialize)]
struct IceStats<'a> {
    admin: &'a str,
    host: &'a str,
    location: &'a str,
    server_id: String,
    server_start: String,
    server_start_iso8601: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Sources>,
}

/// Icecast's quirk that existing consumers rely on: one source is an
/// object, several an array, none no `source` at all.
#[derive(Serialize)]
#[serde(untagged)]
enum Sources {
    One(Box<SourceStatus>),
    Many(Vec<SourceStatus>),
}

impl Sources {
    fn of(mut sources: Vec<SourceStatus>) -> Option<Sources> {
        match sources.len() {
            0 => None,
            1 => sources.pop().map(|one| Sources::One(Box::new(one))),
            _ => Some(Sources::Many(sources)),
        }
    }
}

/// One live mount in `/status-json.xsl`. Fields the source did not give are
/// left out, as Icecast leaves them out; `dummy` is Icecast's trailing null.
#[derive(Serialize)]
struct SourceStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    audio_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bitrate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    genre: Option<String>,
    listener_peak: u64,
    listeners: u64,
    listenurl: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hls_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dash_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_name: Option<String>,
    server_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_url: Option<String>,
    stream_start: String,
    stream_start_iso8601: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    artist: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    dummy: (),
}

impl SourceStatus {
    fn of(state: &AppState, mount: &MountHandle) -> Option<SourceStatus> {
        let source = mount.source()?;
        let meta = mount.metadata();
        let stats = mount.stats();
        let info = &source.info;
        let adaptive = state.hls.get(mount.name()).is_some().then(|| {
            let base = format!("http://{}:{}", state.config.get().server.hostname, state.http_port);
            (format!("{base}/hls{}/master.m3u8", mount.name()), format!("{base}/dash{}/manifest.mpd", mount.name()))
        });
        let (hls_url, dash_url) = adaptive.unzip();
        Some(SourceStatus {
            audio_info: source.audio_info(),
            bitrate: source.bitrate(),
            genre: info.genre.clone(),
            listener_peak: stats.listener_peak.load(Ordering::Relaxed),
            listeners: stats.listeners.load(Ordering::Relaxed),
            listenurl: listen_url(state, mount.name()),
            hls_url,
            dash_url,
            server_description: info.description.clone(),
            server_name: info.name.clone(),
            server_type: source.content_type.clone(),
            server_url: info.url.clone(),
            stream_start: timefmt::rfc2822(source.started),
            stream_start_iso8601: timefmt::iso8601(source.started),
            artist: meta.artist.clone(),
            title: (!meta.song.is_empty()).then(|| shown_title(&meta).to_string()),
            dummy: (),
        })
    }
}

/// The `title` the status documents show. A source that sent artist and
/// title apart (Mixxx, libshout's `artist=`/`title=`) gets them apart, as
/// Icecast keeps them: a reader that joins `artist - title` (AzuraCast's
/// adapter) would otherwise say the artist twice. Otherwise the whole song.
fn shown_title(meta: &Metadata) -> &str {
    match (&meta.artist, &meta.title) {
        (Some(_), Some(title)) => title,
        _ => &meta.song,
    }
}

/// `/admin/stats`: server-wide counters, then every live mount, in
/// Icecast's element order (its own fields alphabetical), Floe's additions
/// among them.
#[derive(Serialize)]
pub struct AdminStats {
    access_refusals: u64,
    admin: String,
    client_connections: u64,
    clients: u64,
    config_reload_failures: u64,
    config_reloads: u64,
    connections: u64,
    file_connections: u64,
    held_bytes: u64,
    hls_held_bytes: u64,
    host: String,
    listener_connections: u64,
    listeners: u64,
    location: String,
    /// Floe's: memory kept for what listeners keep for their lifetime and
    /// the rings' chunks (`heap::long_lived_bytes`), and the process's
    /// resident memory in all.
    long_lived_bytes: u64,
    resident_bytes: u64,
    server_id: String,
    server_start: String,
    server_start_iso8601: String,
    slow_listeners: u64,
    source_client_connections: u64,
    source_relay_connections: u64,
    source_total_connections: u64,
    sources: u64,
    stalled_listeners: u64,
    stats: u64,
    stats_connections: u64,
    tls_handshake_failures: u64,
    tls_handshakes: u64,
    tls_reload_failures: u64,
    tls_reloads: u64,
    transcode_failures: u64,
    /// One per live mount (an array in JSON, even of one; left out without any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    source: Vec<AdminSourceStats>,
}

impl AdminStats {
    pub fn mounts(&self) -> impl Iterator<Item = &str> {
        self.source.iter().map(|s| s.mount.0.as_str())
    }
}

/// One live mount in `/admin/stats`: Icecast's fields and Floe's counters
/// of what the mount holds and what its transcoder does.
#[derive(Serialize)]
pub struct AdminSourceStats {
    mount: Attr<String>,
    listeners: u64,
    listener_peak: u64,
    listenurl: String,
    /// A number, or `unlimited`.
    max_listeners: String,
    slow_listeners: u64,
    total_bytes_read: u64,
    total_bytes_sent: u64,
    stalled_listeners: u64,
    held_bytes: u64,
    dump_bytes: u64,
    hls_held_bytes: u64,
    hls_held_ms: u64,
    transcode_cpu_ms: u64,
    corrupt_packets: u64,
    transcode_failures: u64,
    transcode_delay_ms: u64,
    transcode_delay_max_ms: u64,
    title: String,
    #[serde(serialize_with = "or_empty")]
    artist: Option<String>,
    #[serde(serialize_with = "or_empty")]
    fallback: Option<String>,
    /// Renditions only: whether the encoder runs (on-demand ones idle
    /// without listeners).
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<u64>,
    #[serde(serialize_with = "or_empty")]
    audio_info: Option<String>,
    #[serde(serialize_with = "or_empty")]
    bitrate: Option<u32>,
    #[serde(serialize_with = "or_empty")]
    genre: Option<String>,
    public: u8,
    #[serde(serialize_with = "or_empty")]
    server_description: Option<String>,
    #[serde(serialize_with = "or_empty")]
    server_name: Option<String>,
    server_type: String,
    #[serde(serialize_with = "or_empty")]
    server_url: Option<String>,
    source_ip: String,
    /// Seconds since the source connected.
    connected: u64,
    stream_start: String,
    stream_start_iso8601: String,
    #[serde(serialize_with = "or_empty")]
    user_agent: Option<String>,
}

impl AdminSourceStats {
    /// The mount's figures, or `None` once its source has gone.
    fn of(state: &AppState, mount: &MountHandle) -> Option<AdminSourceStats> {
        let source = mount.source()?;
        let stats = mount.stats();
        let meta = mount.metadata();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let transcoding = |field: fn(&TranscodeStats) -> &AtomicU64| state.transcoding.load(mount.name(), field);
        let hls = state.hls.get(mount.name());
        let info = &source.info;
        Some(AdminSourceStats {
            mount: Attr(mount.name().to_string()),
            listeners: load(&stats.listeners),
            listener_peak: load(&stats.listener_peak),
            listenurl: listen_url(state, mount.name()),
            max_listeners: mount.config().max_listeners.map_or("unlimited".to_string(), |m| m.to_string()),
            slow_listeners: load(&stats.slow_listeners),
            total_bytes_read: load(&stats.bytes_read),
            total_bytes_sent: load(&stats.bytes_sent),
            stalled_listeners: load(&stats.stalled_listeners),
            held_bytes: mount.held_bytes() as u64,
            dump_bytes: load(&stats.dump_bytes),
            hls_held_bytes: hls.as_ref().map_or(0, |h| h.held_bytes() as u64),
            hls_held_ms: hls.as_ref().map_or(0, |h| (h.held_seconds() * 1000.0) as u64),
            transcode_cpu_ms: transcoding(|t| &t.busy_ns) / 1_000_000,
            corrupt_packets: transcoding(|t| &t.corrupt_packets),
            transcode_failures: transcoding(|t| &t.failures),
            transcode_delay_ms: transcoding(|t| &t.delay_us) / 1000,
            transcode_delay_max_ms: transcoding(|t| &t.delay_max_us) / 1000,
            title: shown_title(&meta).to_string(),
            artist: meta.artist.clone(),
            fallback: mount.fallback(),
            encoding: mount.config().derived_from.is_some().then(|| transcoding(|t| &t.encoding)),
            audio_info: source.audio_info(),
            bitrate: source.bitrate(),
            genre: info.genre.clone(),
            public: u8::from(info.public),
            server_description: info.description.clone(),
            server_name: info.name.clone(),
            server_type: source.content_type.clone(),
            server_url: info.url.clone(),
            source_ip: source.peer.ip().to_string(),
            connected: source.started_at.elapsed().as_secs(),
            stream_start: timefmt::rfc2822(source.started),
            stream_start_iso8601: timefmt::iso8601(source.started),
            user_agent: source.user_agent.clone(),
        })
    }
}

/// `/admin/stats`: server-wide counters and every live mount, or only
/// `only` (`?mount=`).
pub fn server_stats(state: &AppState, only: Option<&MountHandle>) -> Icestats<AdminStats> {
    let s = &state.stats;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let tls = |counter: fn(&crate::tls::TlsCounters) -> &AtomicU64| {
        state.tls.as_ref().map_or(0, |t| load(counter(&t.counters)))
    };
    let config = state.config.get();
    let live = state.mounts.live();
    let listeners = state.mounts.listener_total() as u64;
    let held = state.mounts.all().iter().map(MountHandle::held_bytes).sum::<usize>() + state.hls.held_bytes();
    let icestats = AdminStats {
        access_refusals: load(&s.access_refusals),
        admin: config.server.admin_email.clone(),
        client_connections: load(&s.client_connections),
        clients: listeners + live.len() as u64,
        config_reload_failures: load(&s.config_reload_failures),
        config_reloads: load(&s.config_reloads),
        connections: load(&s.connections),
        file_connections: 0,
        held_bytes: held as u64,
        hls_held_bytes: state.hls.held_bytes() as u64,
        host: config.server.hostname.clone(),
        listener_connections: load(&s.listener_connections),
        listeners,
        location: config.server.location.clone(),
        long_lived_bytes: crate::heap::long_lived_bytes() as u64,
        resident_bytes: crate::heap::process_resident_bytes(),
        server_id: crate::http::server_id::get().to_string(),
        server_start: timefmt::rfc2822(state.started),
        server_start_iso8601: timefmt::iso8601(state.started),
        slow_listeners: load(&s.slow_listeners),
        source_client_connections: load(&s.source_client_connections),
        source_relay_connections: 0,
        source_total_connections: load(&s.source_total_connections),
        sources: live.len() as u64,
        stalled_listeners: load(&s.stalled_listeners),
        stats: 0,
        stats_connections: load(&s.stats_connections),
        tls_handshake_failures: tls(|t| &t.handshake_failures),
        tls_handshakes: tls(|t| &t.handshakes),
        tls_reload_failures: tls(|t| &t.reload_failures),
        tls_reloads: tls(|t| &t.reloads),
        transcode_failures: load(&s.transcode_failures),
        source: state
            .mounts
            .all()
            .iter()
            .filter(|m| only.is_none_or(|o| o.same(m)))
            .filter_map(|m| AdminSourceStats::of(state, m))
            .collect(),
    };
    Icestats { icestats }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn source(name: &str, title: Option<&str>) -> SourceStatus {
        SourceStatus {
            audio_info: None,
            bitrate: Some(128),
            genre: None,
            listener_peak: 3,
            listeners: 2,
            listenurl: format!("http://h:8000{name}"),
            hls_url: None,
            dash_url: None,
            server_description: None,
            server_name: Some("Name \"quoted\"".into()),
            server_type: "audio/mpeg".into(),
            server_url: None,
            stream_start: "s".into(),
            stream_start_iso8601: "i".into(),
            artist: None,
            title: title.map(str::to_string),
            dummy: (),
        }
    }

    fn document(sources: Vec<SourceStatus>) -> Value {
        let doc = StatusJson {
            icestats: IceStats {
                admin: "a",
                host: "h",
                location: "l",
                server_id: "Floe".into(),
                server_start: "s".into(),
                server_start_iso8601: "i".into(),
                source: Sources::of(sources),
            },
        };
        serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap()
    }

    #[test]
    fn one_source_is_an_object_several_an_array_none_absent() {
        assert!(document(vec![]).pointer("/icestats/source").is_none());
        let one = document(vec![source("/a", Some("T"))]);
        let a = one.pointer("/icestats/source").unwrap();
        assert_eq!(a["listenurl"], "http://h:8000/a");
        assert_eq!((a["bitrate"].as_u64(), a["title"].as_str()), (Some(128), Some("T")));
        assert_eq!(a["server_name"], "Name \"quoted\"");
        assert!(a.get("dummy").is_some_and(Value::is_null), "Icecast's trailing null");
        assert!(a.get("genre").is_none() && a.get("hls_url").is_none(), "what the source did not give is left out");
        let two = document(vec![source("/a", None), source("/b", None)]);
        let list = two.pointer("/icestats/source").and_then(Value::as_array).unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].get("title").is_none(), "no title before the first one");
    }
}
