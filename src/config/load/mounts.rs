//! `[[mount]]` tables: one mount each, names unique, renditions added as
//! mounts of their own.

use std::sync::Arc;

use toml::de::DeValue;
use toml::Spanned;

use super::{transcode, walk_fields, Ctx, Value, MOUNT};
use crate::config::MountConfig;

/// `[[mount]]` entries, in file order.
pub(super) fn mounts(cx: &mut Ctx<'_>, v: &Value<'_>) -> Vec<Arc<MountConfig>> {
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
