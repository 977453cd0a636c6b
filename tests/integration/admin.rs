//! Status and admin APIs in Icecast's shapes, and the SHOUTcast pages.

use std::time::Duration;

use crate::support::*;

fn is_icecast_iso8601(s: &str) -> bool {
    // 2006-01-02T15:04:05-0700: offset without a colon.
    let b = s.as_bytes();
    b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (b[19] == b'+' || b[19] == b'-')
        && b[20..].iter().all(u8::is_ascii_digit)
}

/// `/status-json.xsl`: `source` is an object for one mount, an array for
/// several, with Icecast's field names and types.
#[test]
fn status_json_shape() {
    let server = TestServer::start(Opts::default());
    let json = server.status_json();
    let stats = &json["icestats"];
    for key in ["admin", "host", "location", "server_id", "server_start", "server_start_iso8601"] {
        assert!(stats[key].is_string(), "{key} in {json}");
    }
    assert!(is_icecast_iso8601(stats["server_start_iso8601"].as_str().unwrap()));
    assert!(stats.get("source").is_none());

    let _a = FfmpegSource::sine(&server, "/a.mp3", MP3);
    server.wait_live("/a.mp3");
    let _listener = Listener::connect(&server, "/a.mp3", &[]);
    eventually("one listener counted", WAIT, || server.status_json()["icestats"]["source"]["listeners"] == 1);
    let json = server.status_json();
    let source = &json["icestats"]["source"];
    assert!(source.is_object(), "one source is an object: {json}");
    assert_eq!(source["listenurl"], format!("http://127.0.0.1:{}/a.mp3", server.http.port()));
    assert_eq!(source["server_type"], "audio/mpeg");
    assert!(source["listener_peak"].is_u64());
    assert!(is_icecast_iso8601(source["stream_start_iso8601"].as_str().unwrap()));

    let _b = FfmpegSource::sine(&server, "/b.mp3", MP3);
    server.wait_live("/b.mp3");
    let json = server.status_json();
    let sources = json["icestats"]["source"].as_array().expect("several sources are an array");
    assert_eq!(sources.len(), 2);
    assert!(sources.iter().all(|s| s["listeners"].is_u64()));
}

/// Admin XML and JSON: stats, listmounts, listclients, killclient, killsource,
/// moveclients, fallbacks and streamlist, each behind admin auth.
#[test]
fn admin_commands() {
    let server = TestServer::start(Opts::default());
    assert_eq!(server.get("/admin/stats").status, 401);
    let wrong = server.request("GET", "/admin/stats", &[("Authorization", &basic("admin", "nope"))]);
    assert_eq!(wrong.status, 401);

    let mut one = FfmpegSource::sine(&server, "/one.mp3", MP3);
    let _two = FfmpegSource::sine(&server, "/two.mp3", MP3);
    server.wait_live("/one.mp3");
    server.wait_live("/two.mp3");
    let mut listener = Listener::connect(&server, "/one.mp3", &[]);
    listener.read_at_least(1000, WAIT);

    let stats = server.admin("/admin/stats");
    assert_eq!(stats.status, 200);
    let xml = stats.text();
    assert!(xml.starts_with("<?xml"));
    assert!(xml.contains("<source mount=\"/one.mp3\">") && xml.contains("<source mount=\"/two.mp3\">"), "{xml}");
    assert!(server.admin("/admin/stats.xml").text().contains("<icestats>"));
    let listmounts = server.admin("/admin/listmounts").text();
    assert!(listmounts.contains("<source mount=\"/one.mp3\">"));

    let clients = server.admin("/admin/listclients?mount=/one.mp3").text();
    assert!(clients.contains("<UserAgent>floe-test</UserAgent>"), "{clients}");
    assert!(clients.contains("<IP>127.0.0.1</IP>"));
    let ids = server.listener_ids("/one.mp3");
    assert_eq!(ids.len(), 1);

    // Move the listener to /two.mp3: it keeps its connection.
    let moved = server.admin("/admin/moveclients?mount=/one.mp3&destination=/two.mp3");
    assert_eq!(moved.status, 200, "{}", moved.text());
    eventually("listener moved", WAIT, || {
        listener.read_for(Duration::from_millis(50));
        server.listener_ids("/two.mp3") == ids
    });

    // Kill it.
    let killed = server.admin(&format!("/admin/killclient?mount=/two.mp3&id={}", ids[0]));
    assert_eq!(killed.status, 200);
    assert!(listener.closed_within(WAIT), "killed listener is disconnected");
    assert!(server.admin("/admin/killclient?mount=/two.mp3&id=999").text().contains("<return>0</return>"));

    // Fallbacks can be set at run time and are reported.
    assert_eq!(server.admin("/admin/fallbacks?mount=/one.mp3&fallback=/two.mp3").status, 200);
    assert!(server.admin("/admin/fallbacks.json?mount=/one.mp3").text().contains("\"fallback\":\"/two.mp3\""));

    // Streamlist for relays: CRLF-separated mounts.
    let list = server.admin("/admin/streamlist.txt").text();
    assert_eq!(list, "/one.mp3\r\n/two.mp3\r\n");

    // Kill the source of /one.mp3: it goes away, /two.mp3 stays.
    assert_eq!(server.admin("/admin/killsource?mount=/one.mp3").status, 200);
    eventually("source killed", WAIT, || !server.is_live("/one.mp3"));
    assert!(server.is_live("/two.mp3"));
    one.stop();
}

/// Metadata updates: admin `song=`, `artist`+`title`, Latin-1 `charset`, the
/// mount's source credentials, and SHOUTcast `admin.cgi` without `song=`.
#[test]
fn metadata_updates() {
    let server = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&server, "/meta.mp3", MP3);
    server.wait_live("/meta.mp3");
    let title = || server.status_json()["icestats"]["source"]["title"].as_str().unwrap_or("").to_string();

    assert_eq!(server.admin("/admin/metadata?mount=/meta.mp3&mode=updinfo&song=One").status, 200);
    assert_eq!(title(), "One");
    let by_source = server.request(
        "GET",
        "/admin/metadata?mount=/meta.mp3&mode=updinfo&artist=A&title=Two",
        &[("Authorization", &basic("source", "hackme"))],
    );
    assert_eq!(by_source.status, 200);
    let json = server.status_json();
    assert_eq!(json["icestats"]["source"]["artist"], "A");
    assert_eq!(json["icestats"]["source"]["title"], "Two");
    // "café" in Latin-1.
    assert_eq!(server.admin("/admin/metadata?mount=/meta.mp3&mode=updinfo&song=caf%E9&charset=ISO-8859-1").status, 200);
    assert_eq!(title(), "café");
    // libshout in SHOUTcast mode: artist+title, no song.
    let cgi = server.get("/admin.cgi?mode=updinfo&pass=hackme&mount=/meta.mp3&artist=X&title=Y");
    assert_eq!(cgi.status, 200, "{}", cgi.text());
    assert_eq!(server.get("/currentsong?mount=/meta.mp3").text(), "X - Y");
    assert_eq!(server.get("/admin.cgi?mode=updinfo&pass=bad&mount=/meta.mp3&song=Z").status, 401);
    assert_eq!(server.admin("/admin/metadata?mount=/meta.mp3&mode=nope&song=Z").status, 400);
}

/// SHOUTcast pages for old widgets.
#[test]
fn shoutcast_pages() {
    let server = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&server, "/stream", MP3);
    server.wait_live("/stream");
    assert_eq!(server.get("/admin.cgi?mode=updinfo&pass=hackme&song=Hello").status, 200);
    let seven = server.get("/7.html").text();
    assert!(seven.starts_with("<html><body>0,1,"), "{seven}");
    assert!(seven.ends_with(",Hello</body></html>"), "{seven}");
    let json: serde_json::Value = serde_json::from_slice(&server.get("/stats?sid=1&json=1").body).unwrap();
    assert_eq!(json["songtitle"], "Hello");
    assert_eq!(json["streamstatus"], 1);
    assert!(server.get("/stats?sid=1").text().contains("<SONGTITLE>Hello</SONGTITLE>"));
}

/// The status page is served at `/` and names the JSON it polls.
#[test]
fn status_page_is_served() {
    let server = TestServer::start(Opts::default());
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(page.header("Content-Type").is_some_and(|c| c.starts_with("text/html")));
    assert!(page.text().contains("/status-json.xsl"));
}
