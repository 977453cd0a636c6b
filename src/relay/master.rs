//! `[master]`: this server as a slave of another (Icecast's master/slave
//! relaying). Every `interval` it reads the master's
//! `/admin/streamlist.txt` with the relay credentials and keeps one relay
//! per listed mount, into the mount of the same name here: a mount that
//! appears is relayed at once, one that leaves the list stops being
//! relayed. A master that cannot be reached keeps the relays it had (they
//! retry on their own) until it answers again.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;

use super::{open, RelayError};
use crate::config::{valid_mount_name, MasterConfig, RelayConfig};
use crate::http::url::HttpUrl;
use crate::state::AppState;

/// The most of a stream list read (a line per mount: thousands of mounts).
const MAX_LIST: usize = 256 * 1024;
/// The most mounts relayed from one master.
const MAX_MOUNTS: usize = 1000;

/// Poll the master until shutdown, relaying what it lists.
pub(super) async fn follow(master: MasterConfig, state: AppState) {
    let mut shutdown = state.shutdown.clone();
    let mut relays: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        match stream_list(&master, &state).await {
            Ok(mounts) => update(&master, &state, &mut relays, mounts),
            Err(error) => tracing::warn!(master = %master.url, %error, "cannot read the master's stream list"),
        }
        tokio::select! {
            _ = tokio::time::sleep(master.interval) => {}
            _ = shutdown.wait_for(|&down| down) => break,
        }
    }
    // Each relay ends by itself at shutdown; this only waits for them.
    for (_, relay) in relays {
        let _ = relay.await;
    }
}

/// Start relays for mounts newly listed, stop those no longer listed
/// (their mounts' listeners follow the fallback, as when any source leaves).
fn update(master: &MasterConfig, state: &AppState, relays: &mut HashMap<String, JoinHandle<()>>, listed: Vec<String>) {
    // A mount a [[relay]] feeds is that relay's.
    let configured: Vec<String> = state.config.get().relays.iter().map(|r| r.mount.clone()).collect();
    let wanted: Vec<String> = listed.into_iter().filter(|m| !configured.contains(m)).take(MAX_MOUNTS).collect();
    relays.retain(|mount, relay| {
        let keep = wanted.contains(mount);
        if !keep {
            tracing::info!(%mount, master = %master.url, "the master no longer lists the mount: relay stopped");
            relay.abort();
        }
        keep
    });
    for mount in wanted {
        if relays.contains_key(&mount) {
            continue;
        }
        tracing::info!(%mount, master = %master.url, "relaying a mount the master lists");
        let relay = RelayConfig {
            url: mount_url(&master.url, &mount),
            mount: mount.clone(),
            username: None,
            password: None,
            metadata: master.metadata,
            retry: Duration::from_secs(2),
            on_demand: master.on_demand,
        };
        relays.insert(mount, tokio::spawn(super::run(relay, state.clone())));
    }
}

/// Where the master serves `path`: under the configured URL's path.
fn mount_url(base: &HttpUrl, path: &str) -> HttpUrl {
    let prefix = base.target.split('?').next().unwrap_or("").trim_end_matches('/');
    HttpUrl { target: format!("{prefix}{path}"), ..base.clone() }
}

/// The master's public mounts, from its `/admin/streamlist.txt`.
async fn stream_list(master: &MasterConfig, state: &AppState) -> Result<Vec<String>, RelayError> {
    let url = mount_url(&master.url, "/admin/streamlist.txt");
    let credentials = Some((master.username.as_str(), master.password.as_str()));
    let (sock, mut body, _) = open(&url, false, credentials, state).await?;
    let limit = state.config.get().limits.header_timeout;
    let read = async {
        let mut sock = sock.take(MAX_LIST as u64);
        while sock.read_buf(&mut body).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(limit, read).await.map_err(|_| RelayError::Timeout)??;
    Ok(parse_list(&body))
}

/// One mount per line; lines that are not mount names are skipped (a list
/// cut at `MAX_LIST` loses at most its last, partial line).
fn parse_list(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let complete = if body.len() >= MAX_LIST { text.rsplit_once('\n').map_or("", |(head, _)| head) } else { &text };
    let mut mounts: Vec<String> = Vec::new();
    for line in complete.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if valid_mount_name(line) && !mounts.iter().any(|m| m == line) {
            mounts.push(line.to_string());
        } else if !valid_mount_name(line) {
            tracing::warn!(line = %crate::escape::escape_log(line), "the master listed something that is not a mount name");
        }
    }
    mounts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_read_line_by_line_and_checked() {
        let list = parse_list(b"/live.mp3\r\n/jazz.ogg\r\n\r\nnot a mount\r\n/live.mp3\r\n/a/../b\r\n");
        assert_eq!(list, ["/live.mp3", "/jazz.ogg"]);
        let mut cut = b"/a\n".repeat(MAX_LIST / 3);
        cut.extend_from_slice(b"/partial");
        cut.truncate(MAX_LIST);
        assert!(parse_list(&cut).iter().all(|m| m == "/a"));
    }

    #[test]
    fn mounts_sit_under_the_masters_path() {
        let base: HttpUrl = "http://origin:8000".parse().unwrap();
        assert_eq!(mount_url(&base, "/live.mp3").to_string(), "http://origin:8000/live.mp3");
        let prefixed: HttpUrl = "http://origin/radio/".parse().unwrap();
        assert_eq!(mount_url(&prefixed, "/admin/streamlist.txt").target, "/radio/admin/streamlist.txt");
    }
}
