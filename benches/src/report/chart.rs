//! SVG charts drawn with `plotters`: throughput against concurrency and
//! latency percentiles against concurrency, one chart per (scenario,
//! operation, payload size), one line per system; and the failover times.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::Record;

type Group<'a> = BTreeMap<String, Vec<&'a Record>>;

/// A percentile's name, how to read it from a record, its line width.
type Percentile = (&'static str, fn(&Record) -> f64, u32);

fn io_err<E: std::fmt::Display>(e: E) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn file_stem(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The comparable operation an operation name stands for: a system's
/// write, read or listing (`propose`, `create-file`, ZooKeeper `create`
/// and etcd `put` are all writes), so peers share primacy's charts.
pub fn kind(operation: &str) -> &'static str {
    match operation {
        "get-status" | "get-data" | "get" => "read",
        "list-status" | "get-children" | "range" => "list",
        _ => "write",
    }
}

/// Records grouped by (scenario, kind of operation, bytes), each group by
/// system (with the system's own operation name).
fn groups(records: &[Record]) -> BTreeMap<(String, String, u32), Group<'_>> {
    let mut out: BTreeMap<(String, String, u32), Group<'_>> = BTreeMap::new();
    let charted = |r: &&Record| r.scenario != "failover" && r.scenario != "state" && r.ops > 0;
    for r in records.iter().filter(charted) {
        out.entry((r.scenario.clone(), kind(&r.operation).to_string(), r.bytes))
            .or_default()
            .entry(format!("{} {}", r.system, r.operation))
            .or_default()
            .push(r);
    }
    for systems in out.values_mut() {
        for points in systems.values_mut() {
            points.sort_by_key(|r| r.concurrency);
        }
    }
    out
}

/// Draws every chart the records allow into `dir`; returns their paths.
pub fn draw_all(dir: &Path, records: &[Record]) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for ((scenario, operation, bytes), systems) in groups(records) {
        let stem = file_stem(&format!("{scenario}-{operation}-{bytes}B"));
        let title = if bytes > 0 {
            format!("{scenario}: {operation}, {bytes} B")
        } else {
            format!("{scenario}: {operation}")
        };
        let path = dir.join(format!("{stem}-throughput.svg"));
        throughput(&path, &title, &systems)?;
        written.push(path);
        let path = dir.join(format!("{stem}-latency.svg"));
        latency(&path, &title, &systems)?;
        written.push(path);
    }
    let failovers: Vec<&Record> = records
        .iter()
        .filter(|r| r.scenario == "failover")
        .collect();
    if !failovers.is_empty() {
        let path = dir.join("failover.svg");
        failover(&path, &failovers)?;
        written.push(path);
    }
    Ok(written)
}

fn x_range(systems: &Group<'_>) -> (f64, f64) {
    let max = systems
        .values()
        .flatten()
        .map(|r| f64::from(r.concurrency))
        .fold(1.0, f64::max);
    (0.8, max * 1.25)
}

fn throughput(path: &Path, title: &str, systems: &Group<'_>) -> std::io::Result<()> {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(io_err)?;
    let top = systems
        .values()
        .flatten()
        .map(|r| r.ops_per_sec)
        .fold(1.0, f64::max);
    let (lo, hi) = x_range(systems);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title}: throughput"), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..top * 1.1)
        .map_err(io_err)?;
    chart
        .configure_mesh()
        .x_desc("concurrent callers")
        .y_desc("acknowledged ops/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(io_err)?;
    for (i, (system, points)) in systems.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let line: Vec<(f64, f64)> = points
            .iter()
            .map(|r| (f64::from(r.concurrency), r.ops_per_sec))
            .collect();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
            .map_err(io_err)?
            .label(system.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(line.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(io_err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(io_err)?;
    root.present().map_err(io_err)
}

fn latency(path: &Path, title: &str, systems: &Group<'_>) -> std::io::Result<()> {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(io_err)?;
    let top = systems
        .values()
        .flatten()
        .map(|r| r.p999_ms)
        .fold(0.01, f64::max);
    let bottom = systems
        .values()
        .flatten()
        .map(|r| r.p50_ms)
        .fold(f64::MAX, f64::min)
        .clamp(0.001, top);
    let (lo, hi) = x_range(systems);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{title}: latency p50 / p99 / p99.9"),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((lo..hi).log_scale(), (bottom * 0.8..top * 1.25).log_scale())
        .map_err(io_err)?;
    chart
        .configure_mesh()
        .x_desc("concurrent callers")
        .y_desc("latency (ms, log scale)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.3}"))
        .draw()
        .map_err(io_err)?;
    for (i, (system, points)) in systems.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let pick: [Percentile; 3] = [
            ("p50", |r| r.p50_ms, 1),
            ("p99", |r| r.p99_ms, 2),
            ("p99.9", |r| r.p999_ms, 3),
        ];
        for (name, value, width) in pick {
            let line: Vec<(f64, f64)> = points
                .iter()
                .map(|r| (f64::from(r.concurrency), value(r).max(0.001)))
                .collect();
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(width)))
                .map_err(io_err)?
                .label(format!("{system} {name}"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
                });
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(io_err)?;
    root.present().map_err(io_err)
}

/// One column per system: every repeat's time as a dot, the median as a bar.
fn failover(path: &Path, records: &[&Record]) -> std::io::Result<()> {
    let mut by_system: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for r in records {
        by_system
            .entry((r.system.clone(), r.operation.clone()))
            .or_default()
            .push(r.p50_ms);
    }
    let names: Vec<String> = by_system.keys().map(|(s, o)| format!("{s} {o}")).collect();
    let top = records.iter().map(|r| r.p50_ms).fold(1.0, f64::max);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(io_err)?;
    let columns = by_system.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "failover: kill -9 / handoff to first acknowledged write",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..(columns as f64 - 0.5), 0.0..top * 1.15)
        .map_err(io_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(columns)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("milliseconds")
        .draw()
        .map_err(io_err)?;
    for (i, times) in by_system.values().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let x = i as f64;
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - 0.3, 0.0), (x + 0.3, median)],
                color.mix(0.35).filled(),
            )))
            .map_err(io_err)?;
        chart
            .draw_series(
                times
                    .iter()
                    .map(|t| Circle::new((x, *t), 4, color.filled())),
            )
            .map_err(io_err)?;
    }
    root.present().map_err(io_err)
}
