//! Sources, precedence, value forms, unknown keys and substitution.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use election_zk::config::ConnectionErrorPolicy;

use super::super::registry as r;
use super::super::*;
use super::{assert_names, cfg, conf_dir, env, flags};

#[test]
fn file_then_environment_then_flags() {
    let dir = conf_dir(
        "# site file\nalluxio.master.rpc.port=1001\nalluxio.master.web.port : 2001\n\
         alluxio.master.hostname m-file\nalluxio.worker.rpc.port=3001\n",
    );
    let opts = LoadOptions {
        conf_dir: Some(dir.path().to_path_buf()),
        env: env(&[
            ("ALLUXIO_MASTER_WEB_PORT", "2002"),
            ("ALLUXIO_MASTER_RPC_PORT", "1002"),
            ("PRIMACY_MASTER_RPC_PORT", "1003"),
            ("ALLUXIO_HOME", "/opt/alluxio"),
        ]),
        overrides: flags(&[
            ("alluxio.master.rpc.port", "1004"),
            ("alluxio.master.rpc.port", "1005"),
        ]),
    };
    let c = MasterConfig::load(&opts).unwrap();
    assert_eq!(c.rpc_port, 1005, "the last -D wins over everything");
    assert_eq!(c.web_port, 2002, "environment wins over the file");
    assert_eq!(c.worker.rpc_port, 3001, "the file wins over the default");
    assert_eq!(c.hostname.as_deref(), Some("m-file"));
    assert_eq!(c.embedded.port, 19200, "the default");
    assert_eq!(c.source_of(r::MASTER_RPC_PORT), Source::Flag);
    assert_eq!(
        c.source_of(r::MASTER_WEB_PORT),
        Source::Env {
            var: "ALLUXIO_MASTER_WEB_PORT".into()
        }
    );
    assert_eq!(
        c.source_of(r::WORKER_RPC_PORT),
        Source::File {
            path: dir.path().join(SITE_FILE),
            line: 5
        }
    );
    assert_eq!(c.source_of(r::EMBEDDED_PORT), Source::Default);
    assert!(c.unknown_keys().is_empty(), "{:?}", c.unknown_keys());
    let all = c.properties().all();
    assert_eq!(all[r::ZK_ELECTION_PATH].value, "/alluxio/election");
    assert_eq!(all[r::MASTER_RPC_PORT].value, "1005");
}

#[test]
fn primacy_environment_wins_over_alluxio_environment() {
    let dir = conf_dir("");
    let opts = LoadOptions {
        conf_dir: Some(dir.path().to_path_buf()),
        env: env(&[
            ("PRIMACY_MASTER_HOSTNAME", "from-primacy"),
            ("ALLUXIO_MASTER_HOSTNAME", "from-alluxio"),
            ("PRIMACY_MASTER_JOURNAL_CHECKPOINT_RETENTION", "5"),
        ]),
        overrides: vec![],
    };
    let c = MasterConfig::load(&opts).unwrap();
    assert_eq!(c.hostname.as_deref(), Some("from-primacy"));
    assert_eq!(c.journal.checkpoint_retention, 5);
}

#[test]
fn conf_dir_rules() {
    // An explicit directory without the file is an error naming the file.
    let empty = tempfile::tempdir().unwrap();
    let opts = LoadOptions {
        conf_dir: Some(empty.path().to_path_buf()),
        ..Default::default()
    };
    match MasterConfig::load(&opts) {
        Err(ConfigError::FileMissing { path, given_by }) => {
            assert_eq!(path, empty.path().join(SITE_FILE));
            assert_eq!(given_by, "--conf");
        }
        other => panic!("{other:?}"),
    }
    let opts = LoadOptions {
        env: env(&[(CONF_DIR_ENV, &empty.path().display().to_string())]),
        ..Default::default()
    };
    assert!(matches!(
        MasterConfig::load(&opts),
        Err(ConfigError::FileMissing { given_by, .. }) if given_by == CONF_DIR_ENV
    ));
    // PRIMACY_CONF_DIR is read when --conf is absent; --conf wins over it.
    let a = conf_dir("alluxio.master.rpc.port=1\n");
    let b = conf_dir("alluxio.master.rpc.port=2\n");
    let mut opts = LoadOptions {
        env: env(&[(CONF_DIR_ENV, &a.path().display().to_string())]),
        ..Default::default()
    };
    assert_eq!(MasterConfig::load(&opts).unwrap().rpc_port, 1);
    opts.conf_dir = Some(b.path().to_path_buf());
    assert_eq!(MasterConfig::load(&opts).unwrap().rpc_port, 2);
    // The default ./conf (the crate directory has none) may be missing.
    assert!(!Path::new(DEFAULT_CONF_DIR).join(SITE_FILE).exists());
    let c = MasterConfig::load(&LoadOptions::default()).unwrap();
    assert_eq!(c.rpc_port, 19998);
    // A syntax error names the file and line.
    let bad = conf_dir("a=1\nalluxio.master.hostname=\\u12\n");
    let opts = LoadOptions {
        conf_dir: Some(bad.path().to_path_buf()),
        ..Default::default()
    };
    assert!(matches!(
        MasterConfig::load(&opts),
        Err(ConfigError::Syntax { line: 2, .. })
    ));
}

#[test]
fn every_value_form() {
    let c = cfg(&[
        (r::ELECTION_MIN, "100ms"),
        (r::ELECTION_MAX, "0.5s"),
        (r::WORKER_TIMEOUT, "10min"),
        (r::RETRY_MAX_DURATION, "2h"),
        (r::ZK_SESSION_TIMEOUT, "1d"),
        (r::TAILER_SLEEP, "250"),
        (r::SNAPSHOT_CHUNK, "10KB"),
        (r::MAX_MESSAGE, "1GB"),
        (r::ZK_ENABLED, "TRUE"),
        (r::ZK_ADDRESS, "z1:2181;z2:2181, z3:2181"),
        (r::EMBEDDED_ADDRESSES, "m1:19200,m2:19200"),
        (r::CHECKPOINT_PERIOD, "1,000"),
        (r::ZK_POLICY, "standard"),
        (r::JOURNAL_TYPE, "ufs"),
    ]);
    assert_eq!(c.embedded.election_timeout_min, Duration::from_millis(100));
    assert_eq!(c.embedded.election_timeout_max, Duration::from_millis(500));
    assert_eq!(c.worker_timeout, Duration::from_secs(600));
    assert_eq!(c.user_retry.max_duration, Duration::from_secs(7200));
    assert_eq!(c.zookeeper.session_timeout, Duration::from_secs(86_400));
    assert_eq!(c.journal.tailer_sleep, Duration::from_millis(250));
    assert_eq!(c.embedded.snapshot_chunk_size, 10 << 10);
    assert_eq!(c.embedded.max_message_size, 1 << 30);
    assert!(c.zookeeper.enabled);
    assert_eq!(c.zookeeper.address, vec!["z1:2181", "z2:2181", "z3:2181"]);
    assert_eq!(c.embedded.addresses, vec!["m1:19200", "m2:19200"]);
    assert_eq!(c.journal.checkpoint_period_entries, 1000);
    assert_eq!(c.zookeeper.policy, ConnectionErrorPolicy::Standard);
    assert_eq!(c.journal.kind, Some(JournalType::Ufs));
}

#[test]
fn defaults_are_primacys() {
    let c = cfg(&[] as &[(&str, &str)]);
    assert_eq!((c.rpc_port, c.web_port), (19998, 19999));
    assert_eq!(c.embedded.port, 19200);
    assert_eq!(c.embedded.election_timeout_min, Duration::from_secs(1));
    assert_eq!(c.embedded.election_timeout_max, Duration::from_secs(2));
    assert_eq!(c.embedded.snapshot_chunk_size, 4 << 20);
    assert!(!c.zookeeper.enabled);
    assert_eq!(c.zookeeper.session_timeout, Duration::from_secs(5));
    assert_eq!(c.zookeeper.election_path, "/alluxio/election");
    assert_eq!(c.zookeeper.leader_path, "/alluxio/leader");
    assert_eq!(c.zookeeper.policy, ConnectionErrorPolicy::Session);
    assert_eq!(c.worker_timeout, Duration::from_secs(300));
    assert_eq!(c.user_retry.max_duration, Duration::from_secs(120));
    assert_eq!(c.user_retry.base_sleep, Duration::from_millis(50));
    assert_eq!(c.user_retry.max_sleep, Duration::from_secs(3));
    assert_eq!(c.journal.tailer_sleep, Duration::from_millis(20));
    assert_eq!(c.journal.checkpoint_period_entries, 2_000_000);
    assert_eq!(c.journal.checkpoint_retention, 2);
    assert_eq!(c.worker.rpc_port, 29999);
    assert_eq!(c.worker.heartbeat_interval, Duration::from_secs(1));
    assert_eq!(c.journal.folder, None);
    assert_eq!(c.cluster_id, None);
}

#[test]
fn malformed_values_name_key_and_value() {
    for (key, value) in [
        (r::MASTER_RPC_PORT, "abc"),
        (r::MASTER_WEB_PORT, "0"),
        (r::EMBEDDED_PORT, "70000"),
        (r::ELECTION_MIN, "fast"),
        (r::WORKER_TIMEOUT, "5 fortnights"),
        (r::TAILER_SLEEP, "-20ms"),
        (r::SNAPSHOT_CHUNK, "4XB"),
        (r::MAX_MESSAGE, "lots"),
        (r::ZK_ENABLED, "yes"),
        (r::EMBEDDED_JOIN, "1"),
        (r::ZK_ADDRESS, "z1:2181,z2"),
        (r::EMBEDDED_ADDRESSES, "m1:19200;m2:0"),
        (r::MASTER_RPC_ADDRESSES, "m1"),
        (r::CHECKPOINT_PERIOD, "2e6"),
        (r::MEMBER_ID, "seven"),
        (r::JOURNAL_TYPE, "NOOP"),
        (r::ZK_POLICY, "sometimes"),
        (r::MASTER_HOSTNAME, "m1:19998"),
        ("alluxio.master.rpc.address.ns1.m1", "nohostport"),
    ] {
        assert_names(MasterConfig::from_pairs(&[(key, value)]), key, value);
    }
    // The message also says where the value came from.
    let dir = conf_dir("alluxio.master.rpc.port = abc\n");
    let opts = LoadOptions {
        conf_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let e = MasterConfig::load(&opts).unwrap_err().to_string();
    assert!(
        e.contains(&format!("{}:1", dir.path().join(SITE_FILE).display())),
        "{e}"
    );
    let opts = LoadOptions {
        env: env(&[("ALLUXIO_ZOOKEEPER_ENABLED", "on")]),
        ..Default::default()
    };
    let e = MasterConfig::load(&opts).unwrap_err().to_string();
    assert!(e.contains("ALLUXIO_ZOOKEEPER_ENABLED"), "{e}");
}

#[test]
fn unknown_keys_are_collected_with_suggestions() {
    let c = cfg(&[
        ("alluxio.master.hostnme", "m1"),
        ("primacy.made.up.key", "1"),
        ("alluxio.security.authentication.type", "NOSASL"),
        ("log4j.rootLogger", "INFO"),
    ]);
    let unknown: Vec<(&str, Option<&str>)> = c
        .unknown_keys()
        .iter()
        .map(|u| (u.key.as_str(), u.suggestion))
        .collect();
    assert_eq!(
        unknown,
        vec![
            ("alluxio.master.hostnme", Some(r::MASTER_HOSTNAME)),
            ("alluxio.security.authentication.type", None),
            ("primacy.made.up.key", None),
        ]
    );
    assert!(c.unknown_keys().iter().all(|u| u.source == Source::Flag));
    // The text logged with tracing::warn!.
    assert_eq!(
        c.unknown_keys()[0].to_string(),
        "unknown configuration key alluxio.master.hostnme (set by a -D flag; ignored); \
         did you mean alluxio.master.hostname?"
    );
    assert_eq!(c.hostname, None, "a misspelt key sets nothing");
}

#[test]
fn substitution_empty_values_and_aliases() {
    let c = cfg(&[
        (r::WORK_DIR, "/var/primacy/"),
        (r::WORKER_DATA_FOLDER, "${alluxio.work.dir}data"),
    ]);
    assert_eq!(c.journal.folder.as_deref(), Some("/var/primacy/journal"));
    assert_eq!(c.worker.data_folder.as_deref(), Some("/var/primacy/data"));
    let c = cfg(&[
        (r::MASTER_HOSTNAME, "m1"),
        (
            r::JOURNAL_FOLDER,
            "/j/${alluxio.master.hostname}-${alluxio.master.rpc.port}",
        ),
    ]);
    assert_eq!(c.journal.folder.as_deref(), Some("/j/m1-19998"));
    assert_names(
        MasterConfig::from_pairs(&[(r::JOURNAL_FOLDER, "${alluxio.work.dir}/journal")]),
        r::JOURNAL_FOLDER,
        "${alluxio.work.dir}/journal",
    );
    assert_names(
        MasterConfig::from_pairs(&[(r::WORK_DIR, "${alluxio.work.dir}/x")]),
        r::WORK_DIR,
        "${alluxio.work.dir}/x",
    );
    // An empty -D value removes the file's value: back to the default.
    let dir = conf_dir("alluxio.master.embedded.journal.addresses=m1:19200\n");
    let opts = LoadOptions {
        conf_dir: Some(dir.path().to_path_buf()),
        env: BTreeMap::new(),
        overrides: flags(&[(r::EMBEDDED_ADDRESSES, "")]),
    };
    assert!(MasterConfig::load(&opts)
        .unwrap()
        .embedded
        .addresses
        .is_empty());
    // journal-raft's name for the cluster id is an alias.
    let c = cfg(&[("primacy.cluster.id", "prod")]);
    assert_eq!(c.cluster_id.as_deref(), Some("prod"));
    assert!(c.unknown_keys().is_empty());
}

#[test]
fn nameservices_resolve_through_their_addresses() {
    let c = cfg(&[
        ("alluxio.master.nameservices.ns1", "m2, m1"),
        ("alluxio.master.rpc.address.ns1.m1", "h1:19998"),
        ("alluxio.master.rpc.address.ns1.m2", "h2:19998"),
    ]);
    assert_eq!(c.nameservices["ns1"], vec!["h2:19998", "h1:19998"]);
    assert_names(
        MasterConfig::from_pairs(&[
            ("alluxio.master.nameservices.ns1", "m1,m3"),
            ("alluxio.master.rpc.address.ns1.m1", "h1:19998"),
        ]),
        "alluxio.master.nameservices.ns1",
        "alluxio.master.rpc.address.ns1.m3",
    );
}

#[test]
fn properties_text_is_read_like_the_site_file_and_nothing_else() {
    let c = MasterConfig::from_properties(
        "# an embedder's settings\n\
         alluxio.work.dir = /srv/kv\n\
         alluxio.master.hostname: m1\n\
         alluxio.master.rpc.port 20000\n\
         alluxio.master.journal.folder=${alluxio.work.dir}/journal\n",
    )
    .unwrap();
    assert_eq!(c.hostname.as_deref(), Some("m1"));
    assert_eq!(c.rpc_port, 20000);
    assert_eq!(c.journal.folder.as_deref(), Some("/srv/kv/journal"));
    assert_eq!(c.source_of(r::MASTER_RPC_PORT), Source::Text { line: 4 });
    assert_eq!(c.source_of(r::EMBEDDED_PORT), Source::Default);

    // Errors name the line of the text.
    let e = MasterConfig::from_properties("\nalluxio.master.rpc.port=abc\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 2 of the properties text") && e.contains("abc"),
        "{e}"
    );
    let e = MasterConfig::from_properties("alluxio.master.journal.folder=${nope}\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
    // Unknown keys are kept with a suggestion, as from the file.
    let c = MasterConfig::from_properties("alluxio.master.hostnme=m1\n").unwrap();
    assert_eq!(c.unknown_keys().len(), 1);
    assert_eq!(c.unknown_keys()[0].source, Source::Text { line: 1 });
}

/// Seen while writing the properties fuzz target: nesting is bounded, but
/// each level may repeat a reference, so fifteen lines meant 10^15
/// references to expand. The expansion is bounded in references (a short
/// leaf) and in bytes (a long one): an error naming the key.
#[test]
fn a_reference_bomb_is_refused_not_expanded() {
    for (leaf, bound) in [("x".to_string(), "references"), ("y".repeat(200), "bytes")] {
        let mut text = String::new();
        // 15 levels of 10: 10^15 references, one level inside MAX_DEPTH.
        for level in 0..15 {
            let refs = format!("${{bomb.{}}}", level + 1).repeat(10);
            text.push_str(&format!("bomb.{level}={refs}\n"));
        }
        text.push_str(&format!("bomb.15={leaf}\n"));
        text.push_str("alluxio.master.journal.folder=${bomb.0}\n");
        let e = MasterConfig::from_properties(&text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bomb.") || e.contains("journal.folder"), "{e}");
        assert!(e.contains(bound), "{e}");
    }
    // Below the bounds, repeated references still expand.
    let c = MasterConfig::from_properties(
        "a.x=${a.y}${a.y}\na.y=ab\nalluxio.master.journal.folder=/j/${a.x}\n",
    )
    .unwrap();
    assert_eq!(c.journal.folder.as_deref(), Some("/j/abab"));
}
