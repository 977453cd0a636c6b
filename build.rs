//! Build script: the player libraries the status page uses for HLS and DASH
//! (hls.js, dash.js) come from npm (`web/package.json`, pinned by
//! `web/package-lock.json`) and are embedded in the binary, so Floe serves
//! them itself and nothing loads from the internet at run time.
//!
//! If they are not installed yet and npm is on the machine, `npm ci` fetches
//! them. Without npm the build still succeeds, with a warning: the page then
//! offers HLS only where the browser plays it natively.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (file served as, path in `web/node_modules`).
const PLAYERS: [(&str, &str); 2] =
    [("hls.min.js", "hls.js/dist/hls.min.js"), ("dash.all.min.js", "dashjs/dist/modern/umd/dash.all.min.js")];

fn main() {
    println!("cargo:rerun-if-changed=web/package-lock.json");
    println!("cargo:rerun-if-changed=build.rs");
    let web = Path::new("web");
    let installed = |p: &str| web.join("node_modules").join(p).is_file();
    if PLAYERS.iter().any(|(_, p)| !installed(p)) {
        install(web);
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for (name, path) in PLAYERS {
        let source = web.join("node_modules").join(path);
        println!("cargo:rerun-if-changed={}", source.display());
        let bytes = std::fs::read(&source).unwrap_or_else(|_| {
            println!(
                "cargo:warning=floe: {} is missing; the status page will play HLS natively only",
                source.display()
            );
            Vec::new()
        });
        std::fs::write(out.join(name), bytes).expect("write to OUT_DIR");
    }
}

/// `npm ci` in `web/`, when npm is available.
fn install(web: &Path) {
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error", "--ignore-scripts"])
        .current_dir(web)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => println!("cargo:warning=floe: npm ci in web/ failed ({status})"),
        Err(error) => {
            println!("cargo:warning=floe: npm not found ({error}); install Node.js and npm for the HLS/DASH players")
        }
    }
}
