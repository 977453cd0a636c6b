//! TLS on the HTTP ports (rustls with the ring provider): the certificate in
//! use, swapped in place when its files change or on SIGHUP (a renewal never
//! drops a connection, and a bad new pair keeps the old one), and the
//! handshake, with ALPN offering HTTP/2 and HTTP/1.1.

mod certs;

pub use certs::{name_matches, CertError, CertFiles, SniFiles, TlsFiles};

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use rustls::crypto::ring::default_provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How often the certificate files are checked for a change.
const WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// The first byte of every TLS connection (a handshake record); no HTTP
/// method starts with it, so one port can serve both.
pub const HANDSHAKE_RECORD: u8 = 0x16;

/// TLS for every `tls_listen` socket: one per server.
pub struct Tls {
    /// Replaced when a configuration reload names other files.
    files: Mutex<TlsFiles>,
    current: Arc<CurrentCerts>,
    acceptor: TlsAcceptor,
    /// The files' fingerprint when they were last read.
    seen: Mutex<Option<Fingerprint>>,
    pub counters: TlsCounters,
}

/// What `/admin/stats` reports about TLS.
#[derive(Default)]
pub struct TlsCounters {
    pub handshakes: AtomicU64,
    pub handshake_failures: AtomicU64,
    /// Certificate pairs loaded after the first.
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
}

impl Tls {
    /// Load the pairs and build the server side; fails as `CertFiles::load`.
    pub fn new(files: TlsFiles) -> Result<Tls, CertError> {
        let seen = Fingerprint::of(&files);
        let current = Arc::new(CurrentCerts(RwLock::new(Certs::load(&files)?)));
        let builder = ServerConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3");
        let mut config = builder.with_no_client_auth().with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            files: Mutex::new(files),
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            seen: Mutex::new(seen),
            counters: TlsCounters::default(),
        })
    }

    /// Handshake with a client, bounded by `limit`, counted.
    pub async fn accept(&self, sock: TcpStream, limit: Duration) -> io::Result<TlsStream<TcpStream>> {
        let result = match tokio::time::timeout(limit, self.acceptor.accept(sock)).await {
            Ok(result) => result,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        };
        let counter = if result.is_ok() { &self.counters.handshakes } else { &self.counters.handshake_failures };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    /// Read the files again and serve the new pair from the next handshake
    /// on; on any problem keep the old pair. Established connections keep
    /// the session they have either way.
    pub fn reload(&self) -> Result<(), CertError> {
        let files = self.files();
        *self.seen.lock() = Fingerprint::of(&files);
        match Certs::load(&files) {
            Ok(certs) => {
                *self.current.0.write() = certs;
                self.counters.reloads.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(error) => {
                self.counters.reload_failures.fetch_add(1, Ordering::Relaxed);
                Err(error)
            }
        }
    }

    /// The files the pairs are read from.
    pub fn files(&self) -> TlsFiles {
        self.files.lock().clone()
    }

    /// Serve `pairs` from now on and watch their files instead (a
    /// configuration reload named new ones).
    pub fn install(&self, pairs: NewPairs) {
        *self.seen.lock() = Fingerprint::of(&pairs.files);
        *self.files.lock() = pairs.files;
        *self.current.0.write() = pairs.certs;
        self.counters.reloads.fetch_add(1, Ordering::Relaxed);
    }

    /// Reload whenever the files change (certbot, acme.sh and friends
    /// replace them, often through a symlink), until shutdown.
    pub async fn watch(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait_for(|&down| down) => return,
            }
            let now = Fingerprint::of(&self.files());
            if now == *self.seen.lock() {
                continue;
            }
            self.log_reload("the certificate files changed");
        }
    }

    /// Reload, saying why and how it went.
    pub fn log_reload(&self, why: &str) {
        match self.reload() {
            Ok(()) => tracing::info!(cert = %self.files().default.cert.display(), "{why}: TLS certificates reloaded"),
            Err(error) => {
                tracing::error!(%error, "{why}: the new TLS certificate is not usable; still serving the old one")
            }
        }
    }
}

/// Certificate pairs read and checked, ready for `Tls::install`.
pub struct NewPairs {
    files: TlsFiles,
    certs: Certs,
}

impl NewPairs {
    /// Read and check every pair in `files` (errors as `CertFiles::load`).
    pub fn load(files: TlsFiles) -> Result<NewPairs, CertError> {
        Ok(NewPairs { certs: Certs::load(&files)?, files })
    }
}

/// The pairs in use: the default, and those served by name.
#[derive(Debug)]
struct Certs {
    default: Arc<CertifiedKey>,
    by_name: Vec<(Vec<String>, Arc<CertifiedKey>)>,
}

impl Certs {
    fn load(files: &TlsFiles) -> Result<Certs, CertError> {
        let default = files.default.load()?;
        let by_name =
            files.sni.iter().map(|sni| Ok((sni.names.clone(), sni.files.load()?))).collect::<Result<_, _>>()?;
        Ok(Certs { default, by_name })
    }
}

/// Hands every handshake the pair in use right now for the name it asks
/// for (SNI), or the default pair.
#[derive(Debug)]
struct CurrentCerts(RwLock<Certs>);

impl ResolvesServerCert for CurrentCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certs = self.0.read();
        let asked = hello.server_name().map(str::to_ascii_lowercase);
        let named = asked
            .as_deref()
            .and_then(|name| certs.by_name.iter().find(|(names, _)| names.iter().any(|n| name_matches(n, name))));
        Some(named.map_or(&certs.default, |(_, key)| key).clone())
    }
}

/// Enough of both files' metadata (through symlinks) to see a replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint(Vec<(Option<SystemTime>, u64, u64)>);

impl Fingerprint {
    fn of(files: &TlsFiles) -> Option<Fingerprint> {
        use std::os::unix::fs::MetadataExt;
        let one = |path: &std::path::Path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok(), meta.len(), meta.ino()))
        };
        let paths = files.pairs().flat_map(|pair| [pair.cert.as_path(), pair.key.as_path()]);
        paths.map(one).collect::<Option<Vec<_>>>().map(Fingerprint)
    }
}
