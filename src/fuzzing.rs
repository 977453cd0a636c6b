//! Entry points for the fuzz targets (`fuzz/`, built with `--features
//! fuzzing`): each hands outside bytes to the parsers that see them in the
//! server, the way the server does, so a target exercises shipped code and
//! nothing else. A panic, an abort or a sanitizer report is a bug; so is an
//! assertion below failing (each states what the parser promises).

use std::path::Path;

use bytes::BytesMut;

use crate::config::Limits;
use crate::format::{Format, Unit};

/// Split `data` into pieces the way reads would, driven by its own bytes,
/// so one input exercises incremental parsing at many cut points.
fn pieces(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let step = 1 + usize::from(data.first().copied().unwrap_or(0)) * 7;
    data.chunks(step)
}

/// A request head as the accept loop reads it: the end-of-head scan within
/// the limits, the parse, and what routing asks of it (path, queries,
/// headers, Basic credentials, the admin's metadata decoding).
pub fn request_head(data: &[u8]) {
    let limits = Limits::default();
    let Ok(Some(len)) = crate::http::request::scan_head(data, &limits) else { return };
    assert!(len <= data.len(), "the head ends inside the input");
    let Ok(req) = crate::http::request::Request::parse(&data[..len], limits.max_headers) else { return };
    let _ = crate::hls::serve::parse(&req.path);
    for name in ["mount", "song", "artist", "title", "charset", "mode", "id", "sid", "_HLS_msn"] {
        let _ = req.query(name);
        if let Some(raw) = req.query_raw(name) {
            let text = crate::mount::decode_with_charset(raw, req.query("charset").as_deref());
            let meta = crate::mount::Metadata::from_song(&text, None);
            let block = meta.icy_block();
            assert!(block.len() <= 1 + 255 * 16, "an ICY block fits its length byte");
        }
    }
    if let Some(header) = req.header("Authorization") {
        let _ = crate::auth::parse_basic(header);
    }
    let _ = crate::http::request::parse_query(req.target.split_once('?').map_or("", |(_, q)| q));
}

/// A SHOUTcast v1 login line and the header lines after it, as the
/// source port reads them (the mount it names checked, the stream's type
/// and details taken from the headers).
pub fn shoutcast_login(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line));
    let login = crate::source::parse_shoutcast_login(lines.next().unwrap_or(""), "/stream");
    assert!(login.mount.starts_with('/'), "a login names a mount path");
    let _ = crate::config::mount_name::check(&login.mount);
    let headers: Vec<(&str, &str)> = lines
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim(), value.trim()))
        .collect();
    let get = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v);
    let _ = crate::source::allowed_content_type(get("content-type").unwrap_or("audio/mpeg"));
    let _ = crate::mount::StreamInfo::from_headers(get);
}

/// A chunked request body, decoded read by read.
pub fn chunked_body(data: &[u8]) {
    let mut decoder = crate::http::chunked::ChunkedDecoder::new();
    let mut out = BytesMut::new();
    for piece in pieces(data) {
        match decoder.decode(piece, &mut out) {
            Ok(crate::http::chunked::Progress::Continue) => {}
            _ => break,
        }
    }
    assert!(out.len() <= data.len(), "decoding never makes bytes");
}

/// A source stream with inline ICY metadata (a relay's upstream), and the
/// metadata text itself.
pub fn icy_metadata(data: &[u8]) {
    let metaint = 1 + usize::from(data.first().copied().unwrap_or(0));
    let mut stripper = crate::source::icy_strip::IcyStripper::new(metaint);
    let mut audio = BytesMut::new();
    for piece in pieces(data) {
        for update in stripper.push(piece, &mut audio) {
            if let Some(title) = update.title {
                let _ = crate::mount::Metadata::from_song(&title, update.url.as_deref()).icy_block();
            }
        }
    }
    assert!(audio.len() <= data.len());
    let _ = crate::source::icy_strip::parse_icy_metadata(data);
}

/// Every framer (MP3 and ADTS sync, Ogg pages and header capture,
/// WebM/EBML, opaque) on the same bytes, read by read.
pub fn framers(data: &[u8]) {
    for format in [Format::Mp3, Format::Aac, Format::Ogg, Format::WebM, Format::Opaque] {
        let mut framer = format.framer();
        let mut units: Vec<Unit> = Vec::new();
        for piece in pieces(data) {
            framer.push(piece, &mut units);
        }
        let _ = framer.audio_info();
        let data_bytes: usize = units
            .iter()
            .map(|unit| match unit {
                Unit::Data { bytes, .. } => bytes.len(),
                Unit::Headers { .. } => 0,
            })
            .sum();
        assert!(data_bytes <= data.len(), "{format:?}: framing never makes stream bytes");
    }
}

/// A configuration file, and an Icecast one to import.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(error) = crate::config::parse_str(&text, "fuzz.toml", &crate::transcode::ENCODERS) {
        for problem in &error.problems {
            assert!(problem.line <= text.lines().count() + 1, "a problem's line is in the file");
        }
    }
    let _ = crate::import::import(&text, Path::new("/nonexistent"));
}

/// A relay's upstream answer head (HTTP or SHOUTcast's `ICY 200 OK`).
pub fn relay_answer(data: &[u8]) {
    crate::relay::fuzz_answer(data);
}

/// Source audio through the transcoder: each decoder (MP3, ADTS AAC, Ogg
/// with Vorbis, Opus or FLAC, and the Vorbis setup check), the PCM
/// sanitised, resampled and encoded as a rendition would be.
pub fn codecs(data: &[u8]) {
    crate::transcode::fuzz_codecs(data);
}

/// A whole request through the routing table of a running server's state:
/// source sniffing (which requests become sources, which listener streams)
/// and every answer the server gives itself, admin commands included. The
/// first byte's low bit adds the admin's credentials, so commands run
/// rather than stop at the login. Every answer's head must serialise with
/// one header per line: an outside string that smuggled a line break into
/// a header would be a response-splitting bug.
pub fn routes(data: &[u8]) {
    use std::sync::{Arc, OnceLock};

    use crate::server::routes::{route, stream_target, Route};

    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime =
        RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime"));
    let Some((&flags, rest)) = data.split_first() else { return };
    let limits = Limits::default();
    let Ok(Some(len)) = crate::http::request::scan_head(rest, &limits) else { return };
    let mut head = rest[..len].to_vec();
    if flags & 1 == 1 {
        // "admin:hackme", inserted before the blank line that ends the head.
        let at = head.len() - if head.ends_with(b"\r\n\r\n") { 2 } else { 1 };
        head.splice(at..at, b"Authorization: Basic YWRtaW46aGFja21l\r\n".iter().copied());
    }
    let Ok(req) = crate::http::request::Request::parse(&head, limits.max_headers) else { return };
    runtime.block_on(async {
        let text = "[auth]\nadmin_password = \"hackme\"\n\
                    [[mount]]\nname = \"/live.mp3\"\nfallback_mount = \"/backup.mp3\"\n\
                    [[mount]]\nname = \"/backup.mp3\"\n";
        let config = crate::config::parse_str(text, "fuzz.toml", &crate::transcode::ENCODERS).expect("valid");
        let (_shutdown, shutdown) = tokio::sync::watch::channel(false);
        let live = crate::config::LiveConfig::new(config, None);
        let state = crate::state::AppState::new(live, crate::access_log::AccessLog::default(), 8000, shutdown);
        let peer: std::net::SocketAddr = "127.0.0.1:40000".parse().expect("an address");
        let source = crate::mount::SourceInfo::new(
            "audio/mpeg".into(),
            crate::mount::StreamInfo { name: Some("Floe <\"&'>".into()), ..Default::default() },
            peer,
            Some("fuzz".into()),
        );
        let mount = state.mounts.get_or_create("/live.mp3");
        mount.attach_source(Arc::new(source)).expect("a free mount");
        mount.set_metadata(crate::mount::Metadata::from_song("A\r\nB - <t>", None));
        let streams = stream_target(&req, &state).is_some();
        match route(&req, peer, &state) {
            Route::Source => assert!(matches!(req.method.as_str(), "SOURCE" | "PUT")),
            Route::Stream(_) => assert!(streams, "routing and sniffing agree on streams"),
            Route::Respond(response, _) => {
                assert!(!streams, "a stream request is never answered as a page");
                let head = response.head_bytes();
                let text = String::from_utf8_lossy(&head);
                let (fields, rest) = text.split_once("\r\n\r\n").expect("a head ends with a blank line");
                assert!(rest.is_empty(), "nothing after the head: {text:?}");
                for line in fields.split("\r\n").skip(1) {
                    let header = line.split_once(": ").map(|(name, _)| name);
                    assert!(header.is_some_and(|name| !name.is_empty()), "a header line: {line:?}");
                    assert!(!line.contains(['\r', '\n']), "one header per line: {line:?}");
                }
            }
            Route::Adaptive(..) | Route::Events(_) => {}
        }
    });
}
