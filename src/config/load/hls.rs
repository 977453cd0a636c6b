//! `[hls]` (defaults for every mount) and `[mount.hls]` (one mount's own,
//! starting from `[hls]`), each with `[[…variant]]` tables for the ladder.
//!
//! The mount tables are applied after the whole file is read, so `[hls]`
//! may come anywhere in it.

use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::{set, transcode, walk_fields, Ctx, Field, Value};
use crate::config::{Config, HlsConfig, HlsMode, HlsVariant, MountConfig, TranscodeCodec};

/// Part durations are multiples of this: whole AAC-LC (1024) and Opus (960)
/// frames at 48 kHz.
const PART_GRID_MS: u64 = 320;

pub(super) const HLS: &[Field<HlsConfig>] = &[
    ("mode", |c, k, v, h| set(&mut h.mode, mode(c, k, v))),
    ("part_ms", |c, k, v, h| set(&mut h.part, part(c, k, v))),
    ("segment_parts", |c, k, v, h| set(&mut h.segment_parts, c.uint(k, v, 1..=30, "parts").map(|n| n as u32))),
    ("window_s", |c, k, v, h| set(&mut h.window, c.uint(k, v, 10..=86_400, "seconds").map(Duration::from_secs))),
    ("window_bytes", |c, k, v, h| set(&mut h.window_bytes, c.uint(k, v, 1 << 20..=1 << 40, "bytes"))),
    ("idle_s", |c, k, v, h| set(&mut h.idle, c.uint(k, v, 1..=86_400, "seconds").map(Duration::from_secs))),
    ("variant", |c, k, v, h| set(&mut h.variants, variants(c, k, v))),
];

/// A variant being read.
#[derive(Default)]
struct Draft {
    codec: Option<TranscodeCodec>,
    bitrate: Option<u32>,
    channels: Option<u8>,
    rendition: Option<String>,
}

const VARIANT: &[Field<Draft>] = &[
    ("codec", |c, k, v, d| d.codec = transcode::codec(c, k, v)),
    ("bitrate", |c, k, v, d| d.bitrate = c.uint(k, v, 6..=512, "kbit/s").map(|b| b as u32)),
    ("channels", |c, k, v, d| d.channels = c.uint(k, v, 1..=2, "").map(|n| n as u8)),
    ("rendition", |c, k, v, d| d.rendition = c.mount_name(k, v)),
];

pub(super) fn keys() -> Vec<&'static str> {
    HLS.iter().map(|f| f.0).collect()
}

pub(super) fn variant_keys() -> Vec<&'static str> {
    VARIANT.iter().map(|f| f.0).collect()
}

fn mode(cx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<HlsMode> {
    let name = cx.string(key, v)?;
    match name.to_ascii_lowercase().as_str() {
        "off" => Some(HlsMode::Off),
        "on-demand" => Some(HlsMode::OnDemand),
        "always" => Some(HlsMode::Always),
        _ => {
            cx.report(Some(v.span()), key, format!("unknown mode {name:?}: expected off, on-demand or always"));
            None
        }
    }
}

fn part(cx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<Duration> {
    let ms = cx.uint(key, v, PART_GRID_MS..=PART_GRID_MS * 8, "ms")?;
    if ms % PART_GRID_MS != 0 {
        cx.report(
            Some(v.span()),
            key,
            format!("{ms} is not a multiple of {PART_GRID_MS} ms (whole AAC and Opus frames)"),
        );
        return None;
    }
    Some(Duration::from_millis(ms))
}

/// `variant = [...]`: the ladder, in order.
fn variants(cx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<Vec<HlsVariant>> {
    let DeValue::Array(items) = v.get_ref() else {
        cx.mismatch(key, v, "an array of tables (write [[hls.variant]] or [[mount.hls.variant]])");
        return None;
    };
    let mut out: Vec<HlsVariant> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("{key}[{}]", i + 1);
        let Some(table) = cx.table(&prefix, item) else { continue };
        let mut d = Draft::default();
        walk_fields(cx, "variant", &prefix, table, VARIANT, &mut d);
        let variant = match (d.codec, d.rendition) {
            (_, Some(rendition)) => HlsVariant {
                // Codec and bitrate are the rendition's: resolved with the mount.
                id: String::new(),
                codec: TranscodeCodec::Aac,
                bitrate: 0,
                channels: None,
                rendition: Some(rendition),
            },
            (Some(codec), None) => {
                if !matches!(codec, TranscodeCodec::Aac | TranscodeCodec::HeAac | TranscodeCodec::Opus) {
                    cx.report(Some(item.span()), &prefix, "HLS variants are AAC, HE-AAC or Opus");
                    continue;
                }
                let mut variant = HlsVariant::encoded(codec, d.bitrate.unwrap_or(default_bitrate(codec)));
                variant.channels = d.channels;
                if let Err(message) = cx.rules.variant(&variant) {
                    cx.report(Some(item.span()), &prefix, message);
                    continue;
                }
                variant
            }
            (None, None) => {
                cx.report(Some(item.span()), &prefix, "a variant needs \"codec\" or \"rendition\"");
                continue;
            }
        };
        out.push(variant);
    }
    Some(out)
}

fn default_bitrate(codec: TranscodeCodec) -> u32 {
    match codec {
        TranscodeCodec::HeAac => 48,
        TranscodeCodec::Opus => 96,
        _ => 128,
    }
}

/// Give every configured mount its HLS settings: `[hls]`, then its own
/// `[mount.hls]` keys over it; renditions are not offered (their source is).
pub(super) fn resolve(cx: &mut Ctx<'_>, doc: &DeTable<'_>, config: &mut Config) {
    let tables = mount_tables(doc);
    for mount in &mut config.mounts {
        let m = std::sync::Arc::make_mut(mount);
        m.hls = config.hls.clone();
        if m.derived_from.is_some() {
            m.hls.mode = HlsMode::Off;
            continue;
        }
        if let Some((index, table)) = tables.iter().find(|(_, t)| name_of(t) == Some(m.name.as_str())) {
            let prefix = format!("mount[{index}].hls");
            if let Some(hls) = table.get("hls").and_then(|v| cx.table(&prefix, v)) {
                walk_fields(cx, "hls", &prefix, hls, HLS, &mut m.hls);
            }
        }
        link_renditions(cx, m);
    }
    if config.hls.variants.iter().any(|v| v.rendition.is_some()) {
        cx.report(None, "hls.variant", "a variant naming a rendition belongs in a [mount.hls] of that mount");
    }
}

/// The `[[mount]]` tables, numbered from 1 as in messages.
fn mount_tables<'a, 'i>(doc: &'a DeTable<'i>) -> Vec<(usize, &'a DeTable<'i>)> {
    let Some(DeValue::Array(items)) = doc.get("mount").map(|v| v.get_ref()) else { return Vec::new() };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match item.get_ref() {
            DeValue::Table(t) => Some((i + 1, t)),
            _ => None,
        })
        .collect()
}

fn name_of<'a>(table: &'a DeTable<'_>) -> Option<&'a str> {
    match table.get("name")?.get_ref() {
        DeValue::String(s) => Some(s.as_ref()),
        _ => None,
    }
}

/// Variants naming a rendition take its codec and bitrate; it must be one
/// of this mount's, AAC or Opus, at 48 kHz (the ladder's grid).
fn link_renditions(cx: &mut Ctx<'_>, m: &mut MountConfig) {
    let mut seen: Vec<String> = Vec::new();
    let mut kept = Vec::new();
    for mut variant in std::mem::take(&mut m.hls.variants) {
        if let Some(name) = variant.rendition.clone() {
            let key = format!("mount {}.hls.variant", m.name);
            let Some(t) = m.transcode.iter().find(|t| t.name == name) else {
                cx.report(None, &key, format!("{name} is not a rendition of {}", m.name));
                continue;
            };
            let at_48k = t.sample_rate == Some(48_000) || t.codec == TranscodeCodec::Opus;
            let codec_ok = matches!(t.codec, TranscodeCodec::Aac | TranscodeCodec::HeAac | TranscodeCodec::Opus);
            if !codec_ok || !at_48k {
                let message = format!(
                    "{name} cannot be a variant: it must be AAC, HE-AAC or Opus at 48 kHz (set sample_rate = 48000)"
                );
                cx.report(None, &key, message);
                continue;
            }
            variant =
                HlsVariant { rendition: Some(name), channels: t.channels, ..HlsVariant::encoded(t.codec, t.bitrate) };
        }
        // Two variants of one name get a number.
        let base = variant.id.clone();
        let mut n = 1;
        while seen.contains(&variant.id) {
            n += 1;
            variant.id = format!("{base}-{n}");
        }
        seen.push(variant.id.clone());
        kept.push(variant);
    }
    // iOS plays no Opus: every ladder has an AAC-LC variant.
    if m.hls.mode != HlsMode::Off && !kept.iter().any(|v| v.codec == TranscodeCodec::Aac) {
        cx.report(None, &format!("mount {}.hls", m.name), "the ladder needs an AAC-LC variant (iOS plays no Opus)");
    }
    m.hls.variants = kept;
}
