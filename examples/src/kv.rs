//! The embedder's own state machine: a small key-value store.
//!
//! This is the part of an application primacy replicates. It knows nothing
//! about journals, elections or the network: it turns entries into state,
//! writes its state into a snapshot and reads it back. The journal calls it
//! on every member in the same order, so it must be deterministic: no
//! clock, no randomness, no iteration over a `HashMap` in anything that
//! reaches an output or a snapshot.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use master::embed::{Bytes, StateMachine};

/// A change to the store, as proposed to the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: String,
        /// Its new value.
        value: String,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
}

const SET: u8 = 1;
const DELETE: u8 = 2;

impl Command {
    /// `Set { key, value }`.
    pub fn set(key: impl Into<String>, value: impl Into<String>) -> Command {
        Command::Set {
            key: key.into(),
            value: value.into(),
        }
    }

    /// `Delete { key }`.
    pub fn delete(key: impl Into<String>) -> Command {
        Command::Delete { key: key.into() }
    }

    /// The entry to propose: a tag byte, then each string as a 4-byte
    /// little-endian length and its UTF-8 bytes. Any encoding works (prost,
    /// serde); the journal only sees bytes.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        match self {
            Command::Set { key, value } => {
                out.push(SET);
                put(&mut out, key);
                put(&mut out, value);
            }
            Command::Delete { key } => {
                out.push(DELETE);
                put(&mut out, key);
            }
        }
        out.into()
    }

    /// Reads an entry written by [`Command::encode`]; `None` for anything else.
    pub fn decode(entry: &[u8]) -> Option<Command> {
        let (&tag, mut rest) = entry.split_first()?;
        let command = match tag {
            SET => Command::Set {
                key: take(&mut rest)?,
                value: take(&mut rest)?,
            },
            DELETE => Command::Delete {
                key: take(&mut rest)?,
            },
            _ => return None,
        };
        rest.is_empty().then_some(command)
    }
}

fn put(out: &mut Vec<u8>, s: &str) {
    // Entries are far below 4 GiB: the journal refuses larger records.
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn take(input: &mut &[u8]) -> Option<String> {
    let (len, rest) = input.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return None;
    }
    let (s, rest) = rest.split_at(len);
    *input = rest;
    String::from_utf8(s.to_vec()).ok()
}

/// What `apply` answers, as the proposer receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The key's value before the command (`None`: it had none).
    Previous(Option<String>),
    /// The entry was not a command; nothing changed.
    Refused,
}

impl Answer {
    /// Reads the output of [`Kv`]'s `apply`.
    pub fn decode(output: &[u8]) -> Answer {
        match output.split_first() {
            Some((0, _)) => Answer::Previous(None),
            Some((1, value)) => Answer::Previous(Some(String::from_utf8_lossy(value).into())),
            _ => Answer::Refused,
        }
    }

    fn encode(&self) -> Bytes {
        match self {
            Answer::Previous(None) => Bytes::from_static(&[0]),
            Answer::Previous(Some(v)) => [&[1], v.as_bytes()].concat().into(),
            Answer::Refused => Bytes::from_static(&[2]),
        }
    }
}

/// The replicated key-value store.
///
/// A `BTreeMap` keeps keys sorted, so the snapshot of equal states is the
/// same bytes on every member (the conformance check compares them).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Kv {
    map: BTreeMap<String, String>,
}

impl Kv {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl StateMachine for Kv {
    fn apply(&mut self, _seq: u64, entry: &[u8]) -> Bytes {
        // A bad entry is answered, never a panic: a panic here would stop
        // this member's journal, and the next member would hit the same
        // entry.
        let answer = match Command::decode(entry) {
            Some(Command::Set { key, value }) => Answer::Previous(self.map.insert(key, value)),
            Some(Command::Delete { key }) => Answer::Previous(self.map.remove(&key)),
            None => Answer::Refused,
        };
        answer.encode()
    }

    fn snapshot(&self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(&(self.map.len() as u64).to_le_bytes())?;
        for (key, value) in &self.map {
            let mut record = Vec::with_capacity(8 + key.len() + value.len());
            put(&mut record, key);
            put(&mut record, value);
            out.write_all(&record)?;
        }
        Ok(())
    }

    fn restore(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        let mut count = [0u8; 8];
        input.read_exact(&mut count)?;
        // Build the new state aside and swap it in: a restore replaces the
        // whole state and never merges with what was there.
        let mut map = BTreeMap::new();
        for _ in 0..u64::from_le_bytes(count) {
            let key = read_string(input)?;
            let value = read_string(input)?;
            map.insert(key, value);
        }
        self.map = map;
        Ok(())
    }

    // `freeze` is left at its default: the journal then writes snapshots
    // under the read lock, pausing apply meanwhile. A large state would
    // return a cheap copy here (an `Arc` of a persistent map, e.g. `imbl`).
}

fn read_string(input: &mut dyn Read) -> std::io::Result<String> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u64::from(u32::from_le_bytes(len));
    // `take` instead of a buffer of `len` bytes: a damaged length cannot
    // make us allocate gigabytes before the read fails.
    let mut bytes = Vec::new();
    input.take(len).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use journal_core::testkit::check_state_machine;

    fn entries() -> Vec<Bytes> {
        vec![
            Command::set("color", "blue").encode(),
            Command::set("shape", "circle").encode(),
            Command::set("color", "green").encode(),
            Command::delete("shape").encode(),
            Command::delete("never-set").encode(),
            Command::set("", "empty key").encode(),
            Command::set("size", "").encode(),
            Bytes::from_static(b"not a command"),
            Command::set("ключ", "значение").encode(),
        ]
    }

    /// The conformance check every embedder runs on its machine.
    #[test]
    fn kv_passes_the_state_machine_check() {
        check_state_machine(Kv::default, &entries()).unwrap();
    }

    #[test]
    fn commands_round_trip_and_bad_entries_are_refused() {
        for c in [
            Command::set("a", "b"),
            Command::delete("a"),
            Command::set("", ""),
        ] {
            assert_eq!(Command::decode(&c.encode()), Some(c));
        }
        let good = Command::set("key", "value").encode();
        for bad in [
            &b""[..],
            &[9][..],
            &good[..good.len() - 1],
            &[good.as_ref(), b"x"].concat(),
            &[SET, 255, 255, 255, 255][..],
            &[DELETE, 2, 0, 0, 0, 0xff, 0xfe][..],
        ] {
            assert_eq!(Command::decode(bad), None, "{bad:?}");
        }
        let mut kv = Kv::default();
        assert_eq!(Answer::decode(&kv.apply(1, &good)), Answer::Previous(None));
        assert_eq!(Answer::decode(&kv.apply(2, b"junk")), Answer::Refused);
        assert_eq!(kv.get("key"), Some("value"));
        assert_eq!(kv.len(), 1);
    }

    #[test]
    fn a_damaged_snapshot_is_an_error_not_a_panic_or_a_huge_allocation() {
        let mut kv = Kv::default();
        kv.apply(1, &Command::set("k", "v").encode());
        let mut snap = Vec::new();
        kv.snapshot(&mut snap).unwrap();
        for cut in 0..snap.len() {
            let mut fresh = Kv::default();
            assert!(fresh.restore(&mut &snap[..cut]).is_err(), "cut at {cut}");
        }
        // A count and a length claiming far more than there is.
        let mut lying = u64::MAX.to_le_bytes().to_vec();
        lying.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Kv::default().restore(&mut lying.as_slice()).is_err());
    }
}
