//! `floe-bench`: a low-overhead load generator for Floe and Icecast.
//!
//! `listeners` runs synthetic MP3 sources at a fixed bitrate (timestamped
//! frames written every `--interval-ms`) and N listeners per mount, then
//! reports per-listener throughput, delivery latency, time to first byte and
//! the server's CPU and RSS (from `/proc/<pid>`). `storm` measures how fast
//! the server accepts connections; `fetch`, how fast it answers the many
//! small kept-alive requests of HLS and DASH players; `floor` is not a load
//! but the minimal relay every run is compared with. Everything runs on one current-thread
//! runtime, so the tool itself costs as little as possible.

mod fetch;
mod floor;
mod frames;
mod ladder;
mod net;
mod report;
mod stats;
mod storm;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "floe-bench", about = "Load generator for Icecast-compatible servers (loopback only)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sources plus N listeners per mount; measure throughput, latency, CPU, RSS.
    Listeners(ListenersArgs),
    /// Connect, read the response head, close: as fast as possible.
    Storm(StormArgs),
    /// Stream a real MP3 file into a mount with renditions; report what the ladder costs.
    Ladder(LadderArgs),
    /// Keep-alive connections requesting the same files in turn (any HTTP/1.1 server).
    Fetch(FetchArgs),
    /// Run the minimal relay that measures the floor (a server, not a load).
    Floor(floor::FloorArgs),
}

#[derive(Args)]
pub struct FetchArgs {
    /// Server address (loopback).
    #[arg(long, default_value = "127.0.0.1:8000")]
    server: SocketAddr,
    /// Server process id, to read its CPU time.
    #[arg(long)]
    pid: Option<u32>,
    /// A path to request (repeat for several, asked for in turn).
    #[arg(long = "path", required = true)]
    paths: Vec<String>,
    /// Concurrent kept-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Write the result as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

#[derive(Args)]
pub struct LadderArgs {
    #[command(flatten)]
    common: Common,
    /// A CBR MPEG-1 Layer III file to stream (looped).
    #[arg(long)]
    file: std::path::PathBuf,
    /// The source mount (its renditions are configured on the server).
    #[arg(long, default_value = "/ladder.mp3")]
    mount: String,
    #[arg(long, default_value = "admin")]
    admin_user: String,
    #[arg(long, default_value = "hackme")]
    admin_password: String,
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    #[arg(long, default_value_t = 30)]
    duration: u64,
}

#[derive(Args, Clone)]
struct Common {
    /// Server address (loopback).
    #[arg(long, default_value = "127.0.0.1:8000")]
    server: SocketAddr,
    /// Server process id, to read its CPU time and RSS.
    #[arg(long)]
    pid: Option<u32>,
    #[arg(long, default_value = "hackme")]
    source_password: String,
    /// Mounts are PREFIX0.mp3, PREFIX1.mp3, ...
    #[arg(long, default_value = "/bench")]
    mount_prefix: String,
    #[arg(long, default_value_t = 128)]
    bitrate: u32,
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
    /// Write the result as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

#[derive(Args)]
pub struct ListenersArgs {
    #[command(flatten)]
    common: Common,
    /// Listeners per mount.
    #[arg(long, default_value_t = 1000)]
    listeners: usize,
    #[arg(long, default_value_t = 1)]
    mounts: usize,
    /// Ask for ICY metadata (and strip it before measuring).
    #[arg(long)]
    icy: bool,
    /// Update every mount's title this often (seconds), through /admin/metadata.
    #[arg(long)]
    title_every: Option<u64>,
    #[arg(long, default_value = "admin")]
    admin_user: String,
    #[arg(long, default_value = "hackme")]
    admin_password: String,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 2000)]
    ramp: u32,
    /// Seconds between the last connection and the measuring window.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Seconds between the mounts going live and the baseline RSS, so the
    /// baseline holds each mount's burst (64 KiB at 128 kbit/s is 4 s) and
    /// the memory per listener counts listeners, not the mounts filling up.
    #[arg(long, default_value_t = 6)]
    settle: u64,
    /// Length of the measuring window, seconds.
    #[arg(long, default_value_t = 30)]
    duration: u64,
}

#[derive(Args)]
pub struct StormArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent connect loops.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let Ok(runtime) = runtime else {
        eprintln!("floe-bench: cannot start the runtime");
        return std::process::ExitCode::FAILURE;
    };
    let local = tokio::task::LocalSet::new();
    let result = match cli.command {
        Command::Listeners(args) => local.block_on(&runtime, listeners(args)),
        Command::Storm(args) => local.block_on(&runtime, storm(args)),
        Command::Ladder(args) => local.block_on(&runtime, ladder_run(args)),
        Command::Fetch(args) => local.block_on(&runtime, fetch_run(args)),
        // Plain threads and sockets: the runtime stays idle.
        Command::Floor(args) => floor::run(args).map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("floe-bench: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn mount_name(common: &Common, i: usize) -> String {
    format!("{}{i}.mp3", common.mount_prefix)
}

fn start_sources(common: &Common, mounts: usize, shared: &Rc<net::Shared>) {
    for i in 0..mounts {
        let cfg = net::SourceConfig {
            server: common.server,
            mount: mount_name(common, i),
            password: common.source_password.clone(),
            kbps: common.bitrate,
            interval: Duration::from_millis(common.interval_ms),
        };
        tokio::task::spawn_local(net::run_source(cfg, shared.clone()));
    }
}

/// Poll until every mount answers a listener with 200 (bounded).
async fn wait_for_mounts(common: &Common, mounts: usize) -> Result<(), String> {
    // Icecast accepts about 100 connections a second: allow a second per mount.
    let deadline = Instant::now() + Duration::from_secs(30 + mounts as u64);
    for i in 0..mounts {
        // GET, not HEAD: Icecast 2.4 does not answer HEAD on mounts.
        let request = format!("GET {} HTTP/1.0\r\n\r\n", mount_name(common, i));
        loop {
            if report::probe(common.server, &request).await == Some(200) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("mount {} never came up", mount_name(common, i)));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

async fn listeners(args: ListenersArgs) -> Result<(), String> {
    let common = &args.common;
    let total = args.listeners * args.mounts;
    let shared = Rc::new(net::Shared::new(total));
    start_sources(common, args.mounts, &shared);
    wait_for_mounts(common, args.mounts).await?;
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let baseline = common.pid.and_then(stats::sample);
    let frame_len = frames::frame_len(common.bitrate);
    let configs: Vec<Rc<net::ListenerConfig>> = (0..args.mounts)
        .map(|i| {
            Rc::new(net::ListenerConfig {
                server: common.server,
                mount: mount_name(common, i),
                icy: args.icy,
                frame_len,
            })
        })
        .collect();
    // Ramp: spawn in small groups every 10 ms.
    let per_tick = (args.ramp as usize / 100).max(1);
    for index in 0..total {
        tokio::task::spawn_local(net::run_listener(configs[index % args.mounts].clone(), index, shared.clone()));
        if (index + 1) % per_tick == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // Slow acceptors (Icecast takes ~100 connections/s) get time in proportion.
    let deadline = Instant::now() + Duration::from_secs(60 + total as u64 / 50);
    while shared.connected.get() + shared.failed.get() < total as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(every) = args.title_every {
        let admin = net::basic(&args.admin_user, &args.admin_password);
        for i in 0..args.mounts {
            let task = net::run_titles(
                common.server,
                mount_name(common, i),
                Duration::from_secs(every),
                admin.clone(),
                shared.clone(),
            );
            tokio::task::spawn_local(task);
        }
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let before = common.pid.and_then(stats::sample);
    let window_start = Instant::now();
    shared.measuring.set(true);
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    shared.measuring.set(false);
    let window = window_start.elapsed();
    let after = common.pid.and_then(stats::sample);
    shared.stop.set(true);
    let result = report::listeners(&args, &shared, window, baseline, before, after);
    report::emit(&result, common.json.as_deref())
}

async fn storm(args: StormArgs) -> Result<(), String> {
    let common = &args.common;
    let shared = Rc::new(net::Shared::new(0));
    start_sources(common, 1, &shared);
    wait_for_mounts(common, 1).await?;
    let counts = Rc::new(storm::StormCounts::default());
    let path = Rc::new(mount_name(common, 0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let before = common.pid.and_then(stats::sample);
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| tokio::task::spawn_local(storm::worker(common.server, path.clone(), deadline, counts.clone())))
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = started.elapsed();
    let after = common.pid.and_then(stats::sample);
    shared.stop.set(true);
    let result = report::storm(&counts, elapsed, before, after);
    report::emit(&result, common.json.as_deref())
}

async fn ladder_run(args: LadderArgs) -> Result<(), String> {
    let common = &args.common;
    let data = std::fs::read(&args.file).map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let byte_rate = ladder::mp3_byte_rate(&data).ok_or("the file is not CBR MPEG-1 Layer III")?;
    let shared = Rc::new(net::Shared::new(0));
    let task = ladder::stream_file(
        common.server,
        args.mount.clone(),
        common.source_password.clone(),
        Rc::new(data),
        byte_rate,
        shared.clone(),
    );
    tokio::task::spawn_local(task);
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let admin = net::basic(&args.admin_user, &args.admin_password);
    let stats_before = ladder::admin_stats(common.server, &admin).await.ok_or("cannot read /admin/stats.json")?;
    let before = common.pid.and_then(stats::sample);
    let codec_before = common.pid.map(stats::sample_children);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    let window = started.elapsed();
    let after = common.pid.and_then(stats::sample);
    let codec_after = common.pid.map(stats::sample_children);
    let stats_after = ladder::admin_stats(common.server, &admin).await.ok_or("cannot read /admin/stats.json")?;
    shared.stop.set(true);
    if shared.source_failed.get() > 0 {
        return Err("the source was refused or cut off".into());
    }
    let cores = |b: Option<stats::ProcSample>, a: Option<stats::ProcSample>| match (b, a) {
        (Some(b), Some(a)) => Some(((a.cpu_s - b.cpu_s) / window.as_secs_f64() * 1000.0).round() / 1000.0),
        _ => None,
    };
    // Codec work runs in child processes of the server (`floe codec-worker`).
    let result = serde_json::json!({
        "scenario": "ladder",
        "source": args.mount,
        "source_kbps": byte_rate * 8 / 1000,
        "server_cpu_cores": cores(before, after),
        "codec_processes": common.pid.map_or(0, |p| stats::children(p).len()),
        "codec_cpu_cores": cores(codec_before, codec_after),
        "server_rss_kib": after.map(|a| a.rss_kib),
        "codec_rss_kib": codec_after.map(|a| a.rss_kib),
        "mounts": ladder::report(&stats_before, &stats_after, window),
        "window_s": window.as_secs_f64(),
    });
    report::emit(&result, common.json.as_deref())
}

async fn fetch_run(args: FetchArgs) -> Result<(), String> {
    let counts = Rc::new(fetch::FetchCounts::default());
    let paths = Rc::new(args.paths.clone());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let before = args.pid.and_then(stats::sample);
    let workers: Vec<_> = (0..args.connections)
        .map(|i| tokio::task::spawn_local(fetch::worker(args.server, paths.clone(), i, deadline, counts.clone())))
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = started.elapsed();
    let after = args.pid.and_then(stats::sample);
    let result = report::fetch(&args.paths, args.connections, &counts, elapsed, before, after);
    report::emit(&result, args.json.as_deref())
}
