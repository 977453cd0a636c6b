//! The door every request passes: who the client is (the peer, or the
//! address a trusted proxy forwards for) and whether `[access]` lets it
//! in; and, at accept, the per-address connection cap.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use crate::access::{client_addr, PerIpSlot};
use crate::http::request::Request;
use crate::http::response::Response;
use crate::http::status::Refusal;
use crate::state::AppState;

/// The client this request is from, if the server's lists let it in.
pub fn admit(req: &Request, peer: SocketAddr, state: &AppState) -> Result<SocketAddr, Response> {
    let access = &state.config.get().access;
    let client = client_addr(peer, req.header("Forwarded"), req.header("X-Forwarded-For"), &access.trusted_proxies);
    match access.rules.check(client.ip(), req.header("User-Agent")) {
        Ok(()) => Ok(client),
        Err(refusal) => {
            state.stats.access_refusals.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%client, %refusal, "request refused by [access]");
            Err(refusal.response())
        }
    }
}

/// A connection from `peer` may be served: `Err` when the address holds
/// `max_connections_per_ip` already (trusted proxies carry many clients and
/// are not counted). The slot lives as long as what the connection serves.
pub fn claim(peer: SocketAddr, state: &AppState) -> Result<Option<PerIpSlot>, ()> {
    let access = &state.config.get().access;
    let max = access.max_connections_per_ip;
    if max == 0 || access.trusted_proxies.iter().any(|net| net.contains(peer.ip())) {
        return Ok(None);
    }
    match state.per_ip.claim(peer.ip(), max) {
        Some(slot) => Ok(Some(slot)),
        None => {
            state.stats.access_refusals.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, max, "connection refused: too many from this address");
            Err(())
        }
    }
}
