//! Starting, stopping and restarting ZooKeeper JVMs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the Debian package puts ZooKeeper; its manifest names the jars it needs.
const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";
/// A logging backend so ZooKeeper does not complain about a missing binding.
const SLF4J_SIMPLE: &str = "/usr/share/java/slf4j-simple.jar";

/// A free TCP port on 127.0.0.1 (free when this returns).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
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

struct ServerSpec {
    dir: PathBuf,
    client_port: u16,
    myid: Option<u32>,
    peers: String,
}

fn write_config(spec: &ServerSpec) -> PathBuf {
    let data = spec.dir.join("data");
    std::fs::create_dir_all(&data).unwrap_or_else(|e| panic!("create {}: {e}", data.display()));
    let mut cfg = format!(
        "tickTime=200\ninitLimit=20\nsyncLimit=10\nminSessionTimeout=400\nmaxSessionTimeout=20000\n\
         dataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
         4lw.commands.whitelist=ruok,srvr,stat,mntr,cons\n",
        data.display(),
        spec.client_port
    );
    if let Some(id) = spec.myid {
        std::fs::write(data.join("myid"), format!("{id}\n"))
            .unwrap_or_else(|e| panic!("myid: {e}"));
        cfg.push_str(&spec.peers);
    }
    let path = spec.dir.join("zoo.cfg");
    std::fs::write(&path, cfg).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

fn spawn_jvm(spec: &ServerSpec) -> Child {
    assert!(
        Path::new(ZK_JAR).exists(),
        "{ZK_JAR} is missing: install the Debian package zookeeper (./scripts/test-all.sh does)"
    );
    let cfg = write_config(spec);
    let log = std::fs::File::create(spec.dir.join("zookeeper.log"))
        .unwrap_or_else(|e| panic!("log: {e}"));
    let log2 = log.try_clone().unwrap_or_else(|e| panic!("log: {e}"));
    let mut cmd = Command::new("java");
    cmd.args([
        "-Xmx128m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-Dzookeeper.jmx.log4j.disable=true",
        "-cp",
        &format!("{ZK_JAR}:{SLF4J_SIMPLE}"),
        "org.apache.zookeeper.server.quorum.QuorumPeerMain",
    ])
    .arg(&cfg)
    .stdin(Stdio::null())
    .stdout(log)
    .stderr(log2);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGKILL
    // the JVM when the thread that spawned it exits, so no test leaves it behind.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start java for ZooKeeper: {e}"))
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// One standalone ZooKeeper server.
pub struct ZkServer {
    spec: ServerSpec,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl ZkServer {
    /// Starts a server on a free port and waits until it serves.
    pub fn start() -> ZkServer {
        Self::start_on(free_port())
    }

    /// Starts a server on `port` and waits until it serves.
    pub fn start_on(port: u16) -> ZkServer {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let spec = ServerSpec {
            dir: dir.path().to_path_buf(),
            client_port: port,
            myid: None,
            peers: String::new(),
        };
        let mut server = ZkServer {
            spec,
            child: None,
            _dir: dir,
        };
        server.restart();
        server
    }

    /// `127.0.0.1:port`, for `alluxio.zookeeper.address`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.spec.client_port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.spec.client_port
    }

    /// Kills the server (SIGKILL); its data directory is kept.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// (Re)starts the server on the same port and data, and waits until it serves.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Some(spawn_jvm(&self.spec));
        wait_serving(
            &[self.spec.client_port],
            Duration::from_secs(60),
            &self.spec.dir,
        );
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_serving(ports: &[u16], timeout: Duration, dir: &Path) {
    let started = Instant::now();
    loop {
        let serving = ports.iter().any(|p| {
            four_letter(*p, "srvr").is_some_and(|answer| {
                answer.contains("Mode: standalone")
                    || answer.contains("Mode: leader")
                    || answer.contains("Mode: follower")
            })
        });
        if serving {
            return;
        }
        if started.elapsed() > timeout {
            let log = std::fs::read_to_string(dir.join("zookeeper.log")).unwrap_or_default();
            panic!(
                "ZooKeeper on ports {ports:?} did not serve within {timeout:?}; its log:\n{log}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A 3-server (or n-server) ensemble on loopback.
pub struct ZkEnsemble {
    specs: Vec<ServerSpec>,
    children: Vec<Option<Child>>,
    _dir: tempfile::TempDir,
}

impl ZkEnsemble {
    /// Starts `n` servers and waits until a quorum serves.
    pub fn start(n: usize) -> ZkEnsemble {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut peers = String::new();
        let mut specs = Vec::new();
        for id in 1..=n {
            peers.push_str(&format!(
                "server.{id}=127.0.0.1:{}:{}\n",
                free_port(),
                free_port()
            ));
        }
        for id in 1..=n {
            specs.push(ServerSpec {
                dir: dir.path().join(format!("server{id}")),
                client_port: free_port(),
                myid: Some(id as u32),
                peers: peers.clone(),
            });
        }
        let children = specs.iter().map(|s| Some(spawn_jvm(s))).collect();
        let ensemble = ZkEnsemble {
            specs,
            children,
            _dir: dir,
        };
        ensemble.wait_quorum();
        ensemble
    }

    /// Comma-separated `host:port` of every server.
    pub fn address(&self) -> String {
        self.specs
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills server `i` (0-based).
    pub fn stop(&mut self, i: usize) {
        kill(&mut self.children[i]);
    }

    /// Restarts server `i` and waits until it serves again.
    pub fn restart(&mut self, i: usize) {
        self.stop(i);
        self.children[i] = Some(spawn_jvm(&self.specs[i]));
        wait_serving(
            &[self.specs[i].client_port],
            Duration::from_secs(60),
            &self.specs[i].dir,
        );
    }

    /// Waits until some server reports leader or follower.
    pub fn wait_quorum(&self) {
        let ports: Vec<u16> = self.specs.iter().map(|s| s.client_port).collect();
        wait_serving(&ports, Duration::from_secs(90), &self.specs[0].dir);
    }
}

impl Drop for ZkEnsemble {
    fn drop(&mut self) {
        for c in self.children.iter_mut() {
            kill(c);
        }
    }
}
