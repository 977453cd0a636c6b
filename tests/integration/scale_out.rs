//! Scale-out with an ordinary HTTP cache: nginx's `proxy_cache` in front of
//! Floe's HLS and DASH fetches each segment from the origin once and serves
//! every later request itself, playlists stay fresh, and players play
//! through it. (Progressive streams scale out with relay trees instead:
//! tests/integration/relays.rs.)

use crate::support::*;

const VARIANT: &str = "/hls/live.mp3/aac-64";

/// Segment requests Floe has answered, from its Prometheus metrics.
fn origin_segment_requests(server: &TestServer) -> u64 {
    let metrics = server.admin("/metrics").text();
    let line = metrics.lines().find_map(|l| l.strip_prefix("floe_adaptive_requests_total{kind=\"segment\"} "));
    line.and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

#[test]
fn an_http_cache_serves_segments_once_fetched_and_players_play_through_it() {
    let server = TestServer::with_mounts("[hls]\nmode = \"always\"\n");
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let cache = CachingProxy::start(server.http);

    // Playlists may be cached for a second at most, as the origin says.
    let master = cache.get("/hls/live.mp3/master.m3u8");
    assert_eq!(master.status, 200, "{}", cache.log());
    assert_eq!(master.header("Cache-Control").as_deref(), Some("public, max-age=1"));
    let mut segments: Vec<String> = Vec::new();
    eventually("three whole segments in the playlist", WAIT, || {
        let playlist = cache.get(&format!("{VARIANT}/index.m3u8"));
        segments = playlist.text().lines().filter(|l| l.starts_with("seg-")).map(String::from).collect();
        segments.len() >= 3
    });

    // Ten listeners ask for each segment: the origin answers the first.
    let before = origin_segment_requests(&server);
    let (mut hits, mut requests) = (0, 0);
    for segment in &segments {
        for listener in 0..10 {
            let response = cache.get(&format!("{VARIANT}/{segment}"));
            assert_eq!(response.status, 200, "{segment}: {}", cache.log());
            assert_eq!(response.header("Cache-Control").as_deref(), Some("public, max-age=31536000, immutable"));
            let status = response.header("X-Cache-Status").unwrap_or_default();
            assert_eq!(status, if listener == 0 { "MISS" } else { "HIT" }, "{segment}, request {listener}");
            hits += usize::from(status == "HIT");
            requests += 1;
        }
    }
    assert_eq!(origin_segment_requests(&server) - before, segments.len() as u64, "one origin fetch per segment");
    println!("segments: {hits} of {requests} requests served from the cache");

    // Players get the live stream through the cache.
    for path in ["/hls/live.mp3/master.m3u8", "/dash/live.mp3/manifest.mpd"] {
        let errors = ffmpeg_decode(&format!("http://{}{path}", cache.http), 4);
        assert!(errors.trim().is_empty(), "{path} through nginx: {errors}");
    }
}
