//! The closed loop every scenario and every peer runs: `concurrency`
//! callers, each issuing its next operation as soon as the previous one is
//! acknowledged, until the time or the operation budget is spent; each
//! latency goes into an HDR histogram.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds up to this (a minute).
const MAX_MICROS: u64 = 60_000_000;

/// When a measurement stops: whichever comes first.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long the callers keep issuing operations.
    pub duration: Duration,
    /// At most this many operations in all (a smoke run's tiny budget).
    pub max_ops: Option<u64>,
}

/// What one closed-loop measurement saw.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Acknowledged operations.
    pub ops: u64,
    /// Failed operations (not in the histogram).
    pub errors: u64,
    /// The first failure's message, if any.
    pub first_error: Option<String>,
    /// From the first call to the last acknowledgement.
    pub elapsed: Duration,
    /// Latency of each acknowledged operation, in microseconds.
    pub latency: Histogram<u64>,
}

impl Sample {
    /// Acknowledged operations per second (0 when nothing was measured).
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }

    /// The latency at `quantile` (0..=1) in milliseconds.
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_MICROS, 3) {
        Ok(h) => h,
        // The bounds are constants that satisfy hdrhistogram's rules.
        Err(e) => unreachable!("constant histogram bounds rejected: {e}"),
    }
}

/// Runs `op(caller, n)` from `concurrency` callers until `limits` stop it
/// (`n` is a unique operation number, 0, 1, 2, ... across callers).
/// Returns when every caller finished its last operation.
pub async fn closed_loop<F, Fut>(concurrency: usize, limits: Limits, op: F) -> Sample
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + limits.duration;
    let budget = limits.max_ops.unwrap_or(u64::MAX);
    let mut callers = Vec::with_capacity(concurrency);
    for caller in 0..concurrency.max(1) {
        let op = op.clone();
        let next = next.clone();
        callers.push(tokio::spawn(async move {
            let mut hist = histogram();
            let (mut errors, mut first_error) = (0u64, None::<String>);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= budget || Instant::now() >= deadline {
                    break;
                }
                let t0 = Instant::now();
                match op(caller, n).await {
                    Ok(()) => {
                        let us = t0.elapsed().as_micros();
                        let us = u64::try_from(us).unwrap_or(MAX_MICROS).clamp(1, MAX_MICROS);
                        let _ = hist.record(us);
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (hist, errors, first_error, Instant::now())
        }));
    }
    let mut latency = histogram();
    let (mut errors, mut first_error, mut last) = (0, None, start);
    for caller in callers {
        match caller.await {
            Ok((hist, e, first, end)) => {
                let _ = latency.add(&hist);
                errors += e;
                if first_error.is_none() {
                    first_error = first;
                }
                last = last.max(end);
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(format!("caller task failed: {e}"));
            }
        }
    }
    Sample {
        ops: latency.len(),
        errors,
        first_error,
        elapsed: last.duration_since(start),
        latency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_budget_bounds_the_operations_and_errors_are_counted_apart() {
        let limits = Limits {
            duration: Duration::from_secs(30),
            max_ops: Some(100),
        };
        let s = closed_loop(4, limits, |_, n| async move {
            if n % 10 == 0 {
                Err(format!("op {n} failed"))
            } else {
                Ok(())
            }
        })
        .await;
        assert_eq!(s.ops + s.errors, 100);
        assert_eq!(s.errors, 10);
        assert!(s.first_error.is_some());
    }
}
