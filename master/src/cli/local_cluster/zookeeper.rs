//! A standalone ZooKeeper server for `--journal ufs-zk`: the Debian
//! package's jar run by `java` as a child of the launcher, on a loopback
//! port, with its data under the working directory.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::children::{ChildError, ChildSpec, Children};

/// Where the Debian package `zookeeper` installs the server.
pub const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";
/// A logging backend, used when present so ZooKeeper does not warn about a
/// missing binding.
const SLF4J_SIMPLE: &str = "/usr/share/java/slf4j-simple.jar";

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
    #[error("cannot prepare {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
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
/// server answers `srvr` as standalone.
pub async fn start(
    children: &mut Children,
    java: &Path,
    dir: &Path,
    log: &Path,
    port: u16,
    bound: Duration,
) -> Result<ZkServer, ZkError> {
    let data = dir.join("data");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ZkError::Io { path, source }
    };
    std::fs::create_dir_all(&data).map_err(io(&data))?;
    let cfg = format!(
        "tickTime=200\ninitLimit=20\nsyncLimit=10\nminSessionTimeout=400\n\
         maxSessionTimeout=20000\ndataDir={}\nclientPort={port}\n\
         clientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
         4lw.commands.whitelist=ruok,srvr,stat,mntr\n",
        data.display()
    );
    let cfg_path = dir.join("zoo.cfg");
    std::fs::write(&cfg_path, cfg).map_err(io(&cfg_path))?;
    let mut classpath = ZK_JAR.to_string();
    if Path::new(SLF4J_SIMPLE).is_file() {
        classpath.push(':');
        classpath.push_str(SLF4J_SIMPLE);
    }
    let args: Vec<String> = [
        "-Xmx128m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-Dzookeeper.jmx.log4j.disable=true",
        "-cp",
        &classpath,
        "org.apache.zookeeper.server.quorum.QuorumPeerMain",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([cfg_path.display().to_string()])
    .collect();
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
        let answer = tokio::task::spawn_blocking(move || four_letter(port, "srvr"))
            .await
            .ok()
            .flatten();
        if answer.is_some_and(|a| a.contains("Mode: standalone")) {
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

/// Sends a ZooKeeper four-letter word and returns the answer.
fn four_letter(port: u16, word: &str) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
