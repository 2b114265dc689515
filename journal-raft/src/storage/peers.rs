//! The replicated peer map (member id → peer address, RPC address) and its
//! line encoding, as stored in raft-engine and carried in snapshots.

use std::collections::BTreeMap;

/// One member of the replicated peer map: where the other members reach it
/// (peer address) and, when it advertised one, where clients reach it (RPC
/// address, `alluxio.master.hostname:alluxio.master.rpc.port`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Peer {
    /// Where the other members reach it (`host:peer_port`).
    pub address: String,
    /// Where clients reach it, if it advertised it.
    pub rpc: Option<String>,
}

impl Peer {
    /// A member whose RPC address is not known (yet).
    pub fn at(address: impl Into<String>) -> Peer {
        Peer {
            address: address.into(),
            rpc: None,
        }
    }

    /// A member with its RPC address, if any (empty or blank: none).
    pub fn with_rpc(address: impl Into<String>, rpc: Option<&str>) -> Peer {
        Peer {
            address: address.into(),
            rpc: rpc
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string),
        }
    }
}

/// Member id → (peer address, RPC address), as replicated through conf
/// changes and snapshots.
pub type Peers = BTreeMap<u64, Peer>;

/// Encodes a peer map as `id address [rpc_address]` lines.
///
/// Unambiguous for every entry [`decode_peers`] can produce: a checked
/// address (see [`crate::address::check`]) holds no space, newline or other
/// whitespace, so each entry is exactly one line of two or three fields and
/// decodes to itself. An entry that would break that (id 0, an address that
/// fails the check) is left out and logged; one whose RPC address fails the
/// check is kept without it. Every way into the map checks first, so this
/// only guards against a path that forgot to.
pub fn encode_peers(peers: &Peers) -> Vec<u8> {
    let mut out = String::new();
    for (id, p) in peers {
        if *id == 0 {
            tracing::error!(address = %p.address, "peer map entry with id 0 not stored");
            continue;
        }
        if let Err(why) = crate::address::check(&p.address) {
            tracing::error!(peer = id, %why, "peer map entry with an unusable address not stored");
            continue;
        }
        let rpc = p.rpc.as_deref().filter(|r| match crate::address::check(r) {
            Ok(()) => true,
            Err(why) => {
                tracing::error!(peer = id, %why, "unusable RPC address not stored");
                false
            }
        });
        match rpc {
            Some(rpc) => out.push_str(&format!("{id} {} {rpc}\n", p.address)),
            None => out.push_str(&format!("{id} {}\n", p.address)),
        }
    }
    out.into_bytes()
}

/// Decodes [`encode_peers`]. Lines end at `\n` only; a line is kept when it
/// is `id address` or `id address rpc` separated by single spaces, with a
/// non-zero decimal id and addresses [`crate::address::check`] accepts.
/// Anything else (the map arrives from peers, in snapshots and membership
/// changes) is skipped with a warning rather than stored half-understood:
/// what is returned re-encodes to bytes that decode to the same map.
pub fn decode_peers(bytes: &[u8]) -> Peers {
    let mut peers = Peers::new();
    for line in bytes.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        match decode_peer_line(line) {
            Ok((id, peer)) => {
                peers.insert(id, peer);
            }
            Err(why) => {
                tracing::warn!(line = %String::from_utf8_lossy(line).escape_debug(), %why, "skipped a peer map entry");
            }
        }
    }
    peers
}

fn decode_peer_line(line: &[u8]) -> std::result::Result<(u64, Peer), String> {
    let line = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let fields: Vec<&str> = line.split(' ').collect();
    let (id, addr, rpc) = match fields[..] {
        [id, addr] => (id, addr, None),
        [id, addr, rpc] => (id, addr, Some(rpc)),
        _ => return Err("not 2 or 3 space-separated fields".to_string()),
    };
    let id = Some(id)
        .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|i| i.parse::<u64>().ok())
        .filter(|i| *i != 0)
        .ok_or_else(|| format!("{id:?} is not a member id"))?;
    crate::address::check(addr)?;
    if let Some(rpc) = rpc {
        crate::address::check(rpc)?;
    }
    Ok((id, Peer::with_rpc(addr, rpc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_round_trip() {
        let mut p = Peers::new();
        p.insert(7, Peer::at("h1:19200"));
        p.insert(9, Peer::with_rpc("[::1]:19201", Some("[::1]:19998")));
        assert_eq!(decode_peers(&encode_peers(&p)), p);
        assert!(decode_peers(b"garbage\nx y\n1 a b c\n").is_empty());
        // A line without an RPC address (a member that advertised none).
        assert_eq!(decode_peers(b"3 h:1\n")[&3], Peer::at("h:1"));
    }

    /// The `raft_storage` fuzz target's findings: a stored address ending in
    /// `\r` lost it on the way back, and a newline in an address was a
    /// second member.
    #[test]
    fn peer_lines_cannot_be_forged_or_changed() {
        // Decoded once, `\r` survived; re-encoded, `lines()` ate it.
        let p = decode_peers(b"1 m1:1920\r");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(decode_peers(&encode_peers(&p)), p);
        let p = decode_peers(b"1 m1:19200 m1:19998\r\n2 m2:19200\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[&2], Peer::at("m2:19200"));
        // An address with a line break stores no extra member: it is
        // refused on the way in and on the way out.
        let mut forged = Peers::new();
        forged.insert(5, Peer::at("h5:1\n6 evil:66"));
        forged.insert(7, Peer::with_rpc("h7:1", Some("r7:1\n8 evil:88")));
        let bytes = encode_peers(&forged);
        let back = decode_peers(&bytes);
        assert_eq!(back.len(), 1, "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(back[&7], Peer::at("h7:1"));
        // Ids: decimal, non-zero; fields: single spaces.
        for bad in [
            &b"0 h:1\n"[..],
            b"+1 h:1\n",
            b"1  h:1\n",
            b"1 h:1 \n",
            b"1\th:1\n",
            b"1 h:1 r:2 x:3\n",
            b"1 h\xff:1\n",
        ] {
            assert!(
                decode_peers(bad).is_empty(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
