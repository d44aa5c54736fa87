//! `--watch`: reload when the config file, or a TLS file it names
//! (certificates, keys, CA bundles), changes.
//!
//! The directories holding those files are watched (inotify through
//! `notify`), not the files themselves: editors and config managers write
//! a temporary file and rename it over the old one, certificate tools
//! replace files the same way, and Kubernetes swaps a symlink, none of
//! which a watch on the old inode would see. Any event in a watched
//! directory starts a quiet period ([`DEBOUNCE`]); once it passes, the
//! files are read and the config reloaded only if some file's bytes
//! changed since the last load, so saves in several steps give one reload
//! and unrelated files cost one read. After each reload the set of watched
//! directories follows the TLS files the running config names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher as _};
use ringway_config::Config;

use crate::runtime::control::{Format, Handle};

/// Quiet time after the last event before the files are read.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// Longest a stream of events may delay a reload.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// A running watch; dropping it stops watching.
pub struct Watch {
    stop: Arc<AtomicBool>,
    _thread: JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// The TLS files a config names.
pub(crate) fn tls_files(config: &Config) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for l in &config.listeners {
        if let Some(t) = &l.tls {
            for c in &t.certificates {
                files.push(c.cert.clone());
                files.push(c.key.clone());
            }
            if let Some(a) = &t.client_auth {
                files.push(a.ca.clone());
            }
        }
    }
    for u in &config.upstreams {
        if let Some(t) = &u.tls {
            files.extend(t.ca.iter().cloned());
            files.extend(t.client_cert.iter().cloned());
            files.extend(t.client_key.iter().cloned());
        }
    }
    files
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The bytes of each file (empty when unreadable), to compare.
fn contents(files: &[PathBuf]) -> Vec<Vec<u8>> {
    files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_default())
        .collect()
}

/// Starts watching `path` and the TLS files of the running config,
/// reloading through `plane` when the config's bytes differ from `loaded`
/// (what the running config was read from) or a TLS file changed.
pub fn start(path: &Path, loaded: Vec<u8>, plane: Handle) -> notify::Result<Watch> {
    let path = path.to_path_buf();
    // Any event means "look again", so a full queue loses nothing.
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Opening and reading the files (ours included) are not changes;
        // reacting to them would have the watch re-read them forever.
        if event.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
            let _ = tx.try_send(());
        }
    })?;
    let mut watched = BTreeSet::new();
    let config_dir = dir_of(&path);
    watcher.watch(&config_dir, RecursiveMode::NonRecursive)?;
    watched.insert(config_dir);
    let mut files = tls_files(&plane.snapshot().config);
    follow(&mut watcher, &mut watched, &files);
    let mut last = loaded;
    let mut last_files = contents(&files);
    let shown = path.display().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ringway-watch".into())
        .spawn(move || loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(()) => {}
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if stopped.load(Ordering::Acquire) {
                        return;
                    }
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
            let first = Instant::now();
            while let Ok(()) = rx.recv_timeout(DEBOUNCE) {
                if first.elapsed() >= MAX_DELAY {
                    break;
                }
            }
            if stopped.load(Ordering::Acquire) {
                return;
            }
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "watched config unreadable; waiting for the next change");
                    continue;
                }
            };
            let now_files = contents(&files);
            if last == bytes && last_files == now_files {
                continue;
            }
            if last == bytes {
                tracing::info!(file = %path.display(), "a TLS file changed; reloading");
            } else {
                tracing::info!(file = %path.display(), "config file changed; reloading");
            }
            let src = String::from_utf8_lossy(&bytes);
            // Success and failure are logged and counted by the plane.
            // Either way these bytes are done with: a failed reload is
            // tried again only when the file, or a file the new config
            // names (a certificate not written yet, say), changes again;
            // those are watched even though the old config still runs.
            // Anything else changing in the directory (a log file beside
            // the config) reloads nothing.
            let _ = plane.reload_source(&src, Format::Toml);
            files = match Config::from_toml_str(&src) {
                Ok(parsed) => tls_files(&parsed),
                Err(_) => tls_files(&plane.snapshot().config),
            };
            follow(&mut watcher, &mut watched, &files);
            last = bytes;
            last_files = contents(&files);
        })
        .map_err(notify::Error::io)?;
    tracing::info!(file = %shown, "watching config file");
    Ok(Watch {
        stop,
        _thread: thread,
    })
}

/// Adds watches for the directories of `files` not watched yet.
fn follow(
    watcher: &mut notify::RecommendedWatcher,
    watched: &mut BTreeSet<PathBuf>,
    files: &[PathBuf],
) {
    for f in files {
        let dir = dir_of(f);
        if watched.contains(&dir) {
            continue;
        }
        match watcher.watch(&dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                watched.insert(dir);
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch a TLS file's directory")
            }
        }
    }
}
