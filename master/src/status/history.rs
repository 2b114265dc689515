//! The last role changes of this master, kept in a bounded ring for the
//! status page, `/api/v1/master/info` and `info report`.

use std::collections::VecDeque;

use crate::proto::rpc::RoleChange;
use crate::rpc::wall_clock_ms;

/// How many role changes are kept: enough to see a flapping master, few
/// enough that the page fits on one screen.
pub const HISTORY_LEN: usize = 16;

/// Role changes, oldest dropped first once [`HISTORY_LEN`] are held.
#[derive(Debug, Default)]
pub struct RoleHistory {
    entries: VecDeque<RoleChange>,
    primacy_since_ms: Option<u64>,
}

impl RoleHistory {
    /// Records that this master became `role` (`PRIMARY` or `STANDBY`) at
    /// `epoch` now, because of `reason`. Becoming PRIMARY starts a primacy
    /// ([`RoleHistory::primacy_since_ms`]); anything else ends it.
    pub fn record(&mut self, role: &str, epoch: u64, reason: impl Into<String>) {
        self.record_at(wall_clock_ms(), role, epoch, reason);
    }

    /// [`RoleHistory::record`] at an explicit time (ms since the Unix epoch).
    pub fn record_at(&mut self, time_ms: u64, role: &str, epoch: u64, reason: impl Into<String>) {
        if self.entries.len() == HISTORY_LEN {
            self.entries.pop_front();
        }
        self.primacy_since_ms = (role == "PRIMARY").then_some(time_ms);
        self.entries.push_back(RoleChange {
            time_ms,
            role: role.to_string(),
            epoch,
            reason: reason.into(),
        });
    }

    /// The recorded changes, newest first.
    pub fn recent(&self) -> Vec<RoleChange> {
        self.entries.iter().rev().cloned().collect()
    }

    /// When this master's current primacy began, `None` when it is not
    /// primary.
    pub fn primacy_since_ms(&self) -> Option<u64> {
        self.primacy_since_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_tracks_the_current_primacy() {
        let mut h = RoleHistory::default();
        h.record_at(1, "STANDBY", 0, "journal open");
        assert_eq!(h.primacy_since_ms(), None);
        for i in 0..(HISTORY_LEN as u64 + 3) {
            let role = if i % 2 == 0 { "PRIMARY" } else { "STANDBY" };
            h.record_at(10 + i, role, i, format!("change {i}"));
        }
        let recent = h.recent();
        assert_eq!(recent.len(), HISTORY_LEN);
        assert_eq!(recent[0].time_ms, 10 + HISTORY_LEN as u64 + 2);
        assert!(recent.windows(2).all(|w| w[0].time_ms > w[1].time_ms));
        // The last change (i = HISTORY_LEN + 2, even) made it primary.
        assert_eq!(h.primacy_since_ms(), Some(recent[0].time_ms));
        h.record_at(100, "STANDBY", 0, "lost");
        assert_eq!(h.primacy_since_ms(), None);
    }
}
