//! The network side: accept loops for the HTTP(S) ports and the SHOUTcast
//! v1 source port, per-connection TLS and head reading with limits, and
//! routing of each request to a source, a listener stream or a complete
//! response.

mod conn;
mod gate;
mod rewind;
pub(crate) mod routes;
mod service;

pub use conn::Speaks;
pub use routes::{route, stream_target, Route};

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::state::AppState;

/// Sockets bound by the caller (so tests can bind port 0).
pub struct Acceptors {
    /// The HTTP ports, each with what it speaks (HTTP, HTTPS or both).
    pub http: Vec<(TcpListener, Speaks)>,
    pub shoutcast: Option<TcpListener>,
}

/// Accept until `shutdown` flips, then wait (bounded) for connections to
/// end. After a binary upgrade has handed the sockets over, stop accepting
/// and serve the connections here for at most `upgrade_drain` first.
pub async fn run(acceptors: Acceptors, state: AppState) {
    let mut tasks = JoinSet::new();
    for (listener, speaks) in acceptors.http {
        tasks.spawn(accept_http(listener, speaks, state.clone()));
    }
    if let Some(listener) = acceptors.shoutcast {
        tasks.spawn(accept_shoutcast(listener, state.clone()));
    }
    tasks.spawn(crate::admin::history::History::run(state.clone()));
    tasks.spawn(crate::relay::run_all(state.clone()));
    // Not in `tasks`: at shutdown it takes the mounts off its directories.
    let directories = tokio::spawn(crate::directory::run_all(state.clone()));
    let mut shutdown = state.shutdown.clone();
    let mut handed_over = state.handed_over.clone();
    tokio::select! {
        _ = shutdown.wait_for(|&down| down) => {}
        Ok(_) = handed_over.wait_for(|&done| done) => {
            tasks.abort_all();
            // The new process lists the mounts now.
            directories.abort();
            while tasks.join_next().await.is_some() {}
            state.accepts_closed.send_replace(true);
            let drain = state.config.get().limits.upgrade_drain;
            tracing::info!("the new process accepts connections now; these end within {} s", drain.as_secs());
            let mut shutdown = state.shutdown.clone();
            tokio::select! {
                _ = state.connections.all_returned(drain) => {}
                _ = shutdown.wait_for(|&down| down) => {}
            }
        }
    }
    tasks.abort_all();
    // Listeners wait only on their mount (to stay small), so shutdown
    // reaches them as a kill in their entry; they see the flag and end.
    for mount in state.mounts.all() {
        for listener in mount.listeners() {
            listener.kill();
        }
        // Sources see the flag too, except at the end of an upgrade's
        // drain, where nothing sets it.
        if let Some(source) = mount.source() {
            source.kill();
        }
        mount.nudge();
    }
    // Connection and listener tasks see the flag and end, returning their
    // slots (a listener's once its last write is done and it is logged):
    // once every slot is back, every connection is gone. Bounded, in case a
    // peer never lets a write finish.
    let drain = Duration::from_secs(5);
    tokio::join!(state.connections.all_returned(drain), state.clients.all_returned(drain));
    // Directory removals are bounded; an aborted task ends at once.
    let _ = tokio::time::timeout(Duration::from_secs(3), directories).await;
}

async fn accept_http(listener: TcpListener, speaks: Speaks, state: AppState) {
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
        let Some(held) = hold(peer, &state) else {
            drop(sock);
            continue;
        };
        let _ = sock.set_nodelay(true);
        let (state, speaks) = (state.clone(), speaks.clone());
        tokio::spawn(conn::accept(sock, peer, state, speaks, held));
    }
}

/// A slot of `[limits] connections` and of the peer's
/// `max_connections_per_ip` for a connection just accepted on any port;
/// `None` (close it) when either is full.
fn hold(peer: SocketAddr, state: &AppState) -> Option<crate::slots::Held> {
    let connection = state.connections.try_claim()?;
    let per_ip = gate::claim(peer, state).ok()?;
    Some(crate::slots::Held { connection, per_ip })
}

async fn accept_shoutcast(listener: TcpListener, state: AppState) {
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                state.stats.connections.fetch_add(1, Ordering::Relaxed);
                // The same caps as the HTTP ports: this port is no way around them.
                let Some(held) = hold(peer, &state) else { continue };
                let state = state.clone();
                tokio::spawn(async move {
                    crate::source::serve_shoutcast(sock, peer, state).await;
                    drop(held);
                });
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed on SHOUTcast port");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
