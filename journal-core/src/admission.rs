//! A bound on the proposals that wait for a journal.
//!
//! While the storage or the quorum behind a journal is slow or away,
//! proposals pile up in front of it. Without a bound every caller's entry
//! (and its RPC, and its task) would stay in memory until the dependency
//! returns. A backend asks its [`PendingGate`] for a [`PendingPermit`]
//! before it queues a proposal and keeps the permit with the proposal until
//! the proposal is answered; once the count or the bytes of the proposals
//! holding permits reach the limits, the next one is refused at once with
//! [`JournalError::Overloaded`] and is never queued.

use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::metrics::gauge::Gauge;

use crate::error::{JournalError, Result};

/// Default most proposals waiting for one journal.
pub const DEFAULT_MAX_PENDING: usize = 10_000;

/// Default most entry bytes waiting for one journal (64 MiB).
pub const DEFAULT_MAX_PENDING_BYTES: usize = 64 << 20;

/// How many proposals, and how many entry bytes, may wait for a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLimits {
    /// Most proposals queued or being written at once (at least 1).
    pub max_proposals: usize,
    /// Most entry bytes queued or being written at once. A single entry
    /// larger than this is refused with `InvalidEntry` (never with the
    /// retryable `Overloaded`: no retry could ever admit it).
    pub max_bytes: usize,
}

impl Default for PendingLimits {
    fn default() -> Self {
        PendingLimits {
            max_proposals: DEFAULT_MAX_PENDING,
            max_bytes: DEFAULT_MAX_PENDING_BYTES,
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    proposals: usize,
    bytes: usize,
    /// Highest `proposals` ever reached (for tests and status).
    peak: usize,
}

#[derive(Debug)]
struct Inner {
    limits: PendingLimits,
    counts: Mutex<Counts>,
    /// Mirrors `counts.proposals` for scrapes, when the backend has metrics.
    gauge: Option<Gauge>,
}

/// Admits proposals up to [`PendingLimits`]. Clones share the counts.
#[derive(Debug, Clone)]
pub struct PendingGate {
    inner: Arc<Inner>,
}

impl PendingGate {
    /// A gate with `limits`; a `max_proposals` of 0 is taken as 1.
    pub fn new(limits: PendingLimits) -> PendingGate {
        Self::build(limits, None)
    }

    /// [`PendingGate::new`] that also keeps `metrics`'
    /// `journal_pending_proposals` gauge equal to the waiting proposals.
    pub fn with_metrics(limits: PendingLimits, metrics: &crate::JournalMetrics) -> PendingGate {
        Self::build(limits, Some(metrics.pending_proposals()))
    }

    fn build(limits: PendingLimits, gauge: Option<Gauge>) -> PendingGate {
        let limits = PendingLimits {
            max_proposals: limits.max_proposals.max(1),
            max_bytes: limits.max_bytes,
        };
        PendingGate {
            inner: Arc::new(Inner {
                limits,
                counts: Mutex::new(Counts::default()),
                gauge,
            }),
        }
    }

    /// The limits this gate enforces.
    pub fn limits(&self) -> PendingLimits {
        self.inner.limits
    }

    /// Admits an entry of `len` bytes, or refuses it with
    /// [`JournalError::Overloaded`] (at once, without waiting) when the
    /// proposals already admitted reach either limit. The slot is held until
    /// the permit is dropped.
    ///
    /// An entry larger than `max_bytes` on its own is refused with
    /// [`JournalError::InvalidEntry`]: admitting it only while nothing else
    /// waits would starve it under steady load, and a retryable error would
    /// send its caller into back-offs that can never succeed.
    pub fn admit(&self, len: usize) -> Result<PendingPermit> {
        let limits = self.inner.limits;
        if len > limits.max_bytes {
            return Err(JournalError::InvalidEntry {
                detail: format!(
                    "{len} bytes exceeds the {} bytes that may wait for the journal at once \
                     (primacy.master.journal.max.pending.bytes); raise that limit to accept \
                     entries this large",
                    limits.max_bytes
                ),
            });
        }
        let mut c = self.inner.counts.lock();
        let over_count = c.proposals >= limits.max_proposals;
        let over_bytes = c.bytes.saturating_add(len) > limits.max_bytes;
        if over_count || over_bytes {
            return Err(JournalError::Overloaded {
                pending: c.proposals,
                pending_bytes: c.bytes,
                max_pending: limits.max_proposals,
                max_pending_bytes: limits.max_bytes,
            });
        }
        c.proposals += 1;
        c.bytes = c.bytes.saturating_add(len);
        c.peak = c.peak.max(c.proposals);
        if let Some(g) = &self.inner.gauge {
            g.set(c.proposals as i64);
        }
        Ok(PendingPermit {
            inner: self.inner.clone(),
            bytes: len,
        })
    }

    /// Proposals holding a permit now.
    pub fn pending(&self) -> usize {
        self.inner.counts.lock().proposals
    }

    /// Entry bytes of the proposals holding a permit now.
    pub fn pending_bytes(&self) -> usize {
        self.inner.counts.lock().bytes
    }

    /// The most proposals that ever held a permit at the same time; never
    /// above `limits().max_proposals`.
    pub fn peak(&self) -> usize {
        self.inner.counts.lock().peak
    }
}

/// One admitted proposal's slot; dropping it frees the slot. Backends keep
/// it with the proposal (not with the caller's future), so a caller that
/// gives up does not free a slot its entry still occupies in the queue.
#[derive(Debug)]
pub struct PendingPermit {
    inner: Arc<Inner>,
    bytes: usize,
}

impl Drop for PendingPermit {
    fn drop(&mut self) {
        let mut c = self.inner.counts.lock();
        c.proposals = c.proposals.saturating_sub(1);
        c.bytes = c.bytes.saturating_sub(self.bytes);
        if let Some(g) = &self.inner.gauge {
            g.set(c.proposals as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_beyond_the_count_and_frees_on_drop() {
        let gate = PendingGate::new(PendingLimits {
            max_proposals: 2,
            max_bytes: 1000,
        });
        let a = gate.admit(10).unwrap();
        let _b = gate.admit(10).unwrap();
        let e = gate.admit(10).unwrap_err();
        assert!(matches!(
            e,
            JournalError::Overloaded {
                pending: 2,
                max_pending: 2,
                ..
            }
        ));
        assert!(e.is_retryable());
        assert!(e.to_string().contains("retry"), "{e}");
        drop(a);
        assert_eq!(gate.pending(), 1);
        let _c = gate.admit(10).unwrap();
        assert_eq!(gate.peak(), 2);
    }

    #[test]
    fn refuses_beyond_the_bytes() {
        let gate = PendingGate::new(PendingLimits {
            max_proposals: 100,
            max_bytes: 100,
        });
        let a = gate.admit(60).unwrap();
        assert!(matches!(
            gate.admit(41),
            Err(JournalError::Overloaded {
                pending_bytes: 60,
                ..
            })
        ));
        let _b = gate.admit(40).unwrap();
        assert_eq!(gate.pending_bytes(), 100);
        drop(a);
        let _c = gate.admit(60).unwrap();
        let _exact = PendingGate::new(gate.limits()).admit(100).unwrap();
    }

    /// An entry above the byte bound used to be admitted only while nothing
    /// else waited: under steady load it was refused as `Overloaded` (retry)
    /// for ever. It is now refused at once, as invalid, whatever waits.
    #[test]
    fn an_entry_larger_than_the_byte_bound_is_invalid_not_overloaded() {
        let gate = PendingGate::new(PendingLimits {
            max_proposals: 100,
            max_bytes: 100,
        });
        let _small = gate.admit(1).unwrap();
        let busy = gate.admit(101).unwrap_err();
        assert!(
            matches!(busy, JournalError::InvalidEntry { .. }),
            "{busy:?}"
        );
        assert!(!busy.is_retryable());
        assert!(busy.to_string().contains("max.pending.bytes"), "{busy}");
        let idle = PendingGate::new(gate.limits()).admit(101).unwrap_err();
        assert!(
            matches!(idle, JournalError::InvalidEntry { .. }),
            "{idle:?}"
        );
        assert_eq!(gate.pending(), 1);
    }

    #[test]
    fn the_gauge_follows_the_waiting_proposals() {
        let metrics = crate::JournalMetrics::default();
        let gate = PendingGate::with_metrics(PendingLimits::default(), &metrics);
        let a = gate.admit(1).unwrap();
        let _b = gate.admit(1).unwrap();
        assert_eq!(metrics.pending_proposals().get(), 2);
        drop(a);
        assert_eq!(metrics.pending_proposals().get(), 1);
    }

    #[test]
    fn a_zero_count_limit_still_admits_one() {
        let gate = PendingGate::new(PendingLimits {
            max_proposals: 0,
            max_bytes: 10,
        });
        let _a = gate.admit(5).unwrap();
        assert!(matches!(
            gate.admit(5),
            Err(JournalError::Overloaded { .. })
        ));
    }
}
