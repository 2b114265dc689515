//! Composing the UFS journal with an election: `UfsJournal + ZkElection`
//! (highly available) or `UfsJournal + SingleMaster` (one master).

use std::sync::Arc;

use election_zk::{ZkConfig, ZkElection};
use journal_core::{Result, SharedStateMachine, SingleMaster};
use journal_ufs::{UfsJournal, UfsJournalConfig};

/// Opens a UFS journal for this master: highly available with ZooKeeper
/// when `zookeeper` is set (`alluxio.zookeeper.enabled=true`), a single
/// master otherwise.
pub async fn open_ufs(
    journal: UfsJournalConfig,
    zookeeper: Option<ZkConfig>,
    machine: SharedStateMachine,
) -> Result<Arc<UfsJournal>> {
    match zookeeper {
        Some(zk) => open_ufs_ha(journal, Arc::new(ZkElection::new(zk)?), machine).await,
        None => open_ufs_single(journal, machine).await,
    }
}

/// `UfsJournal + ZkElection`: the master contends in ZooKeeper with its RPC
/// address; standbys tail the shared folder; the elected one catches up,
/// claims its slot and serves; a deposed one stops serving the moment it
/// loses the election or a slot race. Standbys write the checkpoints, so the
/// primary never pauses for one.
pub async fn open_ufs_ha(
    mut journal: UfsJournalConfig,
    election: Arc<ZkElection>,
    machine: SharedStateMachine,
) -> Result<Arc<UfsJournal>> {
    journal.primary_writes_checkpoints = false;
    tracing::info!(folder = %journal.folder, address = %journal.address, "UFS journal with ZooKeeper election");
    UfsJournal::open(journal, election, machine).await
}

/// `UfsJournal + SingleMaster`: the only master, primary once it replayed
/// the journal; it writes its own checkpoints.
pub async fn open_ufs_single(
    mut journal: UfsJournalConfig,
    machine: SharedStateMachine,
) -> Result<Arc<UfsJournal>> {
    journal.primary_writes_checkpoints = true;
    tracing::info!(folder = %journal.folder, "UFS journal with a single master (no ZooKeeper)");
    UfsJournal::open(journal, Arc::new(SingleMaster::new()), machine).await
}
