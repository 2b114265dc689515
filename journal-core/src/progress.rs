//! Progress lines for long work (a standby replaying the log, a snapshot
//! being written, streamed or installed): `done of total, rate`, logged at
//! most once per interval so a long replay shows it is moving without
//! flooding the log, and nothing at all for work that ends quickly.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// How often a progress line is logged at most, by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3);

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Journal entries (sequence numbers, Raft indexes).
    Entries,
    /// Bytes.
    Bytes,
}

impl Unit {
    fn amount(self, n: u64) -> String {
        match self {
            Unit::Entries => format!("{n} entries"),
            Unit::Bytes => human_bytes(n),
        }
    }

    fn rate(self, per_sec: f64) -> String {
        match self {
            Unit::Entries => format!("{per_sec:.0} entries/s"),
            Unit::Bytes => format!("{}/s", human_bytes(per_sec as u64)),
        }
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A rate-limited progress reporter for one piece of long work.
///
/// Guarantees: the first line comes only once the work has run for one
/// interval (work that ends sooner logs nothing), and two lines are at least
/// one interval apart. [`Progress::finish`] logs a closing line only when a
/// progress line was logged, so every long job that showed progress also
/// shows its end. Lines go to `tracing` at INFO.
#[derive(Debug, Clone)]
pub struct Progress {
    what: String,
    unit: Unit,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_line: Instant,
    interval: Duration,
    lines: u64,
}

impl Progress {
    /// Starts reporting `what` (e.g. "replaying the journal"), counted in
    /// `unit`, out of `total` when it is known; lines at most every
    /// [`DEFAULT_INTERVAL`].
    pub fn new(what: impl Into<String>, unit: Unit, total: Option<u64>) -> Progress {
        Progress::starting_at(what, unit, total, DEFAULT_INTERVAL, Instant::now())
    }

    /// Like [`Progress::new`] with another interval and start time (tests
    /// drive the clock by hand through [`Progress::line_at`]).
    pub fn starting_at(
        what: impl Into<String>,
        unit: Unit,
        total: Option<u64>,
        interval: Duration,
        now: Instant,
    ) -> Progress {
        Progress {
            what: what.into(),
            unit,
            total,
            done: 0,
            started: now,
            last_line: now,
            interval,
            lines: 0,
        }
    }

    /// Sets the total once it is known (or learned to be larger).
    pub fn set_total(&mut self, total: u64) {
        self.total = Some(total);
    }

    /// Adds `n` to the amount done and logs a line if one is due.
    pub fn advance(&mut self, n: u64) {
        self.done = self.done.saturating_add(n);
        self.log_if_due();
    }

    /// Sets the amount done (it may only grow) and logs a line if one is due.
    pub fn set_done(&mut self, done: u64) {
        self.done = self.done.max(done);
        self.log_if_due();
    }

    /// The amount done so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// True when the next [`Progress::advance`] or [`Progress::set_done`]
    /// would log a line (so a caller can look up the total only then).
    pub fn due(&self) -> bool {
        self.due_at(Instant::now())
    }

    /// [`Progress::due`] at `now`.
    pub fn due_at(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_line) >= self.interval
    }

    fn log_if_due(&mut self) {
        if let Some(line) = self.line_at(Instant::now()) {
            tracing::info!(target: "primacy::progress", "{line}");
        }
    }

    /// The line to log at `now`, if one is due (and then counts it as
    /// logged): `None` before one interval has passed since the start or
    /// since the previous line.
    pub fn line_at(&mut self, now: Instant) -> Option<String> {
        if !self.due_at(now) {
            return None;
        }
        self.last_line = now;
        self.lines += 1;
        Some(self.describe(now))
    }

    /// How many progress lines were produced.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    fn describe(&self, now: Instant) -> String {
        let elapsed = now.saturating_duration_since(self.started);
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        };
        let amount = match self.total {
            // An estimated total may turn out short: never show more done
            // than the total.
            Some(total) if total > 0 => {
                let total = total.max(self.done);
                format!(
                    "{} of {} ({:.0}%)",
                    self.unit.amount(self.done),
                    self.unit.amount(total),
                    self.done as f64 * 100.0 / total as f64
                )
            }
            _ => self.unit.amount(self.done),
        };
        format!(
            "{}: {amount} in {:.1}s, {}",
            self.what,
            secs,
            self.unit.rate(rate)
        )
    }

    /// The closing line at `now` if a progress line was produced before.
    pub fn finish_line_at(&self, now: Instant) -> Option<String> {
        (self.lines > 0).then(|| format!("{} (done)", self.describe(now)))
    }

    /// Logs the closing line if any progress line was logged.
    pub fn finish(&self) {
        if let Some(line) = self.finish_line_at(Instant::now()) {
            tracing::info!(target: "primacy::progress", "{line}");
        }
    }
}

/// A `Read` that reports the bytes read through a [`Progress`].
pub struct ProgressReader<R> {
    inner: R,
    progress: Progress,
}

impl<R> ProgressReader<R> {
    /// Wraps `inner`; every byte read advances `progress`.
    pub fn new(inner: R, progress: Progress) -> Self {
        ProgressReader { inner, progress }
    }

    /// The reporter (to finish it).
    pub fn progress(&self) -> &Progress {
        &self.progress
    }
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// A `Write` that reports the bytes written through a [`Progress`].
pub struct ProgressWriter<W> {
    inner: W,
    progress: Progress,
}

impl<W> ProgressWriter<W> {
    /// Wraps `inner`; every byte written advances `progress`.
    pub fn new(inner: W, progress: Progress) -> Self {
        ProgressWriter { inner, progress }
    }

    /// The reporter (to finish it).
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The wrapped writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for ProgressWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn nothing_is_logged_before_one_interval_and_lines_are_an_interval_apart() {
        let t0 = Instant::now();
        let mut p = Progress::starting_at("replaying", Unit::Entries, Some(1000), 3 * SEC, t0);
        p.done = 10;
        assert_eq!(p.line_at(t0), None);
        assert_eq!(
            p.line_at(t0 + 2 * SEC),
            None,
            "work under an interval is silent"
        );
        let line = p.line_at(t0 + 3 * SEC).expect("due after one interval");
        assert_eq!(
            line,
            "replaying: 10 entries of 1000 entries (1%) in 3.0s, 3 entries/s"
        );
        // Many calls in between: none logs until the next interval is up.
        for ms in (3001..5999).step_by(7) {
            assert_eq!(p.line_at(t0 + Duration::from_millis(ms)), None);
        }
        assert!(p.line_at(t0 + 6 * SEC).is_some());
        assert_eq!(p.lines(), 2);
    }

    #[test]
    fn a_quick_job_has_no_closing_line_and_a_long_one_has() {
        let t0 = Instant::now();
        let quick = Progress::starting_at("x", Unit::Bytes, None, 3 * SEC, t0);
        assert_eq!(quick.finish_line_at(t0 + SEC), None);
        let mut long = Progress::starting_at("snapshot", Unit::Bytes, Some(4 << 20), 3 * SEC, t0);
        long.done = 2 << 20;
        assert!(long.line_at(t0 + 4 * SEC).is_some());
        long.done = 4 << 20;
        let end = long.finish_line_at(t0 + 8 * SEC).expect("closing line");
        assert_eq!(
            end,
            "snapshot: 4.0 MiB of 4.0 MiB (100%) in 8.0s, 512.0 KiB/s (done)"
        );
    }

    #[test]
    fn an_unknown_total_shows_the_amount_and_rate_only() {
        let t0 = Instant::now();
        let mut p = Progress::starting_at("writing", Unit::Bytes, None, SEC, t0);
        p.done = 300;
        assert_eq!(
            p.line_at(t0 + 2 * SEC).as_deref(),
            Some("writing: 300 B in 2.0s, 150 B/s")
        );
    }

    #[test]
    fn readers_and_writers_count_bytes() {
        let mut r = ProgressReader::new(&b"hello world"[..], Progress::new("r", Unit::Bytes, None));
        let mut s = String::new();
        r.read_to_string(&mut s).expect("read");
        assert_eq!(r.progress().done(), 11);
        let mut w = ProgressWriter::new(Vec::new(), Progress::new("w", Unit::Bytes, None));
        w.write_all(b"abc").expect("write");
        assert_eq!(w.progress().done(), 3);
        assert_eq!(w.into_inner(), b"abc");
    }
}
