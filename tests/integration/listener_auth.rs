//! `[mount.listener_auth]` with an htpasswd file made by the real tools
//! (Apache's `htpasswd -B`, `openssl passwd -6`, and Icecast's hex MD5):
//! curl and ffmpeg log in, wrong or missing credentials get a 401, the
//! mount's HLS and renditions are behind the same door, and a user added to
//! the file gets in without a restart.

use std::process::Command;

use crate::support::*;

fn tool(cmd: &mut Command) -> String {
    let out = run_bounded(cmd, WAIT);
    assert!(out.status_ok, "{}", out.stderr);
    out.stdout.trim().to_string()
}

fn curl_status(server: &TestServer, path: &str, user: Option<&str>) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3"]);
    if let Some(user) = user {
        cmd.args(["-u", user]);
    }
    // A stream never ends: --max-time stops it once the status is known.
    let out = run_bounded(cmd.arg(server.url(path)), WAIT);
    out.stdout
}

#[test]
fn htpasswd_users_listen_and_others_are_challenged() {
    let bcrypt = tool(Command::new("htpasswd").args(["-nbB", "-C", "5", "ann", "ann-secret"]));
    let sha512 = tool(Command::new("openssl").args(["passwd", "-6", "bob-secret"]));
    // Icecast 2.4's htpasswd: the hex MD5 of the password.
    let md5 = "5ebe2294ecd0e0f08eab7690d2a6ee69"; // "secret"
    let file = format!("# listeners\n{bcrypt}\nbob:{sha512}\ncarl:{md5}\n");
    let server = TestServer::start(Opts {
        rest: "[hls]\nmode = \"always\"\n[[mount]]\nname = \"/paid.mp3\"\n[mount.listener_auth]\ntype = \"htpasswd\"\n\
               file = \"listeners.htpasswd\"\n[[mount.transcode]]\nname = \"/paid.opus\"\ncodec = \"opus\"\nbitrate = 48\n",
        files: vec![("listeners.htpasswd", file.clone().into_bytes())],
        ..Opts::default()
    });
    let _source = FfmpegSource::sine(&server, "/paid.mp3", MP3);
    server.wait_live("/paid.mp3");
    server.wait_live("/paid.opus");

    let challenge = server.get("/paid.mp3");
    assert_eq!(challenge.status, 401);
    assert!(challenge.header("WWW-Authenticate").is_some_and(|h| h.starts_with("Basic ")), "{}", challenge.head);
    for user in ["ann:ann-secret", "bob:bob-secret", "carl:secret"] {
        assert_eq!(curl_status(&server, "/paid.mp3", Some(user)), "200", "{user}");
    }
    assert_eq!(curl_status(&server, "/paid.mp3", Some("ann:wrong")), "401");
    assert_eq!(curl_status(&server, "/paid.mp3", Some("nobody:secret")), "401");
    // The same door for its rendition and its HLS.
    assert_eq!(curl_status(&server, "/paid.opus", None), "401");
    assert_eq!(curl_status(&server, "/paid.opus", Some("carl:secret")), "200");
    assert_eq!(curl_status(&server, "/hls/paid.mp3/master.m3u8", None), "401");
    eventually("HLS answers a listener", WAIT, || {
        curl_status(&server, "/hls/paid.mp3/master.m3u8", Some("bob:bob-secret")) == "200"
    });

    // ffmpeg takes the credentials from the URL and hears the tone.
    let url = format!("http://ann:ann-secret@{}/paid.mp3", server.http);
    let heard = tone_frequency_of(&decode_mono_16k_for(&url, 2));
    assert!((430.0..450.0).contains(&heard), "{heard} Hz");

    // A new user in the file gets in without a restart.
    let dave = tool(Command::new("openssl").args(["passwd", "-5", "dave-secret"]));
    std::fs::write(server.dir().join("listeners.htpasswd"), format!("{file}dave:{dave}\n")).unwrap();
    eventually("the changed file is read", WAIT, || {
        curl_status(&server, "/paid.mp3", Some("dave:dave-secret")) == "200"
    });
    let log = std::fs::read_to_string(server.dir().join("floe.log")).unwrap_or_default();
    assert!(!log.contains("ann-secret") && !log.contains("dave-secret"), "passwords never reach the log");
}
