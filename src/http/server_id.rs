//! The name Floe gives itself: the `Server` header of every response and
//! `server_id` in the status documents. `Floe/<version>` unless `[server]
//! server_id` says otherwise (some panels and monitors look for "Icecast"
//! there). Process-wide, because it is: set at start-up and by a reload.

use std::sync::{Arc, LazyLock};

use parking_lot::RwLock;

/// The name when the configuration gives none.
pub const DEFAULT: &str = concat!("Floe/", env!("CARGO_PKG_VERSION"));

static CURRENT: LazyLock<RwLock<Arc<str>>> = LazyLock::new(|| RwLock::new(Arc::from(DEFAULT)));

/// The name in force.
pub fn get() -> Arc<str> {
    CURRENT.read().clone()
}

/// Put `id` in force (the loader has checked it is header-safe text).
pub fn set(id: &str) {
    let mut current = CURRENT.write();
    if &**current != id {
        *current = Arc::from(id);
    }
}
