//! Configuration reload (SIGHUP and `/admin/reloadconfig`): what the new
//! file says is in force for the next request, nobody connected is dropped,
//! and a file with problems changes nothing and has every problem logged.

use std::time::Duration;

use crate::support::*;

const BEFORE: &str = "[[mount]]
name = \"/keep.mp3\"
password = \"one\"

[[mount]]
name = \"/gone.mp3\"
";

/// /keep.mp3 changes (one listener at most, a fallback), /gone.mp3 is no
/// longer named, /new.mp3 with its own password is added; the admin
/// password, the server's location and the listener cap change.
const AFTER: &str = "[[mount]]
name = \"/keep.mp3\"
password = \"one\"
max_listeners = 1
fallback_mount = \"/new.mp3\"

[[mount]]
name = \"/new.mp3\"
password = \"two\"
";

fn source_on(server: &TestServer, mount: &str, password: &str) -> FfmpegSource {
    let url = format!("icecast://source:{password}@{}{mount}", server.http);
    FfmpegSource::start_url(server, &url, MP3, "sine=frequency=440:sample_rate=44100", "1", &[])
}

fn admin_as(server: &TestServer, password: &str, path: &str) -> HttpResponse {
    server.request("GET", path, &[("Authorization", &basic("admin", password))])
}

/// A server counter read with `password`, or `None` if it is refused.
fn stat(server: &TestServer, password: &str, field: &str) -> Option<u64> {
    let json: serde_json::Value = serde_json::from_slice(&admin_as(server, password, "/admin/stats.json").body).ok()?;
    json["icestats"][field].as_u64()
}

/// Everything the issue lists applies from the next request while the
/// sources and listeners from before keep streaming: added, changed and
/// removed mounts (the removed one keeps its live source), credentials,
/// the location, `max_listeners` and the server-wide listener cap, both
/// lowered below what is held and raised again.
#[test]
fn admin_reload_applies_mounts_credentials_and_limits_keeping_everyone_connected() {
    let server = TestServer::start(Opts { rest: BEFORE, ..Opts::default() });
    let _keep = source_on(&server, "/keep.mp3", "one");
    let _gone = source_on(&server, "/gone.mp3", "hackme");
    server.wait_live("/keep.mp3");
    server.wait_live("/gone.mp3");
    let mut kept = Listener::connect(&server, "/keep.mp3", &[]);
    let mut orphan = Listener::connect(&server, "/gone.mp3", &[]);
    kept.read_at_least(8_000, WAIT);
    orphan.read_at_least(8_000, WAIT);

    server.rewrite_config(&Opts {
        auth: "admin_password = \"s3cret\"\n",
        limits: "clients = 1\n",
        rest: AFTER,
        server: "location = \"Studio B\"\n",
        ..Opts::default()
    });
    let reply = server.admin("/admin/reloadconfig");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let message = reply.text();
    for part in ["added: /new.mp3", "changed: /keep.mp3", "removed: /gone.mp3", "<return>1</return>"] {
        assert!(message.contains(part), "{part} in {message}");
    }

    // Credentials: the old admin password is gone, the new one works.
    assert_eq!(server.admin("/admin/stats").status, 401);
    assert_eq!(stat(&server, "s3cret", "config_reloads"), Some(1));
    // Two listeners are held and the cap is now one: both stay, nobody new gets in.
    let full = server.get("/keep.mp3");
    assert_eq!((full.status, full.text().trim()), (503, "Server full: too many listeners"));
    let before = (kept.body.len(), orphan.body.len());
    kept.read_at_least(before.0 + 8_000, WAIT);
    orphan.read_at_least(before.1 + 8_000, WAIT);
    // The removed mount keeps its source while it streams.
    assert!(server.is_live("/gone.mp3"), "{}", server.log());

    // The added mount takes its own password.
    let _new = source_on(&server, "/new.mp3", "two");
    server.wait_live("/new.mp3");
    assert_eq!(server.status_json()["icestats"]["location"], "Studio B");

    // Raise the cap again: /keep.mp3 is at its new max_listeners, /new.mp3 is not.
    server.rewrite_config(&Opts {
        auth: "admin_password = \"s3cret\"\n",
        limits: "clients = 10\n",
        rest: AFTER,
        ..Opts::default()
    });
    assert_eq!(admin_as(&server, "s3cret", "/admin/reloadconfig").status, 200);
    let mount_full = server.get("/keep.mp3");
    assert_eq!((mount_full.status, mount_full.text().trim()), (503, "Mount full: too many listeners"));
    let mut fresh = Listener::connect(&server, "/new.mp3", &[]);
    fresh.read_at_least(4_000, WAIT);
    assert!(!kept.closed_within(Duration::from_millis(300)), "the first listener is still connected");
    assert!(!orphan.closed_within(Duration::from_millis(300)), "so is the removed mount's");
}

/// SIGHUP with a broken file: every problem is logged with file, line and
/// key, nothing changes (the old admin password still works), and the
/// refusal is counted; once the file is fixed, SIGHUP applies it, including
/// a new access log.
#[test]
fn sighup_with_a_broken_file_keeps_the_running_configuration() {
    let server = TestServer::start(Opts { rest: BEFORE, ..Opts::default() });
    let _source = source_on(&server, "/keep.mp3", "one");
    server.wait_live("/keep.mp3");
    let mut listener = Listener::connect(&server, "/keep.mp3", &[]);
    listener.read_at_least(8_000, WAIT);

    server.rewrite_config(&Opts {
        auth: "admin_password = \"s3cret\"\n",
        limits: "clients = \"many\"\nqueue_sise = 1\n",
        rest: BEFORE,
        ..Opts::default()
    });
    signal(server.pid(), Signal::HUP);
    eventually("the refusal is logged", WAIT, || server.log().contains("configuration not reloaded"));
    let log = server.log();
    assert!(log.contains("floe.toml:6: limits.clients:"), "{log}");
    assert!(log.contains("floe.toml:7: limits.queue_sise:"), "{log}");
    assert_eq!(server.server_stat("config_reload_failures"), 1, "the old admin password still works");
    assert_eq!(server.server_stat("config_reloads"), 0);

    let access_log = server.dir().join("access.log");
    let line: &'static str = Box::leak(format!("access_log = \"{}\"\n", access_log.display()).into_boxed_str());
    server.rewrite_config(&Opts {
        auth: "admin_password = \"s3cret\"\n",
        server: line,
        rest: BEFORE,
        ..Opts::default()
    });
    signal(server.pid(), Signal::HUP);
    eventually("the fixed file is applied", WAIT, || stat(&server, "s3cret", "config_reloads") == Some(1));
    server.request("GET", "/status-json.xsl", &[("User-Agent", "AfterReload/1.0")]);
    eventually("requests go to the new access log", WAIT, || {
        std::fs::read_to_string(&access_log).is_ok_and(|text| text.contains("AfterReload/1.0"))
    });
    let before = listener.body.len();
    listener.read_at_least(before + 8_000, WAIT);
}
