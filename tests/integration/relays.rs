//! Pull relays: an edge Floe relaying an origin's mount, titles included,
//! through the origin's source going away and coming back.

use crate::support::*;

/// An edge relaying `path` of `origin` into `/edge.mp3`; it holds the
/// mount for 4 s (`source_timeout`) while the upstream is away.
fn edge_relaying(origin: &TestServer, path: &str) -> TestServer {
    // A test leaks one short config string: Opts holds &'static fragments.
    let rest = format!("[[relay]]\nurl = \"http://{}{path}\"\nmount = \"/edge.mp3\"\nretry = 1\n", origin.http);
    TestServer::start(Opts {
        limits: "source_timeout = 4\n",
        rest: Box::leak(rest.into_boxed_str()),
        ..Opts::default()
    })
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

    // The origin's source leaves and comes back at once: the edge keeps its
    // mount and its listener, who hears the stream go on.
    source.stop();
    eventually("the relay notices", WAIT, || edge.log().contains("relay ended"));
    assert!(edge.is_live("/edge.mp3"), "the edge holds its mount while the relay reconnects");
    let source = FfmpegSource::sine(&origin, "/live.mp3", MP3);
    eventually("the relay reconnects", WAIT, || edge.log().contains("listeners kept"));
    let had = listener.body.len();
    listener.read_at_least(had + 4 * metaint, WAIT);
    let (audio, _) = split_icy(&listener.body, metaint);
    assert!(mp3_frames_contiguous(&audio) + 2000 >= audio.len(), "the stream goes on as intact MP3");

    // Away for longer than the edge's source_timeout: the mount ends (no
    // fallback here) and comes back by itself once the origin streams again.
    drop(source);
    assert!(listener.closed_within(WAIT), "the listener is closed once the edge stops holding");
    assert!(!edge.is_live("/edge.mp3"));
    let _source = FfmpegSource::sine(&origin, "/live.mp3", MP3);
    origin.wait_live("/live.mp3");
    eventually("the relay connects again", WAIT, || edge.is_live("/edge.mp3"));
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

/// An ICY listener's first title block on `server`'s `mount`.
fn first_icy_title(server: &TestServer, mount: &str) -> String {
    let mut listener = Listener::connect(server, mount, &[("Icy-MetaData", "1")]);
    let metaint: usize = listener.head.header("icy-metaint").expect("ICY on").parse().unwrap();
    listener.read_at_least(metaint + 256, WAIT);
    let (_, blocks) = split_icy(&listener.body, metaint);
    blocks.first().map(|b| b.1.clone()).unwrap_or_default()
}

/// The real Icecast 2.4 relaying from Floe, both as a slave of Floe (it
/// reads Floe's stream list with the relay login) and with a `<relay>` of
/// one mount; Floe's titles reach Icecast's status, and the audio Icecast
/// serves decodes.
#[test]
fn icecast_relays_from_floe_as_slave_and_per_mount() {
    let floe = TestServer::start(Opts { auth: "relay_password = \"r3lay\"\n", ..Opts::default() });
    let _source = FfmpegSource::sine(&floe, "/live.mp3", MP3);
    floe.wait_live("/live.mp3");
    assert_eq!(floe.admin("/admin/metadata?mount=/live.mp3&mode=updinfo&song=From+Floe").status, 200);
    let port = floe.http.port();
    let icecast = Icecast::start(&format!(
        "<master-server>127.0.0.1</master-server><master-server-port>{port}</master-server-port>
         <master-update-interval>1</master-update-interval>
         <master-username>relay</master-username><master-password>r3lay</master-password>
         <relay><server>127.0.0.1</server><port>{port}</port><mount>/live.mp3</mount>
           <local-mount>/copy.mp3</local-mount><relay-shoutcast-metadata>1</relay-shoutcast-metadata></relay>"
    ));
    for mount in ["/live.mp3", "/copy.mp3"] {
        eventually(&format!("Icecast shows Floe's title on {mount}"), WAIT, || icecast.title(mount) == "From Floe");
    }
    let relayed = ffmpeg_decode(&format!("http://{}/live.mp3", icecast.http), 2);
    assert!(relayed.is_empty(), "Icecast's relay of Floe decodes cleanly: {relayed}");
    assert_eq!(floe.admin("/admin/metadata?mount=/live.mp3&mode=updinfo&song=Next+On+Floe").status, 200);
    eventually("a new title crosses to Icecast", WAIT, || icecast.title("/live.mp3") == "Next On Floe");
}

/// Floe relaying from the real Icecast 2.4: as its slave (Icecast's stream
/// list, read with Icecast's relay login) and with a `[[relay]]`; Icecast's
/// titles reach Floe's status and its listeners' ICY blocks.
#[test]
fn floe_relays_from_icecast_as_slave_and_per_mount() {
    let icecast = Icecast::start("");
    let rest = format!(
        "[master]\nurl = \"http://{ice}\"\npassword = \"r3lay\"\ninterval = 1\n\n\
         [[relay]]\nurl = \"http://{ice}/live.mp3\"\nmount = \"/pulled.mp3\"\nretry = 1\n",
        ice = icecast.http
    );
    let floe = TestServer::start(Opts { rest: Box::leak(rest.into_boxed_str()), ..Opts::default() });
    let url = format!("icecast://source:hackme@{}/live.mp3", icecast.http);
    let _source = FfmpegSource::start_url(&floe, &url, MP3, "sine=frequency=440:sample_rate=44100", "1", &[]);
    eventually("Icecast has the source", WAIT, || icecast.source("/live.mp3").is_some());
    assert_eq!(icecast.admin("/admin/metadata?mount=/live.mp3&mode=updinfo&song=From+Icecast").status, 200);
    for mount in ["/live.mp3", "/pulled.mp3"] {
        floe.wait_live(mount);
        eventually(&format!("Icecast's title reaches {mount}"), WAIT, || {
            floe.live_sources()
                .iter()
                .any(|s| s["listenurl"].as_str().is_some_and(|u| u.ends_with(mount)) && s["title"] == "From Icecast")
        });
        assert_eq!(first_icy_title(&floe, mount), "StreamTitle='From Icecast';");
    }
    let mut listener = Listener::connect(&floe, "/live.mp3", &[]);
    listener.read_at_least(16_000, WAIT);
    assert!(mp3_frames_contiguous(&listener.body) + 2000 >= listener.body.len(), "the relayed audio is intact MP3");
    assert_eq!(icecast.admin("/admin/metadata?mount=/live.mp3&mode=updinfo&song=Next+On+Icecast").status, 200);
    eventually("a new title crosses to Floe", WAIT, || {
        floe.live_sources().iter().any(|s| s["title"] == "Next On Icecast")
    });
}

/// With a fallback, an edge's listeners move to it as soon as the upstream
/// goes away, and (with `fallback_override`) return when the relay
/// reconnects: the same connection throughout.
#[test]
fn relay_listeners_wait_out_the_upstream_on_the_fallback() {
    let origin = TestServer::start(Opts::default());
    let source = FfmpegSource::sine(&origin, "/live.mp3", MP3);
    origin.wait_live("/live.mp3");
    let rest = format!(
        "[[mount]]\nname = \"/edge.mp3\"\nfallback_mount = \"/backup.mp3\"\nfallback_override = true\n\n\
         [[relay]]\nurl = \"http://{}/live.mp3\"\nmount = \"/edge.mp3\"\nretry = 1\n",
        origin.http
    );
    let edge = TestServer::start(Opts { rest: Box::leak(rest.into_boxed_str()), ..Opts::default() });
    let _backup = FfmpegSource::sine(&edge, "/backup.mp3", MP3);
    edge.wait_live("/backup.mp3");
    edge.wait_live("/edge.mp3");
    let mut listener = Listener::connect(&edge, "/edge.mp3", &[]);
    listener.read_at_least(8_000, WAIT);
    let id = edge.listener_ids("/edge.mp3");
    assert_eq!(id.len(), 1);

    drop(source);
    eventually("the listener is on the fallback", WAIT, || edge.listener_ids("/backup.mp3") == id);
    let _source = FfmpegSource::sine(&origin, "/live.mp3", MP3);
    eventually("the listener is back on the relayed mount", WAIT, || edge.listener_ids("/edge.mp3") == id);
    let had = listener.body.len();
    listener.read_at_least(had + 16_000, WAIT);
    assert!(mp3_frames_contiguous(&listener.body) + 4000 >= listener.body.len(), "intact MP3 throughout");
}

/// An on-demand relay connects when the first listener asks (the listener
/// waits for the stream and gets it), disconnects once nobody has listened
/// for 10 s, and starts again for the next listener (ffmpeg here).
#[test]
fn an_on_demand_relay_runs_only_while_someone_listens() {
    let origin = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&origin, "/live.mp3", MP3);
    origin.wait_live("/live.mp3");
    let rest =
        format!("[[relay]]\nurl = \"http://{}/live.mp3\"\nmount = \"/edge.mp3\"\non_demand = true\n", origin.http);
    let edge = TestServer::start(Opts { rest: Box::leak(rest.into_boxed_str()), ..Opts::default() });
    let relay_listening = || origin.mount_stat("/live.mp3", "listeners") == 1;
    assert!(!edge.is_live("/edge.mp3") && !relay_listening(), "nothing is relayed before anyone asks");

    let mut listener = Listener::connect(&edge, "/edge.mp3", &[]);
    assert_eq!(listener.head.status, 200, "{}", edge.log());
    listener.read_at_least(16_000, WAIT);
    assert!(mp3_frames_contiguous(&listener.body) + 2000 >= listener.body.len());
    assert!(relay_listening(), "the relay is the origin's listener");

    drop(listener);
    eventually("the relay stops once nobody listens", WAIT, || !relay_listening() && !edge.is_live("/edge.mp3"));
    assert!(edge.log().contains("on-demand relay stopped"), "{}", edge.log());
    let errors = ffmpeg_decode(&edge.url("/edge.mp3"), 2);
    assert!(errors.trim().is_empty(), "a player starts it again: {errors}");
}

/// A relay tree: the edge passes the origin's bytes on as they are (no
/// re-encoding), and makes its own renditions and HLS from them like any
/// source's.
#[test]
fn an_edge_serves_the_origins_bytes_and_makes_renditions_and_hls_from_them() {
    let origin = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&origin, "/live.mp3", MP3);
    origin.wait_live("/live.mp3");
    let rest = format!(
        "[hls]\nmode = \"always\"\n\n[[mount]]\nname = \"/edge.mp3\"\n\n[[mount.transcode]]\nname = \"/edge.opus\"\n\
         codec = \"opus\"\nbitrate = 48\n\n[[relay]]\nurl = \"http://{}/live.mp3\"\nmount = \"/edge.mp3\"\n",
        origin.http
    );
    let edge = TestServer::start(Opts { rest: Box::leak(rest.into_boxed_str()), ..Opts::default() });
    edge.wait_live("/edge.mp3");

    // What the edge sends is a run of the origin's own bytes.
    let mut at_origin = Listener::connect(&origin, "/live.mp3", &[]);
    let mut at_edge = Listener::connect(&edge, "/edge.mp3", &[]);
    at_edge.read_at_least(48_000, WAIT);
    at_origin.read_at_least(at_origin.body.len() + 96_000, WAIT);
    let sample = &at_edge.body[at_edge.body.len() - 8_000..];
    assert!(find(&at_origin.body, sample).is_some(), "the edge's stream is the origin's bytes, not a re-encoding");

    edge.wait_live("/edge.opus");
    let opus = ffprobe(&edge.url("/edge.opus"));
    assert_eq!(opus["codec_name"], "opus", "{opus}");
    let samples = decode_mono_16k_for(&edge.url("/hls/edge.mp3/aac-128/index.m3u8"), 3);
    let frequency = tone_frequency_of(&samples);
    assert!((frequency - 440.0).abs() < 15.0, "the edge's HLS carries the origin's 440 Hz tone, got {frequency}");
}

/// A SHOUTcast v1 upstream (`ICY 200 OK`, ICY metadata inline), played by a
/// fake server here: the relay takes its name, its stream and its titles.
#[test]
fn a_shoutcast_upstream_is_relayed_with_its_titles() {
    // A server only for its scratch directory (where ffmpeg writes the file).
    let scratch = TestServer::start(Opts::default());
    let mp3 =
        std::fs::read(ffmpeg_make(&scratch, "tone.mp3", "sine=frequency=440:duration=20", &["-b:a", "128k"])).unwrap();
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let Ok((mut sock, _)) = upstream.accept() else { return };
        sock.set_read_timeout(Some(WAIT)).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && sock.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        assert!(String::from_utf8_lossy(&head).contains("Icy-MetaData: 1"), "the relay asks for titles");
        let metaint = 8192;
        let _ = sock.write_all(
            format!(
                "ICY 200 OK\r\nicy-name: Fake Shoutcast\r\ncontent-type: audio/mpeg\r\nicy-metaint: {metaint}\r\n\r\n"
            )
            .as_bytes(),
        );
        let mut title = b"StreamTitle='Shout Title';".to_vec();
        title.resize(32, 0);
        // About real time: two blocks (16 KB, one second at 128 kbit/s) a second.
        for (i, block) in mp3.chunks(metaint).enumerate() {
            let mut out = block.to_vec();
            if i == 0 {
                out.push(2);
                out.extend_from_slice(&title);
            } else {
                out.push(0);
            }
            if sock.write_all(&out).is_err() {
                return;
            }
            if i % 2 == 1 {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    });
    let rest = format!("[[relay]]\nurl = \"http://{addr}/\"\nmount = \"/shout.mp3\"\n");
    let edge = TestServer::start(Opts { rest: Box::leak(rest.into_boxed_str()), ..Opts::default() });
    edge.wait_live("/shout.mp3");
    eventually("the upstream's title is the mount's", WAIT, || {
        edge.live_sources().iter().any(|s| s["title"] == "Shout Title" && s["server_name"] == "Fake Shoutcast")
    });
    let mut listener = Listener::connect(&edge, "/shout.mp3", &[]);
    listener.read_at_least(16_000, WAIT);
    assert!(mp3_frames_contiguous(&listener.body) + 2000 >= listener.body.len(), "no ICY bytes in the audio");
}
