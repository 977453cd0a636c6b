//! Typed value readers for the loader: each reads one TOML value, and on a
//! wrong one reports a problem (with the value's line and the key) and
//! returns `None`, so the walk goes on and every problem is found at once.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::{Ctx, Value, MAX_TIMEOUT_SECS};

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
    pub(super) fn mismatch(&mut self, key: &str, v: &Value<'_>, expected: &str) {
        let message = format!("expected {expected}, found {}", describe(v.get_ref()));
        self.report(Some(v.span()), key, message);
    }

    pub(super) fn string(&mut self, key: &str, v: &Value<'_>) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.mismatch(key, v, "a string");
                None
            }
        }
    }

    pub(super) fn nonempty(&mut self, key: &str, v: &Value<'_>) -> Option<String> {
        let s = self.string(key, v)?;
        if s.is_empty() {
            self.report(Some(v.span()), key, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// Text that goes into a response header as it is: printable, without
    /// control characters, at most 200 characters.
    pub(super) fn header_text(&mut self, key: &str, v: &Value<'_>) -> Option<String> {
        let s = self.nonempty(key, v)?;
        if s.chars().count() > 200 || s.chars().any(char::is_control) {
            self.report(Some(v.span()), key, "must be printable text of at most 200 characters");
            return None;
        }
        Some(s)
    }

    /// A plain `http://` URL (a URL-auth backend, a relay's upstream).
    pub(super) fn http_url(&mut self, key: &str, v: &Value<'_>) -> Option<crate::http::url::HttpUrl> {
        let text = self.nonempty(key, v)?;
        match text.parse() {
            Ok(url) => Some(url),
            Err(message) => {
                self.report(Some(v.span()), key, message);
                None
            }
        }
    }

    /// An array of strings, each read by `item`.
    pub(super) fn list<T>(
        &mut self,
        key: &str,
        v: &Value<'_>,
        mut item: impl FnMut(&mut Self, &Value<'_>, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.mismatch(key, v, "an array of strings");
            return None;
        };
        let read: Vec<Option<T>> = items.iter().map(|i| self.string(key, i).and_then(|s| item(self, i, &s))).collect();
        read.into_iter().collect()
    }

    /// Addresses and CIDR ranges.
    pub(super) fn cidrs(&mut self, key: &str, v: &Value<'_>) -> Option<Vec<crate::access::Cidr>> {
        self.list(key, v, |cx, item, text| match text.parse() {
            Ok(net) => Some(net),
            Err(message) => {
                cx.report(Some(item.span()), key, message);
                None
            }
        })
    }

    /// User-agent fragments, kept in lower case (they are compared that way).
    pub(super) fn agents(&mut self, key: &str, v: &Value<'_>) -> Option<Vec<String>> {
        self.list(key, v, |cx, item, text| {
            if text.is_empty() {
                cx.report(Some(item.span()), key, "an empty fragment would match every player");
                return None;
            }
            Some(text.to_lowercase())
        })
    }

    /// Host names, lower-cased; a leading `*.` label stands for any one
    /// label (`tls.sni.names`).
    pub(super) fn host_names(&mut self, key: &str, v: &Value<'_>) -> Option<Vec<String>> {
        self.list(key, v, |cx, item, text| {
            let name = text.to_ascii_lowercase();
            let labels = name.strip_prefix("*.").unwrap_or(&name);
            let label_ok =
                |l: &str| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if name.len() > 253 || !labels.split('.').all(label_ok) {
                cx.report(Some(item.span()), key, format!("{text:?} is not a host name (or *.host name)"));
                return None;
            }
            Some(name)
        })
    }

    /// Request header names, lower-cased (`listener_auth.headers`).
    pub(super) fn header_names(&mut self, key: &str, v: &Value<'_>) -> Option<Vec<String>> {
        self.list(key, v, |cx, item, text| {
            let token =
                !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                cx.report(Some(item.span()), key, format!("{text:?} is not a header name"));
                return None;
            }
            Some(text.to_ascii_lowercase())
        })
    }

    /// An intro file, relative to the config file, read now (bounded).
    pub(super) fn intro(&mut self, key: &str, v: &Value<'_>) -> Option<super::super::Intro> {
        let name = self.nonempty(key, v)?;
        let path = self.relative(&name);
        let read = std::fs::metadata(&path).and_then(|meta| match meta.len() {
            len if len > super::super::Intro::MAX => Err(std::io::Error::other(format!(
                "{len} bytes; an intro may be at most {} bytes",
                super::super::Intro::MAX
            ))),
            _ => std::fs::read(&path),
        });
        match read {
            Ok(bytes) if !bytes.is_empty() => Some(super::super::Intro(bytes.into())),
            Ok(_) => {
                self.report(Some(v.span()), key, format!("{}: empty file", path.display()));
                None
            }
            Err(error) => {
                self.report(Some(v.span()), key, format!("{}: {error}", path.display()));
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, key: &str, v: &Value<'_>) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.mismatch(key, v, "a boolean (true or false)");
                None
            }
        }
    }

    /// An integer within `range`; `unit` (e.g. "bytes") only decorates messages.
    pub(super) fn uint(&mut self, key: &str, v: &Value<'_>, range: RangeInclusive<u64>, unit: &str) -> Option<u64> {
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

    pub(super) fn size(&mut self, key: &str, v: &Value<'_>, range: RangeInclusive<u64>, unit: &str) -> Option<usize> {
        let n = self.uint(key, v, range, unit)?;
        let size = usize::try_from(n).ok();
        if size.is_none() {
            self.report(Some(v.span()), key, format!("{n} is too large for this platform"));
        }
        size
    }

    pub(super) fn seconds(&mut self, key: &str, v: &Value<'_>) -> Option<Duration> {
        self.uint(key, v, 1..=MAX_TIMEOUT_SECS, "seconds").map(Duration::from_secs)
    }

    pub(super) fn mount_name(&mut self, key: &str, v: &Value<'_>) -> Option<String> {
        let name = self.string(key, v)?;
        match super::super::mount_name::check(&name) {
            Ok(()) => Some(name),
            Err(error) => {
                let why = error.to_string();
                let (what, reason) = why.split_once(": ").unwrap_or((&why, ""));
                self.report(Some(v.span()), key, format!("{what} {name:?}: {reason}"));
                None
            }
        }
    }

    pub(super) fn addr(&mut self, key: &str, v: &Value<'_>) -> Option<SocketAddr> {
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
    pub(super) fn addrs(&mut self, key: &str, v: &Value<'_>) -> Option<Vec<SocketAddr>> {
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

    pub(super) fn table<'v, 'i>(&mut self, key: &str, v: &'v Value<'i>) -> Option<&'v DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.mismatch(key, v, "a table");
                None
            }
        }
    }
}
