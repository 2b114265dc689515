//! Building entries and reading results: what the RPC layer uses to propose
//! an operation and to understand the journal's answer.

use bytes::Bytes;
use prost::Message;

use super::error::MetaError;
use super::proto::{
    entry::Op, fs_result::Outcome, BlockInfo, CompleteFile, CreateFile, Delete, Deleted, Entry,
    ErrorCode, FileInfo, FsError, FsResult, Listing, Mkdir, Rename,
};

impl Entry {
    /// The op of `mkdir path` (`recursive`: `mkdir -p`).
    pub fn mkdir(path: impl Into<String>, recursive: bool) -> Op {
        Op::Mkdir(Mkdir {
            path: path.into(),
            recursive,
        })
    }

    /// The op creating an empty, incomplete file at `path`.
    pub fn create_file(path: impl Into<String>) -> Op {
        Op::CreateFile(CreateFile { path: path.into() })
    }

    /// The op completing the file at `path` with `blocks` as (block id, length).
    pub fn complete_file(path: impl Into<String>, blocks: &[(u64, u64)]) -> Op {
        Op::CompleteFile(CompleteFile {
            path: path.into(),
            blocks: blocks
                .iter()
                .map(|&(block_id, length)| BlockInfo { block_id, length })
                .collect(),
        })
    }

    /// The op deleting `path` (`recursive`: a non-empty directory too).
    pub fn delete(path: impl Into<String>, recursive: bool) -> Op {
        Op::Delete(Delete {
            path: path.into(),
            recursive,
        })
    }

    /// The op moving `src` to `dst`.
    pub fn rename(src: impl Into<String>, dst: impl Into<String>) -> Op {
        Op::Rename(Rename {
            src: src.into(),
            dst: dst.into(),
        })
    }
}

/// Encodes one journal entry: `op` requested by `client_id` as its request
/// `request_seq`, stamped `time_ms` by the primary. A retry must be encoded
/// with the same client id and seq (its time may differ) to apply once.
pub fn encode_entry(client_id: &[u8], request_seq: u64, time_ms: u64, op: Op) -> Bytes {
    Entry {
        client_id: Bytes::copy_from_slice(client_id),
        request_seq,
        time_ms,
        op: Some(op),
    }
    .encode_to_vec()
    .into()
}

/// Decodes the output of `apply` (or of a query sent over the wire). Bytes
/// that are not an `FsResult` decode to an `INTERNAL` error result (apply
/// never produces such bytes).
pub fn decode_result(bytes: Bytes) -> FsResult {
    FsResult::decode(bytes).unwrap_or_else(|e| {
        FsResult::error(MetaError::new(
            ErrorCode::Internal,
            format!("undecodable result: {e}"),
        ))
    })
}

impl FsResult {
    /// A failed result.
    pub fn error(e: MetaError) -> Self {
        FsResult {
            outcome: Some(Outcome::Error(FsError::from(e))),
        }
    }

    /// A successful result carrying an inode.
    pub fn info(info: FileInfo) -> Self {
        FsResult {
            outcome: Some(Outcome::Info(info)),
        }
    }

    /// A successful result carrying a directory listing.
    pub fn listing(entries: Vec<FileInfo>) -> Self {
        FsResult {
            outcome: Some(Outcome::Listing(Listing { entries })),
        }
    }

    /// A successful delete of `inodes` inodes.
    pub fn deleted(inodes: u64) -> Self {
        FsResult {
            outcome: Some(Outcome::Deleted(Deleted { inodes })),
        }
    }

    /// True when the result is not an error.
    pub fn is_ok(&self) -> bool {
        !matches!(self.outcome, Some(Outcome::Error(_)) | None)
    }

    /// The error, if the result is one (an empty result counts as
    /// `UNSPECIFIED`, since apply never returns one).
    pub fn err(&self) -> Option<MetaError> {
        match &self.outcome {
            Some(Outcome::Error(e)) => Some(MetaError::from(e.clone())),
            None => Some(MetaError::new(ErrorCode::Unspecified, "empty result")),
            Some(_) => None,
        }
    }

    /// The error code, or `None` on success.
    pub fn code(&self) -> Option<ErrorCode> {
        self.err().map(|e| e.code)
    }

    /// The inode carried by a successful mkdir, create, complete, rename or
    /// get status.
    pub fn into_info(self) -> Result<FileInfo, MetaError> {
        match self.outcome {
            Some(Outcome::Info(info)) => Ok(info),
            other => Err(unexpected(other, "an inode")),
        }
    }

    /// The entries carried by a successful list status.
    pub fn into_listing(self) -> Result<Vec<FileInfo>, MetaError> {
        match self.outcome {
            Some(Outcome::Listing(l)) => Ok(l.entries),
            other => Err(unexpected(other, "a listing")),
        }
    }
}

fn unexpected(outcome: Option<Outcome>, wanted: &str) -> MetaError {
    match outcome {
        Some(Outcome::Error(e)) => MetaError::from(e),
        _ => MetaError::new(
            ErrorCode::Internal,
            format!("the result does not carry {wanted}"),
        ),
    }
}

impl From<Result<FileInfo, MetaError>> for FsResult {
    fn from(r: Result<FileInfo, MetaError>) -> Self {
        r.map_or_else(FsResult::error, FsResult::info)
    }
}

impl From<Result<Vec<FileInfo>, MetaError>> for FsResult {
    fn from(r: Result<Vec<FileInfo>, MetaError>) -> Self {
        r.map_or_else(FsResult::error, FsResult::listing)
    }
}
