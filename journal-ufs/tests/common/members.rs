//! Masters opened in-process on one folder, each with an election the test
//! drives and, optionally, a gate that stalls its storage calls.

use std::sync::Arc;

use bytes::Bytes;
use journal_core::testkit::{ManualElection, TestMachine};
use journal_core::{shared, wait_for_primary, ElectionState, JournalSystem};
use journal_ufs::{open_folder, Folder, UfsJournal};
use object_store::ObjectStoreExt;
use parking_lot::RwLock;

use super::config;
use super::pausable::{Gate, Pausable};

/// `url`'s folder behind a fresh gate.
pub fn gated(url: &str) -> (Folder, Arc<Gate>) {
    let mut folder = open_folder(url, false).unwrap();
    let gate = Gate::new();
    folder.store = Arc::new(Pausable {
        inner: folder.store.clone(),
        gate: gate.clone(),
    });
    (folder, gate)
}

/// One in-process master.
pub struct Member {
    pub journal: Arc<UfsJournal>,
    pub machine: Arc<RwLock<TestMachine>>,
    pub election: Arc<ManualElection>,
}

/// Opens master `member` on `url` (through `folder` when given) keeping
/// `retention` checkpoints.
pub async fn open_member(
    url: &str,
    member: usize,
    folder: Option<Folder>,
    retention: usize,
) -> Member {
    let election = Arc::new(ManualElection::new());
    let machine = shared(TestMachine::new());
    let mut cfg = config(url, member);
    cfg.checkpoint_retention = retention;
    let journal = match folder {
        Some(folder) => UfsJournal::open_in(folder, cfg, election.clone(), machine.clone()).await,
        None => UfsJournal::open(cfg, election.clone(), machine.clone()).await,
    }
    .unwrap();
    Member {
        journal,
        machine,
        election,
    }
}

/// Whether `logs/<seq>` exists in the folder at `url`.
pub async fn chunk_exists(url: &str, seq: u64) -> bool {
    let f = open_folder(url, false).unwrap();
    let p = f
        .root
        .clone()
        .join("logs")
        .join(journal_ufs::layout::seq_name(seq).as_str());
    f.store.head(&p).await.is_ok()
}

/// Makes `member` primary at `epoch` and has it write `n` one-entry chunks
/// tagged `tag-<i>`; returns the last sequence number it applied.
pub async fn lead_and_write(member: &Member, epoch: u64, tag: &str, n: usize) -> u64 {
    member.election.set(ElectionState::Leader { epoch });
    wait_for_primary(&mut member.journal.role(), super::WAIT)
        .await
        .unwrap();
    for i in 0..n {
        member
            .journal
            .propose(Bytes::from(format!("{tag}-{i}")))
            .await
            .unwrap();
    }
    member.journal.status().last_applied
}
