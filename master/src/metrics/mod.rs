//! The master's Prometheus metrics: one registry per master process,
//! served on `/metrics` (OpenMetrics text, `prometheus-client`).
//!
//! - The journal's counters and histograms ([`JournalMetrics`]), updated
//!   by the backend and by the `Instrumented` wrapper around it.
//! - Role changes, counted when they happen (`server`'s role task).
//! - RPC requests by method and status code, counted by [`RpcMetricsLayer`]
//!   around the gRPC server.
//! - Gauges of this master's state (role, epoch, applied and durable
//!   sequence, lag, workers), set from the live state right before each
//!   scrape ([`MasterMetrics::encode`]), so they are never stale.
//!
//! Every name carries the `primacy_` prefix; docs/operations.md lists them.

mod rpc_layer;

use std::sync::atomic::AtomicU64;

use journal_core::{JournalMetrics, Role};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::rpc::MasterState;
use crate::workers::WorkerState;

pub use rpc_layer::{grpc_code_name, method_label, RpcMetrics, RpcMetricsLayer};

/// The content type of [`MasterMetrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A master role, as a label value.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RoleValue {
    /// Serving.
    primary,
    /// Replaying the journal.
    standby,
}

/// Label set `{role="primary"|"standby"}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabel {
    /// The role.
    pub role: RoleValue,
}

/// Label set `{state="live"|"lost"}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerStateLabel {
    /// `live` or `lost`.
    pub state: String,
}

/// Label set `{method="Service/Method", code="OK"|...}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// `FileSystemMaster/Mutate`, ..., or `unknown` for any other path.
    pub method: String,
    /// The gRPC status code name (`OK`, `UNAVAILABLE`, ...).
    pub code: String,
}

/// Every metric of one master, and the registry that exposes them.
#[derive(Debug)]
pub struct MasterMetrics {
    registry: Registry,
    /// Handed to the journal backend (see `backend::open_journal_with`).
    pub journal: JournalMetrics,
    role_changes: Family<RoleLabel, Counter>,
    role: Family<RoleLabel, Gauge>,
    epoch: Gauge,
    last_applied: Gauge,
    last_durable: Gauge,
    lag: Gauge,
    rpc_requests: Family<RpcLabels, Counter>,
    workers: Family<WorkerStateLabel, Gauge>,
    uptime: Gauge<f64, AtomicU64>,
}

impl Default for MasterMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl MasterMetrics {
    /// A registry with every metric registered under the `primacy` prefix.
    pub fn new() -> MasterMetrics {
        let mut registry = Registry::with_prefix("primacy");
        let journal = JournalMetrics::default();
        journal.register(&mut registry);
        let m = MasterMetrics {
            journal,
            role_changes: Family::default(),
            role: Family::default(),
            epoch: Gauge::default(),
            last_applied: Gauge::default(),
            last_durable: Gauge::default(),
            lag: Gauge::default(),
            rpc_requests: Family::default(),
            workers: Family::default(),
            uptime: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "master_role_changes",
            "Role changes of this master, by the role it changed to",
            m.role_changes.clone(),
        );
        registry.register(
            "master_role",
            "This master's role: 1 for the current one, 0 for the other",
            m.role.clone(),
        );
        registry.register(
            "master_epoch",
            "Highest journal epoch (Raft term) this master has seen",
            m.epoch.clone(),
        );
        registry.register(
            "journal_last_applied_sequence",
            "Last journal sequence number applied to this master's state",
            m.last_applied.clone(),
        );
        registry.register(
            "journal_last_durable_sequence",
            "Last journal sequence number this master knows to be durable",
            m.last_durable.clone(),
        );
        registry.register(
            "master_lag_entries",
            "Entries this master is behind the primary's last applied sequence (0 on the primary, -1 when the primary could not be asked)",
            m.lag.clone(),
        );
        registry.register(
            "rpc_requests",
            "gRPC requests answered by this master, by method and status code",
            m.rpc_requests.clone(),
        );
        registry.register(
            "workers",
            "Workers in the primary's registry, by state (0 on a standby)",
            m.workers.clone(),
        );
        registry.register_with_unit(
            "master_uptime",
            "Time since this master process started",
            prometheus_client::registry::Unit::Seconds,
            m.uptime.clone(),
        );
        MasterMetrics { registry, ..m }
    }

    /// Counts a role change to `role`.
    pub fn role_changed(&self, role: Role) {
        self.role_changes
            .get_or_create(&RoleLabel {
                role: role_value(role),
            })
            .inc();
    }

    /// The layer that counts gRPC requests into this registry.
    pub fn rpc_layer(&self) -> RpcMetricsLayer {
        RpcMetricsLayer::new(self.rpc_requests.clone())
    }

    /// Sets the gauges from `state` (when the journal is open) and `lag`
    /// (`None`: the primary could not be asked), then encodes everything as
    /// OpenMetrics text ([`CONTENT_TYPE`]).
    pub fn encode(&self, state: Option<&MasterState>, lag: Option<u64>, uptime_ms: u64) -> String {
        self.uptime.set(uptime_ms as f64 / 1000.0);
        if let Some(state) = state {
            let role = *state.journal.role().borrow();
            let status = state.journal.status();
            for r in [RoleValue::primary, RoleValue::standby] {
                let current = i64::from(role_value(role) == r);
                self.role.get_or_create(&RoleLabel { role: r }).set(current);
            }
            self.epoch.set(clamp(status.epoch));
            self.last_applied.set(clamp(status.last_applied));
            self.last_durable.set(clamp(status.last_durable));
            self.lag.set(lag.map_or(-1, clamp));
            let registry = state.workers.lock();
            for s in [WorkerState::Live, WorkerState::Lost] {
                self.workers
                    .get_or_create(&WorkerStateLabel {
                        state: s.as_str().to_ascii_lowercase(),
                    })
                    .set(clamp(registry.count(s) as u64));
            }
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            // Writing into a String cannot fail; if the encoder ever does,
            // say so in the exposition instead of serving half of it.
            tracing::error!(error = %e, "encoding the metrics failed");
            return "# EOF\n".to_string();
        }
        text
    }
}

fn role_value(role: Role) -> RoleValue {
    match role {
        Role::Primary { .. } => RoleValue::primary,
        Role::Standby => RoleValue::standby,
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_family_with_the_prefix() {
        let m = MasterMetrics::new();
        m.role_changed(Role::Primary { epoch: 1 });
        let text = m.encode(None, None, 1500);
        for name in [
            "primacy_journal_proposals_total",
            "primacy_journal_commit_latency_seconds",
            "primacy_master_role_changes_total{role=\"primary\"} 1",
            "primacy_master_uptime_seconds 1.5",
        ] {
            assert!(text.contains(name), "{name} missing:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        // A labelled family appears with its first sample.
        assert!(!text.contains("primacy_rpc_requests"), "{text}");
    }
}
