//! Listener passwords from an htpasswd file: Icecast 2.4's `user:<hex MD5>`,
//! crypt `$1$`, `$5$`, `$6$` and bcrypt `$2y$`/`$2a$`/`$2b$` (Apache's
//! `htpasswd -B`, `openssl passwd -1/-5/-6`). The file is read again when
//! it changes. Crypt and bcrypt are slow on purpose, so checks run on the
//! blocking pool, a few at a time, and a verified pair is remembered (as a
//! keyed hash, never the password) until the file changes.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use md5::{Digest, Md5};
use parking_lot::Mutex;
use tokio::sync::Semaphore;

/// How often a file's metadata is looked at for a change.
const RECHECK: Duration = Duration::from_secs(1);
/// Slow hash checks running at once, server-wide.
const CONCURRENT_CHECKS: usize = 2;
/// Verified pairs remembered per file; past it the memory starts again.
const REMEMBERED: usize = 4096;
/// Longest file read.
const MAX_FILE: u64 = 8 << 20;

/// One stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stored {
    /// Icecast's htpasswd: the hex MD5 of the password.
    IcecastMd5([u8; 16]),
    /// A crypt(3) modular hash pwhash verifies.
    Crypt(String),
}

impl Stored {
    fn parse(hash: &str) -> Result<Stored, String> {
        if hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut md5 = [0u8; 16];
            for (i, byte) in md5.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&hash[i * 2..i * 2 + 2], 16).map_err(|e| e.to_string())?;
            }
            return Ok(Stored::IcecastMd5(md5));
        }
        let scheme = hash.split('$').nth(1).unwrap_or("");
        match scheme {
            "1" | "5" | "6" | "2y" | "2a" | "2b" if hash.starts_with('$') => Ok(Stored::Crypt(hash.to_string())),
            "apr1" => Err("Apache's $apr1$ MD5 is not supported: use bcrypt (htpasswd -B)".into()),
            _ => Err("not a hash Floe knows (hex MD5, $1$, $5$, $6$ or bcrypt)".into()),
        }
    }

    fn verify(&self, password: &str) -> bool {
        match self {
            Stored::IcecastMd5(expected) => {
                let got: [u8; 16] = Md5::digest(password.as_bytes()).into();
                got.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
            }
            Stored::Crypt(hash) => pwhash::unix::verify(password, hash),
        }
    }

    fn slow(&self) -> bool {
        matches!(self, Stored::Crypt(_))
    }
}

/// Parse a whole file: the users, and a message per line that is not usable.
fn parse_file(text: &str) -> (HashMap<String, Stored>, Vec<String>) {
    let mut users = HashMap::new();
    let mut problems = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            problems.push(format!("line {}: expected user:hash", number + 1));
            continue;
        };
        match Stored::parse(hash.trim()) {
            Ok(stored) => drop(users.insert(user.to_string(), stored)),
            Err(why) => problems.push(format!("line {} (user {user:?}): {why}", number + 1)),
        }
    }
    (users, problems)
}

/// Read and check a file for the config loader: every line must be usable.
pub fn check_file(path: &Path) -> Result<usize, String> {
    let text = read(path)?;
    let (users, problems) = parse_file(&text);
    match problems.first() {
        Some(first) => Err(format!("{}: {first}", path.display())),
        None => Ok(users.len()),
    }
}

fn read(path: &Path) -> Result<String, String> {
    let fail = |e: std::io::Error| format!("{}: cannot read: {e}", path.display());
    let len = std::fs::metadata(path).map_err(fail)?.len();
    if len > MAX_FILE {
        return Err(format!("{}: {len} bytes is too large for a password file", path.display()));
    }
    std::fs::read_to_string(path).map_err(fail)
}

/// One file as last read, and what was verified against it.
struct Loaded {
    users: Arc<HashMap<String, Stored>>,
    modified: Option<(SystemTime, u64)>,
    checked: Instant,
    verified: HashSet<u64>,
}

/// Every htpasswd file the mounts name, read on first use.
pub struct Htpasswd {
    files: Mutex<HashMap<PathBuf, Loaded>>,
    slow_checks: Semaphore,
    keys: RandomState,
}

impl Default for Htpasswd {
    fn default() -> Htpasswd {
        Htpasswd { files: Mutex::default(), slow_checks: Semaphore::new(CONCURRENT_CHECKS), keys: RandomState::new() }
    }
}

impl Htpasswd {
    /// Is `password` right for `user` in `path`?
    pub async fn verify(&self, path: &Path, user: &str, password: &str) -> bool {
        let remembered = self.keys.hash_one((user, password));
        let Some(stored) = self.lookup(path, user, remembered) else { return false };
        let stored = match stored {
            Lookup::Verified => return true,
            Lookup::Check(stored) => stored,
        };
        let right = if stored.slow() {
            let Ok(_turn) = self.slow_checks.acquire().await else { return false };
            let password = password.to_string();
            tokio::task::spawn_blocking(move || stored.verify(&password)).await.unwrap_or(false)
        } else {
            stored.verify(password)
        };
        if right {
            if let Some(loaded) = self.files.lock().get_mut(path) {
                if loaded.verified.len() >= REMEMBERED {
                    loaded.verified.clear();
                }
                loaded.verified.insert(remembered);
            }
        }
        right
    }

    /// The user's stored hash (reading the file again if it changed), or
    /// that this pair was verified before.
    fn lookup(&self, path: &Path, user: &str, remembered: u64) -> Option<Lookup> {
        let mut files = self.files.lock();
        let now = Instant::now();
        let stale = files.get(path).is_none_or(|l| now.duration_since(l.checked) >= RECHECK);
        if stale {
            let modified = std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
            let changed = files.get(path).is_none_or(|l| l.modified != modified);
            if changed {
                let users = match read(path) {
                    Ok(text) => {
                        let (users, problems) = parse_file(&text);
                        for problem in problems {
                            tracing::warn!(file = %path.display(), "htpasswd: {problem}; that user cannot log in");
                        }
                        users
                    }
                    Err(error) => {
                        tracing::error!("htpasswd: {error}; nobody can log in until it is readable");
                        HashMap::new()
                    }
                };
                let loaded = Loaded { users: Arc::new(users), modified, checked: now, verified: HashSet::new() };
                files.insert(path.to_path_buf(), loaded);
            }
        }
        let loaded = files.get_mut(path)?;
        loaded.checked = if stale { now } else { loaded.checked };
        if loaded.verified.contains(&remembered) {
            return Some(Lookup::Verified);
        }
        loaded.users.get(user).cloned().map(Lookup::Check)
    }
}

enum Lookup {
    Verified,
    Check(Stored),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_hash_verifies() {
        // echo -n secret | md5sum; openssl passwd -1/-5/-6 -salt saltsalt secret; htpasswd -nbB -C 4
        let hashes = [
            "5ebe2294ecd0e0f08eab7690d2a6ee69",
            "$1$saltsalt$9xy1btjgzLYfb7hivXtC//",
            "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
            "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1",
            "$2y$04$4Wr6AXI9zzW..wBoovamxu834I8NgmAo6SAoABRSb9Q3UdVbG3k3m",
        ];
        for hash in hashes {
            let stored = Stored::parse(hash).unwrap();
            assert!(stored.verify("secret"), "{hash}");
            assert!(!stored.verify("Secret"), "{hash}");
        }
    }

    #[test]
    fn unusable_lines_are_named() {
        let (users, problems) =
            parse_file("# listeners\nann:5ebe2294ecd0e0f08eab7690d2a6ee69\nbob:$apr1$x$y\ncarl\n\n");
        assert_eq!(users.len(), 1);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].starts_with("line 3 (user \"bob\"): Apache's $apr1$"), "{problems:?}");
        assert!(problems[1].starts_with("line 4"), "{problems:?}");
    }
}
