//! What a singular `primacy process` action reports about its process,
//! as a line a person reads and as the JSON line the plural forms read
//! back from each host (over ssh or locally).

use std::fmt;

use serde_json::{json, Value};

/// Which process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// `primacy master`.
    Master,
    /// `primacy worker`.
    Worker,
}

impl NodeKind {
    /// The subcommand that runs it, also the stem of its pid and log files.
    pub fn word(self) -> &'static str {
        match self {
            NodeKind::Master => "master",
            NodeKind::Worker => "worker",
        }
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// One process after an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    /// Master or worker.
    pub kind: NodeKind,
    /// The address it serves on (`host:port`).
    pub address: String,
    /// `started`, `already running`, `running`, `stopped`, `killed`,
    /// `not running`.
    pub state: String,
    /// Its pid, when it runs or just stopped.
    pub pid: Option<u32>,
    /// A master's role from its health endpoint.
    pub role: Option<String>,
    /// Whether it can serve (a master's health verdict; a worker recently heard from by the primary).
    pub healthy: bool,
    /// A standby's entries behind the primary, when known.
    pub lag: Option<u64>,
    /// Its log file.
    pub log: String,
    /// More: the health reason, how long a stop took.
    pub detail: String,
}

impl NodeReport {
    /// The report as one JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind.word(),
            "address": self.address,
            "state": self.state,
            "pid": self.pid,
            "role": self.role,
            "healthy": self.healthy,
            "lag": self.lag,
            "log": self.log,
            "detail": self.detail,
        })
    }

    /// Reads back [`NodeReport::to_json`]'s object; `None` if `v` is not one.
    pub fn from_json(v: &Value) -> Option<NodeReport> {
        let kind = match v["kind"].as_str()? {
            "master" => NodeKind::Master,
            "worker" => NodeKind::Worker,
            _ => return None,
        };
        Some(NodeReport {
            kind,
            address: v["address"].as_str()?.to_string(),
            state: v["state"].as_str()?.to_string(),
            pid: v["pid"].as_u64().and_then(|p| u32::try_from(p).ok()),
            role: v["role"].as_str().map(str::to_string),
            healthy: v["healthy"].as_bool().unwrap_or(false),
            lag: v["lag"].as_u64(),
            log: v["log"].as_str().unwrap_or("").to_string(),
            detail: v["detail"].as_str().unwrap_or("").to_string(),
        })
    }

    /// The role column: the master's role, `-` for a worker or a master
    /// that did not say.
    pub fn role_cell(&self) -> String {
        match (&self.role, self.kind) {
            (Some(role), _) => role.clone(),
            (None, NodeKind::Worker) if self.pid.is_some() && self.healthy => "LIVE".into(),
            _ => "-".into(),
        }
    }

    /// One line for a person: `master 127.0.0.1:19998 started STANDBY pid
    /// 42 log /x/master.log`.
    pub fn line(&self) -> String {
        let mut s = format!("{} {} {}", self.kind, self.address, self.state);
        if self.role.is_some() || (self.kind == NodeKind::Worker && self.healthy) {
            s.push_str(&format!(" {}", self.role_cell()));
        }
        if let Some(pid) = self.pid {
            s.push_str(&format!(" pid {pid}"));
        }
        if !self.detail.is_empty() {
            s.push_str(&format!(" ({})", self.detail));
        }
        if !self.log.is_empty() {
            s.push_str(&format!(" log {}", self.log));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_survive_json() {
        let r = NodeReport {
            kind: NodeKind::Master,
            address: "m1:19998".into(),
            state: "started".into(),
            pid: Some(42),
            role: Some("STANDBY".into()),
            healthy: true,
            lag: Some(0),
            log: "/w/logs/master.log".into(),
            detail: String::new(),
        };
        assert_eq!(NodeReport::from_json(&r.to_json()), Some(r.clone()));
        assert_eq!(
            r.line(),
            "master m1:19998 started STANDBY pid 42 log /w/logs/master.log"
        );
        assert_eq!(NodeReport::from_json(&json!({"kind": "x"})), None);
        assert_eq!(NodeReport::from_json(&json!("garbage")), None);
    }
}
