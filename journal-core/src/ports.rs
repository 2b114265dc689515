//! Free loopback ports for tests, demos and launchers that start servers on
//! ports they choose.
//!
//! Asking the kernel for port 0 and releasing it returns a port from the
//! ephemeral range, which the kernel hands out again for the very next
//! outgoing connection: a Raft peer or gRPC client of the same machine can
//! take it before the server that was meant to bind it starts. These ports
//! are chosen **below** the ephemeral range instead, from a per-process
//! cursor that starts at a random place and never hands a port out twice,
//! and each is checked to be bindable when it is chosen.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// First port of the range ports are chosen from.
const LOW: u32 = 10_000;
/// One past the last port of the range (Linux's ephemeral range starts at
/// 32768 by default).
const HIGH: u32 = 32_000;

/// Offset into the range of the next candidate; `u32::MAX` until seeded.
static CURSOR: AtomicU32 = AtomicU32::new(u32::MAX);

fn seed() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (std::process::id().wrapping_mul(7919) ^ nanos) % (HIGH - LOW)
}

/// A TCP port on 127.0.0.1 that nothing listens on right now, outside the
/// kernel's ephemeral range, and not handed out before by this process.
/// Another process may still take it before it is used (rarely: processes
/// start at different random places in the range).
pub fn free_loopback_port() -> std::io::Result<u16> {
    let _ = CURSOR.compare_exchange(u32::MAX, seed(), Ordering::AcqRel, Ordering::Acquire);
    for _ in 0..(HIGH - LOW) {
        let offset = CURSOR.fetch_add(1, Ordering::AcqRel) % (HIGH - LOW);
        let port = u16::try_from(LOW + offset).unwrap_or(u16::MAX);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free loopback port between {LOW} and {HIGH}"),
    ))
}

/// `n` distinct ports as [`free_loopback_port`] chooses them.
pub fn free_loopback_ports(n: usize) -> std::io::Result<Vec<u16>> {
    (0..n).map(|_| free_loopback_port()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports = free_loopback_ports(200).unwrap();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ports.len(), "a port was handed out twice");
        for p in ports {
            assert!((LOW..HIGH).contains(&u32::from(p)), "{p}");
            assert!(TcpListener::bind(("127.0.0.1", p)).is_ok(), "{p} is in use");
        }
    }
}
