//! One lookup shared by every caller that asked while it ran.
//!
//! The status views are unauthenticated and each costs the master network
//! work (a ZooKeeper session, a `GetMasterInfo` to every other master). A
//! flood of requests must not multiply that work: ZooKeeper refuses a host
//! more than `maxClientCnxns` connections, and this master's own election
//! session needs one of them when it reconnects.

use std::future::Future;
use std::time::Instant;

use tokio::sync::Mutex;

/// Runs one lookup at a time and hands its result to every caller that
/// asked before it started, so concurrent callers cost one or two lookups
/// instead of one each. A caller never gets a result whose lookup started
/// before it asked: coalescing never makes an answer staler than a lookup
/// of its own would be.
#[derive(Debug)]
pub struct Coalesced<T> {
    last: Mutex<Option<(Instant, T)>>,
}

impl<T> Default for Coalesced<T> {
    fn default() -> Self {
        Coalesced {
            last: Mutex::new(None),
        }
    }
}

impl<T: Clone> Coalesced<T> {
    /// The result of a `lookup` that started no earlier than this call:
    /// the one that ran while this caller waited its turn, or a new one.
    /// A caller dropped while its lookup runs (a client that went away)
    /// lets the next caller run its own.
    pub async fn get<F, Fut>(&self, lookup: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let asked = Instant::now();
        // The lock is held across the lookup on purpose: it is the queue
        // of callers waiting for the next result. It guards nothing the
        // RPC path uses.
        let mut last = self.last.lock().await;
        if let Some((started, value)) = last.as_ref() {
            if *started >= asked {
                return value.clone();
            }
        }
        let started = Instant::now();
        let value = lookup().await;
        *last = Some((started, value.clone()));
        value
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_a_lookup_and_later_ones_get_a_fresh_one() {
        let c = Coalesced::default();
        let runs = AtomicUsize::new(0);
        let lookup = || async {
            let n = runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            n
        };
        let got = futures::future::join_all((0..10).map(|_| c.get(lookup))).await;
        // The first caller runs one; the rest asked after it started, so
        // they share the second.
        assert_eq!(runs.load(Ordering::SeqCst), 2, "{got:?}");
        assert_eq!(got[0], 0);
        assert!(got[1..].iter().all(|n| *n == 1), "{got:?}");
        // Asked after both finished: a new lookup, never the old result.
        assert_eq!(c.get(lookup).await, 2);
    }
}
