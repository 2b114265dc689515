//! Value forms as Alluxio writes them: durations (`10s`, `5min`, bare number
//! = milliseconds), sizes (`4MB`, bare number = bytes), booleans, ports and
//! `host:port` lists.
//!
//! Every parser returns the reason as a `String` only; the caller wraps it
//! into a [`super::ConfigError`] that names the key, the value and where the
//! value came from, so the messages here need not repeat them.

use std::time::Duration;

/// Parses a duration: a number (decimals allowed) and an optional unit,
/// case-insensitive, with optional space between. Units as Alluxio's
/// `FormatUtils.parseTimeSize`: `ms`, `s`/`sec`, `m`/`min`, `h`/`hr`, `d`/`day`
/// (and the long spellings); no unit means milliseconds.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let (number, unit) = split_number(v)?;
    let ms_per_unit: f64 = match unit.as_str() {
        "" | "ms" | "msec" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        other => {
            return Err(format!(
            "unknown time unit {other:?}; use ms, s, min, h or d (a bare number is milliseconds)"
        ))
        }
    };
    let ms = number * ms_per_unit;
    // A u64 of microseconds holds ~584,000 years; anything beyond is a typo.
    if !ms.is_finite() || ms * 1000.0 >= u64::MAX as f64 {
        return Err("is too long".to_string());
    }
    Ok(Duration::from_micros((ms * 1000.0).round() as u64))
}

/// Parses a size: a number (decimals allowed) and an optional unit,
/// case-insensitive, as Alluxio's `FormatUtils.parseSpaceSize`: `B`,
/// `KB`/`K`, `MB`/`M`, `GB`/`G`, `TB`/`T`, `PB`/`P` (binary multiples, as in
/// Alluxio); no unit means bytes.
pub fn parse_size(v: &str) -> Result<u64, String> {
    let (number, unit) = split_number(v)?;
    let shift: u32 = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" => 10,
        "m" | "mb" => 20,
        "g" | "gb" => 30,
        "t" | "tb" => 40,
        "p" | "pb" => 50,
        other => {
            return Err(format!(
                "unknown size unit {other:?}; use B, KB, MB, GB, TB or PB (a bare number is bytes)"
            ))
        }
    };
    let bytes = number * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err("is too large".to_string());
    }
    if bytes.fract() != 0.0 {
        return Err("is not a whole number of bytes".to_string());
    }
    Ok(bytes as u64)
}

/// Splits `"  1.5 GB "` into `(1.5, "gb")`; refuses negative, empty and
/// non-numeric values.
fn split_number(v: &str) -> Result<(f64, String), String> {
    let s = v.trim().to_ascii_lowercase();
    let end = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    if num.is_empty() {
        return Err("does not start with a number".to_string());
    }
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{num:?} is not a number"))?;
    Ok((n, unit.trim().to_string()))
}

/// Parses `true`/`false`, case-insensitive (Alluxio accepts nothing else).
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("is not a boolean; use true or false".to_string()),
    }
}

/// Parses a whole number; `_` and `,` digit separators are accepted
/// (`2,000,000` as the Alluxio docs print it).
pub fn parse_count(v: &str) -> Result<u64, String> {
    let cleaned: String = v
        .trim()
        .chars()
        .filter(|c| *c != '_' && *c != ',')
        .collect();
    cleaned
        .parse::<u64>()
        .map_err(|_| "is not a whole number".to_string())
}

/// Parses a TCP port, 1-65535.
pub fn parse_port(v: &str) -> Result<u16, String> {
    match v.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err("is not a port number (1-65535)".to_string()),
    }
}

/// Parses a `host:port` list separated by commas or semicolons (Alluxio
/// writes ZooKeeper ensembles with either), trimming each part and dropping
/// empty ones. Refuses an empty list and any part that is not `host:port`.
pub fn parse_address_list(v: &str) -> Result<Vec<String>, String> {
    let list: Vec<String> = v
        .split([',', ';'])
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if list.is_empty() {
        return Err("lists no host:port".to_string());
    }
    for a in &list {
        check_host_port(a)?;
    }
    Ok(list)
}

/// Checks one `host:port`. IPv6 literals go in brackets (`[::1]:19200`).
pub fn check_host_port(a: &str) -> Result<(), String> {
    let Some((host, port)) = a.rsplit_once(':') else {
        return Err(format!("{a:?} is not host:port"));
    };
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(format!("{a:?} has no usable host"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!("{a:?}: write IPv6 hosts in brackets, [::1]:port"));
    }
    parse_port(port).map_err(|_| format!("{a:?} has no port 1-65535"))?;
    Ok(())
}

/// Parses a host name (no port, no spaces, not empty).
pub fn parse_host(v: &str) -> Result<String, String> {
    let h = v.trim();
    if h.is_empty() || h.chars().any(char::is_whitespace) || h.contains('/') {
        return Err("is not a host name".to_string());
    }
    if h.contains(':') && !(h.starts_with('[') && h.ends_with(']')) {
        return Err("is a host name without the port (IPv6 in brackets)".to_string());
    }
    Ok(h.to_string())
}

/// Parses a comma-separated list of names (nameservice member ids).
pub fn parse_name_list(v: &str) -> Result<Vec<String>, String> {
    let list: Vec<String> = v
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if list.is_empty() {
        return Err("lists no name".to_string());
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        let ms = Duration::from_millis;
        for (v, want) in [
            ("10s", ms(10_000)),
            ("5min", ms(300_000)),
            ("100ms", ms(100)),
            ("2h", ms(7_200_000)),
            ("1d", ms(86_400_000)),
            ("250", ms(250)),
            (" 1.5 S ", ms(1_500)),
            ("3sec", ms(3_000)),
            ("2m", ms(120_000)),
            ("1hour", ms(3_600_000)),
            ("0", ms(0)),
        ] {
            assert_eq!(parse_duration(v), Ok(want), "{v}");
        }
        for bad in ["", "fast", "10 parsecs", "-1s", "s", "1.2.3s", "1e400d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_in_every_unit() {
        for (v, want) in [
            ("4MB", 4u64 << 20),
            ("10KB", 10 << 10),
            ("1GB", 1 << 30),
            ("512", 512),
            ("7b", 7),
            ("2k", 2 << 10),
            ("1.5 gb", 3 << 29),
            ("1TB", 1 << 40),
        ] {
            assert_eq!(parse_size(v), Ok(want), "{v}");
        }
        for bad in ["", "4XB", "MB", "-4MB", "0.3B", "99999999PB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn booleans_counts_ports_hosts() {
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert_eq!(parse_bool(" False "), Ok(false));
        assert!(parse_bool("yes").is_err());
        assert!(parse_bool("1").is_err());
        assert_eq!(parse_count("2,000,000"), Ok(2_000_000));
        assert_eq!(parse_count("2_000"), Ok(2_000));
        assert!(parse_count("-1").is_err());
        assert!(parse_count("1.5").is_err());
        assert_eq!(parse_port("19998"), Ok(19998));
        assert!(parse_port("0").is_err());
        assert!(parse_port("65536").is_err());
        assert_eq!(parse_host(" m1.example.com "), Ok("m1.example.com".into()));
        assert!(parse_host("m1:19998").is_err());
        assert!(parse_host("").is_err());
        assert_eq!(parse_host("[::1]"), Ok("[::1]".into()));
    }

    #[test]
    fn address_lists_take_commas_and_semicolons() {
        assert_eq!(
            parse_address_list("h1:2181, h2:2181;h3:2181,"),
            Ok(vec!["h1:2181".into(), "h2:2181".into(), "h3:2181".into()])
        );
        assert_eq!(
            parse_address_list("[::1]:19200"),
            Ok(vec!["[::1]:19200".into()])
        );
        for bad in [
            "", " , ", "h1", "h1:0", "h1:99999", ":2181", "::1:2181", "a b:1",
        ] {
            assert!(parse_address_list(bad).is_err(), "{bad}");
        }
    }
}
