//! Typed values: a raw string parsed by its key's [`Kind`].

use std::time::Duration;

use super::registry::Kind;
use super::value;

/// A parsed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Text, host names and choices (choices upper-cased).
    Text(String),
    /// Ports.
    Port(u16),
    /// Counts and sizes in bytes.
    Number(u64),
    /// Booleans.
    Bool(bool),
    /// Durations.
    Duration(Duration),
    /// `host:port` lists, name lists and single `host:port`s.
    List(Vec<String>),
}

/// Parses `raw` as `kind`; the error is the reason only (the caller names
/// the key, the value and its source).
pub fn parse_kind(kind: Kind, raw: &str) -> Result<Value, String> {
    Ok(match kind {
        Kind::Text => {
            let t = raw.trim();
            if t.is_empty() {
                return Err("is empty".to_string());
            }
            Value::Text(t.to_string())
        }
        Kind::Host => Value::Text(value::parse_host(raw)?),
        Kind::Port => Value::Port(value::parse_port(raw)?),
        Kind::Count => Value::Number(value::parse_count(raw)?),
        Kind::Size => Value::Number(value::parse_size(raw)?),
        Kind::Bool => Value::Bool(value::parse_bool(raw)?),
        Kind::Duration => Value::Duration(value::parse_duration(raw)?),
        Kind::HostPort => {
            let a = raw.trim();
            value::check_host_port(a)?;
            Value::List(vec![a.to_string()])
        }
        Kind::AddressList => Value::List(value::parse_address_list(raw)?),
        Kind::NameList => Value::List(value::parse_name_list(raw)?),
        Kind::Choice(words) => {
            let up = raw.trim().to_ascii_uppercase();
            if !words.contains(&up.as_str()) {
                return Err(format!("is not one of {}", words.join(", ")));
            }
            Value::Text(up)
        }
    })
}

impl Value {
    /// The text of a `Text` value.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The port of a `Port` value.
    pub fn as_port(&self) -> Option<u16> {
        match self {
            Value::Port(p) => Some(*p),
            _ => None,
        }
    }

    /// The number of a `Number` value.
    pub fn as_number(&self) -> Option<u64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The flag of a `Bool` value.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The duration of a `Duration` value.
    pub fn as_duration(&self) -> Option<Duration> {
        match self {
            Value::Duration(d) => Some(*d),
            _ => None,
        }
    }

    /// The items of a `List` value.
    pub fn as_list(&self) -> Option<&[String]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_are_case_insensitive_and_closed() {
        let k = Kind::Choice(&["EMBEDDED", "UFS"]);
        assert_eq!(parse_kind(k, " ufs "), Ok(Value::Text("UFS".into())));
        assert!(parse_kind(k, "NOOP").is_err());
        assert!(parse_kind(Kind::Text, "  ").is_err());
        assert_eq!(
            parse_kind(Kind::HostPort, "h:1"),
            Ok(Value::List(vec!["h:1".into()]))
        );
        assert!(parse_kind(Kind::HostPort, "h:1,h:2").is_err());
    }
}
