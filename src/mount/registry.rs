//! The registry of mounts by name. Configured mounts live as long as the
//! configuration names them; a mount created by a source for an unconfigured
//! name is forgotten when its source leaves (its remaining listeners keep
//! their handle and drain the ring).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use super::MountHandle;
use crate::config::{Config, LiveConfig};

#[derive(Debug)]
struct Inner {
    /// Settings for mounts the configuration does not name.
    config: LiveConfig,
    /// Looked up per request, changed when sources come and go.
    map: RwLock<HashMap<String, MountHandle>>,
    next_listener_id: AtomicU64,
    events: crate::events::Events,
    /// Mounts kept while they have no source, because an on-demand relay
    /// feeds them when asked: each with the wake-up its relay waits on.
    on_demand: Mutex<HashMap<String, Arc<Notify>>>,
}

/// All mounts; a cheap clonable handle.
#[derive(Debug, Clone)]
pub struct Mounts(Arc<Inner>);

impl Mounts {
    /// Every mount publishes its changes to `events`.
    pub fn new(config: LiveConfig, events: crate::events::Events) -> Mounts {
        let current = config.get();
        let make =
            |m: &Arc<crate::config::MountConfig>| MountHandle::new(m.clone(), false, &current.limits, events.clone());
        let map = current.mounts.iter().map(|m| (m.name.clone(), make(m))).collect();
        Mounts(Arc::new(Inner {
            config,
            map: RwLock::new(map),
            next_listener_id: AtomicU64::new(1),
            events,
            on_demand: Mutex::default(),
        }))
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
                let config = self.0.config.get();
                MountHandle::new(config.mount(name), true, &config.limits, self.0.events.clone())
            })
            .clone()
    }

    /// Bring the registry in line with a reloaded `config`: mounts it names
    /// are created or take their new settings; mounts it no longer names are
    /// forgotten, or, while a source is live on one, kept with their last
    /// settings until that source leaves. Sources and listeners stay
    /// connected throughout.
    pub fn apply(&self, config: &Config) -> MountChanges {
        let mut changes = MountChanges::default();
        let mut map = self.0.map.write();
        for wanted in &config.mounts {
            match map.get(&wanted.name) {
                Some(mount) => {
                    if mount.is_dynamic() {
                        changes.added.push(wanted.name.clone());
                    } else if *mount.config() != **wanted {
                        changes.changed.push(wanted.name.clone());
                    }
                    mount.reconfigure(wanted.clone(), &config.limits, false);
                }
                None => {
                    let mount = MountHandle::new(wanted.clone(), false, &config.limits, self.0.events.clone());
                    map.insert(wanted.name.clone(), mount);
                    changes.added.push(wanted.name.clone());
                }
            }
        }
        let named: HashSet<&str> = config.mounts.iter().map(|m| m.name.as_str()).collect();
        let mut gone = Vec::new();
        for (name, mount) in map.iter() {
            if named.contains(name.as_str()) {
                continue;
            }
            // A dynamic mount takes the dynamic defaults; a removed one
            // that is live keeps its last settings (its access lists and
            // auth) until its source leaves. Limits apply to both.
            let settings = if mount.is_dynamic() { config.mount(name) } else { mount.config() };
            if !mount.is_dynamic() {
                changes.removed.push(name.clone());
            }
            mount.reconfigure(settings, &config.limits, true);
            if !mount.is_live() && !self.0.on_demand.lock().contains_key(name) {
                gone.push(name.clone());
            }
        }
        for name in gone {
            map.remove(&name);
        }
        changes.added.sort();
        changes.changed.sort();
        changes.removed.sort();
        changes
    }

    /// Keep `name` (creating it if need be) while it has no source, for an
    /// on-demand relay: a listener's request for it wakes the returned
    /// `Notify`. Undone by `not_on_demand`.
    pub fn on_demand(&self, name: &str) -> Arc<Notify> {
        let wake = self.0.on_demand.lock().entry(name.to_string()).or_default().clone();
        self.get_or_create(name);
        wake
    }

    /// `name` is no longer fed on demand: forgotten like any idle dynamic
    /// mount once it has no source.
    pub fn not_on_demand(&self, name: &str) {
        self.0.on_demand.lock().remove(name);
        if let Some(mount) = self.get(name) {
            self.forget_if_idle(&mount);
        }
    }

    /// The wake-up of `name`'s on-demand relay, if one feeds it.
    pub fn demand(&self, name: &str) -> Option<Arc<Notify>> {
        self.0.on_demand.lock().get(name).cloned()
    }

    /// Forget a dynamic mount once it has no source.
    pub fn forget_if_idle(&self, mount: &MountHandle) {
        if !mount.is_dynamic() || mount.is_live() || self.demand(mount.name()).is_some() {
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

/// What a reload did to the configured mounts, by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountChanges {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_on_demand_mount_is_kept_while_it_has_no_source() {
        let mounts = Mounts::new(LiveConfig::new(Config::default(), None), crate::events::Events::default());
        let wake = mounts.on_demand("/relayed.mp3");
        let mount = mounts.get("/relayed.mp3").expect("routable before any source");
        mounts.forget_if_idle(&mount);
        assert!(mounts.get("/relayed.mp3").is_some(), "kept while idle");
        assert!(mounts.apply(&Config::default()).removed.is_empty() && mounts.get("/relayed.mp3").is_some());
        assert!(Arc::ptr_eq(&mounts.demand("/relayed.mp3").unwrap(), &wake));
        mounts.not_on_demand("/relayed.mp3");
        assert!(mounts.get("/relayed.mp3").is_none() && mounts.demand("/relayed.mp3").is_none());
    }
}
