//! Icecast's URL authentication against a real HTTP backend (Python's
//! http.server, tests/support/auth_backend.py): the exact form fields,
//! accepting on `icecast-auth-user: 1`, a time limit, the backend's
//! message in refusals, `stream_auth` for sources, `mount_add`/`mount_remove`
//! and `listener_remove`, and a slow backend that holds up nobody else.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// The backend process and the forms it has been sent.
struct Backend {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Backend {
    fn start() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("forms.jsonl");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/auth_backend.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).expect("the backend's port");
        Backend { child, port, log, _dir: dir }
    }

    fn forms(&self, action: &str) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|f| f["action"] == action)
            .collect()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// curl's status code and (for a refusal) the body's text.
fn curl(server: &TestServer, path: &str, user: Option<&str>) -> (String, String) {
    let body = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-w", "%{http_code}", "--max-time", "3", "-H", "X-Station-Token: t0k3n", "-o"]).arg(body.path());
    if let Some(user) = user {
        cmd.args(["-u", user]);
    }
    // A stream never ends: --max-time stops it once the status is known.
    let out = run_bounded(cmd.arg(server.url(path)), WAIT);
    let text =
        String::from_utf8_lossy(&std::fs::read(body.path()).unwrap_or_default()).trim_end().chars().take(200).collect();
    (out.stdout, text)
}

#[test]
fn a_url_backend_decides_with_icecasts_fields() {
    let backend = Backend::start();
    let url = format!("http://127.0.0.1:{}/auth", backend.port);
    let rest = format!(
        "[[mount]]\nname = \"/paid.mp3\"\n[mount.listener_auth]\ntype = \"url\"\n\
         listener_add = \"{url}\"\nlistener_remove = \"{url}\"\nmount_add = \"{url}\"\nmount_remove = \"{url}\"\n\
         stream_auth = \"{url}\"\nusername = \"floe\"\npassword = \"backend-secret\"\ntimeout = 6\n\
         headers = [\"X-Station-Token\", \"X-Absent\"]\n"
    );
    let server = TestServer::start(Opts { rest: Box::leak(rest.into_boxed_str()), ..Opts::default() });

    // Sources: stream_auth replaces the password.
    let put = |user: &str, password: &str| {
        let request = format!(
            "PUT /paid.mp3 HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\n\r\n",
            basic(user, password)
        );
        head_from([127, 0, 0, 1], server.http, &request).status
    };
    assert_eq!(put("source", "hackme"), 401, "the global source password is not what decides");
    let dj = format!("icecast://dj:booth@{}/paid.mp3", server.http);
    let mut source = FfmpegSource::start_url(&server, &dj, MP3, "sine=frequency=440:sample_rate=44100", "1", &[]);
    server.wait_live("/paid.mp3");
    eventually("mount_add is sent", WAIT, || backend.forms("mount_add").iter().any(|f| f["mount"] == "/paid.mp3"));

    // Listeners.
    assert_eq!(curl(&server, "/paid.mp3", Some("good:pw")).0, "200");
    let (code, body) = curl(&server, "/paid.mp3", None);
    assert_eq!((code.as_str(), body.as_str()), ("401", "Subscription expired"));
    let (code, body) = curl(&server, "/paid.mp3", Some("mallory:guess"));
    assert_eq!((code.as_str(), body.as_str()), ("403", "Subscription expired"));
    let adds = backend.forms("listener_add");
    let good = adds.iter().find(|f| f["user"] == "good").expect("listener_add for good");
    for field in ["action", "server", "port", "client", "mount", "user", "pass", "ip", "agent", "referer", "listeners"]
    {
        assert!(good.get(field).is_some(), "{field} in {good}");
    }
    assert_eq!(
        (good["mount"].as_str(), good["pass"].as_str(), good["ip"].as_str()),
        (Some("/paid.mp3"), Some("pw"), Some("127.0.0.1"))
    );
    assert!(good["agent"].as_str().unwrap().starts_with("curl/"), "{good}");
    assert_eq!(good["ClientHeader.x-station-token"], "t0k3n", "headers it asked for: {good}");
    assert!(good.get("ClientHeader.x-absent").is_none(), "{good}");
    assert_eq!(good["port"].as_str().unwrap(), server.http.port().to_string());

    // A time limit ends the stream; listener_remove says how long it lasted.
    let mut brief = Listener::connect(&server, "/paid.mp3", &[("Authorization", &basic("brief", "x"))]);
    assert_eq!(brief.head.status, 200);
    assert!(brief.closed_within(Duration::from_secs(15)), "the time limit ends the stream");
    let client = backend.forms("listener_add").iter().find(|f| f["user"] == "brief").unwrap()["client"].clone();
    eventually("listener_remove for the brief listener", WAIT, || {
        backend
            .forms("listener_remove")
            .iter()
            .any(|f| f["client"] == client && f["duration"].as_str().is_some_and(|d| d.parse::<u64>().unwrap() >= 2))
    });

    // A slow backend costs its own request the timeout (503, fail-closed) and nobody else anything.
    let slow_url = server.url("/paid.mp3");
    let slow = std::thread::spawn(move || {
        let out = run_bounded(
            Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "15", "-u", "slow:x"])
                .arg(&slow_url),
            WAIT,
        );
        out.stdout
    });
    eventually("the slow request reached the backend", WAIT, || {
        backend.forms("listener_add").iter().any(|f| f["user"] == "slow")
    });
    assert_eq!(curl(&server, "/paid.mp3", Some("good:pw")).0, "200");
    assert!(!slow.is_finished(), "the good listener was let in while the slow one waited");
    assert_eq!(slow.join().unwrap(), "503");

    source.stop();
    eventually("mount_remove is sent", WAIT, || {
        backend.forms("mount_remove").iter().any(|f| f["mount"] == "/paid.mp3")
    });
}
