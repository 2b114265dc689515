//! Opening an `hdfs://namenode:port/path` journal folder (feature `hdfs`)
//! through `hdfs-native-object-store`, the object_store implementation of
//! the `hdfs-native` client (pure Rust, speaks the NameNode and DataNode
//! protocols; no JVM, no libhdfs).
//!
//! What the journal relies on, read from that client's source (0.17, on
//! `hdfs-native` 0.14):
//! - `put_opts` with `PutMode::Create` writes a staging file
//!   `.<name>.tmp.<n>` next to the target, closes it, then renames it onto
//!   the target **without overwrite**: one NameNode operation that fails if
//!   the target exists, so of two racing creates exactly one wins and the
//!   other gets `AlreadyExists` (after an early existence check, which only
//!   saves the upload).
//! - The staging files are visible in listings; the journal skips names of
//!   that form (see [`crate::layout::is_client_staging`]).
//! - `copy_if_not_exists` writes the target in place, so checkpoints are
//!   published with `rename_if_not_exists` instead
//!   ([`crate::store::Publish::Rename`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use hdfs_native_object_store::HdfsObjectStoreBuilder;
use journal_core::JournalError;
use object_store::path::Path;
use object_store::ObjectStore;

use crate::store::FOLDER_KEY;

/// Opens the HDFS store behind `url`; `options` are Hadoop client settings
/// over the configuration files found through `HADOOP_CONF_DIR`. The path
/// of the URL is the folder. Connecting happens at the first request.
pub fn open(
    url: &url::Url,
    options: &BTreeMap<String, String>,
) -> Result<(Arc<dyn ObjectStore>, Path), JournalError> {
    let authority = &url[..url::Position::BeforePath];
    let store = HdfsObjectStoreBuilder::new()
        .with_url(authority)
        .with_config(options.clone())
        .build()
        .map_err(|e| JournalError::config(FOLDER_KEY, format!("cannot open {url}: {e}")))?;
    let root = Path::from(url.path().trim_matches('/'));
    Ok((Arc::new(store), root))
}
