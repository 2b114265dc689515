//! The error of a metadata operation: a code a program can branch on and a
//! message a person can act on (it names the path and the rule).

use super::path::{PathError, Shown};
use super::proto::{ErrorCode, FsError};

/// A refused operation or query. Carried to clients as [`FsError`] inside an
/// `FsResult`; the same entry gives the same error on every master.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct MetaError {
    /// What kind of refusal.
    pub code: ErrorCode,
    /// Which path and which rule.
    pub message: String,
}

impl MetaError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        MetaError {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(path: &str, what: &str) -> Self {
        Self::new(
            ErrorCode::NotFound,
            format!("{} does not exist{what}", Shown::new(path)),
        )
    }

    pub(crate) fn exists(path: &str, what: &str) -> Self {
        Self::new(
            ErrorCode::AlreadyExists,
            format!("{} already exists{what}", Shown::new(path)),
        )
    }

    pub(crate) fn not_a_directory(path: &str, what: &str) -> Self {
        Self::new(
            ErrorCode::NotADirectory,
            format!("{} is a file, not a directory{what}", Shown::new(path)),
        )
    }

    pub(crate) fn is_a_directory(path: &str, what: &str) -> Self {
        Self::new(
            ErrorCode::IsADirectory,
            format!("{} is a directory{what}", Shown::new(path)),
        )
    }

    pub(crate) fn invalid(message: String) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
}

impl From<PathError> for MetaError {
    fn from(e: PathError) -> Self {
        MetaError::new(ErrorCode::InvalidPath, e.to_string())
    }
}

impl From<MetaError> for FsError {
    fn from(e: MetaError) -> Self {
        FsError {
            code: e.code as i32,
            message: e.message,
        }
    }
}

impl From<FsError> for MetaError {
    /// An unknown code number (from a newer peer) becomes `Unspecified`,
    /// keeping the message.
    fn from(e: FsError) -> Self {
        MetaError {
            code: ErrorCode::try_from(e.code).unwrap_or(ErrorCode::Unspecified),
            message: e.message,
        }
    }
}
