//! A standalone ZooKeeper server for `--journal ufs-zk`: the Debian
//! package's jar run by `java` as a child of the launcher, on a loopback
//! port, with its data under the working directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::children::{ChildError, ChildSpec, Children};

/// Where the Debian package `zookeeper` installs the server.
pub const ZK_JAR: &str = election_zk::launcher::ZOOKEEPER_JAR;

/// What to tell a user who lacks ZooKeeper.
pub const INSTALL_HINT: &str =
    "install the Debian package zookeeper (sudo apt-get install zookeeper)";

/// Why ZooKeeper could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// The jar or `java` is missing.
    #[error("{what} not found: {INSTALL_HINT}")]
    NotInstalled {
        /// What is missing.
        what: String,
    },
    /// The configuration or data directory cannot be written.
    #[error(transparent)]
    Prepare(election_zk::launcher::LaunchError),
    /// The JVM could not be started.
    #[error(transparent)]
    Start(#[from] ChildError),
    /// The server exited or did not answer in time.
    #[error("ZooKeeper did not start serving within {bound:?} (see {})", log.display())]
    NotServing {
        /// How long it was given.
        bound: Duration,
        /// Its log.
        log: PathBuf,
    },
}

/// `java` on the PATH, and the jar; the error names the package.
pub fn find_installation() -> Result<PathBuf, ZkError> {
    if !Path::new(ZK_JAR).is_file() {
        return Err(ZkError::NotInstalled {
            what: ZK_JAR.to_string(),
        });
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("java"))
        .find(|p| p.is_file())
        .ok_or_else(|| ZkError::NotInstalled {
            what: "java (on the PATH)".into(),
        })
}

/// A running ZooKeeper server (a child in [`Children`] named
/// `zookeeper`, stopped after the masters).
pub struct ZkServer {
    /// Its client port on 127.0.0.1.
    pub port: u16,
}

impl ZkServer {
    /// `127.0.0.1:port`, for `alluxio.zookeeper.address`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Writes a standalone configuration under `dir` (a 200 ms tick, so short
/// sessions are allowed), starts `java` and waits up to `bound` until the
/// server answers `srvr` as serving.
pub async fn start(
    children: &mut Children,
    java: &Path,
    dir: &Path,
    log: &Path,
    port: u16,
    bound: Duration,
) -> Result<ZkServer, ZkError> {
    let args = election_zk::launcher::prepare_standalone(dir, port).map_err(|e| match e {
        election_zk::launcher::LaunchError::NotInstalled => ZkError::NotInstalled {
            what: ZK_JAR.to_string(),
        },
        other => ZkError::Prepare(other),
    })?;
    children.start(&ChildSpec {
        name: "zookeeper",
        program: java,
        args: &args,
        env: &[],
        log,
        stop_last: true,
    })?;
    let deadline = Instant::now() + bound;
    loop {
        let serving = tokio::task::spawn_blocking(move || election_zk::launcher::is_serving(port))
            .await
            .unwrap_or(false);
        if serving {
            return Ok(ZkServer { port });
        }
        if children.exited("zookeeper").is_some() || Instant::now() >= deadline {
            return Err(ZkError::NotServing {
                bound,
                log: log.to_path_buf(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
