//! `[[relay]]` tables (a local mount fed from another server's stream) and
//! `[master]` (every mount another server lists).

use std::time::Duration;

use toml::de::DeValue;

use super::{set, walk_fields, Ctx, Field, Value};
use crate::config::{MasterConfig, RelayConfig};

/// One `[[relay]]` as written.
#[derive(Default)]
struct Draft {
    url: Option<crate::http::url::HttpUrl>,
    mount: Option<String>,
    username: Option<String>,
    password: Option<String>,
    metadata: Option<bool>,
    retry: Option<Duration>,
    on_demand: Option<bool>,
}

const RELAY: &[Field<Draft>] = &[
    ("url", |c, k, v, d| set(&mut d.url, c.http_url(k, v).map(Some))),
    ("mount", |c, k, v, d| set(&mut d.mount, c.mount_name(k, v).map(Some))),
    ("username", |c, k, v, d| set(&mut d.username, c.nonempty(k, v).map(Some))),
    ("password", |c, k, v, d| set(&mut d.password, c.string(k, v).map(Some))),
    ("metadata", |c, k, v, d| set(&mut d.metadata, c.boolean(k, v).map(Some))),
    ("retry", |c, k, v, d| set(&mut d.retry, c.seconds(k, v).map(Some))),
    ("on_demand", |c, k, v, d| set(&mut d.on_demand, c.boolean(k, v).map(Some))),
];

/// The keys a `[[relay]]` accepts.
pub(super) fn keys() -> Vec<&'static str> {
    RELAY.iter().map(|f| f.0).collect()
}

/// `[[relay]]` entries, in file order. A relay may feed a configured mount
/// (its settings apply) or a mount of its own; two relays may not feed one.
pub(super) fn relays(cx: &mut Ctx<'_>, v: &Value<'_>) -> Vec<RelayConfig> {
    let DeValue::Array(items) = v.get_ref() else {
        cx.mismatch("relay", v, "an array of tables (write [[relay]], not [relay])");
        return Vec::new();
    };
    let mut out: Vec<RelayConfig> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("relay[{}]", i + 1);
        let Some(table) = cx.table(&prefix, item) else { continue };
        let mut d = Draft::default();
        walk_fields(cx, "relay", &prefix, table, RELAY, &mut d);
        let (Some(url), Some(mount)) = (d.url, d.mount) else {
            if ["url", "mount"].iter().any(|k| table.get(*k).is_none()) {
                cx.report(Some(item.span()), &prefix, "a relay needs url and mount");
            }
            continue;
        };
        if out.iter().any(|r| r.mount == mount) {
            let message = format!("mount {mount:?} is already fed by another relay");
            cx.report(table.get("mount").map(|v| v.span()), &format!("{prefix}.mount"), message);
            continue;
        }
        out.push(RelayConfig {
            url,
            mount,
            username: d.username,
            password: d.password,
            metadata: d.metadata.unwrap_or(true),
            retry: d.retry.unwrap_or(Duration::from_secs(2)).max(Duration::from_millis(100)),
            on_demand: d.on_demand.unwrap_or(false),
        });
    }
    out
}

/// `[master]` as written.
#[derive(Default)]
struct MasterDraft {
    url: Option<crate::http::url::HttpUrl>,
    username: Option<String>,
    password: Option<String>,
    interval: Option<Duration>,
    metadata: Option<bool>,
    on_demand: Option<bool>,
}

const MASTER: &[Field<MasterDraft>] = &[
    ("url", |c, k, v, d| set(&mut d.url, c.http_url(k, v).map(Some))),
    ("username", |c, k, v, d| set(&mut d.username, c.nonempty(k, v).map(Some))),
    ("password", |c, k, v, d| set(&mut d.password, c.nonempty(k, v).map(Some))),
    ("interval", |c, k, v, d| set(&mut d.interval, c.seconds(k, v).map(Some))),
    ("metadata", |c, k, v, d| set(&mut d.metadata, c.boolean(k, v).map(Some))),
    ("on_demand", |c, k, v, d| set(&mut d.on_demand, c.boolean(k, v).map(Some))),
];

/// The keys `[master]` accepts.
pub(super) fn master_keys() -> Vec<&'static str> {
    MASTER.iter().map(|f| f.0).collect()
}

/// `[master]`: url and password are required (a master lists its mounts
/// only to its relay user or admin).
pub(super) fn master(cx: &mut Ctx<'_>, v: &Value<'_>) -> Option<MasterConfig> {
    let table = cx.table("master", v)?;
    let mut d = MasterDraft::default();
    walk_fields(cx, "master", "master", table, MASTER, &mut d);
    for (key, given) in [("url", d.url.is_some()), ("password", d.password.is_some())] {
        if !given && table.get(key).is_none() {
            cx.report(Some(v.span()), &format!("master.{key}"), "missing: [master] needs url and password");
        }
    }
    Some(MasterConfig {
        url: d.url?,
        username: d.username.unwrap_or_else(|| "relay".into()),
        password: d.password?,
        interval: d.interval.unwrap_or(Duration::from_secs(120)).max(Duration::from_secs(1)),
        metadata: d.metadata.unwrap_or(true),
        on_demand: d.on_demand.unwrap_or(false),
    })
}
