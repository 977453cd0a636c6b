//! The admin API in process: cross-site detection, and every reading
//! command answered through `handle` in both renderings.

use std::sync::Arc;

use tokio::sync::watch;

use super::*;
use crate::access_log::AccessLog;
use crate::config::LiveConfig;
use crate::mount::{SourceInfo, StreamInfo};

fn request(headers: &str) -> Request {
    let head = format!("GET /admin/killsource?mount=/a HTTP/1.1\r\nHost: radio.example:8000\r\n{headers}\r\n");
    Request::parse(head.as_bytes(), 16).unwrap()
}

#[test]
fn foreign_pages_are_told_apart_from_tools_and_own_pages() {
    // Tools: no browser headers at all.
    assert!(!cross_site(&request("Authorization: Basic YTpi\r\n")));
    // Browsers: typed or bookmarked, or this server's own page.
    assert!(!cross_site(&request("Sec-Fetch-Site: none\r\n")));
    assert!(!cross_site(&request("Sec-Fetch-Site: same-origin\r\n")));
    assert!(!cross_site(&request("Origin: http://radio.example:8000\r\n")));
    assert!(!cross_site(&request("Referer: http://radio.example:8000/\r\n")));
    // A foreign page, however the browser says so.
    assert!(cross_site(&request("Sec-Fetch-Site: cross-site\r\n")));
    assert!(cross_site(&request("Sec-Fetch-Site: same-site\r\n")));
    assert!(cross_site(&request("Origin: http://evil.example\r\n")));
    assert!(cross_site(&request("Origin: null\r\n")));
    assert!(cross_site(&request("Referer: http://evil.example/page\r\n")));
    assert!(cross_site(&request("Referer: http://radio.example:8000.evil.example/\r\n")));
}

/// A server state with `/a` live (falling back to `/b`, also live) and `/idle` not.
fn state() -> (AppState, watch::Sender<bool>) {
    let text = "[[mount]]\nname = \"/a\"\nfallback_mount = \"/b\"\n[[mount]]\nname = \"/b\"\n";
    let config = crate::config::parse_str(text, "test.toml", &crate::transcode::ENCODERS).expect("valid");
    let (shutdown, shutdown_rx) = watch::channel(false);
    let state = AppState::new(LiveConfig::new(config, None), AccessLog::default(), 8000, shutdown_rx);
    for name in ["/a", "/b"] {
        let info = StreamInfo { name: Some("Radio <\u{1}& \"A\">".into()), ..StreamInfo::default() };
        let source = SourceInfo::new("audio/mpeg".into(), info, "127.0.0.1:9".parse().unwrap(), None);
        state.mounts.get_or_create(name).attach_source(Arc::new(source)).expect("attach");
    }
    state.mounts.get_or_create("/idle");
    (state, shutdown)
}

fn admin(state: &AppState, target: &str) -> Response {
    let auth = crate::auth::basic_header("admin", "hackme");
    let head = format!("GET {target} HTTP/1.1\r\nHost: h\r\nAuthorization: {auth}\r\n\r\n");
    let req = Request::parse(head.as_bytes(), 16).unwrap();
    handle(&req, "127.0.0.1:1".parse().unwrap(), state).0
}

fn xml(state: &AppState, target: &str) -> crate::import::xml::Node {
    let response = admin(state, target);
    assert_eq!(response.status, Status::Ok, "{target}");
    crate::import::xml::parse(std::str::from_utf8(&response.body).unwrap()).unwrap_or_else(|e| panic!("{target}: {e}"))
}

fn json(state: &AppState, target: &str) -> serde_json::Value {
    let response = admin(state, target);
    assert_eq!(response.status, Status::Ok, "{target}");
    serde_json::from_slice(&response.body).unwrap_or_else(|e| panic!("{target}: {e}"))
}

#[test]
fn every_listing_renders_as_well_formed_xml_and_json_of_one_shape() {
    let (state, _shutdown) = state();
    let stats = xml(&state, "/admin/stats");
    assert_eq!(stats.name, "icestats");
    let sources: Vec<_> = stats.all("source").map(|s| s.attr("mount").unwrap_or("")).collect();
    assert_eq!(sources, ["/a", "/b"], "live mounts only");
    let a = stats.child("source").unwrap();
    assert_eq!(a.text_of("server_name"), Some("Radio <& \"A\">"), "escaped, control character dropped");
    assert_eq!((a.text_of("fallback"), a.text_of("max_listeners")), (Some("/b"), Some("unlimited")));
    let stats = json(&state, "/admin/stats.json");
    assert_eq!(stats["icestats"]["sources"], 2);
    assert_eq!(stats["icestats"]["source"][0]["mount"], "/a");
    assert_eq!(stats["icestats"]["source"][0]["genre"], "", "absent values are empty, as in the XML");
    let one = json(&state, "/admin/stats.json?mount=/b");
    assert_eq!(one["icestats"]["source"].as_array().map(Vec::len), Some(1), "an array even of one");

    let mounts = xml(&state, "/admin/listmounts");
    assert_eq!(mounts.all("source").count(), 2);
    assert_eq!(mounts.child("source").and_then(|s| s.text_of("content-type")), Some("audio/mpeg"));
    assert_eq!(json(&state, "/admin/listmounts.json")["icestats"]["source"][1]["mount"], "/b");
    let candidates = xml(&state, "/admin/moveclients?mount=/a");
    assert_eq!(candidates.text_of("current_source"), Some("/a"));
    assert_eq!(candidates.all("source").map(|s| s.attr("mount").unwrap_or("")).collect::<Vec<_>>(), ["/b"]);

    let clients = xml(&state, "/admin/listclients?mount=/a");
    assert_eq!(clients.child("source").and_then(|s| s.text_of("Listeners")), Some("0"));
    assert_eq!(json(&state, "/admin/listclients.json?mount=/a")["icestats"]["source"][0]["mount"], "/a");
    assert_eq!(
        xml(&state, "/admin/fallbacks?mount=/a").child("source").and_then(|s| s.text_of("fallback")),
        Some("/b")
    );
    assert_eq!(json(&state, "/admin/fallbacks.json?mount=/b")["icestats"]["source"][0]["fallback"], "");
    assert_eq!(xml(&state, "/admin/killclient?mount=/a&id=7").text_of("return"), Some("0"), "unknown id: failed");
}

#[test]
fn the_text_form_lists_mounts_or_says_what_was_done() {
    let (state, _shutdown) = state();
    let text = |target: &str| {
        let response = admin(&state, target);
        assert_eq!(response.status, Status::Ok, "{target}");
        String::from_utf8(response.body.to_vec()).unwrap()
    };
    assert_eq!(text("/admin/streamlist.txt"), "/a\r\n/b\r\n");
    assert_eq!(text("/admin/stats.txt"), "/a\r\n/b\r\n");
    assert_eq!(text("/admin/listclients.txt?mount=/b"), "/b\r\n");
    assert_eq!(text("/admin/killclient.txt?mount=/a&id=7"), "Client 7 not found\r\n");
}

#[test]
fn empty_lists_are_left_out_as_icecast_leaves_them_out() {
    let (state, _shutdown) = state();
    let clients = json(&state, "/admin/listclients.json?mount=/a");
    assert!(clients["icestats"]["source"][0].get("listener").is_none(), "{clients}");
    let stats = json(&state, "/admin/stats.json?mount=/a");
    assert!(stats["icestats"]["source"][0].get("mount").is_some());
}
