//! Backend choice, contradictions and the journal crates' configs.

use std::path::Path;
use std::time::Duration;

use election_zk::config::ConnectionErrorPolicy;

use super::super::registry as r;
use super::super::*;
use super::{assert_names, cfg};

#[test]
fn backend_choice_table() {
    let folder = (r::JOURNAL_FOLDER, "/j");
    let host = (r::MASTER_HOSTNAME, "m1");
    let zk = [(r::ZK_ENABLED, "true"), (r::ZK_ADDRESS, "z:2181")];
    let addrs = (r::EMBEDDED_ADDRESSES, "m1:19200,m2:19200,m3:19200");
    let cases: Vec<(Vec<(&str, &str)>, Backend)> = vec![
        (
            vec![folder, host, (r::JOURNAL_TYPE, "EMBEDDED")],
            Backend::Embedded,
        ),
        (
            vec![folder, host, (r::JOURNAL_TYPE, "UFS"), zk[0], zk[1]],
            Backend::UfsZooKeeper,
        ),
        (vec![folder, (r::JOURNAL_TYPE, "UFS")], Backend::UfsSingle),
        (
            vec![folder, host, addrs, (r::JOURNAL_TYPE, "UFS")],
            Backend::UfsSingle,
        ),
        (vec![folder, host, addrs], Backend::Embedded),
        (vec![folder, host, zk[0], zk[1]], Backend::UfsZooKeeper),
        (vec![folder], Backend::UfsSingle),
        (vec![(r::WORK_DIR, "/w")], Backend::UfsSingle),
    ];
    for (pairs, want) in cases {
        assert_eq!(cfg(&pairs).backend().unwrap(), want, "{pairs:?}");
    }
}

#[test]
fn contradictions_are_refused() {
    let folder = (r::JOURNAL_FOLDER, "/j");
    let host = (r::MASTER_HOSTNAME, "m1");
    let backend = |pairs: &[(&str, &str)]| cfg(pairs).backend();
    // Embedded with ZooKeeper, explicit or inferred.
    assert_names(
        backend(&[
            folder,
            host,
            (r::JOURNAL_TYPE, "EMBEDDED"),
            (r::ZK_ENABLED, "true"),
        ]),
        r::ZK_ENABLED,
        "true",
    );
    assert_names(
        backend(&[
            folder,
            host,
            (r::EMBEDDED_ADDRESSES, "m1:19200"),
            (r::ZK_ENABLED, "true"),
        ]),
        r::ZK_ENABLED,
        r::EMBEDDED_ADDRESSES,
    );
    // Embedded with neither addresses nor hostname; addresses but no hostname.
    assert_names(
        backend(&[folder, (r::JOURNAL_TYPE, "EMBEDDED")]),
        r::EMBEDDED_ADDRESSES,
        r::MASTER_HOSTNAME,
    );
    assert_names(
        backend(&[folder, (r::EMBEDDED_ADDRESSES, "m1:19200")]),
        r::MASTER_HOSTNAME,
        r::EMBEDDED_ADDRESSES,
    );
    // A single embedded master on hostname:port is fine.
    assert_eq!(
        backend(&[folder, host, (r::JOURNAL_TYPE, "EMBEDDED")]).unwrap(),
        Backend::Embedded
    );
    // This master not in the list: refused unless it joins.
    let others = (r::EMBEDDED_ADDRESSES, "m2:19200,m3:19200");
    assert_names(
        backend(&[folder, host, others]),
        r::EMBEDDED_ADDRESSES,
        "m1:19200",
    );
    assert_names(
        backend(&[
            folder,
            host,
            (r::EMBEDDED_ADDRESSES, "m1:19201"),
            (r::EMBEDDED_PORT, "19200"),
        ]),
        r::EMBEDDED_ADDRESSES,
        "m1:19201",
    );
    assert_eq!(
        backend(&[folder, host, others, (r::EMBEDDED_JOIN, "true")]).unwrap(),
        Backend::Embedded
    );
    // Embedded on a cloud folder.
    assert_names(
        backend(&[
            (r::JOURNAL_FOLDER, "s3://b/j"),
            host,
            (r::JOURNAL_TYPE, "EMBEDDED"),
        ]),
        r::JOURNAL_FOLDER,
        "s3://b/j",
    );
    // ZooKeeper without an address, or without a hostname.
    assert_names(
        backend(&[folder, host, (r::ZK_ENABLED, "true")]),
        r::ZK_ADDRESS,
        r::ZK_ENABLED,
    );
    assert_names(
        backend(&[folder, (r::ZK_ENABLED, "true"), (r::ZK_ADDRESS, "z:2181")]),
        r::MASTER_HOSTNAME,
        "ZooKeeper",
    );
    // No folder and no work dir, for either backend.
    assert_names(backend(&[]), r::JOURNAL_FOLDER, r::WORK_DIR);
    assert_names(
        backend(&[host, (r::JOURNAL_TYPE, "EMBEDDED")]),
        r::JOURNAL_FOLDER,
        r::WORK_DIR,
    );
}

#[test]
fn ufs_and_zookeeper_configs() {
    let c = cfg(&[
        (r::JOURNAL_FOLDER, "file:///shared/journal"),
        (r::MASTER_HOSTNAME, "m1"),
        (r::MASTER_RPC_PORT, "20000"),
        (r::CLUSTER_ID, "prod"),
        (r::TAILER_SLEEP, "5ms"),
        (r::CHECKPOINT_PERIOD, "1000"),
        (r::CHECKPOINT_RETENTION, "3"),
        (r::ZK_ENABLED, "true"),
        (r::ZK_ADDRESS, "z1:2181;z2:2181"),
        (r::ZK_SESSION_TIMEOUT, "3s"),
        (r::ZK_CONNECTION_TIMEOUT, "2s"),
        (r::ZK_ELECTION_PATH, "/p/election"),
        (r::ZK_LEADER_PATH, "/p/leader"),
        (r::ZK_POLICY, "STANDARD"),
    ]);
    let u = c.ufs_journal_config().unwrap();
    assert_eq!(u.folder, "file:///shared/journal");
    assert_eq!(u.address, "m1:20000");
    assert_eq!(u.cluster_id.as_deref(), Some("prod"));
    assert_eq!(u.tailer_sleep, Duration::from_millis(5));
    assert_eq!(u.checkpoint_period_entries, 1000);
    assert_eq!(u.checkpoint_retention, 3);
    let z = c.zk_config().unwrap().unwrap();
    assert_eq!(z.address, "z1:2181,z2:2181");
    assert_eq!(z.session_timeout, Duration::from_secs(3));
    assert_eq!(z.connection_timeout, Duration::from_secs(2));
    assert_eq!(z.election_path, "/p/election");
    assert_eq!(z.leader_path, "/p/leader");
    assert_eq!(z.policy, ConnectionErrorPolicy::Standard);
    // ZooKeeper off: no ZkConfig; a single master without hostname is localhost.
    let c = cfg(&[(r::JOURNAL_FOLDER, "/j")]);
    assert!(c.zk_config().unwrap().is_none());
    assert_eq!(c.ufs_journal_config().unwrap().address, "localhost:19998");
    // The crates' own rules still apply, reported with our key and value.
    let bad = |pairs: &[(&str, &str)]| {
        let mut all = vec![
            (r::JOURNAL_FOLDER, "/j"),
            (r::ZK_ENABLED, "true"),
            (r::ZK_ADDRESS, "z:2181"),
        ];
        all.extend_from_slice(pairs);
        cfg(&all)
    };
    assert_names(
        bad(&[(r::ZK_LEADER_PATH, "leader")]).zk_config(),
        r::ZK_LEADER_PATH,
        "leader",
    );
    assert_names(
        bad(&[(r::ZK_SESSION_TIMEOUT, "1ms")]).zk_config(),
        r::ZK_SESSION_TIMEOUT,
        "1ms",
    );
    assert_names(
        bad(&[(r::CHECKPOINT_RETENTION, "0")]).ufs_journal_config(),
        r::CHECKPOINT_RETENTION,
        "0",
    );
    assert_names(
        bad(&[(r::CHECKPOINT_PERIOD, "0")]).ufs_journal_config(),
        r::CHECKPOINT_PERIOD,
        "0",
    );
}

#[test]
fn raft_config() {
    let c = cfg(&[
        (r::JOURNAL_FOLDER, "file:///var/j"),
        (r::MASTER_HOSTNAME, "m2"),
        (r::EMBEDDED_ADDRESSES, "m1:19300,m2:19300,m3:19300"),
        (r::EMBEDDED_PORT, "19300"),
        (r::ELECTION_MIN, "500ms"),
        (r::ELECTION_MAX, "1s"),
        (r::SNAPSHOT_CHUNK, "1MB"),
        (r::MAX_MESSAGE, "8MB"),
        (r::CHECKPOINT_PERIOD, "5000"),
        (r::CLUSTER_ID, "prod"),
    ]);
    assert_eq!(c.backend().unwrap(), Backend::Embedded);
    let rc = c.raft_journal_config().unwrap();
    assert_eq!(rc.address, "m2:19300");
    assert_eq!(rc.addresses, vec!["m1:19300", "m2:19300", "m3:19300"]);
    assert_eq!(rc.data_dir, Path::new("/var/j"));
    assert_eq!(rc.election_timeout_min, Duration::from_millis(500));
    assert_eq!(rc.election_timeout_max, Duration::from_secs(1));
    assert_eq!(rc.snapshot_chunk_size, 1 << 20);
    assert_eq!(rc.max_message_bytes, 8 << 20);
    assert_eq!(rc.checkpoint_period_entries, 5000);
    assert_eq!(rc.cluster_id.as_deref(), Some("prod"));
    assert_eq!(rc.id, None);
    assert_eq!(rc.member_id(), journal_raft::member_id_for("m2:19300"));
    // Advertised to the group: hints name RPC addresses, not peer ones.
    assert_eq!(rc.rpc_address.as_deref(), Some("m2:19998"));
    // A single member on hostname:port when the list is unset.
    let c = cfg(&[
        (r::JOURNAL_FOLDER, "/j"),
        (r::MASTER_HOSTNAME, "solo"),
        (r::JOURNAL_TYPE, "EMBEDDED"),
    ]);
    let rc = c.raft_journal_config().unwrap();
    assert_eq!(rc.addresses, vec!["solo:19200"]);
    assert_eq!(rc.address, "solo:19200");
    let c = cfg(&[
        (r::JOURNAL_FOLDER, "/j"),
        (r::MASTER_HOSTNAME, "solo"),
        (r::JOURNAL_TYPE, "EMBEDDED"),
        (r::MASTER_RPC_PORT, "29998"),
    ]);
    let rc = c.raft_journal_config().unwrap();
    assert_eq!(rc.rpc_address.as_deref(), Some("solo:29998"));
    // journal-raft's rules apply, reported with our key and value.
    let base = [
        (r::JOURNAL_FOLDER, "/j"),
        (r::MASTER_HOSTNAME, "m1"),
        (r::JOURNAL_TYPE, "EMBEDDED"),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut all = base.to_vec();
        all.push(extra);
        cfg(&all).raft_journal_config()
    };
    assert_names(with((r::ELECTION_MAX, "500ms")), r::ELECTION_MAX, "500ms");
    assert_names(
        with((r::SNAPSHOT_CHUNK, "200MB")),
        r::SNAPSHOT_CHUNK,
        "200MB",
    );
    assert_names(with((r::MEMBER_ID, "0")), r::MEMBER_ID, "0");
}

#[test]
fn pending_bounds_and_staging_grace() {
    let c = cfg(&[(r::JOURNAL_FOLDER, "/j")]);
    let u = c.ufs_journal_config().unwrap();
    assert_eq!(u.pending, journal_core::PendingLimits::default());
    assert_eq!(u.staging_grace, Duration::from_secs(3600));
    let c = cfg(&[
        (r::JOURNAL_FOLDER, "/j"),
        (r::MASTER_HOSTNAME, "m1"),
        (r::MAX_PENDING_PROPOSALS, "32"),
        (r::MAX_PENDING_BYTES, "1MB"),
        (r::STAGING_GRACE, "10min"),
    ]);
    let u = c.ufs_journal_config().unwrap();
    assert_eq!(u.pending.max_proposals, 32);
    assert_eq!(u.pending.max_bytes, 1 << 20);
    assert_eq!(u.staging_grace, Duration::from_secs(600));
    let raft = c.raft_journal_config().unwrap();
    assert_eq!(raft.pending, u.pending);
    let bad = |pairs: &[(&str, &str)]| {
        let mut all = vec![(r::JOURNAL_FOLDER, "/j")];
        all.extend_from_slice(pairs);
        cfg(&all)
    };
    assert_names(
        bad(&[(r::MAX_PENDING_PROPOSALS, "0")]).ufs_journal_config(),
        r::MAX_PENDING_PROPOSALS,
        "0",
    );
    assert_names(
        bad(&[(r::MAX_PENDING_BYTES, "0")]).ufs_journal_config(),
        r::MAX_PENDING_BYTES,
        "0",
    );
    assert_names(
        bad(&[(r::STAGING_GRACE, "10ms")]).ufs_journal_config(),
        r::STAGING_GRACE,
        "10ms",
    );
}

#[test]
fn connect_via_routes_peers_through_the_testing_proxies() {
    let base = [
        (r::JOURNAL_TYPE, "EMBEDDED"),
        (r::JOURNAL_FOLDER, "/j"),
        (r::MASTER_HOSTNAME, "m1"),
        (r::EMBEDDED_ADDRESSES, "m1:19200,m2:19200"),
    ];
    let rc = cfg(&base).raft_journal_config().unwrap();
    assert!(rc.connect_via.is_empty());
    let mut pairs = base.to_vec();
    pairs.push((
        r::CONNECT_VIA,
        "m2:19200=127.0.0.1:4000, m1:19200=127.0.0.1:4001",
    ));
    let rc = cfg(&pairs).raft_journal_config().unwrap();
    assert_eq!(
        rc.connect_via.get("m2:19200").map(String::as_str),
        Some("127.0.0.1:4000")
    );
    assert_eq!(
        rc.connect_via.get("m1:19200").map(String::as_str),
        Some("127.0.0.1:4001")
    );
    for bad in [
        "m2:19200",
        "m2:19200=nowhere",
        "=127.0.0.1:1",
        "m2:19200=127.0.0.1:4000,",
    ] {
        let mut pairs = base.to_vec();
        pairs.push((r::CONNECT_VIA, bad));
        assert_names(
            MasterConfig::from_pairs(&pairs),
            r::CONNECT_VIA,
            bad.trim_end_matches(','),
        );
    }
}

#[test]
fn pending_bounds_and_staging_grace_edge_values() {
    let with = |pairs: &[(&str, &str)]| {
        let mut all = vec![(r::JOURNAL_FOLDER, "/j"), (r::MASTER_HOSTNAME, "m1")];
        all.extend_from_slice(pairs);
        cfg(&all)
    };
    // Negative, fractional and overflowing values are refused naming the key.
    for (key, bad) in [
        (r::MAX_PENDING_PROPOSALS, "-1"),
        (r::MAX_PENDING_PROPOSALS, "1.5"),
        (r::MAX_PENDING_PROPOSALS, "99999999999999999999999"),
        (r::MAX_PENDING_BYTES, "-4MB"),
        (r::MAX_PENDING_BYTES, "99999999PB"),
        (r::STAGING_GRACE, "-1s"),
        (r::STAGING_GRACE, "1e400d"),
    ] {
        assert_names(
            MasterConfig::from_pairs(&[(r::JOURNAL_FOLDER, "/j"), (key, bad)]),
            key,
            bad,
        );
    }
    for zero in ["0", "0s", "999ms"] {
        assert_names(
            with(&[(r::STAGING_GRACE, zero)]).ufs_journal_config(),
            r::STAGING_GRACE,
            zero,
        );
    }
    assert_names(
        with(&[(r::MAX_PENDING_BYTES, "0")]).raft_journal_config(),
        r::MAX_PENDING_BYTES,
        "0",
    );
    assert_names(
        with(&[(r::MAX_PENDING_PROPOSALS, "0")]).raft_journal_config(),
        r::MAX_PENDING_PROPOSALS,
        "0",
    );
    // Huge values mean "no practical bound"; nothing is sized by them.
    let huge = with(&[
        (r::MAX_PENDING_PROPOSALS, "18446744073709551615"),
        (r::MAX_PENDING_BYTES, "1TB"),
        (r::STAGING_GRACE, "100000d"),
        (r::JOURNAL_TYPE, "UFS"),
    ]);
    let u = huge.ufs_journal_config().unwrap();
    assert_eq!(u.pending.max_proposals as u64, u64::MAX);
    assert_eq!(u.pending.max_bytes as u64, 1 << 40);
    assert_eq!(u.staging_grace, Duration::from_secs(100_000 * 86_400));
    let gate = journal_core::PendingGate::new(u.pending);
    let _one = gate.admit(1 << 20).unwrap();
    // The smallest byte bound refuses every real entry as invalid, not as
    // "overloaded, retry".
    let tiny = with(&[(r::MAX_PENDING_BYTES, "1")])
        .ufs_journal_config()
        .unwrap();
    let e = journal_core::PendingGate::new(tiny.pending)
        .admit(2)
        .unwrap_err();
    assert!(!e.is_retryable(), "{e}");
}
