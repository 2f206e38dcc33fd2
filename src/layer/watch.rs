//! [`ConfWatcher`]: reloads the conf file on SIGHUP and when it changes on disk.
//!
//! The file's folder is watched, not the file: editors and config managers often replace a file
//! (write a new one, rename it over the old), which a watch on the old file would miss, and a
//! Kubernetes ConfigMap swaps a symlink beside it (`..data`) rather than touching the file's own
//! name. So any change in the folder makes the file be read again, and it is reloaded when its
//! contents differ from the last ones read. Reads are no change: the watcher's own reading of the
//! file would otherwise wake it again, for ever. Events are debounced, so the several writes of
//! one save make one reload.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::SalesforceLayer;

/// How long the file must be quiet before a change is reloaded.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// The watch could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The path names no file in a folder.
    #[error("cannot watch `{0}`: not a file in a folder")]
    NotAFile(PathBuf),
    /// The file system watch failed.
    #[error("cannot watch `{path}`: {source}")]
    Notify {
        /// The folder watched.
        path: PathBuf,
        /// Why.
        #[source]
        source: notify::Error,
    },
    /// The SIGHUP handler could not be installed.
    #[error("cannot listen for SIGHUP: {0}")]
    Signal(#[source] std::io::Error),
}

/// Reloads a conf file into a [`SalesforceLayer`] until dropped; see
/// [`SalesforceLayer::watch`].
pub struct ConfWatcher {
    _watcher: RecommendedWatcher,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for ConfWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfWatcher").finish_non_exhaustive()
    }
}

impl Drop for ConfWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ConfWatcher {
    pub(super) fn start(layer: SalesforceLayer, path: PathBuf) -> Result<Self, WatchError> {
        let (Some(_), Some(folder)) = (path.file_name(), path.parent()) else {
            return Err(WatchError::NotAFile(path));
        };
        let folder = if folder.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            folder.to_owned()
        };
        // One pending reload is enough: changes that come while one waits are read by it.
        let (changed, mut changes) = mpsc::channel::<()>(1);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<Event>| match event {
                Ok(event) if is_change(&event.kind) => {
                    let _ = changed.try_send(());
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "conf watch error"),
            })
            .map_err(|source| WatchError::Notify {
                path: folder.clone(),
                source,
            })?;
        watcher
            .watch(&folder, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError::Notify {
                path: folder.clone(),
                source,
            })?;
        let mut hangup = hangup().map_err(WatchError::Signal)?;
        let mut last = fingerprint(&path);
        let task = tokio::spawn(async move {
            loop {
                let why = tokio::select! {
                    Some(()) = changes.recv() => {
                        settle(&mut changes).await;
                        let now = fingerprint(&path);
                        if now == last {
                            continue;
                        }
                        last = now;
                        "the file changed"
                    }
                    Some(()) = hangup.recv() => "SIGHUP",
                    else => break,
                };
                tracing::info!(path = %path.display(), why, "reloading the conf");
                // Refusals are logged and counted by the reload itself.
                let _ = layer.reload_from_path(&path);
            }
        });
        Ok(Self {
            _watcher: watcher,
            task,
        })
    }
}

/// Whether an event in the conf's folder may have changed the file: anything but a read
/// (opening, reading, closing unwritten), such as the watcher's own.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Returns once no change has come for [`DEBOUNCE`].
async fn settle(changes: &mut mpsc::Receiver<()>) {
    while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, changes.recv()).await {}
}

/// A hash of the file's contents, `None` when it cannot be read: only a change is reloaded.
fn fingerprint(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some(hasher.finish())
}

#[cfg(unix)]
fn hangup() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
}

/// No SIGHUP outside Unix: a receiver that never fires.
#[cfg(not(unix))]
fn hangup() -> std::io::Result<NoSignal> {
    Ok(NoSignal)
}

#[cfg(not(unix))]
struct NoSignal;

#[cfg(not(unix))]
impl NoSignal {
    async fn recv(&mut self) -> Option<()> {
        std::future::pending().await
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// What the platform's watcher reports within a moment after `act`.
    fn events_after(
        watcher_rx: &std::sync::mpsc::Receiver<EventKind>,
        act: impl FnOnce(),
    ) -> Vec<EventKind> {
        act();
        let mut kinds = Vec::new();
        while let Ok(kind) = watcher_rx.recv_timeout(Duration::from_millis(200)) {
            kinds.push(kind);
        }
        kinds
    }

    #[test]
    fn reading_the_conf_is_no_change_and_writing_it_is() {
        let folder = std::env::temp_dir().join(format!("sfbridge-watch-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let file = folder.join("conf.toml");
        std::fs::write(&file, "a = 1\n").unwrap();
        let (sender, kinds) = std::sync::mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            let _ = sender.send(event.unwrap().kind);
        })
        .unwrap();
        watcher.watch(&folder, RecursiveMode::NonRecursive).unwrap();

        // What the watcher does after each change: read the file.
        let read = events_after(&kinds, || {
            fingerprint(&file).unwrap();
        });
        assert!(!read.is_empty(), "inotify reports the read");
        assert!(!read.iter().any(is_change), "{read:?}");

        let written = events_after(&kinds, || std::fs::write(&file, "a = 2\n").unwrap());
        assert!(written.iter().any(is_change), "{written:?}");
        let replaced = events_after(&kinds, || {
            std::fs::write(folder.join("conf.toml.new"), "a = 3\n").unwrap();
            std::fs::rename(folder.join("conf.toml.new"), &file).unwrap();
        });
        assert!(replaced.iter().any(is_change), "{replaced:?}");
        std::fs::remove_dir_all(&folder).unwrap();
    }
}
