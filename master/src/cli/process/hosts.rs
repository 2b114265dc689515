//! `conf/masters` and `conf/workers`: which hosts the plural forms of
//! `primacy process` act on, and with which configuration directory.
//!
//! One entry per line: `HOST [CONF_DIR]`. `#` at the start of a word
//! starts a comment (as in a shell: `/srv/a#b` is a directory name); blank
//! lines are skipped. An IPv6 address may be written bracketed, `[::1]`
//! (ssh itself wants it bare). `HOST` is a name or address ssh accepts (`user@host`
//! included); `CONF_DIR`, when given, is an absolute path on that host and
//! lets several masters share one host, each with its own ports and work
//! directory; without it the entry uses the same directory path as the
//! command. Anything else on a line is an error naming `file:line`.

use std::path::{Path, PathBuf};

/// One line of a hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// The host as written (`m1`, `10.0.0.5`, `ops@m1`, `localhost`).
    pub host: String,
    /// The configuration directory on that host.
    pub conf: PathBuf,
    /// Where the entry was written, `file:line`, for messages.
    pub origin: String,
}

impl HostEntry {
    /// Whether the entry runs on this machine without ssh: only the name
    /// `localhost` does. An address such as `127.0.0.1` goes through ssh,
    /// so an operator (or a test) can exercise ssh on one machine.
    pub fn is_local(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
    }

    /// A short label for tables: the host, with the conf dir when it is
    /// not the command's own.
    pub fn label(&self, default_conf: &Path) -> String {
        if self.conf == default_conf {
            self.host.clone()
        } else {
            format!("{} {}", self.host, self.conf.display())
        }
    }
}

/// Why a hosts file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    /// The file is missing or unreadable.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `HOST [CONF_DIR]`.
    #[error("{}:{line}: {reason}", path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The file lists no host.
    #[error("{} lists no host (one `HOST [CONF_DIR]` per line)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Reads and checks the hosts file `path`; entries without a conf dir get
/// `default_conf`.
pub fn read(path: &Path, default_conf: &Path) -> Result<Vec<HostEntry>, HostsError> {
    let text = std::fs::read_to_string(path).map_err(|source| HostsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path, default_conf)
}

/// Parses hosts-file text (see the module doc); `path` names the file in
/// errors. Two entries for the same host and conf dir are refused: they
/// would be one process acted on twice.
pub fn parse(text: &str, path: &Path, default_conf: &Path) -> Result<Vec<HostEntry>, HostsError> {
    let mut entries: Vec<HostEntry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let bad = |reason: String| HostsError::BadLine {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let content = strip_comment(raw).trim();
        if content.is_empty() {
            continue;
        }
        let words: Vec<&str> = content.split_whitespace().collect();
        let host = check_host(words[0]).map_err(bad)?;
        let host = host.as_str();
        let conf = match words.get(1) {
            None => default_conf.to_path_buf(),
            Some(dir) => {
                let dir = Path::new(dir);
                if !dir.is_absolute() {
                    return Err(bad(format!(
                        "the conf dir {:?} must be an absolute path (it names a directory on {host})",
                        dir.display().to_string()
                    )));
                }
                dir.to_path_buf()
            }
        };
        if words.len() > 2 {
            return Err(bad(format!(
                "expected `HOST [CONF_DIR]`, got {} words: {content:?}",
                words.len()
            )));
        }
        // Host names are case-insensitive: `M1` and `m1` are one machine.
        if let Some(first) = entries
            .iter()
            .find(|e| e.host.eq_ignore_ascii_case(host) && e.conf == conf)
        {
            return Err(bad(format!(
                "{host} with conf dir {} is already listed at {}",
                conf.display(),
                first.origin
            )));
        }
        entries.push(HostEntry {
            host: host.to_string(),
            conf,
            origin: format!("{}:{line}", path.display()),
        });
    }
    if entries.is_empty() {
        return Err(HostsError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(entries)
}

/// `line` without its comment: from a `#` that starts a word (at the start
/// of the line or after whitespace) to the end.
fn strip_comment(line: &str) -> &str {
    let mut prev_blank = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_blank {
            return &line[..i];
        }
        prev_blank = c.is_whitespace();
    }
    line
}

/// A host must be something ssh takes as a destination and not an option:
/// `[user@]name-or-address`, no leading `-`, no shell characters. Returns
/// it as ssh wants it: a bracketed IPv6 address (`[::1]`, which ssh would
/// try to resolve as a name) loses its brackets.
fn check_host(host: &str) -> Result<String, String> {
    if host.starts_with('-') {
        return Err(format!("{host:?} is not a host name (it starts with '-')"));
    }
    let (user, name) = match host.split_once('@') {
        Some((u, n)) => (Some(u), n),
        None => (None, host),
    };
    let ok_user = user.is_none_or(|u| {
        !u.is_empty()
            && u.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    });
    let name = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(inner) if inner.parse::<std::net::Ipv6Addr>().is_ok() => inner,
        Some(_) => {
            return Err(format!(
                "{host:?}: only an IPv6 address goes between brackets"
            ))
        }
        None => name,
    };
    let ok_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:_".contains(c));
    if ok_user && ok_name {
        Ok(match user {
            Some(u) => format!("{u}@{name}"),
            None => name.to_string(),
        })
    } else {
        Err(format!(
            "{host:?} is not a host name or address (expected [user@]host)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Vec<HostEntry>, HostsError> {
        parse(text, Path::new("conf/masters"), Path::new("/etc/primacy"))
    }

    #[test]
    fn entries_comments_and_conf_dirs() {
        let e = p("# masters\nm1\n\n  m2   /srv/m2/conf  # second\nops@10.0.0.3\nlocalhost\n")
            .expect("parses");
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].host, "m1");
        assert_eq!(e[0].conf, Path::new("/etc/primacy"));
        assert_eq!(e[1].conf, Path::new("/srv/m2/conf"));
        assert_eq!(e[1].origin, "conf/masters:4");
        assert_eq!(e[2].host, "ops@10.0.0.3");
        assert!(e[3].is_local() && !e[2].is_local());
        assert!(!HostEntry {
            host: "127.0.0.1".into(),
            conf: "/c".into(),
            origin: String::new()
        }
        .is_local());
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        for (text, line, needle) in [
            ("m1\nm2 relative/conf\n", 2, "absolute"),
            ("m1 /a /b\n", 1, "3 words"),
            ("-oProxyCommand=x\n", 1, "starts with '-'"),
            ("m1;rm\n", 1, "not a host"),
            ("@m1\n", 1, "not a host"),
            ("m1\nm1\n", 2, "already listed at conf/masters:1"),
        ] {
            let e = p(text).expect_err(text);
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("conf/masters:{line}: ")) && msg.contains(needle),
                "{text:?}: {msg}"
            );
        }
        assert!(matches!(p("# nobody\n\n"), Err(HostsError::Empty { .. })));
        // The same host with two conf dirs is two masters.
        assert_eq!(p("h /a\nh /b\n").expect("two").len(), 2);
        // One machine spelled twice.
        let e = p("M1 /a\nm1 /a\n").expect_err("same host");
        assert!(e.to_string().contains("already listed"), "{e}");
        let e = p("[::1] /a\n::1 /a/\n").expect_err("same address");
        assert!(e.to_string().contains("already listed"), "{e}");
        let e = p("[m1]\n").expect_err("brackets");
        assert!(e.to_string().contains("IPv6"), "{e}");
    }

    #[test]
    fn crlf_tabs_ipv6_and_hashes_inside_a_path() {
        let e = p("m1\t/srv/a#b\t# the first\r\n\r\n[::1]\r\nops@[fe80::1] /c # x\r\n#m3\r\n")
            .expect("parses");
        assert_eq!(e.len(), 3, "{e:?}");
        assert_eq!(e[0].host, "m1");
        assert_eq!(e[0].conf, Path::new("/srv/a#b"));
        // ssh resolves `[::1]` as a name and fails: it gets the address.
        assert_eq!(e[1].host, "::1");
        assert_eq!(e[1].conf, Path::new("/etc/primacy"));
        assert_eq!(e[2].host, "ops@fe80::1");
        assert_eq!(e[2].origin, "conf/masters:4");
    }
}
