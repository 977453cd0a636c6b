//! Nothing a source sends lands on the server's origin as something other
//! than a stream: only stream content types, headers that stop browsers from
//! reading a mount as a page, no mount names that stand in for the server's
//! own paths, and no source text that breaks a header, a playlist, an ICY
//! block or an XML document.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::sources::sine_mp3;
use crate::support::*;

fn put(server: &TestServer, mount: &str, content_type: &str) -> HttpResponse {
    let head = format!(
        "PUT {mount} HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: {content_type}\r\n\r\n",
        basic("source", "hackme")
    );
    raw_exchange(server.http, head.as_bytes())
}

/// SHOUTcast v1: the login line, then header lines; what the server answers.
fn shoutcast_login(server: &TestServer, login: &[u8], headers: &[u8]) -> String {
    let mut sock = TcpStream::connect(server.shoutcast).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.write_all(login).unwrap();
    sock.write_all(headers).unwrap();
    let mut answer = String::new();
    let _ = sock.read_to_string(&mut answer);
    answer
}

/// A source cannot publish HTML (or script, or anything but a stream): a
/// mount opened by an admin's browser would run on the admin origin.
#[test]
fn only_stream_content_types_are_accepted() {
    let server = TestServer::start(Opts::default());
    for content_type in ["text/html", "text/html; charset=utf-8", "application/javascript", "image/svg+xml"] {
        let response = put(&server, "/page", content_type);
        assert_eq!(response.status, 403, "{content_type}: {}", response.head);
        assert!(response.text().contains("Content-Type not allowed"), "{}", response.text());
    }
    let answer = shoutcast_login(&server, b"/page.mp3:hackme\r\n", b"content-type:text/html\r\n\r\n");
    assert!(answer.starts_with("OK2"), "{answer}");
    assert!(answer.contains("Content-Type not allowed"), "{answer}");
    assert!(server.live_sources().is_empty(), "nothing went live");
}

/// Mount responses tell browsers not to sniff the bytes and to sandbox
/// whatever they render; so do the server's other documents.
#[test]
fn mounts_are_served_nosniff_and_sandboxed() {
    let server = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let listener = Listener::connect(&server, "/live.mp3", &[]);
    assert_eq!(listener.head.header("X-Content-Type-Options").as_deref(), Some("nosniff"));
    assert_eq!(listener.head.header("Content-Security-Policy").as_deref(), Some("sandbox"));
    for path in ["/status-json.xsl", "/live.mp3.m3u", "/live.mp3.xspf"] {
        let response = server.get(path);
        assert_eq!(response.header("X-Content-Type-Options").as_deref(), Some("nosniff"), "{path}");
        assert_eq!(response.header("Content-Security-Policy").as_deref(), Some("sandbox"), "{path}");
    }
    let admin = server.admin("/admin/stats");
    assert_eq!(admin.header("Content-Security-Policy").as_deref(), Some("sandbox"));
}

/// Names that would shadow the server's own pages, hijack a playlist, make
/// a link point off-site or hide their text are refused with a clear 4xx,
/// on both source ports, and nothing goes live.
#[test]
fn mount_names_that_shadow_or_deceive_are_refused() {
    let server = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    for (mount, status, why) in [
        ("/admin/stats", 403, "reserved"),
        ("/admin/killsource", 403, "reserved"),
        ("/admin.cgi", 403, "reserved"),
        ("/status-json.xsl", 403, "reserved"),
        ("/index.html", 403, "reserved"),
        ("/live.mp3.m3u", 403, "reserved"),
        ("/hls/x", 403, "reserved"),
        ("//evil.example/x.mp3", 400, "invalid"),
        ("/a%E2%80%AEpm3.exe", 400, "invalid"),
        ("/a%22onload%3D", 400, "invalid"),
    ] {
        let response = put(&server, mount, "audio/mpeg");
        assert_eq!(response.status, status, "{mount}: {}", response.head);
        assert!(response.text().contains(why), "{mount}: {}", response.text());
    }
    // The playlist of /live.mp3 is still the server's.
    let m3u = server.get("/live.mp3.m3u");
    assert_eq!(m3u.status, 200);
    assert!(m3u.text().contains("/live.mp3\n"));
    let answer = shoutcast_login(&server, b"/admin/stats:hackme\r\n", b"");
    assert_eq!(answer, "invalid mount\r\n");
    assert_eq!(server.live_sources().len(), 1, "only /live.mp3 is live");
}

/// A bare CR in a SHOUTcast v1 header line (lines end at LF) never reaches
/// a playlist, a response header or the status.
#[test]
fn control_characters_in_stream_information_go_nowhere() {
    let server = TestServer::start(Opts::default());
    let mp3 = sine_mp3(&server, 2);
    let mut sock = TcpStream::connect(server.shoutcast).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.write_all(b"hackme\r\n").unwrap();
    let mut ok = [0u8; 20];
    sock.read_exact(&mut ok).unwrap();
    sock.write_all(b"icy-name:Radio\rhttp://evil.example/x.mp3\r\nicy-genre:a\rb\r\n\r\n").unwrap();
    sock.write_all(&mp3).unwrap();
    server.wait_live("/stream");
    let m3u = server.get("/stream.m3u").text();
    assert!(!m3u.contains('\r'), "{m3u:?}");
    assert_eq!(m3u.lines().filter(|l| l.starts_with("http")).count(), 1, "{m3u:?}");
    let pls = server.get("/stream.pls").text();
    assert!(!pls.contains('\r') && pls.contains("Title1=Radiohttp://evil.example/x.mp3\n"), "{pls:?}");
    let listener = Listener::connect(&server, "/stream", &[]);
    assert!(!listener.head.head.contains("Radio\r"), "{}", listener.head.head);
    assert_eq!(server.live_sources()[0]["server_name"], "Radiohttp://evil.example/x.mp3");
}

/// A title holding `';` cannot end its ICY field and forge another, and
/// characters XML forbids never make the admin XML ill-formed.
#[test]
fn titles_cannot_break_icy_blocks_or_xml() {
    let server = TestServer::with_mounts("[[mount]]\nname = \"/t.mp3\"\nmetaint = 2000\n");
    let _source = FfmpegSource::sine(&server, "/t.mp3", MP3);
    server.wait_live("/t.mp3");
    let title = "A';StreamUrl='http://evil.example/';X='\u{ffff}\u{1}";
    let query: String = title.bytes().map(|b| format!("%{b:02X}")).collect();
    let set = server.admin(&format!("/admin/metadata?mount=/t.mp3&mode=updinfo&song={query}"));
    assert_eq!(set.status, 200);
    let mut listener = Listener::connect(&server, "/t.mp3", &[("Icy-MetaData", "1")]);
    listener.read_at_least(2000 * 3, WAIT);
    let (_, blocks) = split_icy(&listener.body, 2000);
    let text = &blocks.iter().find(|(_, t)| !t.is_empty()).expect("a title block").1;
    assert_eq!(text.matches("';").count(), 1, "one field only: {text}");
    assert!(text.starts_with("StreamTitle='A\u{2019};StreamUrl=\u{2019}http://evil.example/"), "{text}");
    assert!(!text.contains("StreamUrl='"), "{text}");
    let xml = server.admin("/admin/stats").text();
    assert!(xml.contains("<title>A&apos;;StreamUrl=&apos;http://evil.example/&apos;;X=&apos;</title>"), "{xml}");
    assert!(!xml.contains('\u{ffff}') && !xml.contains('\u{1}'));
    let listmounts = server.admin("/admin/listmounts").text();
    assert!(listmounts.starts_with("<?xml"));
}
