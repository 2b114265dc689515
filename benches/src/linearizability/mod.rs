//! A linearizability checker for recorded client histories (Wing & Gong's
//! search with Lowe's memoization, as in Porcupine).
//!
//! A history is a list of [`Operation`]s with an invocation time, a
//! completion time and an observed output. An operation whose outcome the
//! client never learned (a timeout, a lost connection) has no completion
//! time and no output: it may have taken effect at any point after its
//! invocation, or never, so it is treated as completing at the end of time
//! with an output the model accepts whatever it does (Porcupine's "pending
//! forever"). The search tries every order consistent with real time and
//! memoizes (set of operations linearized, model state) pairs it has seen,
//! so a state reached twice is explored once. It is bounded by a step
//! budget: exceeding it yields [`Verdict::Unknown`], never `Ok`.

mod bitset;
pub mod namespace;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::hash::Hash;

use bitset::BitSet;

/// A sequential specification: the state and what one operation does to it.
pub trait Model {
    /// The state; equal states must hash equally (memoization key).
    type State: Clone + Eq + Hash;
    /// What a client asked for.
    type Input;
    /// What a client observed.
    type Output;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after applying `input` to `state`, if the operation could
    /// have produced `output` there (`None` output: the outcome is unknown,
    /// any result is acceptable); `None` if it could not.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;
}

/// One recorded client operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The client that issued it (for reports only).
    pub client: usize,
    /// What was asked.
    pub input: I,
    /// When it was invoked (any monotonic unit; the same for all operations).
    pub call: u64,
    /// When its result arrived; `None` when the outcome is unknown.
    pub ret: Option<u64>,
    /// The result; `None` when the outcome is unknown.
    pub output: Option<O>,
}

/// The checker's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations consistent with real time explains
    /// every observed output.
    Linearizable,
    /// No such order exists.
    Violation {
        /// The most operations any partial order linearized.
        deepest: usize,
        /// The index (in the history) of a completed operation that could
        /// not be placed after that deepest prefix.
        stuck_at: usize,
    },
    /// The step budget ran out before an answer.
    Unknown {
        /// Steps taken.
        steps: u64,
    },
}

impl Verdict {
    /// Whether the history was shown linearizable.
    pub fn is_ok(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }
}

const HEAD: usize = 0;

/// Checks `history` against `model` with at most `budget` search steps.
pub fn check<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    budget: u64,
) -> Verdict {
    let n = history.len();
    if n == 0 {
        return Verdict::Linearizable;
    }
    // Events: (time, is_return, op). Calls sort before returns at equal
    // times, which only widens the orders allowed (the conservative side).
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in history.iter().enumerate() {
        let ret = op.ret.unwrap_or(u64::MAX).max(op.call);
        events.push((op.call, false, i));
        events.push((ret, true, i));
    }
    events.sort();
    // Doubly linked list over nodes 0 = head, 1..=2n = events, 2n+1 = tail.
    let tail = 2 * n + 1;
    let mut next: Vec<usize> = (1..=tail + 1).collect();
    let mut prev: Vec<usize> = (0..=tail).map(|i| i.saturating_sub(1)).collect();
    let mut ret_node = vec![0usize; n];
    for (k, &(_, is_ret, op)) in events.iter().enumerate() {
        if is_ret {
            ret_node[op] = k + 1;
        }
    }
    let event = |node: usize| events[node - 1];

    let mut state = model.init();
    let mut linearized = BitSet::new(n);
    let mut cache: HashSet<(BitSet, M::State)> = HashSet::new();
    let mut calls: Vec<(usize, M::State)> = Vec::new();
    let mut node = next[HEAD];
    let mut steps = 0u64;
    let mut deepest = (0usize, 0usize);
    while next[HEAD] != tail {
        steps += 1;
        if steps > budget {
            return Verdict::Unknown { steps };
        }
        let (_, is_ret, op) = event(node);
        if !is_ret {
            let entry = &history[op];
            let output = entry.output.as_ref().filter(|_| entry.ret.is_some());
            if let Some(after) = model.step(&state, &entry.input, output) {
                let mut bits = linearized.clone();
                bits.set(op);
                if cache.insert((bits.clone(), after.clone())) {
                    calls.push((node, std::mem::replace(&mut state, after)));
                    linearized = bits;
                    // Lift the call and its return out of the list.
                    for x in [node, ret_node[op]] {
                        next[prev[x]] = next[x];
                        prev[next[x]] = prev[x];
                    }
                    node = next[HEAD];
                    continue;
                }
            }
            node = next[node];
        } else {
            if calls.len() >= deepest.0 {
                deepest = (calls.len(), op);
            }
            let Some((call_node, before)) = calls.pop() else {
                return Verdict::Violation {
                    deepest: deepest.0,
                    stuck_at: deepest.1,
                };
            };
            let (_, _, lifted) = event(call_node);
            linearized.clear(lifted);
            state = before;
            // Put back in the reverse order of removal.
            for x in [ret_node[lifted], call_node] {
                prev[next[x]] = x;
                next[prev[x]] = x;
            }
            node = next[call_node];
        }
    }
    Verdict::Linearizable
}
