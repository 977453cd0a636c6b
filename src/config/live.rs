//! The configuration in force. A reload replaces it whole: a request takes
//! one snapshot (`get`) and sees one consistent version to its end, and
//! the next request sees the new one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use super::Config;

/// The current `Config` and the file it came from; clones share both.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    current: Arc<RwLock<Arc<Config>>>,
    /// `None` for the built-in default, which has nothing to reread.
    file: Option<Arc<PathBuf>>,
}

impl LiveConfig {
    pub fn new(config: Config, file: Option<PathBuf>) -> LiveConfig {
        crate::http::server_id::set(&config.server.server_id);
        LiveConfig { current: Arc::new(RwLock::new(Arc::new(config))), file: file.map(Arc::new) }
    }

    /// The configuration in force now.
    pub fn get(&self) -> Arc<Config> {
        self.current.read().clone()
    }

    /// The file a reload reads.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref().map(PathBuf::as_path)
    }

    /// Put `config` in force; returns the one it replaces.
    pub fn replace(&self, config: Arc<Config>) -> Arc<Config> {
        // The name goes with the configuration that gives it.
        crate::http::server_id::set(&config.server.server_id);
        std::mem::replace(&mut *self.current.write(), config)
    }
}
