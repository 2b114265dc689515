//! Java-properties syntax, as `alluxio-site.properties` is written.
//!
//! - `key=value`, `key: value` or `key value`; whitespace around the key and
//!   the separator is dropped, and the value is trimmed (Alluxio trims too).
//! - Lines starting with `#` or `!` (after blanks) are comments.
//! - A line ending in an odd number of backslashes continues on the next
//!   line, whose leading blanks are dropped.
//! - Escapes: `\t`, `\n`, `\r`, `\f`, `\uXXXX`; any other `\c` is `c`
//!   (so `\=`, `\:`, `\ ` and `\\` put those characters into keys).

/// One `key = value` of a file, with the line its key is on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The key.
    pub key: String,
    /// The value, trimmed.
    pub value: String,
    /// The line the entry starts on.
    pub line: usize,
}

/// Parses properties text. Errors are `(line, reason)`.
pub fn parse(text: &str) -> Result<Vec<Line>, (usize, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((idx, first)) = lines.next() {
        let start = idx + 1;
        let trimmed = first.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        // Join continuation lines: an odd count of trailing backslashes
        // escapes the line end.
        let mut logical = trimmed.to_string();
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (raw_key, raw_value) = split_key(&logical);
        let key = unescape(raw_key).map_err(|e| (start, e))?;
        let value = unescape(raw_value).map_err(|e| (start, e))?;
        out.push(Line {
            key: key.trim().to_string(),
            value: value.trim().to_string(),
            line: start,
        });
    }
    Ok(out)
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Splits a logical line at the first unescaped `=`, `:` or blank; blanks
/// then one `=` or `:` then blanks separate key and value.
fn split_key(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => break,
            _ => i += 1,
        }
    }
    let i = i.min(bytes.len());
    let key = &line[..i];
    let mut rest = line[i..].trim_start_matches([' ', '\t', '\x0c']);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches([' ', '\t', '\x0c']);
    }
    (key, rest)
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let ch = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("malformed \\u escape \"\\u{hex}\""))?;
                out.push(ch);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String, usize)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|l| (l.key, l.value, l.line))
            .collect()
    }

    #[test]
    fn separators_comments_and_trimming() {
        let got = kv("# comment\n! also\n\n  a.b = 1 \nc.d: two words \ne.f   3\ng.h=\ni.j=x=y\n");
        assert_eq!(
            got,
            vec![
                ("a.b".into(), "1".into(), 4),
                ("c.d".into(), "two words".into(), 5),
                ("e.f".into(), "3".into(), 6),
                ("g.h".into(), "".into(), 7),
                ("i.j".into(), "x=y".into(), 8),
            ]
        );
    }

    #[test]
    fn continuations_and_escapes() {
        let got = kv("a = h1:1,\\\n     h2:1\nb\\=c = \\u0041\\t\\\\\r\nc = ends\\\\\n");
        assert_eq!(
            got,
            vec![
                ("a".into(), "h1:1,h2:1".into(), 1),
                ("b=c".into(), "A\t\\".into(), 3),
                ("c".into(), "ends\\".into(), 4),
            ]
        );
        assert_eq!(parse("x = \\u00zz\n").unwrap_err().0, 1);
    }
}
