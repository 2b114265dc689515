//! Opening the object store behind a journal folder URL.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use journal_core::JournalError;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{local::LocalFileSystem, ObjectStore};
use parking_lot::Mutex;
use url::Url;

/// The configuration key the folder comes from, named in errors.
pub const FOLDER_KEY: &str = "alluxio.master.journal.folder";

/// The prefix of the configuration keys that become store options
/// (`alluxio.master.journal.ufs.option.<key>`).
pub const OPTION_PREFIX: &str = "alluxio.master.journal.ufs.option.";

/// The configuration key a store option came from, named in errors: the
/// Alluxio keys a master passes under their own names (`aws.accessKeyId`,
/// `s3a.secretKey`, `alluxio.underfs.s3.endpoint`, ...) are named as they
/// are; any other option as `alluxio.master.journal.ufs.option.<key>`.
pub fn option_key(key: &str) -> String {
    if ["aws.", "s3a.", "alluxio."]
        .iter()
        .any(|p| key.starts_with(p))
    {
        key.to_string()
    } else {
        format!("{OPTION_PREFIX}{key}")
    }
}

/// `url` with any `user:password@` part of its authority replaced by
/// `***@`, for messages and status output: Hadoop once accepted
/// `s3a://KEY:SECRET@bucket`, and an operator copying such a URL must not
/// see the secret echoed into logs, errors or `/api/v1/master/info`.
/// Anything that has no `scheme://authority` form is returned unchanged.
pub fn redact_url(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &rest[at..]),
        None => url.to_string(),
    }
}

/// True when `url` carries credentials in its authority (`user@` or
/// `user:password@`); see [`redact_url`].
pub fn has_url_credentials(url: &str) -> bool {
    redact_url(url) != url
}

/// A journal folder: the store and the path of the folder inside it.
#[derive(Debug, Clone)]
pub struct Folder {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// The folder inside the store.
    pub root: Path,
    /// The URL, for messages.
    pub url: String,
    /// How a finished checkpoint is published under its final name.
    pub publish: Publish,
    /// Whether the store's client leaves its own staging files
    /// (`.<name>.tmp.<n>`) visible in listings, which the journal then
    /// skips: true on HDFS only. Elsewhere such a name is a stray object
    /// and reported as damage like any other.
    pub client_staging: bool,
}

/// How a checkpoint uploaded to `tmp/` is published as
/// `checkpoints/<seq>`; either way a name already taken answers
/// `AlreadyExists` and nothing is overwritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// `copy_if_not_exists`: atomic on local files (a hard link), on S3 (a
    /// multipart copy completed with `If-None-Match: *`), GCS and Azure.
    Copy,
    /// `rename_if_not_exists`: HDFS, whose client copies by writing the
    /// target in place (a reader could see a partial checkpoint), while a
    /// rename without overwrite is one atomic NameNode operation.
    Rename,
}

fn memory_stores() -> &'static Mutex<HashMap<String, Arc<InMemory>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    STORES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Opens the folder named by `url`.
///
/// - `file:///abs/path` (also a bare absolute path): local disk, NFS or any
///   mounted file system, **with fsync on**: a write returns only after the
///   file and its directory entry are on stable storage. The directory is
///   created when `create` is set.
/// - `memory://name/prefix`: an in-process store shared by every journal of
///   this process that names the same `name` (tests, examples). Not durable.
/// - `s3://bucket/prefix` (also `s3a://`): with the `aws` feature, through
///   object_store's S3 client configured by the `AWS_*` environment
///   variables and store options (see [`open_folder_with`]).
/// - `hdfs://namenode:port/path` (also `viewfs://`, or a logical
///   nameservice): with the `hdfs` feature, through `hdfs-native`'s
///   object_store; options are Hadoop client settings
///   (`dfs.ha.namenodes.<ns>`, ...) over the `core-site.xml` and
///   `hdfs-site.xml` found through `HADOOP_CONF_DIR`.
/// - `gs://`, `az://`: through `object_store` when primacy was built with
///   the `gcp` or `azure` feature; credentials come from the usual
///   environment variables of each cloud.
///
/// Opening does no I/O on object stores; [`crate::probe::check_create_if_absent`]
/// is what proves the store usable.
pub fn open_folder(url: &str, create: bool) -> Result<Folder, JournalError> {
    open_folder_with(url, create, &BTreeMap::new())
}

/// [`open_folder`] with store options: object_store configuration keys (or
/// their Alluxio names for S3), the `<key>` part of
/// `alluxio.master.journal.ufs.option.<key>`. Options override the
/// environment. On S3 an unknown key or a value that does not parse is
/// `Config` naming the full option key; local and memory folders take no
/// options and refuse any.
pub fn open_folder_with(
    url: &str,
    create: bool,
    options: &BTreeMap<String, String>,
) -> Result<Folder, JournalError> {
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(JournalError::config(
            FOLDER_KEY,
            "the journal folder is empty",
        ));
    }
    if has_url_credentials(trimmed) {
        // Refused rather than ignored: object_store would silently drop
        // them, and the URL is logged and shown on the status page.
        return Err(JournalError::config(
            FOLDER_KEY,
            format!(
                "{:?} carries credentials in the URL, which would be shown in logs and status \
                 output; remove them and set aws.accessKeyId and aws.secretKey (or \
                 {OPTION_PREFIX}<option>) instead",
                redact_url(trimmed)
            ),
        ));
    }
    let parsed = if trimmed.starts_with('/') {
        Url::from_directory_path(trimmed).map_err(|_| {
            JournalError::config(
                FOLDER_KEY,
                format!("{trimmed:?} is not a usable absolute path"),
            )
        })?
    } else {
        Url::parse(trimmed).map_err(|e| {
            JournalError::config(
                FOLDER_KEY,
                format!("{trimmed:?} is not a URL ({e}); use file:///path, memory://name, s3://bucket/prefix, ..."),
            )
        })?
    };
    let scheme = parsed.scheme().to_string();
    if matches!(scheme.as_str(), "file" | "memory") {
        if let Some(key) = options.keys().next() {
            return Err(JournalError::config(
                option_key(key),
                format!("{scheme}:// journal folders take no store options"),
            ));
        }
    }
    match scheme.as_str() {
        "file" => {
            let path = parsed.to_file_path().map_err(|_| {
                JournalError::config(
                    FOLDER_KEY,
                    format!("{trimmed:?} is not a local absolute path"),
                )
            })?;
            if create {
                std::fs::create_dir_all(&path)
                    .map_err(|e| JournalError::io(path.display().to_string(), e))?;
            } else if !path.is_dir() {
                return Err(JournalError::Unformatted {
                    location: format!("{} (the directory does not exist)", path.display()),
                });
            }
            let fs = LocalFileSystem::new_with_prefix(&path)
                .map_err(|e| JournalError::io(path.display().to_string(), e))?
                .with_fsync(true);
            Ok(Folder {
                store: Arc::new(fs),
                root: Path::default(),
                url: format!("file://{}", path.display()),
                publish: Publish::Copy,
                client_staging: false,
            })
        }
        "memory" => {
            let name = parsed.host_str().unwrap_or("").to_string();
            let store = memory_stores()
                .lock()
                .entry(name)
                .or_insert_with(|| Arc::new(InMemory::new()))
                .clone();
            let root = Path::from(parsed.path().trim_matches('/'));
            Ok(Folder {
                store,
                root,
                url: trimmed.trim_end_matches('/').to_string(),
                publish: Publish::Copy,
                client_staging: false,
            })
        }
        #[cfg(feature = "hdfs")]
        "hdfs" | "viewfs" => {
            let (store, root) = crate::hdfs::open(&parsed, options)?;
            Ok(Folder {
                store,
                root,
                url: trimmed.trim_end_matches('/').to_string(),
                publish: Publish::Rename,
                client_staging: true,
            })
        }
        #[cfg(feature = "aws")]
        "s3" | "s3a" => {
            let (store, root) = crate::s3::open(&parsed, options)?;
            Ok(Folder {
                store,
                root,
                url: trimmed.trim_end_matches('/').to_string(),
                publish: Publish::Copy,
                client_staging: false,
            })
        }
        other => {
            let env = std::env::vars();
            let given = options.iter().map(|(k, v)| (k.clone(), v.clone()));
            let (store, root) = object_store::parse_url_opts(&parsed, env.chain(given)).map_err(|e| {
                JournalError::config(
                    FOLDER_KEY,
                    format!(
                        "cannot open {trimmed:?} (scheme {other}): {e}; cloud stores need primacy built with the aws, gcp or azure feature"
                    ),
                )
            })?;
            Ok(Folder {
                store: Arc::from(store),
                root,
                url: trimmed.trim_end_matches('/').to_string(),
                publish: Publish::Copy,
                client_staging: false,
            })
        }
    }
}

/// Reads a whole object; `Ok(None)` when it does not exist. `name` is the
/// object's description used in errors.
pub async fn read_object(
    folder: &Folder,
    path: &Path,
    name: &str,
) -> Result<Option<bytes::Bytes>, JournalError> {
    use object_store::ObjectStoreExt;
    match folder.store.get(path).await {
        Ok(r) => Ok(Some(
            r.bytes().await.map_err(|e| JournalError::io(name, e))?,
        )),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(JournalError::io(name, e)),
    }
}

/// Forgets the in-process `memory://name` store (tests use it to start clean).
pub fn drop_memory_store(name: &str) {
    memory_stores().lock().remove(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_are_config_errors_naming_the_key() {
        for bad in ["", "   ", "not a url", "ftp://host/x"] {
            match open_folder(bad, false) {
                Err(JournalError::Config { key, .. }) => assert_eq!(key, FOLDER_KEY),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn credentials_in_the_url_are_refused_and_never_echoed() {
        assert_eq!(
            redact_url("s3a://AK:SK@bucket/p?x#y"),
            "s3a://***@bucket/p?x#y"
        );
        assert_eq!(redact_url("s3://AK@bucket/p"), "s3://***@bucket/p");
        for clean in [
            "s3://bucket/a@b",
            "file:///data/a@b",
            "/data/a@b",
            "memory://x/y",
        ] {
            assert_eq!(redact_url(clean), clean);
        }
        for url in [
            "s3://AKIDLEAK:SECRETLEAK@bucket/j",
            "s3a://AKIDLEAK:SECRETLEAK@bucket/j",
            "memory://AKIDLEAK:SECRETLEAK@x/j",
            "ftp://AKIDLEAK:SECRETLEAK@host/j",
        ] {
            match open_folder(url, false) {
                Err(e @ JournalError::Config { .. }) => {
                    let shown = format!("{e} {e:?}");
                    assert!(!shown.contains("LEAK"), "{shown}");
                    assert!(shown.contains("***@"), "{shown}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn missing_local_directory_is_unformatted() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let url = format!("file://{}", missing.display());
        assert!(matches!(
            open_folder(&url, false),
            Err(JournalError::Unformatted { .. })
        ));
        assert!(open_folder(&url, true).is_ok());
        assert!(missing.is_dir());
    }
}
