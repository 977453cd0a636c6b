//! Pull relays: an edge Floe relaying an origin's mount, titles included,
//! through the origin's source going away and coming back.

use crate::support::*;

fn edge_relaying(origin: &TestServer, path: &str) -> TestServer {
    // A test leaks one short config string: Opts holds &'static fragments.
    let rest = format!("[[relay]]\nurl = \"http://{}{path}\"\nmount = \"/edge.mp3\"\nretry = 1\n", origin.http);
    TestServer::start(Opts { rest: Box::leak(rest.into_boxed_str()), ..Opts::default() })
}

fn title_of(server: &TestServer) -> String {
    server.status_json()["icestats"]["source"]["title"].as_str().unwrap_or("").to_string()
}

/// The edge serves the origin's stream on its own mount, with the origin's
/// titles (in its status and in its listeners' ICY blocks), and picks the
/// stream up again when the origin's source returns.
#[test]
fn an_edge_relays_an_origin_with_titles_through_source_restarts() {
    let origin = TestServer::start(Opts::default());
    let mut source = FfmpegSource::sine(&origin, "/live.mp3", MP3);
    origin.wait_live("/live.mp3");
    assert_eq!(origin.admin("/admin/metadata?mount=/live.mp3&mode=updinfo&song=Origin+Title").status, 200);

    let edge = edge_relaying(&origin, "/live.mp3");
    edge.wait_live("/edge.mp3");
    eventually("the edge's status names the origin's title", WAIT, || title_of(&edge) == "Origin Title");
    let mut listener = Listener::connect(&edge, "/edge.mp3", &[("Icy-MetaData", "1")]);
    assert_eq!(listener.head.header("Content-Type").as_deref(), Some("audio/mpeg"));
    let metaint: usize = listener.head.header("icy-metaint").unwrap().parse().unwrap();
    listener.read_at_least(3 * metaint, WAIT);
    let (audio, blocks) = split_icy(&listener.body, metaint);
    assert!(mp3_frames_contiguous(&audio) + 2000 >= audio.len(), "the relayed audio is intact MP3");
    assert_eq!(blocks.first().map(|b| b.1.as_str()), Some("StreamTitle='Origin Title';"), "{blocks:?}");

    assert_eq!(origin.admin("/admin/metadata?mount=/live.mp3&mode=updinfo&song=Second+Song").status, 200);
    eventually("a new title crosses", WAIT, || title_of(&edge) == "Second Song");
    let sources = edge.admin("/admin/listmounts").text();
    assert!(sources.contains("<source mount=\"/edge.mp3\">"), "{sources}");

    // The origin's source leaves: the edge's mount goes with it, and comes
    // back by itself once the origin streams again.
    source.stop();
    eventually("the edge's mount ends with the origin's", WAIT, || !edge.is_live("/edge.mp3"));
    let _source = FfmpegSource::sine(&origin, "/live.mp3", MP3);
    origin.wait_live("/live.mp3");
    eventually("the relay reconnects", WAIT, || edge.is_live("/edge.mp3"));
    let mut again = Listener::connect(&edge, "/edge.mp3", &[]);
    again.read_at_least(16_000, WAIT);
    assert!(mp3_frames_contiguous(&again.body) + 2000 >= again.body.len());
}

/// An upstream that refuses (no such mount) is retried without harm; the
/// failure is logged with the upstream's answer.
#[test]
fn a_refusing_upstream_is_retried_and_logged() {
    let origin = TestServer::start(Opts::default());
    let edge = edge_relaying(&origin, "/missing.mp3");
    eventually("the refusal is logged", WAIT, || edge.log().contains("the upstream answered 404"));
    assert!(!edge.is_live("/edge.mp3"));
    let _source = FfmpegSource::sine(&origin, "/missing.mp3", MP3);
    origin.wait_live("/missing.mp3");
    eventually("the relay connects once the upstream has the mount", WAIT, || edge.is_live("/edge.mp3"));
}

/// Master/slave between two Floes: the master lists its public mounts to
/// its relay user only; the slave relays each (titles included), picks up
/// a mount that appears, and lets go of one the master no longer lists.
#[test]
fn a_slave_relays_every_mount_its_master_lists() {
    let master = TestServer::start(Opts {
        auth: "relay_password = \"r3lay\"\n",
        rest: "[[mount]]\nname = \"/hidden.mp3\"\nhidden = true\n",
        ..Opts::default()
    });
    let _one = FfmpegSource::sine(&master, "/one.mp3", MP3);
    let _hidden = FfmpegSource::sine(&master, "/hidden.mp3", MP3);
    master.wait_live("/one.mp3");
    eventually("the hidden mount is live", WAIT, || master.admin("/admin/listmounts").text().contains("/hidden.mp3"));
    let list = |user: &str, password: &str| {
        master.request("GET", "/admin/streamlist.txt", &[("Authorization", &basic(user, password))])
    };
    assert_eq!(list("relay", "r3lay").text(), "/one.mp3\r\n", "public mounts only, one per line");
    assert_eq!(list("admin", "hackme").status, 200, "the admin may read it too");
    assert_eq!(list("relay", "wrong").status, 401);
    assert_eq!(master.request("GET", "/admin/stats", &[("Authorization", &basic("relay", "r3lay"))]).status, 401);
    assert_eq!(master.admin("/admin/metadata?mount=/one.mp3&mode=updinfo&song=From+The+Master").status, 200);

    let rest = format!("[master]\nurl = \"http://{}\"\npassword = \"r3lay\"\ninterval = 1\n", master.http);
    let slave = TestServer::start(Opts { rest: Box::leak(rest.into_boxed_str()), ..Opts::default() });
    slave.wait_live("/one.mp3");
    eventually("the master's title crosses", WAIT, || title_of(&slave) == "From The Master");
    let mut listener = Listener::connect(&slave, "/one.mp3", &[]);
    listener.read_at_least(16_000, WAIT);
    assert!(mp3_frames_contiguous(&listener.body) + 2000 >= listener.body.len(), "the relayed audio is intact MP3");
    assert!(!slave.admin("/admin/listmounts").text().contains("/hidden.mp3"), "hidden mounts are not relayed");

    // A mount that appears on the master is relayed at the next reading.
    let mut two = FfmpegSource::sine(&master, "/two.ogg", VORBIS);
    slave.wait_live("/two.ogg");
    let relayed = slave.live_sources();
    let two_type = relayed.iter().find(|s| s["listenurl"].as_str().unwrap().ends_with("/two.ogg")).unwrap();
    assert_eq!(two_type["server_type"].as_str(), Some("audio/ogg"), "{two_type}");
    // One that leaves is let go.
    two.stop();
    eventually("the slave lets the mount go", WAIT, || slave.log().contains("no longer lists the mount"));
    assert!(!slave.is_live("/two.ogg"));
    assert!(slave.is_live("/one.mp3"));
}
