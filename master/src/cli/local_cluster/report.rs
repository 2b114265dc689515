//! The summary: every check with its verdict and every figure measured,
//! printed as one aligned table at the end. The launcher exits 0 only if
//! every check passed.

use super::ui::{table, Ui};

/// One row of the summary.
#[derive(Debug, Clone)]
struct Row {
    what: String,
    value: String,
    /// `None` for a figure (no verdict), `Some(passed)` for a check.
    verdict: Option<bool>,
}

/// The checks and figures gathered while the demonstration runs.
#[derive(Debug, Clone, Default)]
pub struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Records a check.
    pub fn check(&mut self, what: &str, value: impl Into<String>, passed: bool) {
        self.rows.push(Row {
            what: what.to_string(),
            value: value.into(),
            verdict: Some(passed),
        });
    }

    /// Records a figure (no verdict).
    pub fn figure(&mut self, what: &str, value: impl Into<String>) {
        self.rows.push(Row {
            what: what.to_string(),
            value: value.into(),
            verdict: None,
        });
    }

    /// Whether every check passed (and there was at least one).
    pub fn passed(&self) -> bool {
        let mut checks = self.rows.iter().filter_map(|r| r.verdict).peekable();
        checks.peek().is_some() && checks.all(|p| p)
    }

    /// The checks that failed, with their values.
    pub fn failures(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.verdict == Some(false))
            .map(|r| format!("{}: {}", r.what, r.value))
            .collect()
    }

    /// Prints the table, then `every check passed`, or one `FAILED:` line
    /// per failed check.
    pub fn print(&self, ui: &Ui) {
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                let verdict = match r.verdict {
                    Some(true) => "ok",
                    Some(false) => "FAILED",
                    None => "",
                };
                vec![r.what.clone(), r.value.clone(), verdict.to_string()]
            })
            .collect();
        for line in table(&rows) {
            ui.line(line);
        }
        println!();
        if self.passed() {
            ui.line("every check passed");
        } else {
            let failures = self.failures();
            if failures.is_empty() {
                ui.line("FAILED: no check ran");
            }
            for f in failures {
                ui.line(format!("FAILED: {f}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_only_when_every_check_did() {
        let mut r = Report::default();
        assert!(!r.passed(), "no check is no pass");
        r.check("a", "1", true);
        r.figure("b", "2");
        assert!(r.passed());
        r.check("c", "3", false);
        assert!(!r.passed());
        assert_eq!(r.failures(), vec!["c: 3".to_string()]);
    }
}
