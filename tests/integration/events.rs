//! `/admin/events` read by curl as a server-sent-event stream: changes
//! arrive in order as they happen, with a stats snapshot every second, and
//! only for the admin user.

use std::process::{Command, Stdio};

use crate::support::*;

/// (event, data as JSON) for every complete message in `text`.
fn messages(text: &str) -> Vec<(String, serde_json::Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
            let data = serde_json::from_str(field("data:")?).expect("every data line is JSON");
            Some((field("event:")?.to_string(), data))
        })
        .collect()
}

#[test]
fn admin_events_follow_sources_listeners_and_titles() {
    let server = TestServer::start(Opts::default());
    assert_eq!(server.get("/admin/events").status, 401);
    let out = server.dir().join("events.txt");
    let mut curl = Command::new("curl")
        .args(["-sN", "--max-time", "60", "-u", "admin:hackme", "-o"])
        .arg(&out)
        .arg(server.url("/admin/events"))
        .stdin(Stdio::null())
        .spawn()
        .expect("curl");
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    eventually("the feed starts with a snapshot", WAIT, || read().contains("event: stats"));

    let mut source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let mut listener = Listener::connect(&server, "/live.mp3", &[]);
    listener.read_at_least(1000, WAIT);
    eventually("a snapshot counts them", WAIT, || {
        messages(&read()).iter().any(|(e, s)| e == "stats" && s["sources"] == 1 && s["listeners"] == 1)
    });
    assert_eq!(server.admin("/admin/metadata?mount=/live.mp3&mode=updinfo&song=Night%20%22Drive%22").status, 200);
    drop(listener);
    eventually("the listener is gone", WAIT, || read().contains("event: listener_removed"));
    source.stop();
    eventually("every change arrived", WAIT, || read().contains("event: source_left"));
    let _ = curl.kill();
    let _ = curl.wait();

    let all = messages(&read());
    let changes: Vec<&(String, serde_json::Value)> = all.iter().filter(|(e, _)| e != "stats").collect();
    let names: Vec<&str> = changes.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, ["source_connected", "listener_added", "title", "listener_removed", "source_left"], "{all:?}");
    assert_eq!(changes[1].1["user_agent"], "floe-test");
    assert_eq!(changes[1].1["mount"], "/live.mp3");
    assert_eq!(changes[2].1["title"], "Night \"Drive\"");
    assert_eq!(changes[1].1["id"], changes[3].1["id"]);
    let live = all.iter().find(|(e, s)| e == "stats" && s["sources"] == 1).unwrap();
    assert_eq!(live.1["mounts"][0]["mount"], "/live.mp3", "{live:?}");
}
