//! YP directory listing against a fake directory speaking Icecast's yp-cgi
//! protocol: public mounts are added with their details, touched with the
//! current title and listener count, and removed when their source leaves;
//! private mounts are never sent; a refusal is logged with its message.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use crate::support::*;

type Requests = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// A directory on 127.0.0.1 that records every form it is sent and answers
/// as dir.xiph.org does: a SID and a touch interval of 1 s for an `add`,
/// except for streams named "Refused"; after three touches it forgets a
/// SID (as a directory does when it expires one), so the fourth is refused.
fn fake_directory() -> (SocketAddr, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let requests: Requests = Arc::default();
    let seen = requests.clone();
    std::thread::spawn(move || {
        let mut touches: HashMap<String, usize> = HashMap::new();
        for (n, sock) in listener.incoming().take(1000).enumerate() {
            let Ok(sock) = sock else { continue };
            sock.set_read_timeout(Some(WAIT)).unwrap();
            let mut reader = BufReader::new(sock);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let mut form = parse_form(&String::from_utf8_lossy(&body));
            let answer = match (form.get("action").map(String::as_str), form.get("sn").map(String::as_str)) {
                (Some("add"), Some("Refused")) => "YPResponse: 0\r\nYPMessage: Stream name not allowed\r\n".into(),
                (Some("add"), _) => {
                    // The SID handed out, kept with the request for the test.
                    form.insert("answered_sid".into(), format!("sid-{n}"));
                    format!("YPResponse: 1\r\nYPMessage: Added\r\nSID: sid-{n}\r\nTouchFreq: 1\r\n")
                }
                (Some("touch"), _) => {
                    let count = touches.entry(form.get("sid").cloned().unwrap_or_default()).or_default();
                    *count += 1;
                    if *count > 3 {
                        form.insert("refused".into(), "1".into());
                        "YPResponse: 0\r\nYPMessage: SID not found\r\n".into()
                    } else {
                        "YPResponse: 1\r\nYPMessage: OK\r\n".into()
                    }
                }
                _ => "YPResponse: 1\r\nYPMessage: OK\r\n".into(),
            };
            seen.lock().unwrap().push(form);
            let mut sock = reader.into_inner();
            let _ = write!(sock, "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n{answer}\r\n");
        }
    });
    (addr, requests)
}

fn parse_form(body: &str) -> HashMap<String, String> {
    let decode = |text: &str| {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' if i + 2 < bytes.len() => {
                    out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap_or(b'?'));
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    body.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

fn sent(requests: &Requests, action: &str) -> Vec<HashMap<String, String>> {
    requests.lock().unwrap().iter().filter(|f| f.get("action").is_some_and(|a| a == action)).cloned().collect()
}

#[test]
fn public_mounts_are_listed_touched_and_removed_at_the_end() {
    let (directory, requests) = fake_directory();
    let rest = format!("[[directory]]\nurl = \"http://{directory}/cgi-bin/yp-cgi\"\ntimeout = 5\n");
    let server = TestServer::start(Opts { rest: Box::leak(rest.into_boxed_str()), ..Opts::default() });
    let public = ["-ice_public", "1", "-ice_name", "Floe FM", "-ice_genre", "Jazz & Blues"];
    let mut listed = FfmpegSource::start(&server, "/public.mp3", MP3, "sine=frequency=440", "1", &public);
    let second = ["-ice_public", "1", "-ice_name", "Second"];
    let _second = FfmpegSource::start(&server, "/second.mp3", MP3, "sine=frequency=440", "1", &second);
    let _private = FfmpegSource::sine(&server, "/private.mp3", MP3);
    let refused = ["-ice_public", "1", "-ice_name", "Refused"];
    let _refused = FfmpegSource::start(&server, "/refused.mp3", MP3, "sine=frequency=440", "1", &refused);
    server.wait_live("/private.mp3");

    // The SIDs the directory gave Floe FM, oldest first.
    let floe_fm = || -> Vec<String> {
        sent(&requests, "add").into_iter().filter(|f| f["sn"] == "Floe FM").map(|f| f["answered_sid"].clone()).collect()
    };
    eventually("the public mount is added", WAIT, || !floe_fm().is_empty());
    let add = sent(&requests, "add").into_iter().find(|f| f["sn"] == "Floe FM").unwrap();
    assert_eq!(add["genre"], "Jazz & Blues");
    assert_eq!(add["type"], "audio/mpeg");
    assert_eq!(add["listenurl"], server.url("/public.mp3"));
    eventually("the refusal is logged with the directory's message", WAIT, || {
        server.log().contains("Stream name not allowed")
    });

    assert_eq!(server.admin("/admin/metadata?mount=/public.mp3&mode=updinfo&song=Take+Five").status, 200);
    let _listener = Listener::connect(&server, "/public.mp3", &[]);
    eventually("a touch carries the title and the listener", WAIT, || {
        let sids = floe_fm();
        sent(&requests, "touch")
            .iter()
            .any(|f| sids.contains(&f["sid"]) && f["st"] == "Take Five" && f["listeners"] == "1")
    });
    eventually("a stream the directory forgot is added again", WAIT, || floe_fm().len() >= 2);
    assert!(sent(&requests, "touch").iter().any(|f| f.contains_key("refused")), "after a refused touch");

    listed.stop();
    eventually("the mount is removed when its source leaves", WAIT, || {
        let latest = floe_fm().pop().unwrap();
        sent(&requests, "remove").iter().any(|f| f["sid"] == latest)
    });
    // At shutdown the server takes its remaining listing off.
    eventually("the second public mount is listed", WAIT, || {
        sent(&requests, "add").iter().any(|f| f["sn"] == "Second")
    });
    let mut server = server;
    assert!(server.terminate().is_some_and(|status| status.success()));
    let second = sent(&requests, "add").into_iter().rfind(|f| f["sn"] == "Second").unwrap();
    assert!(sent(&requests, "remove").iter().any(|f| f["sid"] == second["answered_sid"]), "removed at shutdown");
    let all = requests.lock().unwrap().clone();
    assert!(
        all.iter().all(|f| f.get("listenurl").is_none_or(|u| !u.ends_with("/private.mp3"))),
        "a private mount is never sent: {all:?}"
    );
}
