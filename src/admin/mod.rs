//! The Icecast-compatible admin API (`/admin/*`), the status JSON and the
//! SHOUTcast compatibility pages.
//!
//! Admin commands are one table of (name, required role, handler). Each
//! handler returns a typed `Elem`; one responder renders it as XML (default,
//! `.xml`) or JSON (`.json`), so no command formats output itself.

mod commands;
pub mod doc;
pub mod shoutcast;
pub mod status;

use crate::auth::{self, Credentials};
use crate::mount::MountHandle;
use crate::server::request::Request;
use crate::server::response::Response;
use crate::state::AppState;
use doc::Elem;

/// Who may run a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The admin user only.
    Admin,
    /// The admin user, or the source credentials of the `mount=` mount.
    MountSource,
}

/// Why a command failed; mapped to a status in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("authentication required")]
    Auth,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
}

impl AdminError {
    fn response(&self) -> Response {
        match self {
            AdminError::Auth => Response::unauthorized("Floe admin"),
            AdminError::BadRequest(m) => Response::text(400, m),
            AdminError::NotFound(m) => Response::text(404, m),
        }
    }
}

/// What a handler gets.
pub struct Ctx<'a> {
    pub req: &'a Request,
    pub state: &'a AppState,
}

impl Ctx<'_> {
    pub fn param(&self, name: &str) -> Result<String, AdminError> {
        self.req.query(name).ok_or_else(|| AdminError::BadRequest(format!("missing parameter {name}")))
    }

    /// The mount named by `mount=`; must exist.
    pub fn mount(&self) -> Result<MountHandle, AdminError> {
        let name = self.param("mount")?;
        self.state.mounts.get(&name).ok_or_else(|| AdminError::NotFound(format!("mount {name} not found")))
    }
}

type Handler = fn(&Ctx<'_>) -> Result<Elem, AdminError>;

struct Command {
    name: &'static str,
    role: Role,
    run: Handler,
}

const COMMANDS: &[Command] = &[
    Command { name: "stats", role: Role::Admin, run: commands::stats },
    Command { name: "listmounts", role: Role::Admin, run: commands::listmounts },
    Command { name: "listclients", role: Role::Admin, run: commands::listclients },
    Command { name: "killclient", role: Role::Admin, run: commands::killclient },
    Command { name: "killsource", role: Role::Admin, run: commands::killsource },
    Command { name: "moveclients", role: Role::Admin, run: commands::moveclients },
    Command { name: "fallbacks", role: Role::Admin, run: commands::fallbacks },
    Command { name: "metadata", role: Role::MountSource, run: commands::metadata },
    Command { name: "streamlist", role: Role::Admin, run: commands::streamlist },
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
pub fn handle(req: &Request, state: &AppState) -> (Response, Option<String>) {
    let name = req.path.trim_start_matches("/admin/");
    let (name, format) = match name.rsplit_once('.') {
        Some((n, "json")) => (n, Format::Json),
        Some((n, "xml")) => (n, Format::Xml),
        Some((n, "txt")) => (n, Format::Text),
        _ => (name, Format::Xml),
    };
    let Some(command) = COMMANDS.iter().find(|c| c.name == name) else {
        return (Response::text(404, "Unknown admin command"), None);
    };
    let ctx = Ctx { req, state };
    let user = match authorize(&ctx, command.role) {
        Ok(user) => user,
        Err(error) => return (error.response(), None),
    };
    let result = (command.run)(&ctx).and_then(|elem| render(&elem, format));
    (result.unwrap_or_else(|error| error.response()), Some(user))
}

fn render(elem: &Elem, format: Format) -> Result<Response, AdminError> {
    Ok(match format {
        Format::Xml => Response::xml(elem.to_xml()),
        Format::Json => Response::json(elem.to_json()),
        Format::Text => Response::new(200, "text/plain; charset=utf-8", commands::as_text(elem)),
    })
}

/// Check the request's credentials against the command's role.
fn authorize(ctx: &Ctx<'_>, role: Role) -> Result<String, AdminError> {
    let creds = credentials(ctx.req)?;
    if auth::is_admin(&ctx.state.config, &creds) {
        return Ok(creds.user);
    }
    if role == Role::MountSource {
        if let Some(mount) = ctx.req.query("mount") {
            let config = ctx.state.config.mount(&mount);
            if auth::source_allowed(&ctx.state.config, &config, &creds) {
                return Ok(creds.user);
            }
        }
    }
    Err(AdminError::Auth)
}

fn credentials(req: &Request) -> Result<Credentials, AdminError> {
    let header = req.header("Authorization").ok_or(AdminError::Auth)?;
    auth::parse_basic(header).map_err(|_| AdminError::Auth)
}

/// The `<iceresponse>` Icecast answers actions with.
pub fn ice_response(message: &str) -> Elem {
    Elem::new("iceresponse").field("message", message).field("return", 1u64)
}
