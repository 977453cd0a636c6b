//! The admin command handlers, and the listings only they answer with.
//! Each reads its parameters, acts on the mount registry, and returns a
//! `Document`; rendering happens elsewhere.

use serde::Serialize;

use super::doc::{or_empty, Document, Icestats};
use super::status::server_stats;
use super::xml::Attr;
use super::{AdminError, Ctx};
use crate::config::valid_mount_name;
use crate::mount::{decode_with_charset, Metadata, MountHandle};

/// `/admin/stats` (also `stats.xml`, which LibreTime polls); with
/// `mount=`, that mount only, refused with Icecast's 400 and message when it
/// does not exist or has no source.
pub fn stats(ctx: &Ctx<'_>) -> Result<Document, AdminError> {
    let only = match ctx.req.query("mount") {
        None => None,
        Some(name) => {
            let mount =
                ctx.state.mounts.get(&name).ok_or_else(|| AdminError::BadRequest("Source does not exist".into()))?;
            if !mount.is_live() {
                return Err(AdminError::BadRequest("Source is not available".into()));
            }
            Some(mount)
        }
    };
    Ok(Document::Stats(Box::new(server_stats(ctx.state, only.as_ref()))))
}

/// `/admin/listmounts`: live mounts with listener counts.
pub fn listmounts(ctx: &Ctx<'_>) -> Result<Document, AdminError> {
    Ok(source_list(ctx.state.mounts.live(), None))
}

/// Icecast's source list (`admin_build_sourcelist`), shared by listmounts,
/// streamlist and moveclients.
#[derive(Serialize)]
pub struct SourceList {
    /// With moveclients: the mount whose listeners would move, left out of
    /// the list (which holds the candidates to move to).
    #[serde(skip_serializing_if = "Option::is_none")]
    current_source: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source: Vec<ListedSource>,
}

#[derive(Serialize)]
pub struct ListedSource {
    pub mount: Attr<String>,
    #[serde(serialize_with = "or_empty")]
    fallback: Option<String>,
    listeners: u64,
    /// Seconds since the source connected.
    #[serde(rename = "Connected")]
    connected: u64,
    #[serde(rename = "content-type")]
    content_type: String,
}

/// The source list of `mounts`; with `current`, that mount is named first
/// and left out of the list.
fn source_list(mounts: Vec<MountHandle>, current: Option<&MountHandle>) -> Document {
    let source = mounts
        .into_iter()
        .filter(|m| current.is_none_or(|c| !c.same(m)))
        .map(|m| {
            let source = m.source();
            ListedSource {
                mount: Attr(m.name().to_string()),
                fallback: m.fallback(),
                listeners: m.listener_count() as u64,
                connected: source.as_ref().map_or(0, |s| s.started_at.elapsed().as_secs()),
                content_type: source.map_or(String::new(), |s| s.content_type.clone()),
            }
        })
        .collect();
    let current_source = current.map(|c| c.name().to_string());
    Document::Sources(Icestats { icestats: SourceList { current_source, source } })
}

/// `listclients`: one mount (a list of one, as Icecast's `<source>` is
/// repeated) and its listeners.
#[derive(Serialize)]
pub struct ClientList {
    source: Vec<MountClients>,
}

impl ClientList {
    pub fn mounts(&self) -> impl Iterator<Item = &str> {
        self.source.iter().map(|s| s.mount.0.as_str())
    }
}

#[derive(Serialize)]
struct MountClients {
    mount: Attr<String>,
    #[serde(rename = "Listeners")]
    listeners: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    listener: Vec<Client>,
}

/// One listener, in Icecast's element names.
#[derive(Serialize)]
struct Client {
    id: Attr<u64>,
    #[serde(rename = "IP")]
    ip: String,
    #[serde(rename = "UserAgent")]
    user_agent: String,
    #[serde(rename = "Referer", serialize_with = "or_empty")]
    referer: Option<String>,
    /// Icecast's queue lag; a listener here is never behind a queue of its own.
    lag: u64,
    #[serde(rename = "ID")]
    id_again: u64,
    /// Seconds since the listener connected.
    #[serde(rename = "Connected")]
    connected: u64,
    #[serde(rename = "Bytes")]
    bytes: u64,
}

/// `/admin/listclients?mount=`: the listeners of one mount.
pub fn listclients(ctx: &Ctx<'_>) -> Result<Document, AdminError> {
    let mount = ctx.mount()?;
    let listener = mount
        .listeners()
        .into_iter()
        .map(|l| Client {
            id: Attr(l.id),
            ip: l.ip.to_string(),
            // Icecast's word for a listener that sent none.
            user_agent: l.request.user_agent().unwrap_or("Unknown").to_string(),
            referer: l.request.referer().map(str::to_string),
            lag: 0,
            id_again: l.id,
            connected: l.connected().elapsed().as_secs(),
            bytes: l.body_sent(),
        })
        .collect();
    let source =
        MountClients { mount: Attr(mount.name().to_string()), listeners: mount.listener_count() as u64, listener };
    Ok(Document::Clients(Icestats { icestats: ClientList { source: vec![source] } }))
}

/// `/admin/killclient?mount=&id=`.
pub fn killclient(ctx: &Ctx<'_>) -> Result<Document, AdminError> {
    let mount = ctx.mount()?;
    let id: u64 = ctx.param("id")?.parse().map_err(|_| AdminError::BadRequest("id must be a number".into()))?;
    // Icecast answers an unknown id with a failed `iceresponse`, not an
    // HTTP error: panels read the message.
    let Some(listener) = mount.listener(id) else {
        return Ok(Document::failed(format!("Client {id} not found")));
    };
    listener.kill();
    mount.nudge();
    Ok(Document::done(format!("Client {id} removed")))
}

/// `/admin/reloadconfig`: read the configuration file again and apply it
/// (see `reload`); a file with problems changes nothing and they are listed.
pub fn reloadconfig(ctx: &Ctx<'_>) -> Result<Document, AdminError> {
    match crate::reload::reload_logged(ctx.state, "/admin/reloadconfig") {
        Ok(reloaded) => {
            let mut message = format!("Configuration reloaded: {reloaded}");
            for kept in &reloaded.kept {
                message.push_str("; ");
                message.push_str(kept);
            }
            Ok(Document::done(message))
        }
        Err(error) => Err(AdminError::BadRequest(format!("Configuration not reloaded:\n{error}"))),
    }
}

/// `/admin/killsource?mount=`.
pub fn killsource(ctx: &Ctx<'_>) -> Result<Document, AdminError> {
    let mount = ctx.mount()?;
    let source = mount.source().ok_or_else(|| AdminError::BadRequest("Source is not available".into()))?;
    source.kill();
    Ok(Document::done("Source Removed"))
}

/// `/admin/moveclients?mount=&destination=`: every listener of `mount` continues on `destination`.
/// Without `destination=`, the mounts its listeners could move to (as
/// Icecast, whose admin page builds its move form from that list).
pub fn moveclients(ctx: &Ctx<'_>) -> Result<Document, AdminError> {
    let mount = ctx.mount()?;
    let Some(destination) = ctx.req.query("destination") else {
        return Ok(source_list(ctx.state.mounts.live(), Some(&mount)));
    };
    let destination = live_destination(ctx, &destination)?;
    if destination.same(&mount) {
        return Err(AdminError::BadRequest("supplied mountpoints are identical".into()));
    }
    let listeners = mount.listeners();
    for listener in &listeners {
        mount.ask_move(listener, destination.clone());
    }
    mount.nudge();
    Ok(Document::done(format!("Clients moved from {} to {}", mount.name(), destination.name())))
}

fn live_destination(ctx: &Ctx<'_>, name: &str) -> Result<MountHandle, AdminError> {
    ctx.state
        .mounts
        .get(name)
        .filter(MountHandle::is_live)
        .ok_or_else(|| AdminError::BadRequest("No such destination".into()))
}

/// `/admin/fallbacks?mount=&fallback=`: set (or with no `fallback=`, show) a mount's fallback.
pub fn fallbacks(ctx: &Ctx<'_>) -> Result<Document, AdminError> {
    let mount = ctx.mount()?;
    if let Some(fallback) = ctx.req.query("fallback") {
        if fallback.is_empty() {
            mount.set_fallback(None);
        } else if !valid_mount_name(&fallback) || fallback == mount.name() {
            return Err(AdminError::BadRequest("invalid fallback mount".into()));
        } else {
            mount.set_fallback(Some(fallback));
        }
        return Ok(Document::done("Fallback configured"));
    }
    let source = MountFallback { mount: Attr(mount.name().to_string()), fallback: mount.fallback() };
    Ok(Document::Fallback(Icestats { icestats: FallbackList { source: vec![source] } }))
}

/// `fallbacks` without a new one: the mount's fallback (a list of one).
#[derive(Serialize)]
pub struct FallbackList {
    source: Vec<MountFallback>,
}

impl FallbackList {
    pub fn mounts(&self) -> impl Iterator<Item = &str> {
        self.source.iter().map(|s| s.mount.0.as_str())
    }
}

#[derive(Serialize)]
struct MountFallback {
    mount: Attr<String>,
    #[serde(serialize_with = "or_empty")]
    fallback: Option<String>,
}

/// `/admin/metadata?mount=&mode=updinfo&song=` (or `artist=`/`title=`, `url=`, `charset=`).
pub fn metadata(ctx: &Ctx<'_>) -> Result<Document, AdminError> {
    let mount = ctx.mount()?;
    if ctx.req.query("mode").as_deref() != Some("updinfo") {
        return Err(AdminError::BadRequest("mode must be updinfo".into()));
    }
    let meta = metadata_from_query(ctx.req).ok_or_else(|| AdminError::BadRequest("no song, title or artist".into()))?;
    tracing::info!(mount = mount.name(), song = meta.song.as_str(), "metadata updated");
    mount.set_metadata(meta);
    Ok(Document::done("Metadata update successful"))
}

/// Build metadata from `song`, or `artist`+`title`, decoding by `charset`.
pub fn metadata_from_query(req: &crate::http::request::Request) -> Option<Metadata> {
    let charset = req.query("charset");
    let get = |name: &str| req.query_raw(name).map(|raw| decode_with_charset(raw, charset.as_deref()));
    let url = get("url");
    if let Some(song) = get("song") {
        return Some(Metadata::from_song(&song, url.as_deref()));
    }
    let (artist, title) = (get("artist"), get("title"));
    if artist.is_none() && title.is_none() {
        return None;
    }
    Some(Metadata::from_parts(artist.as_deref(), title.as_deref(), url.as_deref()))
}

/// `/admin/streamlist`: public, live mounts, for relays.
pub fn streamlist(ctx: &Ctx<'_>) -> Result<Document, AdminError> {
    let sources = ctx.state.mounts.live().into_iter().filter(|m| !m.config().hidden).collect();
    Ok(source_list(sources, None))
}
