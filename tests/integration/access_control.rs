//! `[access]` and a mount's lists: addresses and players turned away with
//! a 403 (the listener and stream paths, hyper's pages, sources), the client
//! behind a trusted proxy, and the per-address connection cap.

use std::io::{Read, Write};
use std::time::Duration;

use crate::support::*;

const DENIED: [u8; 4] = [127, 0, 0, 3];
const OUTSIDER: [u8; 4] = [127, 0, 0, 5];
const FRIEND: [u8; 4] = [127, 0, 0, 2];

fn get(path: &str, agent: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: radio\r\nUser-Agent: {agent}\r\nConnection: close\r\n\r\n")
}

#[test]
fn lists_turn_away_addresses_and_players() {
    let server = TestServer::start(Opts {
        rest: "[access]\ndeny = [\"127.0.0.3\"]\ndeny_user_agents = [\"StreamRipper\"]\n\
               [[mount]]\nname = \"/vip.mp3\"\nallow = [\"127.0.0.1\", \"127.0.0.2\"]\ndeny_user_agents = [\"VLC\"]\n",
        ..Opts::default()
    });
    let _live = FfmpegSource::sine(&server, "/live.mp3", MP3);
    let _vip = FfmpegSource::sine(&server, "/vip.mp3", MP3);
    server.wait_live("/live.mp3");
    server.wait_live("/vip.mp3");

    // The denied address gets nothing: pages (hyper), streams (the raw path).
    for path in ["/status-json.xsl", "/live.mp3"] {
        let refused = head_from(DENIED, server.http, &get(path, "mpv"));
        assert_eq!(refused.status, 403, "{path}: {}", refused.head);
    }
    assert_eq!(head_from(OUTSIDER, server.http, &get("/live.mp3", "mpv")).status, 200);
    // A denied player, whatever the address; curl's own agent is fine.
    let ripper = head_from(OUTSIDER, server.http, &get("/live.mp3", "StreamRipper/1.64.6"));
    assert_eq!(ripper.status, 403);
    assert!(ripper.body.starts_with(b"your player is not allowed here"), "{}", ripper.head);
    let curl = run_bounded(
        std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-A", "streamripper"])
            .arg(server.url("/status-json.xsl")),
        WAIT,
    );
    assert_eq!(curl.stdout, "403");

    // The mount's own lists, on top of the server's.
    assert_eq!(head_from(OUTSIDER, server.http, &get("/vip.mp3", "mpv")).status, 403);
    assert_eq!(head_from(FRIEND, server.http, &get("/vip.mp3", "mpv")).status, 200);
    assert_eq!(head_from(FRIEND, server.http, &get("/vip.mp3", "VLC/3.0.18 LibVLC/3.0.18")).status, 403);
    assert_eq!(head_from(FRIEND, server.http, &get("/live.mp3", "VLC/3.0.18 LibVLC/3.0.18")).status, 200);

    // Sources too: a denied player cannot stream, a denied address cannot log in.
    let put = |agent: &str| {
        format!(
            "PUT /other.mp3 HTTP/1.1\r\nHost: radio\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\nUser-Agent: {agent}\r\n\r\n",
            basic("source", "hackme")
        )
    };
    assert_eq!(head_from(OUTSIDER, server.http, &put("StreamRipper")).status, 403);
    assert_eq!(head_from(DENIED, server.http, &put("ffmpeg")).status, 403);
    let mut shoutcast = connect_from(DENIED, server.shoutcast);
    shoutcast.write_all(b"hackme\r\n").unwrap();
    let mut reply = String::new();
    let _ = shoutcast.read_to_string(&mut reply);
    assert!(reply.contains("not allowed"), "{reply:?}");
    assert!(!server.is_live("/other.mp3"));
    assert!(server.server_stat("access_refusals") >= 8, "{}", server.admin("/admin/stats").text());
}

/// Behind a trusted proxy the forwarded address is the client's: for the
/// lists, the listener list and the access log. From anyone else the
/// header is ignored.
#[test]
fn trusted_proxies_name_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let server_lines: &'static str = Box::leak(format!("access_log = \"{}\"\n", log.display()).into_boxed_str());
    let server = TestServer::start(Opts {
        server: server_lines,
        rest: "[access]\ntrusted_proxies = [\"127.0.0.1\"]\ndeny = [\"198.51.100.0/24\"]\n",
        ..Opts::default()
    });
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");

    let mut proxied = Listener::connect(&server, "/live.mp3", &[("X-Forwarded-For", "203.0.113.9, 127.0.0.1")]);
    proxied.read_at_least(4000, WAIT);
    let clients = server.admin("/admin/listclients.json?mount=/live.mp3").text();
    assert!(clients.contains("203.0.113.9"), "{clients}");

    let forwarded = [("Forwarded", "for=198.51.100.7;proto=https")];
    assert_eq!(server.request("GET", "/status-json.xsl", &forwarded).status, 403, "the forwarded address is denied");
    let spoofed = "GET /status-json.xsl HTTP/1.0\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n";
    assert_eq!(request_from(FRIEND, server.http, spoofed).status, 200, "not from a trusted proxy: ignored");
    drop(proxied);
    eventually("the access log names the forwarded client", WAIT, || {
        std::fs::read_to_string(&log).is_ok_and(|l| {
            l.lines().any(|line| line.starts_with("203.0.113.9 ") && line.contains("/live.mp3"))
                && l.lines().any(|line| line.starts_with("127.0.0.2 ") && line.contains("status-json"))
        })
    });
}

/// One address holds at most `max_connections_per_ip`; more are closed at
/// once, others are unaffected, and a slot comes back when a listener leaves.
#[test]
fn connections_per_address_are_capped() {
    let server = TestServer::start(Opts { rest: "[access]\nmax_connections_per_ip = 3\n", ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3); // 1 of 127.0.0.1's 3
    server.wait_live("/live.mp3");
    let mut first = Listener::connect(&server, "/live.mp3", &[]);
    let mut second = Listener::connect(&server, "/live.mp3", &[]);
    first.read_at_least(4000, WAIT);
    second.read_at_least(4000, WAIT);

    let over = status_json_from_here(&server);
    assert_eq!(over.status, 0, "closed without an answer: {}", over.head);
    // The SHOUTcast source port counts against the same cap.
    let mut shout = std::net::TcpStream::connect(server.shoutcast).unwrap();
    shout.set_read_timeout(Some(WAIT)).unwrap();
    let _ = shout.write_all(b"hackme\r\n");
    let mut answer = Vec::new();
    let _ = shout.read_to_end(&mut answer);
    assert!(answer.is_empty(), "closed without an answer: {answer:?}");
    assert_eq!(head_from(FRIEND, server.http, &get("/live.mp3", "mpv")).status, 200, "another address is fine");
    let held = second.body.len();
    second.read_at_least(held + 8000, WAIT);

    drop(first);
    eventually("the slot comes back", Duration::from_secs(10), || status_json_from_here(&server).status == 200);
}

/// `/status-json.xsl` from 127.0.0.1; a connection closed at once (its
/// reset may come before or after the request is written) is status 0.
fn status_json_from_here(server: &TestServer) -> HttpResponse {
    let mut sock = std::net::TcpStream::connect(server.http).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let _ = sock.write_all(b"GET /status-json.xsl HTTP/1.0\r\n\r\n");
    let mut data = Vec::new();
    let _ = sock.read_to_end(&mut data);
    parse_response(&data)
}
