//! `wait_for_any_primary`: which member it names, and when it gives up.

use std::time::Duration;

use journal_core::{wait_for_any_primary, JournalError, Role};
use tokio::sync::watch;

const LONG: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn names_the_member_that_becomes_primary() {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| watch::channel(Role::Standby)).unzip();
    let waiter = tokio::spawn(wait_for_any_primary(rxs, LONG));
    tokio::time::sleep(Duration::from_secs(1)).await;
    txs[2].send_replace(Role::Primary { epoch: 4 });
    assert_eq!(waiter.await.unwrap().unwrap(), (2, 4));
}

#[tokio::test(start_paused = true)]
async fn prefers_the_highest_epoch_when_two_report_primary() {
    let roles = [
        Role::Primary { epoch: 3 },
        Role::Standby,
        Role::Primary { epoch: 5 },
    ];
    let (_txs, rxs): (Vec<_>, Vec<_>) = roles.into_iter().map(watch::channel).unzip();
    assert_eq!(wait_for_any_primary(rxs, LONG).await.unwrap(), (2, 5));
}

#[tokio::test(start_paused = true)]
async fn a_gone_journal_does_not_count_even_if_it_was_primary() {
    let (gone_tx, gone_rx) = watch::channel(Role::Primary { epoch: 9 });
    drop(gone_tx);
    let (live_tx, live_rx) = watch::channel(Role::Standby);
    let waiter = tokio::spawn(wait_for_any_primary([gone_rx, live_rx], LONG));
    tokio::time::sleep(Duration::from_secs(1)).await;
    live_tx.send_replace(Role::Primary { epoch: 10 });
    assert_eq!(waiter.await.unwrap().unwrap(), (1, 10));
}

#[tokio::test(start_paused = true)]
async fn every_journal_gone_or_none_given_is_shutdown() {
    let (tx, rx) = watch::channel(Role::Standby);
    let waiter = tokio::spawn(wait_for_any_primary([rx], LONG));
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(tx);
    assert!(matches!(waiter.await.unwrap(), Err(JournalError::Shutdown)));
    assert!(matches!(
        wait_for_any_primary(Vec::new(), LONG).await,
        Err(JournalError::Shutdown)
    ));
}

#[tokio::test(start_paused = true)]
async fn no_primary_in_time_is_a_timeout_naming_the_group() {
    let (_txs, rxs): (Vec<_>, Vec<_>) = (0..2).map(|_| watch::channel(Role::Standby)).unzip();
    match wait_for_any_primary(rxs, Duration::from_secs(5)).await {
        Err(e @ JournalError::Timeout { .. }) => {
            assert!(e.to_string().contains("one of 2 members"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}
