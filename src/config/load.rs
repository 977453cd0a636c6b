//! The TOML loader: turns a configuration file into a [`Config`], or into a
//! [`ConfigError`] listing *every* problem found, each with file, line and key.
//!
//! The file is parsed with `toml`'s recoverable parser and the spanned tree is
//! walked by hand, one small table of fields per section, so that syntax
//! errors, unknown keys (typos are never silently ignored), wrong types,
//! out-of-range values and cross-field mistakes are all reported together.
//! Every key is optional; anything left out keeps the value of
//! [`Config::default`].

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

mod directories;
mod hint;
mod hls;
mod listener_auth;
mod mounts;
mod relays;
mod transcode;
mod values;

use hint::did_you_mean;
use mounts::mounts;

use super::ShoutcastConfig;
use super::{AccessConfig, AuthConfig, Config, Limits, MountConfig, ServerConfig};
use crate::tls::{CertError, CertFiles};

/// One thing wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file name as given to the loader.
    pub file: String,
    /// 1-based line number; 0 when the problem has no position (e.g. an unreadable file).
    pub line: usize,
    /// Dotted key, e.g. `limits.queue_size` or `mount[2].metaint` (mounts are
    /// counted from 1, in file order). Empty for TOML syntax and read errors.
    pub key: String,
    /// What is wrong, for humans.
    pub message: String,
}

impl fmt::Display for Problem {
    /// `FILE:LINE: KEY: MESSAGE`, or `FILE:LINE: MESSAGE` when there is no key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a configuration file, sorted by line.
///
/// Displays as one [`Problem`] per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in line order (problems without a line come first).
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// What the encoders accept, asked of each rendition and HLS variant while
/// loading, so that a bitrate an encoder would refuse is a problem with a
/// file, line and key rather than a rendition failing at run time. The
/// loader runs no codec itself: the binary passes the real encoders' rules
/// (`transcode::ENCODERS`).
pub trait EncoderRules {
    fn rendition(&self, rendition: &super::TranscodeConfig) -> Result<(), String>;
    fn variant(&self, variant: &super::HlsVariant) -> Result<(), String>;
}

/// Reads and parses the configuration file at `path`.
///
/// A file that cannot be read yields a single problem naming the file.
pub fn load_file(path: &Path, rules: &dyn EncoderRules) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_str(&text, &file, rules),
        Err(err) => Err(ConfigError {
            problems: vec![Problem {
                file,
                line: 0,
                key: String::new(),
                message: format!("cannot read configuration file: {err}"),
            }],
        }),
    }
}

/// Parses configuration text; `file` is only used to label problems.
pub fn parse_str(text: &str, file: &str, rules: &dyn EncoderRules) -> Result<Config, ConfigError> {
    let (doc, errors) = DeTable::parse_recoverable(text);
    let mut cx = Ctx::new(text, file, rules);
    for err in &errors {
        cx.syntax(err);
    }
    let doc = doc.get_ref();
    let mut draft = Draft::default();
    walk_root(&mut cx, doc, &mut draft);
    check_limits(&mut cx, doc, &draft.config.limits);
    draft.config.shoutcast = resolve_shoutcast(&mut cx, doc, &draft);
    draft.config.tls = resolve_tls(&mut cx, doc, &draft);
    hls::resolve(&mut cx, doc, &mut draft.config);
    cx.finish(draft.config)
}

// ---------------------------------------------------------------------------
// Problem collection

/// A spanned TOML value.
type Value<'i> = Spanned<DeValue<'i>>;

/// Walk state: where line breaks are and what has gone wrong so far.
struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
    rules: &'a dyn EncoderRules,
    /// Byte offset at which each line starts.
    line_starts: Vec<usize>,
    problems: Vec<Problem>,
    /// Lines with a TOML syntax error; other problems on them are noise.
    syntax_lines: Vec<usize>,
}

impl<'a> Ctx<'a> {
    fn new(text: &'a str, file: &'a str, rules: &'a dyn EncoderRules) -> Ctx<'a> {
        let breaks = text.match_indices('\n').map(|(i, _)| i + 1);
        Ctx {
            text,
            file,
            rules,
            line_starts: std::iter::once(0).chain(breaks).collect(),
            problems: Vec::new(),
            syntax_lines: Vec::new(),
        }
    }

    /// 1-based line of a byte span's start; 0 without a span.
    /// A path named in the file, relative to the file's directory.
    fn relative(&self, name: &str) -> PathBuf {
        match Path::new(self.file).parent() {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        }
    }

    fn line(&self, span: Option<Range<usize>>) -> usize {
        span.map_or(0, |s| self.line_starts.partition_point(|&b| b <= s.start))
    }

    fn report(&mut self, span: Option<Range<usize>>, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_string(),
            line: self.line(span),
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn syntax(&mut self, err: &toml::de::Error) {
        let span = err.span();
        let mut message = format!("TOML syntax error: {}", err.message());
        if let Some(name) = span.clone().and_then(|s| self.text.get(s)) {
            if err.message() == "duplicate key" && !name.is_empty() {
                message = format!("TOML syntax error: duplicate key {name:?}");
            }
        }
        let line = self.line(span.clone());
        self.syntax_lines.push(line);
        self.report(span, "", message);
    }

    /// Ok when nothing was reported; drops follow-on noise on syntax-error lines.
    fn finish(self, config: Config) -> Result<Config, ConfigError> {
        let Ctx { mut problems, syntax_lines, .. } = self;
        problems.retain(|p| p.key.is_empty() || !syntax_lines.contains(&p.line));
        problems.sort_by_key(|p| p.line);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }
}

// ---------------------------------------------------------------------------
// The schema, one field table per section.

/// Longest accepted timeout: one year.
const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 3600;
/// Largest accepted queue or burst: 1 GiB.
const MAX_BUFFER: u64 = 1 << 30;
/// Smallest accepted queue: a few TCP segments.
const MIN_QUEUE: u64 = 4096;
/// Smallest memory limit of a codec process: what the codecs need to start.
const MIN_CODEC_MEMORY: u64 = 128 << 20;
/// Largest accepted request-head limit: 1 MiB.
const MAX_HEAD: u64 = 1 << 20;
/// Counts (clients, sources, listeners) have no upper bound.
const MAX_COUNT: u64 = u64::MAX;

/// Reads one key's value into the section being built.
type Apply<T> = fn(&mut Ctx<'_>, &str, &Value<'_>, &mut T);
/// A key name and how to apply it.
type Field<T> = (&'static str, Apply<T>);

/// Stores `value` if the reader accepted it.
fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

const SERVER: &[Field<ServerConfig>] = &[
    ("listen", |c, k, v, s| set(&mut s.listen, c.addrs(k, v))),
    ("tls_listen", |c, k, v, s| set(&mut s.tls_listen, c.addrs(k, v))),
    ("hostname", |c, k, v, s| set(&mut s.hostname, c.nonempty(k, v))),
    ("location", |c, k, v, s| set(&mut s.location, c.string(k, v))),
    ("admin_email", |c, k, v, s| set(&mut s.admin_email, c.string(k, v))),
    ("access_log", |c, k, v, s| set(&mut s.access_log, c.nonempty(k, v).map(Some))),
    ("workers", |c, k, v, s| set(&mut s.workers, c.size(k, v, 0..=1024, ""))),
    ("server_id", |c, k, v, s| set(&mut s.server_id, c.header_text(k, v))),
];

const LIMITS: &[Field<Limits>] = &[
    ("clients", |c, k, v, l| set(&mut l.clients, c.size(k, v, 1..=MAX_COUNT, ""))),
    ("sources", |c, k, v, l| set(&mut l.sources, c.size(k, v, 1..=MAX_COUNT, ""))),
    ("connections", |c, k, v, l| set(&mut l.connections, c.size(k, v, 2..=MAX_COUNT, "").map(Some))),
    ("queue_size", |c, k, v, l| set(&mut l.queue_size, c.size(k, v, MIN_QUEUE..=MAX_BUFFER, "bytes"))),
    ("burst_size", |c, k, v, l| set(&mut l.burst_size, c.size(k, v, 0..=MAX_BUFFER, "bytes"))),
    ("header_timeout", |c, k, v, l| set(&mut l.header_timeout, c.seconds(k, v))),
    ("source_timeout", |c, k, v, l| set(&mut l.source_timeout, c.seconds(k, v))),
    ("client_timeout", |c, k, v, l| set(&mut l.client_timeout, c.seconds(k, v))),
    ("max_header_line", |c, k, v, l| set(&mut l.max_header_line, c.size(k, v, 256..=MAX_HEAD, "bytes"))),
    ("max_header_size", |c, k, v, l| set(&mut l.max_header_size, c.size(k, v, 256..=MAX_HEAD, "bytes"))),
    ("max_headers", |c, k, v, l| set(&mut l.max_headers, c.size(k, v, 1..=10_000, ""))),
    ("delivery_interval_ms", |c, k, v, l| {
        set(&mut l.delivery_interval, c.uint(k, v, 0..=1000, "milliseconds").map(Duration::from_millis))
    }),
    ("transcode_memory", |c, k, v, l| set(&mut l.transcode_memory, c.uint(k, v, MIN_CODEC_MEMORY..=1 << 40, "bytes"))),
    ("upgrade_drain", |c, k, v, l| set(&mut l.upgrade_drain, c.seconds(k, v))),
];

const AUTH: &[Field<AuthConfig>] = &[
    ("source_password", |c, k, v, a| set(&mut a.source_password, c.nonempty(k, v))),
    ("admin_user", |c, k, v, a| set(&mut a.admin_user, c.nonempty(k, v))),
    ("admin_password", |c, k, v, a| set(&mut a.admin_password, c.nonempty(k, v))),
    ("relay_user", |c, k, v, a| set(&mut a.relay_user, c.nonempty(k, v))),
    ("relay_password", |c, k, v, a| set(&mut a.relay_password, c.nonempty(k, v).map(Some))),
];

/// `[shoutcast]` as written; the listen address is resolved once `[server]` is known.
#[derive(Debug)]
struct ShoutcastDraft {
    enabled: bool,
    port: Option<u16>,
    mount: String,
}

const SHOUTCAST: &[Field<ShoutcastDraft>] = &[
    ("enabled", |c, k, v, s| set(&mut s.enabled, c.boolean(k, v))),
    ("port", |c, k, v, s| {
        let port = c.uint(k, v, 0..=u64::from(u16::MAX), "");
        set(&mut s.port, port.and_then(|p| u16::try_from(p).ok()).map(Some))
    }),
    ("mount", |c, k, v, s| set(&mut s.mount, c.mount_name(k, v))),
];

const ACCESS: &[Field<AccessConfig>] = &[
    ("allow", |c, k, v, a| set(&mut a.rules.allow, c.cidrs(k, v))),
    ("deny", |c, k, v, a| set(&mut a.rules.deny, c.cidrs(k, v))),
    ("deny_user_agents", |c, k, v, a| set(&mut a.rules.deny_user_agents, c.agents(k, v))),
    ("trusted_proxies", |c, k, v, a| set(&mut a.trusted_proxies, c.cidrs(k, v))),
    ("max_connections_per_ip", |c, k, v, a| set(&mut a.max_connections_per_ip, c.size(k, v, 0..=MAX_COUNT, ""))),
];

/// `[tls]` as written; paths are resolved and the files checked once the
/// whole document is read.
#[derive(Debug, Default)]
struct TlsDraft {
    cert: Option<String>,
    key: Option<String>,
    /// `[[tls.sni]]`, resolved and checked as read.
    sni: Vec<crate::tls::SniFiles>,
}

const TLS: &[Field<TlsDraft>] = &[
    ("cert", |c, k, v, t| set(&mut t.cert, c.nonempty(k, v).map(Some))),
    ("key", |c, k, v, t| set(&mut t.key, c.nonempty(k, v).map(Some))),
    ("sni", |c, k, v, t| set(&mut t.sni, sni_pairs(c, k, v))),
];

/// One `[[tls.sni]]` as written.
#[derive(Debug, Default)]
struct SniDraft {
    names: Option<Vec<String>>,
    cert: Option<String>,
    key: Option<String>,
}

const SNI: &[Field<SniDraft>] = &[
    ("names", |c, k, v, d| d.names = c.host_names(k, v)),
    ("cert", |c, k, v, d| d.cert = c.nonempty(k, v)),
    ("key", |c, k, v, d| d.key = c.nonempty(k, v)),
];

/// `[[tls.sni]]`: pairs served to clients asking for one of their names;
/// each must load now, like the default pair.
fn sni_pairs(cx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<Vec<crate::tls::SniFiles>> {
    let DeValue::Array(items) = v.get_ref() else {
        cx.mismatch(key, v, "an array of tables (write [[tls.sni]])");
        return None;
    };
    let mut pairs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("{key}[{}]", i + 1);
        let Some(table) = cx.table(&prefix, item) else { continue };
        let mut d = SniDraft::default();
        walk_fields(cx, "sni", &prefix, table, SNI, &mut d);
        let (Some(names), Some(cert), Some(key_file)) = (d.names, d.cert, d.key) else {
            if ["names", "cert", "key"].iter().any(|k| table.get(*k).is_none()) {
                cx.report(Some(item.span()), &prefix, "an SNI entry needs names, cert and key");
            }
            continue;
        };
        let files = CertFiles { cert: cx.relative(&cert), key: cx.relative(&key_file) };
        if let Err(error) = files.load() {
            let which = if matches!(error, CertError::Key { .. }) { "key" } else { "cert" };
            cx.report(table.get(which).map(|v| v.span()), &format!("{prefix}.{which}"), error.to_string());
            continue;
        }
        pairs.push(crate::tls::SniFiles { names, files });
    }
    Some(pairs)
}

const MOUNT: &[Field<MountConfig>] = &[
    ("name", |c, k, v, m| set(&mut m.name, c.mount_name(k, v))),
    ("username", |c, k, v, m| set(&mut m.username, c.nonempty(k, v))),
    ("password", |c, k, v, m| set(&mut m.password, c.nonempty(k, v).map(Some))),
    ("max_listeners", |c, k, v, m| set(&mut m.max_listeners, c.size(k, v, 0..=MAX_COUNT, "").map(Some))),
    ("fallback_mount", |c, k, v, m| set(&mut m.fallback_mount, c.mount_name(k, v).map(Some))),
    ("fallback_override", |c, k, v, m| set(&mut m.fallback_override, c.boolean(k, v))),
    ("metaint", |c, k, v, m| set(&mut m.metaint, c.size(k, v, 1..=65535, "bytes"))),
    ("burst_size", |c, k, v, m| set(&mut m.burst_size, c.size(k, v, 0..=MAX_BUFFER, "bytes").map(Some))),
    ("queue_size", |c, k, v, m| {
        let size = c.size(k, v, MIN_QUEUE..=MAX_BUFFER, "bytes");
        set(&mut m.queue_size, size.map(Some))
    }),
    ("hidden", |c, k, v, m| set(&mut m.hidden, c.boolean(k, v))),
    ("allow", |c, k, v, m| set(&mut m.access.allow, c.cidrs(k, v))),
    ("deny", |c, k, v, m| set(&mut m.access.deny, c.cidrs(k, v))),
    ("deny_user_agents", |c, k, v, m| set(&mut m.access.deny_user_agents, c.agents(k, v))),
    ("listener_auth", |c, k, v, m| set(&mut m.listener_auth, listener_auth::listener_auth(c, k, v).map(Some))),
    ("intro", |c, k, v, m| set(&mut m.intro, c.intro(k, v).map(Some))),
    ("dump_file", |c, k, v, m| set(&mut m.dump_file, c.nonempty(k, v).map(|p| Some(c.relative(&p))))),
    ("dump_max_bytes", |c, k, v, m| set(&mut m.dump_max_bytes, c.uint(k, v, 0..=1 << 50, "bytes"))),
    ("dump_max_seconds", |c, k, v, m| set(&mut m.dump_max_seconds, c.uint(k, v, 0..=MAX_TIMEOUT_SECS, "seconds"))),
    ("stream_name", |c, k, v, m| set(&mut m.info.name, c.string(k, v).map(Some))),
    ("stream_description", |c, k, v, m| set(&mut m.info.description, c.string(k, v).map(Some))),
    ("stream_genre", |c, k, v, m| set(&mut m.info.genre, c.string(k, v).map(Some))),
    ("stream_url", |c, k, v, m| set(&mut m.info.url, c.string(k, v).map(Some))),
    ("public", |c, k, v, m| set(&mut m.info.public, c.boolean(k, v).map(Some))),
    ("transcode", |c, k, v, m| set(&mut m.transcode, transcode::transcodes(c, k, v))),
    // Read once the whole file is (it starts from `[hls]`): see `hls::resolve`.
    ("hls", |_, _, _, _| {}),
];

/// Section names, in documentation order.
const SECTIONS: [&str; 12] = [
    "server",
    "limits",
    "auth",
    "access",
    "shoutcast",
    "tls",
    "hls",
    "variant",
    "mount",
    "transcode",
    "relay",
    "master",
];

fn names<T>(fields: &[Field<T>]) -> Vec<&'static str> {
    fields.iter().map(|f| f.0).collect()
}

/// The keys a section accepts.
fn section_keys(section: &str) -> Vec<&'static str> {
    match section {
        "server" => names(SERVER),
        "limits" => names(LIMITS),
        "auth" => names(AUTH),
        "shoutcast" => names(SHOUTCAST),
        "access" => names(ACCESS),
        "tls" => names(TLS),
        "sni" => names(SNI),
        "mount" => names(MOUNT),
        "transcode" => transcode::keys(),
        "hls" => hls::keys(),
        "variant" => hls::variant_keys(),
        "listener_auth" => listener_auth::keys(),
        "relay" => relays::keys(),
        "master" => relays::master_keys(),
        "directory" => directories::keys(),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Walking the document

/// Everything gathered from the document before cross-section resolution.
struct Draft {
    config: Config,
    shoutcast: ShoutcastDraft,
    tls: Option<TlsDraft>,
}

impl Default for Draft {
    fn default() -> Draft {
        let config = Config::default();
        let shoutcast = ShoutcastDraft { enabled: true, port: None, mount: config.shoutcast.mount.clone() };
        Draft { config, shoutcast, tls: None }
    }
}

fn walk_root(cx: &mut Ctx<'_>, doc: &DeTable<'_>, d: &mut Draft) {
    for (k, v) in doc.iter() {
        let name = k.get_ref().as_ref();
        match name {
            "server" => section(cx, name, v, SERVER, &mut d.config.server),
            "limits" => section(cx, name, v, LIMITS, &mut d.config.limits),
            "auth" => section(cx, name, v, AUTH, &mut d.config.auth),
            "access" => section(cx, name, v, ACCESS, &mut d.config.access),
            "shoutcast" => section(cx, name, v, SHOUTCAST, &mut d.shoutcast),
            "tls" => section(cx, name, v, TLS, d.tls.get_or_insert_with(TlsDraft::default)),
            "hls" => section(cx, name, v, hls::HLS, &mut d.config.hls),
            "mount" => d.config.mounts = mounts(cx, v),
            "relay" => d.config.relays = relays::relays(cx, v),
            "master" => d.config.master = relays::master(cx, v),
            "directory" => d.config.directories = directories::directories(cx, v),
            _ => unknown(cx, "", "", k, v.get_ref().is_table()),
        }
    }
}

/// A `[section]` table: every key must be one of `fields`.
fn section<T>(cx: &mut Ctx<'_>, name: &str, v: &Value<'_>, fields: &[Field<T>], out: &mut T) {
    if let Some(table) = cx.table(name, v) {
        walk_fields(cx, name, name, table, fields, out);
    }
}

fn walk_fields<T>(
    cx: &mut Ctx<'_>,
    section: &str,
    prefix: &str,
    table: &DeTable<'_>,
    fields: &[Field<T>],
    out: &mut T,
) {
    for (k, v) in table.iter() {
        let name = k.get_ref().as_ref();
        match fields.iter().find(|f| f.0 == name) {
            Some((_, apply)) => apply(cx, &format!("{prefix}.{name}"), v, out),
            None => unknown(cx, section, prefix, k, false),
        }
    }
}

/// Reports an unknown key (or, at the top level, section) with a hint.
fn unknown(cx: &mut Ctx<'_>, section: &str, prefix: &str, k: &Spanned<std::borrow::Cow<'_, str>>, is_table: bool) {
    let name = k.get_ref().as_ref();
    let path = if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") };
    let message = if section.is_empty() && is_table {
        format!("unknown section [{name}]{}", did_you_mean(name, &SECTIONS))
    } else {
        format!("unknown key {name:?}{}", key_hint(section, name))
    };
    cx.report(Some(k.span()), &path, message);
}

/// A close spelling among this section's keys, else the section the key belongs to.
fn key_hint(section: &str, name: &str) -> String {
    let hint = did_you_mean(name, &section_keys(section));
    if !hint.is_empty() {
        return hint;
    }
    SECTIONS
        .iter()
        .find(|s| **s != section && section_keys(s).contains(&name))
        .map_or_else(String::new, |s| format!(" (it belongs in [{s}])"))
}

// ---------------------------------------------------------------------------
// Cross-section checks

/// The span of `doc[path[0]][path[1]]...`, if present.
fn span_at(doc: &DeTable<'_>, path: &[&str]) -> Option<Range<usize>> {
    let (first, rest) = path.split_first()?;
    let value = doc.get(*first)?;
    match (rest.is_empty(), value.get_ref()) {
        (true, _) => Some(value.span()),
        (false, DeValue::Table(t)) => span_at(t, rest),
        _ => None,
    }
}

fn check_limits(cx: &mut Ctx<'_>, doc: &DeTable<'_>, limits: &Limits) {
    if limits.max_header_line > limits.max_header_size {
        let key = "limits.max_header_line";
        let span =
            span_at(doc, &["limits", "max_header_line"]).or_else(|| span_at(doc, &["limits", "max_header_size"]));
        let message = format!("{} exceeds max_header_size ({})", limits.max_header_line, limits.max_header_size);
        cx.report(span, key, message);
    }
}

/// Applies the default port rule: first listen address's IP, its port + 1 (0 stays 0).
fn resolve_shoutcast(cx: &mut Ctx<'_>, doc: &DeTable<'_>, d: &Draft) -> ShoutcastConfig {
    let s = &d.shoutcast;
    let first = d.config.server.listen.first().copied();
    let first = first.unwrap_or_else(|| ([0, 0, 0, 0], 8000).into());
    let port = match (s.enabled, s.port) {
        (false, _) => None,
        (true, Some(port)) => Some(port),
        (true, None) if first.port() == 0 => Some(0),
        (true, None) => first.port().checked_add(1),
    };
    if s.enabled && port.is_none() {
        let span = span_at(doc, &["server", "listen"]);
        let message = "default port (first listen port + 1) exceeds 65535; set [shoutcast] port \
                       or enabled = false";
        cx.report(span, "shoutcast.port", message);
    }
    ShoutcastConfig { listen: port.map(|p| SocketAddr::new(first.ip(), p)), mount: s.mount.clone() }
}

/// `[tls]` and `tls_listen` go together; the certificate and key must load
/// now (an unusable pair found at start-up beats one found at the first
/// handshake).
fn resolve_tls(cx: &mut Ctx<'_>, doc: &DeTable<'_>, d: &Draft) -> Option<crate::tls::TlsFiles> {
    let wanted = !d.config.server.tls_listen.is_empty();
    let Some(tls) = &d.tls else {
        if wanted {
            let span = span_at(doc, &["server", "tls_listen"]);
            cx.report(span, "server.tls_listen", "needs a [tls] section with cert and key");
        }
        return None;
    };
    if !wanted {
        cx.report(span_at(doc, &["tls"]), "tls", "no address serves TLS: add [server] tls_listen");
    }
    let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
        let missing = if tls.cert.is_none() { "tls.cert" } else { "tls.key" };
        cx.report(span_at(doc, &["tls"]), missing, "missing: [tls] needs both cert and key (PEM files)");
        return None;
    };
    let files = CertFiles { cert: cx.relative(cert), key: cx.relative(key) };
    if let Err(error) = files.load() {
        let key = if matches!(error, CertError::Key { .. }) { "key" } else { "cert" };
        cx.report(span_at(doc, &["tls", key]), &format!("tls.{key}"), error.to_string());
        return None;
    }
    wanted.then(|| crate::tls::TlsFiles { default: files, sni: tls.sni.clone() })
}

#[cfg(test)]
mod tests;
