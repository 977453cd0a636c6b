//! Floe: an Icecast/SHOUTcast-compatible internet radio streaming server.
//!
//! Data flows one way, from source to listener:
//!
//! - [`server`] accepts connections, reads request heads within limits and
//!   routes each request: sources, listener streams, or complete responses.
//! - [`source`] ingests audio (`PUT`, `SOURCE`, SHOUTcast v1), decodes the
//!   transfer encoding, strips inline ICY metadata and hands bytes to a
//!   [`format`] framer, which re-chunks them on frame/page/cluster boundaries.
//! - [`mount`] holds each mount's bounded ring of chunks, its stream headers,
//!   metadata, source and listener table; `Mounts` is the registry.
//! - [`listener`] feeds one listener from its cursor in the ring, with ICY
//!   interleaving, the slow-listener policy and fallback moves.
//! - [`transcode`] decodes a source once and encodes renditions (MP3, AAC,
//!   Opus, Vorbis) into mounts of their own, on dedicated threads.
//! - [`admin`] is the Icecast-compatible admin API, status JSON and SHOUTcast
//!   pages; [`config`] loads and validates the TOML configuration.

pub mod access;
pub mod access_log;
pub mod admin;
pub mod auth;
pub mod client;
pub mod config;
pub mod directory;
pub mod dump;
pub mod escape;
pub mod events;
pub mod format;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod heap;
pub mod hls;
pub mod http;
pub mod import;
pub mod listener;
pub mod mount;
pub mod playlist;
pub mod relay;
pub mod reload;
pub mod server;
pub mod slots;
pub mod source;
pub mod state;
#[cfg(test)]
mod testutil;
pub mod timefmt;
pub mod tls;
pub mod transcode;
pub mod upgrade;
pub mod web;
