//! Handing primacy on with the UFS journal (`transfer_leadership`, the path
//! of `primacy journal quorum elect` and a stopping primary's handoff):
//! only the contender right behind this master can be handed primacy (it
//! resigns and the election elects the next in line); anything else is
//! refused naming the queue, and changes nothing. `members()` lists the
//! queue.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use journal_core::shared;
use journal_core::testkit::{ManualElection, TestMachine};
use journal_core::{wait_for_primary, Contender, ElectionState, JournalError, JournalSystem};
use journal_ufs::UfsJournal;

fn entry(address: &str, own: bool, n: u32) -> Contender {
    Contender {
        id: format!("member-{n:010}"),
        address: address.to_string(),
        own,
    }
}

async fn primary(storage: &Storage) -> (Arc<UfsJournal>, Arc<ManualElection>) {
    let election = Arc::new(ManualElection::new());
    let journal = UfsJournal::open(
        config(&storage.url(), 0),
        election.clone(),
        shared(TestMachine::new()),
    )
    .await
    .expect("open");
    election.set(ElectionState::Leader { epoch: 1 });
    wait_for_primary(&mut journal.role(), WAIT)
        .await
        .expect("primary");
    (journal, election)
}

#[tokio::test]
async fn only_the_next_in_line_is_handed_primacy() {
    init_tracing();
    let storage = formatted().await;
    let (journal, election) = primary(&storage).await;
    let me = "master-0:19998";

    // No queue: the election cannot hand primacy on.
    let e = journal
        .transfer_leadership("master-1:19998")
        .await
        .unwrap_err();
    assert!(matches!(e, JournalError::Unsupported { .. }), "{e}");
    // members() lists this master alone then.
    let alone = journal.members().await.expect("members");
    assert_eq!(alone.len(), 1);
    assert_eq!(alone[0].role, "PRIMARY");

    election.set_contenders(Some(vec![
        entry(me, true, 0),
        entry("master-1:19998", false, 1),
        entry("master-2:19998", false, 2),
    ]));
    let members = journal.members().await.expect("members");
    let roles: Vec<(&str, &str)> = members
        .iter()
        .map(|m| (m.address.as_str(), m.role.as_str()))
        .collect();
    assert_eq!(
        roles,
        vec![
            (me, "PRIMARY"),
            ("master-1:19998", "STANDBY"),
            ("master-2:19998", "STANDBY")
        ]
    );
    assert!(members[0].applied.is_some() && members[1].applied.is_none());

    // This master itself: nothing to do.
    journal.transfer_leadership(me).await.expect("self");
    // Not in the queue, or further back: refused, naming the queue.
    let e = journal
        .transfer_leadership("master-9:19998")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not a contender"), "{e}");
    let e = journal
        .transfer_leadership("master-2:19998")
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("not next in line"), "{text}");
    assert!(text.contains("master-1:19998 would take over"), "{text}");
    // Listed twice (restarted within the session timeout): refused.
    election.set_contenders(Some(vec![
        entry(me, true, 0),
        entry("master-1:19998", false, 1),
        entry("master-2:19998", false, 2),
        entry("master-1:19998", false, 3),
    ]));
    let e = journal
        .transfer_leadership("master-1:19998")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");
    assert_eq!(election.resignations(), 0, "nothing was given up");
    assert!(journal.role().borrow().is_primary());
    journal
        .propose(Bytes::from_static(b"still-primary"))
        .await
        .expect("still serving");

    // The next in line: this master resigns and stops serving.
    election.set_contenders(Some(vec![
        entry(me, true, 0),
        entry("master-1:19998", false, 1),
    ]));
    journal
        .transfer_leadership(" master-1:19998 ")
        .await
        .expect("handed over");
    assert_eq!(election.resignations(), 1);
    assert!(!journal.role().borrow().is_primary());
    let e = journal
        .propose(Bytes::from_static(b"after"))
        .await
        .unwrap_err();
    assert!(matches!(e, JournalError::NotPrimary { .. }), "{e}");
    // A standby cannot hand primacy on.
    let e = journal
        .transfer_leadership("master-1:19998")
        .await
        .unwrap_err();
    assert!(matches!(e, JournalError::NotPrimary { .. }), "{e}");
    journal.shutdown().await;
}
