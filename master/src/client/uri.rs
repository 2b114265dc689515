//! Cluster URIs: which cluster a path lives in (the forms Alluxio's HA
//! clients accept, plus primacy's own scheme).
//!
//! | form | cluster |
//! |---|---|
//! | `/path` | the configuration's (`alluxio.zookeeper.*` or `alluxio.master.rpc.addresses`) |
//! | `primacy:///path` | the same |
//! | `primacy://zk@h1:2181;h2:2181/path` | the primary named by that ZooKeeper ensemble's leader path |
//! | `primacy://h1:19998,h2:19998/path` | one of these masters (`,` or `;` between them) |
//! | `primacy://ebj@NAME/path` | `alluxio.master.nameservices.NAME` via `alluxio.master.rpc.address.NAME.ID` |
//!
//! `alluxio://` is a synonym of `primacy://` (schemes are case-insensitive).
//! A master address without a port gets [`DEFAULT_MASTER_PORT`]; a ZooKeeper
//! address without one gets [`DEFAULT_ZK_PORT`]. The path is taken literally
//! (no percent-decoding) and checked later by `meta::FsPath::parse`; an empty
//! path after an authority means `/`. Queries (`?`) and fragments (`#`) are
//! refused rather than silently sent as part of a file name.

use std::fmt;

/// Alluxio's default master RPC port, used for an authority address without one.
pub const DEFAULT_MASTER_PORT: u16 = 19998;
/// ZooKeeper's default client port, used for a `zk@` address without one.
pub const DEFAULT_ZK_PORT: u16 = 2181;

/// Where to find the cluster a URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// No authority: use the configuration.
    Configured,
    /// `zk@h1:2181;h2:2181`: the ZooKeeper ensemble (`host:port` each).
    ZooKeeper(Vec<String>),
    /// `h1:19998,h2:19998`: the masters' RPC addresses (`host:port` each).
    Masters(Vec<String>),
    /// `ebj@NAME`: a logical name resolved through the configuration.
    Nameservice(String),
}

/// A parsed cluster URI (or plain path): the authority and the path in the
/// cluster. The path always starts with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUri {
    /// Which cluster.
    pub authority: Authority,
    /// The path inside it, as written (not yet validated as an `FsPath`).
    pub path: String,
}

/// A URI that does not follow the rules above; the message quotes the URI
/// and names the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URI {uri:?}: {rule}")]
pub struct UriError {
    /// The URI as given.
    pub uri: String,
    /// The rule it breaks.
    pub rule: String,
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authority::Configured => write!(f, "(configured cluster)"),
            Authority::ZooKeeper(list) => write!(f, "zk@{}", list.join(";")),
            Authority::Masters(list) => write!(f, "{}", list.join(",")),
            Authority::Nameservice(name) => write!(f, "ebj@{name}"),
        }
    }
}

impl ClusterUri {
    /// Parses a plain absolute path or a `primacy://`/`alluxio://` URI.
    ///
    /// Guarantees: on success the path starts with `/` and every address in
    /// the authority is `host:port` with a non-empty host and a port in
    /// 1-65535; every refusal is a [`UriError`] naming the URI and the rule.
    pub fn parse(text: &str) -> Result<ClusterUri, UriError> {
        let err = |rule: &str| UriError {
            uri: text.to_string(),
            rule: rule.to_string(),
        };
        if text.is_empty() {
            return Err(err(
                "empty; give an absolute path (/dir/file) or a primacy:// URI",
            ));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            if text.starts_with('/') {
                return Ok(ClusterUri {
                    authority: Authority::Configured,
                    path: text.to_string(),
                });
            }
            let lower = text.to_ascii_lowercase();
            if lower.starts_with("primacy:") || lower.starts_with("alluxio:") {
                return Err(err(
                    "a cluster URI is scheme://authority/path (two slashes after the scheme)",
                ));
            }
            if text.contains(':') && !text.contains('/') {
                return Err(err(
                    "looks like an address; a URI is primacy://host:port/path",
                ));
            }
            return Err(err(
                "a path must be absolute (start with '/') or be a primacy:// or alluxio:// URI",
            ));
        };
        if !scheme.eq_ignore_ascii_case("primacy") && !scheme.eq_ignore_ascii_case("alluxio") {
            return Err(err(&format!(
                "unsupported scheme {scheme:?}; only primacy:// and alluxio:// name a cluster"
            )));
        }
        if rest.contains('?') || rest.contains('#') {
            return Err(err(
                "queries ('?') and fragments ('#') are not supported in cluster URIs",
            ));
        }
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let authority = parse_authority(auth).map_err(|rule| err(&rule))?;
        Ok(ClusterUri {
            authority,
            path: path.to_string(),
        })
    }
}

fn parse_authority(auth: &str) -> Result<Authority, String> {
    if auth.is_empty() {
        return Ok(Authority::Configured);
    }
    if let Some((prefix, body)) = auth.split_once('@') {
        return match prefix {
            "zk" => {
                if body.is_empty() {
                    return Err("zk@ needs the ZooKeeper addresses (zk@h1:2181;h2:2181)".into());
                }
                Ok(Authority::ZooKeeper(address_list(body, DEFAULT_ZK_PORT)?))
            }
            "ebj" => {
                if body.is_empty() {
                    return Err("ebj@ needs a logical name (ebj@my-cluster)".into());
                }
                match body.chars().find(|c| !is_name_char(*c)) {
                    None => Ok(Authority::Nameservice(body.to_string())),
                    Some(c) => Err(format!(
                        "logical name {body:?} holds {c:?}; names use letters, digits, '.', '_' and '-'"
                    )),
                }
            }
            other => Err(format!(
                "unknown authority prefix {other:?}@; use zk@ (ZooKeeper) or ebj@ (logical name)"
            )),
        };
    }
    Ok(Authority::Masters(address_list(auth, DEFAULT_MASTER_PORT)?))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// `a:1,b:2` or `a:1;b:2` (not mixed) into `host:port` items.
fn address_list(body: &str, default_port: u16) -> Result<Vec<String>, String> {
    let has_comma = body.contains(',');
    let has_semi = body.contains(';');
    if has_comma && has_semi {
        return Err("mixes ',' and ';' between addresses; use one of them".into());
    }
    let sep = if has_semi { ';' } else { ',' };
    body.split(sep)
        .map(|item| host_port(item, default_port))
        .collect()
}

fn host_port(item: &str, default_port: u16) -> Result<String, String> {
    if item.is_empty() {
        return Err("empty address in the list (two separators in a row, or one at an end)".into());
    }
    if item.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("address {item:?} holds whitespace"));
    }
    // IPv6 literals are bracketed: [::1]:19998.
    let (host, port) = if let Some(after) = item.strip_prefix('[') {
        let Some((h, tail)) = after.split_once(']') else {
            return Err(format!("address {item:?} opens '[' without closing it"));
        };
        let port = match tail {
            "" => None,
            t => match t.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(format!("address {item:?}: expected ':port' after ']'")),
            },
        };
        (format!("[{h}]"), port)
    } else {
        match item.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (item.to_string(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(format!("address {item:?} has no host"));
    }
    if host.contains('/') || host.contains('@') {
        return Err(format!("address {item:?} holds '/' or '@' in its host"));
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(format!(
                    "address {item:?}: port {p:?} is not a port number (1-65535)"
                ))
            }
        },
    };
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips_the_authority_forms() {
        let u = ClusterUri::parse("primacy://zk@a:1;b:2/x").map(|u| u.authority.to_string());
        assert_eq!(u, Ok("zk@a:1;b:2".to_string()));
    }
}
