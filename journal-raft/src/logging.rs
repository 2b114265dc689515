//! raft-rs logs through `slog`; this drain forwards every record to `tracing`
//! (target `raft`), with its key-values appended to the message.

use std::fmt::Write as _;

/// A `slog::Drain` that emits each record as a `tracing` event.
///
/// Guarantees: never fails and never blocks beyond the `tracing` subscriber;
/// levels map Critical/Error → error, Warning → warn, Info → info,
/// Debug → debug, Trace → trace.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingDrain;

struct KvText(String);

impl slog::Serializer for KvText {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(
        &self,
        record: &slog::Record<'_>,
        values: &slog::OwnedKVList,
    ) -> Result<(), slog::Never> {
        let mut kv = KvText(String::new());
        let _ = slog::KV::serialize(&record.kv(), record, &mut kv);
        let _ = slog::KV::serialize(values, record, &mut kv);
        let msg = record.msg();
        match record.level() {
            slog::Level::Critical | slog::Level::Error => {
                tracing::error!(target: "raft", "{msg}{}", kv.0)
            }
            slog::Level::Warning => tracing::warn!(target: "raft", "{msg}{}", kv.0),
            slog::Level::Info => tracing::info!(target: "raft", "{msg}{}", kv.0),
            slog::Level::Debug => tracing::debug!(target: "raft", "{msg}{}", kv.0),
            slog::Level::Trace => tracing::trace!(target: "raft", "{msg}{}", kv.0),
        }
        Ok(())
    }
}

/// A root `slog::Logger` for raft-rs whose records go to `tracing`, tagged with `member`.
pub fn raft_logger(member: u64) -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!("member" => member))
}
