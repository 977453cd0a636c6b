//! HTTPS: curl (HTTP/2 by ALPN and HTTP/1.1), ffmpeg as a source over TLS
//! (`-tls 1`) and as a listener of `https://`, HTTP and HTTPS on one port,
//! and certificates replaced on disk or by SIGHUP while a TLS listener keeps
//! streaming. Certificates are made by openssl for each test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// What every TLS test server adds to its config: its own port on
/// 127.0.0.2 and TLS on the plain port too.
const TLS_PORTS: &str = "tls_listen = [\"127.0.0.1:0\", \"127.0.0.2:0\"]\n";
const TLS_FILES: &str = "[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n";

/// A self-signed certificate for localhost, 127.0.0.1 and 127.0.0.2 made
/// by openssl; `kind` is "ec" or "rsa". Returns (certificate, key) PEM.
pub(crate) fn self_signed(kind: &str, name: &str) -> (Vec<u8>, Vec<u8>) {
    self_signed_for(kind, name, &["localhost"])
}

/// As `self_signed`, for the DNS names `dns` (and the loopback addresses).
fn self_signed_for(kind: &str, name: &str, dns: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-x509", "-nodes", "-days", "2", "-subj", &format!("/CN={name}")]);
    match kind {
        "ec" => cmd.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]),
        _ => cmd.args(["-newkey", "rsa:2048"]),
    };
    let names: Vec<String> = dns.iter().map(|d| format!("DNS:{d}")).collect();
    let alt = format!("subjectAltName={},IP:127.0.0.1,IP:127.0.0.2", names.join(","));
    cmd.args(["-addext", &alt, "-keyout"]).arg(&key).arg("-out").arg(&cert);
    let out = run_bounded(&mut cmd, Duration::from_secs(30));
    assert!(out.status_ok, "openssl (scripts/test installs it): {}", out.stderr);
    (std::fs::read(cert).unwrap(), std::fs::read(key).unwrap())
}

pub(crate) fn tls_server(cert: Vec<u8>, key: Vec<u8>, rest: &'static str) -> TestServer {
    TestServer::start(Opts {
        server: TLS_PORTS,
        rest: Box::leak(format!("{TLS_FILES}{rest}").into_boxed_str()),
        files: vec![("cert.pem", cert), ("key.pem", key)],
        ..Opts::default()
    })
}

/// curl trusting `ca` (a PEM file), for `https://localhost:<port>` of `addr`.
fn curl(addr: SocketAddr, ca: &Path, path: &str, extra: &[&str]) -> Output {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "15", "--cacert"]).arg(ca);
    cmd.arg("--resolve").arg(format!("localhost:{}:{}", addr.port(), addr.ip()));
    cmd.args(extra).arg(format!("https://localhost:{}{path}", addr.port()));
    run_bounded(&mut cmd, Duration::from_secs(20))
}

fn write_pem(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// Everything plain HTTP serves is served over TLS: status and HLS with
/// HTTP/2 or HTTP/1.1, a source (ffmpeg `-tls 1`) and its listeners
/// (ffmpeg on `https://`); the shared port still speaks plain HTTP, the
/// TLS-only port does not.
#[test]
fn https_serves_pages_sources_listeners_and_hls() {
    let (cert, key) = self_signed("ec", "floe-ecdsa");
    let server = tls_server(cert.clone(), key, "[hls]\nmode = \"always\"\n");
    let ca = write_pem(&server.dir(), "ca.pem", &cert);
    assert_eq!(server.https.len(), 2, "{}", server.log());
    let (shared, own) = (server.https[0], server.https[1]);
    assert_eq!(shared, server.http, "an address in both lists is one port");

    for addr in [shared, own] {
        let h2 = curl(addr, &ca, "/status-json.xsl", &["-w", "\n%{http_version}"]);
        assert!(h2.status_ok, "{}", h2.stderr);
        let (body, version) = h2.stdout.rsplit_once('\n').unwrap();
        assert_eq!(version, "2", "ALPN chose HTTP/2");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(json["icestats"].is_object(), "{body}");
        let h1 = curl(addr, &ca, "/status-json.xsl", &["--http1.1", "-o", "/dev/null", "-w", "%{http_version}"]);
        assert_eq!(h1.stdout, "1.1", "{}", h1.stderr);
    }
    assert_eq!(server.get("/status-json.xsl").status, 200, "plain HTTP on the shared port");

    // Plain HTTP to the TLS-only port is no HTTP exchange (and a failed handshake).
    let mut sock = TcpStream::connect(own).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.write_all(b"GET /status-json.xsl HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    let _ = sock.read_to_end(&mut reply);
    assert!(!reply.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&reply));
    eventually("the failed handshake is counted", WAIT, || server.server_stat("tls_handshake_failures") >= 1);

    let url = format!("icecast://source:hackme@{own}/live.mp3");
    let _source =
        FfmpegSource::start_url(&server, &url, MP3, "sine=frequency=440:sample_rate=44100", "1", &["-tls", "1"]);
    server.wait_live("/live.mp3");
    let heard = tone_frequency_of(&decode_mono_16k_for(&format!("https://127.0.0.1:{}/live.mp3", shared.port()), 3));
    assert!((430.0..450.0).contains(&heard), "heard {heard} Hz over https");

    let mut playlist = String::new();
    eventually("the HLS media playlist lists segments over https", WAIT, || {
        let out = curl(own, &ca, "/hls/live.mp3/aac-64/index.m3u8", &[]);
        playlist = out.stdout;
        out.status_ok && playlist.contains("#EXTINF")
    });
    let master = curl(own, &ca, "/hls/live.mp3/master.m3u8", &["-w", "%{http_version}"]);
    assert!(master.stdout.starts_with("#EXTM3U") && master.stdout.ends_with('2'), "{}", master.stdout);
    assert!(server.server_stat("tls_handshakes") >= 6, "{}", server.admin("/admin/stats").text());
}

/// A renewal replaces the files: new handshakes get the new certificate
/// (RSA after ECDSA) within seconds, without a signal, and a TLS listener
/// connected before keeps streaming. A broken replacement (here with
/// SIGHUP) is logged and the last good certificate kept.
#[test]
fn certificates_are_reloaded_without_dropping_listeners() {
    let (first, first_key) = self_signed("ec", "floe-first");
    let (renewed, renewed_key) = self_signed("rsa", "floe-renewed");
    let server = tls_server(first.clone(), first_key, "");
    let dir = server.dir();
    let (first_ca, renewed_ca) = (write_pem(&dir, "first-ca.pem", &first), write_pem(&dir, "renewed-ca.pem", &renewed));
    let own = server.https[1];
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");

    let held = dir.join("held.mp3");
    let mut listener = held_listener(own, &first_ca, &held);
    let size = || std::fs::metadata(&held).map_or(0, |m| m.len());
    eventually("the TLS listener receives audio", WAIT, || size() > 16_000);

    // As certbot does: the key first, then the chain (a moment where they do not match).
    write_pem(&dir, "key.pem", &renewed_key);
    write_pem(&dir, "cert.pem", &renewed);
    eventually("new handshakes get the renewed certificate", Duration::from_secs(30), || {
        curl(own, &renewed_ca, "/status-json.xsl", &["-o", "/dev/null"]).status_ok
    });
    assert_eq!(curl(own, &first_ca, "/status-json.xsl", &["-o", "/dev/null"]).code, Some(60), "old one retired");
    let before = size();
    eventually("the listener from before keeps streaming", WAIT, || size() > before + 16_000);
    assert!(listener.running(), "the listener's connection survived the renewal");

    write_pem(&dir, "cert.pem", b"-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n");
    signal(server.pid(), Signal::HUP);
    eventually("the broken certificate is refused", WAIT, || server.log().contains("still serving the old one"));
    assert!(curl(own, &renewed_ca, "/status-json.xsl", &["-o", "/dev/null"]).status_ok, "{}", server.log());
    assert!(server.server_stat("tls_reload_failures") >= 1);
    assert!(server.server_stat("tls_reloads") >= 1);
    assert!(listener.running(), "{}", server.log());
}

/// A configuration reload that names other certificate files serves the
/// new pair from the next handshake and watches the new files; one that
/// names an unusable pair is refused whole.
#[test]
fn a_reload_naming_other_certificate_files_switches_to_them() {
    let (first, first_key) = self_signed("ec", "floe-first");
    let (other, other_key) = self_signed("ec", "floe-other");
    let server = tls_server(first.clone(), first_key, "");
    let dir = server.dir();
    let (first_ca, other_ca) = (write_pem(&dir, "first-ca.pem", &first), write_pem(&dir, "other-ca.pem", &other));
    let own = server.https[1];
    let reload = |cert: &'static str, key: &'static str, files: Vec<(&'static str, Vec<u8>)>| {
        let rest: &'static str = Box::leak(format!("[tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n").into_boxed_str());
        server.rewrite_config(&Opts { server: TLS_PORTS, rest, files, ..Opts::default() });
        server.admin("/admin/reloadconfig")
    };

    let refused = reload("other.pem", "key.pem", vec![("other.pem", other.clone())]);
    assert_eq!(refused.status, 400, "a certificate with the wrong key: {}", refused.text());
    assert!(refused.text().contains("do not go together"), "{}", refused.text());
    assert!(curl(own, &first_ca, "/status-json.xsl", &["-o", "/dev/null"]).status_ok, "the old pair stays");

    let applied = reload("other.pem", "other-key.pem", vec![("other-key.pem", other_key)]);
    assert_eq!(applied.status, 200, "{}", applied.text());
    assert!(curl(own, &other_ca, "/status-json.xsl", &["-o", "/dev/null"]).status_ok, "{}", server.log());
    assert_eq!(curl(own, &first_ca, "/status-json.xsl", &["-o", "/dev/null"]).code, Some(60));
}

/// SNI: a client asking for a name of a `[[tls.sni]]` entry (exactly, or
/// under its wildcard) gets that entry's certificate; any other, the default.
#[test]
fn sni_serves_the_certificate_for_the_name_asked() {
    let (default, default_key) = self_signed("ec", "floe-default");
    let (station, station_key) = self_signed_for("ec", "floe-station", &["radio.test", "*.stations.test"]);
    let sni = "[[tls.sni]]\nnames = [\"radio.test\", \"*.stations.test\"]\ncert = \"station.pem\"\nkey = \"station-key.pem\"\n";
    let server = TestServer::start(Opts {
        server: TLS_PORTS,
        rest: Box::leak(format!("{TLS_FILES}{sni}").into_boxed_str()),
        files: vec![
            ("cert.pem", default.clone()),
            ("key.pem", default_key),
            ("station.pem", station.clone()),
            ("station-key.pem", station_key),
        ],
        ..Opts::default()
    });
    let dir = server.dir();
    let (default_ca, station_ca) =
        (write_pem(&dir, "default-ca.pem", &default), write_pem(&dir, "station-ca.pem", &station));
    let own = server.https[1];
    let fetch = |name: &str, ca: &Path| {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "15", "-o", "/dev/null", "--cacert"]).arg(ca);
        cmd.arg("--resolve").arg(format!("{name}:{}:{}", own.port(), own.ip()));
        cmd.arg(format!("https://{name}:{}/status-json.xsl", own.port()));
        run_bounded(&mut cmd, Duration::from_secs(20))
    };
    for name in ["radio.test", "one.stations.test"] {
        let out = fetch(name, &station_ca);
        assert!(out.status_ok, "{name}: {}", out.stderr);
    }
    assert!(fetch("localhost", &default_ca).status_ok, "no SNI entry for localhost: the default");
    assert!(!fetch("radio.test", &default_ca).status_ok, "radio.test is not served the default");
    assert!(!fetch("a.b.stations.test", &station_ca).status_ok, "the wildcard covers one label");
}

/// A playlist fetched over HTTPS points at the stream over HTTPS, by the
/// name and port the client used.
#[test]
fn playlists_over_https_name_https() {
    let (cert, key) = self_signed("ec", "floe-playlist");
    let server = tls_server(cert.clone(), key, "[[mount]]\nname = \"/pl.mp3\"\n");
    let ca = write_pem(&server.dir(), "ca.pem", &cert);
    let own = server.https[1];
    let out = curl(own, &ca, "/pl.mp3.m3u", &[]);
    assert!(out.status_ok, "{}", out.stderr);
    let expected = format!("https://localhost:{}/pl.mp3", own.port());
    assert!(out.stdout.lines().any(|l| l == expected), "{}", out.stdout);
}

/// libshout over TLS: ezstream with `<protocol>HTTPS</protocol>` (TLS from
/// the first byte, checking the certificate against its CA file) streams to
/// the shared port, and the mount decodes.
#[test]
fn ezstream_streams_over_https() {
    let (cert, key) = self_signed("ec", "floe-ezstream");
    let server = tls_server(cert.clone(), key, "");
    let ca = write_pem(&server.dir(), "ca.pem", &cert);
    let file = crate::clients::tagged_mp3(&server);
    let connection = format!(
        "<protocol>HTTPS</protocol><hostname>localhost</hostname><port>{}</port><ca_file>{}</ca_file>",
        server.https[0].port(),
        ca.display()
    );
    let mut client = crate::clients::ezstream_with(&server, "/ez-tls.mp3", &file, &connection);
    crate::clients::wait_live_or_explain(&server, &mut client, "/ez-tls.mp3", WAIT);
    let errors = ffmpeg_decode(&server.url("/ez-tls.mp3"), 2);
    assert!(errors.trim().is_empty(), "decode errors: {errors}");
    assert!(server.server_stat("tls_handshakes") >= 1);
}

/// An unusable certificate is a configuration error naming file, line and key.
#[test]
fn a_key_that_does_not_match_is_a_config_error() {
    let (cert, _) = self_signed("ec", "floe-one");
    let (_, other_key) = self_signed("ec", "floe-two");
    let dir = tempfile::tempdir().unwrap();
    write_pem(dir.path(), "cert.pem", &cert);
    write_pem(dir.path(), "key.pem", &other_key);
    let config = write_pem(dir.path(), "floe.toml", format!("[server]\n{TLS_PORTS}\n{TLS_FILES}").as_bytes());
    let out = run_bounded(Command::new(env!("CARGO_BIN_EXE_floe")).arg("check-config").arg(&config), WAIT);
    assert_eq!(out.code, Some(64), "{}", out.stderr);
    let needle = format!("{}:5: tls.cert:", config.display());
    assert!(out.stderr.contains(&needle) && out.stderr.contains("do not go together"), "{}", out.stderr);
}

/// curl holding a TLS listener connection, writing what it gets to a file.
fn held_listener(addr: SocketAddr, ca: &Path, out: &Path) -> KillOnDrop {
    let child = Command::new("curl")
        .args(["-sS", "--http1.1", "--max-time", "120", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("localhost:{}:{}", addr.port(), addr.ip()))
        .arg("-o")
        .arg(out)
        .arg(format!("https://localhost:{}/live.mp3", addr.port()))
        .stdin(Stdio::null())
        .spawn()
        .expect("curl is installed");
    KillOnDrop(child)
}
