//! The admin command handlers. Each reads its parameters, acts on the mount
//! registry, and returns a typed `Elem`; rendering happens elsewhere.

use super::doc::Elem;
use super::status::stats_elem;
use super::{ice_response, AdminError, Ctx};
use crate::config::valid_mount_name;
use crate::mount::{decode_with_charset, Metadata, MountHandle};

/// `/admin/stats` (also `stats.xml`, which LibreTime polls).
pub fn stats(ctx: &Ctx<'_>) -> Result<Elem, AdminError> {
    Ok(stats_elem(ctx.state))
}

/// `/admin/listmounts`: live mounts with listener counts.
pub fn listmounts(ctx: &Ctx<'_>) -> Result<Elem, AdminError> {
    let sources = ctx.state.mounts.live().into_iter().map(|m| {
        let source = m.source();
        Elem::item("source")
            .attr("mount", m.name())
            .opt("fallback", m.fallback())
            .field("listeners", m.listener_count())
            .field("Connected", source.as_ref().map_or(0, |s| s.started_at.elapsed().as_secs()))
            .field("content-type", source.map_or(String::new(), |s| s.content_type.clone()))
    });
    Ok(Elem::new("icestats").children(sources))
}

/// `/admin/listclients?mount=`: the listeners of one mount.
pub fn listclients(ctx: &Ctx<'_>) -> Result<Elem, AdminError> {
    let mount = ctx.mount()?;
    let listeners = mount.listeners().into_iter().map(|l| {
        Elem::item("listener")
            .attr("id", l.id)
            .field("IP", l.ip.to_string())
            .opt("UserAgent", l.user_agent.clone())
            .opt("Referer", l.referer.clone())
            .field("lag", 0u64)
            .field("ID", l.id)
            .field("Connected", l.connected.elapsed().as_secs())
            .field("Bytes", l.sent.load(std::sync::atomic::Ordering::Relaxed))
    });
    let source =
        Elem::item("source").attr("mount", mount.name()).field("Listeners", mount.listener_count()).children(listeners);
    Ok(Elem::new("icestats").child(source))
}

/// `/admin/killclient?mount=&id=`.
pub fn killclient(ctx: &Ctx<'_>) -> Result<Elem, AdminError> {
    let mount = ctx.mount()?;
    let id: u64 = ctx.param("id")?.parse().map_err(|_| AdminError::BadRequest("id must be a number".into()))?;
    let listener = mount.listener(id).ok_or_else(|| AdminError::NotFound(format!("client {id} not found")))?;
    listener.control.kill();
    mount.nudge();
    Ok(ice_response(&format!("Client {id} removed")))
}

/// `/admin/reloadconfig`: read the configuration file again and apply it
/// (see `reload`); a file with problems changes nothing and they are listed.
pub fn reloadconfig(ctx: &Ctx<'_>) -> Result<Elem, AdminError> {
    match crate::reload::reload_logged(ctx.state, "/admin/reloadconfig") {
        Ok(reloaded) => {
            let mut message = format!("Configuration reloaded: {reloaded}");
            for kept in &reloaded.kept {
                message.push_str("; ");
                message.push_str(kept);
            }
            Ok(ice_response(&message))
        }
        Err(error) => Err(AdminError::BadRequest(format!("Configuration not reloaded:\n{error}"))),
    }
}

/// `/admin/killsource?mount=`.
pub fn killsource(ctx: &Ctx<'_>) -> Result<Elem, AdminError> {
    let mount = ctx.mount()?;
    let source = mount.source().ok_or_else(|| AdminError::NotFound("mount has no source".into()))?;
    source.kill();
    Ok(ice_response("Source Removed"))
}

/// `/admin/moveclients?mount=&destination=`: every listener of `mount` continues on `destination`.
pub fn moveclients(ctx: &Ctx<'_>) -> Result<Elem, AdminError> {
    let mount = ctx.mount()?;
    let destination = live_destination(ctx, &ctx.param("destination")?)?;
    if destination.same(&mount) {
        return Err(AdminError::BadRequest("destination is the same mount".into()));
    }
    let listeners = mount.listeners();
    for listener in &listeners {
        listener.control.move_to(destination.clone());
    }
    mount.nudge();
    Ok(ice_response(&format!("Clients moved from {} to {}", mount.name(), destination.name())))
}

fn live_destination(ctx: &Ctx<'_>, name: &str) -> Result<MountHandle, AdminError> {
    ctx.state
        .mounts
        .get(name)
        .filter(MountHandle::is_live)
        .ok_or_else(|| AdminError::NotFound(format!("destination {name} is not live")))
}

/// `/admin/fallbacks?mount=&fallback=`: set (or with no `fallback=`, show) a mount's fallback.
pub fn fallbacks(ctx: &Ctx<'_>) -> Result<Elem, AdminError> {
    let mount = ctx.mount()?;
    if let Some(fallback) = ctx.req.query("fallback") {
        if fallback.is_empty() {
            mount.set_fallback(None);
        } else if !valid_mount_name(&fallback) || fallback == mount.name() {
            return Err(AdminError::BadRequest("invalid fallback mount".into()));
        } else {
            mount.set_fallback(Some(fallback));
        }
        return Ok(ice_response("Fallback configured"));
    }
    let source = Elem::item("source").attr("mount", mount.name()).opt("fallback", mount.fallback());
    Ok(Elem::new("icestats").child(source))
}

/// `/admin/metadata?mount=&mode=updinfo&song=` (or `artist=`/`title=`, `url=`, `charset=`).
pub fn metadata(ctx: &Ctx<'_>) -> Result<Elem, AdminError> {
    let mount = ctx.mount()?;
    if ctx.req.query("mode").as_deref() != Some("updinfo") {
        return Err(AdminError::BadRequest("mode must be updinfo".into()));
    }
    let meta = metadata_from_query(ctx.req).ok_or_else(|| AdminError::BadRequest("no song, title or artist".into()))?;
    tracing::info!(mount = mount.name(), song = meta.song.as_str(), "metadata updated");
    mount.set_metadata(meta);
    Ok(ice_response("Metadata update successful"))
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
pub fn streamlist(ctx: &Ctx<'_>) -> Result<Elem, AdminError> {
    let sources = ctx
        .state
        .mounts
        .live()
        .into_iter()
        .filter(|m| !m.config().hidden)
        .map(|m| Elem::item("source").attr("mount", m.name()));
    Ok(Elem::new("icestats").children(sources))
}

/// Plain-text rendering (`.txt`): one mount per line, CRLF-separated, as relays expect.
pub fn as_text(elem: &Elem) -> String {
    let mut out = String::new();
    for child in &elem.children {
        if let Some((_, super::doc::Leaf::Text(mount))) = child.attrs.iter().find(|(k, _)| *k == "mount") {
            out.push_str(mount);
            out.push_str("\r\n");
        }
    }
    out
}
