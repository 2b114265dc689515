//! Starting, stopping and restarting ZooKeeper JVMs (the launcher's
//! pieces, panicking on failure as tests want).

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use crate::launcher::{self, kill, spawn_jvm, ServerSpec};

/// A free TCP port on 127.0.0.1 (free when this returns).
pub fn free_port() -> u16 {
    launcher::free_port().unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

fn spawn(spec: &ServerSpec) -> Child {
    spawn_jvm(spec).unwrap_or_else(|e| panic!("{e} (./scripts/test-all.sh installs the package)"))
}

fn wait_serving(ports: &[u16], timeout: Duration, dir: &Path) {
    if let Err(e) = launcher::wait_serving(ports, timeout, dir) {
        panic!("{e}");
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
        self.child = Some(spawn(&self.spec));
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
        let children = specs.iter().map(|s| Some(spawn(s))).collect();
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
        self.children[i] = Some(spawn(&self.specs[i]));
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
