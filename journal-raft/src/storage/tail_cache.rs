//! The newest entries of the log, kept in memory after they are written so
//! the leader sends them to followers without reading them back from
//! raft-engine (a memtable lookup, a file read and an LZ4 block
//! decompression per batch).
//!
//! Entries hold their payload as `Bytes`, so a cached entry and the one
//! handed to raft-rs share one buffer; the bound counts the entries'
//! encoded size, the same size raft-engine's `max_size` counts.

use std::collections::VecDeque;

use protobuf::Message as _;
use raft::eraftpb::Entry;

/// Default bound of the cache: 16 MiB of encoded entries (about 100,000
/// entries of 128 B, a second of the target append rate).
pub const DEFAULT_LOG_CACHE_BYTES: usize = 16 << 20;

/// A contiguous run of the log's newest entries, at most `cap` bytes.
///
/// Guarantees: after the same sequence of appends, compactions and clears
/// as raft-engine's memtable saw, every entry [`TailCache::fetch`] returns
/// is the entry the engine holds at that index, and a fetch it cannot
/// answer whole returns `false` and leaves `out` untouched.
#[derive(Debug, Clone)]
pub(crate) struct TailCache {
    entries: VecDeque<(Entry, u32)>,
    bytes: usize,
    cap: usize,
}

impl Default for TailCache {
    fn default() -> Self {
        TailCache::new(DEFAULT_LOG_CACHE_BYTES)
    }
}

impl TailCache {
    /// An empty cache holding at most `cap` bytes of entries (0: none).
    pub(crate) fn new(cap: usize) -> TailCache {
        TailCache {
            entries: VecDeque::new(),
            bytes: 0,
            cap,
        }
    }

    /// Changes the bound, evicting the oldest entries beyond it.
    pub(crate) fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
        self.evict();
    }

    fn first(&self) -> Option<u64> {
        self.entries.front().map(|e| e.0.index)
    }

    fn last(&self) -> Option<u64> {
        self.entries.back().map(|e| e.0.index)
    }

    /// Records `entries` (consecutive indexes) just written to the engine:
    /// they replace everything from their first index on; when they do not
    /// continue the cached run (or start below it), the run is dropped.
    pub(crate) fn append(&mut self, entries: &[Entry]) {
        let Some(head) = entries.first() else {
            return;
        };
        if self.cap == 0 {
            return;
        }
        let start = head.index;
        match (self.first(), self.last()) {
            (Some(first), Some(last)) if start >= first && start <= last + 1 => {
                while self.last().is_some_and(|l| l >= start) {
                    if let Some((_, size)) = self.entries.pop_back() {
                        self.bytes -= size as usize;
                    }
                }
            }
            _ => self.clear(),
        }
        // Only the newest `cap` bytes can stay: skip what would be evicted
        // at once (a batch larger than the whole cache).
        let mut keep_from = entries.len();
        let mut total = 0usize;
        let mut sizes = Vec::with_capacity(entries.len());
        for e in entries.iter().rev() {
            let size = e.compute_size();
            total += size as usize;
            if total > self.cap {
                break;
            }
            sizes.push(size);
            keep_from -= 1;
        }
        if keep_from > 0 {
            // The cached run must stay contiguous with what follows.
            self.clear();
        }
        for (e, size) in entries[keep_from..].iter().zip(sizes.into_iter().rev()) {
            self.entries.push_back((e.clone(), size));
            self.bytes += size as usize;
        }
        self.evict();
    }

    /// Drops the entries below `index`, as raft-engine's `compact_to`.
    pub(crate) fn compact_to(&mut self, index: u64) {
        while self.first().is_some_and(|f| f < index) {
            if let Some((_, size)) = self.entries.pop_front() {
                self.bytes -= size as usize;
            }
        }
    }

    /// Forgets every entry.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Appends the entries `low..high` to `out`, stopping (after the first)
    /// once their total size passes `max_size`, as raft-engine's fetch does;
    /// `false` (and nothing appended) when the cache does not hold them all.
    pub(crate) fn fetch(
        &self,
        low: u64,
        high: u64,
        max_size: Option<usize>,
        out: &mut Vec<Entry>,
    ) -> bool {
        let (Some(first), Some(last)) = (self.first(), self.last()) else {
            return false;
        };
        if low < first || high > last + 1 || high <= low {
            return false;
        }
        let start = (low - first) as usize;
        let mut total = 0usize;
        for (e, size) in self.entries.range(start..start + (high - low) as usize) {
            total += *size as usize;
            if let Some(max) = max_size {
                if total > max && total > *size as usize {
                    break;
                }
            }
            out.push(e.clone());
        }
        true
    }

    fn evict(&mut self) {
        while self.bytes > self.cap {
            match self.entries.pop_front() {
                Some((_, size)) => self.bytes -= size as usize,
                None => break,
            }
        }
    }

    /// Bytes of entries held (for tests).
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, len: usize) -> Entry {
        Entry {
            index,
            term,
            data: vec![index as u8; len].into(),
            ..Default::default()
        }
    }

    #[test]
    fn keeps_a_bounded_contiguous_suffix() {
        let size = entry(1, 1, 100).compute_size() as usize;
        let mut c = TailCache::new(size * 3);
        c.append(&(1..=5).map(|i| entry(i, 1, 100)).collect::<Vec<_>>());
        assert_eq!(
            (c.first(), c.last(), c.bytes()),
            (Some(3), Some(5), size * 3)
        );
        let mut out = Vec::new();
        assert!(!c.fetch(2, 4, None, &mut out));
        assert!(out.is_empty());
        assert!(c.fetch(3, 6, Some(size + 1), &mut out));
        assert_eq!(out.iter().map(|e| e.index).collect::<Vec<_>>(), [3]);
        // An overwrite from 4 drops 4 and 5.
        c.append(&[entry(4, 2, 100)]);
        assert_eq!((c.first(), c.last()), (Some(3), Some(4)));
        // A hole or an append below the run replaces it.
        c.append(&[entry(9, 2, 100)]);
        assert_eq!((c.first(), c.last()), (Some(9), Some(9)));
        c.compact_to(10);
        assert_eq!((c.first(), c.bytes()), (None, 0));
        // A batch larger than the cache leaves only its newest entries.
        c.append(&(1..=10).map(|i| entry(i, 3, 100)).collect::<Vec<_>>());
        assert_eq!((c.first(), c.last()), (Some(8), Some(10)));
        let mut none = TailCache::new(0);
        none.append(&[entry(1, 1, 1)]);
        assert!(!none.fetch(1, 2, None, &mut out));
    }
}
