//! Configuration reload (SIGHUP, `/admin/reloadconfig`): read the file
//! again and put what it says in force, dropping nobody. Mounts are added,
//! changed and removed (a removed mount with a live source keeps it until
//! it leaves), limits resize their caps, credentials, access lists, listener
//! auth, the access log and the TLS certificate files apply from the next
//! request or handshake. A file with any problem changes nothing and every
//! problem is reported. What only a restart can change (the sockets and
//! threads) is kept as it is and said so.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::access_log::LogFile;
use crate::config::{self, Config, ConfigError};
use crate::mount::MountChanges;
use crate::state::AppState;
use crate::tls::NewPairs;

/// Two reloads (a SIGHUP during an admin's click) run one after the other.
static RELOADING: Mutex<()> = Mutex::new(());

/// What a reload put in force.
#[derive(Debug, Default)]
pub struct Reloaded {
    pub mounts: MountChanges,
    /// Settings the new file changes that only a restart applies.
    pub kept: Vec<String>,
}

/// Why nothing was reloaded.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the server runs on the built-in default configuration: there is no file to reload")]
    NoFile,
    #[error("{0}")]
    Invalid(ConfigError),
    #[error("TLS: {0}")]
    Tls(crate::tls::CertError),
    #[error("cannot open the access log {path}: {error}")]
    AccessLog { path: PathBuf, error: std::io::Error },
}

/// Reload, logging the outcome (`why` says what asked for it).
pub fn reload_logged(state: &AppState, why: &str) -> Result<Reloaded, ReloadError> {
    let outcome = reload(state);
    match &outcome {
        Ok(reloaded) => {
            tracing::info!("{why}: configuration reloaded: {reloaded}");
            for kept in &reloaded.kept {
                tracing::warn!("{why}: {kept}");
            }
        }
        Err(ReloadError::Invalid(error)) => {
            for problem in &error.problems {
                tracing::error!("{why}: {problem}");
            }
            tracing::error!("{why}: configuration not reloaded; the running one stays in force");
        }
        Err(error) => tracing::error!("{why}: configuration not reloaded: {error}"),
    }
    outcome
}

/// Read the configuration file again and apply it; on any problem apply
/// nothing.
pub fn reload(state: &AppState) -> Result<Reloaded, ReloadError> {
    let _one_at_a_time = RELOADING.lock();
    let outcome = load_and_apply(state);
    let counter = if outcome.is_ok() { &state.stats.config_reloads } else { &state.stats.config_reload_failures };
    counter.fetch_add(1, Ordering::Relaxed);
    outcome
}

fn load_and_apply(state: &AppState) -> Result<Reloaded, ReloadError> {
    let file = state.config.file().ok_or(ReloadError::NoFile)?;
    let mut new = config::load_file(file, &crate::transcode::ENCODERS).map_err(ReloadError::Invalid)?;
    let old = state.config.get();
    let kept = keep_restart_only(&old, &mut new, state.tls.is_some());
    // Everything that can fail is done before anything changes.
    let new_pair = match (&state.tls, &new.tls) {
        (Some(tls), Some(files)) if *files != tls.files() => {
            Some(NewPairs::load(files.clone()).map_err(ReloadError::Tls)?)
        }
        _ => None,
    };
    let new_log = if new.server.access_log == old.server.access_log {
        None
    } else {
        Some(match new.server.access_log.as_ref().map(PathBuf::from) {
            Some(path) => Some(LogFile::open(&path).map_err(|error| ReloadError::AccessLog { path, error })?),
            None => None,
        })
    };
    if let (Some(tls), Some(pair)) = (&state.tls, new_pair) {
        tls.install(pair);
    }
    if let Some(file) = new_log {
        state.access_log.write_to(file);
    }
    let new = Arc::new(new);
    state.config.replace(new.clone());
    let limits = &new.limits;
    state.clients.resize(limits.clients);
    state.sources.resize(limits.sources);
    state.connections.resize(limits.connection_cap());
    let mounts = state.mounts.apply(&new);
    // The HLS/DASH window and counters of a removed mount go with it once
    // it is gone.
    for name in &mounts.removed {
        if state.mounts.get(name).is_none() {
            state.forget_mount(name);
        }
    }
    Ok(Reloaded { mounts, kept })
}

/// Settings bound to sockets and threads made at start-up: the new file's
/// values are replaced by those in force, and each difference is reported.
fn keep_restart_only(old: &Config, new: &mut Config, serving_tls: bool) -> Vec<String> {
    let mut kept = Vec::new();
    let mut keep = |name: &str, differs: bool| {
        if differs {
            kept.push(format!("{name} changed: it takes effect at the next restart"));
        }
    };
    keep("server.listen", new.server.listen != old.server.listen);
    new.server.listen.clone_from(&old.server.listen);
    keep("server.tls_listen", new.server.tls_listen != old.server.tls_listen);
    new.server.tls_listen.clone_from(&old.server.tls_listen);
    keep("server.workers", new.server.workers != old.server.workers);
    new.server.workers = old.server.workers;
    keep("shoutcast.listen", new.shoutcast.listen != old.shoutcast.listen);
    new.shoutcast.listen = old.shoutcast.listen;
    keep("[[relay]]", new.relays != old.relays);
    new.relays.clone_from(&old.relays);
    keep("[master]", new.master != old.master);
    new.master.clone_from(&old.master);
    keep("[[directory]]", new.directories != old.directories);
    new.directories.clone_from(&old.directories);
    // Certificate files can change in place; turning TLS on or off cannot.
    if new.tls.is_some() != serving_tls {
        keep("[tls]", true);
        new.tls.clone_from(&old.tls);
    }
    kept
}

impl fmt::Display for Reloaded {
    /// `mounts added /a, /b; changed /c; removed none` (one line for logs
    /// and the admin response).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |names: &[String]| if names.is_empty() { "none".to_string() } else { names.join(", ") };
        write!(
            f,
            "mounts added: {}; changed: {}; removed: {}",
            list(&self.mounts.added),
            list(&self.mounts.changed),
            list(&self.mounts.removed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_default_has_no_file_to_reload() {
        let config = crate::config::LiveConfig::new(Config::default(), None);
        let (_tx, shutdown) = tokio::sync::watch::channel(false);
        let state = AppState::new(config, crate::access_log::AccessLog::default(), 0, shutdown);
        let error = reload(&state).unwrap_err();
        assert!(error.to_string().contains("built-in default"), "{error}");
        assert_eq!(state.stats.config_reload_failures.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn sockets_and_threads_keep_their_running_values_and_are_reported() {
        let old = Config::default();
        let mut new = Config::default();
        new.server.listen = vec!["127.0.0.1:9000".parse().unwrap()];
        new.server.workers = 7;
        new.server.hostname = "radio.example".into();
        let kept = keep_restart_only(&old, &mut new, false);
        assert_eq!(new.server.listen, old.server.listen);
        assert_eq!(new.server.workers, old.server.workers);
        assert_eq!(new.server.hostname, "radio.example", "everything else is the new file's");
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(kept[0].starts_with("server.listen changed"), "{kept:?}");
    }
}
