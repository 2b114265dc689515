//! A deterministic state machine for tests: it remembers every entry it
//! applied, in order, and answers each with a value derived from the entry.

use std::io::{Read, Write};

use bytes::Bytes;

use crate::state_machine::{FrozenState, StateMachine};

/// Remembers `(seq, entry)` for every applied entry.
///
/// The output of `apply` is `seq` (8 bytes LE) followed by the entry's
/// crc32c (4 bytes LE), so a test can check that the output a proposer got
/// belongs to its entry at its position.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TestMachine {
    /// Applied entries in apply order.
    pub entries: Vec<(u64, Bytes)>,
}

impl TestMachine {
    /// An empty machine.
    pub fn new() -> Self {
        Self::default()
    }

    /// The output `apply` returns for `entry` at `seq`.
    pub fn expected_output(seq: u64, entry: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(12);
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(entry).to_le_bytes());
        out.into()
    }

    /// Decodes the sequence number from an output of `apply`.
    pub fn output_seq(output: &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(output.get(..8)?.try_into().ok()?))
    }

    /// Position of `entry` if it was applied, and how many times it appears.
    pub fn occurrences(&self, entry: &[u8]) -> usize {
        self.entries.iter().filter(|(_, e)| e == entry).count()
    }
}

impl StateMachine for TestMachine {
    fn apply(&mut self, seq: u64, entry: &[u8]) -> Bytes {
        if let Some((last, _)) = self.entries.last() {
            // A journal that breaks ordering is a bug the suite must catch
            // even if it forgets to look: poison the state visibly.
            if *last >= seq {
                self.entries
                    .push((u64::MAX, Bytes::from_static(b"ORDER VIOLATION")));
            }
        }
        self.entries.push((seq, Bytes::copy_from_slice(entry)));
        Self::expected_output(seq, entry)
    }

    fn snapshot(&self, out: &mut dyn Write) -> std::io::Result<()> {
        self.write_to(out)
    }

    fn freeze(&self) -> Option<Box<dyn FrozenState>> {
        // Entries are reference-counted `Bytes`: the copy costs a pointer
        // and a length per entry, not the entries' bytes.
        Some(Box::new(self.clone()))
    }

    fn restore(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        let mut word = [0u8; 8];
        input.read_exact(&mut word)?;
        let count = u64::from_le_bytes(word);
        let mut entries = Vec::new();
        for _ in 0..count {
            input.read_exact(&mut word)?;
            let seq = u64::from_le_bytes(word);
            let mut len = [0u8; 4];
            input.read_exact(&mut len)?;
            let mut entry = vec![0u8; u32::from_le_bytes(len) as usize];
            input.read_exact(&mut entry)?;
            entries.push((seq, Bytes::from(entry)));
        }
        self.entries = entries;
        Ok(())
    }
}

impl FrozenState for TestMachine {
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(&(self.entries.len() as u64).to_le_bytes())?;
        for (seq, entry) in &self.entries {
            out.write_all(&seq.to_le_bytes())?;
            out.write_all(&(entry.len() as u32).to_le_bytes())?;
            out.write_all(entry)?;
        }
        Ok(())
    }
}
