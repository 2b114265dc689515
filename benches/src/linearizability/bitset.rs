//! A fixed-size set of operation indexes, hashable for the memo table.

/// Bits `0..len`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct BitSet(Vec<u64>);

impl BitSet {
    pub(super) fn new(len: usize) -> Self {
        BitSet(vec![0; len.div_ceil(64)])
    }

    pub(super) fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub(super) fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}
