//! Exactly-once: a retried request returns its first result and applies once.

use super::{tables, Harness};
use crate::meta::{encode_entry, Entry, ErrorCode, MetaConfig, MetaMachine};

#[test]
fn the_same_request_twice_returns_the_first_result_and_applies_once() {
    let mut m = MetaMachine::default();
    let create = encode_entry(b"client-a", 1, 1_000, Entry::create_file("/f"));
    let first = journal_core::StateMachine::apply(&mut m, 1, &create);
    let after_first = tables(&m.canonical_dump());
    let next_id = m.next_id();
    // The retry reaches the (new) primary later, stamped with a later time.
    let retry = encode_entry(b"client-a", 1, 5_000, Entry::create_file("/f"));
    let second = journal_core::StateMachine::apply(&mut m, 2, &retry);
    assert_eq!(
        first, second,
        "the first result, byte for byte (not ALREADY_EXISTS)"
    );
    assert_eq!(after_first, tables(&m.canonical_dump()), "applied once");
    assert_eq!(next_id, m.next_id());
    // A different client sending the same op is a different request.
    let other = m.apply_entry(&encode_entry(
        b"client-b",
        1,
        6_000,
        Entry::create_file("/f"),
    ));
    assert_eq!(other.code(), Some(ErrorCode::AlreadyExists));
}

#[test]
fn a_retried_error_is_the_same_error_even_if_it_would_now_succeed() {
    let mut h = Harness::new();
    let first = h.run(Entry::create_file("/d/f"));
    assert_eq!(first.code(), Some(ErrorCode::NotFound));
    let seq = h.seq;
    h.client = b"someone-else".to_vec();
    h.mkdir("/d");
    let retry = encode_entry(
        b"client-0123456789",
        seq,
        h.ms + 1,
        Entry::create_file("/d/f"),
    );
    assert_eq!(h.machine.apply_entry(&retry), first);
    assert!(h.machine.get_status("/d/f").is_err());
}

#[test]
fn a_lower_seq_is_refused_and_changes_nothing() {
    let mut h = Harness::new();
    h.mkdir("/a");
    h.mkdir("/b");
    let before = tables(&h.machine.canonical_dump());
    let old = encode_entry(&h.client, 1, h.ms + 1, Entry::mkdir("/c", true));
    let r = h.machine.apply_entry(&old);
    let e = r.err().map(|e| (e.code, e.message));
    let Some((code, message)) = e else {
        panic!("a stale request was applied");
    };
    assert_eq!(code, ErrorCode::StaleRequest);
    assert!(
        message.contains("request 1") && message.contains("last applied request 2"),
        "{message}"
    );
    assert_eq!(before, tables(&h.machine.canonical_dump()));
    // The client's later requests still work, and gaps are allowed.
    h.seq += 10;
    h.mkdir("/c");
}

#[test]
fn sessions_expire_by_log_time_not_by_a_clock() {
    let config = MetaConfig {
        session_retention_ms: 1_000,
        max_sessions: 100,
    };
    let mut m = MetaMachine::new(config);
    let r1 = m.apply_entry(&encode_entry(b"a", 1, 10_000, Entry::mkdir("/x", false)));
    assert!(r1.is_ok());
    // Another client's entry 1 s later (log time) expires a's session ...
    m.apply_entry(&encode_entry(b"b", 1, 11_001, Entry::mkdir("/y", false)));
    assert!(m.sessions().get(b"a").is_none());
    // ... so a's retry is applied again (and now finds /x existing). This is
    // the documented limit: retention must exceed the clients' retry time.
    let again = m.apply_entry(&encode_entry(b"a", 1, 11_002, Entry::mkdir("/x", false)));
    assert_eq!(again.code(), Some(ErrorCode::AlreadyExists));
    // A primary whose clock is behind does not move log time backwards.
    m.apply_entry(&encode_entry(b"c", 1, 5, Entry::mkdir("/z", false)));
    assert_eq!(m.log_ms(), 11_002);
    assert!(
        m.sessions().get(b"b").is_some(),
        "not expired by an old stamp"
    );
}

#[test]
fn eviction_is_least_recently_used_then_client_id_on_every_master() {
    let config = MetaConfig {
        session_retention_ms: u64::MAX,
        max_sessions: 3,
    };
    let entries: Vec<_> = [
        (&b"d"[..], 1, 100),
        (b"c", 1, 100),
        (b"b", 1, 100),
        (b"d", 2, 200), // d refreshed
        (b"a", 1, 300), // full: evicts the oldest, c and b tie at 100 → b
        (b"e", 1, 300), // evicts c
    ]
    .iter()
    .enumerate()
    .map(|(i, (c, s, t))| encode_entry(c, *s, *t, Entry::mkdir(format!("/n{i}"), false)))
    .collect();
    let mut one = MetaMachine::new(config);
    let mut two = MetaMachine::new(config);
    for (seq, e) in entries.iter().enumerate() {
        let out1 = journal_core::StateMachine::apply(&mut one, seq as u64 + 1, e);
        let out2 = journal_core::StateMachine::apply(&mut two, seq as u64 + 1, e);
        assert_eq!(out1, out2);
    }
    let left: Vec<Vec<u8>> = one.sessions().iter().map(|(k, _)| k.to_vec()).collect();
    assert_eq!(left, [b"a".to_vec(), b"d".to_vec(), b"e".to_vec()]);
    assert_eq!(one.canonical_dump(), two.canonical_dump());
}
