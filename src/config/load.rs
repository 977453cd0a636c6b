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
use std::ops::{Range, RangeInclusive};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

mod transcode;

use super::ShoutcastConfig;
use super::{valid_mount_name, AuthConfig, Config, Limits, MountConfig, ServerConfig};

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

/// Reads and parses the configuration file at `path`.
///
/// A file that cannot be read yields a single problem naming the file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_str(&text, &file),
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
pub fn parse_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    let (doc, errors) = DeTable::parse_recoverable(text);
    let mut cx = Ctx::new(text, file);
    for err in &errors {
        cx.syntax(err);
    }
    let doc = doc.get_ref();
    let mut draft = Draft::default();
    walk_root(&mut cx, doc, &mut draft);
    check_limits(&mut cx, doc, &draft.config.limits);
    draft.config.shoutcast = resolve_shoutcast(&mut cx, doc, &draft);
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
    /// Byte offset at which each line starts.
    line_starts: Vec<usize>,
    problems: Vec<Problem>,
    /// Lines with a TOML syntax error; other problems on them are noise.
    syntax_lines: Vec<usize>,
}

impl<'a> Ctx<'a> {
    fn new(text: &'a str, file: &'a str) -> Ctx<'a> {
        let breaks = text.match_indices('\n').map(|(i, _)| i + 1);
        Ctx {
            text,
            file,
            line_starts: std::iter::once(0).chain(breaks).collect(),
            problems: Vec::new(),
            syntax_lines: Vec::new(),
        }
    }

    /// 1-based line of a byte span's start; 0 without a span.
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
// Typed value readers: each reports a problem and returns None on failure.

/// What `valid_mount_name` requires, for messages.
const MOUNT_NAME_RULES: &str = "must be \"/\" followed by a path, with no \"..\" segment, \
    no control characters, no \"?\", \"#\" or \"\\\", and at most 256 bytes";
/// What a socket address looks like, for messages.
const ADDR_FORM: &str = "expected IP:PORT, e.g. \"0.0.0.0:8000\" or \"[::]:8000\"";

/// "must be at least 1" / "must be between 1 and 65535 bytes".
fn range_message(range: &RangeInclusive<u64>, unit: &str) -> String {
    let unit = if unit.is_empty() { String::new() } else { format!(" {unit}") };
    let (lo, hi) = (range.start(), range.end());
    if *hi == u64::MAX {
        format!("must be at least {lo}{unit}")
    } else {
        format!("must be between {lo} and {hi}{unit}")
    }
}

/// "a string", "an integer", ... for messages.
fn describe(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl Ctx<'_> {
    fn mismatch(&mut self, key: &str, v: &Value<'_>, expected: &str) {
        let message = format!("expected {expected}, found {}", describe(v.get_ref()));
        self.report(Some(v.span()), key, message);
    }

    fn string(&mut self, key: &str, v: &Value<'_>) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.mismatch(key, v, "a string");
                None
            }
        }
    }

    fn nonempty(&mut self, key: &str, v: &Value<'_>) -> Option<String> {
        let s = self.string(key, v)?;
        if s.is_empty() {
            self.report(Some(v.span()), key, "must not be empty");
            return None;
        }
        Some(s)
    }

    fn boolean(&mut self, key: &str, v: &Value<'_>) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.mismatch(key, v, "a boolean (true or false)");
                None
            }
        }
    }

    /// An integer within `range`; `unit` (e.g. "bytes") only decorates messages.
    fn uint(&mut self, key: &str, v: &Value<'_>, range: RangeInclusive<u64>, unit: &str) -> Option<u64> {
        let DeValue::Integer(int) = v.get_ref() else {
            self.mismatch(key, v, "an integer");
            return None;
        };
        let n = i128::from_str_radix(int.as_str(), int.radix()).ok();
        let n = n.and_then(|n| u64::try_from(n).ok());
        if let Some(n) = n.filter(|n| range.contains(n)) {
            return Some(n);
        }
        let message = format!("{}, got {int}", range_message(&range, unit));
        self.report(Some(v.span()), key, message);
        None
    }

    fn size(&mut self, key: &str, v: &Value<'_>, range: RangeInclusive<u64>, unit: &str) -> Option<usize> {
        let n = self.uint(key, v, range, unit)?;
        let size = usize::try_from(n).ok();
        if size.is_none() {
            self.report(Some(v.span()), key, format!("{n} is too large for this platform"));
        }
        size
    }

    fn seconds(&mut self, key: &str, v: &Value<'_>) -> Option<Duration> {
        self.uint(key, v, 1..=MAX_TIMEOUT_SECS, "seconds").map(Duration::from_secs)
    }

    fn mount_name(&mut self, key: &str, v: &Value<'_>) -> Option<String> {
        let name = self.string(key, v)?;
        if valid_mount_name(&name) {
            return Some(name);
        }
        self.report(Some(v.span()), key, format!("invalid mount name {name:?}: {MOUNT_NAME_RULES}"));
        None
    }

    fn addr(&mut self, key: &str, v: &Value<'_>) -> Option<SocketAddr> {
        let text = self.string(key, v)?;
        match text.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                let message = format!("invalid socket address {text:?} ({ADDR_FORM})");
                self.report(Some(v.span()), key, message);
                None
            }
        }
    }

    /// One address as a string, or an array of them.
    fn addrs(&mut self, key: &str, v: &Value<'_>) -> Option<Vec<SocketAddr>> {
        let items = match v.get_ref() {
            DeValue::String(_) => return self.addr(key, v).map(|a| vec![a]),
            DeValue::Array(items) => items,
            _ => {
                self.mismatch(key, v, "a socket address or an array of them");
                return None;
            }
        };
        if items.is_empty() {
            self.report(Some(v.span()), key, "must list at least one address");
            return None;
        }
        let addrs: Vec<_> = items.iter().map(|item| self.addr(key, item)).collect();
        addrs.into_iter().collect()
    }

    fn table<'v, 'i>(&mut self, key: &str, v: &'v Value<'i>) -> Option<&'v DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.mismatch(key, v, "a table");
                None
            }
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
    ("hostname", |c, k, v, s| set(&mut s.hostname, c.nonempty(k, v))),
    ("location", |c, k, v, s| set(&mut s.location, c.string(k, v))),
    ("admin_email", |c, k, v, s| set(&mut s.admin_email, c.string(k, v))),
    ("access_log", |c, k, v, s| set(&mut s.access_log, c.nonempty(k, v).map(Some))),
    ("workers", |c, k, v, s| set(&mut s.workers, c.size(k, v, 0..=1024, ""))),
];

const LIMITS: &[Field<Limits>] = &[
    ("clients", |c, k, v, l| set(&mut l.clients, c.size(k, v, 1..=MAX_COUNT, ""))),
    ("sources", |c, k, v, l| set(&mut l.sources, c.size(k, v, 1..=MAX_COUNT, ""))),
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
];

const AUTH: &[Field<AuthConfig>] = &[
    ("source_password", |c, k, v, a| set(&mut a.source_password, c.nonempty(k, v))),
    ("admin_user", |c, k, v, a| set(&mut a.admin_user, c.nonempty(k, v))),
    ("admin_password", |c, k, v, a| set(&mut a.admin_password, c.nonempty(k, v))),
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
    ("stream_name", |c, k, v, m| set(&mut m.info.name, c.string(k, v).map(Some))),
    ("stream_description", |c, k, v, m| set(&mut m.info.description, c.string(k, v).map(Some))),
    ("stream_genre", |c, k, v, m| set(&mut m.info.genre, c.string(k, v).map(Some))),
    ("stream_url", |c, k, v, m| set(&mut m.info.url, c.string(k, v).map(Some))),
    ("public", |c, k, v, m| set(&mut m.info.public, c.boolean(k, v).map(Some))),
    ("transcode", |c, k, v, m| set(&mut m.transcode, transcode::transcodes(c, k, v))),
];

/// Section names, in documentation order.
const SECTIONS: [&str; 6] = ["server", "limits", "auth", "shoutcast", "mount", "transcode"];

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
        "mount" => names(MOUNT),
        "transcode" => transcode::keys(),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Walking the document

/// Everything gathered from the document before cross-section resolution.
struct Draft {
    config: Config,
    shoutcast: ShoutcastDraft,
}

impl Default for Draft {
    fn default() -> Draft {
        let config = Config::default();
        let shoutcast = ShoutcastDraft { enabled: true, port: None, mount: config.shoutcast.mount.clone() };
        Draft { config, shoutcast }
    }
}

fn walk_root(cx: &mut Ctx<'_>, doc: &DeTable<'_>, d: &mut Draft) {
    for (k, v) in doc.iter() {
        let name = k.get_ref().as_ref();
        match name {
            "server" => section(cx, name, v, SERVER, &mut d.config.server),
            "limits" => section(cx, name, v, LIMITS, &mut d.config.limits),
            "auth" => section(cx, name, v, AUTH, &mut d.config.auth),
            "shoutcast" => section(cx, name, v, SHOUTCAST, &mut d.shoutcast),
            "mount" => d.config.mounts = mounts(cx, v),
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

/// ` (did you mean "x"?)` for the closest candidate within edit distance 2.
fn did_you_mean(name: &str, candidates: &[&str]) -> String {
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map_or_else(String::new, |(_, c)| format!(" (did you mean {c:?}?)"))
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

// ---------------------------------------------------------------------------
// Mounts

/// `[[mount]]` entries, in file order.
fn mounts(cx: &mut Ctx<'_>, v: &Value<'_>) -> Vec<Arc<MountConfig>> {
    let DeValue::Array(items) = v.get_ref() else {
        cx.mismatch("mount", v, "an array of tables (write [[mount]], not [mount])");
        return Vec::new();
    };
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("mount[{}]", i + 1);
        if let Some(m) = mount(cx, &prefix, item, &mut seen) {
            out.push(Arc::new(m));
        }
    }
    // Renditions are mounts too: their names must be new.
    let derived: Vec<MountConfig> = out.iter().flat_map(|m| transcode::derived_mounts(m)).collect();
    for d in derived {
        if let Some((_, line)) = seen.iter().find(|(n, _)| *n == d.name) {
            let parent = d.derived_from.clone().unwrap_or_default();
            let message = format!("transcode mount {:?} of {parent} is already a mount (line {line})", d.name);
            cx.report(None, &format!("mount {parent}.transcode"), message);
            continue;
        }
        seen.push((d.name.clone(), 0));
        out.push(Arc::new(d));
    }
    out
}

/// One `[[mount]]` table; `seen` holds earlier names and their lines.
fn mount(cx: &mut Ctx<'_>, prefix: &str, item: &Value<'_>, seen: &mut Vec<(String, usize)>) -> Option<MountConfig> {
    let table = cx.table(prefix, item)?;
    let mut m = MountConfig::dynamic("");
    walk_fields(cx, "mount", prefix, table, MOUNT, &mut m);
    let Some(name_span) = table.get("name").map(Spanned::span) else {
        cx.report(Some(item.span()), prefix, "missing required key \"name\"");
        return None;
    };
    if m.name.is_empty() {
        return None; // invalid name, already reported
    }
    let line = cx.line(Some(name_span.clone()));
    if let Some((_, first)) = seen.iter().find(|(n, _)| *n == m.name) {
        let message = format!("duplicate mount name {:?} (first defined on line {first})", m.name);
        cx.report(Some(name_span), &format!("{prefix}.name"), message);
    } else {
        seen.push((m.name.clone(), line));
    }
    if m.fallback_mount.as_deref() == Some(m.name.as_str()) {
        let span = table.get("fallback_mount").map(Spanned::span);
        cx.report(span, &format!("{prefix}.fallback_mount"), "a mount cannot fall back to itself");
    }
    Some(m)
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

#[cfg(test)]
mod tests {
    use super::super::StreamInfoOverride;
    use super::*;

    fn parse(text: &str) -> Config {
        match parse_str(text, "test.toml") {
            Ok(config) => config,
            Err(err) => panic!("unexpected problems:\n{err}"),
        }
    }

    fn problems(text: &str) -> Vec<Problem> {
        match parse_str(text, "test.toml") {
            Ok(config) => panic!("expected problems, parsed {config:?}"),
            Err(err) => err.problems,
        }
    }

    /// (line, key) pairs, for compact assertions.
    fn where_(text: &str) -> Vec<(usize, String)> {
        problems(text).into_iter().map(|p| (p.line, p.key)).collect()
    }

    fn one(text: &str) -> Problem {
        let mut all = problems(text);
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn empty_file_is_the_builtin_default() {
        let parsed = parse("");
        assert_eq!(format!("{parsed:?}"), format!("{:?}", Config::default()));
        let commented = parse("# nothing\n\n[server]\n[limits]\n[auth]\n[shoutcast]\n");
        assert_eq!(format!("{commented:?}"), format!("{:?}", Config::default()));
    }

    const FULL: &str = r#"
[server]
listen = ["127.0.0.1:9000", "[::1]:9001"]
hostname = "radio.example.org"
location = "Mars"
admin_email = "ops@example.org"
access_log = "/tmp/access.log"

[limits]
clients = 50
sources = 5
queue_size = 0x10_0000
burst_size = 0
header_timeout = 5
source_timeout = 6
client_timeout = 7
max_header_line = 1024
max_header_size = 2048
max_headers = 32

[auth]
source_password = "s3cret"
admin_user = "root"
admin_password = "adm1n"

[shoutcast]
enabled = true
port = 9100
mount = "/sc"

[[mount]]
name = "/live.mp3"
username = "dj"
password = "pw"
max_listeners = 0
fallback_mount = "/backup.mp3"
fallback_override = true
metaint = 8192
burst_size = 1000
queue_size = 4096
hidden = true
stream_name = "Name"
stream_description = "Desc"
stream_genre = "Genre"
stream_url = "https://example.org"
public = true

[[mount]]
name = "/backup.mp3"
"#;

    #[test]
    fn full_file_parses_to_expected_values() {
        let c = parse(FULL);
        assert_eq!(c.server.listen, vec![addr("127.0.0.1:9000"), addr("[::1]:9001")]);
        assert_eq!(c.server.hostname, "radio.example.org");
        assert_eq!(c.server.location, "Mars");
        assert_eq!(c.server.admin_email, "ops@example.org");
        assert_eq!(c.server.access_log.as_deref(), Some("/tmp/access.log"));
        let l = &c.limits;
        assert_eq!((l.clients, l.sources, l.queue_size, l.burst_size), (50, 5, 1 << 20, 0));
        assert_eq!(l.header_timeout, Duration::from_secs(5));
        assert_eq!(l.source_timeout, Duration::from_secs(6));
        assert_eq!(l.client_timeout, Duration::from_secs(7));
        assert_eq!((l.max_header_line, l.max_header_size, l.max_headers), (1024, 2048, 32));
        assert_eq!(c.auth.source_password, "s3cret");
        assert_eq!(c.auth.admin_user, "root");
        assert_eq!(c.auth.admin_password, "adm1n");
        assert!(!c.uses_default_passwords());
        assert_eq!(c.shoutcast.listen, Some(addr("127.0.0.1:9100")));
        assert_eq!(c.shoutcast.mount, "/sc");
        assert_eq!(c.mounts.len(), 2);
        let expected = MountConfig {
            name: "/live.mp3".into(),
            username: "dj".into(),
            password: Some("pw".into()),
            max_listeners: Some(0),
            fallback_mount: Some("/backup.mp3".into()),
            fallback_override: true,
            metaint: 8192,
            info: StreamInfoOverride {
                name: Some("Name".into()),
                description: Some("Desc".into()),
                genre: Some("Genre".into()),
                url: Some("https://example.org".into()),
                public: Some(true),
            },
            burst_size: Some(1000),
            queue_size: Some(4096),
            hidden: true,
            transcode: Vec::new(),
            derived_from: None,
        };
        assert_eq!(*c.mounts[0], expected);
        assert_eq!(*c.mounts[1], MountConfig::dynamic("/backup.mp3"));
        assert_eq!(*c.mount("/live.mp3"), expected);
        assert_eq!(*c.mount("/other"), MountConfig::dynamic("/other"));
    }

    #[test]
    fn mounts_keep_file_order() {
        let c = parse("[[mount]]\nname = \"/z\"\n[[mount]]\nname = \"/a\"\n[[mount]]\nname = \"/m\"\n");
        let names: Vec<_> = c.mounts.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["/z", "/a", "/m"]);
    }

    #[test]
    fn several_problems_are_all_reported_with_lines_and_keys() {
        let text = "\
[limits]
queue_sise = 1
clients = \"many\"
[[mount]]
name = \"live\"
metaint = 70000
";
        let all = problems(text);
        let got: Vec<_> = all.iter().map(|p| (p.line, p.key.as_str())).collect();
        assert_eq!(
            got,
            [(2, "limits.queue_sise"), (3, "limits.clients"), (5, "mount[1].name"), (6, "mount[1].metaint")]
        );
        assert_eq!(all[0].message, "unknown key \"queue_sise\" (did you mean \"queue_size\"?)");
        assert_eq!(all[1].message, "expected an integer, found a string");
        assert!(all[2].message.starts_with("invalid mount name \"live\""), "{}", all[2].message);
        assert_eq!(all[3].message, "must be between 1 and 65535 bytes, got 70000");
        assert!(all.iter().all(|p| p.file == "test.toml"));
    }

    #[test]
    fn display_is_one_line_per_problem_with_file_name() {
        let err = parse_str("[limits]\nclients = 0\n\n[auth]\nadmin_password = \"\"\n", "/etc/floe.toml").unwrap_err();
        let text = err.to_string();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "/etc/floe.toml:2: limits.clients: must be at least 1, got 0",
                "/etc/floe.toml:5: auth.admin_password: must not be empty",
            ]
        );
        let err: Box<dyn std::error::Error> = Box::new(err);
        assert!(err.to_string().contains("/etc/floe.toml"));
    }

    #[test]
    fn syntax_error_reports_its_line() {
        let p = one("[server]\nhostname = \"ok\"\nlocation = \"unterminated\n");
        assert_eq!((p.line, p.key.as_str()), (3, ""));
        assert!(p.message.starts_with("TOML syntax error"), "{}", p.message);
        assert!(p.to_string().starts_with("test.toml:3: TOML syntax error"), "{p}");

        let p = one("[limits]\nclients = 5\nsources = \n");
        assert_eq!(p.line, 3);
        // A broken header confuses recovery; the syntax error still comes first.
        let p = &problems("[limits\nclients = 5\n")[0];
        assert_eq!((p.line, p.key.as_str()), (1, ""));
    }

    #[test]
    fn syntax_errors_and_semantic_problems_together() {
        let got = where_("[limits]\nclients = 1\nclients = 2\nqueue_size = 1\nbogus = true\n");
        assert_eq!(got, [(3, String::new()), (4, "limits.queue_size".into()), (5, "limits.bogus".into())]);
        let p = &problems("[limits]\nclients = 1\nclients = 2\n")[0];
        assert_eq!(p.message, "TOML syntax error: duplicate key \"clients\"");
    }

    #[test]
    fn unknown_sections_and_misplaced_keys() {
        let got = where_("hostname = \"x\"\n[serverr]\nlisten = \"1.2.3.4:5\"\n[limits]\nadmin_user = \"x\"\n");
        assert_eq!(got, [(1, "hostname".into()), (2, "serverr".into()), (5, "limits.admin_user".into())]);
        let all = problems("hostname = \"x\"\n[serverr]\n[limits]\nadmin_user = \"x\"\n");
        assert_eq!(all[0].message, "unknown key \"hostname\" (it belongs in [server])");
        assert_eq!(all[1].message, "unknown section [serverr] (did you mean \"server\"?)");
        assert_eq!(all[2].message, "unknown key \"admin_user\" (it belongs in [auth])");
        assert_eq!(one("[zzz]\n").message, "unknown section [zzz]");
        assert_eq!(one("[auth]\nx = 1\n").message, "unknown key \"x\"");
        let p = one("[[mount]]\nname = \"/a\"\nmetaint_ = 1\n");
        assert_eq!((p.line, p.key.as_str()), (3, "mount[1].metaint_"));
    }

    #[test]
    fn wrong_types() {
        let cases = [
            ("[server]\nlisten = 8000\n", "expected a socket address or an array of them, found an integer"),
            ("[server]\nhostname = 1\n", "expected a string, found an integer"),
            ("[limits]\nclients = 1.5\n", "expected an integer, found a float"),
            ("[limits]\nheader_timeout = \"15s\"\n", "expected an integer, found a string"),
            ("[shoutcast]\nenabled = \"yes\"\n", "expected a boolean (true or false), found a string"),
            ("[[mount]]\nname = \"/a\"\nhidden = 1979-05-27\n", "expected a boolean (true or false), found a datetime"),
            ("server = 1\n", "expected a table, found an integer"),
            ("[server.listen]\n", "expected a socket address or an array of them, found a table"),
        ];
        for (text, message) in cases {
            assert_eq!(one(text).message, message, "{text}");
        }
        let p = one("[mount]\nname = \"/a\"\n");
        assert_eq!((p.line, p.key.as_str()), (1, "mount"));
        assert!(p.message.contains("[[mount]]"), "{}", p.message);
    }

    #[test]
    fn ranges() {
        let bad = [
            "[limits]\nclients = 0\n",
            "[limits]\nsources = -1\n",
            "[limits]\nqueue_size = 4095\n",
            "[limits]\nburst_size = 2147483648\n",
            "[limits]\nheader_timeout = 0\n",
            "[limits]\nsource_timeout = 0\n",
            "[limits]\nclient_timeout = 0\n",
            "[limits]\nmax_headers = 0\n",
            "[limits]\nmax_header_line = 10\n",
            "[limits]\nclients = 99999999999999999999999\n",
            "[shoutcast]\nport = 65536\n",
            "[[mount]]\nname = \"/a\"\nmetaint = 0\n",
            "[[mount]]\nname = \"/a\"\nmetaint = 65536\n",
            "[[mount]]\nname = \"/a\"\nqueue_size = 100\n",
            "[[mount]]\nname = \"/a\"\nmax_listeners = -3\n",
        ];
        for text in bad {
            assert_eq!(problems(text).len(), 1, "{text}");
        }
        assert_eq!(one("[limits]\nclient_timeout = 0\n").message, "must be between 1 and 31536000 seconds, got 0");
        assert_eq!(one("[limits]\nqueue_size = 4095\n").message, "must be between 4096 and 1073741824 bytes, got 4095");
        let c = parse(concat!(
            "[limits]\nqueue_size = 4096\nburst_size = 65536\n",
            "clients = 1\nsources = 1\nheader_timeout = 1\n",
        ));
        assert_eq!((c.limits.queue_size, c.limits.burst_size), (4096, 65536));
        let c = parse("[[mount]]\nname = \"/a\"\nmetaint = 65535\nqueue_size = 4096\nburst_size = 1000000\n");
        assert_eq!(c.mounts[0].metaint, 65535);
        let p = one("[limits]\nmax_header_line = 4096\nmax_header_size = 2048\n");
        assert_eq!((p.line, p.key.as_str()), (2, "limits.max_header_line"));
    }

    #[test]
    fn empty_strings() {
        for key in ["source_password", "admin_password", "admin_user"] {
            let p = one(&format!("[auth]\n{key} = \"\"\n"));
            assert_eq!((p.line, p.key), (2, format!("auth.{key}")));
        }
        let got = where_("[[mount]]\nname = \"/a\"\npassword = \"\"\nusername = \"\"\n");
        assert_eq!(got, [(3, "mount[1].password".into()), (4, "mount[1].username".into())]);
        assert_eq!(where_("[server]\nhostname = \"\"\n"), [(2, "server.hostname".into())]);
    }

    #[test]
    fn addresses() {
        let c = parse("[server]\nlisten = \"127.0.0.1:8080\"\n");
        assert_eq!(c.server.listen, vec![addr("127.0.0.1:8080")]);
        let c = parse("[server]\nlisten = [\"[::]:8000\", \"0.0.0.0:8002\"]\n");
        assert_eq!(c.server.listen, vec![addr("[::]:8000"), addr("0.0.0.0:8002")]);
        let got = where_(concat!(
            "[server]\nlisten = [\n",
            "  \"localhost:8000\",\n  \"1.2.3.4\",\n  \"1.2.3.4:1\",\n  7,\n]\n",
        ));
        let key = "server.listen".to_string();
        assert_eq!(got, [(3, key.clone()), (4, key.clone()), (6, key.clone())]);
        assert_eq!(one("[server]\nlisten = []\n").message, "must list at least one address");
        assert!(one("[server]\nlisten = \"1.2.3.4:99999\"\n").message.starts_with("invalid socket address"));
    }

    #[test]
    fn mount_names_and_fallbacks() {
        let got = where_(concat!(
            "[[mount]]\nname = \"/a\"\n[[mount]]\nname = \"/b\"\n",
            "[[mount]]\nname = \"/a\"\n[[mount]]\nname = \"/a\"\n",
        ));
        assert_eq!(got, [(6, "mount[3].name".into()), (8, "mount[4].name".into())]);
        let all = problems("[[mount]]\nname = \"/a\"\n[[mount]]\nname = \"/a\"\n");
        assert_eq!(all[0].message, "duplicate mount name \"/a\" (first defined on line 2)");

        let p = one("[[mount]]\nname = \"/a\"\nfallback_mount = \"/a\"\n");
        assert_eq!((p.line, p.key.as_str()), (3, "mount[1].fallback_mount"));
        assert_eq!(p.message, "a mount cannot fall back to itself");
        let p = one("[[mount]]\nname = \"/a\"\nfallback_mount = \"/../x\"\n");
        assert_eq!((p.line, p.key.as_str()), (3, "mount[1].fallback_mount"));
        let got = where_("[[mount]]\nname = \"/\"\nfallback_mount = \"/\"\n");
        assert_eq!(got, [(2, "mount[1].name".into()), (3, "mount[1].fallback_mount".into())]);
        assert_eq!(problems("[[mount]]\nname = \"/\"\nfallback_mount = \"/b\"\n")[0].key, "mount[1].name");

        let p = one("[[mount]]\nname = \"/a\"\n\n[[mount]]\nmetaint = 1\n");
        assert_eq!((p.line, p.key.as_str()), (4, "mount[2]"));
        assert_eq!(p.message, "missing required key \"name\"");
        assert_eq!(one("[shoutcast]\nmount = \"stream\"\n").key, "shoutcast.mount");
        let p = one("mount = [1]\n");
        assert_eq!((p.line, p.key.as_str(), p.message.as_str()), (1, "mount[1]", "expected a table, found an integer"));
    }

    #[test]
    fn shoutcast_port_defaults() {
        let sc = |text: &str| parse(text).shoutcast.listen;
        assert_eq!(sc(""), Some(addr("0.0.0.0:8001")));
        assert_eq!(sc("[server]\nlisten = \"127.0.0.1:9000\"\n"), Some(addr("127.0.0.1:9001")));
        assert_eq!(sc("[server]\nlisten = [\"[::1]:7000\", \"0.0.0.0:1\"]\n"), Some(addr("[::1]:7001")));
        assert_eq!(sc("[server]\nlisten = \"127.0.0.1:0\"\n"), Some(addr("127.0.0.1:0")));
        assert_eq!(sc("[server]\nlisten = \"10.0.0.1:9000\"\n[shoutcast]\nport = 0\n"), Some(addr("10.0.0.1:0")));
        assert_eq!(sc("[server]\nlisten = \"10.0.0.1:9000\"\n[shoutcast]\nport = 1234\n"), Some(addr("10.0.0.1:1234")));
        assert_eq!(sc("[shoutcast]\nenabled = false\nport = 1234\n"), None);
        assert_eq!(sc("[server]\nlisten = \"0.0.0.0:65535\"\n[shoutcast]\nenabled = false\n"), None);
        let p = one("[server]\nlisten = \"0.0.0.0:65535\"\n");
        assert_eq!((p.line, p.key.as_str()), (2, "shoutcast.port"));
        let p = one("[shoutcast]\nport = 70000\n");
        assert_eq!((p.line, p.key.as_str()), (2, "shoutcast.port"));
        assert_eq!(parse("[shoutcast]\nmount = \"/sc.mp3\"\n").shoutcast.mount, "/sc.mp3");
    }

    #[test]
    fn problems_are_sorted_by_line_across_sections() {
        // Keys are stored sorted, not in file order; problems still come out by line.
        let got = where_("[shoutcast]\nport = -1\n[auth]\nzz = 1\n[limits]\nsources = 0\naa = 1\n");
        let lines: Vec<_> = got.iter().map(|g| g.0).collect();
        assert_eq!(lines, [2, 4, 6, 7]);
    }

    #[test]
    fn load_file_reads_and_names_the_file() {
        let dir = std::env::temp_dir().join(format!("floe-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("floe.toml");
        std::fs::write(&path, "[limits]\nclients = 7\n").unwrap();
        assert_eq!(load_file(&path).unwrap().limits.clients, 7);
        std::fs::write(&path, "[limits]\nclients = 0\n").unwrap();
        let text = load_file(&path).unwrap_err().to_string();
        assert_eq!(text, format!("{}:2: limits.clients: must be at least 1, got 0", path.display()));
        std::fs::remove_dir_all(&dir).unwrap();

        let err = load_file(&dir.join("missing.toml")).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        let p = &err.problems[0];
        assert_eq!((p.line, p.key.as_str()), (0, ""));
        assert!(p.file.ends_with("missing.toml"));
        assert!(err.to_string().contains("missing.toml:0: cannot read configuration file"), "{err}");
    }

    #[test]
    fn integer_forms() {
        let c = parse("[limits]\nclients = 0o17\nsources = 0b101\nmax_headers = +40\n");
        assert_eq!((c.limits.clients, c.limits.sources, c.limits.max_headers), (15, 5, 40));
    }

    #[test]
    fn spelling_hints() {
        assert_eq!(edit_distance("queue_sise", "queue_size"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(did_you_mean("metaint", &["metaint"]), " (did you mean \"metaint\"?)");
        assert_eq!(did_you_mean("xyz", &["metaint"]), "");
    }

    #[test]
    fn example_config_parses_cleanly() {
        let c = parse(include_str!("../../mounts.example.toml"));
        // Two mounts plus the two renditions of /live.mp3.
        assert_eq!(c.mounts.len(), 4);
        assert_eq!(c.mount("/live-64.aac").derived_from.as_deref(), Some("/live.mp3"));
        assert_eq!(c.mount("/live.mp3").transcode.len(), 2);
        let live = c.mount("/live.mp3");
        assert_eq!(live.username, "dj");
        assert!(live.password.is_some());
        assert_eq!(live.fallback_mount.as_deref(), Some("/backup.mp3"));
        assert!(live.fallback_override);
        assert_eq!(c.mounts[1].name, "/backup.mp3");
        assert!(!c.uses_default_passwords());
        assert_eq!(format!("{:?}", c.limits), format!("{:?}", Limits::default()));
        assert_eq!(c.shoutcast.listen, Config::default().shoutcast.listen);
    }

    #[test]
    fn example_config_documents_every_key() {
        let example = include_str!("../../mounts.example.toml");
        for section in SECTIONS {
            let header = match section {
                "mount" => "[[mount]]".to_string(),
                "transcode" => "[[mount.transcode]]".to_string(),
                _ => format!("[{section}]"),
            };
            assert!(example.contains(&header), "{header}");
            for key in section_keys(section).into_iter().filter(|k| *k != "transcode") {
                let set = format!("\n{key} = ");
                let commented = format!("\n#{key} = ");
                assert!(example.contains(&set) || example.contains(&commented), "[{section}] {key}");
            }
        }
    }
}
