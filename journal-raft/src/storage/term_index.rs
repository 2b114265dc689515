//! The terms of the log's entries, kept in memory as runs so `term(idx)`
//! does not read the entry back from raft-engine (and decompress its block)
//! on every follower acknowledgement.
//!
//! Terms change only at elections, so a log of millions of entries is a
//! handful of runs. The index follows raft-engine's memtable exactly: an
//! append keeps the entries below its first index when they are contiguous
//! with it and replaces the whole log otherwise (an overwrite below the first
//! entry, or a hole), and a compaction drops the entries below its index.

use raft::eraftpb::Entry;

/// The terms of a contiguous range of log indexes `[first, last]`.
///
/// Guarantees: after the same sequence of appends, compactions and clears as
/// raft-engine's memtable of the group saw, [`TermIndex::term`] answers the
/// term of every entry the memtable holds and `None` for every other index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TermIndex {
    /// `(first index, term)` of each run, by increasing index; a run ends
    /// where the next one starts, the last one at `last`.
    runs: Vec<(u64, u64)>,
    /// The last index covered (meaningless while `runs` is empty).
    last: u64,
}

impl TermIndex {
    /// The first index covered, if any.
    pub(crate) fn first(&self) -> Option<u64> {
        self.runs.first().map(|r| r.0)
    }

    /// The last index covered, if any.
    pub(crate) fn last(&self) -> Option<u64> {
        (!self.runs.is_empty()).then_some(self.last)
    }

    /// The term of the entry at `idx`, if the index covers it.
    pub(crate) fn term(&self, idx: u64) -> Option<u64> {
        let first = self.first()?;
        if idx < first || idx > self.last {
            return None;
        }
        // The first run starts at or below idx, so this is at least 1.
        let at = self.runs.partition_point(|r| r.0 <= idx);
        self.runs.get(at.checked_sub(1)?).map(|r| r.1)
    }

    /// Records `entries` (consecutive indexes) as raft-engine appends them:
    /// everything from their first index on is replaced, and everything
    /// below it too when it is not contiguous with them.
    pub(crate) fn append(&mut self, entries: &[Entry]) {
        let Some(head) = entries.first() else {
            return;
        };
        let start = head.index;
        match self.first() {
            Some(first) if start >= first && start <= self.last + 1 => self.truncate_from(start),
            _ => self.runs.clear(),
        }
        for e in entries {
            match self.runs.last() {
                Some(&(_, term)) if term == e.term => {}
                _ => self.runs.push((e.index, e.term)),
            }
            self.last = e.index;
        }
    }

    /// Records one entry read back at open (indexes strictly increasing by one).
    pub(crate) fn push(&mut self, index: u64, term: u64) {
        match self.runs.last() {
            Some(&(_, t)) if t == term && self.last + 1 == index => {}
            Some(_) if self.last + 1 != index => {
                self.runs.clear();
                self.runs.push((index, term));
            }
            _ => self.runs.push((index, term)),
        }
        self.last = index;
    }

    /// Drops the entries below `index`, as raft-engine's `compact_to`.
    pub(crate) fn compact_to(&mut self, index: u64) {
        let Some(first) = self.first() else {
            return;
        };
        if index <= first {
            return;
        }
        if index > self.last {
            self.runs.clear();
            return;
        }
        // Runs that end below `index` go; the one holding it starts there.
        let keep_from = self.runs.partition_point(|r| r.0 <= index) - 1;
        self.runs.drain(..keep_from);
        self.runs[0].0 = index;
    }

    /// Forgets every entry (the log was cleaned for a snapshot).
    pub(crate) fn clear(&mut self) {
        self.runs.clear();
    }

    /// Drops `start..` (start within `[first, last + 1]`).
    fn truncate_from(&mut self, start: u64) {
        let keep = self.runs.partition_point(|r| r.0 < start);
        self.runs.truncate(keep);
        self.last = start.saturating_sub(1);
    }

    /// How many runs are held (for tests and status).
    #[cfg(test)]
    pub(crate) fn runs(&self) -> usize {
        self.runs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(from: u64, terms: &[u64]) -> Vec<Entry> {
        terms
            .iter()
            .enumerate()
            .map(|(i, t)| Entry {
                index: from + i as u64,
                term: *t,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn runs_follow_appends_overwrites_and_compactions() {
        let mut t = TermIndex::default();
        assert_eq!(t.term(0), None);
        t.append(&entries(1, &[1, 1, 1, 2, 2]));
        assert_eq!(t.runs(), 2);
        assert_eq!((t.first(), t.last()), (Some(1), Some(5)));
        assert_eq!(
            (1..=6).map(|i| t.term(i)).collect::<Vec<_>>(),
            [Some(1), Some(1), Some(1), Some(2), Some(2), None]
        );
        // A follower's conflicting overwrite from index 3.
        t.append(&entries(3, &[3]));
        assert_eq!(t.last(), Some(3));
        assert_eq!(t.term(3), Some(3));
        assert_eq!(t.term(4), None);
        assert_eq!(t.runs(), 2);
        t.compact_to(3);
        assert_eq!((t.first(), t.term(2), t.term(3)), (Some(3), None, Some(3)));
        // Below the first entry, or past a hole: the log is replaced.
        t.append(&entries(1, &[4]));
        assert_eq!(
            (t.first(), t.last(), t.term(1)),
            (Some(1), Some(1), Some(4))
        );
        t.append(&entries(9, &[5, 5]));
        assert_eq!((t.first(), t.last(), t.term(1)), (Some(9), Some(10), None));
        t.compact_to(11);
        assert_eq!(t.first(), None);
    }
}
