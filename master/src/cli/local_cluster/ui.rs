//! What the launcher prints: step headings, aligned lines, and a spinner
//! (with the time spent) while it waits. When stdout is not a terminal
//! (tests, CI, a pipe) there is no spinner and no escape code: only the
//! plain lines.
//!
//! Every line goes through [`say`]: a write that fails (stdout a pipe whose
//! reader is gone, as in `| head`; a terminal that hung up) does not panic
//! but stops the run as SIGTERM would, so the cluster is stopped in order
//! and the exit code still tells what happened.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The launcher's output.
#[derive(Debug, Clone)]
pub struct Ui {
    tty: bool,
}

impl Ui {
    /// Output to stdout; a spinner only when stdout is a terminal.
    pub fn new() -> Ui {
        Ui {
            tty: std::io::stdout().is_terminal(),
        }
    }

    /// A step heading: a blank line, then `[n/total] title`.
    pub fn step(&self, n: usize, total: usize, title: &str) {
        say("");
        say(format!("[{n}/{total}] {title}"));
    }

    /// One line of output, indented under the current step.
    pub fn line(&self, text: impl AsRef<str>) {
        say(format!("  {}", text.as_ref()));
    }

    /// Starts a spinner showing `message` and the time spent, until the
    /// returned [`Waiting`] is finished or dropped. Nothing is shown off a
    /// terminal.
    pub fn wait(&self, message: impl Into<String>) -> Waiting {
        let bar = self.tty.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
            if let Ok(style) = ProgressStyle::with_template("  {spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.set_message(message.into());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Waiting { bar }
    }
}

impl Default for Ui {
    fn default() -> Self {
        Ui::new()
    }
}

/// A spinner in progress (see [`Ui::wait`]).
pub struct Waiting {
    bar: Option<ProgressBar>,
}

impl Waiting {
    /// Replaces the spinner's message (progress: `seq 120 of 340`).
    pub fn set(&self, message: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.into());
        }
    }

    /// Removes the spinner and prints `line` in its place.
    pub fn done(self, line: impl AsRef<str>) {
        drop(self);
        say(format!("  {}", line.as_ref()));
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Set once a write to stdout failed.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes `text` and a newline to stdout. The first failed write raises
/// SIGTERM in the launcher, whose handler (installed before any child
/// starts) then stops the run and the children; later writes are dropped.
pub fn say(text: impl AsRef<str>) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{}", text.as_ref()).is_err() && !STDOUT_GONE.swap(true, Ordering::Relaxed) {
        let _ = writeln!(
            std::io::stderr(),
            "primacy local-cluster: stdout is closed: stopping the cluster"
        );
        // SAFETY: raise(3) only sends a signal to this process; SIGTERM is
        // caught by the launcher's handler.
        unsafe {
            libc::raise(libc::SIGTERM);
        }
    }
}

/// Milliseconds, as the summary shows durations.
pub fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// `n word`, the word in the plural unless `n` is 1 (`1 file`, `20 files`,
/// `0 entries`).
pub fn count(n: usize, word: &str) -> String {
    if n == 1 {
        return format!("1 {word}");
    }
    let consonant_y = word.strip_suffix('y').filter(|stem| {
        stem.chars()
            .last()
            .is_some_and(|c| c.is_alphabetic() && !"aeiou".contains(c))
    });
    match consonant_y {
        Some(stem) => format!("{n} {stem}ies"),
        None => format!("{n} {word}s"),
    }
}

/// Left-aligned columns: each column as wide as its widest cell, two
/// spaces apart; one string per row, trailing spaces trimmed.
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                line.push_str(cell);
                let pad = widths[c].saturating_sub(cell.chars().count()) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
            line.trim_end().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["m1".to_string(), "PRIMARY".into(), "x".into()],
            vec!["worker".to_string(), "LIVE".into()],
        ];
        assert_eq!(table(&rows), vec!["m1      PRIMARY  x", "worker  LIVE"]);
    }

    #[test]
    fn counts_say_the_plural() {
        assert_eq!(count(1, "file"), "1 file");
        assert_eq!(count(0, "failed call"), "0 failed calls");
        assert_eq!(count(1, "unacknowledged entry"), "1 unacknowledged entry");
        assert_eq!(count(3, "unacknowledged entry"), "3 unacknowledged entries");
        assert_eq!(count(2, "key"), "2 keys");
    }
}
