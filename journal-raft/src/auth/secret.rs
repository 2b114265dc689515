//! The cluster secret: where it is read from and the checks it must pass.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The environment variable that may hold the cluster secret itself (used
/// when `primacy.security.cluster.secret.file` is unset).
pub const SECRET_ENV: &str = "PRIMACY_SECURITY_CLUSTER_SECRET";

/// The shortest secret accepted, in bytes (after trimming whitespace).
pub const MIN_SECRET_BYTES: usize = 16;

/// Why a secret could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The secret file cannot be read.
    #[error("cannot read the cluster secret file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The secret file can be read by other users (like ssh, refused).
    #[error(
        "the cluster secret file {path} is accessible by other users (mode {mode:04o}); \
         it must be readable by its owner only: chmod 600 {path}"
    )]
    TooOpen {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The HMAC refused the key (HMAC takes keys of any length, so this
    /// does not happen; reported rather than panicking).
    #[error("the cluster secret from {source_name} is not a usable HMAC key")]
    BadKey {
        /// Where the secret came from.
        source_name: String,
    },
    /// The secret is too short to resist guessing.
    #[error("the cluster secret from {source_name} is {len} bytes; at least {MIN_SECRET_BYTES} are required (e.g. `head -c 32 /dev/urandom | base64`)")]
    TooShort {
        /// Where the secret came from.
        source_name: String,
        /// Its length after trimming.
        len: usize,
    },
}

/// A cluster secret: the HMAC key of every token. Its `Debug` never shows
/// the bytes.
///
/// Guarantees: holds at least [`MIN_SECRET_BYTES`] bytes; a secret read
/// from a file came from a file no other user can read or write.
#[derive(Clone)]
pub struct ClusterSecret {
    /// The HMAC keyed with the secret, cloned for every token.
    mac: Hmac<Sha256>,
    source: String,
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSecret")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl ClusterSecret {
    /// The secret in `bytes` (surrounding whitespace trimmed, so a trailing
    /// newline of a file or variable does not matter). `source` names where
    /// it came from, for messages.
    pub fn from_bytes(bytes: &[u8], source: impl Into<String>) -> Result<Self, AuthError> {
        let source = source.into();
        let key = bytes.trim_ascii().to_vec();
        if key.len() < MIN_SECRET_BYTES {
            return Err(AuthError::TooShort {
                source_name: source,
                len: key.len(),
            });
        }
        let mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| AuthError::BadKey {
            source_name: source.clone(),
        })?;
        Ok(ClusterSecret { mac, source })
    }

    /// The secret in the file at `path`. Refuses a file that users other
    /// than its owner may read or write (any group or other permission
    /// bit), as ssh does for private keys.
    pub fn from_file(path: &Path) -> Result<Self, AuthError> {
        let shown = path.display().to_string();
        let read = |source| AuthError::Read {
            path: shown.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(AuthError::TooOpen { path: shown, mode });
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let bytes = std::fs::read(path).map_err(read)?;
        Self::from_bytes(&bytes, format!("file {shown}"))
    }

    /// The secret in [`SECRET_ENV`] of `env`, if set (`env` is a lookup so
    /// tests need not touch the process environment).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, AuthError> {
        env(SECRET_ENV)
            .map(|v| Self::from_bytes(v.as_bytes(), format!("environment variable {SECRET_ENV}")))
            .transpose()
    }

    /// A new random secret as text: 32 bytes from `rand`'s thread
    /// generator (a CSPRNG seeded by the operating system), hex-encoded.
    pub fn generate_text() -> String {
        rand::random::<[u8; 32]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Where the secret came from (`file /etc/primacy/secret`, ...).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when both hold the same key (compared in constant time).
    pub(crate) fn mac_eq(&self, other: &ClusterSecret) -> bool {
        let mut m = self.mac();
        m.update(b"primacy-secret-compare");
        let mut o = other.mac();
        o.update(b"primacy-secret-compare");
        m.verify_slice(&o.finalize().into_bytes()).is_ok()
    }

    /// A fresh HMAC keyed with the secret.
    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        self.mac.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn file_permissions_and_length() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret");
        std::fs::write(&p, "0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = ClusterSecret::from_file(&p).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            ClusterSecret::from_file(&p),
            Err(AuthError::TooOpen { .. })
        ));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = ClusterSecret::from_file(&p).unwrap();
        let same = ClusterSecret::from_bytes(b"0123456789abcdef0123", "test").unwrap();
        assert!(s.mac_eq(&same));
        let other = ClusterSecret::from_bytes(b"0123456789abcdef0124", "test").unwrap();
        assert!(!s.mac_eq(&other));
        assert!(!format!("{s:?}").contains("0123456789"));

        std::fs::write(&p, "short\n").unwrap();
        assert!(matches!(
            ClusterSecret::from_file(&p),
            Err(AuthError::TooShort { len: 5, .. })
        ));
        let missing = ClusterSecret::from_file(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, AuthError::Read { .. }));
    }

    #[test]
    fn environment() {
        assert!(ClusterSecret::from_env(|_| None).unwrap().is_none());
        let s = ClusterSecret::from_env(|k| (k == SECRET_ENV).then(|| "x".repeat(20)))
            .unwrap()
            .unwrap();
        assert!(s.source().contains(SECRET_ENV));
        assert!(ClusterSecret::from_env(|_| Some("x".into())).is_err());
    }
}
