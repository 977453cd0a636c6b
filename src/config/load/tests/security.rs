//! The loader's TLS, access-list and listener-authentication tables.

use super::*;

#[test]
fn tls_needs_both_halves() {
    let p = one("[server]\ntls_listen = \"127.0.0.1:8443\"\n");
    assert_eq!((p.line, p.key.as_str()), (2, "server.tls_listen"));
    assert!(p.message.contains("[tls]"), "{p:?}");
    let p = problems("[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n").remove(0);
    assert_eq!((p.line, p.key.as_str()), (1, "tls"));
    assert!(p.message.contains("tls_listen"), "{p:?}");
    let p = one("[server]\ntls_listen = \"127.0.0.1:8443\"\n[tls]\ncert = \"c.pem\"\n");
    assert_eq!(p.key, "tls.key");
    // Files are resolved against the config file's directory and read now.
    let p = one("[server]\ntls_listen = \"127.0.0.1:8443\"\n[tls]\ncert = \"no-such-cert.pem\"\nkey = \"k.pem\"\n");
    assert_eq!((p.line, p.key.as_str()), (4, "tls.cert"));
    assert!(p.message.starts_with("no-such-cert.pem: cannot read"), "{p:?}");
    assert!(where_("[tls]\nkeyfile = \"k.pem\"\n").contains(&(2, "tls.keyfile".into())));
    let sni = "[[tls.sni]]\nnames = [\"radio.test\", \"bad name\"]\ncert = \"c.pem\"\n";
    let found = where_(sni);
    assert!(found.contains(&(2, "tls.sni[1].names".into())), "{found:?}");
    assert!(found.contains(&(1, "tls.sni[1]".into())), "names, cert and key are required: {found:?}");
}

#[test]
fn access_lists() {
    let c = parse(concat!(
        "[access]\nallow = [\"192.0.2.0/24\", \"2001:db8::/32\"]\ndeny = [\"192.0.2.66\"]\n",
        "deny_user_agents = [\"StreamRipper\"]\ntrusted_proxies = [\"127.0.0.1\"]\nmax_connections_per_ip = 20\n",
        "[[mount]]\nname = \"/vip.mp3\"\nallow = [\"10.0.0.0/8\"]\ndeny_user_agents = [\"curl\"]\n",
    ));
    assert_eq!(c.access.rules.allow.len(), 2);
    assert_eq!(c.access.rules.deny_user_agents, ["streamripper"]);
    assert_eq!(c.access.max_connections_per_ip, 20);
    assert_eq!(c.mount("/vip.mp3").access.allow, ["10.0.0.0/8".parse::<crate::access::Cidr>().unwrap()]);
    let got = where_("[access]\nallow = [\n  \"192.0.2.0/33\",\n  \"host.example\",\n]\ndeny = \"1.2.3.4\"\ndeny_user_agents = [\"\"]\n");
    let keys: Vec<(usize, &str)> = got.iter().map(|(l, k)| (*l, k.as_str())).collect();
    assert_eq!(keys, [(3, "access.allow"), (4, "access.allow"), (6, "access.deny"), (7, "access.deny_user_agents")]);
}

#[test]
fn listener_auth_files_are_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.htpasswd");
    std::fs::write(&good, "ann:5ebe2294ecd0e0f08eab7690d2a6ee69\n").unwrap();
    let bad = dir.path().join("bad.htpasswd");
    std::fs::write(&bad, "ann:$apr1$salt$hash\n").unwrap();
    let config = |file: &std::path::Path| {
        format!(
            "[[mount]]\nname = \"/a\"\n[mount.listener_auth]\ntype = \"htpasswd\"\nfile = {:?}\n",
            file.display().to_string()
        )
    };
    let c = parse(&config(&good));
    assert_eq!(c.mount("/a").listener_auth, Some(crate::config::ListenerAuth::Htpasswd(good.clone())));
    let p = one(&config(&bad));
    assert_eq!((p.line, p.key.as_str()), (5, "mount[1].listener_auth.file"));
    assert!(p.message.contains("line 1") && p.message.contains("apr1"), "{p:?}");
    let p = one(&config(&dir.path().join("missing")));
    assert!(p.message.contains("cannot read"), "{p:?}");
    let p = one("[[mount]]\nname = \"/a\"\n[mount.listener_auth]\ntype = \"ldap\"\nfile = \"x\"\n");
    assert_eq!(p.key, "mount[1].listener_auth.type");
}

#[test]
fn url_listener_auth() {
    let c = parse(concat!(
        "[[mount]]\nname = \"/paid\"\n[mount.listener_auth]\ntype = \"url\"\n",
        "listener_add = \"http://127.0.0.1:9000/add\"\nstream_auth = \"http://127.0.0.1:9000/src\"\n",
        "auth_header = \"X-Ok: yes\"\ntimelimit_header = \"X-Limit:\"\ntimeout = 2\non_error = \"allow\"\n",
        "username = \"floe\"\npassword = \"\"\n",
    ));
    let Some(crate::config::ListenerAuth::Url(auth)) = &c.mount("/paid").listener_auth else { panic!("url auth") };
    assert_eq!(auth.listener_add.as_ref().unwrap().to_string(), "http://127.0.0.1:9000/add");
    assert_eq!(auth.auth_header, ("x-ok".to_string(), "yes".to_string()));
    assert_eq!(auth.timelimit_header, "x-limit");
    assert_eq!(auth.timeout, Duration::from_secs(2));
    assert!(auth.allow_on_error);
    // Renditions of the mount share its door.
    let c = parse(concat!(
        "[[mount]]\nname = \"/paid\"\n[mount.listener_auth]\ntype = \"url\"\nlistener_add = \"http://a/\"\n",
        "[[mount.transcode]]\nname = \"/paid.opus\"\ncodec = \"opus\"\n",
    ));
    assert!(c.mount("/paid.opus").listener_auth.is_some());

    let head = "[[mount]]\nname = \"/paid\"\n[mount.listener_auth]\ntype = \"url\"\n";
    let p = one(&format!("{head}listener_add = \"https://auth.example/\"\n"));
    assert_eq!((p.line, p.key.as_str()), (5, "mount[1].listener_auth.listener_add"));
    assert!(p.message.contains("plain http://"), "{p:?}");
    let p = one(&format!("{head}mount_add = \"http://a/\"\n"));
    assert!(p.message.contains("needs listener_add or stream_auth"), "{p:?}");
    let p = one(&format!("{head}listener_add = \"http://a/\"\non_error = \"maybe\"\n"));
    assert_eq!(p.key, "mount[1].listener_auth.on_error");
    assert!(where_(&format!("{head}listener_add = \"http://a/\"\nlistener_ad = \"http://a/\"\n"))
        .contains(&(6, "mount[1].listener_auth.listener_ad".into())));
}
