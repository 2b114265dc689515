//! The journal folder's store options: `alluxio.master.journal.ufs.option.*`
//! and Alluxio's S3 keys, how they reach the UFS journal, and bad values
//! named by their key.

use journal_core::JournalError;

use super::super::registry as r;
use super::super::*;
use super::{cfg, env};

#[test]
fn option_keys_and_alluxio_s3_keys_reach_an_s3_folder() {
    let c = cfg(&[
        (r::JOURNAL_FOLDER, "s3://bucket/journal"),
        ("alluxio.master.journal.ufs.option.aws_allow_http", "true"),
        ("alluxio.master.journal.ufs.option.aws_region", "eu-west-1"),
        (r::S3_ENDPOINT, "http://127.0.0.1:9000"),
        (r::S3_DISABLE_DNS_BUCKETS, "true"),
        ("s3a.accessKeyId", "AK"),
        (r::AWS_SECRET_KEY, "SK"),
    ]);
    let options = &c.ufs_journal_config().unwrap().store_options;
    let got: Vec<(&str, &str)> = options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("alluxio.underfs.s3.disable.dns.buckets", "true"),
            ("alluxio.underfs.s3.endpoint", "http://127.0.0.1:9000"),
            ("aws.accessKeyId", "AK"),
            ("aws.secretKey", "SK"),
            ("aws_allow_http", "true"),
            ("aws_region", "eu-west-1"),
        ]
    );
    assert!(c.unknown_keys().is_empty(), "{:?}", c.unknown_keys());
}

#[test]
fn option_names_may_hold_dots_and_win_over_the_global_keys() {
    let c = cfg(&[
        (r::JOURNAL_FOLDER, "s3://bucket/journal"),
        (r::S3_REGION, "us-east-1"),
        (
            "alluxio.master.journal.ufs.option.alluxio.underfs.s3.endpoint.region",
            "eu-central-1",
        ),
    ]);
    assert_eq!(
        c.journal
            .store_options
            .get("alluxio.underfs.s3.endpoint.region")
            .map(String::as_str),
        Some("eu-central-1")
    );
}

#[test]
fn global_s3_keys_do_not_reach_a_local_folder() {
    let c = cfg(&[
        (r::JOURNAL_FOLDER, "/var/journal"),
        (r::AWS_ACCESS_KEY, "AK"),
    ]);
    assert!(c.journal.store_options.is_empty());
}

#[test]
fn store_options_are_not_read_from_alluxio_environment_variables() {
    let opts = LoadOptions {
        conf_dir: None,
        env: env(&[
            ("ALLUXIO_MASTER_JOURNAL_FOLDER", "s3://bucket/j"),
            ("ALLUXIO_MASTER_JOURNAL_UFS_OPTION_AWS_REGION", "x"),
        ]),
        overrides: Vec::new(),
    };
    let c = MasterConfig::load(&opts).unwrap();
    assert!(c.journal.store_options.is_empty());
}

#[test]
fn a_bad_boolean_is_refused_naming_the_key() {
    match MasterConfig::from_pairs(&[
        (r::JOURNAL_FOLDER, "s3://bucket/j"),
        (r::S3_DISABLE_DNS_BUCKETS, "sometimes"),
    ]) {
        Err(e) => assert_eq!(e.key(), r::S3_DISABLE_DNS_BUCKETS, "{e}"),
        Ok(_) => panic!("accepted"),
    }
}

/// The option keys are checked by the store when the folder opens: an
/// unknown one, or a value that does not parse, names the full key.
#[cfg(feature = "s3")]
#[test]
fn unknown_and_malformed_options_fail_the_open_naming_the_key() {
    for (key, value) in [
        ("alluxio.master.journal.ufs.option.aws_no_such_option", "1"),
        (
            "alluxio.master.journal.ufs.option.aws_allow_http",
            "perhaps",
        ),
    ] {
        let c = cfg(&[(r::JOURNAL_FOLDER, "s3://bucket/j"), (key, value)]);
        let options = c.ufs_journal_config().unwrap().store_options;
        match journal_ufs::open_folder_with("s3://bucket/j", false, &options) {
            Err(JournalError::Config { key: k, detail }) => {
                assert_eq!(k, key, "{detail}");
            }
            other => panic!("{key}: {other:?}"),
        }
    }
}

#[test]
fn credentials_in_the_folder_url_are_refused_without_echoing_them() {
    let c = cfg(&[(
        r::JOURNAL_FOLDER,
        "s3a://AKIDLEAK:SECRETLEAK@bucket/journal",
    )]);
    let e = c.journal_folder().unwrap_err();
    assert_eq!(e.key(), r::JOURNAL_FOLDER);
    let mut shown = format!("{e} | {e:?}");
    shown.push_str(&JournalError::from(e).to_string());
    assert!(!shown.contains("SECRETLEAK"), "{shown}");
    assert!(!shown.contains("AKIDLEAK"), "{shown}");
    assert!(shown.contains("s3a://***@bucket/journal"), "{shown}");
    assert!(c.ufs_journal_config().is_err());
    // An `@` in the path is no credential.
    let c = cfg(&[(r::JOURNAL_FOLDER, "s3://bucket/team@x/journal")]);
    assert_eq!(c.journal_folder().unwrap(), "s3://bucket/team@x/journal");
}

#[test]
fn debug_output_never_shows_credentials() {
    let c = cfg(&[
        (r::JOURNAL_FOLDER, "s3://USERLEAK@bucket/journal"),
        (r::AWS_ACCESS_KEY, "AKIDLEAK"),
        (r::AWS_SECRET_KEY, "SECRETLEAK"),
        (
            "alluxio.master.journal.ufs.option.aws_session_token",
            "TOKENLEAK",
        ),
    ]);
    let shown = format!("{c:?} {:?}", c.ufs_journal_config().unwrap_err());
    assert!(!shown.contains("LEAK"), "{shown}");
    assert!(shown.contains("aws_session_token"), "{shown}");
    let c = cfg(&[
        (r::JOURNAL_FOLDER, "s3://bucket/journal"),
        (r::AWS_SECRET_KEY, "SECRETLEAK"),
    ]);
    let shown = format!("{c:?} {:?}", c.ufs_journal_config().unwrap());
    assert!(!shown.contains("LEAK"), "{shown}");
    assert!(shown.contains("aws.secretKey"), "{shown}");
}

#[test]
fn load_options_debug_names_environment_variables_but_never_their_values() {
    let mut opts = LoadOptions::default();
    opts.env.insert(
        "AWS_SECRET_ACCESS_KEY".to_string(),
        "env-secret-value".to_string(),
    );
    opts.overrides = vec![
        (
            r::AWS_SECRET_KEY.to_string(),
            "flag-secret-value".to_string(),
        ),
        (
            r::JOURNAL_FOLDER.to_string(),
            "s3://AK:url-secret-value@bucket/j".to_string(),
        ),
        (r::MASTER_HOSTNAME.to_string(), "m1".to_string()),
    ];
    let shown = format!("{opts:?}");
    assert!(shown.contains("AWS_SECRET_ACCESS_KEY"), "{shown}");
    assert!(shown.contains("m1"), "{shown}");
    for secret in ["env-secret-value", "flag-secret-value", "url-secret-value"] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
}
