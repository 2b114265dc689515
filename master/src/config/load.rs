//! Layering the sources into one set of raw values, each with its origin:
//! built-in defaults < `primacy-site.properties` < environment < `-D` flags.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::error::ConfigError;
use super::{env, properties, registry};

/// Name of the site file inside the configuration directory.
pub const SITE_FILE: &str = "primacy-site.properties";
/// The configuration directory when neither `--conf` nor `PRIMACY_CONF_DIR`
/// names one (relative to the working directory, as Alluxio's `conf/`).
pub const DEFAULT_CONF_DIR: &str = "conf";
/// The environment variable naming the configuration directory.
pub const CONF_DIR_ENV: &str = "PRIMACY_CONF_DIR";

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The registry's built-in default.
    Default,
    /// A line of a properties file.
    File {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
    },
    /// An environment variable.
    Env {
        /// The variable's name.
        var: String,
    },
    /// A `-D key=value` flag.
    Flag,
    /// A line of properties text given to [`MasterConfig::from_properties`](super::MasterConfig::from_properties).
    Text {
        /// The 1-based line.
        line: usize,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "the built-in default"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Env { var } => write!(f, "environment variable {var}"),
            Source::Flag => write!(f, "a -D flag"),
            Source::Text { line } => write!(f, "line {line} of the properties text"),
        }
    }
}

/// One key's raw value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The raw value after `${key}` substitution.
    pub value: String,
    /// Where the value came from.
    pub source: Source,
}

/// An `alluxio.*` or `primacy.*` key that no registered key matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// The key as written.
    pub key: String,
    /// Where it was set.
    pub source: Source,
    /// The registered key it most likely meant, for a near miss.
    pub suggestion: Option<&'static str>,
}

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown configuration key {} (set by {}; ignored)",
            self.key, self.source
        )?;
        match self.suggestion {
            Some(s) => write!(f, "; did you mean {s}?"),
            None => Ok(()),
        }
    }
}

/// Where to read the configuration from. Its `Debug` lists the
/// environment's variable names only (the process environment holds
/// secrets such as `AWS_SECRET_ACCESS_KEY`) and masks `-D` values that may
/// be credentials, like [`Properties`].
#[derive(Clone, Default)]
pub struct LoadOptions {
    /// The configuration directory given by `--conf DIR`; its
    /// `primacy-site.properties` must exist. Wins over `PRIMACY_CONF_DIR`.
    pub conf_dir: Option<PathBuf>,
    /// The environment. The process's own in production
    /// ([`LoadOptions::from_process`]); tests pass a map so they never race.
    pub env: BTreeMap<String, String>,
    /// The `-D key=value` flags, in command-line order (the last one wins).
    pub overrides: Vec<(String, String)>,
}

impl fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let overrides: Vec<(&str, String)> = self
            .overrides
            .iter()
            .map(|(k, v)| {
                let shown = if holds_credentials(k) {
                    "***".to_string()
                } else if k == super::registry::JOURNAL_FOLDER {
                    journal_ufs::store::redact_url(v)
                } else {
                    v.clone()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("LoadOptions")
            .field("conf_dir", &self.conf_dir)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("overrides", &overrides)
            .finish()
    }
}

impl LoadOptions {
    /// Options with this process's environment. Variables whose name or
    /// value is not UTF-8 are skipped (`std::env::vars` would panic on them);
    /// no key can be set by one.
    pub fn from_process(conf_dir: Option<PathBuf>, overrides: Vec<(String, String)>) -> Self {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        LoadOptions {
            conf_dir,
            env,
            overrides,
        }
    }
}

/// Every value set by a source (defaults are not stored here; the registry
/// supplies them), after substitution. Its `Debug` masks the values of
/// keys that may hold credentials (`aws.accessKeyId`, `aws.secretKey`,
/// every `alluxio.master.journal.ufs.option.*`) and credentials in the
/// journal folder URL.
#[derive(Clone, Default)]
pub struct Properties {
    set: BTreeMap<String, Setting>,
}

/// Whether `key`'s value may be a credential, masked in `Debug` output.
fn holds_credentials(key: &str) -> bool {
    [
        super::registry::AWS_SECRET_KEY,
        super::registry::AWS_ACCESS_KEY,
        "s3a.secretKey",
        "s3a.accessKeyId",
    ]
    .contains(&key)
        || key.starts_with(journal_ufs::store::OPTION_PREFIX)
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.set.iter().map(|(k, s)| {
            let value = if holds_credentials(k) {
                "***".to_string()
            } else if k == super::registry::JOURNAL_FOLDER {
                journal_ufs::store::redact_url(&s.value)
            } else {
                s.value.clone()
            };
            (k, (value, &s.source))
        });
        f.debug_map().entries(shown).finish()
    }
}

impl Properties {
    /// The value a source set for `key` (canonical name), if any.
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.set.get(key)
    }

    /// The value of `key`: the one a source set, else the registry default.
    pub fn effective(&self, key: &str) -> Option<Setting> {
        if let Some(s) = self.set.get(key) {
            return Some(s.clone());
        }
        let (def, _) = registry::lookup(key)?;
        def.default.map(|v| Setting {
            value: v.to_string(),
            source: Source::Default,
        })
    }

    /// Every value a source set, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Setting)> {
        self.set.iter()
    }

    /// Every key with a value (registered keys with defaults included, then
    /// everything a source set), for reports.
    pub fn all(&self) -> BTreeMap<String, Setting> {
        let mut out: BTreeMap<String, Setting> = registry::KEYS
            .iter()
            .filter(|d| !d.is_pattern())
            .filter_map(|d| self.effective(d.name).map(|s| (d.name.to_string(), s)))
            .collect();
        out.extend(self.set.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    /// Sets `key` (an alias is stored under its canonical key); an empty value
    /// removes what lower layers set, so the key is back to its default.
    fn put(&mut self, key: &str, value: &str, source: Source) {
        let key = key.trim();
        let canonical = registry::lookup(key).map_or_else(|| key.to_string(), |(_, k)| k);
        if value.trim().is_empty() {
            self.set.remove(&canonical);
        } else {
            self.set.insert(
                canonical,
                Setting {
                    value: value.trim().to_string(),
                    source,
                },
            );
        }
    }
}

/// Reads and layers every source; collects unknown keys (each also logged
/// with `tracing::warn!`).
pub fn layer(opts: &LoadOptions) -> Result<(Properties, Vec<UnknownKey>), ConfigError> {
    let mut props = Properties::default();
    if let Some((path, lines)) = read_site_file(opts)? {
        for l in lines {
            props.put(
                &l.key,
                &l.value,
                Source::File {
                    path: path.clone(),
                    line: l.line,
                },
            );
        }
    }
    for (var, key, value) in env::settings(&opts.env) {
        props.put(&key, &value, Source::Env { var });
    }
    layer_flags(props, &opts.overrides)
}

/// Layers properties `text` (the site file's syntax) over the defaults,
/// then checks keys and substitutes.
pub fn layer_text(text: &str) -> Result<(Properties, Vec<UnknownKey>), ConfigError> {
    let lines = properties::parse(text).map_err(|(line, detail)| ConfigError::Syntax {
        path: PathBuf::from("(properties text)"),
        line,
        detail,
    })?;
    let mut props = Properties::default();
    for l in lines {
        props.put(&l.key, &l.value, Source::Text { line: l.line });
    }
    layer_flags(props, &[])
}

/// Applies `-D` flags on top of `props`, then checks keys and substitutes.
pub fn layer_flags(
    mut props: Properties,
    flags: &[(String, String)],
) -> Result<(Properties, Vec<UnknownKey>), ConfigError> {
    for (k, v) in flags {
        props.put(k, v, Source::Flag);
    }
    let unknown = unknown_keys(&props);
    substitute(&mut props)?;
    Ok((props, unknown))
}

/// The site file to read and its lines; `None` when the default directory
/// has none (fine). A directory given explicitly must hold the file.
fn read_site_file(
    opts: &LoadOptions,
) -> Result<Option<(PathBuf, Vec<properties::Line>)>, ConfigError> {
    let (dir, given_by) = match (&opts.conf_dir, opts.env.get(CONF_DIR_ENV)) {
        (Some(d), _) => (d.clone(), Some("--conf")),
        (None, Some(d)) if !d.trim().is_empty() => (PathBuf::from(d.trim()), Some(CONF_DIR_ENV)),
        _ => (PathBuf::from(DEFAULT_CONF_DIR), None),
    };
    let path = dir.join(SITE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match given_by {
                Some(by) => Err(ConfigError::FileMissing {
                    path,
                    given_by: by.to_string(),
                }),
                None => {
                    tracing::debug!(path = %path.display(), "no site file; using defaults, environment and flags");
                    Ok(None)
                }
            };
        }
        Err(error) => return Err(ConfigError::FileRead { path, error }),
    };
    let lines = properties::parse(&text).map_err(|(line, detail)| ConfigError::Syntax {
        path: path.clone(),
        line,
        detail,
    })?;
    tracing::info!(path = %path.display(), entries = lines.len(), "read configuration file");
    Ok(Some((path, lines)))
}

fn unknown_keys(props: &Properties) -> Vec<UnknownKey> {
    let mut out = Vec::new();
    for (key, setting) in props.iter() {
        let ours = key.starts_with("alluxio.") || key.starts_with("primacy.");
        if !ours || registry::lookup(key).is_some() {
            continue;
        }
        let unknown = UnknownKey {
            key: key.clone(),
            source: setting.source.clone(),
            suggestion: registry::suggest(key),
        };
        tracing::warn!(key = %key, source = %setting.source, "{unknown}");
        out.push(unknown);
    }
    out
}

/// Most nested `${...}` references followed before declaring a cycle.
const MAX_DEPTH: usize = 16;

/// Largest value a `${...}` substitution may produce, and most references
/// it may follow. Nesting is bounded by [`MAX_DEPTH`], but each level may
/// repeat a reference: fifteen lines of `a1=${a2}${a2}...` would otherwise
/// expand 10^15 references, so the expansion stops with an error naming
/// the key.
pub(crate) const MAX_EXPANDED_BYTES: usize = 1 << 20;
/// See [`MAX_EXPANDED_BYTES`].
pub(crate) const MAX_EXPANDED_REFERENCES: usize = 10_000;

/// A value being expanded and the references followed for it so far.
#[derive(Default)]
struct Expansion {
    out: String,
    references: usize,
}

/// Replaces `${key}` in every set value by `key`'s value (set or default),
/// as Alluxio does (`${alluxio.work.dir}/journal`).
fn substitute(props: &mut Properties) -> Result<(), ConfigError> {
    let keys: Vec<String> = props.set.keys().cloned().collect();
    for key in keys {
        let Some(setting) = props.set.get(&key).cloned() else {
            continue;
        };
        if !setting.value.contains("${") {
            continue;
        }
        let mut done = Expansion::default();
        let resolved = expand(props, &setting.value, 0, &mut done)
            .map(|()| done.out)
            .map_err(|detail| ConfigError::Malformed {
                key: key.clone(),
                value: setting.value.clone(),
                origin: setting.source.clone(),
                detail,
            })?;
        if let Some(s) = props.set.get_mut(&key) {
            s.value = resolved;
        }
    }
    Ok(())
}

/// Appends `text` with its references expanded to `x.out`, within the
/// bounds of [`MAX_EXPANDED_BYTES`].
fn expand(props: &Properties, text: &str, depth: usize, x: &mut Expansion) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("has ${...} references that refer back to themselves".to_string());
    }
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        push_bounded(x, &rest[..start])?;
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "has an unclosed ${".to_string())?;
        let name = after[..end].trim();
        let value = props
            .effective(name)
            .ok_or_else(|| format!("refers to ${{{name}}}, which is not set"))?;
        x.references += 1;
        if x.references > MAX_EXPANDED_REFERENCES {
            return Err(format!(
                "follows more than {MAX_EXPANDED_REFERENCES} ${{...}} references"
            ));
        }
        expand(props, &value.value, depth + 1, x)?;
        rest = &after[end + 1..];
    }
    push_bounded(x, rest)
}

fn push_bounded(x: &mut Expansion, s: &str) -> Result<(), String> {
    if x.out.len() + s.len() > MAX_EXPANDED_BYTES {
        return Err(format!(
            "expands to more than {MAX_EXPANDED_BYTES} bytes through its ${{...}} references"
        ));
    }
    x.out.push_str(s);
    Ok(())
}
