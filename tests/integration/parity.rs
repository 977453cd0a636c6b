//! Icecast parity where clients notice: each test names the client whose
//! parsing it protects, and checks what Icecast 2.4 answers in its place.

use crate::support::*;

/// Two live mounts, /a.mp3 and /b.mp3.
fn two_mounts() -> (TestServer, FfmpegSource, FfmpegSource) {
    let server = TestServer::start(Opts::default());
    let a = FfmpegSource::sine(&server, "/a.mp3", MP3);
    let b = FfmpegSource::sine(&server, "/b.mp3", MP3);
    server.wait_live("/a.mp3");
    server.wait_live("/b.mp3");
    (server, a, b)
}

/// `?mount=` on `/status-json.xsl` and `/admin/stats` (the Node
/// `icecast-monitor` library, website widgets and "is my mount live?"
/// checks): only that mount, as one JSON object; an unknown mount gives a
/// document without `source`, and admin stats a 400 with Icecast's message.
#[test]
fn status_and_stats_answer_for_one_mount() {
    let (server, _a, _b) = two_mounts();
    let one: serde_json::Value = serde_json::from_slice(&server.get("/status-json.xsl?mount=/b.mp3").body).unwrap();
    let source = &one["icestats"]["source"];
    assert!(source.is_object(), "one mount is an object: {one}");
    assert!(source["listenurl"].as_str().unwrap().ends_with("/b.mp3"), "{one}");
    let none: serde_json::Value = serde_json::from_slice(&server.get("/status-json.xsl?mount=/nope.mp3").body).unwrap();
    assert!(none["icestats"].is_object() && none["icestats"].get("source").is_none(), "{none}");
    let all = server.status_json();
    assert_eq!(all["icestats"]["source"].as_array().map(Vec::len), Some(2));

    let stats = server.admin("/admin/stats?mount=/a.mp3");
    assert_eq!(stats.status, 200);
    let xml = stats.text();
    assert!(xml.contains("<source mount=\"/a.mp3\">") && !xml.contains("/b.mp3\">"), "{xml}");
    let unknown = server.admin("/admin/stats?mount=/nope.mp3");
    assert_eq!(unknown.status, 400);
    assert!(unknown.text().contains("<b>400 - Source does not exist</b>"), "{}", unknown.text());
}

/// A title sent as `artist=` and `title=` without `song=` (Mixxx, libshout):
/// JSON and XML agree, with the title apart from the artist, so AzuraCast's
/// XML adapter, which joins them, does not say the artist twice.
#[test]
fn artist_and_title_agree_in_json_and_xml() {
    let server = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&server, "/meta.mp3", MP3);
    server.wait_live("/meta.mp3");
    let update = server.admin("/admin/metadata?mount=/meta.mp3&mode=updinfo&artist=Artist&title=Track");
    assert_eq!(update.status, 200);
    let json = server.status_json();
    assert_eq!(json["icestats"]["source"]["artist"], "Artist");
    assert_eq!(json["icestats"]["source"]["title"], "Track");
    let xml = server.admin("/admin/stats?mount=/meta.mp3").text();
    assert!(xml.contains("<title>Track</title>") && xml.contains("<artist>Artist</artist>"), "{xml}");
    // What listeners hear in ICY stays the whole song.
    assert_eq!(server.get("/currentsong?mount=/meta.mp3").text(), "Artist - Track");
}

/// Admin failures where panels parse Icecast's answer: killclient with an
/// unknown id is a failed `iceresponse` (return 0) with Icecast's message;
/// refusals are Icecast's HTML error page with the message in `<b>`;
/// moveclients without a destination lists where the listeners could go;
/// streamlist's XML carries Icecast's source fields.
#[test]
fn admin_answers_in_icecast_shapes() {
    let (server, _a, _b) = two_mounts();
    let missing = server.admin("/admin/killclient?mount=/a.mp3&id=999");
    assert_eq!(missing.status, 200);
    let text = missing.text();
    assert!(text.contains("<message>Client 999 not found</message>") && text.contains("<return>0</return>"), "{text}");

    let refused = server.admin("/admin/killsource?mount=/nope.mp3");
    assert_eq!(refused.status, 400);
    assert!(refused.header("Content-Type").unwrap().starts_with("text/html"));
    assert!(refused.text().contains("<b>400 - Source does not exist</b>"), "{}", refused.text());

    let candidates = server.admin("/admin/moveclients?mount=/a.mp3");
    assert_eq!(candidates.status, 200);
    let xml = candidates.text();
    assert!(xml.contains("<current_source>/a.mp3</current_source>"), "{xml}");
    assert!(xml.contains("<source mount=\"/b.mp3\">") && !xml.contains("<source mount=\"/a.mp3\">"), "{xml}");

    let streams = server.admin("/admin/streamlist").text();
    for field in ["<listeners>", "<Connected>", "<content-type>audio/mpeg</content-type>"] {
        assert!(streams.contains(field), "{field} in {streams}");
    }
}

/// Stream response headers where players look (`icy-metadata: 1` beside
/// `icy-metaint`, `Date`), and "Unknown" for a listener without a
/// `User-Agent` in listclients (panels show the field as it is).
#[test]
fn stream_headers_and_listener_fields_as_icecast() {
    let server = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&server, "/h.mp3", MP3);
    server.wait_live("/h.mp3");
    let icy = Listener::connect(&server, "/h.mp3", &[("Icy-MetaData", "1")]);
    assert_eq!(icy.head.header("icy-metadata").as_deref(), Some("1"));
    assert!(icy.head.header("icy-metaint").is_some());
    let date = icy.head.header("Date").expect("a Date header");
    assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");

    let mut anonymous = std::net::TcpStream::connect(server.http).unwrap();
    std::io::Write::write_all(&mut anonymous, b"GET /h.mp3 HTTP/1.0\r\n\r\n").unwrap();
    eventually("two listeners", WAIT, || server.listener_ids("/h.mp3").len() == 2);
    let clients = server.admin("/admin/listclients?mount=/h.mp3").text();
    assert!(clients.contains("<UserAgent>Unknown</UserAgent>"), "{clients}");
    assert!(clients.contains("<UserAgent>floe-test</UserAgent>"), "{clients}");
}

/// SHOUTcast emulation (LibreTime and AzuraCast in SHOUTcast mode, old
/// widgets): `/7.html`, `/stats` and `admin.cgi` resolve the same mount for
/// the same `sid` (2 is `/stream2`, where a DNAS 2 source sending
/// `password:#2` streams), and `admin.cgi?mode=viewxml` answers with the
/// listener list.
#[test]
fn shoutcast_pages_agree_on_the_stream_id() {
    let server = TestServer::start(Opts::default());
    let _one = FfmpegSource::sine(&server, "/stream", MP3);
    let _two = FfmpegSource::sine(&server, "/stream2", MP3);
    server.wait_live("/stream");
    server.wait_live("/stream2");
    let _listener = Listener::connect(&server, "/stream2", &[]);
    eventually("one listener on /stream2", WAIT, || server.listener_ids("/stream2").len() == 1);
    assert_eq!(server.get("/admin.cgi?mode=updinfo&pass=hackme&sid=2&song=Second").status, 200);
    assert_eq!(server.get("/admin.cgi?mode=updinfo&pass=hackme&sid=1&song=First").status, 200);
    assert!(server.get("/7.html?sid=2").text().ends_with(",Second</body></html>"));
    assert!(server.get("/7.html?sid=1").text().ends_with(",First</body></html>"));
    let stats = server.get("/stats?sid=2").text();
    assert!(stats.contains("<STREAMPATH>/stream2</STREAMPATH>") && stats.contains("<SONGTITLE>Second</SONGTITLE>"));
    let view = server.get("/admin.cgi?mode=viewxml&pass=hackme&sid=2");
    assert_eq!(view.status, 200);
    let xml = view.text();
    assert!(xml.contains("<CURRENTLISTENERS>1</CURRENTLISTENERS>"), "{xml}");
    assert!(
        xml.contains("<STREAMPATH>/stream2</STREAMPATH>") && xml.contains("<USERAGENT>floe-test</USERAGENT>"),
        "{xml}"
    );
    assert_eq!(server.get("/admin.cgi?mode=viewxml&pass=wrong&sid=2").status, 401);
}

/// `[server] server_id` names the server in every `Server` header and in
/// `server_id` of the status documents (some monitors look for "Icecast"),
/// and a reload changes it; a control character in it is a config error
/// naming the key.
#[test]
fn server_id_is_configurable() {
    let server = TestServer::start(Opts { server: "server_id = \"Icecast 2.4.4\"\n", ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/id.mp3", MP3);
    server.wait_live("/id.mp3");
    assert_eq!(server.status_json()["icestats"]["server_id"], "Icecast 2.4.4");
    assert_eq!(server.get("/status-json.xsl").header("Server").as_deref(), Some("Icecast 2.4.4"));
    assert!(server.admin("/admin/stats").text().contains("<server_id>Icecast 2.4.4</server_id>"));
    let stream = Listener::connect(&server, "/id.mp3", &[]);
    assert_eq!(stream.head.header("Server").as_deref(), Some("Icecast 2.4.4"));

    server.rewrite_config(&Opts::default());
    assert_eq!(server.admin("/admin/reloadconfig").status, 200);
    let default = server.status_json()["icestats"]["server_id"].as_str().unwrap().to_string();
    assert!(default.starts_with("Floe/"), "{default}");

    let bad = server.dir().join("bad.toml");
    std::fs::write(&bad, "[server]\nserver_id = \"Icecast\\u0007\"\n").unwrap();
    let mut check = std::process::Command::new(env!("CARGO_BIN_EXE_floe"));
    check.arg("check-config").arg(&bad);
    let out = run_bounded(&mut check, WAIT);
    assert!(!out.status_ok);
    assert!(out.stderr.contains("bad.toml:2: server.server_id"), "{}", out.stderr);
}
