//! Requests for the adaptive streams: which asset a path names, and the
//! answer to it, waiting where LL-HLS and DASH say the server holds a
//! request (blocking playlist reload, a preload-hinted part, a segment
//! still being written).
//!
//! URLs (the mount keeps its own slashes):
//! - `/hls/<mount>/master.m3u8`
//! - `/hls/<mount>/<variant>/index.m3u8[?_HLS_msn=M[&_HLS_part=P]][&_HLS_skip=YES]`
//! - `/hls/<mount>/<variant>/init-<n>.mp4`, `seg-<msn>.m4s`, `part-<msn>.<p>.m4s`
//! - `/dash/<mount>/manifest.mpd` (over the same segments)

use std::time::{Duration, SystemTime};

use std::sync::Arc;

use bytes::Bytes;

use super::rendered::{Document, DocumentKey};
use super::window::Window;
use super::{mpd, playlist, HlsStream};
use crate::http::body::BodySender;
use crate::http::request::Request;
use crate::http::response::Response;
use crate::http::status::Status;

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asset {
    Master,
    Media { variant: String },
    Init { variant: String, number: usize },
    Segment { variant: String, msn: u64 },
    Part { variant: String, msn: u64, part: usize },
    Manifest,
}

impl Asset {
    /// The kinds of asset, as `/metrics` labels them.
    pub const KINDS: [&'static str; 6] = ["master", "media", "init", "segment", "part", "manifest"];

    /// This asset's index in `KINDS`.
    pub fn kind(&self) -> usize {
        match self {
            Asset::Master => 0,
            Asset::Media { .. } => 1,
            Asset::Init { .. } => 2,
            Asset::Segment { .. } => 3,
            Asset::Part { .. } => 4,
            Asset::Manifest => 5,
        }
    }
}

/// `(mount, asset)` for a path under `/hls/` or `/dash/`.
pub fn parse(path: &str) -> Option<(String, Asset)> {
    if let Some(rest) = path.strip_prefix("/dash/") {
        let mount = rest.strip_suffix("/manifest.mpd")?;
        return Some((format!("/{mount}"), Asset::Manifest));
    }
    let rest = path.strip_prefix("/hls/")?;
    if let Some(mount) = rest.strip_suffix("/master.m3u8") {
        return Some((format!("/{mount}"), Asset::Master));
    }
    let (before, file) = rest.rsplit_once('/')?;
    let (mount, variant) = before.rsplit_once('/')?;
    let variant = variant.to_string();
    let number = |s: &str| s.parse::<u64>().ok().filter(|_| !s.starts_with('+') && !s.is_empty());
    let asset = if file == "index.m3u8" {
        Asset::Media { variant }
    } else if let Some(n) = file.strip_prefix("init-").and_then(|f| f.strip_suffix(".mp4")) {
        Asset::Init { variant, number: usize::try_from(number(n)?).ok()? }
    } else if let Some(n) = file.strip_prefix("seg-").and_then(|f| f.strip_suffix(".m4s")) {
        Asset::Segment { variant, msn: number(n)? }
    } else if let Some(n) = file.strip_prefix("part-").and_then(|f| f.strip_suffix(".m4s")) {
        let (msn, part) = n.split_once('.')?;
        Asset::Part { variant, msn: number(msn)?, part: usize::try_from(number(part)?).ok()? }
    } else {
        return None;
    };
    Some((format!("/{mount}"), asset))
}

/// The answer: complete, or a segment to stream part by part as it is written.
pub enum Reply {
    Full(Response),
    Streaming { variant: usize, msn: u64 },
}

/// How long a request for media that does not exist yet may wait: the
/// first part of a starting ladder, or the next part announced.
const FIRST_MEDIA_WAIT: Duration = Duration::from_secs(8);

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const MEDIA: &str = "audio/mp4";
/// Media never changes under its URL (numbers follow the clock, never reused).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Playlists and manifests change with every part.
const LIVE: &str = "public, max-age=1";

fn text(status: Status, message: &str) -> Reply {
    Reply::Full(Response::text(status, message))
}

/// Answer `asset` of `stream`.
pub async fn answer(req: &Request, stream: &HlsStream, mount: &str, asset: Asset) -> Reply {
    stream.touch();
    match asset {
        Asset::Master => {
            let all_known = |w: &Window| w.variants.iter().all(|v| v.track.is_some());
            stream.wait_until(FIRST_MEDIA_WAIT, all_known).await;
            let master = stream.document(DocumentKey::Master, playlist::master);
            let lists_variants = master.body.windows(18).any(|w| w == b"#EXT-X-STREAM-INF:");
            if !lists_variants {
                return text(Status::ServiceUnavailable, "The stream is starting: retry in a moment");
            }
            Reply::Full(document(req, PLAYLIST, &master, LIVE))
        }
        Asset::Media { variant } => media_playlist(req, stream, &variant).await,
        Asset::Manifest => {
            stream.wait_until(FIRST_MEDIA_WAIT, |w| w.variants.iter().any(|v| !v.segments.is_empty())).await;
            let prefix = format!("/hls{mount}");
            let window_secs = stream.config.window.as_secs();
            // Not kept: it tells the time (UTCTiming), so it is new every time.
            let body = stream.read(|w| mpd::manifest(w, &prefix, window_secs, SystemTime::now()));
            Reply::Full(document(req, "application/dash+xml", &Document::new(body), LIVE))
        }
        Asset::Init { variant, number } => {
            let Some(index) = variant_index(stream, &variant) else { return text(Status::NotFound, "No such variant") };
            let init = stream.read(|w| w.variants[index].inits.get(number).cloned());
            match init {
                Some(bytes) => Reply::Full(media(bytes)),
                None => text(Status::NotFound, "No such init segment"),
            }
        }
        Asset::Segment { variant, msn } => {
            let Some(index) = variant_index(stream, &variant) else { return text(Status::NotFound, "No such variant") };
            // The next segment may be asked for early (DASH's availabilityTimeOffset).
            stream
                .wait_until(FIRST_MEDIA_WAIT, |w| w.variants[index].segment(msn).is_some() || !upcoming(w, index, msn))
                .await;
            let found = stream.read(|w| w.variants[index].segment(msn).map(|s| (s.complete, s.whole.clone())));
            match found {
                Some((true, bytes)) => Reply::Full(media(bytes)),
                Some((false, _)) => Reply::Streaming { variant: index, msn },
                None => text(Status::NotFound, "Segment not in the window"),
            }
        }
        Asset::Part { variant, msn, part } => {
            let Some(index) = variant_index(stream, &variant) else { return text(Status::NotFound, "No such variant") };
            let have = move |w: &Window| {
                w.variants[index].segment(msn).and_then(|s| s.parts.get(part).map(|p| p.bytes.clone()))
            };
            // A preload-hinted part is held until it exists.
            stream.wait_until(FIRST_MEDIA_WAIT, |w| have(w).is_some() || !upcoming(w, index, msn)).await;
            match stream.read(have) {
                Some(bytes) => Reply::Full(media(bytes)),
                None => text(Status::NotFound, "Part not in the window"),
            }
        }
    }
}

/// Could segment `msn` of a variant still come (it is the one being written
/// or the next)? Requests for it wait; anything else is a 404 at once.
fn upcoming(window: &Window, index: usize, msn: u64) -> bool {
    let newest = window.variants[index].segments.back().map(|s| s.msn);
    window.running() && newest.is_none_or(|n| msn >= n && msn <= n + 1)
}

fn variant_index(stream: &HlsStream, id: &str) -> Option<usize> {
    stream.read(|w| w.variants.iter().position(|v| v.id == id))
}

fn media(bytes: Bytes) -> Response {
    Response::new(Status::Ok, MEDIA, bytes).with_header("Cache-Control", IMMUTABLE)
}

/// Blocking playlist reload (`_HLS_msn`, `_HLS_part`) and delta updates
/// (`_HLS_skip`), with the answers RFC 8216bis asks for: 400 for malformed
/// or far-future requests, 503 when the part does not come in time.
async fn media_playlist(req: &Request, stream: &HlsStream, variant: &str) -> Reply {
    let Some(index) = variant_index(stream, variant) else { return text(Status::NotFound, "No such variant") };
    let number = |name: &str| req.query(name).map(|v| v.parse::<u64>().map_err(|_| ()));
    let (msn, part) = match (number("_HLS_msn"), number("_HLS_part")) {
        (Some(Err(())), _) | (_, Some(Err(()))) => {
            return text(Status::BadRequest, "_HLS_msn and _HLS_part must be numbers")
        }
        (None, Some(_)) => return text(Status::BadRequest, "_HLS_part needs _HLS_msn"),
        (msn, part) => (msn.and_then(Result::ok), part.and_then(Result::ok)),
    };
    let skip = match req.query("_HLS_skip").as_deref() {
        None => false,
        Some("YES") | Some("v2") => true,
        Some(_) => return text(Status::BadRequest, "_HLS_skip must be YES or v2"),
    };
    let target = stream.read(playlist::target_duration);
    if let Some(msn) = msn {
        let newest = stream.read(|w| w.variants[index].last_part().map(|(m, _)| m));
        if newest.is_some_and(|n| msn > n + 2) {
            return text(Status::BadRequest, "_HLS_msn is more than two segments ahead of the playlist");
        }
        let has = move |w: &Window| {
            let segment = w.variants[index].segment(msn);
            match part {
                Some(part) => {
                    segment.is_some_and(|s| s.parts.len() > part as usize || s.complete)
                        || w.variants[index].segments.back().is_some_and(|s| s.msn > msn)
                }
                None => {
                    segment.is_some_and(|s| s.complete)
                        || w.variants[index].segments.back().is_some_and(|s| s.msn > msn)
                }
            }
        };
        if !stream.wait_until(Duration::from_secs(3 * target), has).await {
            return text(Status::ServiceUnavailable, "The requested part did not come in time");
        }
    } else {
        // Players that do not speak LL-HLS (ffmpeg, older ones) give up on a
        // playlist with no whole segment, so a starting stream has them wait
        // for its first.
        stream.wait_until(FIRST_MEDIA_WAIT, |w| w.variants[index].segments.front().is_some_and(|s| s.complete)).await;
    }
    if stream.read(|w| w.variants[index].segments.is_empty()) {
        return text(Status::ServiceUnavailable, "The stream is starting: retry in a moment");
    }
    let key = DocumentKey::Media { variant: index, skip };
    let media = stream.document(key, |w| playlist::media(w, index, skip));
    Reply::Full(document(req, PLAYLIST, &media, LIVE))
}

/// A playlist or manifest: gzip when the client takes it, and an `ETag` so
/// an unchanged one costs a `304`.
fn document(req: &Request, content_type: &str, document: &Document, cache: &str) -> Response {
    let etag = &document.etag;
    if req.header("If-None-Match").is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag)) {
        return Response::new(Status::NotModified, content_type, Bytes::new())
            .with_header("ETag", etag)
            .with_header("Cache-Control", cache);
    }
    let gzip = req.header("Accept-Encoding").is_some_and(|a| a.split(',').any(|e| e.trim().starts_with("gzip")));
    let response = match document.gzipped().filter(|_| gzip) {
        Some(bytes) => Response::new(Status::Ok, content_type, bytes).with_header("Content-Encoding", "gzip"),
        None => Response::new(Status::Ok, content_type, document.body.clone()),
    };
    response.with_header("ETag", etag).with_header("Vary", "Accept-Encoding").with_header("Cache-Control", cache)
}

/// The head of a segment streamed as it is written.
pub fn streaming_head() -> Response {
    Response::new(Status::Ok, MEDIA, Bytes::new()).with_header("Cache-Control", IMMUTABLE)
}

/// Send segment `msn` of a variant into `body` part by part as it is
/// written (a DASH player asks for it early, by `availabilityTimeOffset`).
/// Returns the bytes sent.
pub async fn stream_segment(body: BodySender, stream: Arc<HlsStream>, variant: usize, msn: u64) -> u64 {
    let part_wait = Duration::from_micros(stream.read(|w| w.part_len) * 1_000_000 / 48_000 * 4);
    let (mut sent_parts, mut sent) = (0usize, 0u64);
    loop {
        let (parts, done) = stream.read(|w| match w.variants[variant].segment(msn) {
            Some(s) => (s.parts[sent_parts.min(s.parts.len())..].iter().map(|p| p.bytes.clone()).collect(), s.complete),
            None => (Vec::new(), true),
        });
        for part in parts {
            let len = part.len() as u64;
            if body.send(part).await.is_err() {
                return sent;
            }
            sent_parts += 1;
            sent += len;
        }
        if done {
            return sent;
        }
        let more =
            move |w: &Window| w.variants[variant].segment(msn).is_none_or(|s| s.complete || s.parts.len() > sent_parts);
        if !stream.wait_until(part_wait, more).await {
            // The stream stalled: end the segment where it stands.
            return sent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_assets() {
        let v = || "aac-64".to_string();
        assert_eq!(parse("/hls/live.mp3/master.m3u8"), Some(("/live.mp3".into(), Asset::Master)));
        assert_eq!(parse("/hls/a/b.mp3/aac-64/index.m3u8"), Some(("/a/b.mp3".into(), Asset::Media { variant: v() })));
        assert_eq!(
            parse("/hls/live.mp3/aac-64/init-2.mp4"),
            Some(("/live.mp3".into(), Asset::Init { variant: v(), number: 2 }))
        );
        assert_eq!(
            parse("/hls/live.mp3/aac-64/seg-916.m4s"),
            Some(("/live.mp3".into(), Asset::Segment { variant: v(), msn: 916 }))
        );
        assert_eq!(
            parse("/hls/live.mp3/aac-64/part-916.5.m4s"),
            Some(("/live.mp3".into(), Asset::Part { variant: v(), msn: 916, part: 5 }))
        );
        assert_eq!(parse("/dash/live.mp3/manifest.mpd"), Some(("/live.mp3".into(), Asset::Manifest)));
        for bad in [
            "/hls/live.mp3/aac-64/seg-x.m4s",
            "/hls/live.mp3/aac-64/seg-+1.m4s",
            "/hls/live.mp3/aac-64/part-1.m4s",
            "/hls/live.mp3/aac-64/other.txt",
            "/hls/master.m3u8x",
            "/dash/live.mp3/other.mpd",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn documents_compress_and_revalidate() {
        let req = |headers: &str| Request::parse(format!("GET /x HTTP/1.1\r\n{headers}\r\n").as_bytes(), 8).unwrap();
        let body = "#EXTM3U\n".repeat(200);
        let doc = Document::new(body.clone());
        let plain = document(&req(""), PLAYLIST, &doc, LIVE);
        assert_eq!(plain.body.len(), body.len());
        let etag = plain.headers.iter().find(|(k, _)| k == "ETag").unwrap().1.clone();
        let gzipped = document(&req("Accept-Encoding: br, gzip\r\n"), PLAYLIST, &doc, LIVE);
        assert!(gzipped.body.len() < body.len() / 4);
        assert!(gzipped.headers.iter().any(|(k, v)| k == "Content-Encoding" && v == "gzip"));
        let again = document(&req(&format!("If-None-Match: {etag}\r\n")), PLAYLIST, &doc, LIVE);
        assert_eq!((again.status, again.body.len()), (Status::NotModified, 0));
    }
}
