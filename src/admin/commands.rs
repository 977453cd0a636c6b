//! The admin command handlers. Each reads its parameters, acts on the mount
//! registry, and returns a typed `Elem`; rendering happens elsewhere.

use super::doc::Elem;
use super::status::stats_elem;
use super::{ice_failure, ice_response, AdminError, Ctx};
use crate::config::valid_mount_name;
use crate::mount::{decode_with_charset, Metadata, MountHandle};

/// `/admin/stats` (also `stats.xml`, which LibreTime polls); with
/// `mount=`, that mount only, refused with Icecast's 400 and message when it
/// does not exist or has no source.
pub fn stats(ctx: &Ctx<'_>) -> Result<Elem, AdminError> {
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
    Ok(stats_elem(ctx.state, only.as_ref()))
}

/// `/admin/listmounts`: live mounts with listener counts.
pub fn listmounts(ctx: &Ctx<'_>) -> Result<Elem, AdminError> {
    Ok(source_list(ctx.state.mounts.live(), None))
}

/// Icecast's source list (`admin_build_sourcelist`), shared by listmounts,
/// streamlist and moveclients: each mount with its fallback, listener
/// count, seconds connected and content type; with `current`, that mount is
/// named first and left out of the list (the candidates to move to).
fn source_list(mounts: Vec<MountHandle>, current: Option<&MountHandle>) -> Elem {
    let sources = mounts.into_iter().filter(|m| current.is_none_or(|c| !c.same(m))).map(|m| {
        let source = m.source();
        Elem::item("source")
            .attr("mount", m.name())
            .opt("fallback", m.fallback())
            .field("listeners", m.listener_count())
            .field("Connected", source.as_ref().map_or(0, |s| s.started_at.elapsed().as_secs()))
            .field("content-type", source.map_or(String::new(), |s| s.content_type.clone()))
    });
    let list = Elem::new("icestats");
    let list = match current {
        Some(current) => list.field("current_source", current.name()),
        None => list,
    };
    list.children(sources)
}

/// `/admin/listclients?mount=`: the listeners of one mount.
pub fn listclients(ctx: &Ctx<'_>) -> Result<Elem, AdminError> {
    let mount = ctx.mount()?;
    let listeners = mount.listeners().into_iter().map(|l| {
        Elem::item("listener")
            .attr("id", l.id)
            .field("IP", l.ip.to_string())
            // Icecast's word for a listener that sent none.
            .field("UserAgent", l.user_agent.as_deref().unwrap_or("Unknown"))
            .opt("Referer", l.referer.as_deref())
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
    // Icecast answers an unknown id with a failed `iceresponse`, not an
    // HTTP error: panels read the message.
    let Some(listener) = mount.listener(id) else {
        return Ok(ice_failure(&format!("Client {id} not found")));
    };
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
    let source = mount.source().ok_or_else(|| AdminError::BadRequest("Source is not available".into()))?;
    source.kill();
    Ok(ice_response("Source Removed"))
}

/// `/admin/moveclients?mount=&destination=`: every listener of `mount` continues on `destination`.
/// Without `destination=`, the mounts its listeners could move to (as
/// Icecast, whose admin page builds its move form from that list).
pub fn moveclients(ctx: &Ctx<'_>) -> Result<Elem, AdminError> {
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
        .ok_or_else(|| AdminError::BadRequest("No such destination".into()))
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
    let sources = ctx.state.mounts.live().into_iter().filter(|m| !m.config().hidden).collect();
    Ok(source_list(sources, None))
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
