//! Tests of the configuration loader.

use super::super::{HlsConfig, HlsMode, StreamInfoOverride, TranscodeCodec, TranscodeContainer};
use super::hint::edit_distance;
use super::*;

mod relays;
mod security;

fn parse(text: &str) -> Config {
    match parse_str(text, "test.toml", &crate::transcode::ENCODERS) {
        Ok(config) => config,
        Err(err) => panic!("unexpected problems:\n{err}"),
    }
}

fn problems(text: &str) -> Vec<Problem> {
    match parse_str(text, "test.toml", &crate::transcode::ENCODERS) {
        Ok(config) => panic!("expected problems, parsed {config:?}"),
        Err(err) => err.problems,
    }
}

/// (line, key) pairs, for compact assertions.
fn where_(text: &str) -> Vec<(usize, String)> {
    problems(text).into_iter().map(|p| (p.line, p.key)).collect()
}

fn one(text: &str) -> Problem {
    let mut all = problems(text);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn empty_file_is_the_builtin_default() {
    let parsed = parse("");
    assert_eq!(format!("{parsed:?}"), format!("{:?}", Config::default()));
    let commented = parse("# nothing\n\n[server]\n[limits]\n[auth]\n[shoutcast]\n");
    assert_eq!(format!("{commented:?}"), format!("{:?}", Config::default()));
}

const FULL: &str = r#"
[server]
listen = ["127.0.0.1:9000", "[::1]:9001"]
hostname = "radio.example.org"
location = "Mars"
admin_email = "ops@example.org"
access_log = "/tmp/access.log"

[limits]
clients = 50
sources = 5
queue_size = 0x10_0000
burst_size = 0
header_timeout = 5
source_timeout = 6
client_timeout = 7
max_header_line = 1024
max_header_size = 2048
max_headers = 32

[auth]
source_password = "s3cret"
admin_user = "root"
admin_password = "adm1n"

[shoutcast]
enabled = true
port = 9100
mount = "/sc"

[[mount]]
name = "/live.mp3"
username = "dj"
password = "pw"
max_listeners = 0
fallback_mount = "/backup.mp3"
fallback_override = true
metaint = 8192
burst_size = 1000
queue_size = 4096
hidden = true
stream_name = "Name"
stream_description = "Desc"
stream_genre = "Genre"
stream_url = "https://example.org"
public = true

[[mount]]
name = "/backup.mp3"
"#;

#[test]
fn full_file_parses_to_expected_values() {
    let c = parse(FULL);
    assert_eq!(c.server.listen, vec![addr("127.0.0.1:9000"), addr("[::1]:9001")]);
    assert_eq!(c.server.hostname, "radio.example.org");
    assert_eq!(c.server.location, "Mars");
    assert_eq!(c.server.admin_email, "ops@example.org");
    assert_eq!(c.server.access_log.as_deref(), Some("/tmp/access.log"));
    let l = &c.limits;
    assert_eq!((l.clients, l.sources, l.queue_size, l.burst_size), (50, 5, 1 << 20, 0));
    assert_eq!(l.header_timeout, Duration::from_secs(5));
    assert_eq!(l.source_timeout, Duration::from_secs(6));
    assert_eq!(l.client_timeout, Duration::from_secs(7));
    assert_eq!((l.max_header_line, l.max_header_size, l.max_headers), (1024, 2048, 32));
    assert_eq!(c.auth.source_password, "s3cret");
    assert_eq!(c.auth.admin_user, "root");
    assert_eq!(c.auth.admin_password, "adm1n");
    assert!(!c.uses_default_passwords());
    assert_eq!(c.shoutcast.listen, Some(addr("127.0.0.1:9100")));
    assert_eq!(c.shoutcast.mount, "/sc");
    assert_eq!(c.mounts.len(), 2);
    let expected = MountConfig {
        name: "/live.mp3".into(),
        username: "dj".into(),
        password: Some("pw".into()),
        max_listeners: Some(0),
        fallback_mount: Some("/backup.mp3".into()),
        fallback_override: true,
        metaint: 8192,
        info: StreamInfoOverride {
            name: Some("Name".into()),
            description: Some("Desc".into()),
            genre: Some("Genre".into()),
            url: Some("https://example.org".into()),
            public: Some(true),
        },
        burst_size: Some(1000),
        queue_size: Some(4096),
        hidden: true,
        transcode: Vec::new(),
        derived_from: None,
        hls: HlsConfig::default(),
        access: crate::access::Rules::default(),
        listener_auth: None,
        intro: None,
        dump_file: None,
        dump_max_bytes: 0,
        dump_max_seconds: 0,
    };
    assert_eq!(*c.mounts[0], expected);
    assert_eq!(*c.mounts[1], MountConfig::dynamic("/backup.mp3"));
    assert_eq!(*c.mount("/live.mp3"), expected);
    assert_eq!(*c.mount("/other"), MountConfig::dynamic("/other"));
}

#[test]
fn mounts_keep_file_order() {
    let c = parse("[[mount]]\nname = \"/z\"\n[[mount]]\nname = \"/a\"\n[[mount]]\nname = \"/m\"\n");
    let names: Vec<_> = c.mounts.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["/z", "/a", "/m"]);
}

#[test]
fn several_problems_are_all_reported_with_lines_and_keys() {
    let text = "\
[limits]
queue_sise = 1
clients = \"many\"
[[mount]]
name = \"live\"
metaint = 70000
";
    let all = problems(text);
    let got: Vec<_> = all.iter().map(|p| (p.line, p.key.as_str())).collect();
    assert_eq!(got, [(2, "limits.queue_sise"), (3, "limits.clients"), (5, "mount[1].name"), (6, "mount[1].metaint")]);
    assert_eq!(all[0].message, "unknown key \"queue_sise\" (did you mean \"queue_size\"?)");
    assert_eq!(all[1].message, "expected an integer, found a string");
    assert!(all[2].message.starts_with("invalid mount name \"live\""), "{}", all[2].message);
    assert_eq!(all[3].message, "must be between 1 and 65535 bytes, got 70000");
    assert!(all.iter().all(|p| p.file == "test.toml"));
}

#[test]
fn display_is_one_line_per_problem_with_file_name() {
    let err = parse_str(
        "[limits]\nclients = 0\n\n[auth]\nadmin_password = \"\"\n",
        "/etc/floe.toml",
        &crate::transcode::ENCODERS,
    )
    .unwrap_err();
    let text = err.to_string();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "/etc/floe.toml:2: limits.clients: must be at least 1, got 0",
            "/etc/floe.toml:5: auth.admin_password: must not be empty",
        ]
    );
    let err: Box<dyn std::error::Error> = Box::new(err);
    assert!(err.to_string().contains("/etc/floe.toml"));
}

#[test]
fn syntax_error_reports_its_line() {
    let p = one("[server]\nhostname = \"ok\"\nlocation = \"unterminated\n");
    assert_eq!((p.line, p.key.as_str()), (3, ""));
    assert!(p.message.starts_with("TOML syntax error"), "{}", p.message);
    assert!(p.to_string().starts_with("test.toml:3: TOML syntax error"), "{p}");

    let p = one("[limits]\nclients = 5\nsources = \n");
    assert_eq!(p.line, 3);
    // A broken header confuses recovery; the syntax error still comes first.
    let p = &problems("[limits\nclients = 5\n")[0];
    assert_eq!((p.line, p.key.as_str()), (1, ""));
}

#[test]
fn syntax_errors_and_semantic_problems_together() {
    let got = where_("[limits]\nclients = 1\nclients = 2\nqueue_size = 1\nbogus = true\n");
    assert_eq!(got, [(3, String::new()), (4, "limits.queue_size".into()), (5, "limits.bogus".into())]);
    let p = &problems("[limits]\nclients = 1\nclients = 2\n")[0];
    assert_eq!(p.message, "TOML syntax error: duplicate key \"clients\"");
}

#[test]
fn unknown_sections_and_misplaced_keys() {
    let got = where_("hostname = \"x\"\n[serverr]\nlisten = \"1.2.3.4:5\"\n[limits]\nadmin_user = \"x\"\n");
    assert_eq!(got, [(1, "hostname".into()), (2, "serverr".into()), (5, "limits.admin_user".into())]);
    let all = problems("hostname = \"x\"\n[serverr]\n[limits]\nadmin_user = \"x\"\n");
    assert_eq!(all[0].message, "unknown key \"hostname\" (it belongs in [server])");
    assert_eq!(all[1].message, "unknown section [serverr] (did you mean \"server\"?)");
    assert_eq!(all[2].message, "unknown key \"admin_user\" (it belongs in [auth])");
    assert_eq!(one("[zzz]\n").message, "unknown section [zzz]");
    assert_eq!(one("[auth]\nx = 1\n").message, "unknown key \"x\"");
    let p = one("[[mount]]\nname = \"/a\"\nmetaint_ = 1\n");
    assert_eq!((p.line, p.key.as_str()), (3, "mount[1].metaint_"));
}

#[test]
fn wrong_types() {
    let cases = [
        ("[server]\nlisten = 8000\n", "expected a socket address or an array of them, found an integer"),
        ("[server]\nhostname = 1\n", "expected a string, found an integer"),
        ("[limits]\nclients = 1.5\n", "expected an integer, found a float"),
        ("[limits]\nheader_timeout = \"15s\"\n", "expected an integer, found a string"),
        ("[shoutcast]\nenabled = \"yes\"\n", "expected a boolean (true or false), found a string"),
        ("[[mount]]\nname = \"/a\"\nhidden = 1979-05-27\n", "expected a boolean (true or false), found a datetime"),
        ("server = 1\n", "expected a table, found an integer"),
        ("[server.listen]\n", "expected a socket address or an array of them, found a table"),
    ];
    for (text, message) in cases {
        assert_eq!(one(text).message, message, "{text}");
    }
    let p = one("[mount]\nname = \"/a\"\n");
    assert_eq!((p.line, p.key.as_str()), (1, "mount"));
    assert!(p.message.contains("[[mount]]"), "{}", p.message);
}

#[test]
fn ranges() {
    let bad = [
        "[limits]\nclients = 0\n",
        "[limits]\nsources = -1\n",
        "[limits]\nqueue_size = 4095\n",
        "[limits]\nburst_size = 2147483648\n",
        "[limits]\nheader_timeout = 0\n",
        "[limits]\nsource_timeout = 0\n",
        "[limits]\nclient_timeout = 0\n",
        "[limits]\nmax_headers = 0\n",
        "[limits]\nmax_header_line = 10\n",
        "[limits]\nclients = 99999999999999999999999\n",
        "[shoutcast]\nport = 65536\n",
        "[[mount]]\nname = \"/a\"\nmetaint = 0\n",
        "[[mount]]\nname = \"/a\"\nmetaint = 65536\n",
        "[[mount]]\nname = \"/a\"\nqueue_size = 100\n",
        "[[mount]]\nname = \"/a\"\nmax_listeners = -3\n",
    ];
    for text in bad {
        assert_eq!(problems(text).len(), 1, "{text}");
    }
    assert_eq!(one("[limits]\nclient_timeout = 0\n").message, "must be between 1 and 31536000 seconds, got 0");
    assert_eq!(one("[limits]\nqueue_size = 4095\n").message, "must be between 4096 and 1073741824 bytes, got 4095");
    let c = parse(concat!(
        "[limits]\nqueue_size = 4096\nburst_size = 65536\n",
        "clients = 1\nsources = 1\nheader_timeout = 1\n",
    ));
    assert_eq!((c.limits.queue_size, c.limits.burst_size), (4096, 65536));
    let c = parse("[[mount]]\nname = \"/a\"\nmetaint = 65535\nqueue_size = 4096\nburst_size = 1000000\n");
    assert_eq!(c.mounts[0].metaint, 65535);
    let p = one("[limits]\nmax_header_line = 4096\nmax_header_size = 2048\n");
    assert_eq!((p.line, p.key.as_str()), (2, "limits.max_header_line"));
}

#[test]
fn empty_strings() {
    for key in ["source_password", "admin_password", "admin_user"] {
        let p = one(&format!("[auth]\n{key} = \"\"\n"));
        assert_eq!((p.line, p.key), (2, format!("auth.{key}")));
    }
    let got = where_("[[mount]]\nname = \"/a\"\npassword = \"\"\nusername = \"\"\n");
    assert_eq!(got, [(3, "mount[1].password".into()), (4, "mount[1].username".into())]);
    assert_eq!(where_("[server]\nhostname = \"\"\n"), [(2, "server.hostname".into())]);
}

#[test]
fn addresses() {
    let c = parse("[server]\nlisten = \"127.0.0.1:8080\"\n");
    assert_eq!(c.server.listen, vec![addr("127.0.0.1:8080")]);
    let c = parse("[server]\nlisten = [\"[::]:8000\", \"0.0.0.0:8002\"]\n");
    assert_eq!(c.server.listen, vec![addr("[::]:8000"), addr("0.0.0.0:8002")]);
    let got = where_(concat!(
        "[server]\nlisten = [\n",
        "  \"localhost:8000\",\n  \"1.2.3.4\",\n  \"1.2.3.4:1\",\n  7,\n]\n",
    ));
    let key = "server.listen".to_string();
    assert_eq!(got, [(3, key.clone()), (4, key.clone()), (6, key.clone())]);
    assert_eq!(one("[server]\nlisten = []\n").message, "must list at least one address");
    assert!(one("[server]\nlisten = \"1.2.3.4:99999\"\n").message.starts_with("invalid socket address"));
}

#[test]
fn mount_names_and_fallbacks() {
    let got = where_(concat!(
        "[[mount]]\nname = \"/a\"\n[[mount]]\nname = \"/b\"\n",
        "[[mount]]\nname = \"/a\"\n[[mount]]\nname = \"/a\"\n",
    ));
    assert_eq!(got, [(6, "mount[3].name".into()), (8, "mount[4].name".into())]);
    let all = problems("[[mount]]\nname = \"/a\"\n[[mount]]\nname = \"/a\"\n");
    assert_eq!(all[0].message, "duplicate mount name \"/a\" (first defined on line 2)");

    let p = one("[[mount]]\nname = \"/a\"\nfallback_mount = \"/a\"\n");
    assert_eq!((p.line, p.key.as_str()), (3, "mount[1].fallback_mount"));
    assert_eq!(p.message, "a mount cannot fall back to itself");
    let p = one("[[mount]]\nname = \"/a\"\nfallback_mount = \"/../x\"\n");
    assert_eq!((p.line, p.key.as_str()), (3, "mount[1].fallback_mount"));
    let got = where_("[[mount]]\nname = \"/\"\nfallback_mount = \"/\"\n");
    assert_eq!(got, [(2, "mount[1].name".into()), (3, "mount[1].fallback_mount".into())]);
    assert_eq!(problems("[[mount]]\nname = \"/\"\nfallback_mount = \"/b\"\n")[0].key, "mount[1].name");

    let p = one("[[mount]]\nname = \"/a\"\n\n[[mount]]\nmetaint = 1\n");
    assert_eq!((p.line, p.key.as_str()), (4, "mount[2]"));
    assert_eq!(p.message, "missing required key \"name\"");
    assert_eq!(one("[shoutcast]\nmount = \"stream\"\n").key, "shoutcast.mount");
    let p = one("mount = [1]\n");
    assert_eq!((p.line, p.key.as_str(), p.message.as_str()), (1, "mount[1]", "expected a table, found an integer"));
}

const TRANSCODE_HEAD: &str = "[[mount]]\nname = \"/a\"\n[[mount.transcode]]\nname = \"/a.x\"\n";

/// One problem with a rendition of `body` (lines after TRANSCODE_HEAD's four).
fn transcode_problem(body: &str) -> Problem {
    one(&format!("{TRANSCODE_HEAD}{body}"))
}

#[test]
fn transcode_tables() {
    let c = parse(&format!(
        "{TRANSCODE_HEAD}codec = \"he-aac\"\non_demand = true\nmax_listeners = 3\n\
         fallback_mount = \"/b.aac\"\nfallback_override = true\n\
         [[mount.transcode]]\nname = \"/a.webm\"\ncodec = \"opus\"\ncontainer = \"webm\"\n"
    ));
    let he = &c.mount("/a").transcode[0];
    assert_eq!((he.codec, he.bitrate, he.container, he.on_demand), (TranscodeCodec::HeAac, 48, None, true));
    let webm = &c.mount("/a").transcode[1];
    assert_eq!((webm.codec, webm.container), (TranscodeCodec::Opus, Some(TranscodeContainer::WebM)));
    // The rendition's own mount carries its listener settings.
    let derived = c.mount("/a.x");
    assert_eq!(derived.derived_from.as_deref(), Some("/a"));
    assert_eq!(derived.max_listeners, Some(3));
    assert_eq!(derived.fallback_mount.as_deref(), Some("/b.aac"));
    assert!(derived.fallback_override);
    assert_eq!(c.mount("/a.webm").fallback_mount, None);

    // The encoders' own rules, reported on the rendition's table.
    let p = transcode_problem("codec = \"he-aac\"\nsample_rate = 22050\n");
    assert_eq!((p.line, p.key.as_str()), (3, "mount[1].transcode[1]"));
    assert!(p.message.contains("HE-AAC sample rate 22050"), "{}", p.message);
    let p = transcode_problem("codec = \"he-aac\"\nchannels = 1\nbitrate = 96\n");
    assert!(p.message.contains("HE-AAC bitrate 96"), "{}", p.message);
    let p = transcode_problem("codec = \"mp3\"\nbitrate = 100\n");
    assert!(p.message.contains("MP3 bitrate 100"), "{}", p.message);
    let p = transcode_problem("codec = \"opus\"\nsample_rate = 44100\n");
    assert!(p.message.contains("48000"), "{}", p.message);
    let p = transcode_problem("codec = \"vorbis\"\ncontainer = \"webm\"\n");
    assert!(p.message.contains("Vorbis cannot be served in the WebM container"), "{}", p.message);
    let p = transcode_problem("codec = \"mp3\"\ncontainer = \"ogg\"\n");
    assert_eq!((p.line, p.key.as_str()), (6, "mount[1].transcode[1].container"));
    let p = transcode_problem("codec = \"opus\"\ncontainer = \"mkv\"\n");
    assert_eq!((p.line, p.key.as_str()), (6, "mount[1].transcode[1].container"));
    let p = transcode_problem("codec = \"flac\"\n");
    assert_eq!(p.message, "unknown codec \"flac\": expected mp3, aac, he-aac, opus or vorbis");
    let p = transcode_problem("codec = \"mp3\"\nfallback_mount = \"/a.x\"\n");
    assert_eq!((p.line, p.key.as_str()), (6, "mount[1].transcode[1].fallback_mount"));
    let p = transcode_problem("codec = \"mp3\"\non_demand = 1\n");
    assert_eq!(p.key, "mount[1].transcode[1].on_demand");
    let p = one("[[mount]]\nname = \"/a\"\n[[mount.transcode]]\nname = \"/a\"\ncodec = \"mp3\"\n");
    assert!(p.message.contains("is already a mount"), "{}", p.message);
}

#[test]
fn shoutcast_port_defaults() {
    let sc = |text: &str| parse(text).shoutcast.listen;
    assert_eq!(sc(""), Some(addr("0.0.0.0:8001")));
    assert_eq!(sc("[server]\nlisten = \"127.0.0.1:9000\"\n"), Some(addr("127.0.0.1:9001")));
    assert_eq!(sc("[server]\nlisten = [\"[::1]:7000\", \"0.0.0.0:1\"]\n"), Some(addr("[::1]:7001")));
    assert_eq!(sc("[server]\nlisten = \"127.0.0.1:0\"\n"), Some(addr("127.0.0.1:0")));
    assert_eq!(sc("[server]\nlisten = \"10.0.0.1:9000\"\n[shoutcast]\nport = 0\n"), Some(addr("10.0.0.1:0")));
    assert_eq!(sc("[server]\nlisten = \"10.0.0.1:9000\"\n[shoutcast]\nport = 1234\n"), Some(addr("10.0.0.1:1234")));
    assert_eq!(sc("[shoutcast]\nenabled = false\nport = 1234\n"), None);
    assert_eq!(sc("[server]\nlisten = \"0.0.0.0:65535\"\n[shoutcast]\nenabled = false\n"), None);
    let p = one("[server]\nlisten = \"0.0.0.0:65535\"\n");
    assert_eq!((p.line, p.key.as_str()), (2, "shoutcast.port"));
    let p = one("[shoutcast]\nport = 70000\n");
    assert_eq!((p.line, p.key.as_str()), (2, "shoutcast.port"));
    assert_eq!(parse("[shoutcast]\nmount = \"/sc.mp3\"\n").shoutcast.mount, "/sc.mp3");
}

#[test]
fn problems_are_sorted_by_line_across_sections() {
    // Keys are stored sorted, not in file order; problems still come out by line.
    let got = where_("[shoutcast]\nport = -1\n[auth]\nzz = 1\n[limits]\nsources = 0\naa = 1\n");
    let lines: Vec<_> = got.iter().map(|g| g.0).collect();
    assert_eq!(lines, [2, 4, 6, 7]);
}

#[test]
fn load_file_reads_and_names_the_file() {
    let dir = std::env::temp_dir().join(format!("floe-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("floe.toml");
    std::fs::write(&path, "[limits]\nclients = 7\n").unwrap();
    assert_eq!(load_file(&path, &crate::transcode::ENCODERS).unwrap().limits.clients, 7);
    std::fs::write(&path, "[limits]\nclients = 0\n").unwrap();
    let text = load_file(&path, &crate::transcode::ENCODERS).unwrap_err().to_string();
    assert_eq!(text, format!("{}:2: limits.clients: must be at least 1, got 0", path.display()));
    std::fs::remove_dir_all(&dir).unwrap();

    let err = load_file(&dir.join("missing.toml"), &crate::transcode::ENCODERS).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    let p = &err.problems[0];
    assert_eq!((p.line, p.key.as_str()), (0, ""));
    assert!(p.file.ends_with("missing.toml"));
    assert!(err.to_string().contains("missing.toml:0: cannot read configuration file"), "{err}");
}

#[test]
fn integer_forms() {
    let c = parse("[limits]\nclients = 0o17\nsources = 0b101\nmax_headers = +40\n");
    assert_eq!((c.limits.clients, c.limits.sources, c.limits.max_headers), (15, 5, 40));
}

#[test]
fn spelling_hints() {
    assert_eq!(edit_distance("queue_sise", "queue_size"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(did_you_mean("metaint", &["metaint"]), " (did you mean \"metaint\"?)");
    assert_eq!(did_you_mean("xyz", &["metaint"]), "");
}

#[test]
fn example_config_parses_cleanly() {
    let c = parse(include_str!("../../../mounts.example.toml"));
    // Two mounts plus the three renditions of /live.mp3.
    assert_eq!(c.mounts.len(), 5);
    assert_eq!(c.mount("/live-64.aac").derived_from.as_deref(), Some("/live.mp3"));
    assert_eq!(c.mount("/live.mp3").transcode.len(), 3);
    let live = c.mount("/live.mp3");
    assert_eq!(live.username, "dj");
    assert!(live.password.is_some());
    assert_eq!(live.fallback_mount.as_deref(), Some("/backup.mp3"));
    assert!(live.fallback_override);
    assert_eq!(c.mounts[1].name, "/backup.mp3");
    assert!(!c.uses_default_passwords());
    assert_eq!(format!("{:?}", c.limits), format!("{:?}", Limits::default()));
    assert_eq!(c.shoutcast.listen, Config::default().shoutcast.listen);
}

#[test]
fn example_config_documents_every_key() {
    let example = include_str!("../../../mounts.example.toml");
    for section in SECTIONS {
        let header = match section {
            "mount" => "[[mount]]".to_string(),
            "transcode" => "[[mount.transcode]]".to_string(),
            "variant" => "[[hls.variant]]".to_string(),
            "relay" => "[[relay]]".to_string(),
            "directory" => "[[directory]]".to_string(),
            _ => format!("[{section}]"),
        };
        assert!(example.contains(&header), "{header}");
        for key in section_keys(section)
            .into_iter()
            .filter(|k| !["transcode", "hls", "variant", "listener_auth", "sni"].contains(k))
        {
            let set = format!("\n{key} = ");
            let commented = format!("\n#{key} = ");
            assert!(example.contains(&set) || example.contains(&commented), "[{section}] {key}");
        }
    }
    assert!(example.contains("#[mount.listener_auth]\n#type = \"htpasswd\"\n#file = "));
    assert!(example.contains("#[[tls.sni]]\n#names = "), "[[tls.sni]] with its keys");
}

#[test]
fn hls_defaults_mount_overrides_and_renditions() {
    let c = parse_str(
        r#"
[hls]
mode = "always"
window_s = 600
[[mount]]
name = "/a.mp3"
[[mount.transcode]]
name = "/a.opus"
codec = "opus"
[mount.hls]
part_ms = 640
[[mount.hls.variant]]
codec = "aac"
bitrate = 96
[[mount.hls.variant]]
rendition = "/a.opus"
[[mount]]
name = "/b.mp3"
"#,
        "f.toml",
        &crate::transcode::ENCODERS,
    )
    .expect("valid");
    let a = c.mount("/a.mp3");
    assert_eq!(a.hls.mode, HlsMode::Always, "from [hls]");
    assert_eq!(a.hls.window, std::time::Duration::from_secs(600), "from [hls]");
    assert_eq!(a.hls.part, std::time::Duration::from_millis(640), "its own");
    let ids: Vec<&str> = a.hls.variants.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["aac-96", "opus-96"]);
    assert_eq!(a.hls.variants[1].rendition.as_deref(), Some("/a.opus"));
    assert_eq!(c.mount("/b.mp3").hls.variants.len(), 3, "the default ladder");
    assert_eq!(c.mount("/a.opus").hls.mode, HlsMode::Off, "renditions are not offered themselves");
    assert_eq!(c.mount("/dynamic.mp3").hls.mode, HlsMode::Always, "dynamic mounts take [hls]");
}

#[test]
fn hls_problems_are_reported() {
    let err = parse_str(
        r#"
[hls]
part_ms = 500
mode = "sometimes"
[[mount]]
name = "/a.mp3"
[[mount.transcode]]
name = "/a.aac"
codec = "aac"
[[mount.hls.variant]]
rendition = "/a.aac"
[[mount.hls.variant]]
codec = "opus"
"#,
        "f.toml",
        &crate::transcode::ENCODERS,
    )
    .expect_err("invalid");
    let text = err.to_string();
    assert!(text.contains("hls.part_ms: 500 is not a multiple of 320"), "{text}");
    assert!(text.contains("unknown mode \"sometimes\""), "{text}");
    assert!(text.contains("/a.aac cannot be a variant"), "{text}");
    assert!(text.contains("needs an AAC-LC variant"), "{text}");
}

/// The loader runs no codec: what the encoders accept comes from the rules
/// it is given, and their verdicts land on the rendition's or variant's table.
#[test]
fn encoder_rules_are_the_callers() {
    struct OnlyLow;
    impl EncoderRules for OnlyLow {
        fn rendition(&self, rendition: &crate::config::TranscodeConfig) -> Result<(), String> {
            (rendition.bitrate <= 64).then_some(()).ok_or_else(|| format!("{} kbit/s is too many", rendition.bitrate))
        }
        fn variant(&self, variant: &crate::config::HlsVariant) -> Result<(), String> {
            (variant.bitrate <= 64).then_some(()).ok_or_else(|| "variant too rich".to_string())
        }
    }
    let text = "[[mount]]\nname = \"/a\"\n[[mount.transcode]]\nname = \"/a.mp3\"\ncodec = \"mp3\"\nbitrate = 320\n\
                [[mount.hls.variant]]\ncodec = \"aac\"\nbitrate = 64\n[[mount.hls.variant]]\ncodec = \"opus\"\nbitrate = 96\n";
    let err = parse_str(text, "t.toml", &OnlyLow).unwrap_err();
    let found: Vec<_> = err.problems.iter().map(|p| (p.line, p.key.as_str(), p.message.as_str())).collect();
    assert_eq!(
        found,
        [(3, "mount[1].transcode[1]", "320 kbit/s is too many"), (10, "mount[1].hls.variant[2]", "variant too rich")]
    );
    // The same file under the real encoders' rules: 320 kbit/s MP3 is fine.
    assert!(parse_str(text, "t.toml", &crate::transcode::ENCODERS).is_ok());
}
