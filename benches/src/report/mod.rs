//! What a run measured, and how it is written: one [`Record`] per
//! (scenario, system, operation, concurrency, size) point, printed as a
//! table, written as CSV and JSON, and drawn as SVG charts ([`chart`]).

pub mod chart;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::harness::load::Sample;

/// One measured point. Every figure comes from a run of this harness.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// `append`, `metadata`, `failover`, ...
    pub scenario: String,
    /// The backend or peer (`ufs-1`, `ufs-zk-3`, `raft-1`, `raft-3`,
    /// `etcd-3`, `zookeeper-3`).
    pub system: String,
    /// How it was reached: `in-process` (the journal's own API in the
    /// member's process) or `client-rpc` (a client over loopback).
    pub path: String,
    /// The operation (`propose`, `create-file`, `put`, `kill-to-write`, ...).
    pub operation: String,
    /// Concurrent callers.
    pub concurrency: u32,
    /// Payload bytes per operation (0 where it does not apply).
    pub bytes: u32,
    /// Acknowledged operations.
    pub ops: u64,
    /// Failed operations.
    pub errors: u64,
    /// Seconds measured.
    pub seconds: f64,
    /// Acknowledged operations per second.
    pub ops_per_sec: f64,
    /// Latency percentiles in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// 99.9th percentile latency, ms.
    pub p999_ms: f64,
    /// Slowest acknowledged operation, ms.
    pub max_ms: f64,
    /// Anything the figures need to be read right (first error, ...).
    pub note: String,
}

impl Record {
    /// The record of a closed-loop [`Sample`].
    pub fn from_sample(
        scenario: &str,
        system: &str,
        path: &str,
        operation: &str,
        concurrency: usize,
        bytes: usize,
        sample: &Sample,
    ) -> Record {
        let note = match &sample.first_error {
            Some(e) => format!("first error: {e}"),
            None => String::new(),
        };
        Record {
            scenario: scenario.into(),
            system: system.into(),
            path: path.into(),
            operation: operation.into(),
            concurrency: u32::try_from(concurrency).unwrap_or(u32::MAX),
            bytes: u32::try_from(bytes).unwrap_or(u32::MAX),
            ops: sample.ops,
            errors: sample.errors,
            seconds: sample.elapsed.as_secs_f64(),
            ops_per_sec: sample.rate(),
            p50_ms: sample.quantile_ms(0.5),
            p99_ms: sample.quantile_ms(0.99),
            p999_ms: sample.quantile_ms(0.999),
            max_ms: sample.latency.max() as f64 / 1000.0,
            note,
        }
    }
}

/// The column names of the CSV file, in [`Record`]'s field order.
pub const CSV_HEADER: &str = "scenario,system,path,operation,concurrency,bytes,ops,errors,seconds,ops_per_sec,p50_ms,p99_ms,p999_ms,max_ms,note";

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// One CSV line for `r` (RFC 4180 quoting of the text fields).
pub fn csv_line(r: &Record) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{:.3},{:.1},{:.3},{:.3},{:.3},{:.3},{}",
        csv_field(&r.scenario),
        csv_field(&r.system),
        csv_field(&r.path),
        csv_field(&r.operation),
        r.concurrency,
        r.bytes,
        r.ops,
        r.errors,
        r.seconds,
        r.ops_per_sec,
        r.p50_ms,
        r.p99_ms,
        r.p999_ms,
        r.max_ms,
        csv_field(&r.note)
    )
}

/// The table printed on stdout: one line per record, grouped as given.
pub fn table(records: &[Record]) -> String {
    let mut out = format!(
        "{:<9} {:<12} {:<10} {:<14} {:>5} {:>6} {:>10} {:>9} {:>9} {:>9} {:>9} {:>6}  note\n",
        "scenario",
        "system",
        "path",
        "operation",
        "conc",
        "bytes",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "errors"
    );
    for r in records {
        out.push_str(&format!(
            "{:<9} {:<12} {:<10} {:<14} {:>5} {:>6} {:>10.0} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>6}  {}\n",
            r.scenario,
            r.system,
            r.path,
            r.operation,
            r.concurrency,
            r.bytes,
            r.ops_per_sec,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.max_ms,
            r.errors,
            r.note
        ));
    }
    out
}

/// What a run wrote, for the closing message and the smoke test.
#[derive(Debug, Clone)]
pub struct Written {
    /// `results.csv`.
    pub csv: PathBuf,
    /// `results.json`.
    pub json: PathBuf,
    /// Every SVG chart.
    pub charts: Vec<PathBuf>,
}

/// The JSON document of a run: the machine and command it ran with, and
/// every record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunFile {
    /// The command line of the run.
    pub command: String,
    /// `nproc` as the harness saw it.
    pub cpus: usize,
    /// The one-minute load average when the run started (other work on
    /// the machine skews every figure).
    pub load_at_start: String,
    /// Every record, in the order measured.
    pub records: Vec<Record>,
}

/// Writes `results.csv`, `results.json` and the charts into `dir`.
pub fn write_all(dir: &Path, run: &RunFile) -> std::io::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let csv = dir.join("results.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&csv)?);
    writeln!(f, "{CSV_HEADER}")?;
    for r in &run.records {
        writeln!(f, "{}", csv_line(r))?;
    }
    f.flush()?;
    let json = dir.join("results.json");
    let text = serde_json::to_string_pretty(run).map_err(std::io::Error::other)?;
    std::fs::write(&json, text)?;
    let charts = chart::draw_all(dir, &run.records)?;
    Ok(Written { csv, json, charts })
}

/// The one-minute load average, as `/proc/loadavg` has it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_text_with_commas_and_quotes() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
