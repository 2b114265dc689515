//! Which journal backend the configuration chooses (docs/configuration.md, "Backend choice"), and
//! the contradictions that are startup errors.

use std::fmt;

use super::error::ConfigError;
use super::load::Source;
use super::registry as r;
use super::settings::{JournalType, MasterConfig};

/// The journal backend a master runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded Raft journal.
    Embedded,
    /// The UFS journal with a ZooKeeper election.
    UfsZooKeeper,
    /// The UFS journal with this master as the only one.
    UfsSingle,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Embedded => "embedded journal (Raft)",
            Backend::UfsZooKeeper => "UFS journal with ZooKeeper",
            Backend::UfsSingle => "UFS journal, single master",
        })
    }
}

impl MasterConfig {
    /// The backend: `alluxio.master.journal.type` when set; otherwise
    /// EMBEDDED when `alluxio.master.embedded.journal.addresses` is set, UFS
    /// with ZooKeeper when `alluxio.zookeeper.enabled=true`, a single UFS
    /// master otherwise.
    ///
    /// Errors (naming key, value and source): the embedded journal with
    /// ZooKeeper enabled, with neither addresses nor hostname, with addresses
    /// but no hostname, with a list that lacks this master (unless
    /// `primacy.embedded.journal.join=true`), or with a non-local folder;
    /// ZooKeeper enabled without an address or a hostname; no journal folder
    /// and no `alluxio.work.dir`.
    pub fn backend(&self) -> Result<Backend, ConfigError> {
        let kind = match self.journal.kind {
            Some(k) => k,
            None if !self.embedded.addresses.is_empty() => JournalType::Embedded,
            None => JournalType::Ufs,
        };
        match kind {
            JournalType::Embedded => {
                self.check_embedded()?;
                Ok(Backend::Embedded)
            }
            JournalType::Ufs => self.check_ufs(),
        }
    }

    fn check_embedded(&self) -> Result<(), ConfigError> {
        let why = if self.journal.kind.is_some() {
            format!("{} is EMBEDDED", r::JOURNAL_TYPE)
        } else {
            format!(
                "{} is set, which chooses the embedded journal",
                r::EMBEDDED_ADDRESSES
            )
        };
        if self.zookeeper.enabled {
            // Refuse rather than pick one: the two elect leaders differently,
            // and a cluster where some masters use each would have two primaries.
            return Err(self.contradiction(
                r::ZK_ENABLED,
                format!(
                    "but {why}; the embedded journal elects its own leader and cannot use \
                     ZooKeeper. Set {}=false, or {}=UFS for the UFS journal with ZooKeeper",
                    r::ZK_ENABLED,
                    r::JOURNAL_TYPE
                ),
            ));
        }
        let Some(host) = &self.hostname else {
            if self.embedded.addresses.is_empty() {
                return Err(ConfigError::Missing {
                    key: r::EMBEDDED_ADDRESSES.to_string(),
                    detail: format!(
                        "the embedded journal needs its members: set it to every master's \
                         host:{} (or set {} alone for a single master)",
                        self.embedded.port,
                        r::MASTER_HOSTNAME
                    ),
                });
            }
            return Err(ConfigError::Missing {
                key: r::MASTER_HOSTNAME.to_string(),
                detail: format!(
                    "the embedded journal needs it to know which member of {} this master is",
                    r::EMBEDDED_ADDRESSES
                ),
            });
        };
        let own = format!("{host}:{}", self.embedded.port);
        let listed =
            self.embedded.addresses.is_empty() || self.embedded.addresses.iter().any(|a| a == &own);
        if !listed && !self.embedded.join {
            // A typo in the hostname would otherwise leave a master waiting
            // forever to be added; joining is an explicit choice.
            return Err(self.contradiction(
                r::EMBEDDED_ADDRESSES,
                format!(
                    "does not list this master, {own} ({} and {}). Fix the list or the hostname, \
                     or set {}=true to start this master as a new member that waits until \
                     `primacy journal quorum add` adds it",
                    r::MASTER_HOSTNAME,
                    r::EMBEDDED_PORT,
                    r::EMBEDDED_JOIN
                ),
            ));
        }
        let folder = self.journal_folder()?;
        if folder.contains("://") && !folder.starts_with("file://") {
            return Err(self.contradiction(
                r::JOURNAL_FOLDER,
                "is not a local directory; the embedded journal keeps its log on this master's \
                 own disk (file:///path or /path)",
            ));
        }
        Ok(())
    }

    fn check_ufs(&self) -> Result<Backend, ConfigError> {
        self.journal_folder()?;
        if !self.embedded.addresses.is_empty() {
            tracing::warn!(
                "{} is set but {} is UFS: the address list is ignored",
                r::EMBEDDED_ADDRESSES,
                r::JOURNAL_TYPE
            );
        }
        if !self.zookeeper.enabled {
            return Ok(Backend::UfsSingle);
        }
        if self.zookeeper.address.is_empty() {
            return Err(ConfigError::Missing {
                key: r::ZK_ADDRESS.to_string(),
                detail: format!(
                    "{}=true needs the ensemble, host:port[,host:port...]",
                    r::ZK_ENABLED
                ),
            });
        }
        if self.hostname.is_none() {
            // The primary advertises hostname:rpc.port in ZooKeeper; a
            // guessed `localhost` would send every client to itself.
            return Err(ConfigError::Missing {
                key: r::MASTER_HOSTNAME.to_string(),
                detail: "a master with ZooKeeper advertises hostname:rpc.port to clients and \
                         workers; set it to this master's host name"
                    .to_string(),
            });
        }
        Ok(Backend::UfsZooKeeper)
    }

    /// The journal folder: `alluxio.master.journal.folder`, else
    /// `${alluxio.work.dir}/journal`; an error naming the key when neither is set.
    /// A folder URL carrying credentials (`s3a://KEY:SECRET@bucket/...`) is
    /// `Malformed` with the credentials masked, before anything logs it.
    pub fn journal_folder(&self) -> Result<String, ConfigError> {
        let folder = self.journal.folder.as_deref().map(str::trim);
        if let Some(url) = folder.filter(|u| journal_ufs::store::has_url_credentials(u)) {
            let origin = self
                .properties()
                .effective(r::JOURNAL_FOLDER)
                .map_or(Source::Default, |s| s.source);
            return Err(ConfigError::Malformed {
                key: r::JOURNAL_FOLDER.to_string(),
                value: journal_ufs::store::redact_url(url),
                origin,
                detail: format!(
                    "carries credentials in the URL, which would be shown in logs and status \
                     output; remove them and set {} and {} instead",
                    r::AWS_ACCESS_KEY,
                    r::AWS_SECRET_KEY
                ),
            });
        }
        self.journal
            .folder
            .clone()
            .ok_or_else(|| ConfigError::Missing {
                key: r::JOURNAL_FOLDER.to_string(),
                detail: format!(
                    "set it (or {} for the default ${{{}}}/journal)",
                    r::WORK_DIR,
                    r::WORK_DIR
                ),
            })
    }
}
