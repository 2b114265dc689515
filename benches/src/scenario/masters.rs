//! A deployment of real `primacy master` processes (the harness binary
//! re-executed as `bench primacy master`), formatted as `primacy format`
//! does, on any backend; and a client of it through `master::client`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use master::client::MasterClient;
use master::config::MasterConfig;

use crate::harness::procs::{self_exe, Proc};
use crate::scenario::append::Backend;

/// Running masters, killed when dropped.
pub struct Masters {
    /// Each master's process (None once killed).
    pub procs: Vec<Option<Proc>>,
    /// Each master's RPC address, `127.0.0.1:port`.
    pub addresses: Vec<String>,
    flags: Vec<Vec<String>>,
    dir: PathBuf,
    starts: u32,
}

/// Runs `bench primacy <args>` to completion (at most a minute).
fn run_primacy(args: &[String], log: &Path) -> Result<(), String> {
    let exe = self_exe().map_err(|e| e.to_string())?;
    let mut full = vec!["primacy".to_string()];
    full.extend_from_slice(args);
    let mut p = Proc::spawn("primacy", &exe, &full, log, false).map_err(|e| e.to_string())?;
    if !p.wait_exit(Duration::from_secs(60)) {
        return Err(format!("primacy {} did not finish in 60 s", args.join(" ")));
    }
    Ok(())
}

impl Masters {
    /// Formats and starts the masters of `backend` with journals under
    /// `dir` (ZooKeeper at `zookeeper` for UFS + ZooKeeper).
    pub fn start(backend: Backend, dir: &Path, zookeeper: Option<&str>) -> Result<Masters, String> {
        let members = backend.members(dir, zookeeper).map_err(|e| e.to_string())?;
        let mut flags = Vec::new();
        let mut addresses = Vec::new();
        for props in members {
            let mut props = props;
            let has = |k: &str, p: &[(String, String)]| p.iter().any(|(key, _)| key == k);
            if !has("alluxio.master.rpc.port", &props) {
                let port = journal_core::ports::free_loopback_port().map_err(|e| e.to_string())?;
                props.push(("alluxio.master.rpc.port".into(), port.to_string()));
                props.push(("alluxio.master.hostname".into(), "127.0.0.1".into()));
            }
            let web = journal_core::ports::free_loopback_port().map_err(|e| e.to_string())?;
            props.push(("alluxio.master.web.port".into(), web.to_string()));
            if let Some((_, port)) = props.iter().find(|(k, _)| k == "alluxio.master.rpc.port") {
                addresses.push(format!("127.0.0.1:{port}"));
            }
            flags.push(
                props
                    .into_iter()
                    .flat_map(|(k, v)| ["-D".to_string(), format!("{k}={v}")])
                    .collect::<Vec<_>>(),
            );
        }
        let formatted = match backend {
            Backend::Raft1 | Backend::Raft3 => &flags[..],
            _ => &flags[..1],
        };
        for (i, f) in formatted.iter().enumerate() {
            let mut args = vec!["format".to_string()];
            args.extend(f.iter().cloned());
            run_primacy(&args, &dir.join(format!("format-{i}.log")))?;
        }
        let mut masters = Masters {
            procs: Vec::new(),
            addresses,
            flags,
            dir: dir.to_path_buf(),
            starts: 0,
        };
        for i in 0..masters.flags.len() {
            masters.procs.push(None);
            masters.start_one(i)?;
        }
        Ok(masters)
    }

    /// (Re)starts master `i` with the flags it was created with.
    pub fn start_one(&mut self, i: usize) -> Result<(), String> {
        let exe = self_exe().map_err(|e| e.to_string())?;
        self.starts += 1;
        let mut args = vec!["primacy".to_string(), "master".to_string()];
        args.extend(self.flags[i].iter().cloned());
        let name = format!("m{}", i + 1);
        let log = self.dir.join(format!("{name}-{}.log", self.starts));
        let p = Proc::spawn(&name, &exe, &args, &log, false).map_err(|e| e.to_string())?;
        self.procs[i] = Some(p);
        Ok(())
    }

    /// A client configuration that finds the primary through the address
    /// list, retrying long enough to ride out a failover.
    pub fn client_config(&self) -> Result<MasterConfig, String> {
        // The schedule the peers' failover writers sleep too.
        let retry = crate::scenario::failover::retry_settings();
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        MasterConfig::from_pairs(&[
            ("alluxio.master.rpc.addresses", self.addresses.join(",")),
            (
                "alluxio.user.rpc.retry.max.duration",
                ms(retry.max_duration),
            ),
            ("alluxio.user.rpc.retry.base.sleep", ms(retry.base_sleep)),
            ("alluxio.user.rpc.retry.max.sleep", ms(retry.max_sleep)),
        ])
        .map_err(|e| e.to_string())
    }

    /// `n` clients (each its own connections and sessions).
    pub fn clients(&self, n: usize) -> Result<Vec<MasterClient>, String> {
        let cfg = self.client_config()?;
        (0..n.max(1))
            .map(|_| MasterClient::from_config(&cfg).map_err(|e| e.to_string()))
            .collect()
    }

    /// Waits until a master answers as primary; returns its index.
    pub async fn wait_primary(&mut self, bound: Duration) -> Result<usize, String> {
        let client = self.clients(1)?.remove(0);
        let started = Instant::now();
        loop {
            if let Ok(Ok(addr)) =
                tokio::time::timeout(Duration::from_secs(5), client.leader()).await
            {
                if let Some(i) = self.addresses.iter().position(|a| *a == addr) {
                    return Ok(i);
                }
            }
            if started.elapsed() > bound {
                return Err(format!("no primary within {bound:?}{}", self.tails()));
            }
            if self.procs.iter_mut().flatten().all(Proc::exited) {
                return Err(format!("every master exited{}", self.tails()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The end of every running master's log.
    pub fn tails(&self) -> String {
        self.procs
            .iter()
            .flatten()
            .map(|p| format!("\n--- {}:\n{}", p.name, p.log_tail(15)))
            .collect()
    }
}
