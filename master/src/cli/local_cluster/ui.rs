//! What the launcher prints: step headings, aligned lines, and a spinner
//! (with the time spent) while it waits. When stdout is not a terminal
//! (tests, CI, a pipe) there is no spinner and no escape code: only the
//! plain lines.

use std::io::IsTerminal;
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
        println!("\n[{n}/{total}] {title}");
    }

    /// One line of output, indented under the current step.
    pub fn line(&self, text: impl AsRef<str>) {
        println!("  {}", text.as_ref());
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
        println!("  {}", line.as_ref());
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Milliseconds, as the summary shows durations.
pub fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// `n word` with an `s` unless `n` is 1 (`1 file`, `20 files`).
pub fn count(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
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
}
