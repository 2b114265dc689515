//! Whether a master can serve its role right now (`/api/v1/master/health`).
//!
//! - **Primary**: healthy when a read barrier passes within
//!   [`BARRIER_TIMEOUT`]: the journal confirms it is still the primary and
//!   has applied everything committed (a deposed primary that has not
//!   noticed yet fails here, not only later).
//! - **Standby**: healthy when it follows: it knows the primary, the
//!   primary answers `GetMasterInfo` (bounded by [`super::PEER_TIMEOUT`]),
//!   and this master is at most `primacy.master.standby.max.lag` entries
//!   behind the primary's last applied sequence. A standby that knows no
//!   primary, cannot reach it, or is further behind (CATCHING_UP) is not.
//! - **Starting** (the journal is still opening): not healthy.
//!
//! A load balancer that must reach the primary only asks with
//! `?role=primary`; `?role=standby` is healthy only on a following standby.

use std::time::Duration;

use journal_core::Role;

use super::state;
use crate::rpc::{gate, MasterState};

/// Bound on the primary's read barrier in a health check.
pub const BARRIER_TIMEOUT: Duration = Duration::from_secs(2);

/// Which role the asker wants (`?role=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Either role, served well.
    Any,
    /// Only a primary that can serve.
    Primary,
    /// Only a standby that follows.
    Standby,
}

impl Want {
    /// Parses the `role` query value (`primary`, `standby`,
    /// case-insensitive; absent or empty is [`Want::Any`]).
    pub fn parse(value: Option<&str>) -> Result<Want, String> {
        match value.map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("any") => Ok(Want::Any),
            Some("primary") => Ok(Want::Primary),
            Some("standby") => Ok(Want::Standby),
            Some(other) => Err(format!(
                "role must be primary, standby or any, not {other:?}"
            )),
        }
    }
}

/// The verdict and what it is based on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Whether this master can serve its role (and is the role wanted).
    pub healthy: bool,
    /// `PRIMARY`, `STANDBY` or `STARTING`.
    pub role: String,
    /// The journal epoch of this master's primacy (0 when standby).
    pub epoch: u64,
    /// The primary's address as far as this master knows ("" if none).
    pub primary_address: String,
    /// Entries behind the primary, when known.
    pub lag: Option<u64>,
    /// Why, in one sentence.
    pub reason: String,
}

impl Health {
    /// The verdict while the journal is still opening.
    pub fn starting() -> Health {
        Health {
            healthy: false,
            role: "STARTING".into(),
            epoch: 0,
            primary_address: String::new(),
            lag: None,
            reason: "the journal is still opening (replaying)".into(),
        }
    }
}

/// How far this (standby) master is behind the primary: the primary's
/// address and the lag, or why it cannot be told. 0 on a primary.
pub async fn lag_behind_primary(state: &MasterState) -> Result<(String, u64), String> {
    if state.journal.role().borrow().is_primary() {
        return Ok((state.address.clone(), 0));
    }
    let Some(primary) = super::primary_address(state).await else {
        return Err("no primary is known".into());
    };
    let info = state
        .status
        .ask(&primary)
        .await
        .map_err(|why| format!("the primary {primary} did not answer: {why}"))?;
    if info.role != state::PRIMARY {
        return Err(format!(
            "{primary}, named as the primary, answers {}",
            info.role
        ));
    }
    // Read after the primary's answer, so a standby that keeps up never
    // looks behind because of the order of the two reads.
    let mine = state.journal.status().last_applied;
    let theirs = info.journal.map_or(0, |j| j.last_applied);
    Ok((primary, theirs.saturating_sub(mine)))
}

/// Checks `state`'s master (`None`: still starting) against `want`.
pub async fn check(state: Option<&MasterState>, want: Want) -> Health {
    let Some(state) = state else {
        return Health::starting();
    };
    let role = *state.journal.role().borrow();
    let mut h = match role {
        Role::Primary { epoch } => {
            let barrier = tokio::time::timeout(BARRIER_TIMEOUT, state.reads.barrier()).await;
            let (healthy, reason) = match barrier {
                Ok(Ok(())) => (true, format!("serving as the primary at epoch {epoch}")),
                Ok(Err(status)) => (
                    false,
                    format!("the read barrier failed: {}", status.message()),
                ),
                Err(_) => (
                    false,
                    format!("the read barrier did not pass within {BARRIER_TIMEOUT:?}"),
                ),
            };
            Health {
                healthy,
                role: state::PRIMARY.into(),
                epoch,
                primary_address: state.address.clone(),
                lag: Some(0),
                reason,
            }
        }
        Role::Standby => {
            let max = state.status.settings.standby_max_lag;
            let known = gate::primary_rpc_address(&state.journal.status()).unwrap_or_default();
            match lag_behind_primary(state).await {
                Ok((primary, lag)) if lag <= max => Health {
                    healthy: true,
                    role: state::STANDBY.into(),
                    epoch: 0,
                    reason: format!("following the primary {primary}, {lag} entries behind"),
                    primary_address: primary,
                    lag: Some(lag),
                },
                Ok((primary, lag)) => Health {
                    healthy: false,
                    role: state::STANDBY.into(),
                    epoch: 0,
                    reason: format!(
                        "catching up: {lag} entries behind the primary {primary} \
                         (primacy.master.standby.max.lag = {max})"
                    ),
                    primary_address: primary,
                    lag: Some(lag),
                },
                Err(why) => Health {
                    healthy: false,
                    role: state::STANDBY.into(),
                    epoch: 0,
                    primary_address: known,
                    lag: None,
                    reason: why,
                },
            }
        }
    };
    let wrong_role = match want {
        Want::Any => None,
        Want::Primary if !role.is_primary() => Some("PRIMARY"),
        Want::Standby if role.is_primary() => Some("STANDBY"),
        _ => None,
    };
    if let Some(wanted) = wrong_role {
        h.healthy = false;
        h.reason = format!("this master is {}, not {wanted} ({})", h.role, h.reason);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_query_is_parsed_strictly() {
        assert_eq!(Want::parse(None), Ok(Want::Any));
        assert_eq!(Want::parse(Some("Primary")), Ok(Want::Primary));
        assert_eq!(Want::parse(Some("standby")), Ok(Want::Standby));
        assert!(Want::parse(Some("leader")).is_err());
    }
}
