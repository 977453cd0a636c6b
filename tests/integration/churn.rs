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
/// most, whatever the machine's limit). Beside them a thirtieth as many (200
/// at most: a churn, not a crowd) vanish without a word: once they have
/// their burst, their address drops off the network (nothing more arrives
/// from them, not even an ACK), as a phone leaving the Wi-Fi does.
fn churn(server: &TestServer, network: &PrivateNetwork, mount: &str, cycles: usize) {
    let vanishing: Vec<Listener> = (0..(cycles / 30).clamp(1, 200))
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

/// What glibc keeps for good once a thread has freed blocks of every size:
/// its cache holds up to 7 blocks of each of the 64 sizes from 32 to 1,040
/// bytes (34,304 bytes a set).
const THREAD_CACHE_KIB: u64 = 7 * 34_304 / 1024;

/// Pages the allocator keeps because something small still lives in
/// them, after a round: measured 0.5–1 MiB here; allowed twice as much.
const PARTLY_USED_KIB: u64 = 2048;

/// The threads the server runs.
fn threads(server: &TestServer) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

/// How much the server may grow from a fresh start without keeping
/// anything of its listeners: each thread's allocator cache filled, what
/// the ring has grown by since `held_at_start` (to its burst and a little
/// more over a source's first seconds), and up to 2 MiB of partly used
/// pages (`PARTLY_USED_KIB`).
fn one_time_step(server: &TestServer, held_at_start: u64) -> u64 {
    let ring_grew = server.server_stat("held_bytes").saturating_sub(held_at_start) / 1024;
    threads(server) * THREAD_CACHE_KIB + ring_grew + PARTLY_USED_KIB
}

/// The server's RSS once it is at most `bound()` KiB (within a minute): it
/// hands freed pages back every 10 s, and pages that still hold something
/// allocated among a crowd (ring chunks, a shrunk table) free only once that
/// goes, so a crowd that just left is still in it for a while.
fn rss_within(server: &TestServer, bound: impl Fn() -> u64, failure: impl Fn(u64, u64) -> String) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (rss, bound) = (server.rss_anon_kib(), bound());
        if rss <= bound {
            return rss;
        }
        assert!(Instant::now() < deadline, "{}", failure(rss, bound));
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Listeners come and go many times, ending every way a client can, while
/// a listener of another mount stays throughout (so the memory listeners
/// keep is never all free at once: the crowd's pages must go back while
/// someone still listens). Afterwards the server holds no more descriptors
/// than before; the first
/// round costs its anonymous memory no more than a one-time step (each
/// thread's allocator cache filled, the ring at its working size, and
/// partly used pages: measured here 0.8 MiB at 3,000 cycles a round and
/// 1.5 MiB at 100,000), and a second round leaves it within 5 % (or 1 MiB)
/// of where the first left it: whatever a round costs is given back, not
/// kept.
#[test]
fn listener_churn_leaves_nothing_behind() {
    let Some(network) = private_network("churn::listener_churn_leaves_nothing_behind") else {
        return;
    };
    let cycles = size("FLOE_DRILL_CYCLES", 3000);
    // Two workers, as on the 2-core CI machine: the step allowed grows with threads.
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
    let fds_before = open_fds(&server);
    let (rss_cold, held_cold) = (server.rss_anon_kib(), server.server_stat("held_bytes"));
    let vm_rss_cold = server.rss_kib();
    churn(&server, &network, "/churn.mp3", cycles);
    eventually("descriptors are back to the start", WAIT, || open_fds(&server) <= fds_before);
    let rss_first = rss_within(
        &server,
        || rss_cold + one_time_step(&server, held_cold),
        |rss, bound| {
            format!("{cycles} cycles left the server at {rss} KiB from {rss_cold} KiB (more than {bound} KiB)")
        },
    );
    let step_kib = rss_first.saturating_sub(rss_cold);
    churn(&server, &network, "/churn.mp3", cycles);
    eventually("descriptors are back to the start again", WAIT, || open_fds(&server) <= fds_before);
    let allowed = (rss_first / 20).max(1024);
    let rss_second = rss_within(
        &server,
        || rss_first + allowed,
        |rss, _| format!("a second round of {cycles} cycles left the server at {rss} KiB from {rss_first} KiB"),
    );
    assert_eq!(server.listener_ids("/steady.mp3"), steady_id, "the steady listener stayed");
    assert!(steady.running(), "curl still listening");
    println!("anonymous RSS {rss_cold} KiB at the start, {rss_first} KiB after one round (a one-time step of {step_kib} KiB, {} allowed), {rss_second} KiB after two", one_time_step(&server, held_cold));
    println!("all RSS {vm_rss_cold} KiB at the start, {} KiB now", server.rss_kib());
}
