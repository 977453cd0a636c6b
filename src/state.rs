//! The shared state every connection task gets a clone of: configuration,
//! the mount registry, server-wide counters, the access log and the
//! connection caps. Each part is its own narrow type; this only bundles them.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::watch;

use crate::access_log::AccessLog;
use crate::config::LiveConfig;
use crate::mount::Mounts;
use crate::slots::Slots;

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
    /// Listeners dropped because a write waited `client_timeout`, all mounts.
    pub stalled_listeners: AtomicU64,
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
    /// Configuration reloads applied, and refused (the file had problems).
    pub config_reloads: AtomicU64,
    pub config_reload_failures: AtomicU64,
}

/// Everything a connection needs: one pointer, so every listener and
/// request holds 8 bytes of it rather than a copy of each handle (which
/// were 224 bytes and twenty reference counts per clone).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl From<Shared> for AppState {
    fn from(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

/// The server's shared state, built once at startup (see `Shared::new`)
/// and then only read through `AppState`; what changes at run time sits
/// behind its own lock or atomic.
pub struct Shared {
    /// The configuration in force; a reload swaps it (see `reload`).
    pub config: LiveConfig,
    pub mounts: Mounts,
    /// Every mount's HLS/DASH window.
    pub hls: crate::hls::HlsStreams,
    /// Every transcoded mount's counters.
    pub transcoding: crate::transcode::Counters,
    pub stats: Arc<ServerStats>,
    pub access_log: AccessLog,
    /// Listener slots (`limits.clients`); one moves into each listener task.
    pub clients: Slots,
    /// Source slots (`limits.sources`).
    pub sources: Slots,
    /// Open connections of any kind (see `Limits::connection_cap`).
    pub connections: Slots,
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
    /// The secret the process this one took over from feeds its live
    /// mounts with (`upgrade::feed`), when started by a binary upgrade.
    pub handover_token: Option<Arc<str>>,
    /// Flips to true once a binary upgrade has handed the sockets to a new
    /// process: stop accepting and drain (see `upgrade`).
    pub handed_over: watch::Receiver<bool>,
    /// Set once the accept loops have ended after a handover.
    pub accepts_closed: Arc<watch::Sender<bool>>,
}

impl AppState {
    pub fn new(config: LiveConfig, access_log: AccessLog, http_port: u16, shutdown: watch::Receiver<bool>) -> AppState {
        AppState::from(Shared::new(config, access_log, http_port, shutdown))
    }
}

impl Shared {
    pub fn new(config: LiveConfig, access_log: AccessLog, http_port: u16, shutdown: watch::Receiver<bool>) -> Shared {
        let limits = config.get().limits.clone();
        Shared {
            mounts: Mounts::new(config.clone(), crate::events::Events::default()),
            hls: crate::hls::HlsStreams::default(),
            transcoding: crate::transcode::Counters::default(),
            stats: Arc::default(),
            access_log,
            clients: Slots::new(limits.clients),
            sources: Slots::new(limits.sources),
            connections: Slots::new(limits.connection_cap()),
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
            handover_token: None,
            handed_over: watch::channel(false).1,
            accepts_closed: Arc::new(watch::channel(false).0),
        }
    }

    pub fn with_tls(self, tls: Option<Arc<crate::tls::Tls>>) -> Shared {
        Shared { tls, ..self }
    }

    /// Let go of what the server keeps by a mount's name beside the mount:
    /// its HLS/DASH window and its transcoding counters (a dynamic mount's
    /// source left, a reload removed a configured one).
    pub fn forget_mount(&self, name: &str) {
        self.hls.remove(name);
        self.transcoding.remove(name);
    }
}
