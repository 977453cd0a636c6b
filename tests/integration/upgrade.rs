//! Zero-downtime binary upgrade (SIGUSR2): the new process takes the
//! listening sockets over, listeners connected before stay on the old one
//! until its bounded drain ends, new listeners hear the same stream (titles
//! too) from the new one, and a real source takes the mount over there.

use std::time::Duration;

use crate::support::*;

/// The new process, killed when the test ends (it is not the harness's child).
struct Successor(u32);

impl Drop for Successor {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0 as i32) {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
    }
}

/// The user agent of the source feeding `mount`, as `/admin/stats` shows it.
fn source_agent(server: &TestServer, mount: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(&server.admin("/admin/stats.json").body).ok()?;
    let sources = json["icestats"]["source"].as_array().cloned().unwrap_or_default();
    let source = sources.into_iter().find(|s| s["mount"] == mount)?;
    source["user_agent"].as_str().map(str::to_string)
}

#[test]
fn sigusr2_hands_the_sockets_to_a_new_process_without_dropping_anyone() {
    let mut server = TestServer::start(Opts { limits: "upgrade_drain = 15\n", ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let title = server.admin("/admin/metadata?mount=/live.mp3&mode=updinfo&song=Before%20the%20upgrade");
    assert_eq!(title.status, 200);
    let mut before = Listener::connect(&server, "/live.mp3", &[]);
    before.read_at_least(16_000, WAIT);

    signal(server.pid(), Signal::USR2);
    eventually("the new process took over", WAIT, || server.log().contains("new_pid="));
    let log = server.log();
    let new_pid: u32 =
        log.split("new_pid=").nth(1).and_then(|rest| rest.split_whitespace().next()?.parse().ok()).unwrap();
    let _successor = Successor(new_pid);
    assert_ne!(new_pid, server.pid());

    // Every new connection reaches the new process, where the old one feeds the mount.
    eventually("the new process serves the mount", WAIT, || {
        source_agent(&server, "/live.mp3").as_deref() == Some("floe-handover")
    });
    let mut after = Listener::connect(&server, "/live.mp3", &[("Icy-MetaData", "1")]);
    let metaint: usize = after.head.header("icy-metaint").expect("metaint").parse().unwrap();
    after.read_at_least(48_000, WAIT);
    let (audio, titles) = split_icy(&after.body, metaint);
    assert!(mp3_frames_contiguous(&audio) > 100, "whole MP3 frames from the new process");
    assert!(titles.iter().any(|(_, t)| t.contains("StreamTitle='Before the upgrade'")), "{titles:?}");

    // The listener from before keeps streaming from the old process.
    let heard = before.body.len();
    before.read_at_least(heard + 16_000, WAIT);

    // A real source connecting to the new process takes the mount over from the feed.
    let _next = FfmpegSource::start(&server, "/live.mp3", MP3, "sine=frequency=880:sample_rate=44100", "1", &[]);
    eventually("the real source holds the mount", WAIT, || {
        source_agent(&server, "/live.mp3").is_some_and(|agent| agent.starts_with("Lavf"))
    });
    let mut later = Listener::connect(&server, "/live.mp3", &[]);
    later.read_at_least(16_000, WAIT);

    // The old process ends by itself when its drain is over, closing what it still served.
    let status = server.wait_exit(Duration::from_secs(40)).expect("the old process exits after its drain");
    assert!(status.success(), "{status:?}");
    assert!(before.closed_within(WAIT), "the old process's listener was closed");
    let heard = later.body.len();
    later.read_at_least(heard + 16_000, WAIT);
}

/// systemd socket activation, through systemd's own `systemd-socket-activate`:
/// Floe serves on the socket it is given (named `http`) and binds nothing.
#[test]
fn socket_activation_serves_on_the_given_socket() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("floe.toml");
    std::fs::write(&config, "[server]\nlisten = [\"127.0.0.1:1\"]\n[shoutcast]\nport = 0\n").unwrap();
    // An ephemeral port for the tool, which cannot take port 0.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let stderr = dir.path().join("activate.log");
    let mut child = std::process::Command::new("systemd-socket-activate")
        .args(["-l", &format!("127.0.0.1:{port}"), "--fdname=http", env!("CARGO_BIN_EXE_floe"), "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("systemd-socket-activate (package systemd; scripts/test installs it)");
    let log = || std::fs::read_to_string(&stderr).unwrap_or_default();
    eventually("the tool listens", WAIT, || log().contains("Listening on"));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let reply = raw_exchange(addr, b"GET /status-json.xsl HTTP/1.0\r\n\r\n");
    let configured = std::net::TcpStream::connect("127.0.0.1:1");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(reply.status, 200, "{}", log());
    assert!(configured.is_err(), "the configured address was not bound");
}
