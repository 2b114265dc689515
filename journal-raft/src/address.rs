//! What a peer or RPC address may look like.
//!
//! Addresses reach this crate from the configuration and from other members
//! over the network (the join handshake, the address every message batch
//! carries, membership changes, a snapshot's peer map), and they are stored
//! in the replicated peer map as `id address [rpc]` lines. An address with
//! whitespace or a control character in it would change how such a line
//! splits (a newline makes an extra member, a trailing `\r` is lost), so
//! every address is checked here before it is kept or stored.

/// The longest address accepted: a DNS name (253) plus `:` and a port.
pub const MAX_ADDRESS_LEN: usize = 259;

/// Ok when `a` is `host:port`: at most [`MAX_ADDRESS_LEN`] bytes, a port
/// 1-65535, a host of letters, digits, `.`, `-` and `_` (or a bracketed
/// IPv6 literal of hex digits, `:` and `.`). Such an address holds no
/// whitespace, control or non-ASCII character, so it never changes how the
/// peer map's lines and fields split. The error says what is wrong.
pub fn check(a: &str) -> Result<(), String> {
    if a.is_empty() {
        return Err("the address is empty".to_string());
    }
    if a.len() > MAX_ADDRESS_LEN {
        return Err(format!(
            "the address is {} bytes long; at most {MAX_ADDRESS_LEN} are accepted",
            a.len()
        ));
    }
    if let Some(c) = a.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "{a:?} contains {c:?} (whitespace, control and non-ASCII characters are refused)"
        ));
    }
    let Some((host, port)) = a.rsplit_once(':') else {
        return Err(format!("{a:?} is not host:port"));
    };
    if !port.bytes().all(|b| b.is_ascii_digit())
        || port.parse::<u16>().map(|p| p == 0).unwrap_or(true)
    {
        return Err(format!("{a:?} is not host:port with a port 1-65535"));
    }
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        }
    };
    if !host_ok {
        return Err(format!(
            "{a:?} does not start with a host name, an IPv4 address or a bracketed IPv6 address"
        ));
    }
    Ok(())
}

/// `a` if [`check`] accepts it; otherwise `None`, after a warning naming
/// `what` the address was for and who sent it (`from`).
pub(crate) fn accept(a: &str, what: &str, from: &str) -> Option<String> {
    match check(a) {
        Ok(()) => Some(a.to_string()),
        Err(why) => {
            tracing::warn!(%from, what, %why, "ignored an unusable address");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_port_forms() {
        for a in [
            "127.0.0.1:19200",
            "master-1.example.com:19200",
            "m_1:1",
            "[::1]:19200",
            "[fe80::1:2]:65535",
        ] {
            assert_eq!(check(a), Ok(()), "{a}");
        }
    }

    #[test]
    fn refuses_what_would_split_a_peer_line() {
        let long = format!("{}:1", "a".repeat(MAX_ADDRESS_LEN));
        for a in [
            "",
            "host:1\r",
            "host:1\n2 other:2",
            "host :1",
            "host:1 rpc:2",
            "h\u{0}st:1",
            "hôst:1",
            "\u{feff}host:1",
            "host",
            "host:",
            ":1",
            "host:0",
            "host:65536",
            "host:+1",
            "[]:1",
            "[::1:1",
            "a/b:1",
            long.as_str(),
        ] {
            assert!(check(a).is_err(), "{a:?} was accepted");
        }
    }
}
