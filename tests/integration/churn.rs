//! Listener churn: listeners come and go many times (`FLOE_DRILL_CYCLES`
//! a round, 3,000 in CI), ending every way a client can, and the server
//! keeps nothing of them. The drill runs itself again in a network
//! namespace of its own (`support::private_network`), where it can make
//! listeners vanish without a word.

use std::time::{Duration, Instant};

use crate::support::*;

/// The loopback address vanishing listeners connect from.
const VANISHING_ADDRESS: [u8; 4] = [127, 0, 0, 3];

/// How long the server takes at most to let a vanished listener go: its
/// socket's send buffer (64 KiB asked, which Linux doubles) fills at the
/// mount's 16 KB/s, and then a write waits the drill's `client_timeout`.
const LET_GO: Duration = Duration::from_secs(60);

/// The server's open file descriptors.
fn open_fds(server: &TestServer) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid())).map(|d| d.count()).unwrap_or(0)
}

/// `cycles` listeners of `mount` on four threads, each ending one of the
/// ways a client can: a clean close, a reset, or a half-close (it stops
/// sending, and vanishes only 50 cycles later: a few hundred descriptors at
/// most, whatever the machine's limit). Beside them `vanish` more vanish
/// without a word: once they have their burst, their address drops off the
/// network (nothing more arrives from them, not even an ACK), as a phone
/// leaving the Wi-Fi does.
fn churn(server: &TestServer, network: &PrivateNetwork, mount: &str, cycles: usize, vanish: usize) {
    let vanishing: Vec<Listener> = (0..vanish)
        .map(|_| {
            let mut listener = Listener::connect_from(VANISHING_ADDRESS, server, mount);
            listener.read_at_least(1, WAIT);
            listener
        })
        .collect();
    // Alone on the mount (the previous round is gone), from their address.
    let vanishing_ids = listeners_from(server, mount, VANISHING_ADDRESS);
    assert_eq!(vanishing_ids.len(), vanishing.len());
    assert_eq!(server.listener_ids(mount).len(), vanishing.len());
    let stalled_before = server.mount_stat(mount, "stalled_listeners");
    let vanished = network.vanish(VANISHING_ADDRESS.into());
    // Their goodbyes are lost as well.
    drop(vanishing);
    std::thread::scope(|scope| {
        for worker in 0..4 {
            scope.spawn(move || {
                let mut half_closed = std::collections::VecDeque::new();
                for cycle in (worker..cycles).step_by(4) {
                    let mut listener = Listener::connect(server, mount, &[]);
                    listener.read_at_least(1, WAIT);
                    match cycle % 3 {
                        0 => drop(listener),
                        1 => {
                            socket2::SockRef::from(&listener.sock).set_linger(Some(Duration::ZERO)).unwrap();
                            drop(listener);
                        }
                        _ => {
                            listener.sock.shutdown(std::net::Shutdown::Write).unwrap();
                            half_closed.push_back(listener);
                            if half_closed.len() > 50 {
                                half_closed.pop_front();
                            }
                        }
                    }
                }
            });
        }
    });
    eventually("every churned and vanished listener is gone", LET_GO, || server.mount_stat(mount, "listeners") == 0);
    drop(vanished);
    // Let go because their writes waited, not because a goodbye got through.
    let stalled = stalled_ids(&server.log());
    let heard_from: Vec<_> = vanishing_ids.iter().filter(|id| !stalled.contains(id)).collect();
    assert!(heard_from.is_empty(), "vanished listeners {heard_from:?} did not end by a write waiting client_timeout");
    let stalled = server.mount_stat(mount, "stalled_listeners") - stalled_before;
    assert!(stalled >= vanishing_ids.len() as u64, "{stalled} stalled listeners counted");
}

/// curl streaming `url` to nowhere, for as long as it is held.
fn curl_listener(url: &str) -> KillOnDrop {
    let child = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", url])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("curl runs");
    KillOnDrop(child)
}

/// The ids of `mount`'s listeners connected from `address`.
fn listeners_from(server: &TestServer, mount: &str, address: [u8; 4]) -> Vec<u64> {
    let address = std::net::Ipv4Addr::from(address).to_string();
    let listeners = server.listeners(mount);
    listeners.iter().filter(|l| l["IP"] == address.as_str()).filter_map(|l| l["id"].as_u64()).collect()
}

/// The listeners the server dropped because a write waited `client_timeout`.
fn stalled_ids(log: &str) -> std::collections::HashSet<u64> {
    log.lines()
        .filter(|line| line.contains("a write to the listener waited client_timeout"))
        .filter_map(|line| line.split_once("client_id=")?.1.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect()
}

/// Listeners of the first crowd, before the drill takes its start.
const FIRST_CROWD: usize = 3000;

/// Listeners of a round that vanish: a thirtieth (200 at most: a churn,
/// not a crowd).
fn vanishing_in(cycles: usize) -> usize {
    (cycles / 30).clamp(1, 200)
}

/// The default `burst_size`: a ring holds at least this much once its
/// source has been live a few seconds.
const BURST_SIZE: u64 = 65_536;

/// How far the long-lived region's resident bytes sway as the rings' chunks
/// come and go (16 pages).
const RING_SWAY: u64 = 64 * 1024;

/// How often the server hands freed pages back (`heap::EVERY`), and a
/// second for the walk.
const TRIM_PERIOD: Duration = Duration::from_secs(11);

/// How long after a round the server may take to be back within bounds: a
/// page goes back at the next trim once nothing allocated among the crowd
/// is left in it.
const SETTLE: Duration = Duration::from_secs(60);

/// The server's RSS in KiB at a point of the drill: the lowest seen over
/// one trim period, so that it holds nothing the next trim gives back.
fn settled_rss(server: &TestServer) -> u64 {
    let until = Instant::now() + TRIM_PERIOD;
    let mut lowest = server.rss_kib();
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(250));
        lowest = lowest.min(server.rss_kib());
    }
    lowest
}

/// Listeners come and go many times, ending every way a client can, while
/// a listener of another mount stays throughout (so the memory listeners
/// keep is never all free at once: the crowd's pages must go back while
/// someone still listens). The start is the server streaming two mounts,
/// their rings at their working size (a filling ring is no churn), after
/// a first crowd of `FIRST_CROWD` listeners of the same kinds: a fresh
/// process has not yet paged in the code that serves them nor filled its
/// allocator's per-thread caches (glibc keeps up to 7 freed blocks of each
/// of 64 sizes a thread, for good), and its heaps have not yet grown to a
/// crowd's shape; a served one never undoes those (README: Tests). After
/// each of two rounds the server holds no more descriptors than at the
/// start and its RSS is back within 5 % of the start's: whatever a round
/// costs is given back, however many listeners it had.
#[test]
fn listener_churn_leaves_nothing_behind() {
    let Some(network) = private_network("churn::listener_churn_leaves_nothing_behind") else {
        return;
    };
    let cycles = size("FLOE_DRILL_CYCLES", 3000);
    let vanish = vanishing_in(cycles);
    // Two workers, as on the 2-core CI machine.
    let server = TestServer::start(Opts { server: "workers = 2\n", limits: "client_timeout = 2\n", ..Opts::default() });
    let _source = FfmpegSource::sine(&server, "/churn.mp3", MP3);
    server.wait_live("/churn.mp3");
    // A steady audience on another mount stays throughout, as a station's
    // does: what the crowd took must go back all the same.
    let _steady_source = FfmpegSource::sine(&server, "/steady.mp3", MP3);
    server.wait_live("/steady.mp3");
    let mut steady = curl_listener(&server.url("/steady.mp3"));
    eventually("the steady listener is in", WAIT, || server.mount_stat("/steady.mp3", "listeners") == 1);
    let steady_id = server.listener_ids("/steady.mp3");
    let both_rings_full =
        || ["/churn.mp3", "/steady.mp3"].iter().all(|mount| server.mount_stat(mount, "held_bytes") >= BURST_SIZE);
    eventually("both rings hold a burst", WAIT, both_rings_full);
    let fresh = settled_rss(&server);
    churn(&server, &network, "/churn.mp3", FIRST_CROWD, vanish);
    let start = settled_rss(&server);
    let fds_start = open_fds(&server);
    let long_lived_start = server.server_stat("long_lived_bytes");
    for round in ["a first round", "a second round"] {
        churn(&server, &network, "/churn.mp3", cycles, vanish);
        eventually("descriptors are back to the start", WAIT, || open_fds(&server) <= fds_start);
        let within_5_percent = format!("{round} of {cycles} cycles has left RSS within 5 % of the start's {start} KiB");
        eventually(&within_5_percent, SETTLE, || server.rss_kib() <= start + start / 20);
        // The long-lived region hands back every page its crowd filled (the
        // rings' chunks vary by a few pages).
        eventually("the crowd's long-lived pages are back", SETTLE, || {
            server.server_stat("long_lived_bytes") <= long_lived_start + RING_SWAY
        });
        println!(
            "after {round} of {cycles} cycles: RSS {} KiB, long-lived region {} KiB",
            settled_rss(&server),
            server.server_stat("long_lived_bytes") / 1024
        );
    }
    assert_eq!(server.listener_ids("/steady.mp3"), steady_id, "the steady listener stayed");
    assert!(steady.running(), "curl still listening");
    println!(
        "RSS {fresh} KiB before the first crowd, {start} KiB after it (the start; long-lived region {} KiB)",
        long_lived_start / 1024
    );
}
