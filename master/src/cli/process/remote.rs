//! Running a singular `primacy process` action for one entry of
//! `conf/masters` or `conf/workers`: over ssh (the system client, batch
//! mode: it never asks for a password), or directly for `localhost`. The
//! action prints one JSON line, read back as a [`NodeReport`].

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::hosts::HostEntry;
use super::report::{NodeKind, NodeReport};

/// The environment variable with extra ssh options (`-p 2222 -i KEY -o
/// UserKnownHostsFile=F`), split as a shell would.
pub const SSH_OPTS_ENV: &str = "PRIMACY_SSH_OPTS";
/// The environment variable naming the `primacy` executable on the hosts
/// (default: the path of the one running, as installed on every host).
pub const REMOTE_BIN_ENV: &str = "PRIMACY_REMOTE_BIN";

/// Why an action on a host failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// ssh could not log in or run the command.
    #[error(
        "{host}: ssh failed ({detail}); check that `ssh -o BatchMode=yes {ssh_opts}{host} true` \
         works without a password (key, known_hosts, {SSH_OPTS_ENV})"
    )]
    Ssh {
        /// The host as listed.
        host: String,
        /// ssh's own message.
        detail: String,
        /// The extra options in use, for the suggested command.
        ssh_opts: String,
    },
    /// `primacy process` ran on the host and failed.
    #[error("{host}: {action} failed (exit {code}): {message}")]
    Action {
        /// The host as listed.
        host: String,
        /// `start master`, ...
        action: String,
        /// Its exit code.
        code: i32,
        /// Its error message.
        message: String,
    },
    /// The command could not be run here at all.
    #[error("{host}: cannot run {program}: {source}")]
    Spawn {
        /// The host as listed.
        host: String,
        /// `ssh` or `primacy`.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No answer within the bound (the process was killed).
    #[error("{host}: {action} gave no answer within {bound:?}")]
    Timeout {
        /// The host as listed.
        host: String,
        /// `start master`, ...
        action: String,
        /// The bound.
        bound: Duration,
    },
}

/// How the plural forms reach the hosts.
#[derive(Debug, Clone)]
pub struct Runner {
    /// The `primacy` executable on the hosts.
    pub program: PathBuf,
    /// Extra ssh arguments from [`SSH_OPTS_ENV`].
    pub ssh_opts: Vec<String>,
    /// `-D` flags passed on to every action.
    pub defines: Vec<(String, String)>,
    /// The singular action's `--wait`.
    pub wait: Duration,
    /// The singular action's `--timeout`.
    pub timeout: Duration,
}

impl Runner {
    /// A runner for this executable and `$PRIMACY_SSH_OPTS`; an unbalanced
    /// quote in the options is an error naming the variable.
    pub fn from_env(
        defines: Vec<(String, String)>,
        wait: Duration,
        timeout: Duration,
    ) -> Result<Runner, String> {
        let program = match std::env::var_os(REMOTE_BIN_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => std::env::current_exe()
                .map_err(|e| format!("cannot find this executable's path: {e}"))?,
        };
        let ssh_opts = match std::env::var(SSH_OPTS_ENV) {
            Ok(text) => shlex::split(&text)
                .ok_or_else(|| format!("{SSH_OPTS_ENV}={text:?}: unbalanced quotes"))?,
            Err(_) => Vec::new(),
        };
        Ok(Runner {
            program,
            ssh_opts,
            defines,
            wait,
            timeout,
        })
    }

    /// The singular command line: `primacy process ACTION KIND --conf DIR
    /// --json --wait S --timeout S [-D k=v]...`.
    fn action_args(&self, action: &str, kind: NodeKind, conf: &Path) -> Vec<String> {
        let mut args = vec![
            "process".to_string(),
            action.to_string(),
            kind.word().to_string(),
            "--conf".to_string(),
            conf.display().to_string(),
            "--json".to_string(),
            "--wait".to_string(),
            format!("{}s", self.wait.as_secs()),
            "--timeout".to_string(),
            format!("{}s", self.timeout.as_secs()),
        ];
        for (k, v) in &self.defines {
            args.push("-D".into());
            args.push(format!("{k}={v}"));
        }
        args
    }

    /// Runs `action` (`start`, `stop`, `restart`, `status`) for the
    /// process of `kind` of `entry`, and returns its report.
    pub async fn run(
        &self,
        entry: &HostEntry,
        action: &str,
        kind: NodeKind,
    ) -> Result<NodeReport, RemoteError> {
        let args = self.action_args(action, kind, &entry.conf);
        let (mut cmd, program) = if entry.is_local() {
            let mut cmd = Command::new(&self.program);
            cmd.args(&args);
            (cmd, self.program.display().to_string())
        } else {
            let mut words = vec![self.program.display().to_string()];
            words.extend(args);
            let remote = shlex::try_join(words.iter().map(String::as_str)).map_err(|e| {
                RemoteError::Spawn {
                    host: entry.host.clone(),
                    program: "ssh".into(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
                }
            })?;
            let mut cmd = Command::new("ssh");
            cmd.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
                .args(&self.ssh_opts)
                .arg(&entry.host)
                .arg("--")
                .arg(remote);
            (cmd, "ssh".to_string())
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let what = format!("{action} {kind}");
        let bound = self.wait + self.timeout + Duration::from_secs(30);
        let child = cmd.spawn().map_err(|source| RemoteError::Spawn {
            host: entry.host.clone(),
            program,
            source,
        })?;
        let output = tokio::time::timeout(bound, child.wait_with_output())
            .await
            .map_err(|_| RemoteError::Timeout {
                host: entry.host.clone(),
                action: what.clone(),
                bound,
            })?
            .map_err(|source| RemoteError::Spawn {
                host: entry.host.clone(),
                program: "ssh".into(),
                source,
            })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let code = output.status.code().unwrap_or(-1);
        // ssh exits 255 on its own errors (refused, unknown host key, no
        // key accepted); anything else is the remote command's code.
        if code == 255 && !entry.is_local() {
            return Err(RemoteError::Ssh {
                host: entry.host.clone(),
                detail: last_line(&stderr)
                    .unwrap_or("exit 255 without a message")
                    .into(),
                ssh_opts: self
                    .ssh_opts
                    .iter()
                    .map(|o| format!("{} ", shlex::try_quote(o).unwrap_or_default()))
                    .collect(),
            });
        }
        let answer = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok());
        // A report is an answer whatever the exit code (`status` exits 1
        // for a process that is not running or not healthy); an error is
        // `{"error": ...}`, which is not a report.
        match answer.as_ref().and_then(NodeReport::from_json) {
            Some(report) => Ok(report),
            None => {
                let message = answer
                    .as_ref()
                    .and_then(|v| v["error"].as_str().map(str::to_string))
                    .or_else(|| last_line(&stderr).map(str::to_string))
                    .unwrap_or_else(|| {
                        "no message (is the same primacy binary installed at the same path there?)"
                            .into()
                    });
                Err(RemoteError::Action {
                    host: entry.host.clone(),
                    action: what,
                    code,
                    message,
                })
            }
        }
    }
}

/// The last non-empty line of `text`.
fn last_line(text: &str) -> Option<&str> {
    text.lines().rev().map(str::trim).find(|l| !l.is_empty())
}
