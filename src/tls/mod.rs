//! TLS on the HTTP ports (rustls with the ring provider): the certificate in
//! use, swapped in place when its files change or on SIGHUP (a renewal never
//! drops a connection, and a bad new pair keeps the old one), and the
//! handshake, with ALPN offering HTTP/2 and HTTP/1.1.

mod certs;

pub use certs::{CertError, CertFiles};

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
    files: Mutex<CertFiles>,
    current: Arc<CurrentCert>,
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
    /// Load the pair and build the server side; fails as `CertFiles::load`.
    pub fn new(files: CertFiles) -> Result<Tls, CertError> {
        let seen = Fingerprint::of(&files);
        let current = Arc::new(CurrentCert(RwLock::new(files.load()?)));
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
        match files.load() {
            Ok(key) => {
                *self.current.0.write() = key;
                self.counters.reloads.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(error) => {
                self.counters.reload_failures.fetch_add(1, Ordering::Relaxed);
                Err(error)
            }
        }
    }

    /// The files the pair is read from.
    pub fn files(&self) -> CertFiles {
        self.files.lock().clone()
    }

    /// Serve `pair` from now on and watch its files instead (a
    /// configuration reload named new ones).
    pub fn install(&self, pair: NewPair) {
        *self.seen.lock() = Fingerprint::of(&pair.files);
        *self.files.lock() = pair.files;
        *self.current.0.write() = pair.key;
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
            Ok(()) => tracing::info!(cert = %self.files().cert.display(), "{why}: TLS certificate reloaded"),
            Err(error) => {
                tracing::error!(%error, "{why}: the new TLS certificate is not usable; still serving the old one")
            }
        }
    }
}

/// A certificate pair read and checked, ready for `Tls::install`.
pub struct NewPair {
    files: CertFiles,
    key: Arc<CertifiedKey>,
}

impl NewPair {
    /// Read and check the pair in `files` (errors as `CertFiles::load`).
    pub fn load(files: CertFiles) -> Result<NewPair, CertError> {
        Ok(NewPair { key: files.load()?, files })
    }
}

/// Hands every handshake the pair in use right now.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().clone())
    }
}

/// Enough of both files' metadata (through symlinks) to see a replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint([(Option<SystemTime>, u64, u64); 2]);

impl Fingerprint {
    fn of(files: &CertFiles) -> Option<Fingerprint> {
        use std::os::unix::fs::MetadataExt;
        let one = |path: &std::path::Path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok(), meta.len(), meta.ino()))
        };
        Some(Fingerprint([one(&files.cert)?, one(&files.key)?]))
    }
}
