//! Retry policy: which failures are worth another attempt, and how long to
//! wait before it. Pure functions, so the policy is unit-tested without I/O.

use std::time::Duration;

use tonic::{Code, Status};

use crate::config::RetrySettings;

/// The response metadata key in which a standby names the primary
/// (`host:port`) when it answers UNAVAILABLE (see `rpc.proto`).
pub const PRIMARY_METADATA_KEY: &str = "primacy-primary";

/// How often a client's calls were retried: what a failover cost its
/// callers. Counted by every clone of one `MasterClient` together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryStats {
    /// Calls that needed more than one attempt (a redirect or a back-off).
    pub retried_calls: u64,
    /// Attempts beyond each call's first, summed over every call.
    pub retries: u64,
}

/// How one failed attempt is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A standby named the primary: try it at once.
    Redirect(String),
    /// Worth another attempt after a back-off (the master is down, a
    /// connection broke, no primary yet).
    Retry,
    /// Retrying cannot help.
    Fail,
}

/// Classifies a gRPC status from the attempt against `target`.
///
/// UNAVAILABLE with a `primacy-primary` hint other than `target` is a
/// redirect. UNAVAILABLE otherwise, CANCELLED, DEADLINE_EXCEEDED, ABORTED and
/// UNKNOWN are retried, as is any status this client's transport produced
/// (it carries the I/O error as its source: connection refused, reset,
/// broken HTTP/2 stream), whatever its code. Mutations are safe to retry
/// because every attempt carries the same (client id, request seq).
/// Everything else (INVALID_ARGUMENT, UNIMPLEMENTED, ...) fails at once.
pub fn classify(status: &Status, target: &str) -> Verdict {
    if status.code() == Code::Unavailable {
        if let Some(hint) = primary_hint(status) {
            if hint != target {
                return Verdict::Redirect(hint);
            }
        }
        return Verdict::Retry;
    }
    if std::error::Error::source(status).is_some() {
        return Verdict::Retry;
    }
    match status.code() {
        Code::Cancelled | Code::DeadlineExceeded | Code::Aborted | Code::Unknown => Verdict::Retry,
        _ => Verdict::Fail,
    }
}

/// The primary named in a status's `primacy-primary` metadata, if any.
pub fn primary_hint(status: &Status) -> Option<String> {
    status
        .metadata()
        .get(PRIMARY_METADATA_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Exponential back-off: `base * 2^attempt`, at most `max_sleep`, and never
/// past the deadline (`remaining`). No jitter: the sleeps are short and
/// capped, and a deterministic schedule keeps tests reproducible.
pub fn backoff(settings: &RetrySettings, attempt: u32, remaining: Duration) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
    let sleep = settings
        .base_sleep
        .checked_mul(factor)
        .unwrap_or(settings.max_sleep)
        .min(settings.max_sleep);
    sleep.min(remaining)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RetrySettings {
        RetrySettings {
            max_duration: Duration::from_secs(120),
            base_sleep: Duration::from_millis(50),
            max_sleep: Duration::from_secs(3),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_the_deadline() {
        let s = settings();
        let long = Duration::from_secs(600);
        assert_eq!(backoff(&s, 0, long), Duration::from_millis(50));
        assert_eq!(backoff(&s, 1, long), Duration::from_millis(100));
        assert_eq!(backoff(&s, 5, long), Duration::from_millis(1600));
        assert_eq!(backoff(&s, 6, long), Duration::from_secs(3));
        assert_eq!(backoff(&s, 400, long), Duration::from_secs(3));
        assert_eq!(
            backoff(&s, 6, Duration::from_millis(7)),
            Duration::from_millis(7)
        );
    }

    #[test]
    fn unavailable_with_a_hint_redirects_unless_it_names_the_target() {
        let mut st = Status::unavailable("standby");
        st.metadata_mut()
            .insert(PRIMARY_METADATA_KEY, "h2:19998".parse().unwrap());
        assert_eq!(
            classify(&st, "h1:19998"),
            Verdict::Redirect("h2:19998".into())
        );
        assert_eq!(classify(&st, "h2:19998"), Verdict::Retry);
        assert_eq!(classify(&Status::unavailable("x"), "h1:1"), Verdict::Retry);
    }

    #[test]
    fn argument_errors_fail_and_transient_ones_retry() {
        assert_eq!(
            classify(&Status::invalid_argument("x"), "a:1"),
            Verdict::Fail
        );
        assert_eq!(classify(&Status::unimplemented("x"), "a:1"), Verdict::Fail);
        assert_eq!(classify(&Status::internal("x"), "a:1"), Verdict::Fail);
        assert_eq!(classify(&Status::cancelled("x"), "a:1"), Verdict::Retry);
        assert_eq!(classify(&Status::unknown("x"), "a:1"), Verdict::Retry);
        assert_eq!(
            classify(&Status::deadline_exceeded("x"), "a:1"),
            Verdict::Retry
        );
    }
}
