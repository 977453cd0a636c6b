//! The command line: `check-config`, and config errors with file, line and key.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

fn floe(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_floe"));
    cmd.args(args);
    let out = run_bounded(&mut cmd, Duration::from_secs(20));
    (out.code, out.stdout, out.stderr)
}

/// The shipped example configuration is valid.
#[test]
fn example_config_checks_clean() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/mounts.example.toml");
    let (code, stdout, stderr) = floe(&["check-config", example]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("OK"));
}

/// Every problem is reported at once with file, line and key, exit code 64,
/// for `check-config` and for `--config`.
#[test]
fn config_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[limits]\nqueue_sise = 1\nclients = \"many\"\n\n[[mount]]\nname = \"/a/../b\"\nmetaint = 0\n",
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let (code, _, stderr) = floe(&["check-config", file]);
    assert_eq!(code, Some(64), "{stderr}");
    for (line, key) in [(5, "limits.queue_sise"), (6, "limits.clients"), (9, "mount[1].name"), (10, "mount[1].metaint")]
    {
        let needle = format!("{file}:{line}: {key}:");
        assert!(stderr.contains(&needle), "missing {needle:?} in:\n{stderr}");
    }
    let (code, _, stderr) = floe(&["--config", file]);
    assert_eq!(code, Some(64), "{stderr}");
    let (code, _, stderr) = floe(&["--config", "/nonexistent/floe.toml"]);
    assert_eq!(code, Some(64));
    assert!(stderr.contains("/nonexistent/floe.toml"), "{stderr}");
}

/// `floe import-icecast` on Debian's own icecast.xml (from the icecast2
/// package), on an Icecast-KH file as AzuraCast writes it and on one with
/// every element: the TOML checks clean, says what the XML said, and what
/// did not come across is listed.
#[test]
fn icecast_xml_files_import() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    let import = |xml: &str| {
        let (code, toml, warnings) = floe(&["import-icecast", xml]);
        assert_eq!(code, Some(0), "{warnings}");
        let path = dir.path().join("imported.toml");
        std::fs::write(&path, &toml).unwrap();
        let (code, out, err) = floe(&["check-config", path.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{toml}\n{out}{err}");
        (toml.parse::<toml::Table>().unwrap(), warnings)
    };

    let (debian, warnings) = import("/etc/icecast2/icecast.xml");
    assert_eq!(debian["limits"]["clients"].as_integer(), Some(100));
    assert_eq!(debian["limits"]["burst_size"].as_integer(), Some(65535));
    assert_eq!(debian["auth"]["admin_password"].as_str(), Some("hackme"));
    assert_eq!(debian["auth"]["relay_password"].as_str(), Some("hackme"), "master/slave relays keep their login");
    assert_eq!(debian["server"]["listen"].as_array().unwrap()[0].as_str(), Some("0.0.0.0:8000"));
    assert_eq!(debian["server"]["access_log"].as_str(), Some("/var/log/icecast2/access.log"));
    assert_eq!(debian["shoutcast"]["enabled"].as_bool(), Some(false), "Icecast's default has no SHOUTcast port");
    for element in ["<fileserve>", "<http-headers>", "<security>"] {
        assert!(warnings.contains(element), "{element} in {warnings}");
    }

    let (kh, warnings) = import(&format!("{fixtures}/icecast-kh.xml"));
    assert_eq!(kh["auth"]["source_password"].as_str(), Some("src-&-secret"));
    assert_eq!(kh["shoutcast"]["port"].as_integer(), Some(8006));
    assert_eq!(kh["access"]["deny"].as_array().unwrap().len(), 2);
    assert_eq!(kh["access"]["trusted_proxies"].as_array().unwrap()[0].as_str(), Some("127.0.0.1"));
    let mount = &kh["mount"].as_array().unwrap()[0];
    assert_eq!(mount["stream_description"].as_str(), Some("Hits <all day>"));
    assert_eq!(mount["listener_auth"]["type"].as_str(), Some("url"));
    assert!(mount["listener_auth"]["listener_add"].as_str().unwrap().ends_with("/listener-auth"));
    assert_eq!(mount["listener_auth"]["headers"].as_array().unwrap()[0].as_str(), Some("x-forwarded-for"));
    assert!(warnings.contains("\"not-an-ip\" is not an address") && !warnings.contains("\"headers\""), "{warnings}");

    // The full one names an htpasswd file and a certificate next to it.
    std::fs::write(dir.path().join("listeners.htpasswd"), "ann:5ebe2294ecd0e0f08eab7690d2a6ee69\n").unwrap();
    std::fs::write(dir.path().join("intro.mp3"), [0xFF, 0xFB, 0x90, 0x00]).unwrap();
    let pem = dir.path().join("floe-test.pem");
    let out = run_bounded(
        Command::new("openssl")
            .args(["req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-keyout"])
            .arg(&pem)
            .arg("-out")
            .arg(dir.path().join("cert.pem")),
        Duration::from_secs(30),
    );
    assert!(out.status_ok, "{}", out.stderr);
    // Icecast's PEM holds key and certificate together.
    let cert = std::fs::read(dir.path().join("cert.pem")).unwrap();
    std::fs::OpenOptions::new().append(true).open(&pem).unwrap().write_all(&cert).unwrap();
    let (full, warnings) = import(&format!("{fixtures}/icecast-full.xml"));
    assert_eq!(full["limits"]["burst_size"].as_integer(), Some(0), "burst-on-connect 0");
    assert_eq!(full["server"]["tls_listen"].as_array().unwrap()[0].as_str(), Some("0.0.0.0:8443"));
    assert_eq!(full["tls"]["cert"].as_str(), Some("floe-test.pem"));
    let mounts = full["mount"].as_array().unwrap();
    assert_eq!(mounts.len(), 2);
    assert_eq!(mounts[0]["metaint"].as_integer(), Some(8192));
    assert!(mounts[0].get("max_listeners").is_none(), "-1 is unlimited");
    assert_eq!(mounts[0]["listener_auth"]["file"].as_str(), Some("listeners.htpasswd"));
    assert_eq!(mounts[0]["intro"].as_str(), Some("intro.mp3"));
    assert_eq!(mounts[0]["dump_file"].as_str(), Some("/tmp/dump-live.mp3"));
    assert_eq!(mounts[1]["hidden"].as_bool(), Some(true));
    let relays = full["relay"].as_array().unwrap();
    assert_eq!(relays[0]["url"].as_str(), Some("http://127.0.0.1:8080/example.ogg"));
    assert_eq!(relays[0]["mount"].as_str(), Some("/different.ogg"));
    let master = &full["master"];
    assert_eq!(master["url"].as_str(), Some("http://master.example:8001"));
    assert_eq!((master["username"].as_str(), master["password"].as_str()), (Some("relay"), Some("m4ster")));
    assert_eq!(master["interval"].as_integer(), Some(30));
    assert_eq!(master["on_demand"].as_bool(), Some(true));
    assert_eq!(relays[0]["on_demand"].as_bool(), Some(true));
    let directory = &full["directory"][0];
    assert_eq!(directory["url"].as_str(), Some("http://dir.xiph.org/cgi-bin/yp-cgi"));
    assert_eq!(directory["timeout"].as_integer(), Some(15));
    for element in ["<threadpool>", "type=\"default\""] {
        assert!(warnings.contains(element), "{element} in {warnings}");
    }

    let (code, _, err) = floe(&["import-icecast", &format!("{fixtures}/banned.txt")]);
    assert_eq!(code, Some(64), "not XML: {err}");
}
