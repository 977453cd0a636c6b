//! Headless Chromium plays a mount from the status page's `<audio>` element.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// The status page lists the live mount with a player, and Chromium's
/// `<audio>` plays it: `currentTime` advances past one second.
#[test]
fn chromium_plays_mp3_from_status_page() {
    let server = TestServer::start(Opts::default());
    let _source = FfmpegSource::sine(&server, "/live.mp3", MP3);
    server.wait_live("/live.mp3");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/play.mjs");
    let out =
        run_bounded(Command::new("node").arg(script).arg(server.url("/")).arg("/live.mp3"), Duration::from_secs(60));
    assert!(out.status_ok, "chromium did not play: {} {}\n{}", out.stdout, out.stderr, server.log());
    let result: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON result");
    assert!(result["currentTime"].as_f64().unwrap() > 1.0);
    assert_eq!(result["paused"], false);
    assert!(result["src"].as_str().unwrap().ends_with("/live.mp3"));
}
