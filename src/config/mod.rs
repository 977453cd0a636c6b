//! Server configuration: the typed settings (this file), the TOML loader that
//! reports every problem with file, line and key (`load.rs`), and the built-in
//! default that mirrors Icecast's out-of-the-box behaviour.
//!
//! A loaded `Config` is immutable: the server shares the one in force as a
//! [`LiveConfig`], which a reload swaps whole, and each mount's settings as
//! `Arc<MountConfig>`.

mod limits;
mod live;
mod load;
pub mod mount_name;

pub use limits::Limits;
pub use live::LiveConfig;

pub use load::{load_file, parse_str, ConfigError, EncoderRules, Problem};
pub use mount_name::MountNameError;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The whole configuration, as loaded from TOML or built in.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub limits: Limits,
    pub auth: AuthConfig,
    pub shoutcast: ShoutcastConfig,
    /// `[hls]`: adaptive streaming for every mount without an `[mount.hls]` of its own.
    pub hls: HlsConfig,
    /// `[access]`: who may connect, server-wide.
    pub access: AccessConfig,
    /// `[tls]`: the certificates for `server.tls_listen` (paths resolved
    /// against the config file's directory): the default pair and any
    /// served by name (`[[tls.sni]]`). Required when `tls_listen` is set.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Explicitly configured mounts, in file order.
    pub mounts: Vec<Arc<MountConfig>>,
    /// `[[relay]]`: mounts fed from another server's stream.
    pub relays: Vec<RelayConfig>,
    /// `[master]`, when this server relays another's mounts.
    pub master: Option<MasterConfig>,
    /// `[[directory]]`: where public mounts are listed.
    pub directories: Vec<DirectoryConfig>,
}

/// `[[relay]]`: a local mount fed by pulling a stream from another server
/// (Icecast, SHOUTcast or any HTTP stream), reconnecting while it is down.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayConfig {
    /// The upstream stream (plain `http://`).
    pub url: crate::http::url::HttpUrl,
    /// The local mount it feeds.
    pub mount: String,
    /// Basic credentials for the upstream, if it wants them.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Ask for ICY metadata and pass its titles on. Default: true.
    pub metadata: bool,
    /// First wait before reconnecting; doubles up to a minute. Default: 2 s.
    pub retry: Duration,
    /// Connect only while someone listens (a listener's request starts the
    /// relay; it stops once the mount has had none for a while). Default: false.
    pub on_demand: bool,
}

/// `[master]`: relay every mount another server lists (Icecast's
/// master/slave relaying, with Floe as the slave).
#[derive(Debug, Clone, PartialEq)]
pub struct MasterConfig {
    /// The master (plain `http://`); a path is a prefix its paths sit under.
    pub url: crate::http::url::HttpUrl,
    /// The relay credentials the master's `/admin/streamlist.txt` wants.
    pub username: String,
    pub password: String,
    /// How often the list is read again. Default: 120 s (Icecast's).
    pub interval: Duration,
    /// Ask for ICY metadata and pass its titles on. Default: true.
    pub metadata: bool,
    /// Relay each listed mount only while someone listens here. Default: false.
    pub on_demand: bool,
}

/// `[[directory]]`: a YP directory (Icecast's `<directory>`) the public
/// mounts are listed in.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectoryConfig {
    /// Its yp-cgi (plain `http://`), e.g. `http://dir.xiph.org/cgi-bin/yp-cgi`.
    pub url: crate::http::url::HttpUrl,
    /// How long one request to it may take. Default: 15 s (Icecast's `yp-url-timeout`).
    pub timeout: Duration,
}

/// `[server]`: where Floe listens and how it names itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Addresses to accept HTTP on (listeners, sources, admin). Default: `["0.0.0.0:8000"]`.
    pub listen: Vec<SocketAddr>,
    /// Addresses to accept HTTPS on (everything `listen` serves). An address
    /// in both lists serves both on one port. Default: none.
    pub tls_listen: Vec<SocketAddr>,
    /// Public host name used in `listenurl` and playlists. Default: `localhost`.
    pub hostname: String,
    /// Free text shown in status. Default: `Earth`.
    pub location: String,
    /// Shown in status. Default: `icemaster@localhost`.
    pub admin_email: String,
    /// Access log file in combined format; `None` logs access lines through tracing. Default: none.
    pub access_log: Option<String>,
    /// Threads serving connections. Default: one per CPU core (0 in the file).
    pub workers: usize,
    /// The `Server` header and `server_id` in status. Default: `Floe/<version>`.
    pub server_id: String,
}

/// `[auth]`: global credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    /// Password any source may use (user `source`) unless its mount sets its own. Default: `hackme`.
    pub source_password: String,
    /// Admin user for `/admin/*`. Default: `admin`.
    pub admin_user: String,
    /// Admin password. Default: `hackme`.
    pub admin_password: String,
    /// The user another server's relay logs in as to read
    /// `/admin/streamlist` (Icecast's `<relay-user>`). Default: `relay`.
    pub relay_user: String,
    /// Its password (Icecast's `<relay-password>`); unset, only the admin
    /// credentials read the stream list. Default: none.
    pub relay_password: Option<String>,
}

/// `[shoutcast]`: the SHOUTcast v1 source port.
#[derive(Debug, Clone, PartialEq)]
pub struct ShoutcastConfig {
    /// Port for SHOUTcast v1 sources; `None` disables it. Default: first listen port + 1.
    pub listen: Option<SocketAddr>,
    /// Mount that a plain `password` login streams into. Default: `/stream`.
    pub mount: String,
}

/// Stream information a mount may force, overriding what the source sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamInfoOverride {
    pub name: Option<String>,
    pub description: Option<String>,
    pub genre: Option<String>,
    pub url: Option<String>,
    pub public: Option<bool>,
}

/// `[access]`: address and user-agent lists for every request, the
/// proxies whose forwarding headers are believed, and connections per address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessConfig {
    /// `allow`, `deny` and `deny_user_agents`. Default: everyone.
    pub rules: crate::access::Rules,
    /// Reverse proxies whose `Forwarded`/`X-Forwarded-For` name the client
    /// (its address then counts for the lists, logs and listener lists). Default: none.
    pub trusted_proxies: Vec<crate::access::Cidr>,
    /// Connections one address may hold at once (trusted proxies exempt); 0 = no limit. Default: 0.
    pub max_connections_per_ip: usize,
}

/// `[[mount]]`: settings of one named mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountConfig {
    /// Mount path, starting with `/`.
    pub name: String,
    /// Source user for this mount. Default: `source`.
    pub username: String,
    /// Source password for this mount. Default: the global `source_password`.
    pub password: Option<String>,
    /// Listener cap for this mount. Default: unlimited (the global `clients` still applies).
    pub max_listeners: Option<usize>,
    /// Mount listeners move to when this mount's source leaves. Default: none.
    pub fallback_mount: Option<String>,
    /// Move listeners back from the fallback when the source returns. Default: false.
    pub fallback_override: bool,
    /// ICY metadata interval in bytes. Default: 16000.
    pub metaint: usize,
    /// Overrides of the source's `ice-*`/`icy-*` stream information.
    pub info: StreamInfoOverride,
    /// Per-mount burst size. Default: the global `burst_size`.
    pub burst_size: Option<usize>,
    /// Per-mount queue size. Default: the global `queue_size`.
    pub queue_size: Option<usize>,
    /// Hide the mount from status pages and `streamlist`. Default: false.
    pub hidden: bool,
    /// Renditions the server encodes from this mount's source (`[[mount.transcode]]`).
    pub transcode: Vec<Arc<TranscodeConfig>>,
    /// Set on a rendition's own mount: the mount it is encoded from. Such a
    /// mount is fed by the server; sources cannot stream to it.
    pub derived_from: Option<String>,
    /// `[mount.hls]`: the mount as HLS and DASH (the global `[hls]` unless set).
    pub hls: HlsConfig,
    /// `allow`, `deny`, `deny_user_agents` for this mount's listeners and
    /// sources, checked after the server's. Default: everyone.
    pub access: crate::access::Rules,
    /// `[mount.listener_auth]`: listeners (and its HLS/DASH and renditions)
    /// need a user name and password. Default: none.
    pub listener_auth: Option<ListenerAuth>,
    /// `intro`: a file in the mount's format played to each new listener
    /// before the live stream (read at load, at most `Intro::MAX` bytes). Default: none.
    pub intro: Option<Intro>,
    /// `dump_file`: record what the source sends to this file (a strftime
    /// pattern, UTC, relative to the config file). Default: none.
    pub dump_file: Option<std::path::PathBuf>,
    /// `dump_max_bytes`: start the next file once one holds this much
    /// (0: never). Default: 0.
    pub dump_max_bytes: u64,
    /// `dump_max_seconds`: start the next file once one is this old
    /// (0: never). Default: 0.
    pub dump_max_seconds: u64,
}

/// An intro file's bytes, held once per mount.
#[derive(Clone, PartialEq, Eq)]
pub struct Intro(pub bytes::Bytes);

impl Intro {
    /// Largest intro file: about a minute of 128 kbit/s MP3.
    pub const MAX: u64 = 1 << 20;
}

impl std::fmt::Debug for Intro {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Intro({} bytes)", self.0.len())
    }
}

/// How a mount's listeners prove who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerAuth {
    /// An htpasswd file (resolved against the config file's directory).
    Htpasswd(std::path::PathBuf),
    /// Icecast's URL authentication: a backend decides.
    Url(Arc<UrlAuth>),
}

/// `type = "url"`: Icecast's URL authentication, with its options' names.
/// Each URL is POSTed a form with Icecast's fields; a listener or source is
/// accepted when the answer carries `auth_header`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlAuth {
    /// Asked whether a listener may listen (`action=listener_add`). Default: none (everyone may).
    pub listener_add: Option<crate::http::url::HttpUrl>,
    /// Told when a listener leaves (`action=listener_remove`, with `duration`).
    pub listener_remove: Option<crate::http::url::HttpUrl>,
    /// Told when a source starts (`action=mount_add`).
    pub mount_add: Option<crate::http::url::HttpUrl>,
    /// Told when a source ends (`action=mount_remove`).
    pub mount_remove: Option<crate::http::url::HttpUrl>,
    /// Asked whether a source may stream (`action=stream_auth`), instead of
    /// the mount's source password.
    pub stream_auth: Option<crate::http::url::HttpUrl>,
    /// Basic credentials Floe sends to the backend. Default: none.
    pub username: Option<String>,
    pub password: Option<String>,
    /// `headers`: the listener's request headers (lower-case names) passed
    /// on in `listener_add`, each as a field named `header_prefix` + name.
    /// Default: none.
    pub headers: Vec<String>,
    /// Default: `ClientHeader.`, as Icecast.
    pub header_prefix: String,
    /// The response header (name, value) that accepts. Default: `icecast-auth-user: 1`.
    pub auth_header: (String, String),
    /// The response header giving a listener's time limit in seconds. Default: `icecast-auth-timelimit`.
    pub timelimit_header: String,
    /// How long a backend may take to answer. Default: 5 s.
    pub timeout: Duration,
    /// When the backend fails (unreachable, timeout, 5xx): let the listener
    /// or source in (`on_error = "allow"`) or not (`"deny"`). Default: deny.
    pub allow_on_error: bool,
}

impl Default for UrlAuth {
    fn default() -> UrlAuth {
        UrlAuth {
            listener_add: None,
            listener_remove: None,
            mount_add: None,
            mount_remove: None,
            stream_auth: None,
            username: None,
            password: None,
            headers: Vec::new(),
            header_prefix: "ClientHeader.".into(),
            auth_header: ("icecast-auth-user".into(), "1".into()),
            timelimit_header: "icecast-auth-timelimit".into(),
            timeout: Duration::from_secs(5),
            allow_on_error: false,
        }
    }
}

/// When a mount is offered as HLS and DASH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HlsMode {
    Off,
    /// The ladder runs from the first HLS or DASH request until nobody has
    /// asked for `idle` (no codec work for mounts nobody plays that way).
    OnDemand,
    /// The ladder runs while the source does: the whole window is always there.
    Always,
}

/// `[hls]` / `[mount.hls]`: one CMAF ladder served as HLS, LL-HLS and DASH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsConfig {
    /// Default: on-demand.
    pub mode: HlsMode,
    /// Part duration, a multiple of 320 ms (whole AAC-LC and Opus frames at
    /// 48 kHz). Default: 320 ms.
    pub part: Duration,
    /// Parts per segment. Default: 6 (1.92 s segments).
    pub segment_parts: u32,
    /// Timeshift: how far back listeners may seek. Default: 3600 s.
    pub window: Duration,
    /// Bytes the window may hold per mount (the oldest segments go first).
    /// Default: 268435456 (256 MiB; an hour of the default ladder is ~130 MB).
    pub window_bytes: u64,
    /// On demand: stop the ladder after this long without an HLS or DASH
    /// request. Default: 300 s.
    pub idle: Duration,
    /// The ladder. Default: AAC-LC 64 and 128 kbit/s, Opus 96 kbit/s.
    pub variants: Vec<HlsVariant>,
}

/// One variant of the ladder: encoded for it, or an existing rendition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HlsVariant {
    /// Its name in URLs, e.g. `aac-64`.
    pub id: String,
    /// AAC, HE-AAC or Opus.
    pub codec: TranscodeCodec,
    /// kbit/s.
    pub bitrate: u32,
    /// Default: the source's, at most 2.
    pub channels: Option<u8>,
    /// A `[[mount.transcode]]` rendition of this mount (48 kHz AAC or Opus)
    /// whose encoder this variant shares instead of running its own.
    pub rendition: Option<String>,
}

impl HlsVariant {
    /// A variant with its own encoder, named after codec and bitrate.
    pub fn encoded(codec: TranscodeCodec, bitrate: u32) -> HlsVariant {
        let name = match codec {
            TranscodeCodec::HeAac => "he-aac",
            TranscodeCodec::Opus => "opus",
            _ => "aac",
        };
        HlsVariant { id: format!("{name}-{bitrate}"), codec, bitrate, channels: None, rendition: None }
    }
}

impl Default for HlsConfig {
    fn default() -> HlsConfig {
        HlsConfig {
            mode: HlsMode::OnDemand,
            part: Duration::from_millis(320),
            segment_parts: 6,
            window: Duration::from_secs(3600),
            window_bytes: 256 << 20,
            idle: Duration::from_secs(300),
            variants: vec![
                HlsVariant::encoded(TranscodeCodec::Aac, 64),
                HlsVariant::encoded(TranscodeCodec::Aac, 128),
                HlsVariant::encoded(TranscodeCodec::Opus, 96),
            ],
        }
    }
}

/// Codecs Floe can encode renditions in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TranscodeCodec {
    Mp3,
    /// AAC-LC.
    Aac,
    /// HE-AAC v1 (AAC-LC with SBR), for low bitrates.
    HeAac,
    Opus,
    Vorbis,
}

/// What Opus and Vorbis renditions are wrapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TranscodeContainer {
    /// Chained Ogg (titles travel as new comment headers). The default.
    Ogg,
    /// WebM, for browsers that do not play Ogg (Safari). Opus only.
    WebM,
}

/// `[[mount.transcode]]`: one rendition of a source mount, served as an
/// ordinary mount of its own. Serializable: a codec process gets it in its job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TranscodeConfig {
    /// The rendition's mount path.
    pub name: String,
    pub codec: TranscodeCodec,
    /// Target bitrate in kbit/s.
    pub bitrate: u32,
    /// Output sample rate. Default: the source's for MP3/AAC/Vorbis (if the
    /// codec supports it), always 48000 for Opus.
    pub sample_rate: Option<u32>,
    /// Output channels (1 downmixes). Default: the source's, at most 2.
    pub channels: Option<u8>,
    /// Container for Opus/Vorbis; `None` for MP3/AAC (bare frames).
    pub container: Option<TranscodeContainer>,
    /// Carry title changes into Ogg renditions as a new chained stream with
    /// new comments (some browsers glitch at chain boundaries). Default: true.
    pub ogg_metadata: bool,
    /// Encode only while the rendition has listeners. Default: false.
    pub on_demand: bool,
    /// The rendition mount's own listener settings.
    pub max_listeners: Option<usize>,
    pub fallback_mount: Option<String>,
    pub fallback_override: bool,
}

impl TranscodeConfig {
    /// The settings an encoder-backed HLS variant is made with (48 kHz).
    pub fn for_variant(variant: &HlsVariant) -> TranscodeConfig {
        TranscodeConfig {
            name: variant.id.clone(),
            codec: variant.codec,
            bitrate: variant.bitrate,
            sample_rate: Some(48_000),
            channels: variant.channels,
            container: None,
            ogg_metadata: false,
            on_demand: false,
            max_listeners: None,
            fallback_mount: None,
            fallback_override: false,
        }
    }
}

impl MountConfig {
    /// Settings for a mount that is not in the config file (any name is accepted
    /// with the global source password, as Icecast does by default).
    pub fn dynamic(name: &str) -> MountConfig {
        MountConfig {
            name: name.to_string(),
            username: "source".to_string(),
            password: None,
            max_listeners: None,
            fallback_mount: None,
            fallback_override: false,
            metaint: 16000,
            info: StreamInfoOverride::default(),
            burst_size: None,
            queue_size: None,
            hidden: false,
            transcode: Vec::new(),
            derived_from: None,
            hls: HlsConfig::default(),
            access: crate::access::Rules::default(),
            listener_auth: None,
            intro: None,
            dump_file: None,
            dump_max_bytes: 0,
            dump_max_seconds: 0,
        }
    }
}

impl Default for Config {
    /// The built-in configuration: Icecast's defaults, so existing tutorials work.
    fn default() -> Config {
        let listen: SocketAddr = ([0, 0, 0, 0], 8000).into();
        Config {
            server: ServerConfig {
                listen: vec![listen],
                tls_listen: Vec::new(),
                hostname: "localhost".into(),
                location: "Earth".into(),
                admin_email: "icemaster@localhost".into(),
                server_id: crate::http::server_id::DEFAULT.into(),
                access_log: None,
                workers: 0,
            },
            limits: Limits::default(),
            auth: AuthConfig {
                source_password: "hackme".into(),
                admin_user: "admin".into(),
                admin_password: "hackme".into(),
                relay_user: "relay".into(),
                relay_password: None,
            },
            shoutcast: ShoutcastConfig { listen: Some(([0, 0, 0, 0], 8001).into()), mount: "/stream".into() },
            hls: HlsConfig::default(),
            access: AccessConfig::default(),
            tls: None,
            mounts: Vec::new(),
            relays: Vec::new(),
            master: None,
            directories: Vec::new(),
        }
    }
}

impl Config {
    /// Settings for `name`: the configured mount, or dynamic defaults.
    pub fn mount(&self, name: &str) -> Arc<MountConfig> {
        self.mounts.iter().find(|m| m.name == name).cloned().unwrap_or_else(|| {
            let mut mount = MountConfig::dynamic(name);
            mount.hls = self.hls.clone();
            Arc::new(mount)
        })
    }

    /// The settings whose source credentials govern `name`: its own, or for a
    /// rendition those of the mount it is encoded from (a rendition has no
    /// source of its own, and its titles are its parent's to set).
    pub fn credentials_mount(&self, name: &str) -> Arc<MountConfig> {
        let mount = self.mount(name);
        match &mount.derived_from {
            Some(parent) => self.mount(parent),
            None => mount,
        }
    }

    /// True when the admin, source or relay passwords are the well-known Icecast defaults.
    pub fn uses_default_passwords(&self) -> bool {
        [Some(&self.auth.source_password), Some(&self.auth.admin_password), self.auth.relay_password.as_ref()]
            .into_iter()
            .any(|password| password.is_some_and(|p| p == "hackme"))
    }
}

/// Is `name` an acceptable mount name? See `mount_name` for the rules.
pub fn valid_mount_name(name: &str) -> bool {
    mount_name::check(name).is_ok()
}
