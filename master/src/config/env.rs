//! Which environment variables set which keys.
//!
//! The rule (as Alluxio's Docker image applies it to `ALLUXIO_*`): drop the
//! prefix, lower-case, turn `_` into `.`, and put the key's prefix back.
//! - `ALLUXIO_MASTER_HOSTNAME` sets `alluxio.master.hostname`.
//! - `PRIMACY_X_Y` sets `primacy.x.y` when that is a key, else `alluxio.x.y`
//!   (`PRIMACY_MASTER_HOSTNAME` sets `alluxio.master.hostname`).
//! - Only variables that name a registered key (or an instance of a pattern
//!   key) count. Others are ignored without a warning: environments carry
//!   `ALLUXIO_HOME`, `ALLUXIO_JAVA_OPTS`, `PRIMACY_CONF_DIR` and the like.
//! - When both prefixes set one key, the `PRIMACY_` variable wins.
//!
//! Pattern keys set this way have lower-case names (the mapping cannot keep
//! case or underscores); set such keys in the file or with `-D`.

use std::collections::BTreeMap;

use super::registry;

/// The canonical key environment variable `var` sets, if any.
pub fn key_for_env(var: &str) -> Option<String> {
    let dotted = |rest: &str| rest.to_ascii_lowercase().replace('_', ".");
    // A variable name cannot say which of its underscores were dots, so
    // keys whose last part is free-form (store options) are not settable
    // from the environment (their stores read their own variables).
    let known = |key: String| {
        registry::lookup(&key)
            .filter(|(d, _)| d.rest_prefix().is_none())
            .map(|(_, canonical)| canonical)
    };
    if let Some(rest) = var.strip_prefix("ALLUXIO_") {
        known(format!("alluxio.{}", dotted(rest)))
    } else if let Some(rest) = var.strip_prefix("PRIMACY_") {
        known(format!("primacy.{}", dotted(rest)))
            .or_else(|| known(format!("alluxio.{}", dotted(rest))))
    } else {
        None
    }
}

/// The `(variable, key, value)` settings of `env`, in the order they apply:
/// every `ALLUXIO_` variable, then every `PRIMACY_` one (so those win),
/// each group sorted by name so the result never depends on map order.
pub fn settings(env: &BTreeMap<String, String>) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for prefix in ["ALLUXIO_", "PRIMACY_"] {
        for (var, value) in env.range(prefix.to_string()..) {
            if !var.starts_with(prefix) {
                break;
            }
            if let Some(key) = key_for_env(var) {
                out.push((var.clone(), key, value.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_rule() {
        assert_eq!(
            key_for_env("ALLUXIO_MASTER_HOSTNAME").as_deref(),
            Some("alluxio.master.hostname")
        );
        assert_eq!(
            key_for_env("ALLUXIO_MASTER_JOURNAL_FOLDER").as_deref(),
            Some("alluxio.master.journal.folder")
        );
        assert_eq!(
            key_for_env("PRIMACY_MASTER_HOSTNAME").as_deref(),
            Some("alluxio.master.hostname")
        );
        assert_eq!(
            key_for_env("PRIMACY_MASTER_JOURNAL_CHECKPOINT_RETENTION").as_deref(),
            Some("primacy.master.journal.checkpoint.retention")
        );
        assert_eq!(
            key_for_env("PRIMACY_CLUSTER_ID").as_deref(),
            Some("alluxio.master.cluster.id")
        );
        assert_eq!(
            key_for_env("ALLUXIO_MASTER_RPC_ADDRESS_NS1_M1").as_deref(),
            Some("alluxio.master.rpc.address.ns1.m1")
        );
        for ignored in [
            "ALLUXIO_HOME",
            "ALLUXIO_JAVA_OPTS",
            "PRIMACY_CONF_DIR",
            "HOME",
            "alluxio_master_hostname",
        ] {
            assert_eq!(key_for_env(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn primacy_variables_apply_last() {
        let env: BTreeMap<String, String> = [
            ("PRIMACY_MASTER_RPC_PORT", "2"),
            ("ALLUXIO_MASTER_RPC_PORT", "1"),
            ("ALLUXIO_HOME", "/opt"),
            ("PATH", "/bin"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let got: Vec<String> = settings(&env).into_iter().map(|(var, _, _)| var).collect();
        assert_eq!(
            got,
            vec!["ALLUXIO_MASTER_RPC_PORT", "PRIMACY_MASTER_RPC_PORT"]
        );
    }
}
