//! `[[mount.transcode]]` tables: parsing (the codec/bitrate/sample-rate
//! rules are the encoders' own, passed in as `EncoderRules`), and the
//! derived mounts they create.

use std::sync::Arc;

use toml::de::DeValue;

use super::{set, walk_fields, Ctx, Field, Value, MAX_COUNT};
use crate::config::{MountConfig, TranscodeCodec, TranscodeConfig, TranscodeContainer};

/// A rendition being read; `name` and `codec` are required.
struct Draft {
    name: Option<String>,
    codec: Option<TranscodeCodec>,
    bitrate: Option<u32>,
    sample_rate: Option<u32>,
    channels: Option<u8>,
    container: Option<TranscodeContainer>,
    ogg_metadata: bool,
    on_demand: bool,
    max_listeners: Option<usize>,
    fallback_mount: Option<String>,
    fallback_override: bool,
}

const TRANSCODE: &[Field<Draft>] = &[
    ("name", |c, k, v, t| t.name = c.mount_name(k, v)),
    ("codec", |c, k, v, t| t.codec = codec(c, k, v)),
    ("bitrate", |c, k, v, t| t.bitrate = c.uint(k, v, 1..=1000, "kbit/s").map(|b| b as u32)),
    ("sample_rate", |c, k, v, t| t.sample_rate = c.uint(k, v, 8000..=192_000, "Hz").map(|r| r as u32)),
    ("channels", |c, k, v, t| t.channels = c.uint(k, v, 1..=2, "").map(|n| n as u8)),
    ("container", |c, k, v, t| t.container = container(c, k, v)),
    ("ogg_metadata", |c, k, v, t| set(&mut t.ogg_metadata, c.boolean(k, v))),
    ("on_demand", |c, k, v, t| set(&mut t.on_demand, c.boolean(k, v))),
    ("max_listeners", |c, k, v, t| set(&mut t.max_listeners, c.size(k, v, 0..=MAX_COUNT, "").map(Some))),
    ("fallback_mount", |c, k, v, t| set(&mut t.fallback_mount, c.mount_name(k, v).map(Some))),
    ("fallback_override", |c, k, v, t| set(&mut t.fallback_override, c.boolean(k, v))),
];

pub(super) fn keys() -> Vec<&'static str> {
    TRANSCODE.iter().map(|f| f.0).collect()
}

pub(super) fn codec(cx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<TranscodeCodec> {
    let name = cx.string(key, v)?;
    let codec = match name.to_ascii_lowercase().as_str() {
        "mp3" => TranscodeCodec::Mp3,
        "aac" => TranscodeCodec::Aac,
        "he-aac" => TranscodeCodec::HeAac,
        "opus" => TranscodeCodec::Opus,
        "vorbis" => TranscodeCodec::Vorbis,
        _ => {
            let message = format!("unknown codec {name:?}: expected mp3, aac, he-aac, opus or vorbis");
            cx.report(Some(v.span()), key, message);
            return None;
        }
    };
    Some(codec)
}

fn container(cx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<TranscodeContainer> {
    let name = cx.string(key, v)?;
    match name.to_ascii_lowercase().as_str() {
        "ogg" => Some(TranscodeContainer::Ogg),
        "webm" => Some(TranscodeContainer::WebM),
        _ => {
            cx.report(Some(v.span()), key, format!("unknown container {name:?}: expected ogg or webm"));
            None
        }
    }
}

/// `transcode = [...]` inside a `[[mount]]`.
pub(super) fn transcodes(cx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<Vec<Arc<TranscodeConfig>>> {
    let DeValue::Array(items) = v.get_ref() else {
        cx.mismatch(key, v, "an array of tables (write [[mount.transcode]])");
        return None;
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("{key}[{}]", i + 1);
        let Some(table) = cx.table(&prefix, item) else { continue };
        let mut d = Draft {
            name: None,
            codec: None,
            bitrate: None,
            sample_rate: None,
            channels: None,
            container: None,
            ogg_metadata: true,
            on_demand: false,
            max_listeners: None,
            fallback_mount: None,
            fallback_override: false,
        };
        walk_fields(cx, "transcode", &prefix, table, TRANSCODE, &mut d);
        let (Some(name), Some(codec)) = (d.name.clone(), d.codec) else {
            if table.get("name").is_none() || table.get("codec").is_none() {
                cx.report(Some(item.span()), &prefix, "a transcode needs \"name\" and \"codec\"");
            }
            continue;
        };
        let ogg_family = matches!(codec, TranscodeCodec::Opus | TranscodeCodec::Vorbis);
        if d.container.is_some() && !ogg_family {
            let span = table.get("container").map(|c| c.span());
            cx.report(span, &format!("{prefix}.container"), "only Opus and Vorbis renditions take a container");
            continue;
        }
        if d.fallback_mount.as_ref() == Some(&name) {
            let span = table.get("fallback_mount").map(|c| c.span());
            cx.report(span, &format!("{prefix}.fallback_mount"), "a mount cannot fall back to itself");
        }
        let t = TranscodeConfig {
            name,
            codec,
            bitrate: d.bitrate.unwrap_or(default_bitrate(codec)),
            sample_rate: d.sample_rate,
            channels: d.channels,
            container: d.container.or(ogg_family.then_some(TranscodeContainer::Ogg)),
            ogg_metadata: d.ogg_metadata,
            on_demand: d.on_demand,
            max_listeners: d.max_listeners,
            fallback_mount: d.fallback_mount,
            fallback_override: d.fallback_override,
        };
        if let Err(message) = cx.rules.rendition(&t) {
            cx.report(Some(item.span()), &prefix, message);
            continue;
        }
        out.push(Arc::new(t));
    }
    Some(out)
}

fn default_bitrate(codec: TranscodeCodec) -> u32 {
    match codec {
        TranscodeCodec::Mp3 | TranscodeCodec::Aac => 128,
        TranscodeCodec::HeAac => 48,
        TranscodeCodec::Opus | TranscodeCodec::Vorbis => 96,
    }
}

/// The ordinary mounts renditions are served on, inheriting the parent's
/// stream information.
pub(super) fn derived_mounts(parent: &MountConfig) -> impl Iterator<Item = MountConfig> + '_ {
    parent.transcode.iter().map(move |t| {
        let mut m = MountConfig::dynamic(&t.name);
        m.info = parent.info.clone();
        m.hidden = parent.hidden;
        // A rendition is the same programme: the same doors.
        m.access = parent.access.clone();
        m.listener_auth = parent.listener_auth.clone();
        m.derived_from = Some(parent.name.clone());
        m.max_listeners = t.max_listeners;
        m.fallback_mount = t.fallback_mount.clone();
        m.fallback_override = t.fallback_override;
        m
    })
}
