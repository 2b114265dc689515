//! The HTML overview: server-rendered, inline CSS, no script. Every value
//! from the cluster (addresses, reasons, errors, paths) goes through
//! [`escape`]; the page refreshes itself every [`REFRESH_SECS`] seconds.
//!
//! It is meant to fit one screen: long lists are cut ([`MAX_WORKERS`],
//! [`MAX_CHANGES`]) with a pointer to the JSON, which has everything.

use std::fmt::Write as _;

use crate::cli::fs_cmd::civil_from_days;
use crate::proto::rpc::{ClusterInfo, ClusterMaster, RoleChange, WorkerInfo};
use crate::status::json::web_url;
use crate::status::state;

/// Seconds between the page's own refreshes.
pub const REFRESH_SECS: u32 = 10;

/// Worker rows shown; the rest are counted.
pub const MAX_WORKERS: usize = 8;

/// Role change rows shown.
pub const MAX_CHANGES: usize = 6;

/// Escapes `s` for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS UTC` for ms since the Unix epoch; `-` for 0.
pub fn utc(ms: u64) -> String {
    if ms == 0 {
        return "-".into();
    }
    let (y, m, d) = civil_from_days((ms / 86_400_000) as i64);
    let s = ms % 86_400_000 / 1000;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A duration for people: `42s`, `5m 3s`, `1h 2m`, `3d 4h`.
pub fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s / 60 % 60),
        _ => format!("{}d {}h", s / 86_400, s / 3600 % 24),
    }
}

/// How long ago, to the millisecond under a second (heartbeats).
fn ago(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms ago")
    } else {
        format!("{} ago", span(ms))
    }
}

/// A byte count for people (`1.5 GiB`).
fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn badge(word: &str) -> String {
    // The class is one of a fixed set of words; anything else is shown
    // escaped without a colour.
    let class = match word {
        state::PRIMARY | state::STANDBY | state::CATCHING_UP | state::UNREACHABLE => word,
        "LIVE" | "LOST" | "STARTING" => word,
        _ => "OTHER",
    };
    format!(r#"<span class="badge {class}">{}</span>"#, escape(word))
}

fn link(address: &str, web_port: u32) -> String {
    match web_url(address, web_port) {
        Some(url) => format!(r#"<a href="{}">{}</a>"#, escape(&url), escape(address)),
        None => escape(address),
    }
}

const STYLE: &str = r#"
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--card:#fff;
--green:#1a7f37;--blue:#0969da;--amber:#9a6700;--red:#cf222e;--grey:#6e7781}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#24292f;color:#fff;padding:12px 0}
header .bar{max-width:1200px;margin:0 auto;padding:0 24px;display:flex;align-items:center;gap:12px;flex-wrap:wrap}
header h1{font-size:18px;margin:0;font-weight:600}
header .meta{color:#d1d9e0;font-size:13px}
main{max-width:1200px;margin:16px auto;padding:0 24px;display:grid;grid-template-columns:1fr 1fr;gap:16px}
section{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:12px 16px;min-width:0}
section.wide{grid-column:1/-1}
h2{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:0 0 8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);white-space:nowrap;vertical-align:top}
tr:last-child td{border-bottom:none}
th{font-weight:600;color:var(--muted);font-size:12px}
.num{text-align:right;font-variant-numeric:tabular-nums}
td.wrap{white-space:normal;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;background:var(--grey)}
.PRIMARY,.LIVE{background:var(--green)}
.STANDBY{background:var(--blue)}
.CATCHING_UP{background:var(--amber)}
.UNREACHABLE,.LOST{background:var(--red)}
.muted{color:var(--muted)}
.err{color:var(--red)}
.notes{grid-column:1/-1;background:#fff8c5;border-color:#d4a72c}
.notes ul{margin:0;padding-left:20px}
a{color:var(--blue);text-decoration:none}
a:hover{text-decoration:underline}
footer{max-width:1200px;margin:0 auto 16px;padding:0 24px;color:var(--muted);font-size:12px}
"#;

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECS}">
<title>{}</title>
<style>{STYLE}</style></head>
<body>
"#,
        escape(title)
    );
}

fn footer(out: &mut String, collected_ms: u64) {
    let _ = write!(
        out,
        r#"<footer>Collected {} &middot; refreshes every {REFRESH_SECS} s &middot;
<a href="/api/v1/master/info">JSON</a> &middot; <a href="/api/v1/master/health">health</a> &middot;
<a href="/metrics">metrics</a></footer>
</body></html>
"#,
        utc(collected_ms)
    );
}

/// The page of a master whose journal is still opening.
pub fn starting(address: &str, start_time_ms: u64, now_ms: u64) -> String {
    let mut out = String::new();
    head(&mut out, &format!("primacy master {address} (starting)"));
    let _ = write!(
        out,
        r#"<header><div class="bar"><h1>primacy master</h1>{}<span class="meta">{} &middot; up {}</span></div></header>
<main><section class="wide"><h2>Starting</h2>
<p>This master is opening its journal (replaying it); the cluster view appears once it is open.</p>
</section></main>
"#,
        badge("STARTING"),
        escape(address),
        span(now_ms.saturating_sub(start_time_ms)),
    );
    footer(&mut out, now_ms);
    out
}

/// The overview of `c`, as the answering master sees the cluster.
pub fn render(c: &ClusterInfo, now_ms: u64) -> String {
    let me = c.answered_by.clone().unwrap_or_default();
    let journal = me.journal.clone().unwrap_or_default();
    let mine = c.masters.iter().find(|m| m.is_self);
    let my_state = mine.map_or(me.role.as_str(), |m| m.state.as_str());
    let mut out = String::new();
    head(
        &mut out,
        &format!("primacy master {} ({my_state})", me.address),
    );
    let epoch = if me.epoch > 0 {
        format!(" &middot; epoch {}", me.epoch)
    } else {
        String::new()
    };
    let _ = write!(
        out,
        r#"<header><div class="bar"><h1>primacy master</h1>{}<span class="meta">{}{epoch} &middot; up {} &middot; started {} &middot; version {}</span></div></header>
<main>
"#,
        badge(my_state),
        escape(&me.address),
        span(now_ms.saturating_sub(me.start_time_ms)),
        utc(me.start_time_ms),
        escape(&me.version),
    );

    // The primary.
    out.push_str("<section><h2>Primary</h2><dl>");
    if c.primary_address.is_empty() {
        out.push_str(r#"<dt>Address</dt><dd class="err">no primary is known right now</dd>"#);
    } else {
        let port = c
            .masters
            .iter()
            .find(|m| m.address == c.primary_address)
            .map_or(0, |m| m.web_port);
        let _ = write!(
            out,
            "<dt>Address</dt><dd>{}</dd><dt>Epoch</dt><dd>{}</dd><dt>Primary since</dt><dd>{}</dd>",
            link(&c.primary_address, port),
            if c.epoch > 0 {
                c.epoch.to_string()
            } else {
                "unknown".into()
            },
            if c.primacy_since_ms > 0 {
                format!(
                    "{} ({} ago)",
                    utc(c.primacy_since_ms),
                    span(now_ms.saturating_sub(c.primacy_since_ms))
                )
            } else {
                "unknown".into()
            },
        );
    }
    out.push_str("</dl></section>\n");

    // The journal.
    let _ = writeln!(
        out,
        "<section><h2>Journal</h2><dl><dt>Type</dt><dd>{} (election: {})</dd>\
         <dt>Location</dt><dd>{}</dd><dt>Applied / durable</dt><dd>{} / {}</dd>\
         <dt>Last checkpoint</dt><dd>{}</dd></dl></section>",
        escape(&c.journal_type),
        escape(&c.election),
        escape(&c.journal_location),
        journal.last_applied,
        journal.last_durable,
        if journal.has_checkpoint {
            format!("before seq {}", journal.last_checkpoint)
        } else {
            "none".into()
        },
    );

    if !c.notes.is_empty() {
        out.push_str(r#"<section class="notes"><ul>"#);
        for n in &c.notes {
            let _ = write!(out, "<li>{}</li>", escape(n));
        }
        out.push_str("</ul></section>\n");
    }

    masters_table(&mut out, &c.masters, now_ms);
    workers_table(&mut out, &c.workers);
    changes_table(&mut out, &c.role_changes);
    out.push_str("</main>\n");
    footer(&mut out, c.collected_ms);
    out
}

fn masters_table(out: &mut String, masters: &[ClusterMaster], now_ms: u64) {
    let _ = write!(
        out,
        r#"<section class="wide"><h2>Masters ({})</h2><table>
<tr><th>Address</th><th>State</th><th class="num">Epoch</th><th class="num">Applied</th><th class="num">Lag</th><th>Journal role</th><th>Up</th><th>Note</th></tr>
"#,
        masters.len()
    );
    for m in masters {
        let applied = if m.has_applied {
            m.applied.to_string()
        } else {
            "-".into()
        };
        let lag = if m.has_lag {
            m.lag.to_string()
        } else {
            "-".into()
        };
        let up = if m.start_time_ms > 0 {
            span(now_ms.saturating_sub(m.start_time_ms))
        } else {
            "-".into()
        };
        let note = if !m.error.is_empty() {
            format!(r#"<span class="err">{}</span>"#, escape(&m.error))
        } else if m.is_self {
            r#"<span class="muted">this master</span>"#.to_string()
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            r#"<tr><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{applied}</td><td class="num">{lag}</td><td>{}</td><td>{up}</td><td class="wrap">{note}</td></tr>"#,
            link(&m.address, m.web_port),
            badge(&m.state),
            if m.epoch > 0 {
                m.epoch.to_string()
            } else {
                "-".into()
            },
            if m.journal_role.is_empty() {
                "-".to_string()
            } else {
                escape(&m.journal_role)
            },
        );
    }
    out.push_str("</table></section>\n");
}

fn workers_table(out: &mut String, workers: &[WorkerInfo]) {
    let live = workers.iter().filter(|w| w.state == "LIVE").count();
    let _ = write!(
        out,
        "<section><h2>Workers ({live} live, {} lost)</h2>",
        workers.len() - live
    );
    if workers.is_empty() {
        out.push_str(r#"<p class="muted">No worker is registered with the primary.</p></section>"#);
        out.push('\n');
        return;
    }
    out.push_str(
        r#"<table><tr><th>Address</th><th>State</th><th class="num">Blocks</th><th class="num">Last heartbeat</th><th class="num">Used / capacity</th></tr>
"#,
    );
    for w in workers.iter().take(MAX_WORKERS) {
        let _ = writeln!(
            out,
            r#"<tr><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{} / {}</td></tr>"#,
            escape(&w.address),
            badge(&w.state),
            w.block_count,
            ago(w.ms_since_heartbeat),
            bytes(w.used_bytes),
            bytes(w.capacity_bytes),
        );
    }
    out.push_str("</table>");
    if workers.len() > MAX_WORKERS {
        let _ = write!(
            out,
            r#"<p class="muted">and {} more (see <a href="/api/v1/master/info">JSON</a>)</p>"#,
            workers.len() - MAX_WORKERS
        );
    }
    out.push_str("</section>\n");
}

fn changes_table(out: &mut String, changes: &[RoleChange]) {
    out.push_str("<section><h2>Recent role changes of this master</h2>");
    if changes.is_empty() {
        out.push_str(r#"<p class="muted">None yet.</p></section>"#);
        out.push('\n');
        return;
    }
    out.push_str(
        r#"<table><tr><th>Time</th><th>Role</th><th class="num">Epoch</th><th>Reason</th></tr>
"#,
    );
    for r in changes.iter().take(MAX_CHANGES) {
        let _ = writeln!(
            out,
            r#"<tr><td>{}</td><td>{}</td><td class="num">{}</td><td class="wrap">{}</td></tr>"#,
            utc(r.time_ms),
            badge(&r.role),
            if r.epoch > 0 {
                r.epoch.to_string()
            } else {
                "-".into()
            },
            escape(&r.reason),
        );
    }
    out.push_str("</table></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::rpc::MasterInfo;

    #[test]
    fn values_are_escaped_everywhere() {
        let evil = "<script>alert('x')</script>";
        let c = ClusterInfo {
            answered_by: Some(MasterInfo {
                address: evil.into(),
                role: evil.into(),
                version: evil.into(),
                ..MasterInfo::default()
            }),
            primary_address: evil.into(),
            journal_location: evil.into(),
            masters: vec![ClusterMaster {
                address: evil.into(),
                state: evil.into(),
                error: evil.into(),
                web_port: 1,
                journal_role: evil.into(),
                ..ClusterMaster::default()
            }],
            workers: vec![WorkerInfo {
                address: evil.into(),
                state: evil.into(),
                ..WorkerInfo::default()
            }],
            role_changes: vec![RoleChange {
                reason: evil.into(),
                role: evil.into(),
                ..RoleChange::default()
            }],
            notes: vec![evil.into()],
            ..ClusterInfo::default()
        };
        let html = render(&c, 0);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)"));
    }

    #[test]
    fn times_and_spans_read_naturally() {
        assert_eq!(utc(1_709_210_096_789), "2024-02-29 12:34:56 UTC");
        assert_eq!(utc(0), "-");
        assert_eq!(span(42_000), "42s");
        assert_eq!(span(303_000), "5m 3s");
        assert_eq!(span(3_720_000), "1h 2m");
        assert_eq!(span(273_600_000), "3d 4h");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
    }
}
