//! The one routing table: which requests are sources, which are listener
//! streams, and the complete responses for everything else. The server and
//! the in-process tests both go through `route`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use crate::admin::{self, shoutcast, status};
use crate::http::request::Request;
use crate::http::response::Response;
use crate::http::status::Status;
use crate::mount::MountHandle;
use crate::playlist::Playlist;
use crate::state::AppState;

/// Where a request goes.
pub enum Route {
    /// `PUT`/`SOURCE`: the socket becomes a source.
    Source,
    /// `GET`/`HEAD` on a mount: the socket becomes a listener.
    Stream(MountHandle),
    /// A complete response, and the authenticated user if any.
    Respond(Response, Option<String>),
    /// An HLS or DASH asset of a mount (answered asynchronously: it may wait).
    Adaptive(String, crate::hls::serve::Asset),
    /// `/admin/events` for the admin user (named) or `/status-events`
    /// (`None`): the event feed, streamed.
    Events(Option<String>),
}

pub fn route(req: &Request, peer: SocketAddr, state: &AppState) -> Route {
    match req.method.as_str() {
        "SOURCE" | "PUT" => Route::Source,
        "GET" | "HEAD" => get(req, peer, state),
        "OPTIONS" => Route::Respond(options(req), None),
        _ => Route::Respond(
            Response::text(Status::MethodNotAllowed, "Method not allowed")
                .with_header("Allow", "GET, HEAD, OPTIONS, PUT, SOURCE"),
            None,
        ),
    }
}

/// The mount a request streams, if that is what it asks for, decided from
/// the head alone (no side effects) with the precedence `route` uses: such
/// connections stay on the hand-written path, close-delimited.
pub fn stream_target(req: &Request, state: &AppState) -> Option<MountHandle> {
    let get = matches!(req.method.as_str(), "GET" | "HEAD");
    (get && !is_fixed_path(&req.path)).then(|| state.mounts.get(&req.path)).flatten()
}

/// Paths Floe answers itself, ahead of any mount of the same name.
fn is_fixed_path(path: &str) -> bool {
    const FIXED: [&str; 12] = [
        "/",
        "/status.xsl",
        "/status-events",
        "/metrics",
        "/index.html",
        crate::web::HLS_JS_PATH,
        crate::web::DASH_JS_PATH,
        "/status-json.xsl",
        "/admin.cgi",
        "/7.html",
        "/stats",
        "/currentsong",
    ];
    FIXED.contains(&path) || ["/hls/", "/dash/", "/admin/"].iter().any(|p| path.starts_with(p))
}

fn get(req: &Request, peer: SocketAddr, state: &AppState) -> Route {
    let respond = |response| Route::Respond(response, None);
    if !is_fixed_path(&req.path) {
        return mount_or_playlist(req, state);
    }
    match req.path.as_str() {
        "/status-json.xsl" => {
            state.stats.stats_connections.fetch_add(1, Ordering::Relaxed);
            respond(Response::json(status::status_json(state, req.query("mount").as_deref())))
        }
        "/admin.cgi" => respond(shoutcast::admin_cgi(req, peer, state)),
        "/metrics" => {
            let (response, user) = admin::metrics(req, peer, state);
            Route::Respond(response, user)
        }
        "/7.html" => respond(shoutcast::seven_html(req, state)),
        "/stats" => respond(shoutcast::stats(req, state)),
        "/currentsong" => respond(shoutcast::current_song(req, state)),
        path if path.starts_with("/hls/") || path.starts_with("/dash/") => match crate::hls::serve::parse(path) {
            Some((mount, asset)) => Route::Adaptive(mount, asset),
            None => respond(Response::text(Status::NotFound, "Not found")),
        },
        "/status-events" => Route::Events(None),
        "/admin/events" => match admin::admin_user(req, peer, state) {
            Ok(user) => Route::Events(Some(user)),
            Err(response) => respond(response),
        },
        path if path.starts_with("/admin/") => {
            let (response, user) = admin::handle(req, peer, state);
            Route::Respond(response, user)
        }
        // The status page and the player libraries.
        _ => respond(crate::web::asset(req).unwrap_or_else(|| Response::text(Status::NotFound, "Not found"))),
    }
}

fn mount_or_playlist(req: &Request, state: &AppState) -> Route {
    let path = req.path.as_str();
    if let Some(mount) = state.mounts.get(path) {
        return Route::Stream(mount);
    }
    if let Some((kind, name)) = Playlist::split(path) {
        if let Some(mount) = state.mounts.get(name) {
            // Where the client reached this server (another machine must
            // get a URL it can reach); the configured name without a Host.
            let url = match req.host() {
                Some(host) => format!("{}://{host}{}", if req.secure { "https" } else { "http" }, mount.name()),
                None => status::listen_url(state, mount.name()),
            };
            let name = mount.source().and_then(|s| s.info.name.clone()).unwrap_or_else(|| mount.name().to_string());
            let body = kind.render(&url, &name, &mount.metadata().song);
            return Route::Respond(Response::new(Status::Ok, kind.content_type(), body), None);
        }
    }
    Route::Respond(Response::text(Status::NotFound, "Mount not found"), None)
}

/// `OPTIONS *` (libshout's probe) and CORS preflight for web players.
fn options(req: &Request) -> Response {
    let mut response = Response::new(Status::NoContent, "text/plain", "")
        .with_header("Allow", "GET, HEAD, OPTIONS, PUT, SOURCE")
        .with_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        .with_header(
            "Access-Control-Allow-Headers",
            "Origin, Accept, X-Requested-With, Content-Type, Icy-MetaData, Range",
        )
        .with_header(
            "Access-Control-Expose-Headers",
            "icy-metaint, icy-br, icy-description, icy-genre, icy-name, icy-pub, icy-url",
        )
        .with_header("Access-Control-Max-Age", "86400");
    if req.path == "*" {
        response.status = Status::Ok;
    }
    response
}
