//! `/metrics`: the server's counters in the Prometheus text format
//! (version 0.0.4). Server-wide counters live as long as the process;
//! per-mount ones (`floe_mount_*`, label `mount`) as long as the mount,
//! which for a mount not in the config ends when its source and last
//! listener have gone (Prometheus treats that as a counter reset).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use crate::escape::prometheus_label;
use crate::hls::serve::Asset;
use crate::mount::MountHandle;
use crate::state::AppState;
use crate::transcode::TranscodeStats;

/// What a scraper is told it gets.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn render(state: &AppState) -> String {
    let mut out = Exposition { text: String::with_capacity(8192), open: "" };
    server(&mut out, state);
    mounts(&mut out, state);
    out.text
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn server(out: &mut Exposition, state: &AppState) {
    let s = &state.stats;
    out.family("floe_info", Gauge, "Always 1; the version is a label.");
    out.sample(&[("version", env!("CARGO_PKG_VERSION"))], 1);
    out.family("floe_start_time_seconds", Gauge, "When the server started, in seconds since the Unix epoch.");
    out.sample(&[], state.started.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
    out.family("floe_connections_total", Counter, "TCP connections accepted.");
    out.sample(&[], load(&s.connections));
    out.family("floe_requests_total", Counter, "Requests finished (streams when they end), by status class.");
    for (class, count) in state.access_log.status_classes().counts() {
        out.sample(&[("code", &class)], count);
    }
    out.family("floe_bad_requests_total", Counter, "Requests refused before routing (bad heads, timeouts, limits).");
    out.sample(&[], load(&s.bad_requests));
    out.family(
        "floe_access_refusals_total",
        Counter,
        "Requests and connections refused by the access lists or the per-address cap.",
    );
    out.sample(&[], load(&s.access_refusals));
    out.family(
        "floe_config_reloads_total",
        Counter,
        "Configuration reloads, by outcome (a refused file changes nothing).",
    );
    out.sample(&[("outcome", "applied")], load(&s.config_reloads));
    out.sample(&[("outcome", "refused")], load(&s.config_reload_failures));
    out.family("process_resident_memory_bytes", Gauge, "Resident memory size in bytes.");
    out.sample(&[], crate::heap::process_resident_bytes());
    out.family(
        "floe_long_lived_bytes",
        Gauge,
        "Bytes of the region for what listeners keep for their lifetime and the rings' chunks.",
    );
    out.sample(&[], crate::heap::long_lived_bytes());
    out.family("floe_listeners", Gauge, "Listeners connected, all mounts.");
    out.sample(&[], state.mounts.listener_total());
    out.family("floe_listener_connections_total", Counter, "Listeners admitted, all mounts.");
    out.sample(&[], load(&s.listener_connections));
    out.family("floe_sources", Gauge, "Sources streaming now.");
    out.sample(&[], state.mounts.live().len());
    out.family("floe_source_connections_total", Counter, "Sources that connected, all mounts.");
    out.sample(&[], load(&s.source_total_connections));
    out.family("floe_slow_listener_drops_total", Counter, "Listeners dropped for falling behind, all mounts.");
    out.sample(&[], load(&s.slow_listeners));
    out.family(
        "floe_stalled_listener_drops_total",
        Counter,
        "Listeners dropped because a write waited client_timeout, all mounts.",
    );
    out.sample(&[], load(&s.stalled_listeners));
    out.family("floe_transcode_failures_total", Counter, "Codec processes and encoders that failed, all mounts.");
    out.sample(&[], load(&s.transcode_failures));
    out.family("floe_adaptive_requests_total", Counter, "HLS and DASH requests, by kind of asset.");
    for (kind, counter) in Asset::KINDS.iter().zip(&s.adaptive_requests) {
        out.sample(&[("kind", kind)], load(counter));
    }
    out.family("floe_tls_handshakes_total", Counter, "TLS handshakes, by outcome.");
    let tls = state.tls.as_ref().map(|t| &t.counters);
    out.sample(&[("outcome", "ok")], tls.map_or(0, |t| load(&t.handshakes)));
    out.sample(&[("outcome", "failed")], tls.map_or(0, |t| load(&t.handshake_failures)));
    out.family("floe_tls_reloads_total", Counter, "Certificate reloads after start-up, by outcome.");
    out.sample(&[("outcome", "ok")], tls.map_or(0, |t| load(&t.reloads)));
    out.sample(&[("outcome", "failed")], tls.map_or(0, |t| load(&t.reload_failures)));
}

/// One family per per-mount metric, each with a sample for every mount.
fn mounts(out: &mut Exposition, state: &AppState) {
    let all = state.mounts.all();
    let hls_bytes = |m: &MountHandle| state.hls.get(m.name()).map_or(0, |h| h.held_bytes() as u64);
    let hls_seconds = |m: &MountHandle| state.hls.get(m.name()).map_or(0.0, |h| h.held_seconds());
    type Value = fn(&MountHandle) -> u64;
    let families: [(&str, Kind, &str, Value); 11] = [
        ("floe_mount_listeners", Gauge, "Listeners connected.", |m| load(&m.stats().listeners)),
        ("floe_mount_listener_peak", Gauge, "Most listeners at once.", |m| load(&m.stats().listener_peak)),
        ("floe_mount_source_connected", Gauge, "1 while a source streams.", |m| u64::from(m.is_live())),
        ("floe_mount_source_connections_total", Counter, "Sources that connected.", |m| {
            load(&m.stats().source_connections)
        }),
        ("floe_mount_received_bytes_total", Counter, "Bytes received from sources.", |m| load(&m.stats().bytes_read)),
        ("floe_mount_sent_bytes_total", Counter, "Bytes sent to listeners.", |m| load(&m.stats().bytes_sent)),
        ("floe_mount_recorded_bytes_total", Counter, "Bytes written to the mount's recording (dump_file).", |m| {
            load(&m.stats().dump_bytes)
        }),
        ("floe_mount_skipped_bytes_total", Counter, "Source bytes the framer dropped (garbage, broken frames).", |m| {
            load(&m.stats().bytes_skipped)
        }),
        ("floe_mount_slow_listener_drops_total", Counter, "Listeners dropped for falling behind.", |m| {
            load(&m.stats().slow_listeners)
        }),
        (
            "floe_mount_stalled_listener_drops_total",
            Counter,
            "Listeners dropped because a write waited client_timeout.",
            |m| load(&m.stats().stalled_listeners),
        ),
        ("floe_mount_held_bytes", Gauge, "Bytes the mount holds for its listeners and source.", |m| {
            m.held_bytes() as u64
        }),
    ];
    for (name, kind, help, value) in families {
        out.family(name, kind, help);
        for mount in &all {
            out.sample(&[("mount", mount.name())], value(mount));
        }
    }
    type Counted = fn(&TranscodeStats) -> &AtomicU64;
    let transcoding: [(&str, Kind, &str, Counted); 3] = [
        ("floe_mount_corrupt_packets_total", Counter, "Packets the decoder could not decode.", |t| &t.corrupt_packets),
        ("floe_mount_transcode_failures_total", Counter, "Times transcoding failed and restarted.", |t| &t.failures),
        ("floe_mount_encoding", Gauge, "1 while a rendition's encoder runs.", |t| &t.encoding),
    ];
    for (name, kind, help, field) in transcoding {
        out.family(name, kind, help);
        for mount in &all {
            out.sample(&[("mount", mount.name())], state.transcoding.load(mount.name(), field));
        }
    }
    out.family(
        "floe_mount_transcode_cpu_seconds_total",
        Counter,
        "CPU time decoding (sources) or encoding (renditions).",
    );
    for mount in &all {
        let busy_ns = state.transcoding.load(mount.name(), |t| &t.busy_ns);
        out.sample(&[("mount", mount.name())], Seconds(busy_ns as f64 / 1e9));
    }
    out.family("floe_mount_hls_held_bytes", Gauge, "Bytes the mount's HLS/DASH window holds.");
    for mount in &all {
        out.sample(&[("mount", mount.name())], hls_bytes(mount));
    }
    out.family("floe_mount_hls_held_seconds", Gauge, "Seconds of audio the mount's HLS/DASH window holds.");
    for mount in &all {
        out.sample(&[("mount", mount.name())], Seconds(hls_seconds(mount)));
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}
use Kind::{Counter, Gauge};

/// A float value, written as Prometheus reads it.
struct Seconds(f64);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3}", self.0)
    }
}

/// The text being written; `family` opens a metric, `sample` adds to it.
struct Exposition {
    text: String,
    /// The metric `sample` writes.
    open: &'static str,
}

impl Exposition {
    fn family(&mut self, name: &'static str, kind: Kind, help: &str) {
        let kind = match kind {
            Counter => "counter",
            Gauge => "gauge",
        };
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self.open = name;
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(self.open);
        if !labels.is_empty() {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", prometheus_label(v))).collect();
            let _ = write!(self.text, "{{{}}}", labels.join(","));
        }
        let _ = writeln!(self.text, " {value}");
    }
}
