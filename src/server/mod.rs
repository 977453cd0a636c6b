//! The network side: accept loops for the HTTP(S) ports and the SHOUTcast
//! v1 source port, per-connection TLS and head reading with limits, and
//! routing of each request to a source, a listener stream or a complete
//! response.

mod conn;
mod gate;
mod rewind;
mod routes;
mod service;

pub use conn::Speaks;
pub use routes::{route, stream_target, Route};

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::state::AppState;

/// Sockets bound by the caller (so tests can bind port 0).
pub struct Acceptors {
    /// The HTTP ports, each with what it speaks (HTTP, HTTPS or both).
    pub http: Vec<(TcpListener, Speaks)>,
    pub shoutcast: Option<TcpListener>,
}

/// Open connections beyond listeners and sources: status requests, admin,
/// connections still sending their head. Each holds a permit of this cap.
const MAX_PENDING_FACTOR: usize = 2;

/// Accept until `shutdown` flips, then wait (bounded) for connections to end.
pub async fn run(acceptors: Acceptors, state: AppState) {
    let capacity =
        (state.config.limits.clients + state.config.limits.sources).saturating_mul(MAX_PENDING_FACTOR) + 1024;
    let connections = Arc::new(Semaphore::new(capacity));
    let mut tasks = JoinSet::new();
    for (listener, speaks) in acceptors.http {
        tasks.spawn(accept_http(listener, speaks, state.clone(), connections.clone()));
    }
    if let Some(listener) = acceptors.shoutcast {
        tasks.spawn(accept_shoutcast(listener, state.clone()));
    }
    tasks.spawn(crate::admin::history::History::run(state.clone()));
    let mut shutdown = state.shutdown.clone();
    let _ = shutdown.wait_for(|&down| down).await;
    tasks.abort_all();
    // Listeners wait only on their mount and their control handle (to stay
    // small), so shutdown reaches them as a kill; they see the flag and end.
    for mount in state.mounts.all() {
        for listener in mount.listeners() {
            listener.control.kill();
        }
        mount.nudge();
    }
    // Connection tasks see the flag and end, returning their permits: once
    // every permit is back, every connection is gone (bounded, in case a peer
    // never lets a write finish).
    let all = u32::try_from(capacity).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(5), connections.acquire_many(all)).await;
}

async fn accept_http(listener: TcpListener, speaks: Speaks, state: AppState, connections: Arc<Semaphore>) {
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        state.stats.connections.fetch_add(1, Ordering::Relaxed);
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            drop(sock);
            continue;
        };
        let Ok(slot) = gate::claim(peer, &state) else {
            drop(sock);
            continue;
        };
        let _ = sock.set_nodelay(true);
        let (state, speaks) = (state.clone(), speaks.clone());
        tokio::spawn(async move {
            conn::accept(sock, peer, state, speaks, slot).await;
            drop(permit);
        });
    }
}

async fn accept_shoutcast(listener: TcpListener, state: AppState) {
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                state.stats.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(crate::source::serve_shoutcast(sock, peer, state.clone()));
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed on SHOUTcast port");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
