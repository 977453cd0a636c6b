//! The status page and the player libraries it uses, embedded at build time
//! (the libraries from npm, by `build.rs`) and served by Floe itself.

use std::sync::OnceLock;

use bytes::Bytes;

use crate::http::request::Request;
use crate::http::response::Response;
use crate::http::status::Status;

/// The status page.
const INDEX_HTML: &str = include_str!("../web/index.html");
/// The admin page (served by `admin` to the admin user).
pub const ADMIN_HTML: &str = include_str!("../web/admin.html");
/// hls.js and dash.js (empty when the build had no npm).
const HLS_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hls.min.js"));
const DASH_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dash.all.min.js"));

/// Where the page finds the players.
pub const HLS_JS_PATH: &str = "/web/hls.min.js";
pub const DASH_JS_PATH: &str = "/web/dash.all.min.js";

/// The page or a player library, if `path` names one.
pub fn asset(req: &Request) -> Option<Response> {
    match req.path.as_str() {
        "/" | "/index.html" | "/status.xsl" => Some(Response::html(page())),
        HLS_JS_PATH => script(req, HLS_JS, gzipped(&HLS_GZ, HLS_JS)),
        DASH_JS_PATH => script(req, DASH_JS, gzipped(&DASH_GZ, DASH_JS)),
        _ => None,
    }
}

/// The page, with Floe's version where it asks for the libraries.
fn page() -> Bytes {
    static PAGE: OnceLock<Bytes> = OnceLock::new();
    PAGE.get_or_init(|| Bytes::from(INDEX_HTML.replace("FLOE_VERSION", env!("CARGO_PKG_VERSION")))).clone()
}

static HLS_GZ: OnceLock<Bytes> = OnceLock::new();
static DASH_GZ: OnceLock<Bytes> = OnceLock::new();

/// A library compressed once, on first use (they are hundreds of KB).
fn gzipped(cell: &'static OnceLock<Bytes>, plain: &'static [u8]) -> impl FnOnce() -> Bytes {
    move || {
        cell.get_or_init(|| {
            use std::io::Write;
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            let _ = encoder.write_all(plain);
            encoder.finish().map(Bytes::from).unwrap_or_default()
        })
        .clone()
    }
}

fn script(req: &Request, plain: &'static [u8], gzipped: impl FnOnce() -> Bytes) -> Option<Response> {
    if plain.is_empty() {
        return Some(Response::text(Status::NotFound, "This build of Floe has no player library (npm was missing)"));
    }
    let accepts_gzip =
        req.header("Accept-Encoding").is_some_and(|a| a.split(',').any(|e| e.trim().starts_with("gzip")));
    let content_type = "application/javascript; charset=utf-8";
    let response = if accepts_gzip {
        Response::new(Status::Ok, content_type, gzipped()).with_header("Content-Encoding", "gzip")
    } else {
        Response::new(Status::Ok, content_type, Bytes::from_static(plain))
    };
    // The page asks for them with Floe's version in the URL.
    Some(
        response
            .with_header("Cache-Control", "public, max-age=31536000, immutable")
            .with_header("Vary", "Accept-Encoding"),
    )
}

/// Whether the players were built in.
pub fn players_available() -> bool {
    !HLS_JS.is_empty() && !DASH_JS.is_empty()
}
