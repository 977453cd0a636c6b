//! `[[mount.transcode]]` tables: parsing, the codec/bitrate/sample-rate
//! rules each encoder accepts, and the derived mounts they create.

use std::sync::Arc;

use toml::de::DeValue;

use super::{walk_fields, Ctx, Field, Value};
use crate::config::{MountConfig, TranscodeCodec, TranscodeConfig};

/// A rendition being read; `name` and `codec` are required.
struct Draft {
    name: Option<String>,
    codec: Option<TranscodeCodec>,
    bitrate: Option<u32>,
    sample_rate: Option<u32>,
    channels: Option<u8>,
    ogg_metadata: bool,
}

const TRANSCODE: &[Field<Draft>] = &[
    ("name", |c, k, v, t| t.name = c.mount_name(k, v)),
    ("codec", |c, k, v, t| t.codec = codec(c, k, v)),
    ("bitrate", |c, k, v, t| t.bitrate = c.uint(k, v, 1..=1000, "kbit/s").map(|b| b as u32)),
    ("sample_rate", |c, k, v, t| t.sample_rate = c.uint(k, v, 8000..=192_000, "Hz").map(|r| r as u32)),
    ("channels", |c, k, v, t| t.channels = c.uint(k, v, 1..=2, "").map(|n| n as u8)),
    ("ogg_metadata", |c, k, v, t| {
        if let Some(b) = c.boolean(k, v) {
            t.ogg_metadata = b;
        }
    }),
];

pub(super) fn keys() -> Vec<&'static str> {
    TRANSCODE.iter().map(|f| f.0).collect()
}

fn codec(cx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<TranscodeCodec> {
    let name = cx.string(key, v)?;
    let codec = match name.to_ascii_lowercase().as_str() {
        "mp3" => TranscodeCodec::Mp3,
        "aac" => TranscodeCodec::Aac,
        "opus" => TranscodeCodec::Opus,
        "vorbis" => TranscodeCodec::Vorbis,
        _ => {
            cx.report(Some(v.span()), key, format!("unknown codec {name:?}: expected mp3, aac, opus or vorbis"));
            return None;
        }
    };
    Some(codec)
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
        let mut d =
            Draft { name: None, codec: None, bitrate: None, sample_rate: None, channels: None, ogg_metadata: true };
        walk_fields(cx, "transcode", &prefix, table, TRANSCODE, &mut d);
        let (Some(name), Some(codec)) = (d.name.clone(), d.codec) else {
            if table.get("name").is_none() || table.get("codec").is_none() {
                cx.report(Some(item.span()), &prefix, "a transcode needs \"name\" and \"codec\"");
            }
            continue;
        };
        let bitrate = d.bitrate.unwrap_or(default_bitrate(codec));
        if let Err(message) = check(codec, bitrate, d.sample_rate) {
            cx.report(Some(item.span()), &prefix, message);
            continue;
        }
        let t = TranscodeConfig {
            name,
            codec,
            bitrate,
            sample_rate: d.sample_rate,
            channels: d.channels,
            ogg_metadata: d.ogg_metadata,
        };
        out.push(Arc::new(t));
    }
    Some(out)
}

fn default_bitrate(codec: TranscodeCodec) -> u32 {
    match codec {
        TranscodeCodec::Mp3 | TranscodeCodec::Aac => 128,
        TranscodeCodec::Opus | TranscodeCodec::Vorbis => 96,
    }
}

const MP3_RATES: [u32; 9] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];
const MP3_BITRATES: [u32; 16] = [8, 16, 24, 32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const AAC_RATES: [u32; 12] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000];

/// What each encoder accepts (LAME, FDK AAC-LC, libopus, libvorbis).
pub fn check(codec: TranscodeCodec, bitrate: u32, sample_rate: Option<u32>) -> Result<(), String> {
    match codec {
        TranscodeCodec::Mp3 => {
            if !MP3_BITRATES.contains(&bitrate) {
                return Err(format!("MP3 bitrate {bitrate} kbit/s: expected one of {MP3_BITRATES:?}"));
            }
            match sample_rate {
                Some(r) if !MP3_RATES.contains(&r) => {
                    Err(format!("MP3 sample rate {r} Hz: expected one of {MP3_RATES:?}"))
                }
                // MPEG-1 (32-48 kHz) starts at 32 kbit/s; MPEG-2/2.5 stops at 160.
                Some(r) if r >= 32000 && bitrate < 32 => Err(format!("MP3 at {r} Hz needs at least 32 kbit/s")),
                Some(r) if r < 32000 && bitrate > 160 => Err(format!("MP3 at {r} Hz allows at most 160 kbit/s")),
                _ => Ok(()),
            }
        }
        TranscodeCodec::Aac => {
            if !cfg!(feature = "fdk-aac") {
                return Err("this Floe was built without the AAC encoder (cargo feature \"fdk-aac\")".into());
            }
            if !(8..=320).contains(&bitrate) {
                return Err(format!("AAC bitrate {bitrate} kbit/s: expected 8 to 320"));
            }
            match sample_rate {
                Some(r) if !AAC_RATES.contains(&r) => {
                    Err(format!("AAC sample rate {r} Hz: expected one of {AAC_RATES:?}"))
                }
                _ => Ok(()),
            }
        }
        TranscodeCodec::Opus => {
            if !(6..=510).contains(&bitrate) {
                return Err(format!("Opus bitrate {bitrate} kbit/s: expected 6 to 510"));
            }
            match sample_rate {
                Some(r) if r != 48000 => Err(format!("Opus is encoded at 48000 Hz, not {r}")),
                _ => Ok(()),
            }
        }
        TranscodeCodec::Vorbis => {
            if !(32..=500).contains(&bitrate) {
                return Err(format!("Vorbis bitrate {bitrate} kbit/s: expected 32 to 500"));
            }
            match sample_rate {
                Some(r) if !(8000..=192_000).contains(&r) => Err(format!("Vorbis sample rate {r} Hz out of range")),
                _ => Ok(()),
            }
        }
    }
}

/// The ordinary mounts renditions are served on, inheriting the parent's
/// stream information.
pub(super) fn derived_mounts(parent: &MountConfig) -> impl Iterator<Item = MountConfig> + '_ {
    parent.transcode.iter().map(move |t| {
        let mut m = MountConfig::dynamic(&t.name);
        m.info = parent.info.clone();
        m.hidden = parent.hidden;
        m.derived_from = Some(parent.name.clone());
        m
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_rules() {
        assert!(check(TranscodeCodec::Mp3, 128, Some(44100)).is_ok());
        assert!(check(TranscodeCodec::Mp3, 7, None).is_err());
        assert!(check(TranscodeCodec::Mp3, 320, Some(22050)).is_err());
        assert!(check(TranscodeCodec::Opus, 96, Some(44100)).is_err());
        assert!(check(TranscodeCodec::Opus, 48, None).is_ok());
        assert!(check(TranscodeCodec::Vorbis, 8, None).is_err());
    }
}
