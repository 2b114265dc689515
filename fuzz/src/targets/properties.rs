//! `alluxio-site.properties`: the Java-properties syntax and the layered
//! configuration built from it.

use master::config::properties::{parse, Line};
use master::config::{ConfigError, MasterConfig};

/// Parses `data` (as text, invalid UTF-8 replaced) as a properties file and
/// builds a master configuration from it.
///
/// Contract: entries come in line order, on lines the text has, with
/// trimmed keys and values; written back with escapes they parse to the
/// same entries; a syntax error names a line of the text, and the whole
/// configuration then fails with that syntax error; building the
/// configuration returns (no hang, whatever `${...}` references say).
pub fn target(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    let parsed = parse(&text);
    match &parsed {
        Ok(entries) => {
            let mut last = 0;
            for e in entries {
                assert!(
                    e.line > last && e.line <= lines,
                    "entry on line {} of {lines}",
                    e.line
                );
                last = e.line;
                assert_eq!(e.key, e.key.trim());
                assert_eq!(e.value, e.value.trim());
            }
            let written = write(entries);
            let again = parse(&written)
                .unwrap_or_else(|e| panic!("written entries do not parse: {e:?}\n{written}"));
            let pairs = |v: &[Line]| -> Vec<(String, String)> {
                v.iter().map(|l| (l.key.clone(), l.value.clone())).collect()
            };
            assert_eq!(
                pairs(&again),
                pairs(entries),
                "round trip through\n{written}"
            );
        }
        Err((line, detail)) => {
            assert!(
                *line >= 1 && *line <= lines,
                "error on line {line} of {lines}"
            );
            assert!(!detail.is_empty());
        }
    }
    match MasterConfig::from_properties(&text) {
        Ok(_) => assert!(parsed.is_ok()),
        Err(e) => {
            if let Err((line, _)) = parsed {
                assert!(
                    matches!(e, ConfigError::Syntax { line: l, .. } if l == line),
                    "a syntax error became {e:?}"
                );
            }
            assert!(!e.to_string().is_empty());
        }
    }
}

/// The entries as properties text, one per line, every character that
/// could mean something escaped.
pub fn write(entries: &[Line]) -> String {
    let mut out = String::new();
    for e in entries {
        escape(&e.key, &mut out);
        out.push('=');
        escape(&e.value, &mut out);
        out.push('\n');
    }
    out
}

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || "._-/".contains(c) {
            out.push(c);
        } else if (c as u32) < 0x10000 {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            // Beyond the BMP: no \u form (surrogates), and never special.
            out.push(c);
        }
    }
}
