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

use crate::store::{Folder, Publish, FOLDER_KEY};

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
         (412), also when completing a multipart upload, and \
         alluxio.master.journal.ufs.option.aws_conditional_put must be `etag` and \
         aws_copy_if_not_exists `multipart` (the defaults); on file systems: the folder must be on a local or NFS file system that \
         supports hard links"
    )
}

/// Creates `<folder>/tmp/create-probe-<uuid>` twice with create-if-absent,
/// then publishes it onto a second probe object the way checkpoints are
/// published ([`crate::store::Publish`]), and removes both. `Ok` only when
/// the first create succeeded and the second create and the publish both
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
    // Checkpoints are published by another request than chunks (a
    // multipart copy on S3, a rename on HDFS), and a server may honour the
    // precondition on one and not the other; probe that path too, but only
    // when the plain create passed (else the objects may not be ours).
    let publish = match &second {
        Err(object_store::Error::AlreadyExists { .. }) => {
            Some(check_publish_if_absent(folder, &path).await)
        }
        _ => None,
    };
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
    if let Some(publish) = publish {
        publish?;
    }
    tracing::debug!(folder = %folder.url, "the store honours create-if-absent");
    Ok(())
}

/// Publishes `source` (an existing probe object) onto a second, existing
/// probe object with the folder's publish operation; `Ok` only when that
/// answers `AlreadyExists` and the target still holds its own bytes.
async fn check_publish_if_absent(folder: &Folder, source: &Path) -> Result<(), JournalError> {
    let target = folder
        .root
        .clone()
        .join("tmp")
        .join(format!("{PROBE_PREFIX}{}", uuid::Uuid::new_v4()));
    let name = format!(
        "{}/tmp/{}",
        folder.url,
        target.filename().unwrap_or_default()
    );
    let mine = PutPayload::from_static(b"probe target");
    let created = folder
        .store
        .put_opts(
            &target,
            mine,
            PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            },
        )
        .await;
    if let Err(e) = created {
        return Err(JournalError::io(&name, e));
    }
    let published = match folder.publish {
        Publish::Copy => folder.store.copy_if_not_exists(source, &target).await,
        Publish::Rename => folder.store.rename_if_not_exists(source, &target).await,
    };
    let after = crate::store::read_object(folder, &target, &name).await;
    let cleaned = folder.store.delete(&target).await;
    if let Err(e) = cleaned {
        tracing::warn!(probe = %name, error = %e, "could not remove the create-if-absent probe object");
    }
    let how = match folder.publish {
        Publish::Copy => "copy",
        Publish::Rename => "rename",
    };
    match published {
        Err(object_store::Error::AlreadyExists { .. }) => {}
        Ok(()) => {
            return Err(JournalError::config(
                FOLDER_KEY,
                format!(
                    "{} (a {how}-if-absent onto the existing {name} succeeded and overwrote it; \
                     checkpoints are published that way)",
                    advice(&folder.url)
                ),
            ))
        }
        Err(
            e @ (object_store::Error::NotImplemented { .. }
            | object_store::Error::NotSupported { .. }),
        ) => {
            return Err(JournalError::config(
                FOLDER_KEY,
                format!(
                    "{} (checkpoints are published by {how}-if-absent, and the store answered: \
                     {e})",
                    advice(&folder.url)
                ),
            ))
        }
        Err(e) => {
            return Err(JournalError::io(
                &name,
                format!("a {how}-if-absent onto the existing probe object should have failed with AlreadyExists, it failed with: {e}"),
            ))
        }
    }
    // A store may answer AlreadyExists and still have written the target.
    match after? {
        Some(bytes) if bytes.as_ref() == b"probe target" => Ok(()),
        _ => Err(JournalError::config(
            FOLDER_KEY,
            format!(
                "{} ({how}-if-absent answered AlreadyExists but changed {name}; checkpoints \
                 are published that way)",
                advice(&folder.url)
            ),
        )),
    }
}
