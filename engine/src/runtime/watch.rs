//! `--watch`: reload when the config file changes.
//!
//! The directory holding the file is watched (inotify through `notify`),
//! not the file itself: editors and config managers write a temporary file
//! and rename it over the old one, and Kubernetes swaps a symlink, none of
//! which a watch on the old inode would see. Any event in the directory
//! starts a quiet period ([`DEBOUNCE`]); once it passes, the file is read
//! and reloaded only if its bytes changed since the last load, so saves in
//! several steps give one reload and unrelated files cost one read.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher as _};

use crate::runtime::control::{Format, Handle};

/// Quiet time after the last event before the file is read.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// Longest a stream of events may delay a reload.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// A running watch; dropping it stops watching.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
    _thread: JoinHandle<()>,
}

/// Starts watching `path`, reloading through `plane` when its bytes differ
/// from `loaded` (what the running config was read from).
pub fn start(path: &Path, loaded: Vec<u8>, plane: Handle) -> notify::Result<Watch> {
    let path = path.to_path_buf();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Any event means "look again", so a full queue loses nothing.
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Opening and reading the file (ours included) are not changes;
        // reacting to them would have the watch re-read the file forever.
        if event.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    let mut last = loaded;
    let shown = path.display().to_string();
    let thread = std::thread::Builder::new()
        .name("ringway-watch".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                let first = Instant::now();
                loop {
                    match rx.recv_timeout(DEBOUNCE) {
                        Ok(()) if first.elapsed() < MAX_DELAY => continue,
                        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                        _ => break,
                    }
                }
                let bytes = match std::fs::read(&path) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "watched config unreadable; waiting for the next change");
                        continue;
                    }
                };
                if last == bytes {
                    continue;
                }
                tracing::info!(file = %path.display(), "config file changed; reloading");
                let src = String::from_utf8_lossy(&bytes);
                // Success and failure are logged and counted by the plane.
                let _ = plane.reload_source(&src, Format::Toml);
                last = bytes;
            }
        })
        .map_err(notify::Error::io)?;
    tracing::info!(file = %shown, "watching config file");
    Ok(Watch {
        _watcher: watcher,
        _thread: thread,
    })
}
