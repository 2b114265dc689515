//! What the driver does about storage that fails for a long time: it logs
//! the failures at a bounded rate (an outage of minutes must not flood the
//! log nor hide when it began and ended), and, as the primary, deletes
//! staging files that writes killed mid-way left behind.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::staging::{self, Sweep};

/// Rate limit for one kind of repeated failure.
#[derive(Debug)]
pub(super) struct Throttle {
    interval: Duration,
    last_logged: Option<Instant>,
    /// Failures since the last one logged.
    suppressed: u64,
    /// Failures in the current streak, and when it began.
    streak: u64,
    since: Option<Instant>,
}

impl Throttle {
    pub(super) fn new(interval: Duration) -> Throttle {
        Throttle {
            interval,
            last_logged: None,
            suppressed: 0,
            streak: 0,
            since: None,
        }
    }

    /// Records a failure. `Some(suppressed)` when this one is to be logged
    /// (the first of a streak, then one per interval), with how many were
    /// not logged since the last.
    pub(super) fn failure(&mut self) -> Option<u64> {
        let now = Instant::now();
        self.streak += 1;
        self.since.get_or_insert(now);
        let due = self
            .last_logged
            .is_none_or(|t| now.duration_since(t) >= self.interval);
        if due {
            self.last_logged = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }

    /// Records a success. `Some((failures, lasted))` when it ended a streak
    /// of failures, so the recovery is logged once.
    pub(super) fn success(&mut self) -> Option<(u64, Duration)> {
        let since = self.since.take()?;
        let failures = std::mem::take(&mut self.streak);
        self.suppressed = 0;
        self.last_logged = None;
        Some((failures, since.elapsed()))
    }
}

/// The primary's periodic deletion of stale staging files.
#[derive(Debug)]
pub(super) struct StagingSweeper {
    dir: Option<std::path::PathBuf>,
    grace: Duration,
    next: Instant,
    running: Option<JoinHandle<()>>,
}

impl StagingSweeper {
    pub(super) fn new(folder_url: &str, grace: Duration) -> StagingSweeper {
        StagingSweeper {
            dir: staging::local_dir(folder_url),
            grace,
            next: Instant::now(),
            running: None,
        }
    }

    /// Between two sweeps: half the grace period, within 1 s .. 10 min.
    fn period(&self) -> Duration {
        (self.grace / 2).clamp(Duration::from_secs(1), Duration::from_secs(600))
    }

    /// When the next sweep is due (far away for stores without staging files).
    pub(super) fn due_at(&self) -> Instant {
        match self.dir {
            Some(_) => self.next,
            None => Instant::now() + Duration::from_secs(3600),
        }
    }

    /// Starts a sweep on a blocking thread (which logs what it deleted)
    /// when one is due and none runs; chunk staging files are considered
    /// only below `log_end`, the primary's next slot. Never waits for the
    /// file system.
    pub(super) fn poll(&mut self, log_end: u64) {
        let Some(dir) = self.dir.clone() else { return };
        if self.running.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        if Instant::now() < self.next {
            return;
        }
        self.next = Instant::now() + self.period();
        let grace = self.grace;
        self.running = Some(tokio::task::spawn_blocking(move || {
            let sweep = staging::sweep(&dir, grace, log_end);
            report(&dir, &sweep, grace);
        }));
    }
}

fn report(dir: &std::path::Path, sweep: &Sweep, grace: Duration) {
    if sweep.removed.is_empty() {
        return;
    }
    let names: Vec<String> = sweep
        .removed
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap_or(p).display().to_string())
        .collect();
    tracing::info!(
        folder = %dir.display(),
        removed = names.len(),
        grace_s = grace.as_secs(),
        files = %names.join(", "),
        "deleted staging files left by writes killed mid-way"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_logs_the_first_then_one_per_interval_and_the_recovery_once() {
        let mut t = Throttle::new(Duration::from_secs(3600));
        assert_eq!(t.failure(), Some(0));
        assert_eq!(t.failure(), None);
        assert_eq!(t.failure(), None);
        let (n, _) = t.success().unwrap();
        assert_eq!(n, 3);
        assert!(t.success().is_none());
        assert_eq!(t.failure(), Some(0), "a new streak logs its first failure");
        let mut t = Throttle::new(Duration::ZERO);
        assert_eq!(t.failure(), Some(0));
        assert_eq!(t.failure(), Some(0));
    }
}
