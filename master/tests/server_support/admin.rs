//! Running `primacy journal ...` against a test cluster and reading its
//! `--json` output.

use serde_json::Value;

use super::cluster::Cluster;
use super::run;

/// What one `primacy journal` run printed.
#[derive(Debug)]
pub struct CliAnswer {
    /// The exit code.
    pub code: i32,
    /// Stdout parsed as one JSON value (every `--json` answer is one,
    /// errors included).
    pub json: Value,
    /// Stderr.
    pub stderr: String,
}

impl CliAnswer {
    /// The `error` field of an error answer (panics when there is none).
    pub fn error(&self) -> String {
        self.json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no \"error\" in {}", self.json))
            .to_string()
    }
}

/// Runs `primacy journal <args> --json` with the cluster's client flags
/// (off the async workers: it may take seconds) and parses its output;
/// panics when stdout is not one JSON value.
pub async fn journal_json(cluster: &Cluster, args: &[&str]) -> CliAnswer {
    let mut argv = vec!["journal".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    argv.push("--json".into());
    argv.extend(cluster.client_flags());
    journal_argv(cluster, argv).await
}

/// Runs `primacy <argv>` (off the async workers) and parses stdout as
/// JSON.
pub async fn journal_argv(cluster: &Cluster, argv: Vec<String>) -> CliAnswer {
    let dir = cluster.dir.path().to_path_buf();
    let shown = argv.join(" ");
    let (code, out, err) = tokio::task::spawn_blocking(move || run(&argv, &dir))
        .await
        .expect("the CLI runner");
    let json: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| {
        panic!("primacy {shown}: stdout is not one JSON value ({e}): {out:?}; stderr: {err}")
    });
    eprintln!(
        "primacy {}: exit {code}: {json}",
        shown.split(" -D").next().unwrap_or("")
    );
    CliAnswer {
        code,
        json,
        stderr: err,
    }
}

/// Runs `primacy journal <args>` (no `--json`) and returns exit code,
/// stdout and stderr.
pub async fn journal_text(cluster: &Cluster, args: &[&str]) -> (i32, String, String) {
    let mut argv = vec!["journal".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    argv.extend(cluster.client_flags());
    let dir = cluster.dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || run(&argv, &dir))
        .await
        .expect("the CLI runner")
}
