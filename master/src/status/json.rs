//! The JSON forms of the cluster view and of a health verdict: one
//! function each, used by `/api/v1/master/info`, `/api/v1/master/health`
//! and `primacy info report --json`, so their field names cannot drift
//! apart. The schema is documented in docs/operations.md; fields are only
//! ever added.

use serde_json::{json, Value};

use super::health::Health;
use super::state;
use crate::proto::rpc::{ClusterInfo, ClusterMaster, RoleChange, WorkerInfo};
use crate::rpc::wall_clock_ms;

/// `http://HOST:WEB_PORT/` for a master at RPC address `host:port`, or
/// `None` when its web port is unknown (0).
pub fn web_url(rpc_address: &str, web_port: u32) -> Option<String> {
    if web_port == 0 {
        return None;
    }
    let host = match rpc_address.rsplit_once(':') {
        Some((h, _)) => h,
        None => rpc_address,
    };
    Some(format!("http://{host}:{web_port}/"))
}

fn opt<T: Into<Value>>(present: bool, v: T) -> Value {
    if present {
        v.into()
    } else {
        Value::Null
    }
}

fn nonempty(s: &str) -> Value {
    opt(!s.is_empty(), s)
}

/// The cluster view as JSON (see docs/operations.md for every field).
pub fn cluster_json(c: &ClusterInfo) -> Value {
    let me = c.answered_by.clone().unwrap_or_default();
    let journal = me.journal.clone().unwrap_or_default();
    let primary = c.masters.iter().find(|m| m.address == c.primary_address);
    let primary_json = if c.primary_address.is_empty() {
        Value::Null
    } else {
        json!({
            "address": c.primary_address,
            "epoch": c.epoch,
            "since_ms": opt(c.primacy_since_ms > 0, c.primacy_since_ms),
            "web_url": primary.and_then(|p| web_url(&p.address, p.web_port)),
            "reachable": primary.is_some_and(|p| p.state != state::UNREACHABLE),
        })
    };
    let live = c.workers.iter().filter(|w| w.state == "LIVE").count();
    json!({
        "address": me.address,
        "role": me.role,
        "epoch": me.epoch,
        "web_port": me.web_port,
        "start_time_ms": me.start_time_ms,
        "uptime_ms": wall_clock_ms().saturating_sub(me.start_time_ms),
        "version": me.version,
        "primary": primary_json,
        "journal": {
            "type": c.journal_type,
            "election": c.election,
            "location": c.journal_location,
            "last_applied": journal.last_applied,
            "last_durable": journal.last_durable,
            "last_checkpoint": opt(journal.has_checkpoint, journal.last_checkpoint),
        },
        "masters": c.masters.iter().map(master_json).collect::<Vec<_>>(),
        "workers": {
            "live": live,
            "lost": c.workers.len() - live,
            "list": c.workers.iter().map(worker_json).collect::<Vec<_>>(),
        },
        "role_changes": c.role_changes.iter().map(change_json).collect::<Vec<_>>(),
        "collected_ms": c.collected_ms,
        "notes": c.notes,
    })
}

fn master_json(m: &ClusterMaster) -> Value {
    json!({
        "address": m.address,
        "state": m.state,
        "role": nonempty(&m.role),
        "epoch": m.epoch,
        "applied": opt(m.has_applied, m.applied),
        "lag": opt(m.has_lag, m.lag),
        "start_time_ms": opt(m.start_time_ms > 0, m.start_time_ms),
        "version": nonempty(&m.version),
        "web_url": web_url(&m.address, m.web_port),
        "journal_role": nonempty(&m.journal_role),
        "error": nonempty(&m.error),
        "self": m.is_self,
    })
}

fn worker_json(w: &WorkerInfo) -> Value {
    json!({
        "id": w.id,
        "address": w.address,
        "state": w.state,
        "blocks": w.block_count,
        "ms_since_heartbeat": w.ms_since_heartbeat,
        "capacity_bytes": w.capacity_bytes,
        "used_bytes": w.used_bytes,
    })
}

fn change_json(r: &RoleChange) -> Value {
    json!({
        "time_ms": r.time_ms,
        "role": r.role,
        "epoch": r.epoch,
        "reason": r.reason,
    })
}

/// A health verdict as JSON: `healthy`, `role`, `epoch`, `primary`
/// (address or null), `lag` (or null) and `reason`.
pub fn health_json(h: &Health) -> Value {
    json!({
        "healthy": h.healthy,
        "role": h.role,
        "epoch": h.epoch,
        "primary": nonempty(&h.primary_address),
        "lag": h.lag,
        "reason": h.reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_urls_use_the_rpc_host() {
        assert_eq!(
            web_url("10.0.0.1:19998", 19999).as_deref(),
            Some("http://10.0.0.1:19999/")
        );
        assert_eq!(
            web_url("[::1]:19998", 80).as_deref(),
            Some("http://[::1]:80/")
        );
        assert_eq!(web_url("h:1", 0), None);
    }

    #[test]
    fn absent_facts_are_null_not_zero() {
        let c = ClusterInfo {
            masters: vec![ClusterMaster {
                address: "m2:1".into(),
                state: "UNREACHABLE".into(),
                error: "refused".into(),
                ..ClusterMaster::default()
            }],
            ..ClusterInfo::default()
        };
        let v = cluster_json(&c);
        assert_eq!(v["primary"], Value::Null);
        let m = &v["masters"][0];
        assert_eq!(m["applied"], Value::Null);
        assert_eq!(m["lag"], Value::Null);
        assert_eq!(m["role"], Value::Null);
        assert_eq!(m["error"], "refused");
        assert_eq!(v["workers"]["live"], 0);
    }
}
