//! Read-only views of the server: `/status-json.xsl` in Icecast's exact
//! shape (an object for one source, an array for several), and the
//! per-source and server-wide fields `/admin/stats` shares with it.

use std::sync::atomic::Ordering;

use serde_json::{json, Map, Value};

use super::doc::Elem;
use crate::mount::{Metadata, MountHandle};
use crate::state::AppState;
use crate::timefmt;

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
    let mut icestats = Map::new();
    icestats.insert("admin".into(), json!(state.config.get().server.admin_email));
    icestats.insert("host".into(), json!(state.config.get().server.hostname));
    icestats.insert("location".into(), json!(state.config.get().server.location));
    icestats.insert("server_id".into(), json!(&*crate::http::server_id::get()));
    icestats.insert("server_start".into(), json!(timefmt::rfc2822(state.started)));
    icestats.insert("server_start_iso8601".into(), json!(timefmt::iso8601(state.started)));
    let mut sources: Vec<Value> = visible_live_mounts(state)
        .iter()
        .filter(|m| only.is_none_or(|name| m.name() == name))
        .filter_map(|m| source_json(state, m))
        .collect();
    // Icecast's quirk that existing consumers rely on: one source is an object.
    match sources.len() {
        0 => {}
        1 => {
            icestats.insert("source".into(), sources.remove(0));
        }
        _ => {
            icestats.insert("source".into(), Value::Array(sources));
        }
    }
    json!({ "icestats": icestats }).to_string()
}

fn source_json(state: &AppState, mount: &MountHandle) -> Option<Value> {
    let source = mount.source()?;
    let meta = mount.metadata();
    let stats = mount.stats();
    let mut obj = Map::new();
    let mut put = |k: &str, v: Value| {
        obj.insert(k.to_string(), v);
    };
    if let Some(audio_info) = source.audio_info() {
        put("audio_info", json!(audio_info));
    }
    if let Some(bitrate) = source.bitrate() {
        put("bitrate", json!(bitrate));
    }
    if let Some(genre) = &source.info.genre {
        put("genre", json!(genre));
    }
    put("listener_peak", json!(stats.listener_peak.load(Ordering::Relaxed)));
    put("listeners", json!(stats.listeners.load(Ordering::Relaxed)));
    put("listenurl", json!(listen_url(state, mount.name())));
    if state.hls.get(mount.name()).is_some() {
        let base = format!("http://{}:{}", state.config.get().server.hostname, state.http_port);
        put("hls_url", json!(format!("{base}/hls{}/master.m3u8", mount.name())));
        put("dash_url", json!(format!("{base}/dash{}/manifest.mpd", mount.name())));
    }
    if let Some(description) = &source.info.description {
        put("server_description", json!(description));
    }
    if let Some(name) = &source.info.name {
        put("server_name", json!(name));
    }
    put("server_type", json!(source.content_type));
    if let Some(url) = &source.info.url {
        put("server_url", json!(url));
    }
    put("stream_start", json!(timefmt::rfc2822(source.started)));
    put("stream_start_iso8601", json!(timefmt::iso8601(source.started)));
    if let Some(artist) = &meta.artist {
        put("artist", json!(artist));
    }
    if !meta.song.is_empty() {
        put("title", json!(shown_title(&meta)));
    }
    put("dummy", Value::Null);
    Some(Value::Object(obj))
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

/// The `<source>` element of `/admin/stats`.
pub fn source_elem(state: &AppState, mount: &MountHandle) -> Elem {
    let stats = mount.stats();
    let meta = mount.metadata();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut elem = Elem::item("source")
        .attr("mount", mount.name())
        .field("listeners", load(&stats.listeners))
        .field("listener_peak", load(&stats.listener_peak))
        .field("listenurl", listen_url(state, mount.name()))
        .field("max_listeners", mount.config().max_listeners.map_or("unlimited".to_string(), |m| m.to_string()))
        .field("slow_listeners", load(&stats.slow_listeners))
        .field("total_bytes_read", load(&stats.bytes_read))
        .field("total_bytes_sent", load(&stats.bytes_sent))
        .field("held_bytes", mount.held_bytes())
        .field("dump_bytes", load(&stats.dump_bytes))
        .field("hls_held_bytes", state.hls.get(mount.name()).map_or(0, |h| h.held_bytes()))
        .field("hls_held_ms", state.hls.get(mount.name()).map_or(0, |h| (h.held_seconds() * 1000.0) as u64))
        .field("transcode_cpu_ms", load(&stats.transcode_ns) / 1_000_000)
        .field("corrupt_packets", load(&stats.corrupt_packets))
        .field("transcode_failures", load(&stats.transcode_failures))
        .field("transcode_delay_ms", load(&stats.transcode_delay_us) / 1000)
        .field("transcode_delay_max_ms", load(&stats.transcode_delay_max_us) / 1000)
        .field("title", shown_title(&meta))
        .opt("artist", meta.artist.clone())
        .opt("fallback", mount.fallback());
    if mount.config().derived_from.is_some() {
        // Renditions: whether the encoder runs (on-demand ones idle without listeners).
        elem = elem.field("encoding", load(&stats.encoding));
    }
    if let Some(source) = mount.source() {
        let info = &source.info;
        elem = elem
            .opt("audio_info", source.audio_info())
            .opt("bitrate", source.bitrate().map(u64::from))
            .opt("genre", info.genre.clone())
            .field("public", u64::from(info.public))
            .opt("server_description", info.description.clone())
            .opt("server_name", info.name.clone())
            .field("server_type", source.content_type.as_str())
            .opt("server_url", info.url.clone())
            .field("source_ip", source.peer.ip().to_string())
            .field("connected", source.started_at.elapsed().as_secs())
            .field("stream_start", timefmt::rfc2822(source.started))
            .field("stream_start_iso8601", timefmt::iso8601(source.started))
            .opt("user_agent", source.user_agent.clone());
    }
    elem
}

/// `/admin/stats`: server-wide counters and every live mount, or only
/// `only` (`?mount=`).
pub fn stats_elem(state: &AppState, only: Option<&MountHandle>) -> Elem {
    let s = &state.stats;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let tls = |counter: fn(&crate::tls::TlsCounters) -> &std::sync::atomic::AtomicU64| {
        state.tls.as_ref().map_or(0, |t| load(counter(&t.counters)))
    };
    let live = state.mounts.live();
    Elem::new("icestats")
        .field("access_refusals", load(&s.access_refusals))
        .field("admin", state.config.get().server.admin_email.as_str())
        .field("client_connections", load(&s.client_connections))
        .field("clients", state.mounts.listener_total() + live.len())
        .field("config_reload_failures", load(&s.config_reload_failures))
        .field("config_reloads", load(&s.config_reloads))
        .field("connections", load(&s.connections))
        .field("file_connections", 0u64)
        .field(
            "held_bytes",
            state.mounts.all().iter().map(MountHandle::held_bytes).sum::<usize>() + state.hls.held_bytes(),
        )
        .field("hls_held_bytes", state.hls.held_bytes())
        .field("host", state.config.get().server.hostname.as_str())
        .field("listener_connections", load(&s.listener_connections))
        .field("listeners", state.mounts.listener_total())
        .field("location", state.config.get().server.location.as_str())
        .field("server_id", crate::http::server_id::get().to_string())
        .field("server_start", timefmt::rfc2822(state.started))
        .field("server_start_iso8601", timefmt::iso8601(state.started))
        .field("slow_listeners", load(&s.slow_listeners))
        .field("source_client_connections", load(&s.source_client_connections))
        .field("source_relay_connections", 0u64)
        .field("source_total_connections", load(&s.source_total_connections))
        .field("sources", live.len())
        .field("stats", 0u64)
        .field("stats_connections", load(&s.stats_connections))
        .field("tls_handshake_failures", tls(|t| &t.handshake_failures))
        .field("tls_handshakes", tls(|t| &t.handshakes))
        .field("tls_reload_failures", tls(|t| &t.reload_failures))
        .field("tls_reloads", tls(|t| &t.reloads))
        .field("transcode_failures", load(&s.transcode_failures))
        .children(
            state
                .mounts
                .all()
                .iter()
                .filter(|m| m.is_live() && only.is_none_or(|o| o.same(m)))
                .map(|m| source_elem(state, m)),
        )
}
