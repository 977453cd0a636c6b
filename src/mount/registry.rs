//! The registry of mounts by name. Configured mounts live as long as the
//! server; a mount created by a source for an unconfigured name is forgotten
//! when its source leaves (its remaining listeners keep their handle and
//! drain the ring).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use super::MountHandle;
use crate::config::Config;

#[derive(Debug)]
struct Inner {
    config: Arc<Config>,
    /// Looked up per request, changed when sources come and go.
    map: RwLock<HashMap<String, MountHandle>>,
    next_listener_id: AtomicU64,
    events: crate::events::Events,
}

/// All mounts; a cheap clonable handle.
#[derive(Debug, Clone)]
pub struct Mounts(Arc<Inner>);

impl Mounts {
    /// Every mount publishes its changes to `events`.
    pub fn new(config: Arc<Config>, events: crate::events::Events) -> Mounts {
        let make =
            |m: &Arc<crate::config::MountConfig>| MountHandle::new(m.clone(), false, &config.limits, events.clone());
        let map = config.mounts.iter().map(|m| (m.name.clone(), make(m))).collect();
        Mounts(Arc::new(Inner { config, map: RwLock::new(map), next_listener_id: AtomicU64::new(1), events }))
    }

    /// The feed every mount publishes to.
    pub fn events(&self) -> &crate::events::Events {
        &self.0.events
    }

    pub fn get(&self, name: &str) -> Option<MountHandle> {
        self.0.map.read().get(name).cloned()
    }

    /// The mount for `name`, created with dynamic settings if unknown.
    pub fn get_or_create(&self, name: &str) -> MountHandle {
        if let Some(mount) = self.get(name) {
            return mount;
        }
        let mut map = self.0.map.write();
        map.entry(name.to_string())
            .or_insert_with(|| {
                MountHandle::new(self.0.config.mount(name), true, &self.0.config.limits, self.0.events.clone())
            })
            .clone()
    }

    /// Forget a dynamic mount once it has no source.
    pub fn forget_if_idle(&self, mount: &MountHandle) {
        if !mount.is_dynamic() || mount.is_live() {
            return;
        }
        let mut map = self.0.map.write();
        if map.get(mount.name()).is_some_and(|m| m.same(mount) && !m.is_live()) {
            map.remove(mount.name());
        }
    }

    /// All mounts, sorted by name.
    pub fn all(&self) -> Vec<MountHandle> {
        let mut all: Vec<_> = self.0.map.read().values().cloned().collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }

    /// Mounts with a live source, sorted by name.
    pub fn live(&self) -> Vec<MountHandle> {
        self.all().into_iter().filter(MountHandle::is_live).collect()
    }

    pub fn next_listener_id(&self) -> u64 {
        self.0.next_listener_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Total listeners over all mounts.
    pub fn listener_total(&self) -> usize {
        self.0.map.read().values().map(MountHandle::listener_count).sum()
    }

    /// Follow `fallback_mount` from `mount` to the first live mount (at most a
    /// few hops, so a loop in the config cannot spin).
    pub fn live_fallback(&self, mount: &MountHandle) -> Option<MountHandle> {
        let mut current = mount.fallback();
        for _ in 0..8 {
            let name = current?;
            let next = self.get(&name)?;
            if next.is_live() {
                return Some(next);
            }
            current = next.fallback();
        }
        None
    }
}
