//! Randomness an off-path attacker must not predict (DNS transaction ids,
//! source ports, TCP initial sequence numbers), read from the kernel's
//! CSPRNG (getrandom(2)) in batches so a draw is usually a copy, not a
//! system call.
//!
//! No seedable PRNG sits in between: a xorshift state can be recovered from
//! a few outputs (smoltcp's ISNs, the ids a LAN host sees), and with it
//! every later id and port (RFC 5452 9.2).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes fetched per getrandom(2): 32 draws of 8 bytes. Requests up to
/// 256 bytes are never cut short by a signal once the pool is ready.
const BATCH: usize = 256;

pub struct OsRandom {
    buf: [u8; BATCH],
    /// Bytes of `buf` already handed out.
    used: usize,
}

impl OsRandom {
    pub fn new() -> Self {
        OsRandom {
            buf: [0; BATCH],
            used: BATCH,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        if self.used + 8 > BATCH {
            fill_random(&mut self.buf);
            self.used = 0;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buf[self.used..self.used + 8]);
        // What was handed out is not kept.
        self.buf[self.used..self.used + 8].fill(0);
        self.used += 8;
        u64::from_ne_bytes(b)
    }
}

impl Default for OsRandom {
    fn default() -> Self {
        Self::new()
    }
}

/// A copy draws its own bytes: two engines must never share a sequence.
impl Clone for OsRandom {
    fn clone(&self) -> Self {
        Self::new()
    }
}

/// The buffered bytes are future ids and ports: never in a log line.
impl fmt::Debug for OsRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OsRandom")
    }
}

/// Kernel randomness (getrandom(2)); falls back to time and pid mixing,
/// which is enough for transaction ids and jitter if it ever fails.
pub fn fill_random(buf: &mut [u8]) {
    // getrandom(2) without flags: blocks only until the pool is seeded at
    // boot, and the crate retries on EINTR.
    if getrandom::fill(buf).is_ok() {
        return;
    }
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
        ^ u64::from(std::process::id()) << 32;
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    fill_random(&mut b);
    u64::from_ne_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ_across_batches_and_instances() {
        let mut a = OsRandom::new();
        let draws: Vec<u64> = (0..3 * BATCH / 8).map(|_| a.next_u64()).collect();
        let mut unique = draws.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), draws.len());
        let mut b = a.clone();
        assert_ne!(OsRandom::new().next_u64(), b.next_u64());
    }
}
