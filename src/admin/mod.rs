//! The Icecast-compatible admin API (`/admin/*`), the status JSON and the
//! SHOUTcast compatibility pages.
//!
//! Admin commands are one table of (name, required role, handler). Each
//! handler returns a typed `Document`; one responder renders it as XML
//! (default, `.xml`), JSON (`.json`) or a plain mount list (`.txt`), so no
//! command formats output itself.

mod commands;
pub mod doc;
pub mod events;
pub mod history;
pub mod metrics;
pub mod shoutcast;
pub mod status;
mod xml;

use std::net::SocketAddr;

use crate::auth::{self, Credentials, Refused};
use crate::http::request::Request;
use crate::http::response::Response;
use crate::http::status::{Refusal, Status};
use crate::mount::MountHandle;
use crate::state::AppState;
use doc::Document;

/// Who may run a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The admin user only.
    Admin,
    /// The admin user, or the source credentials of the `mount=` mount.
    MountSource,
    /// The admin user, or the relay user (another server's relays read
    /// the stream list with it, as from Icecast).
    Relay,
}

/// Why a command failed; mapped to a status in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("authentication required")]
    Auth,
    #[error("too many failed logins from this address; retry later")]
    Throttled(u64),
    #[error(
        "cross-site admin requests are refused: open the admin URL directly, or use a tool that sends the credentials"
    )]
    CrossSite,
    /// Refused as Icecast refuses it (its 400 and message).
    #[error("{0}")]
    BadRequest(String),
}

impl Refusal for AdminError {
    fn status(&self) -> Status {
        match self {
            AdminError::Auth => Status::Unauthorized,
            AdminError::Throttled(_) => Status::TooManyRequests,
            AdminError::CrossSite => Status::Forbidden,
            AdminError::BadRequest(_) => Status::BadRequest,
        }
    }

    fn realm(&self) -> &'static str {
        "Floe admin"
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            AdminError::Throttled(secs) => Some(*secs),
            _ => None,
        }
    }

    fn response(&self) -> Response {
        match self {
            AdminError::BadRequest(message) => error_page(self.status(), message),
            _ => Response::text(self.status(), &self.to_string()).with_refusal_headers(self),
        }
    }
}

/// What a handler gets.
pub struct Ctx<'a> {
    pub req: &'a Request,
    pub peer: SocketAddr,
    pub state: &'a AppState,
}

impl Ctx<'_> {
    pub fn param(&self, name: &str) -> Result<String, AdminError> {
        self.req.query(name).ok_or_else(|| AdminError::BadRequest(format!("missing parameter {name}")))
    }

    /// The mount named by `mount=`; must exist (else Icecast's 400 and message).
    pub fn mount(&self) -> Result<MountHandle, AdminError> {
        let name = self.param("mount")?;
        self.state.mounts.get(&name).ok_or_else(|| AdminError::BadRequest("Source does not exist".into()))
    }
}

type Handler = fn(&Ctx<'_>) -> Result<Document, AdminError>;

/// Whether a command changes the server's state: those are refused when a
/// browser says a foreign page sent it (see `cross_site`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Reads,
    Writes,
    /// Writes when this parameter is given, reads otherwise.
    WritesWith(&'static str),
}

struct Command {
    name: &'static str,
    role: Role,
    effect: Effect,
    run: Handler,
}

const COMMANDS: &[Command] = &[
    Command { name: "stats", role: Role::Admin, effect: Effect::Reads, run: commands::stats },
    Command { name: "listmounts", role: Role::Admin, effect: Effect::Reads, run: commands::listmounts },
    Command { name: "listclients", role: Role::Admin, effect: Effect::Reads, run: commands::listclients },
    Command { name: "killclient", role: Role::Admin, effect: Effect::Writes, run: commands::killclient },
    Command { name: "killsource", role: Role::Admin, effect: Effect::Writes, run: commands::killsource },
    Command { name: "moveclients", role: Role::Admin, effect: Effect::Writes, run: commands::moveclients },
    Command { name: "fallbacks", role: Role::Admin, effect: Effect::WritesWith("fallback"), run: commands::fallbacks },
    Command { name: "metadata", role: Role::MountSource, effect: Effect::Writes, run: commands::metadata },
    Command { name: "streamlist", role: Role::Relay, effect: Effect::Reads, run: commands::streamlist },
    Command { name: "reloadconfig", role: Role::Admin, effect: Effect::Writes, run: commands::reloadconfig },
];

/// Output format picked by the path suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Xml,
    Json,
    Text,
}

/// Handle `/admin/<command>[.xml|.json|.txt]`. Returns the response and the
/// authenticated user (for the access log).
pub fn handle(req: &Request, peer: SocketAddr, state: &AppState) -> (Response, Option<String>) {
    let name = req.path.trim_start_matches("/admin/");
    if let Some(page) = page(name, state) {
        return match admin_user(req, peer, state) {
            Ok(user) => (page, Some(user)),
            Err(response) => (response, None),
        };
    }
    let (name, format) = match name.rsplit_once('.') {
        Some((n, "json")) => (n, Format::Json),
        Some((n, "xml")) => (n, Format::Xml),
        Some((n, "txt")) => (n, Format::Text),
        _ => (name, Format::Xml),
    };
    let Some(command) = COMMANDS.iter().find(|c| c.name == name) else {
        return (Response::text(Status::NotFound, "Unknown admin command"), None);
    };
    let writes = match command.effect {
        Effect::Reads => false,
        Effect::Writes => true,
        Effect::WritesWith(param) => req.query(param).is_some(),
    };
    if writes && cross_site(req) {
        tracing::warn!(%peer, command = command.name, "cross-site admin request refused");
        return (AdminError::CrossSite.response(), None);
    }
    let ctx = Ctx { req, peer, state };
    let user = match authorize(&ctx, command.role) {
        Ok(user) => user,
        Err(error) => return (error.response(), None),
    };
    let response = match (command.run)(&ctx) {
        Ok(document) => render(&document, format, command.name),
        Err(error) => error.response(),
    };
    (response, Some(user))
}

/// Icecast's admin page paths, which old links and bookmarks use.
const PAGE_ALIASES: [&str; 5] =
    ["stats.xsl", "listmounts.xsl", "listclients.xsl", "moveclients.xsl", "updatemetadata.xsl"];

/// The admin page (at `/admin/` and Icecast's page paths) and its graph's
/// data, for the admin user.
fn page(name: &str, state: &AppState) -> Option<Response> {
    match name {
        "" | "index.html" => Some(
            Response::html(bytes::Bytes::from_static(crate::web::ADMIN_HTML.as_bytes()))
                // Its buttons act: no other site may frame it.
                .with_header("X-Frame-Options", "DENY")
                .with_header("Content-Security-Policy", "frame-ancestors 'none'"),
        ),
        name if PAGE_ALIASES.contains(&name) => page("", state),
        "history.json" => Some(Response::json(state.history.to_json().to_string())),
        _ => None,
    }
}

/// `/metrics` for the admin user (Prometheus sends Basic credentials with
/// `basic_auth` in its scrape config).
pub fn metrics(req: &Request, peer: SocketAddr, state: &AppState) -> (Response, Option<String>) {
    match admin_user(req, peer, state) {
        Ok(user) => (Response::new(Status::Ok, metrics::CONTENT_TYPE, metrics::render(state)), Some(user)),
        Err(response) => (response, None),
    }
}

/// The admin user, if the request carries its credentials (counted by the
/// login throttle like every admin login).
pub fn admin_user(req: &Request, peer: SocketAddr, state: &AppState) -> Result<String, Response> {
    authorize(&Ctx { req, peer, state }, Role::Admin).map_err(|error| error.response())
}

fn render(document: &Document, format: Format, command: &str) -> Response {
    match format {
        Format::Xml => rendered(document.to_xml().map(Response::xml), command),
        Format::Json => rendered(document.to_json().map(Response::json), command),
        Format::Text => Response::new(Status::Ok, "text/plain; charset=utf-8", document.to_text()),
    }
}

/// A rendered document, or a 500: every document type is rendered by the
/// unit tests, so a failure here is a bug in a document's shape, not in the
/// request.
fn rendered<E: std::fmt::Display>(result: Result<Response, E>, document: &str) -> Response {
    result.unwrap_or_else(|error| {
        tracing::error!(document, %error, "admin document not renderable");
        Response::text(Status::InternalServerError, "internal error")
    })
}

/// Check the request's credentials against the command's role (failures
/// count towards the address's login throttle).
fn authorize(ctx: &Ctx<'_>, role: Role) -> Result<String, AdminError> {
    let creds = credentials(ctx.req)?;
    let config = &ctx.state.config.get();
    let allowed = || {
        auth::is_admin(config, &creds)
            || role == Role::Relay && auth::is_relay(config, &creds)
            || role == Role::MountSource
                && ctx
                    .req
                    .query("mount")
                    .is_some_and(|mount| auth::source_allowed(config, &config.credentials_mount(&mount), &creds))
    };
    auth::attempt(&ctx.state.logins, ctx.peer.ip(), "admin", allowed).map_err(|refused| match refused {
        Refused::Denied => AdminError::Auth,
        blocked => AdminError::Throttled(blocked.retry_after()),
    })?;
    Ok(creds.user)
}

/// Did a browser send this request on behalf of another site? Browsers
/// attach cached Basic credentials to any request to this server, including
/// a top-level navigation a foreign page starts: such a request must not
/// change anything. Browsers say where a request comes from
/// (`Sec-Fetch-Site`; older ones `Origin` or `Referer`); tools that send
/// credentials themselves (curl, panels, source clients) send none of these,
/// so Icecast's GET API keeps working for them. A URL typed or bookmarked
/// (`Sec-Fetch-Site: none`) and this server's own pages are fine.
pub fn cross_site(req: &Request) -> bool {
    if let Some(site) = req.header("Sec-Fetch-Site") {
        return !site.eq_ignore_ascii_case("same-origin") && !site.eq_ignore_ascii_case("none");
    }
    let host = req.header("Host").unwrap_or("");
    let foreign = |url: &str| {
        let authority = url.split_once("://").map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
        authority.is_empty() || !authority.eq_ignore_ascii_case(host)
    };
    if let Some(origin) = req.header("Origin") {
        return foreign(origin);
    }
    req.header("Referer").is_some_and(foreign)
}

fn credentials(req: &Request) -> Result<Credentials, AdminError> {
    let header = req.header("Authorization").ok_or(AdminError::Auth)?;
    auth::parse_basic(header).map_err(|_| AdminError::Auth)
}

/// An error page in Icecast 2.4's shape (its `client_send_error`), so
/// panels that show or parse Icecast's message find it where they look.
fn error_page(status: Status, message: &str) -> Response {
    let message = crate::escape::escape_xml(message);
    let body =
        format!("<html><head><title>Error {status}</title></head><body><b>{status} - {message}</b></body></html>\r\n");
    Response::new(status, "text/html; charset=utf-8", body)
}

#[cfg(test)]
mod tests;
