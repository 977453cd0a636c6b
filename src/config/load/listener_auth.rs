//! `[mount.listener_auth]`: an htpasswd file (`type = "htpasswd"`, `file`)
//! or Icecast's URL authentication (`type = "url"` and its options).

use std::sync::Arc;

use super::super::{ListenerAuth, UrlAuth};
use super::{set, walk_fields, Ctx, Field, Value};
use crate::http::url::HttpUrl;

/// The table as written.
#[derive(Default)]
struct Draft {
    kind: Option<String>,
    file: Option<String>,
    url: UrlAuth,
    /// Some URL option was given (they belong to `type = "url"`).
    url_keys: bool,
}

type UrlSlot = fn(&mut UrlAuth) -> &mut Option<HttpUrl>;

fn set_url(c: &mut Ctx<'_>, k: &str, v: &Value<'_>, d: &mut Draft, slot: UrlSlot) {
    d.url_keys = true;
    set(slot(&mut d.url), c.http_url(k, v).map(Some));
}

const KEYS: &[Field<Draft>] = &[
    ("type", |c, k, v, d| set(&mut d.kind, c.nonempty(k, v).map(Some))),
    ("file", |c, k, v, d| set(&mut d.file, c.nonempty(k, v).map(Some))),
    ("listener_add", |c, k, v, d| set_url(c, k, v, d, |u| &mut u.listener_add)),
    ("listener_remove", |c, k, v, d| set_url(c, k, v, d, |u| &mut u.listener_remove)),
    ("mount_add", |c, k, v, d| set_url(c, k, v, d, |u| &mut u.mount_add)),
    ("mount_remove", |c, k, v, d| set_url(c, k, v, d, |u| &mut u.mount_remove)),
    ("stream_auth", |c, k, v, d| set_url(c, k, v, d, |u| &mut u.stream_auth)),
    ("username", |c, k, v, d| set(&mut d.url.username, c.nonempty(k, v).map(Some))),
    ("password", |c, k, v, d| set(&mut d.url.password, c.string(k, v).map(Some))),
    ("headers", |c, k, v, d| set(&mut d.url.headers, c.header_names(k, v))),
    ("header_prefix", |c, k, v, d| set(&mut d.url.header_prefix, c.string(k, v))),
    ("auth_header", |c, k, v, d| {
        let Some(text) = c.nonempty(k, v) else { return };
        match text.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => {
                d.url.auth_header = (name.trim().to_ascii_lowercase(), value.trim().to_string());
            }
            _ => c.report(Some(v.span()), k, "expected \"header-name: value\", e.g. \"icecast-auth-user: 1\""),
        }
    }),
    ("timelimit_header", |c, k, v, d| {
        let name = c.nonempty(k, v).map(|n| n.trim_end_matches(':').trim().to_ascii_lowercase());
        set(&mut d.url.timelimit_header, name)
    }),
    ("timeout", |c, k, v, d| set(&mut d.url.timeout, c.seconds(k, v))),
    ("on_error", |c, k, v, d| match c.string(k, v).as_deref() {
        Some("deny") => d.url.allow_on_error = false,
        Some("allow") => d.url.allow_on_error = true,
        Some(other) => c.report(Some(v.span()), k, format!("{other:?}: expected \"deny\" or \"allow\"")),
        None => {}
    }),
];

pub(super) fn keys() -> Vec<&'static str> {
    KEYS.iter().map(|(name, _)| *name).collect()
}

pub(super) fn listener_auth(cx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<ListenerAuth> {
    let table = cx.table(key, v)?;
    let mut d = Draft::default();
    walk_fields(cx, "listener_auth", key, table, KEYS, &mut d);
    let span = |name: &str| table.get(name).map(|value| value.span()).or(Some(v.span()));
    match d.kind.as_deref() {
        Some("htpasswd") => {
            if d.url_keys {
                cx.report(span("type"), &format!("{key}.type"), "URL options need type = \"url\"");
            }
            let Some(file) = d.file else {
                cx.report(span("type"), &format!("{key}.file"), "missing: the htpasswd file");
                return None;
            };
            let path = cx.relative(&file);
            if let Err(problem) = crate::auth::htpasswd::check_file(&path) {
                cx.report(span("file"), &format!("{key}.file"), problem);
                return None;
            }
            Some(ListenerAuth::Htpasswd(path))
        }
        Some("url") => {
            if d.file.is_some() {
                cx.report(span("file"), &format!("{key}.file"), "file belongs to type = \"htpasswd\"");
            }
            if d.url.listener_add.is_none() && d.url.stream_auth.is_none() {
                // A URL that was given but is wrong has been reported already.
                if table.get("listener_add").is_none() && table.get("stream_auth").is_none() {
                    let message = "type = \"url\" needs listener_add or stream_auth (the URLs that decide)";
                    cx.report(span("type"), &format!("{key}.listener_add"), message);
                }
                return None;
            }
            Some(ListenerAuth::Url(Arc::new(d.url)))
        }
        Some(other) => {
            let message = format!("unknown type {other:?}: expected \"htpasswd\" or \"url\"");
            cx.report(span("type"), &format!("{key}.type"), message);
            None
        }
        None => {
            cx.report(Some(v.span()), &format!("{key}.type"), "missing: type = \"htpasswd\" or \"url\"");
            None
        }
    }
}
