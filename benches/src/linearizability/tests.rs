//! The checker accepts histories that have a linearization and rejects the
//! anomalies a faulty cluster would produce.

use super::namespace::{Namespace, NsInput::*, NsOutput, NsOutput::*};
use super::{check, Operation, Verdict};

const BUDGET: u64 = 1_000_000;

fn op(
    client: usize,
    input: super::namespace::NsInput,
    call: u64,
    ret: u64,
    out: NsOutput,
) -> Operation<super::namespace::NsInput, NsOutput> {
    Operation {
        client,
        input,
        call,
        ret: Some(ret),
        output: Some(out),
    }
}

fn pending(
    client: usize,
    input: super::namespace::NsInput,
    call: u64,
) -> Operation<super::namespace::NsInput, NsOutput> {
    Operation {
        client,
        input,
        call,
        ret: None,
        output: None,
    }
}

fn verdict(h: &[Operation<super::namespace::NsInput, NsOutput>]) -> Verdict {
    check(&Namespace { paths: 4 }, h, BUDGET)
}

#[test]
fn empty_and_sequential_histories_are_linearizable() {
    assert!(verdict(&[]).is_ok());
    let h = [
        op(0, Create(0), 0, 1, Ok(7)),
        op(0, Stat(0), 2, 3, Ok(7)),
        op(0, Rename(0, 1), 4, 5, Ok(7)),
        op(0, Stat(0), 6, 7, NotFound),
        op(0, Stat(1), 8, 9, Ok(7)),
        op(0, Delete(1), 10, 11, Deleted),
        op(0, Delete(1), 12, 13, NotFound),
    ];
    assert!(verdict(&h).is_ok());
}

#[test]
fn concurrent_operations_may_take_effect_in_either_order() {
    // The stat overlaps the create: seeing the file or not are both fine.
    for seen in [Ok(3), NotFound] {
        let h = [op(0, Create(0), 0, 10, Ok(3)), op(1, Stat(0), 1, 9, seen)];
        assert!(verdict(&h).is_ok());
    }
    // Two overlapping creates: one wins, the other sees it.
    let h = [
        op(0, Create(2), 0, 10, Exists),
        op(1, Create(2), 1, 9, Ok(5)),
    ];
    assert!(verdict(&h).is_ok());
}

#[test]
fn an_unknown_outcome_may_apply_late_or_never() {
    // The lost create took effect after a later stat saw nothing.
    let late = [
        pending(0, Create(0), 0),
        op(1, Stat(0), 5, 6, NotFound),
        op(1, Stat(0), 7, 8, Ok(9)),
    ];
    assert!(verdict(&late).is_ok());
    // ...or never.
    let never = [pending(0, Create(0), 0), op(1, Stat(0), 5, 6, NotFound)];
    assert!(verdict(&never).is_ok());
    // But not before it was invoked.
    let early = [op(1, Stat(0), 0, 1, Ok(9)), pending(0, Create(0), 2)];
    assert!(matches!(verdict(&early), Verdict::Violation { .. }));
}

#[test]
fn a_stale_read_is_rejected() {
    // The delete was acknowledged before the stat began, yet the stat saw
    // the file: a read served by a deposed primary.
    let h = [
        op(0, Create(0), 0, 1, Ok(4)),
        op(0, Delete(0), 2, 3, Deleted),
        op(1, Stat(0), 4, 5, Ok(4)),
    ];
    assert!(
        matches!(verdict(&h), Verdict::Violation { .. }),
        "{:?}",
        verdict(&h)
    );
}

#[test]
fn a_lost_write_is_rejected() {
    // The create was acknowledged, a later stat and create say it is gone.
    let h = [
        op(0, Create(1), 0, 1, Ok(4)),
        op(1, Stat(1), 2, 3, NotFound),
    ];
    assert!(matches!(verdict(&h), Verdict::Violation { .. }));
    let h = [op(0, Create(1), 0, 1, Ok(4)), op(1, Create(1), 2, 3, Ok(5))];
    assert!(matches!(verdict(&h), Verdict::Violation { .. }));
}

#[test]
fn a_duplicate_apply_is_rejected() {
    // A retried create applied twice: after the delete, the file is back
    // with the same id although nobody created it again.
    let h = [
        op(0, Create(0), 0, 1, Ok(4)),
        op(1, Delete(0), 2, 3, Deleted),
        op(1, Stat(0), 4, 5, Ok(4)),
    ];
    assert!(matches!(verdict(&h), Verdict::Violation { .. }));
    // A retried rename applied twice would answer "not found" to the retry.
    let h = [
        op(0, Create(0), 0, 1, Ok(4)),
        op(0, Rename(0, 1), 2, 3, NotFound),
        op(1, Stat(1), 4, 5, Ok(4)),
    ];
    assert!(matches!(verdict(&h), Verdict::Violation { .. }));
}

#[test]
fn a_stat_of_the_wrong_file_is_rejected() {
    let h = [
        op(0, Create(0), 0, 1, Ok(4)),
        op(0, Create(1), 2, 3, Ok(5)),
        op(0, Stat(0), 4, 5, Ok(5)),
    ];
    assert!(matches!(verdict(&h), Verdict::Violation { .. }));
}

#[test]
fn the_budget_yields_unknown_not_ok() {
    // Many overlapping pending ops: a big search space, a tiny budget.
    let h: Vec<_> = (0..40)
        .map(|i| pending(i, Create((i % 4) as u8), 0))
        .chain([op(99, Stat(0), 1, 2, NotFound)])
        .collect();
    assert!(matches!(
        check(&Namespace { paths: 4 }, &h, 10),
        Verdict::Unknown { .. }
    ));
}

#[test]
fn many_concurrent_clients_are_checked_quickly() {
    // 8 clients, 400 operations, each client sequential, overlapping in
    // time with the others; generated from a sequential execution, so it
    // is linearizable.
    use super::Model;
    let model = Namespace { paths: 4 };
    let mut state = model.init();
    let mut rng = 12345u64;
    let mut next = || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        rng >> 33
    };
    let mut h = Vec::new();
    let mut id = 100;
    for t in 0..400u64 {
        let p = (next() % 4) as u8;
        let q = ((p as u64 + 1 + next() % 3) % 4) as u8;
        let input = match next() % 4 {
            0 => Create(p),
            1 => Delete(p),
            2 => Rename(p, q),
            _ => Stat(p),
        };
        let out = match (&input, state[p as usize], state[q as usize]) {
            (Create(_), None, _) => {
                id += 1;
                Ok(id)
            }
            (Create(_), Some(_), _) => Exists,
            (Delete(_), None, _) | (Rename(..), None, _) | (Stat(_), None, _) => NotFound,
            (Delete(_), Some(_), _) => Deleted,
            (Rename(..), Some(_), Some(_)) => Exists,
            (Rename(..), Some(i), None) | (Stat(_), Some(i), _) => Ok(i),
        };
        state = model.step(&state, &input, Some(&out)).unwrap();
        // Operation t is linearized at 10t; its window is widened around it.
        let client = (t % 8) as usize;
        h.push(op(client, input, 10 * t - (t % 3) * 4, 10 * t + 5, out));
    }
    assert!(check(&model, &h, 5_000_000).is_ok());
}
