//! SHOUTcast DNAS compatibility for old widgets and source tools:
//! `/admin.cgi?mode=updinfo` title updates, `/7.html`, `/stats` (XML or
//! `json=1`) and `/currentsong`.
//!
//! A `sid=N` selects the SHOUTcast mount (N = 1) or `<mount>N` (N > 1),
//! the mount a DNAS 2 source sending `password:#N` streams to, so every page
//! and `admin.cgi` name the same stream for the same id; without it the
//! SHOUTcast mount is used if live, else the first live mount that is not a
//! rendition. `admin.cgi?mode=viewxml` answers the `/stats` document with
//! the listener list.

use std::sync::atomic::Ordering;

use super::commands::metadata_from_query;
use super::doc::Elem;
use super::AdminError;
use std::net::SocketAddr;

use crate::auth::{self, Refused};
use crate::http::request::Request;
use crate::http::response::Response;
use crate::http::status::{Refusal, Status};
use crate::mount::MountHandle;
use crate::state::AppState;

fn mount_for(req: &Request, state: &AppState) -> Option<MountHandle> {
    let base = &state.config.get().shoutcast.mount;
    if let Some(name) = req.query("mount") {
        return state.mounts.get(&name);
    }
    match req.query("sid").and_then(|s| s.parse::<u32>().ok()) {
        Some(sid) if sid > 1 => state.mounts.get(&format!("{base}{sid}")),
        Some(_) => state.mounts.get(base),
        // Without a stream id: the SHOUTcast mount, else the first live mount
        // that has a source of its own (never a rendition).
        None => state
            .mounts
            .get(base)
            .filter(MountHandle::is_live)
            .or_else(|| state.mounts.live().into_iter().find(|m| m.config().derived_from.is_none())),
    }
}

/// `/admin.cgi?mode=updinfo&pass=…&song=…` (libshout in SHOUTcast mode sends
/// `artist=`+`title=` and no `song=`, which Icecast refuses; we accept it).
pub fn admin_cgi(req: &Request, peer: SocketAddr, state: &AppState) -> Response {
    let Some(mount) = mount_for(req, state) else {
        return Response::text(Status::NotFound, "No such stream");
    };
    let Some(password) = req.query("pass") else {
        return AdminError::Auth.response();
    };
    let mount_config = state.config.get().credentials_mount(mount.name());
    let allowed = || {
        auth::constant_time_eq(&password, &state.config.get().auth.admin_password)
            || auth::shoutcast_password_allowed(&state.config.get(), &mount_config, &password)
    };
    match auth::attempt(&state.logins, peer.ip(), "admin.cgi", allowed) {
        Ok(()) => {}
        Err(Refused::Denied) => return AdminError::Auth.response(),
        Err(blocked) => return AdminError::Throttled(blocked.retry_after()).response(),
    }
    match req.query("mode").as_deref() {
        Some("updinfo") => {}
        Some("viewxml") => return Response::xml(view_xml(Some(&mount), state).to_xml()),
        _ => return Response::text(Status::BadRequest, "Unsupported mode"),
    }
    let Some(meta) = metadata_from_query(req) else {
        return Response::text(Status::BadRequest, "No song given");
    };
    tracing::info!(mount = mount.name(), song = meta.song.as_str(), "metadata updated (admin.cgi)");
    mount.set_metadata(meta);
    Response::html("<html><head><title>SHOUTcast Administrator</title></head><body>Update successful</body></html>\n")
}

/// What the SHOUTcast pages say of one mount (or of none: all zero).
#[derive(Default)]
struct Figures {
    listeners: u64,
    peak: u64,
    max: u64,
    bitrate: u32,
    song: String,
    live: bool,
    info: crate::mount::StreamInfo,
    content: String,
    uptime: u64,
    path: String,
    hits: u64,
}

fn figures(mount: Option<&MountHandle>, state: &AppState) -> Figures {
    let max = state.config.get().limits.clients as u64;
    let Some(m) = mount else {
        return Figures { max, ..Figures::default() };
    };
    let source = m.source();
    Figures {
        listeners: m.stats().listeners.load(Ordering::Relaxed),
        peak: m.stats().listener_peak.load(Ordering::Relaxed),
        max: m.config().max_listeners.map_or(max, |x| x as u64),
        bitrate: source.as_ref().and_then(|s| s.bitrate()).unwrap_or(0),
        song: m.metadata().song.clone(),
        live: source.is_some(),
        info: source.as_ref().map(|s| s.info.clone()).unwrap_or_default(),
        content: source.as_ref().map_or(String::new(), |s| s.content_type.clone()),
        uptime: source.as_ref().map_or(0, |s| s.started_at.elapsed().as_secs()),
        path: m.name().to_string(),
        hits: m.stats().listener_connections.load(Ordering::Relaxed),
    }
}

/// `/7.html`: `CURRENTLISTENERS,STREAMSTATUS,PEAKLISTENERS,MAXLISTENERS,UNIQUELISTENERS,BITRATE,SONGTITLE`.
pub fn seven_html(req: &Request, state: &AppState) -> Response {
    let f = figures(mount_for(req, state).as_ref(), state);
    Response::html(format!(
        "<html><body>{},{},{},{},{},{},{}</body></html>",
        f.listeners,
        u8::from(f.live),
        f.peak,
        f.max,
        f.listeners,
        f.bitrate,
        crate::escape::escape_xml(&f.song)
    ))
}

/// `/currentsong`: the title as plain text.
pub fn current_song(req: &Request, state: &AppState) -> Response {
    let f = figures(mount_for(req, state).as_ref(), state);
    Response::new(Status::Ok, "text/plain; charset=utf-8", f.song)
}

/// `/stats?sid=1` (XML) or `/stats?sid=1&json=1`.
pub fn stats(req: &Request, state: &AppState) -> Response {
    let mount = mount_for(req, state);
    let f = figures(mount.as_ref(), state);
    if req.query("json").as_deref() != Some("1") {
        return Response::xml(server_elem(f).to_xml());
    }
    let version = crate::http::server_id::get().to_string();
    let body = StatsJson {
        currentlisteners: f.listeners,
        peaklisteners: f.peak,
        maxlisteners: f.max,
        uniquelisteners: f.listeners,
        averagetime: 0,
        servergenre: f.info.genre.unwrap_or_default(),
        serverurl: f.info.url.unwrap_or_default(),
        servertitle: f.info.name.unwrap_or_default(),
        songtitle: f.song,
        streamhits: f.hits,
        streamstatus: u8::from(f.live),
        backupstatus: 0,
        streamlisted: 0,
        streampath: f.path,
        streamuptime: f.uptime,
        bitrate: f.bitrate.to_string(),
        content: f.content,
        version,
    };
    Response::json(serde_json::to_string(&body).unwrap_or_default())
}

/// `/stats?json=1` in SHOUTcast 2's names (its bitrate is a string).
#[derive(serde::Serialize)]
struct StatsJson {
    currentlisteners: u64,
    peaklisteners: u64,
    maxlisteners: u64,
    uniquelisteners: u64,
    averagetime: u64,
    servergenre: String,
    serverurl: String,
    servertitle: String,
    songtitle: String,
    streamhits: u64,
    streamstatus: u8,
    backupstatus: u8,
    streamlisted: u8,
    streampath: String,
    streamuptime: u64,
    bitrate: String,
    content: String,
    version: String,
}

/// `admin.cgi?mode=viewxml` (LibreTime and AzuraCast read listener counts
/// from it in SHOUTcast mode): the `/stats` document plus the version and
/// the listener list.
fn view_xml(mount: Option<&MountHandle>, state: &AppState) -> Elem {
    let listeners = mount.map(MountHandle::listeners).unwrap_or_default().into_iter().map(|l| {
        Elem::item("LISTENER")
            .field("HOSTNAME", l.ip.to_string())
            .field("USERAGENT", l.user_agent.as_deref().unwrap_or_default())
            .field("UNDERRUNS", 0u64)
            .field("CONNECTTIME", l.connected.elapsed().as_secs())
            .field("POINTER", 0u64)
            .field("UID", l.id)
    });
    server_elem(figures(mount, state))
        .field("VERSION", crate::http::server_id::get().to_string())
        .child(Elem::new("LISTENERS").children(listeners))
}

/// The `SHOUTCASTSERVER` document of `/stats`.
fn server_elem(f: Figures) -> Elem {
    Elem::new("SHOUTCASTSERVER")
        .field("CURRENTLISTENERS", f.listeners)
        .field("PEAKLISTENERS", f.peak)
        .field("MAXLISTENERS", f.max)
        .field("UNIQUELISTENERS", f.listeners)
        .field("AVERAGETIME", 0u64)
        .field("SERVERGENRE", f.info.genre.unwrap_or_default())
        .field("SERVERURL", f.info.url.unwrap_or_default())
        .field("SERVERTITLE", f.info.name.unwrap_or_default())
        .field("SONGTITLE", f.song)
        .field("STREAMHITS", f.hits)
        .field("STREAMSTATUS", u64::from(f.live))
        .field("STREAMPATH", f.path)
        .field("STREAMUPTIME", f.uptime)
        .field("BITRATE", u64::from(f.bitrate))
        .field("CONTENT", f.content)
}
