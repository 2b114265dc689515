//! Progress of a member that is far behind: replaying its log at open, or
//! receiving and applying entries a leader sends it after a restart.
//!
//! A follower does not know the leader's last index, but every append
//! carries the leader's commit index: the highest one seen is the target.
//! Progress is reported only while the member is at least
//! [`MIN_BEHIND`] entries behind it, so a follower keeping up with a busy
//! leader logs nothing.

use journal_core::progress::{Progress, Unit};

/// How far behind the known commit index a member must be for its catch-up
/// to be reported.
pub(crate) const MIN_BEHIND: u64 = 1000;

/// The catch-up being tracked, if any.
#[derive(Debug, Default)]
pub(crate) struct CatchUp {
    /// The highest commit index this member learned (its own at open, then
    /// the leader's from appends).
    target: u64,
    /// The report, with the applied index it started from.
    report: Option<(u64, Progress)>,
}

impl CatchUp {
    /// Records a commit index this member learned.
    pub(crate) fn note_commit(&mut self, commit: u64) {
        self.target = self.target.max(commit);
    }

    /// Called after entries were applied up to `applied`: starts a report
    /// when far behind, updates it (logged at most every few seconds), and
    /// ends it once the target is reached.
    pub(crate) fn applied(&mut self, member: u64, applied: u64) {
        if self.report.is_none() && self.target >= applied.saturating_add(MIN_BEHIND) {
            let what = format!("member {member} catching up on the log");
            self.report = Some((applied, Progress::new(what, Unit::Entries, None)));
        }
        let Some((from, progress)) = self.report.as_mut() else {
            return;
        };
        progress.set_total(self.target.saturating_sub(*from));
        progress.set_done(applied.saturating_sub(*from));
        if applied >= self.target {
            progress.finish();
            self.report = None;
        }
    }

    /// Whether a report is running (for tests).
    #[cfg(test)]
    fn reporting(&self) -> bool {
        self.report.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_only_when_far_behind_and_stops_when_caught_up() {
        let mut c = CatchUp::default();
        c.note_commit(500);
        c.applied(1, 10);
        assert!(!c.reporting(), "490 behind is keeping up");
        c.note_commit(5000);
        c.applied(1, 100);
        assert!(c.reporting());
        c.note_commit(4000);
        c.applied(1, 4999);
        assert!(c.reporting(), "the target never goes down");
        c.applied(1, 5000);
        assert!(!c.reporting());
    }
}
