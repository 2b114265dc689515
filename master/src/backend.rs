//! One call that opens whichever journal the configuration chooses, and the
//! `format` / `is_formatted` pair `primacy format` and `primacy master` use.
//!
//! `open_journal` never formats: an unformatted journal is `Unformatted`, and
//! another cluster's is `ForeignJournal`; the CLI turns both into a message
//! naming `primacy format`.

use std::path::Path;
use std::sync::Arc;

use futures::TryStreamExt;
use journal_core::{
    Instrumented, JournalError, JournalMetrics, JournalSystem, Result, SharedStateMachine,
};
use journal_raft::format::{read_marker, DirLock, FORMAT_FILE};
use journal_raft::{RaftJournal, RaftJournalConfig};
use journal_ufs::layout::Layout;
use journal_ufs::{open_folder_with, Folder};
use object_store::ObjectStoreExt;

use crate::config::{Backend, MasterConfig};
use crate::ha;

/// Opens this master's journal as `cfg` chooses ([`MasterConfig::backend`]):
/// UFS with ZooKeeper, a single UFS master, or the embedded Raft journal.
/// Returns once the journal runs, as a standby until it is elected: watch
/// `role()`, or `journal_core::wait_for_primary`, before proposing.
/// Embedders use [`crate::embed::Replicated`], which wraps this call.
///
/// Errors: `Config` for contradictory or malformed settings (naming the key,
/// value and source), `Unformatted` for a journal `primacy format` has not
/// prepared, `ForeignJournal` for another cluster's, and the backend's own
/// errors (`Io`, `Corrupt`, ...).
pub async fn open_journal(
    cfg: &MasterConfig,
    machine: SharedStateMachine,
) -> Result<Arc<dyn JournalSystem>> {
    open_journal_with(cfg, machine, JournalMetrics::default()).await
}

/// [`open_journal`], with the backend counting into `metrics` (chunk writes,
/// batch sizes, checkpoints, fencings, leader changes, snapshot transfers)
/// and the returned journal counting proposals and their commit latency
/// ([`Instrumented`]).
pub async fn open_journal_with(
    cfg: &MasterConfig,
    machine: SharedStateMachine,
    metrics: JournalMetrics,
) -> Result<Arc<dyn JournalSystem>> {
    let backend = cfg.backend()?;
    tracing::info!(%backend, "opening the journal");
    let journal: Arc<dyn JournalSystem> = match backend {
        Backend::UfsZooKeeper => {
            let zk = cfg.zk_config()?;
            let mut ufs = cfg.ufs_journal_config()?;
            ufs.metrics = metrics.clone();
            ha::open_ufs(ufs, zk, machine).await?
        }
        Backend::UfsSingle => {
            let mut ufs = cfg.ufs_journal_config()?;
            ufs.metrics = metrics.clone();
            ha::open_ufs_single(ufs, machine).await?
        }
        Backend::Embedded => {
            let mut raft = cfg.raft_journal_config()?;
            raft.metrics = metrics.clone();
            RaftJournal::open(raft, machine).await?
        }
    };
    Ok(Arc::new(Instrumented::new(journal, metrics)))
}

/// True when the chosen journal holds a format marker this master may use.
///
/// UFS: FORMAT exists in the folder (a missing local folder is `false`);
/// with `alluxio.master.cluster.id` set, another id is `ForeignJournal`.
/// Embedded: the data directory's marker belongs to this member
/// (`RaftJournal::is_formatted`). Reads only.
pub async fn is_formatted(cfg: &MasterConfig) -> Result<bool> {
    match cfg.backend()? {
        Backend::UfsZooKeeper | Backend::UfsSingle => {
            let url = cfg.journal_folder()?;
            let folder = match open_folder_with(&url, false, &cfg.journal.store_options) {
                Ok(f) => f,
                Err(JournalError::Unformatted { .. }) => return Ok(false),
                Err(e) => return Err(e),
            };
            let layout = Layout::new(folder.root.clone(), folder.url.clone());
            match journal_ufs::format::read_format(&folder, &layout).await? {
                None => Ok(false),
                Some(marker) => match &cfg.cluster_id {
                    Some(want) if *want != marker.cluster_id => Err(JournalError::ForeignJournal {
                        location: folder.url.clone(),
                        detail: format!(
                            "it was formatted for cluster {:?}, this master is configured for \
                             cluster {want:?}",
                            marker.cluster_id
                        ),
                    }),
                    _ => Ok(true),
                },
            }
        }
        Backend::Embedded => {
            let raft = cfg.raft_journal_config()?;
            blocking(move || RaftJournal::is_formatted(&raft)).await
        }
    }
}

/// The cluster id the chosen journal was formatted with (UFS: the folder's
/// FORMAT; embedded: this member's marker, which is authoritative), or
/// `None` when it is not formatted. Reads only. Operators need it to format
/// a member joining a grown embedded group with an updated address list
/// (`primacy journal quorum info` shows it).
pub async fn cluster_id(cfg: &MasterConfig) -> Result<Option<String>> {
    match cfg.backend()? {
        Backend::UfsZooKeeper | Backend::UfsSingle => {
            let folder =
                match open_folder_with(&cfg.journal_folder()?, false, &cfg.journal.store_options) {
                    Ok(f) => f,
                    Err(JournalError::Unformatted { .. }) => return Ok(None),
                    Err(e) => return Err(e),
                };
            let layout = Layout::new(folder.root.clone(), folder.url.clone());
            Ok(journal_ufs::format::read_format(&folder, &layout)
                .await?
                .map(|m| m.cluster_id))
        }
        Backend::Embedded => {
            let dir = cfg.raft_journal_config()?.data_dir;
            blocking(move || Ok(read_marker(&dir)?.map(|m| m.cluster_id))).await
        }
    }
}

/// Formats the chosen journal.
///
/// UFS: writes FORMAT into the folder (created if absent) with
/// `alluxio.master.cluster.id`, or a generated `primacy-<uuid>` id. Run it
/// once for the shared folder. Embedded: writes this member's marker into
/// its data directory (cluster id from `alluxio.master.cluster.id`, or
/// derived from the initial members); run it on every master.
///
/// Without `force`, a formatted journal is refused (`AlreadyFormatted`) and
/// so is a folder holding anything else (`ForeignJournal`). With `force`, a
/// journal of primacy's on local disk (or `memory://`) is removed first:
/// only the journal's own files (UFS: `logs/`, `checkpoints/`, `tmp/`, then
/// `FORMAT`; embedded: `log/`, `snapshots/`, `FORMAT.tmp`, then `FORMAT`,
/// under the directory lock, so a running master's directory is refused).
/// Anything else is left and still makes the format fail; a foreign FORMAT
/// is never removed; cloud folders are never wiped (delete by hand).
/// FORMAT goes last so an interrupted forced format can simply be re-run.
pub async fn format(cfg: &MasterConfig, force: bool) -> Result<()> {
    format_as(cfg, force, false).await
}

/// [`format()`], choosing how an embedded (Raft) member enters its group:
/// `join = false` formats a founder of a brand-new group (its initial voters
/// are `alluxio.master.embedded.journal.addresses`); `join = true` formats a
/// member that replaces lost data or is added later: it gets a fresh member
/// id, never bootstraps, and serves once an operator added it to the group
/// (see docs/raft-journal.md). `join` is refused for the UFS journal, whose
/// masters share one folder.
pub async fn format_as(cfg: &MasterConfig, force: bool, join: bool) -> Result<()> {
    let backend = cfg.backend()?;
    if join && backend != Backend::Embedded {
        return Err(JournalError::config(
            crate::config::registry::JOURNAL_TYPE,
            "--join applies to the embedded journal only: UFS masters share one formatted folder",
        ));
    }
    match backend {
        Backend::UfsZooKeeper | Backend::UfsSingle => {
            let folder =
                open_folder_with(&cfg.journal_folder()?, true, &cfg.journal.store_options)?;
            if force {
                wipe_ufs(&folder).await?;
            }
            let cluster_id = cfg
                .cluster_id
                .clone()
                .unwrap_or_else(|| format!("primacy-{}", uuid::Uuid::new_v4()));
            journal_ufs::format(&folder, &cluster_id).await?;
            tracing::info!(folder = %folder.url, cluster = %cluster_id, "UFS journal formatted");
            Ok(())
        }
        Backend::Embedded => {
            let raft = cfg.raft_journal_config()?;
            blocking(move || {
                if force {
                    wipe_raft(&raft)?;
                }
                let mode = if join {
                    journal_raft::FormatMode::Join
                } else {
                    journal_raft::FormatMode::NewCluster
                };
                RaftJournal::format(&raft, mode)
            })
            .await
        }
    }
}

/// Removes a UFS journal's own objects, FORMAT last (see [`format`]).
async fn wipe_ufs(folder: &Folder) -> Result<()> {
    if !(folder.url.starts_with("file://") || folder.url.starts_with("memory://")) {
        return Err(JournalError::config(
            crate::config::registry::JOURNAL_FOLDER,
            format!(
                "{} is not a local folder; a forced format only removes local journals, \
                 delete this one's objects by hand",
                folder.url
            ),
        ));
    }
    let layout = Layout::new(folder.root.clone(), folder.url.clone());
    match journal_ufs::format::read_format(folder, &layout).await {
        Ok(Some(_)) | Err(JournalError::Corrupt { .. }) => {}
        // Nothing of ours to remove; `format` reports whatever is there.
        Ok(None) => return Ok(()),
        Err(e) => return Err(e),
    }
    let mut removed = 0usize;
    for dir in [layout.logs(), layout.checkpoints(), layout.temp_dir()] {
        let objects: Vec<_> = folder
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| JournalError::io(layout.describe(&dir), e))?;
        for meta in objects {
            delete_object(folder, &layout, &meta.location).await?;
            removed += 1;
        }
    }
    delete_object(folder, &layout, &layout.format()).await?;
    tracing::warn!(folder = %folder.url, objects = removed, "forced format: removed the old UFS journal");
    Ok(())
}

async fn delete_object(
    folder: &Folder,
    layout: &Layout,
    path: &object_store::path::Path,
) -> Result<()> {
    match folder.store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(JournalError::io(layout.describe(path), e)),
    }
}

/// Removes an embedded journal's own files under its lock, FORMAT last (see
/// [`format`]). Blocking.
fn wipe_raft(cfg: &RaftJournalConfig) -> Result<()> {
    let dir = &cfg.data_dir;
    if !dir.exists() {
        return Ok(());
    }
    let lock = DirLock::acquire(dir)?;
    match read_marker(dir) {
        Ok(Some(_)) | Err(JournalError::Corrupt { .. }) => {}
        Ok(None) => return Ok(()),
        Err(e) => return Err(e),
    }
    remove_dir(&journal_raft::storage::log_dir(dir))?;
    remove_dir(&journal_raft::storage::snapshot_dir(dir))?;
    remove_file(&dir.join("FORMAT.tmp"))?;
    remove_file(&dir.join(FORMAT_FILE))?;
    journal_raft::storage::sync_dir(dir)
        .map_err(|e| JournalError::io(dir.display().to_string(), e))?;
    drop(lock);
    tracing::warn!(dir = %dir.display(), "forced format: removed the old embedded journal");
    Ok(())
}

fn remove_dir(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(JournalError::io(path.display().to_string(), e))
        }
        _ => Ok(()),
    }
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(JournalError::io(path.display().to_string(), e))
        }
        _ => Ok(()),
    }
}

/// Runs file-system work (fsyncs, directory scans) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        JournalError::io(
            "journal directory",
            format!("the blocking task failed: {e}"),
        )
    })?
}
