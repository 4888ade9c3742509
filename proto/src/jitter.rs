//! Timer jitter for the protocol engines (RFC 8415's RAND, the random
//! delays of RFC 4861 and RFC 3810): a small xorshift64* seeded by the
//! caller, so tests replay. Nothing here must stay secret from an attacker:
//! what must (DNS ids and ports) comes from `osrand`.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Self {
        // SplitMix64 finalizer: small seeds do not start with small numbers,
        // and xorshift needs a non-zero state.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Jitter(if z == 0 { 0x2545_f491_4f6c_dd1d } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi` (`lo` when `hi < lo`; modulo bias is
    /// irrelevant at these sizes).
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo);
        let span_ns = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX - 1);
        lo + Duration::from_nanos(self.next_u64() % (span_ns + 1))
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: i64, high: i64) -> i64 {
        let span = high.abs_diff(low) + 1;
        low.min(high) + (self.next_u64() % span) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_in_bounds_and_covers_them() {
        let mut j = Jitter::new(0);
        let (mut lo_seen, mut hi_seen) = (false, false);
        for _ in 0..10_000 {
            let v = j.range(-3, 3);
            assert!((-3..=3).contains(&v));
            lo_seen |= v == -3;
            hi_seen |= v == 3;
            let d = j.between(Duration::from_millis(5), Duration::from_millis(7));
            assert!(d >= Duration::from_millis(5) && d <= Duration::from_millis(7));
        }
        assert!(lo_seen && hi_seen);
        assert_eq!(
            j.between(Duration::from_secs(2), Duration::from_secs(1)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn seeds_give_different_sequences() {
        let (mut a, mut b) = (Jitter::new(1), Jitter::new(2));
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
