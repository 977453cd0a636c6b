//! Recording a mount's stream to disk (`dump_file`, as Icecast's
//! `<dump-file>`): what the source sends, framed, written by a task of its
//! own that the mount feeds through a tap. A slow or full disk costs the
//! recording (the tap drops what it has no room for, counted in
//! `tap_overruns`), never a listener. Names are strftime patterns (UTC); a
//! file that reaches `dump_max_bytes` or `dump_max_seconds` is followed by
//! a new one, which starts with the stream's headers (Ogg, WebM) so that
//! every file plays on its own. A new file begins at a unit the framer cut
//! (a frame, an Ogg page, a WebM block), not at a WebM cluster: a player
//! may skip to the first cluster of such a file.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;

use crate::config::MountConfig;
use crate::mount::{tap, MountHandle, TapId, Tapped};
use crate::timefmt::strftime;

/// Source bytes the writer may be behind by before the recording loses data.
const BACKLOG: usize = 4 << 20;

/// After a file cannot be opened or written, how long the recording pauses
/// (what arrives meanwhile is not recorded) before it tries a file again.
const RETRY: Duration = Duration::from_secs(10);

/// A running recording; it stops when dropped (the source left).
pub struct Recording {
    mount: MountHandle,
    tap: TapId,
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.mount.clear_tap(&self.tap);
    }
}

/// Start recording `mount`'s new source, if its settings ask for it.
pub fn start(mount: &MountHandle) -> Option<Recording> {
    let config = mount.config();
    let pattern = config.dump_file.clone()?;
    let (sender, mut receiver) = tap::channel(BACKLOG);
    let recording = Recording { mount: mount.clone(), tap: sender.id() };
    mount.set_tap(sender);
    let mut writer = Writer::new(mount.clone(), pattern, &config);
    tokio::spawn(async move {
        while let Some(message) = receiver.recv().await {
            match message {
                Tapped::Data(bytes, _) => writer.write(bytes, false).await,
                Tapped::Headers(bytes, _) => {
                    writer.headers = bytes.clone();
                    writer.write(bytes, true).await;
                }
                Tapped::Title(_) => {}
            }
        }
        writer.close().await;
    });
    Some(recording)
}

/// The file being written and when to start the next.
struct Writer {
    mount: MountHandle,
    pattern: PathBuf,
    max_bytes: u64,
    max_age: Option<Duration>,
    /// The stream's latest headers, which start every file after the first.
    headers: Bytes,
    current: Option<Current>,
    /// Some file was opened already (a later one needs the headers).
    opened_any: bool,
    /// Paused after a failure until then.
    paused_until: Option<Instant>,
}

struct Current {
    path: PathBuf,
    file: File,
    /// Stream data written (headers not counted), for `dump_max_bytes`.
    data: u64,
    opened: Instant,
}

impl Writer {
    fn new(mount: MountHandle, pattern: PathBuf, config: &MountConfig) -> Writer {
        let max_age = (config.dump_max_seconds > 0).then(|| Duration::from_secs(config.dump_max_seconds));
        Writer {
            mount,
            pattern,
            max_bytes: config.dump_max_bytes,
            max_age,
            headers: Bytes::new(),
            current: None,
            opened_any: false,
            paused_until: None,
        }
    }

    /// Write a unit; headers never start a new file (they begin one).
    async fn write(&mut self, bytes: Bytes, headers: bool) {
        if self.paused_until.is_some_and(|until| Instant::now() < until) {
            return;
        }
        if self.current.is_none() || (!headers && self.is_due(bytes.len() as u64)) {
            self.next_file().await;
        }
        let Some(current) = &mut self.current else { return };
        match current.file.write_all(&bytes).await {
            Ok(()) => {
                if !headers {
                    current.data += bytes.len() as u64;
                }
                self.mount.stats().dump_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::error!(mount = self.mount.name(), path = %current.path.display(), %error, "cannot write the recording; retrying in {} s", RETRY.as_secs());
                self.current = None;
                self.paused_until = Some(Instant::now() + RETRY);
            }
        }
    }

    /// The current file is full or old enough.
    fn is_due(&self, adding: u64) -> bool {
        let Some(current) = &self.current else { return true };
        let full = self.max_bytes > 0 && current.data > 0 && current.data + adding > self.max_bytes;
        let old = self.max_age.is_some_and(|age| current.opened.elapsed() >= age);
        full || old
    }

    /// Open the file the pattern names now (appending, as Icecast does).
    /// A later file starts with the stream's headers; a name that has not
    /// changed (no time fields fine enough) keeps the file going.
    async fn next_file(&mut self) {
        let path = PathBuf::from(strftime(&self.pattern.to_string_lossy(), SystemTime::now()));
        if let Some(current) = &mut self.current {
            if current.path == path {
                current.data = 0;
                current.opened = Instant::now();
                return;
            }
        }
        self.close().await;
        let mut file = match open(&path).await {
            Ok(file) => file,
            Err(error) => {
                tracing::error!(mount = self.mount.name(), path = %path.display(), %error, "cannot open the recording file; retrying in {} s", RETRY.as_secs());
                self.paused_until = Some(Instant::now() + RETRY);
                return;
            }
        };
        let later = std::mem::replace(&mut self.opened_any, true);
        if later && !self.headers.is_empty() && file.write_all(&self.headers).await.is_ok() {
            self.mount.stats().dump_bytes.fetch_add(self.headers.len() as u64, Ordering::Relaxed);
        }
        tracing::info!(mount = self.mount.name(), path = %path.display(), "recording");
        self.current = Some(Current { path, file, data: 0, opened: Instant::now() });
    }

    async fn close(&mut self) {
        if let Some(mut current) = self.current.take() {
            let _ = current.file.flush().await;
        }
    }
}

async fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path).await
}
