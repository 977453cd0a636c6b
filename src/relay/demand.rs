//! On-demand relays (`on_demand = true`): a mount fed only while someone
//! listens. The mount stays known while it has no source, so a listener's
//! request (or an HLS/DASH request) for it is routed here: it wakes the
//! relay and waits, at most the header timeout, for the stream to start.
//! Once the mount and its renditions have had no listener for `IDLE`, the
//! relay disconnects and waits for the next one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::mount::{MountHandle, Mounts};
use crate::state::AppState;

/// How long a mount may go without a listener before its relay disconnects.
pub(super) const IDLE: Duration = Duration::from_secs(10);

/// A mount registered as fed on demand; unregistered when dropped (its
/// relay's task ended or was stopped).
pub(super) struct OnDemand {
    name: String,
    mounts: Mounts,
    /// Notified by the requests that want the stream.
    pub wake: Arc<Notify>,
}

impl OnDemand {
    pub(super) fn register(state: &AppState, name: &str) -> OnDemand {
        let wake = state.mounts.on_demand(name);
        OnDemand { name: name.to_string(), mounts: state.mounts.clone(), wake }
    }
}

impl Drop for OnDemand {
    fn drop(&mut self) {
        self.mounts.not_on_demand(&self.name);
    }
}

/// A request wants `mount`'s stream: when an on-demand relay feeds it and
/// it has no source, wake the relay and wait for the source to attach
/// (bounded by the header timeout; the caller then answers as usual).
pub async fn demand(state: &AppState, mount: &MountHandle) {
    if mount.is_live() {
        return;
    }
    let Some(wake) = state.mounts.demand(mount.name()) else { return };
    wake.notify_one();
    let mut head = mount.watch_head();
    let limit = state.config.get().limits.header_timeout;
    let _ = tokio::time::timeout(limit, head.wait_for(|h| h.live)).await;
}

/// Does anyone listen to `mount`: on it, on one of its renditions, or by
/// HLS/DASH within `IDLE`?
fn listened(state: &AppState, mount: &MountHandle) -> bool {
    if mount.listener_count() > 0 {
        return true;
    }
    let config = state.config.get();
    let mut renditions = config.mounts.iter().filter(|m| m.derived_from.as_deref() == Some(mount.name()));
    renditions.any(|r| state.mounts.get(&r.name).is_some_and(|r| r.listener_count() > 0))
        || state.hls.get(mount.name()).is_some_and(|hls| hls.requested_within(IDLE))
}

/// Resolves once `mount` has had no listener for `IDLE` (counted from the
/// call, so the request that started the relay has time to join).
pub(super) async fn idle(state: &AppState, mount: &MountHandle) {
    let mut quiet_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if listened(state, mount) {
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= IDLE {
            return;
        }
    }
}
