//! The start-up probe: proves that the store behind a journal folder honours
//! create-if-absent before the journal trusts it.
//!
//! Every guarantee of the UFS journal rests on one store property: of two
//! creates of the same name, exactly one succeeds. A store that silently
//! overwrites (an S3-compatible server ignoring `If-None-Match: *`, a
//! wrapper that maps `PutMode::Create` to a plain PUT) would let two
//! primaries fork the log without either noticing. So `format` and every
//! open create one probe object twice and refuse the folder unless the
//! second create fails with `AlreadyExists`.

use journal_core::JournalError;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::store::{Folder, FOLDER_KEY};

/// The name prefix of probe objects, under `<folder>/tmp/`.
pub const PROBE_PREFIX: &str = "create-probe-";

/// Whether `path` is a probe object of the folder rooted at `root` (one
/// left by a master killed between its two creates).
pub fn is_probe(root: &Path, path: &Path) -> bool {
    let tmp = root.clone().join("tmp");
    path.prefix_match(&tmp)
        .and_then(|mut rest| rest.next())
        .is_some_and(|part| part.as_ref().starts_with(PROBE_PREFIX))
}

fn advice(url: &str) -> String {
    format!(
        "the store behind {url} does not honour create-if-absent, which the UFS journal needs \
         to keep two primaries from forking the log; refusing to use it. For S3-compatible \
         servers: the server must reject a PUT with `If-None-Match: *` on an existing object \
         (412), and alluxio.master.journal.ufs.option.aws_conditional_put must be `etag` (the \
         default); on file systems: the folder must be on a local or NFS file system that \
         supports hard links"
    )
}

/// Creates `<folder>/tmp/create-probe-<uuid>` twice with create-if-absent
/// and removes it. `Ok` only when the first create succeeded and the second
/// answered `AlreadyExists`; a store that accepted the second create, or
/// that does not implement create-if-absent, is `Config` naming
/// `alluxio.master.journal.folder` and saying what to configure. A storage
/// failure is `Io`.
pub async fn check_create_if_absent(folder: &Folder) -> Result<(), JournalError> {
    let path = folder
        .root
        .clone()
        .join("tmp")
        .join(format!("{PROBE_PREFIX}{}", uuid::Uuid::new_v4()));
    let name = format!("{}/tmp/{}", folder.url, path.filename().unwrap_or_default());
    let create = || PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match folder
        .store
        .put_opts(&path, PutPayload::from_static(b"probe 1"), create())
        .await
    {
        Ok(_) => {}
        Err(
            e @ (object_store::Error::NotImplemented { .. }
            | object_store::Error::NotSupported { .. }),
        ) => {
            return Err(JournalError::config(
                FOLDER_KEY,
                format!("{} (the store answered: {e})", advice(&folder.url)),
            ))
        }
        Err(e) => return Err(JournalError::io(&name, e)),
    }
    let second = folder
        .store
        .put_opts(&path, PutPayload::from_static(b"probe 2"), create())
        .await;
    let cleaned = folder.store.delete(&path).await;
    let verdict = match second {
        Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
        Ok(_) => Err(JournalError::config(
            FOLDER_KEY,
            format!(
                "{} (a second create of {name} succeeded and overwrote the first)",
                advice(&folder.url)
            ),
        )),
        Err(e) => Err(JournalError::io(
            &name,
            format!("the second create of the probe object should have failed with AlreadyExists, it failed with: {e}"),
        )),
    };
    if let Err(e) = cleaned {
        // Harmless: probes are ignored by format and never listed by the
        // journal; worth a line for an operator cleaning the bucket.
        tracing::warn!(probe = %name, error = %e, "could not remove the create-if-absent probe object");
    }
    verdict?;
    tracing::debug!(folder = %folder.url, "the store honours create-if-absent");
    Ok(())
}
