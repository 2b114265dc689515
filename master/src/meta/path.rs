//! Path validation: the one definition of a well-formed path, used by the RPC
//! layer before it proposes and again by apply (entries may come from anywhere,
//! so apply trusts nothing it did not check itself).

use std::fmt;

/// Longest path accepted, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest path component accepted, in bytes (Linux `NAME_MAX`).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Deepest path accepted, in components (the root has depth 0). Bounds the
/// work of one resolution and of the snapshot's reachability check.
pub const MAX_DEPTH: usize = 256;
/// Longest path quoted in an error message; a longer one is cut there so an
/// error stays readable (the rule and the length are still given).
const SHOWN_PATH_CHARS: usize = 200;

/// A validated absolute path: `/` or `/c1/c2/...` with every rule checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsPath<'a> {
    text: &'a str,
}

/// Why a path was refused; the message names the path and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is the empty string.
    #[error("invalid path \"\": a path must not be empty")]
    Empty,
    /// The path does not start with `/`.
    #[error("invalid path {0}: a path must be absolute (start with '/')")]
    NotAbsolute(Shown),
    /// The path is longer than [`MAX_PATH_BYTES`].
    #[error("invalid path {path}: {len} bytes, longer than the {MAX_PATH_BYTES}-byte limit")]
    TooLong {
        /// The path (cut for display).
        path: Shown,
        /// Its length in bytes.
        len: usize,
    },
    /// The path ends with `/` and is not the root.
    #[error("invalid path {0}: a trailing '/' is not allowed (except for the root \"/\")")]
    TrailingSlash(Shown),
    /// The path holds `//`.
    #[error("invalid path {0}: empty component ('//')")]
    EmptyComponent(Shown),
    /// A component is `.` or `..`.
    #[error("invalid path {path}: component {component:?} is not allowed (paths are normalised)")]
    DotComponent {
        /// The path (cut for display).
        path: Shown,
        /// `.` or `..`.
        component: &'static str,
    },
    /// The path holds NUL or another control character.
    #[error("invalid path {path}: control character {ch:?} at byte {at}")]
    ControlChar {
        /// The path (cut for display, control characters escaped).
        path: Shown,
        /// The character.
        ch: char,
        /// Its byte offset.
        at: usize,
    },
    /// A component is longer than [`MAX_COMPONENT_BYTES`].
    #[error("invalid path {path}: a component of {len} bytes is longer than the {MAX_COMPONENT_BYTES}-byte limit")]
    ComponentTooLong {
        /// The path (cut for display).
        path: Shown,
        /// The component's length in bytes.
        len: usize,
    },
    /// The path has more than [`MAX_DEPTH`] components.
    #[error("invalid path {path}: depth {depth} exceeds the limit of {MAX_DEPTH} components")]
    TooDeep {
        /// The path (cut for display).
        path: Shown,
        /// Its number of components.
        depth: usize,
    },
}

/// A path quoted for an error message: escaped (`{:?}`) and cut after
/// 200 characters (`SHOWN_PATH_CHARS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown(String);

impl Shown {
    /// Quotes `path` for a message.
    pub fn new(path: &str) -> Self {
        let mut cut: String = path.chars().take(SHOWN_PATH_CHARS).collect();
        let more = cut.len() < path.len();
        if more {
            cut.push_str("...");
        }
        Shown(format!("{cut:?}"))
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'a> FsPath<'a> {
    /// Validates `text` against every rule of this module (absolute,
    /// normalised, no `.`/`..`/empty component, no control character,
    /// component ≤ [`MAX_COMPONENT_BYTES`], path ≤ [`MAX_PATH_BYTES`],
    /// depth ≤ [`MAX_DEPTH`]). Never panics.
    pub fn parse(text: &'a str) -> Result<Self, PathError> {
        if text.is_empty() {
            return Err(PathError::Empty);
        }
        if !text.starts_with('/') {
            return Err(PathError::NotAbsolute(Shown::new(text)));
        }
        if text.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong {
                path: Shown::new(text),
                len: text.len(),
            });
        }
        if let Some((at, ch)) = text.char_indices().find(|(_, c)| c.is_control()) {
            return Err(PathError::ControlChar {
                path: Shown::new(text),
                ch,
                at,
            });
        }
        if text == "/" {
            return Ok(FsPath { text });
        }
        if text.ends_with('/') {
            return Err(PathError::TrailingSlash(Shown::new(text)));
        }
        let mut depth = 0;
        for component in text[1..].split('/') {
            depth += 1;
            match component {
                "" => return Err(PathError::EmptyComponent(Shown::new(text))),
                "." => {
                    return Err(PathError::DotComponent {
                        path: Shown::new(text),
                        component: ".",
                    })
                }
                ".." => {
                    return Err(PathError::DotComponent {
                        path: Shown::new(text),
                        component: "..",
                    })
                }
                c if c.len() > MAX_COMPONENT_BYTES => {
                    return Err(PathError::ComponentTooLong {
                        path: Shown::new(text),
                        len: c.len(),
                    })
                }
                _ => {}
            }
        }
        if depth > MAX_DEPTH {
            return Err(PathError::TooDeep {
                path: Shown::new(text),
                depth,
            });
        }
        Ok(FsPath { text })
    }

    /// The path as given (already normalised).
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.text == "/"
    }

    /// The components from the root down (none for `/`).
    pub fn components(&self) -> impl Iterator<Item = &'a str> + 'a {
        let rest = if self.is_root() { "" } else { &self.text[1..] };
        rest.split('/').filter(|c| !c.is_empty())
    }

    /// The parent path and the last component; `None` for the root.
    pub fn split_last(&self) -> Option<(FsPath<'a>, &'a str)> {
        if self.is_root() {
            return None;
        }
        let cut = self.text.rfind('/')?;
        let parent = if cut == 0 { "/" } else { &self.text[..cut] };
        Some((FsPath { text: parent }, &self.text[cut + 1..]))
    }

    /// True when `self` lies strictly inside the subtree of `ancestor`.
    pub fn is_strictly_under(&self, ancestor: &FsPath<'_>) -> bool {
        if ancestor.is_root() {
            return !self.is_root();
        }
        self.text.len() > ancestor.text.len()
            && self.text.starts_with(ancestor.text)
            && self.text.as_bytes()[ancestor.text.len()] == b'/'
    }
}

/// Checks one path component as stored in the edge table (used when a
/// snapshot is restored, where names arrive without their path).
pub fn validate_component(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("component {name:?} is not allowed"));
    }
    if name.len() > MAX_COMPONENT_BYTES {
        return Err(format!(
            "component of {} bytes exceeds {MAX_COMPONENT_BYTES}",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || *c == '/') {
        return Err(format!("component {name:?} holds {c:?}"));
    }
    Ok(())
}

/// Joins a directory path and a child name.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(p: &str) -> String {
        match FsPath::parse(p) {
            Ok(_) => panic!("{p:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn accepts_normalised_absolute_paths() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a b/ç/日本",
            "/.hidden",
            "/a..b",
            "/...",
        ] {
            assert!(FsPath::parse(p).is_ok(), "{p}");
        }
        let deep = "/d".repeat(MAX_DEPTH);
        assert!(FsPath::parse(&deep).is_ok());
        let long_name = format!("/{}", "x".repeat(MAX_COMPONENT_BYTES));
        assert!(FsPath::parse(&long_name).is_ok());
    }

    #[test]
    fn refuses_each_rule_naming_path_and_rule() {
        assert!(err("").contains("must not be empty"));
        assert!(err("a/b").contains("\"a/b\"") && err("a/b").contains("absolute"));
        assert!(err("/a/").contains("trailing '/'"));
        assert!(err("/a//b").contains("empty component"));
        assert!(err("//").contains("trailing"));
        assert!(err("/a/./b").contains("\".\""));
        assert!(err("/a/..").contains("\"..\""));
        assert!(err("/a\0b").contains("control character '\\0' at byte 2"));
        assert!(err("/a\nb").contains("control character"));
        assert!(err("/a\u{7f}").contains("control character"));
        let long_name = format!("/{}", "x".repeat(MAX_COMPONENT_BYTES + 1));
        assert!(err(&long_name).contains("256 bytes"));
        let deep = "/d".repeat(MAX_DEPTH + 1);
        assert!(err(&deep).contains("depth 257"));
        let long = format!("/{}", ["y"; 3000].join("/"));
        let e = err(&long);
        assert!(e.contains("longer than the 4096-byte limit"), "{e}");
        assert!(e.len() < 400, "long paths are cut in messages: {e}");
    }

    #[test]
    fn components_split_and_subtree() {
        let p = FsPath::parse("/a/b/c").expect("valid");
        assert_eq!(p.components().collect::<Vec<_>>(), ["a", "b", "c"]);
        let (parent, name) = p.split_last().expect("not root");
        assert_eq!((parent.as_str(), name), ("/a/b", "c"));
        let (parent, name) = FsPath::parse("/a")
            .expect("valid")
            .split_last()
            .expect("not root");
        assert_eq!((parent.as_str(), name), ("/", "a"));
        assert!(FsPath::parse("/")
            .expect("valid")
            .components()
            .next()
            .is_none());
        let a = FsPath::parse("/a").expect("valid");
        let ab = FsPath::parse("/a/b").expect("valid");
        let abc = FsPath::parse("/ab").expect("valid");
        let root = FsPath::parse("/").expect("valid");
        assert!(ab.is_strictly_under(&a));
        assert!(!abc.is_strictly_under(&a));
        assert!(!a.is_strictly_under(&a));
        assert!(a.is_strictly_under(&root));
        assert!(!root.is_strictly_under(&root));
    }

    #[test]
    fn component_check_for_restored_names() {
        assert!(validate_component("ok").is_ok());
        for bad in ["", ".", "..", "a/b", "a\0"] {
            assert!(validate_component(bad).is_err(), "{bad:?}");
        }
    }
}
