//! The loader's `[[relay]]`, `[master]` and `[[directory]]` tables.

use super::*;

#[test]
fn relays_are_read_and_checked() {
    let c = parse(
        r#"
[[relay]]
url = "http://origin.example:8000/live.mp3"
mount = "/live.mp3"
username = "relay"
password = "pw"
retry = 5

[[relay]]
url = "http://127.0.0.1:9000/b"
mount = "/b"
metadata = false
on_demand = true
"#,
    );
    assert_eq!(c.relays.len(), 2);
    assert_eq!(c.relays[0].url.host, "origin.example");
    assert_eq!(c.relays[0].url.target, "/live.mp3");
    assert_eq!(c.relays[0].retry, Duration::from_secs(5));
    assert!(c.relays[0].metadata && !c.relays[1].metadata);
    assert_eq!(c.relays[1].username, None);
    assert!(!c.relays[0].on_demand && c.relays[1].on_demand);
    let text = "[[relay]]\nurl = \"https://x/y\"\nmount = \"/a\"\n\n[[relay]]\nmount = \"/b\"\n\n[[relay]]\nurl = \"http://x/y\"\nmount = \"/b\"\n\n[[relay]]\nurl = \"http://x/z\"\nmount = \"/b\"\nmetdata = true\n";
    assert_eq!(
        where_(text),
        [
            (2, "relay[1].url".to_string()),
            (5, "relay[2]".to_string()),
            (14, "relay[4].mount".to_string()),
            (15, "relay[4].metdata".to_string())
        ]
    );
}

#[test]
fn a_master_is_read_and_checked() {
    let c = parse("[auth]\nrelay_password = \"r3lay\"\n\n[master]\nurl = \"http://origin:8000\"\npassword = \"pw\"\ninterval = 5\n");
    let master = c.master.expect("[master]");
    assert_eq!((master.url.host.as_str(), master.url.port), ("origin", 8000));
    assert_eq!((master.username.as_str(), master.password.as_str()), ("relay", "pw"));
    assert_eq!(master.interval, Duration::from_secs(5));
    assert!(master.metadata && !master.on_demand);
    assert_eq!((c.auth.relay_user.as_str(), c.auth.relay_password.as_deref()), ("relay", Some("r3lay")));
    assert!(parse("").master.is_none() && parse("").auth.relay_password.is_none());
    assert!(parse("[auth]\nrelay_password = \"hackme\"\nsource_password = \"a\"\nadmin_password = \"b\"\n")
        .uses_default_passwords());
    assert_eq!(
        where_("[master]\nurl = \"http://origin:8000\"\n\n[master.x]\n"),
        [(1, "master.password".to_string()), (4, "master.x".to_string())]
    );
    assert_eq!(where_("\n[master]\npassword = \"pw\"\nurl = \"ftp://x\"\n"), [(4, "master.url".to_string())]);
}

#[test]
fn directories_are_read_and_checked() {
    let c = parse("[[directory]]\nurl = \"http://dir.example/cgi-bin/yp-cgi\"\n\n[[directory]]\nurl = \"http://other:8080/yp\"\ntimeout = 3\n");
    assert_eq!(c.directories.len(), 2);
    assert_eq!(c.directories[0].url.target, "/cgi-bin/yp-cgi");
    assert_eq!(c.directories[0].timeout, Duration::from_secs(15));
    assert_eq!(c.directories[1].timeout, Duration::from_secs(3));
    assert_eq!(
        where_("[[directory]]\ntimeout = 3\n\n[[directory]]\nurl = \"https://x/y\"\n"),
        [(1, "directory[1]".to_string()), (5, "directory[2].url".to_string())]
    );
}
