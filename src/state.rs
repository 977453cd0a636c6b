//! The shared state every connection task gets a clone of: configuration,
//! the mount registry, server-wide counters, the access log and the
//! connection caps. Each part is its own narrow type; this only bundles them.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::{watch, Semaphore};

use crate::access_log::AccessLog;
use crate::config::Config;
use crate::mount::Mounts;

/// Server-wide counters, as `/admin/stats` reports them.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Every accepted TCP connection.
    pub connections: AtomicU64,
    pub client_connections: AtomicU64,
    pub listener_connections: AtomicU64,
    pub source_client_connections: AtomicU64,
    pub source_total_connections: AtomicU64,
    pub stats_connections: AtomicU64,
    /// Listeners dropped for falling more than `queue_size` behind, all mounts.
    pub slow_listeners: AtomicU64,
    /// Requests refused before routing (bad heads, timeouts, limits).
    pub bad_requests: AtomicU64,
    /// Codec processes that failed (crashed, stalled, ran away, refused a
    /// stream) and renditions whose encoder failed, all mounts.
    pub transcode_failures: AtomicU64,
    /// HLS and DASH requests by kind of asset (`Asset::KINDS`).
    pub adaptive_requests: [AtomicU64; 6],
    /// Requests and connections turned away by `[access]` or a mount's
    /// lists, or for holding `max_connections_per_ip` already.
    pub access_refusals: AtomicU64,
}

/// Everything a connection needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub mounts: Mounts,
    /// Every mount's HLS/DASH window.
    pub hls: crate::hls::HlsStreams,
    pub stats: Arc<ServerStats>,
    pub access_log: AccessLog,
    /// Listener slots (`limits.clients`); a permit moves into each listener task.
    pub clients: Arc<Semaphore>,
    /// Source slots (`limits.sources`).
    pub sources: Arc<Semaphore>,
    /// Failed logins per address (sources, admin, SHOUTcast).
    pub logins: Arc<crate::auth::Throttle>,
    /// Connections per client address (`max_connections_per_ip`).
    pub per_ip: crate::access::PerIp,
    /// Listener password files (`[mount.listener_auth]`), read on first use.
    pub htpasswd: Arc<crate::auth::htpasswd::Htpasswd>,
    /// Requests to URL authentication backends.
    pub url_auth: Arc<crate::auth::url::UrlClient>,
    /// Listener counts over the last hours (the admin page's graph).
    pub history: Arc<crate::admin::history::History>,
    pub started: SystemTime,
    pub started_at: Instant,
    /// The bound port of the first HTTP listener, for `listenurl` and playlists.
    pub http_port: u16,
    /// Flips to true when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// TLS, when some port serves it (its counters are in `/admin/stats`).
    pub tls: Option<Arc<crate::tls::Tls>>,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        access_log: AccessLog,
        http_port: u16,
        shutdown: watch::Receiver<bool>,
    ) -> AppState {
        AppState {
            mounts: Mounts::new(config.clone(), crate::events::Events::default()),
            hls: crate::hls::HlsStreams::default(),
            stats: Arc::default(),
            access_log,
            clients: Arc::new(Semaphore::new(config.limits.clients)),
            sources: Arc::new(Semaphore::new(config.limits.sources)),
            logins: Arc::default(),
            per_ip: crate::access::PerIp::default(),
            htpasswd: Arc::default(),
            url_auth: Arc::default(),
            history: Arc::default(),
            started: SystemTime::now(),
            started_at: Instant::now(),
            http_port,
            shutdown,
            config,
            tls: None,
        }
    }

    pub fn with_tls(self, tls: Option<Arc<crate::tls::Tls>>) -> AppState {
        AppState { tls, ..self }
    }
}
