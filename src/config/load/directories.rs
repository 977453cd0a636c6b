//! `[[directory]]` tables: YP directories the public mounts are listed in.

use std::time::Duration;

use toml::de::DeValue;

use super::{set, walk_fields, Ctx, Field, Value};
use crate::config::DirectoryConfig;

/// One `[[directory]]` as written.
#[derive(Default)]
struct Draft {
    url: Option<crate::http::url::HttpUrl>,
    timeout: Option<Duration>,
}

const DIRECTORY: &[Field<Draft>] = &[
    ("url", |c, k, v, d| set(&mut d.url, c.http_url(k, v).map(Some))),
    ("timeout", |c, k, v, d| set(&mut d.timeout, c.seconds(k, v).map(Some))),
];

/// The keys a `[[directory]]` accepts.
pub(super) fn keys() -> Vec<&'static str> {
    DIRECTORY.iter().map(|f| f.0).collect()
}

/// `[[directory]]` entries, in file order; each needs its url.
pub(super) fn directories(cx: &mut Ctx<'_>, v: &Value<'_>) -> Vec<DirectoryConfig> {
    let DeValue::Array(items) = v.get_ref() else {
        cx.mismatch("directory", v, "an array of tables (write [[directory]], not [directory])");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("directory[{}]", i + 1);
        let Some(table) = cx.table(&prefix, item) else { continue };
        let mut d = Draft::default();
        walk_fields(cx, "directory", &prefix, table, DIRECTORY, &mut d);
        match d.url {
            Some(url) => out.push(DirectoryConfig { url, timeout: d.timeout.unwrap_or(Duration::from_secs(15)) }),
            None if table.get("url").is_none() => cx.report(Some(item.span()), &prefix, "a directory needs its url"),
            None => {}
        }
    }
    out
}
