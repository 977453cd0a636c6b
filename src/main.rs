//! The `floe` binary: parse the command line, load the configuration, bind
//! the sockets and run the server until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio::sync::watch;

use floe::access_log::AccessLog;
use floe::config::{self, Config};
use floe::server::{self, Acceptors};
use floe::state::AppState;

/// Exit code for configuration errors (EX_USAGE-style, as sysexits' EX_DATAERR family).
const EXIT_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(name = "floe", version, about = "Icecast/SHOUTcast-compatible streaming server")]
struct Cli {
    /// Configuration file (TOML). Without it, the built-in default runs.
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Check a configuration file and report every problem.
    CheckConfig { file: PathBuf },
    /// Internal: the codec process the server starts per transcoded mount
    /// (the mount is named for `ps`; the job comes on stdin).
    #[command(hide = true)]
    CodecWorker { mount: Option<String> },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Colours only on a terminal: escape codes in a log file are noise.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Some(Command::CodecWorker { .. }) = &cli.command {
        return floe::transcode::codec_process::run();
    }
    if let Some(Command::CheckConfig { file }) = &cli.command {
        return match config::load_file(file) {
            Ok(_) => {
                println!("{}: OK", file.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{error}");
                ExitCode::from(EXIT_CONFIG)
            }
        };
    }
    let config = match &cli.config {
        Some(path) => match config::load_file(path) {
            Ok(config) => config,
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        None => Config::default(),
    };
    let workers = match config.server.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build();
    match runtime {
        Ok(runtime) => runtime.block_on(serve(config)),
        Err(error) => {
            eprintln!("floe: cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    let config = Arc::new(config);
    let mut http = Vec::new();
    for addr in &config.server.listen {
        match TcpListener::bind(addr).await {
            Ok(listener) => http.push(listener),
            Err(error) => {
                eprintln!("floe: cannot listen on {addr}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let shoutcast = match config.shoutcast.listen {
        Some(addr) => match TcpListener::bind(addr).await {
            Ok(listener) => Some(listener),
            Err(error) => {
                eprintln!("floe: cannot listen on {addr} (SHOUTcast sources): {error}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let access_log = match &config.server.access_log {
        Some(path) => match AccessLog::open(path.as_ref()) {
            Ok(log) => log,
            Err(error) => {
                eprintln!("floe: cannot open access log {path}: {error}");
                return ExitCode::FAILURE;
            }
        },
        None => AccessLog::default(),
    };
    // Before the ports are announced: SIGHUP must never find the default action (exit).
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let bound: Vec<SocketAddr> = http.iter().filter_map(|l| l.local_addr().ok()).collect();
    let shoutcast_bound = shoutcast.as_ref().and_then(|l| l.local_addr().ok());
    announce(&config, &bound, shoutcast_bound);
    let http_port = bound.first().map_or(0, SocketAddr::port);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state = AppState::new(config, access_log.clone(), http_port, shutdown_rx);
    match hangup {
        Ok(hangup) => drop(tokio::spawn(reopen_logs_on_hangup(hangup, access_log))),
        Err(error) => tracing::warn!(%error, "cannot handle SIGHUP"),
    }
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = shutdown_tx.send(true);
    });
    server::run(Acceptors { http, shoutcast }, state).await;
    ExitCode::SUCCESS
}

/// The start-up lines: where to open the page and stream to. The first line
/// is also what the test harness reads to learn the ports.
fn announce(config: &Config, http: &[SocketAddr], shoutcast: Option<SocketAddr>) {
    for addr in http {
        println!("floe: listening on http://{addr}");
    }
    if let Some(addr) = shoutcast {
        println!("floe: SHOUTcast v1 sources on {addr} (mount {})", config.shoutcast.mount);
    }
    if let Some(first) = http.first() {
        let port = first.port();
        println!("floe: status page  http://localhost:{port}/");
        println!(
            "floe: stream with  ffmpeg -re -i music.mp3 -c:a libmp3lame -b:a 128k -content_type audio/mpeg -f mp3 icecast://source:{}@localhost:{port}/live.mp3",
            config.auth.source_password
        );
        println!("floe: listen at    http://localhost:{port}/live.mp3");
    }
    if config.uses_default_passwords() {
        tracing::warn!(
            "using the default passwords (source \"hackme\", admin admin/\"hackme\"): change them in [auth] before going public"
        );
    }
}

/// SIGHUP (Debian's logrotate for Icecast sends it) reopens the access log;
/// it never ends the server. Configuration reload is not implemented yet.
async fn reopen_logs_on_hangup(mut hangup: tokio::signal::unix::Signal, access_log: AccessLog) {
    while hangup.recv().await.is_some() {
        match access_log.reopen() {
            Ok(()) => tracing::info!("SIGHUP: access log reopened"),
            Err(error) => {
                tracing::error!(%error, "SIGHUP: cannot reopen the access log; still writing to the old file")
            }
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
