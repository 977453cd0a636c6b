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

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::commands::metadata_from_query;
use super::AdminError;

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
        Some("viewxml") => return xml_response(&view_xml(Some(&mount), state)),
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

/// `/stats?sid=1` (XML) or `/stats?sid=1&json=1`: the same figures,
/// named in capitals in the XML as DNAS 2 names them.
pub fn stats(req: &Request, state: &AppState) -> Response {
    let mount = mount_for(req, state);
    let figures = ServerFigures::of(figures(mount.as_ref(), state), None);
    if req.query("json").as_deref() == Some("1") {
        return Response::json(serde_json::to_string(&figures).unwrap_or_default());
    }
    xml_response(&ServerXml { shoutcastserver: figures })
}

/// `admin.cgi?mode=viewxml` (LibreTime and AzuraCast read listener counts
/// from it in SHOUTcast mode): the `/stats` document plus the listener list.
fn view_xml(mount: Option<&MountHandle>, state: &AppState) -> ServerXml {
    let listener = mount
        .map(MountHandle::listeners)
        .unwrap_or_default()
        .into_iter()
        .map(|l| ListenerFigures {
            hostname: l.ip.to_string(),
            useragent: l.request.user_agent().unwrap_or_default().to_string(),
            underruns: 0,
            connecttime: l.connected().elapsed().as_secs(),
            pointer: 0,
            uid: l.id,
        })
        .collect();
    ServerXml { shoutcastserver: ServerFigures::of(figures(mount, state), Some(Listeners { listener })) }
}

fn xml_response(document: &ServerXml) -> Response {
    super::rendered(super::xml::to_string_uppercase(document).map(Response::xml), "SHOUTCASTSERVER")
}

/// The `SHOUTCASTSERVER` document of `/stats` and `viewxml`.
#[derive(Serialize)]
struct ServerXml {
    shoutcastserver: ServerFigures,
}

/// DNAS 2's statistics, in its names (lower case in JSON, capitals in XML).
#[derive(Serialize)]
struct ServerFigures {
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
    /// No backup source, not listed in a directory: DNAS's 0s.
    backupstatus: u8,
    streamlisted: u8,
    streampath: String,
    streamuptime: u64,
    /// A string in DNAS 2's JSON.
    bitrate: String,
    content: String,
    version: String,
    /// `viewxml` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    listeners: Option<Listeners>,
}

impl ServerFigures {
    fn of(f: Figures, listeners: Option<Listeners>) -> ServerFigures {
        ServerFigures {
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
            version: crate::http::server_id::get().to_string(),
            listeners,
        }
    }
}

#[derive(Serialize)]
struct Listeners {
    listener: Vec<ListenerFigures>,
}

/// One listener as DNAS's `viewxml` lists it.
#[derive(Serialize)]
struct ListenerFigures {
    hostname: String,
    useragent: String,
    underruns: u64,
    connecttime: u64,
    pointer: u64,
    uid: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener() -> ListenerFigures {
        ListenerFigures {
            hostname: "127.0.0.1".into(),
            useragent: "<WinampMPEG>".into(),
            underruns: 0,
            connecttime: 5,
            pointer: 0,
            uid: 9,
        }
    }

    /// One set of figures: capitals in the XML, DNAS 2's lower-case names
    /// (and string bitrate) in the JSON, the listener list in `viewxml` only.
    #[test]
    fn stats_and_viewxml_in_dnas_shape() {
        let figures = || Figures { listeners: 1, live: true, song: "A & B".into(), bitrate: 128, ..Figures::default() };
        let view =
            ServerXml { shoutcastserver: ServerFigures::of(figures(), Some(Listeners { listener: vec![listener()] })) };
        let xml = super::super::xml::to_string_uppercase(&view).unwrap();
        assert!(
            xml.starts_with("<?xml version=\"1.0\"?>\n<SHOUTCASTSERVER><CURRENTLISTENERS>1</CURRENTLISTENERS>"),
            "{xml}"
        );
        assert!(xml.contains("<SONGTITLE>A &amp; B</SONGTITLE>"), "{xml}");
        assert!(xml.contains("<STREAMSTATUS>1</STREAMSTATUS><BACKUPSTATUS>0</BACKUPSTATUS>"), "{xml}");
        assert!(xml.contains("<BITRATE>128</BITRATE>"), "{xml}");
        let version = crate::http::server_id::get().to_string();
        let listeners = "<LISTENERS><LISTENER><HOSTNAME>127.0.0.1</HOSTNAME><USERAGENT>&lt;WinampMPEG&gt;</USERAGENT>";
        assert!(
            xml.contains(&format!("<VERSION>{}</VERSION>{listeners}", crate::escape::escape_xml(&version))),
            "{xml}"
        );
        assert!(xml.ends_with("<UID>9</UID></LISTENER></LISTENERS></SHOUTCASTSERVER>\n"), "{xml}");
        let stats = ServerFigures::of(figures(), None);
        let plain = super::super::xml::to_string_uppercase(&ServerXml { shoutcastserver: stats }).unwrap();
        assert!(!plain.contains("<LISTENERS"), "{plain}");
        let json: serde_json::Value = serde_json::to_value(ServerFigures::of(figures(), None)).unwrap();
        assert_eq!((json["currentlisteners"].as_u64(), json["bitrate"].as_str()), (Some(1), Some("128")));
        assert!(json.get("listeners").is_none());
    }
}
