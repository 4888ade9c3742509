//! Which LAN neighbors the workers forwarded to lately. RFC 4861 drives a
//! neighbor entry by its use: a STALE entry is re-probed when used, and an
//! unused one may be collected. The neighbor engine lives on the control
//! thread, so the workers leave a mark here and the control thread reads
//! and clears the marks once a second.
//!
//! A direct-mapped array of addresses shared by all workers: marking is a
//! load and a compare per packet, and a store only when the slot holds
//! another address (or was cleared), so a busy neighbor's line stays in
//! every core's cache. Collisions lose marks for that second only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub const SLOTS: usize = 256;

pub struct NeighborUse {
    /// An IPv6 address as (high, low) halves; IPv4 as `::ffff:a.b.c.d`.
    /// (0, 0) is an empty slot.
    slots: Box<[[AtomicU64; 2]]>,
}

impl Default for NeighborUse {
    fn default() -> Self {
        NeighborUse {
            slots: (0..SLOTS).map(|_| Default::default()).collect(),
        }
    }
}

impl std::fmt::Debug for NeighborUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NeighborUse")
    }
}

impl NeighborUse {
    #[inline]
    pub fn mark_v4(&self, ip: Ipv4Addr) {
        self.mark(u128::from(ip.to_ipv6_mapped()));
    }

    #[inline]
    pub fn mark_v6(&self, ip: Ipv6Addr) {
        self.mark(u128::from(ip));
    }

    #[inline]
    fn mark(&self, ip: u128) {
        let (hi, lo) = ((ip >> 64) as u64, ip as u64);
        let k = ((lo ^ (lo >> 29) ^ hi) as usize).wrapping_mul(0x9e37_79b9) >> 7;
        let s = &self.slots[k % SLOTS];
        if s[1].load(Relaxed) != lo || s[0].load(Relaxed) != hi {
            s[0].store(hi, Relaxed);
            s[1].store(lo, Relaxed);
        }
    }

    /// The addresses marked since the last call, clearing the marks. A
    /// slot read while a worker writes it may give a mixed address: the
    /// engine then finds no such neighbor, and the next second fixes it.
    pub fn take(&self) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for s in self.slots.iter() {
            let (hi, lo) = (s[0].swap(0, Relaxed), s[1].swap(0, Relaxed));
            if hi == 0 && lo == 0 {
                continue;
            }
            let a = Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo));
            out.push(match a.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(a),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_read_once() {
        let u = NeighborUse::default();
        u.mark_v4(Ipv4Addr::new(192, 168, 2, 10));
        u.mark_v4(Ipv4Addr::new(192, 168, 2, 10));
        let v6: Ipv6Addr = "2001:db8:0:111::10".parse().unwrap();
        u.mark_v6(v6);
        let mut got = u.take();
        got.sort();
        assert_eq!(
            got,
            [IpAddr::V4(Ipv4Addr::new(192, 168, 2, 10)), IpAddr::V6(v6)]
        );
        assert!(u.take().is_empty());
    }

    #[test]
    fn a_lan_of_hosts_spreads_over_the_slots() {
        let u = NeighborUse::default();
        for h in 1..=100u8 {
            u.mark_v4(Ipv4Addr::new(192, 168, 2, h));
        }
        // Direct-mapped: some collide, most do not.
        assert!(u.take().len() >= 70);
    }
}
