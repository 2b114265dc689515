//! The security settings: the cluster secret and the two switches, and the
//! credentials every client of this configuration sends.

use std::path::Path;
use std::sync::Arc;

use journal_raft::auth::{ClientAuth, ClusterSecret, Realm, SECRET_ENV};

use super::error::ConfigError;
use super::registry as r;
use super::settings::MasterConfig;

/// `primacy.security.*`: where the cluster secret comes from and which
/// ports require it.
///
/// Guarantees (of a loaded [`MasterConfig`]): `secret` is set when
/// `secret_file` or the `PRIMACY_SECURITY_CLUSTER_SECRET` environment
/// variable is, and is set whenever `peer_auth` or `rpc_auth` is true.
#[derive(Debug, Clone)]
pub struct SecuritySettings {
    /// `primacy.security.cluster.secret.file`.
    pub secret_file: Option<String>,
    /// `primacy.security.authentication.peer.enabled`.
    pub peer_auth: bool,
    /// `primacy.security.authentication.rpc.enabled`.
    pub rpc_auth: bool,
    /// The loaded secret (its `Debug` does not show it).
    pub secret: Option<Arc<ClusterSecret>>,
}

impl MasterConfig {
    /// Reads the secret: the file when `primacy.security.cluster.secret.file`
    /// is set, else `env_secret` (the environment variable's value). A
    /// switch turned on without a secret is an error naming what to set.
    pub(super) fn load_secret(&mut self, env_secret: Option<&str>) -> Result<(), ConfigError> {
        let loaded = match (&self.security.secret_file, env_secret) {
            (Some(file), _) => Some(
                ClusterSecret::from_file(Path::new(file))
                    .map_err(|e| self.malformed(r::SECRET_FILE, e.to_string()))?,
            ),
            (None, Some(value)) => Some(
                ClusterSecret::from_bytes(
                    value.as_bytes(),
                    format!("environment variable {SECRET_ENV}"),
                )
                .map_err(|e| ConfigError::Missing {
                    key: r::SECRET_FILE.to_string(),
                    detail: e.to_string(),
                })?,
            ),
            (None, None) => None,
        };
        self.security.secret = loaded.map(Arc::new);
        self.check_security()
    }

    /// Refuses a switch turned on without a secret (the settings are public
    /// fields, so a server checks again before it opens a port: it never
    /// serves unauthenticated because the secret went missing).
    pub fn check_security(&self) -> Result<(), ConfigError> {
        if self.security.secret.is_none() {
            for (on, key) in [
                (self.security.peer_auth, r::PEER_AUTH),
                (self.security.rpc_auth, r::RPC_AUTH),
            ] {
                if on {
                    return Err(self.contradiction(
                        key,
                        format!(
                            "needs the cluster secret: set {} (a file readable by its owner only) \
                             or the environment variable {SECRET_ENV}",
                            r::SECRET_FILE
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The credentials this configuration's clients, workers, CLI and
    /// master-to-master calls send to RPC ports (none without a secret).
    pub fn rpc_credentials(&self) -> ClientAuth {
        ClientAuth::new(self.security.secret.clone(), Realm::Rpc)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn secret_sources_and_switches() {
        let cfg = MasterConfig::from_pairs::<&str, &str>(&[]).unwrap();
        assert!(cfg.security.secret.is_none() && !cfg.rpc_credentials().is_set());
        let mut edited = cfg.clone();
        edited.security.rpc_auth = true;
        assert!(
            edited.check_security().is_err(),
            "a switch without a secret"
        );

        let e = MasterConfig::from_pairs(&[(r::RPC_AUTH, "true")]).unwrap_err();
        assert!(e.to_string().contains(r::SECRET_FILE), "{e}");
        let e = MasterConfig::from_pairs(&[(r::PEER_AUTH, "true")]).unwrap_err();
        assert!(e.to_string().contains(r::PEER_AUTH), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "a-secret-of-enough-bytes\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o604)).unwrap();
        let path = file.display().to_string();
        let e = MasterConfig::from_pairs(&[(r::SECRET_FILE, path.as_str())]).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
        let cfg =
            MasterConfig::from_pairs(&[(r::SECRET_FILE, path.as_str()), (r::RPC_AUTH, "true")])
                .unwrap();
        assert!(cfg.rpc_credentials().is_set());
        assert!(!format!("{cfg:?}").contains("a-secret-of-enough-bytes"));
        let raft = MasterConfig::from_pairs(&[
            (r::SECRET_FILE, path.as_str()),
            (r::PEER_AUTH, "true"),
            (r::MASTER_HOSTNAME, "localhost"),
            (r::JOURNAL_FOLDER, "/tmp/j"),
        ])
        .unwrap()
        .raft_journal_config()
        .unwrap();
        assert!(raft.require_auth && raft.secret.is_some());
    }

    #[test]
    fn secret_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(crate::config::SITE_FILE), "").unwrap();
        let mut opts = crate::config::LoadOptions {
            conf_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        opts.env.insert(SECRET_ENV.into(), "x".repeat(24));
        let cfg = MasterConfig::load(&opts).unwrap();
        assert!(cfg.rpc_credentials().is_set());
        opts.env.insert(SECRET_ENV.into(), "short".into());
        let e = MasterConfig::load(&opts).unwrap_err();
        assert!(e.to_string().contains("at least 16"), "{e}");
    }
}
