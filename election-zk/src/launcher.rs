//! Running a local ZooKeeper from the Debian package (feature `launcher`),
//! for examples, demos and tests: a child JVM on a free loopback port with
//! a fresh data directory, stopped when its handle is dropped.
//!
//! Not a production deployment: one standalone server, loopback only, a
//! 200 ms tick so short sessions (1-2 s) work, data in a temporary
//! directory that goes with the handle.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the Debian package `zookeeper` puts the server; its manifest names
/// the jars it needs.
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
/// A logging backend so ZooKeeper does not complain about a missing binding.
const SLF4J_SIMPLE: &str = "/usr/share/java/slf4j-simple.jar";

/// How long [`LocalZooKeeper::start`] waits for the server to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a local ZooKeeper could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The Debian package is not installed.
    #[error("{ZOOKEEPER_JAR} is missing: install the Debian package zookeeper (apt-get install zookeeper)")]
    NotInstalled,
    /// Preparing the data directory or configuration, or finding a port, failed.
    #[error("cannot prepare ZooKeeper ({what}): {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `java` could not be started.
    #[error("cannot start java for ZooKeeper (is a JRE installed?): {0}")]
    Spawn(#[source] std::io::Error),
    /// The server did not answer in time (or exited); the end of its log says why.
    #[error(
        "ZooKeeper on ports {ports:?} did not serve within {after:?}; the end of its log:\n{log}"
    )]
    NotServing {
        /// The client ports asked.
        ports: Vec<u16>,
        /// How long was waited.
        after: Duration,
        /// The last lines of the server's log.
        log: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LaunchError {
    let what = what.into();
    move |source| LaunchError::Io { what, source }
}

/// A free TCP port on 127.0.0.1 (free when this returns; another process
/// may take it before it is used).
pub fn free_port() -> std::io::Result<u16> {
    journal_core::ports::free_loopback_port()
}

/// Sends a four-letter word and returns the answer.
fn four_letter(port: u16, word: &str) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// One server's directory, client port and (in an ensemble) identity.
pub(crate) struct ServerSpec {
    pub dir: PathBuf,
    pub client_port: u16,
    pub myid: Option<u32>,
    pub peers: String,
}

fn write_config(spec: &ServerSpec) -> Result<PathBuf, LaunchError> {
    let data = spec.dir.join("data");
    std::fs::create_dir_all(&data).map_err(io(format!("create {}", data.display())))?;
    let mut cfg = format!(
        "tickTime=200\ninitLimit=20\nsyncLimit=10\nminSessionTimeout=400\nmaxSessionTimeout=20000\n\
         dataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
         4lw.commands.whitelist=ruok,srvr,stat,mntr,cons\n",
        data.display(),
        spec.client_port
    );
    if let Some(id) = spec.myid {
        std::fs::write(data.join("myid"), format!("{id}\n")).map_err(io("write myid"))?;
        cfg.push_str(&spec.peers);
    }
    let path = spec.dir.join("zoo.cfg");
    std::fs::write(&path, cfg).map_err(io(format!("write {}", path.display())))?;
    Ok(path)
}

/// The `java` arguments that run the server configured by `cfg`.
fn jvm_args(cfg: &Path) -> Vec<String> {
    [
        "-Xmx128m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-Dzookeeper.jmx.log4j.disable=true",
        "-cp",
        &format!("{ZOOKEEPER_JAR}:{SLF4J_SIMPLE}"),
        "org.apache.zookeeper.server.quorum.QuorumPeerMain",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([cfg.display().to_string()])
    .collect()
}

/// Prepares a standalone server in `dir` (its data directory and
/// `zoo.cfg`: loopback `port`, a 200 ms tick) and returns the `java`
/// arguments that run it, for callers that start the JVM themselves (e.g.
/// under their own process supervision). [`is_serving`] tells when it
/// answers.
pub fn prepare_standalone(dir: &Path, port: u16) -> Result<Vec<String>, LaunchError> {
    if !Path::new(ZOOKEEPER_JAR).exists() {
        return Err(LaunchError::NotInstalled);
    }
    let cfg = write_config(&ServerSpec {
        dir: dir.to_path_buf(),
        client_port: port,
        myid: None,
        peers: String::new(),
    })?;
    Ok(jvm_args(&cfg))
}

/// Whether a server on loopback `port` answers `srvr` as serving
/// (standalone, leader or follower). Blocks up to about 2 s.
pub fn is_serving(port: u16) -> bool {
    four_letter(port, "srvr").is_some_and(|answer| {
        answer.contains("Mode: standalone")
            || answer.contains("Mode: leader")
            || answer.contains("Mode: follower")
    })
}

/// Starts the JVM of `spec` (not waiting for it to serve).
///
/// The child gets SIGKILL when the *thread* that spawned it exits
/// (`PR_SET_PDEATHSIG`), so a crashed or killed parent never leaves a JVM
/// behind; spawn from a thread that lives as long as the server should.
pub(crate) fn spawn_jvm(spec: &ServerSpec) -> Result<Child, LaunchError> {
    if !Path::new(ZOOKEEPER_JAR).exists() {
        return Err(LaunchError::NotInstalled);
    }
    let cfg = write_config(spec)?;
    let log = std::fs::File::create(spec.dir.join("zookeeper.log"))
        .map_err(io("create zookeeper.log"))?;
    let log2 = log.try_clone().map_err(io("open zookeeper.log"))?;
    let mut cmd = Command::new("java");
    cmd.args(jvm_args(&cfg))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGKILL
    // the JVM when the thread that spawned it exits.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn().map_err(LaunchError::Spawn)
}

/// Kills and reaps `child`, if any.
pub(crate) fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Waits until one of `ports` answers as a serving server (standalone,
/// leader or follower), or `timeout` passes.
pub(crate) fn wait_serving(
    ports: &[u16],
    timeout: Duration,
    dir: &Path,
) -> Result<(), LaunchError> {
    let started = Instant::now();
    loop {
        let serving = ports.iter().any(|p| is_serving(*p));
        if serving {
            return Ok(());
        }
        if started.elapsed() > timeout {
            let log = std::fs::read_to_string(dir.join("zookeeper.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            return Err(LaunchError::NotServing {
                ports: ports.to_vec(),
                after: timeout,
                log: lines[lines.len().saturating_sub(40)..].join("\n"),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A standalone ZooKeeper server on 127.0.0.1, killed (and its data
/// removed) when dropped or [`LocalZooKeeper::stop`]ped, and also when the
/// thread that started it exits (see [`LocalZooKeeper::start`]).
pub struct LocalZooKeeper {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl LocalZooKeeper {
    /// Starts a server on a free loopback port and returns once it serves
    /// (at most [`START_TIMEOUT`]).
    ///
    /// Call it from a thread that outlives the server, e.g. `main` before
    /// a Tokio runtime starts: the JVM is killed when that thread exits, so
    /// a crashed program leaves no ZooKeeper behind, but a short-lived
    /// thread (Tokio's blocking pool) would take the server with it.
    pub fn start() -> Result<LocalZooKeeper, LaunchError> {
        let dir = tempfile::tempdir().map_err(io("create a temporary directory"))?;
        let port = free_port().map_err(io("find a free loopback port"))?;
        let spec = ServerSpec {
            dir: dir.path().to_path_buf(),
            client_port: port,
            myid: None,
            peers: String::new(),
        };
        let mut server = LocalZooKeeper {
            child: Some(spawn_jvm(&spec)?),
            port,
            dir,
        };
        if let Err(e) = wait_serving(&[port], START_TIMEOUT, server.dir.path()) {
            server.stop();
            return Err(e);
        }
        Ok(server)
    }

    /// `127.0.0.1:port`, for `alluxio.zookeeper.address`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The JVM's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server and waits for it to exit. Idempotent.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }
}

impl Drop for LocalZooKeeper {
    fn drop(&mut self) {
        self.stop();
    }
}
