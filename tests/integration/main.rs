//! Integration tests: the real `floe` binary on 127.0.0.1, driven by real
//! clients (ffmpeg, ffprobe, curl, headless Chromium) and raw sockets.

#[path = "../support/mod.rs"]
mod support;

mod access;
mod access_control;
mod adaptive;
mod admin;
mod bad_input;
mod bench;
mod browser;
mod churn;
mod clients;
mod codec_isolation;
mod config;
mod directory;
mod drills;
mod events;
mod icy;
mod ingest;
mod lifecycle;
mod listener_auth;
mod listeners;
mod memory_bounds;
mod metrics;
mod origin;
mod packaging;
mod parity;
mod recording;
mod relays;
mod reload;
mod renditions;
mod scale_out;
pub mod sources;
mod tls;
pub mod transcode;
mod upgrade;
mod url_auth;
