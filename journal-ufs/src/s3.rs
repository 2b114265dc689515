//! Opening an `s3://bucket/prefix` journal folder: object_store's S3 client
//! configured from the `AWS_*` environment variables, then from the journal's
//! store options (object_store's own key names, or the Alluxio names
//! `aws.accessKeyId`, `aws.secretKey`, `s3a.accessKeyId`, `s3a.secretKey`,
//! `alluxio.underfs.s3.endpoint`, `alluxio.underfs.s3.endpoint.region`,
//! `alluxio.underfs.s3.disable.dns.buckets`).
//!
//! Chunks and FORMAT are created with a conditional PUT (`If-None-Match: *`,
//! object_store's default `aws_conditional_put=etag`); checkpoints are
//! published by a multipart copy whose completion carries the same header
//! (`aws_copy_if_not_exists=multipart`, the default set here), so nothing is
//! ever renamed and a lost race answers `AlreadyExists`.

use std::collections::BTreeMap;
use std::sync::Arc;

use journal_core::JournalError;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::ObjectStore;

use crate::store::{option_key, FOLDER_KEY};

/// One store option after the Alluxio names were translated.
struct S3Option {
    /// The key as the operator wrote it, named in errors.
    given: String,
    key: AmazonS3ConfigKey,
    value: String,
}

/// Translates one option to object_store's S3 key and value. Alluxio's
/// `disable.dns.buckets` is the negation of virtual-hosted-style requests,
/// and its endpoint may lack a scheme (Alluxio then uses HTTPS).
fn translate(key: &str, value: &str) -> Result<Vec<S3Option>, JournalError> {
    let value = value.trim();
    if value.is_empty() {
        // An empty endpoint or region would be sent as is (`https://`, a
        // signature for region ""), failing at the first request far from
        // the key that caused it.
        return Err(JournalError::config(
            option_key(key),
            "is empty; remove the key to use the default",
        ));
    }
    let one = |k: AmazonS3ConfigKey, v: String| {
        Ok(vec![S3Option {
            given: key.to_string(),
            key: k,
            value: v,
        }])
    };
    match key {
        "aws.accessKeyId" | "s3a.accessKeyId" => one(AmazonS3ConfigKey::AccessKeyId, value.into()),
        "aws.secretKey" | "s3a.secretKey" => one(AmazonS3ConfigKey::SecretAccessKey, value.into()),
        "alluxio.underfs.s3.endpoint.region" => one(AmazonS3ConfigKey::Region, value.into()),
        "alluxio.underfs.s3.endpoint" => {
            let endpoint = if value.contains("://") {
                value.to_string()
            } else {
                format!("https://{value}")
            };
            let mut out = vec![S3Option {
                given: key.to_string(),
                key: AmazonS3ConfigKey::Endpoint,
                value: endpoint.clone(),
            }];
            if endpoint.starts_with("http://") {
                // An explicit plain-HTTP endpoint is the operator's choice;
                // object_store would refuse it without this.
                out.push(S3Option {
                    given: key.to_string(),
                    key: AmazonS3ConfigKey::Client(object_store::ClientConfigKey::AllowHttp),
                    value: "true".into(),
                });
            }
            Ok(out)
        }
        "alluxio.underfs.s3.disable.dns.buckets" => {
            let disabled = parse_bool(value).ok_or_else(|| {
                JournalError::config(
                    option_key(key),
                    format!("{value:?} is not a boolean (true or false)"),
                )
            })?;
            one(
                AmazonS3ConfigKey::VirtualHostedStyleRequest,
                (!disabled).to_string(),
            )
        }
        other => match other.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            Ok(k) => one(k, value.into()),
            Err(_) => Err(JournalError::config(
                option_key(other),
                "not an S3 option: use object_store's S3 keys (aws_endpoint, aws_region, \
                 aws_access_key_id, aws_secret_access_key, aws_allow_http, \
                 aws_virtual_hosted_style_request, aws_conditional_put, ...) or Alluxio's \
                 (aws.accessKeyId, aws.secretKey, alluxio.underfs.s3.endpoint, \
                 alluxio.underfs.s3.endpoint.region, alluxio.underfs.s3.disable.dns.buckets)",
            )),
        },
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn builder(url: &str, options: &[S3Option]) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::from_env();
    // Copy-if-absent publishes checkpoints; S3 has no native copy with a
    // precondition, but completes a multipart copy only if the name is free.
    builder = builder.with_config(AmazonS3ConfigKey::CopyIfNotExists, "multipart");
    for o in options {
        builder = builder.with_config(o.key, o.value.clone());
    }
    // The URL names the bucket; options must not point the folder elsewhere.
    builder.with_url(url)
}

/// Opens the S3 store behind `url` (`s3://bucket/prefix` or `s3a://...`)
/// with `options` applied over the environment. Every option key must be
/// known and every value must parse, else `Config` naming
/// `alluxio.master.journal.ufs.option.<key>`.
pub fn open(
    url: &url::Url,
    options: &BTreeMap<String, String>,
) -> Result<(Arc<dyn ObjectStore>, Path), JournalError> {
    let mut translated = Vec::new();
    for (k, v) in options {
        translated.extend(translate(k, v)?);
    }
    let bucket = url.host_str().unwrap_or("");
    if bucket.is_empty() {
        return Err(JournalError::config(
            FOLDER_KEY,
            format!("{url} names no bucket; use s3://bucket/prefix"),
        ));
    }
    let root = Path::from(url.path().trim_matches('/'));
    let store = builder(url.as_str(), &translated)
        .build()
        .map_err(|whole| {
            // Name the key whose value does not parse, when one alone does not.
            for o in &translated {
                let alone = AmazonS3Builder::new()
                    .with_url(url.as_str())
                    .with_config(o.key, o.value.clone())
                    .build();
                if let Err(e) = alone {
                    return JournalError::config(
                        option_key(&o.given),
                        format!("{:?}: {e}", o.value),
                    );
                }
            }
            JournalError::config(FOLDER_KEY, format!("cannot open {url}: {whole}"))
        })?;
    Ok((Arc::new(store), root))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn alluxio_names_translate() {
        let t = |k: &str, v: &str| {
            translate(k, v)
                .unwrap()
                .into_iter()
                .map(|o| (o.key.as_ref().to_string(), o.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            t("alluxio.underfs.s3.endpoint", "http://127.0.0.1:9000"),
            vec![
                ("aws_endpoint".into(), "http://127.0.0.1:9000".into()),
                ("allow_http".into(), "true".into())
            ]
        );
        assert_eq!(
            t("alluxio.underfs.s3.endpoint", "s3.example.com"),
            vec![("aws_endpoint".into(), "https://s3.example.com".into())]
        );
        assert_eq!(
            t("alluxio.underfs.s3.disable.dns.buckets", "true"),
            vec![("aws_virtual_hosted_style_request".into(), "false".into())]
        );
        assert_eq!(
            t("aws.accessKeyId", "AK"),
            vec![("aws_access_key_id".into(), "AK".into())]
        );
        assert_eq!(
            t("AWS_REGION", "eu-west-1"),
            vec![("aws_region".into(), "eu-west-1".into())]
        );
    }

    #[test]
    fn bad_keys_and_values_name_the_key() {
        let key_of = |e: JournalError| match e {
            JournalError::Config { key, .. } => key,
            other => panic!("{other:?}"),
        };
        let e = open(&url("s3://bucket/j"), &opts(&[("aws_no_such_thing", "1")])).unwrap_err();
        assert_eq!(
            key_of(e),
            "alluxio.master.journal.ufs.option.aws_no_such_thing"
        );
        let e = open(
            &url("s3://bucket/j"),
            &opts(&[("alluxio.underfs.s3.disable.dns.buckets", "maybe")]),
        )
        .unwrap_err();
        assert_eq!(key_of(e), "alluxio.underfs.s3.disable.dns.buckets");
        let e = open(
            &url("s3://bucket/j"),
            &opts(&[("aws_allow_http", "perhaps"), ("aws_region", "x")]),
        )
        .unwrap_err();
        assert_eq!(
            key_of(e),
            "alluxio.master.journal.ufs.option.aws_allow_http"
        );
        for key in ["aws_region", "alluxio.underfs.s3.endpoint", "aws.secretKey"] {
            let e = open(&url("s3://bucket/j"), &opts(&[(key, " ")])).unwrap_err();
            assert_eq!(key_of(e), option_key(key));
        }
        let e = open(&url("s3:///j"), &opts(&[])).unwrap_err();
        assert_eq!(key_of(e), FOLDER_KEY);
    }

    #[test]
    fn a_good_configuration_opens_without_network() {
        let (_store, root) = open(
            &url("s3://bucket/some/prefix/"),
            &opts(&[
                ("alluxio.underfs.s3.endpoint", "http://127.0.0.1:1"),
                ("aws.accessKeyId", "a"),
                ("aws.secretKey", "b"),
                ("alluxio.underfs.s3.endpoint.region", "us-east-1"),
            ]),
        )
        .unwrap();
        assert_eq!(root.as_ref(), "some/prefix");
    }
}
