//! Virtual reassembly of inbound IPv4 fragments for the shared address:
//! later fragments carry no ports, so they take the translation of their
//! datagram's first fragment, remembered here by (source, destination,
//! identification, protocol) for a few seconds. Nothing is buffered: a
//! later fragment that arrives before its first one (outside the vector
//! nat44-in reorders) is dropped, as is one whose entry was evicted.
//!
//! One per worker (no lock): a tunnel's inbound traffic all hashes to one
//! queue. Set-associative and fixed size; a new datagram takes an empty or
//! expired way of its set, else evicts the way that expires first
//! (counted). Sans-IO: every call takes the time in seconds.

/// How long the rest of a datagram may trail its first fragment (as the
/// firewall's fragment admission).
pub const HOLD_S: u32 = 5;
const WAYS: usize = 4;
const SETS: usize = 256;
/// Datagrams remembered at most.
pub const CAPACITY: usize = WAYS * SETS;

#[derive(Clone, Copy, Default)]
struct Entry {
    src: u32,
    dst: u32,
    id: u16,
    proto: u8,
    used: bool,
    /// The LAN host's address, the translation of the destination.
    to: u32,
    until_s: u32,
}

/// The key of a datagram: (source, destination, identification, protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragKey {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub id: u16,
    pub proto: u8,
}

impl FragKey {
    /// From an IPv4 header (at least 20 bytes; `None` otherwise).
    pub fn of(ip: &[u8]) -> Option<Self> {
        let h = ip.get(..20)?;
        Some(FragKey {
            src: [h[12], h[13], h[14], h[15]],
            dst: [h[16], h[17], h[18], h[19]],
            id: u16::from_be_bytes([h[4], h[5]]),
            proto: h[9],
        })
    }
}

pub struct NatFrags {
    sets: Box<[[Entry; WAYS]]>,
    /// A live datagram's entry replaced by a new one (its later fragments
    /// will be dropped).
    pub evicted: u64,
}

impl Default for NatFrags {
    fn default() -> Self {
        NatFrags {
            sets: vec![[Entry::default(); WAYS]; SETS].into_boxed_slice(),
            evicted: 0,
        }
    }
}

fn live(e: &Entry, now_s: u32) -> bool {
    e.used && (e.until_s.wrapping_sub(now_s) as i32) >= 0
}

impl NatFrags {
    fn set_of(k: &FragKey) -> usize {
        let x = u64::from(u32::from_be_bytes(k.src)) << 32 | u64::from(u32::from_be_bytes(k.dst));
        let h = (x ^ u64::from(k.id) << 8 ^ u64::from(k.proto)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 56) as usize % SETS
    }

    fn matches(e: &Entry, k: &FragKey) -> bool {
        e.used
            && e.id == k.id
            && e.proto == k.proto
            && e.src == u32::from_be_bytes(k.src)
            && e.dst == u32::from_be_bytes(k.dst)
    }

    /// Remembers that datagram `k`'s destination became `to` (its first
    /// fragment was translated at `now_s`).
    pub fn insert(&mut self, k: &FragKey, to: [u8; 4], now_s: u32) {
        let set = &mut self.sets[Self::set_of(k)];
        let way = match set.iter().position(|e| Self::matches(e, k)) {
            Some(w) => w,
            None => match set.iter().position(|e| !live(e, now_s)) {
                Some(w) => w,
                None => {
                    self.evicted += 1;
                    let soonest = set
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, e)| e.until_s.wrapping_sub(now_s))
                        .map_or(0, |(w, _)| w);
                    soonest
                }
            },
        };
        set[way] = Entry {
            src: u32::from_be_bytes(k.src),
            dst: u32::from_be_bytes(k.dst),
            id: k.id,
            proto: k.proto,
            used: true,
            to: u32::from_be_bytes(to),
            until_s: now_s.wrapping_add(HOLD_S),
        };
    }

    /// The destination to give a later fragment of datagram `k`, if its
    /// first fragment passed no more than [`HOLD_S`] seconds ago.
    pub fn lookup(&self, k: &FragKey, now_s: u32) -> Option<[u8; 4]> {
        self.sets[Self::set_of(k)]
            .iter()
            .find(|e| Self::matches(e, k) && live(e, now_s))
            .map(|e| e.to.to_be_bytes())
    }

    /// Datagrams remembered and not expired at `now_s`; for tests and stats.
    pub fn len(&self, now_s: u32) -> usize {
        self.sets
            .iter()
            .flat_map(|s| s.iter())
            .filter(|e| live(e, now_s))
            .count()
    }

    pub fn is_empty(&self, now_s: u32) -> bool {
        self.len(now_s) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> FragKey {
        FragKey {
            src: (0xc633_6400 | (i & 0xff)).to_be_bytes(),
            dst: [203, 0, 113, 77],
            id: (i >> 8) as u16,
            proto: 17,
        }
    }

    #[test]
    fn a_datagram_is_matched_exactly_and_only_for_its_hold_time() {
        let mut f = NatFrags::default();
        let k = key(1);
        f.insert(&k, [192, 168, 2, 10], 100);
        assert_eq!(f.lookup(&k, 100), Some([192, 168, 2, 10]));
        assert_eq!(f.lookup(&k, 100 + HOLD_S), Some([192, 168, 2, 10]));
        assert_eq!(f.lookup(&k, 101 + HOLD_S), None);
        for other in [
            FragKey { id: k.id ^ 1, ..k },
            FragKey { proto: 6, ..k },
            FragKey {
                src: [198, 51, 100, 2],
                ..k
            },
            FragKey {
                dst: [203, 0, 113, 78],
                ..k
            },
        ] {
            assert_eq!(f.lookup(&other, 100), None, "{other:?}");
        }
    }

    #[test]
    fn a_full_table_evicts_counts_and_stays_bounded() {
        let mut f = NatFrags::default();
        let n = 3 * CAPACITY as u32;
        for i in 0..n {
            f.insert(&key(i), [192, 168, 2, 10], 100);
        }
        assert_eq!(f.len(100), CAPACITY);
        assert_eq!(f.evicted, u64::from(n) - CAPACITY as u64);
        // The newest is always kept.
        assert!(f.lookup(&key(n - 1), 100).is_some());
        // Once expired, the entries are reused, nothing live is evicted
        // (a quarter of the capacity: no set gets more than its ways).
        let before = f.evicted;
        for i in 0..(CAPACITY / 4) as u32 {
            f.insert(&key(n + i), [192, 168, 2, 11], 100 + HOLD_S + 1);
        }
        assert_eq!(f.evicted, before);
        assert_eq!(f.len(100 + HOLD_S + 1), CAPACITY / 4);
    }
}
