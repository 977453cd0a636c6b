//! The `floe` binary: parse the command line, load the configuration, bind
//! the sockets and run the server until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

use floe::access_log::AccessLog;
use floe::config::{self, Config, LiveConfig};
use floe::server::{self, Acceptors, Speaks};
use floe::state::{AppState, Shared};
use floe::tls::Tls;
use floe::upgrade::sockets::Role;
use floe::upgrade::Upgrader;

/// glibc's malloc, with a region of its own for what listeners keep for
/// hours (see `floe::heap`): packed there, it leaves no holes in the heap.
#[global_allocator]
static ALLOCATOR: floe::heap::Allocator = floe::heap::Allocator;

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
    /// Convert an Icecast (or Icecast-KH) icecast.xml to Floe's TOML on
    /// stdout; what cannot be converted is listed on stderr.
    ImportIcecast { file: PathBuf },
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
    if let Some(Command::ImportIcecast { file }) = &cli.command {
        return import_icecast(file);
    }
    if let Some(Command::CheckConfig { file }) = &cli.command {
        return match config::load_file(file, &floe::transcode::ENCODERS) {
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
        Some(path) => match config::load_file(path, &floe::transcode::ENCODERS) {
            Ok(config) => config,
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        None => Config::default(),
    };
    // Before the runtime's threads exist: these clear environment variables.
    floe::upgrade::notify::init();
    let startup = match floe::upgrade::sockets::inherited() {
        Ok(inherited) => Startup { inherited, handover_token: floe::upgrade::handover_token() },
        Err(error) => {
            eprintln!("floe: {error}");
            return ExitCode::FAILURE;
        }
    };
    let workers = match config.server.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build();
    match runtime {
        Ok(runtime) => {
            let code = runtime.block_on(serve(LiveConfig::new(config, cli.config.clone()), startup));
            // Not a plain drop, which waits for every blocking task: a file
            // write stuck on a dead disk or mount must not hold the exit.
            runtime.shutdown_timeout(std::time::Duration::from_secs(2));
            code
        }
        Err(error) => {
            eprintln!("floe: cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

fn import_icecast(file: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("floe: {}: {error}", file.display());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let dir = file.parent().unwrap_or(std::path::Path::new("."));
    match floe::import::import(&text, dir) {
        Ok(imported) => {
            print!("{}", imported.toml);
            for warning in &imported.warnings {
                eprintln!("floe: {}: warning: {warning}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("floe: {}: {error}", file.display());
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

async fn serve(live: LiveConfig, startup: Startup) -> ExitCode {
    let config = live.get();
    let tls = match &config.tls {
        Some(files) => match Tls::new(files.clone()) {
            Ok(tls) => Some(Arc::new(tls)),
            Err(error) => {
                eprintln!("floe: TLS: {error}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        None => None,
    };
    let opened = match startup.inherited.is_empty() {
        true => bind(&config, tls.as_ref()).await,
        false => adopt(startup.inherited, tls.as_ref()),
    };
    let (http, shoutcast) = match opened {
        Ok(sockets) => sockets,
        Err(error) => {
            eprintln!("floe: {error}");
            return ExitCode::FAILURE;
        }
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
    // Before the ports are announced: SIGHUP and SIGUSR2 must never find
    // the default action (exit).
    let hangup = signal(SignalKind::hangup()).and_then(|hup| Ok((hup, signal(SignalKind::user_defined1())?)));
    let usr2 = signal(SignalKind::user_defined2());
    let bound: Vec<(SocketAddr, &Speaks)> =
        http.iter().filter_map(|(l, speaks)| Some((l.local_addr().ok()?, speaks))).collect();
    let shoutcast_bound = shoutcast.as_ref().and_then(|l| l.local_addr().ok());
    announce(&config, &bound, shoutcast_bound);
    let http_port = bound.iter().find(|(_, s)| !matches!(s, Speaks::Tls(_))).map_or(0, |(a, _)| a.port());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (handover_tx, handover_rx) = watch::channel(false);
    let mut shared = Shared::new(live, access_log, http_port, shutdown_rx.clone()).with_tls(tls.clone());
    shared.handed_over = handover_rx;
    if let Some(token) = startup.handover_token {
        tracing::info!(pid = std::process::id(), "took the listening sockets over from the previous process");
        shared.handover_token = Some(token.into());
    }
    let state = AppState::from(shared);
    let roles =
        http.iter().map(|(l, speaks)| (role_of(speaks), l)).chain(shoutcast.iter().map(|l| (Role::Shoutcast, l)));
    match (Upgrader::new(roles.collect()), usr2) {
        (Ok(upgrader), Ok(usr2)) => drop(tokio::spawn(on_upgrade_signal(usr2, upgrader, state.clone(), handover_tx))),
        (Err(error), _) | (_, Err(error)) => tracing::warn!(%error, "binary upgrades (SIGUSR2) are not available"),
    }
    match hangup {
        Ok((hangup, usr1)) => drop(tokio::spawn(on_reload_signals(hangup, usr1, state.clone()))),
        Err(error) => tracing::warn!(%error, "cannot handle SIGHUP and SIGUSR1"),
    }
    if let Some(tls) = tls {
        tokio::spawn(tls.watch(shutdown_rx));
    }
    tokio::spawn(floe::heap::give_back_freed_pages());
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = shutdown_tx.send(true);
    });
    // systemd (`Type=notify`) or the process handing over waits for this.
    floe::upgrade::notify::ready();
    server::run(Acceptors { http, shoutcast }, state).await;
    ExitCode::SUCCESS
}

/// What a process started by systemd socket activation or by a binary
/// upgrade was given, taken before any thread starts.
struct Startup {
    inherited: Vec<(Role, std::net::TcpListener)>,
    handover_token: Option<String>,
}

type Sockets = (Vec<(TcpListener, Speaks)>, Option<TcpListener>);

/// Bind the configured addresses.
async fn bind(config: &Config, tls: Option<&Arc<Tls>>) -> Result<Sockets, String> {
    let mut http = Vec::new();
    for (addr, speaks) in ports(config, tls) {
        let listener = TcpListener::bind(addr).await.map_err(|error| format!("cannot listen on {addr}: {error}"))?;
        http.push((listener, speaks));
    }
    let shoutcast = match config.shoutcast.listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|error| format!("cannot listen on {addr} (SHOUTcast sources): {error}"))?,
        ),
        None => None,
    };
    Ok((http, shoutcast))
}

/// Serve on the sockets this process was given instead of binding.
fn adopt(inherited: Vec<(Role, std::net::TcpListener)>, tls: Option<&Arc<Tls>>) -> Result<Sockets, String> {
    let (mut http, mut shoutcast) = (Vec::new(), None);
    for (role, listener) in inherited {
        let listener = TcpListener::from_std(listener).map_err(|error| format!("inherited socket: {error}"))?;
        let needs_tls =
            || tls.cloned().ok_or(format!("an inherited socket is named {}, but [tls] is not configured", role.name()));
        match role {
            Role::Http => http.push((listener, Speaks::Plain)),
            Role::Https => http.push((listener, Speaks::Tls(needs_tls()?))),
            Role::Both => http.push((listener, Speaks::Either(needs_tls()?))),
            Role::Shoutcast => shoutcast = Some(listener),
        }
    }
    Ok((http, shoutcast))
}

fn role_of(speaks: &Speaks) -> Role {
    match speaks {
        Speaks::Plain => Role::Http,
        Speaks::Tls(_) => Role::Https,
        Speaks::Either(_) => Role::Both,
    }
}

/// SIGUSR2: hand the sockets to a new process started from the installed
/// binary (see `floe::upgrade`). A failed attempt changes nothing and may
/// be repeated; after a successful one this process only drains.
async fn on_upgrade_signal(mut usr2: Signal, upgrader: Upgrader, state: AppState, handed_over: watch::Sender<bool>) {
    while usr2.recv().await.is_some() {
        tracing::info!("SIGUSR2: starting the new binary");
        match upgrader.upgrade(&state, &handed_over).await {
            Ok(pid) => {
                tracing::info!(new_pid = pid, "SIGUSR2: the new process took the listening sockets over");
                return;
            }
            Err(error) => tracing::error!(%error, "SIGUSR2: upgrade failed; this process goes on serving"),
        }
    }
}

/// Every HTTP port and what it speaks: an address in both `listen` and
/// `tls_listen` is one socket serving both.
fn ports(config: &Config, tls: Option<&Arc<Tls>>) -> Vec<(SocketAddr, Speaks)> {
    let server = &config.server;
    let mut ports: Vec<(SocketAddr, Speaks)> = server
        .listen
        .iter()
        .map(|addr| match tls {
            Some(tls) if server.tls_listen.contains(addr) => (*addr, Speaks::Either(tls.clone())),
            _ => (*addr, Speaks::Plain),
        })
        .collect();
    if let Some(tls) = tls {
        let only_tls = server.tls_listen.iter().filter(|addr| !server.listen.contains(addr));
        ports.extend(only_tls.map(|addr| (*addr, Speaks::Tls(tls.clone()))));
    }
    ports
}

/// The start-up lines: where to open the page and stream to. The first line
/// is also what the test harness reads to learn the ports.
fn announce(config: &Config, http: &[(SocketAddr, &Speaks)], shoutcast: Option<SocketAddr>) {
    for (addr, speaks) in http {
        if !matches!(speaks, Speaks::Tls(_)) {
            println!("floe: listening on http://{addr}");
        }
        if !matches!(speaks, Speaks::Plain) {
            println!("floe: listening on https://{addr}");
        }
    }
    if let Some(addr) = shoutcast {
        println!("floe: SHOUTcast v1 sources on {addr} (mount {})", config.shoutcast.mount);
    }
    let plain = http.iter().find(|(_, speaks)| !matches!(speaks, Speaks::Tls(_))).map(|(addr, _)| addr);
    if let Some(first) = plain {
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

/// SIGHUP (what `systemctl reload` and Debian's logrotate for Icecast
/// send) reloads the configuration, reopens the access log and reloads the
/// TLS certificate; SIGUSR1 (the logrotate snippet in contrib/) only
/// reopens the log. Neither ever ends the server.
async fn on_reload_signals(mut hangup: Signal, mut usr1: Signal, state: AppState) {
    loop {
        let name = tokio::select! {
            Some(()) = hangup.recv() => "SIGHUP",
            Some(()) = usr1.recv() => "SIGUSR1",
            else => return,
        };
        if name == "SIGHUP" && state.config.file().is_some() {
            // Reading a small file; the reload itself only swaps handles.
            let _ = tokio::task::block_in_place(|| floe::reload::reload_logged(&state, name));
        }
        match state.access_log.reopen() {
            Ok(()) => tracing::info!("{name}: access log reopened"),
            Err(error) => {
                tracing::error!(%error, "{name}: cannot reopen the access log; still writing to the old file")
            }
        }
        if let (Some(tls), "SIGHUP") = (&state.tls, name) {
            tls.log_reload(name);
        }
    }
}

async fn wait_for_signal() {
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
