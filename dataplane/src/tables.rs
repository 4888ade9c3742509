//! Tables the workers read. The control thread owns them and publishes a new
//! immutable `Fib` snapshot through `arc_swap` on every change; a worker loads
//! the snapshot once per vector, so it never sees half an update.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::wire::Mac;

/// Which interface a frame came in on or goes out of. The discriminant is
/// the BPF port number and the index into per-port arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Port {
    Wan = 0,
    Lan = 1,
}

impl Port {
    pub const ALL: [Port; 2] = [Port::Wan, Port::Lan];
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn name(self) -> &'static str {
        match self {
            Port::Wan => "wan",
            Port::Lan => "lan",
        }
    }
}

/// A cheap hasher for the neighbor maps: keys are addresses we resolved
/// ourselves, and SipHash costs more than the rest of a lookup. `finish`
/// mixes every input bit into the low bits the map indexes by (murmur3's
/// fmix64): std hashes an Ipv4Addr so that its host byte is the *top* byte,
/// and a bare multiply never moves it down, which put a whole /24 in one
/// probe chain.
#[derive(Default, Clone, Copy)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_ne_bytes(w)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (self.0 ^ u64::from(v)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

pub type AddrMap<K> = HashMap<K, Mac, BuildHasherDefault<AddrHasher>>;

/// Addresses of one interface as the workers need them.
#[derive(Clone, Debug, Default)]
pub struct PortAddrs {
    pub mac: Mac,
    pub mtu: u16,
    pub link_local: Option<Ipv6Addr>,
    /// Global IPv6 address (WAN: SLAAC/static; LAN: the router's address in the LAN /64).
    pub ipv6: Option<Ipv6Addr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tunnel {
    /// Our end (RFC 6333 B4 element).
    pub b4: Ipv6Addr,
    pub aftr: Ipv6Addr,
    /// Largest inner IPv4 packet that fits: `dslite.mtu`, lowered to the
    /// WAN link MTU (the RA's) and the path MTU learned from Packet Too
    /// Big, each minus the 40-byte outer header.
    pub mtu: u16,
    /// Hop limit of the outer header: the WAN RA's Cur Hop Limit, else 64.
    pub hop_limit: u8,
}

#[derive(Clone, Debug, Default)]
pub struct Fib {
    pub wan: PortAddrs,
    pub lan: PortAddrs,
    /// Router's LAN IPv4 address and prefix length.
    pub lan_ipv4: Option<(Ipv4Addr, u8)>,
    /// The LAN /64 (network address).
    pub lan_prefix: Option<Ipv6Addr>,
    /// `lan_prefix` is the WAN's RA /64, proxied (issue 19): it is on-link
    /// on both ports. A destination in it is a LAN host when `nd_lan`
    /// knows it, else a WAN neighbor; WAN NS/NA for it go to the router.
    pub lan_proxy: bool,
    /// Earlier LAN /64s still advertised as deprecated after renumbering:
    /// their traffic gets ICMPv6 unreachable code 5. A handful at most.
    pub stale_lan_prefixes: Vec<[u8; 8]>,
    pub tunnel: Option<Tunnel>,
    /// WAN default router (link-local usually) and its MAC once resolved.
    pub gateway: Option<Ipv6Addr>,
    pub gateway_mac: Option<Mac>,
    /// LAN hosts by IPv4 (ARP) and IPv6 (NDP).
    pub arp: AddrMap<Ipv4Addr>,
    pub nd_lan: AddrMap<Ipv6Addr>,
    /// WAN neighbors other than the gateway (rare: on-link WAN hosts).
    pub nd_wan: AddrMap<Ipv6Addr>,
    /// What the firewall nodes enforce.
    pub firewall: crate::firewall::Policy,
    /// NAPT44 onto a shared address (MAP-E): LAN IPv4 goes through
    /// nat44-out into the tunnel, and what the tunnel brings for that
    /// address through nat44-in (instead of ip4-firewall both ways).
    pub napt: Option<Arc<crate::nat::bindings::Bindings>>,
    /// MAP-E direct CE-to-CE: whose IPv4-in-IPv6 dslite-decap accepts
    /// besides the BR's (the tunnel's AFTR).
    pub map_fmr: Option<crate::nat::Fmr>,
    /// Bumped by the control thread on every publish.
    pub generation: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    /// Hosts of one /24 must spread over the buckets (the low bits).
    #[test]
    fn lan_hosts_spread_over_buckets() {
        let b = BuildHasherDefault::<AddrHasher>::default();
        let mut low: Vec<u64> = (0..=255u8)
            .map(|h| b.hash_one(Ipv4Addr::new(192, 168, 2, h)) & 0xff)
            .collect();
        low.sort();
        low.dedup();
        assert!(
            low.len() > 140,
            "only {} distinct low bytes of 256",
            low.len()
        );
        let mut low6: Vec<u64> = (0..=255u16)
            .map(|h| b.hash_one(Ipv6Addr::new(0x2001, 0xdb8, 0, 0x111, 0, 0, 0, h)) & 0xff)
            .collect();
        low6.sort();
        low6.dedup();
        assert!(
            low6.len() > 140,
            "only {} distinct low bytes of 256 (IPv6)",
            low6.len()
        );
    }
}

impl Fib {
    pub fn port(&self, p: Port) -> &PortAddrs {
        match p {
            Port::Wan => &self.wan,
            Port::Lan => &self.lan,
        }
    }

    #[inline]
    pub fn in_lan_prefix(&self, a: &[u8; 16]) -> bool {
        match &self.lan_prefix {
            Some(p) => p.octets()[..8] == a[..8],
            None => false,
        }
    }

    /// In the proxied /64 and not a known LAN host: on-link on the WAN.
    #[inline]
    pub fn proxied_wan_neighbor(&self, a: &[u8; 16]) -> bool {
        self.lan_proxy && self.in_lan_prefix(a) && !self.nd_lan.contains_key(&Ipv6Addr::from(*a))
    }

    #[inline]
    pub fn in_stale_lan_prefix(&self, a: &[u8; 16]) -> bool {
        self.stale_lan_prefixes.iter().any(|p| p[..] == a[..8])
    }

    #[inline]
    pub fn in_lan_ipv4(&self, a: u32) -> bool {
        match self.lan_ipv4 {
            Some((addr, len)) => {
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(len))
                };
                (u32::from(addr) & mask) == (a & mask)
            }
            None => false,
        }
    }

    /// One of the router's own IPv6 unicast addresses (either side).
    #[inline]
    pub fn is_own_ipv6(&self, a: &Ipv6Addr) -> bool {
        [&self.wan, &self.lan]
            .iter()
            .any(|p| p.ipv6.as_ref() == Some(a) || p.link_local.as_ref() == Some(a))
            || self.tunnel.map(|t| t.b4 == *a).unwrap_or(false)
    }
}

/// The published snapshot, shared by the control thread (writer) and the
/// workers (readers).
#[derive(Clone)]
pub struct SharedFib(Arc<ArcSwap<Fib>>);

impl SharedFib {
    pub fn new(fib: Fib) -> Self {
        SharedFib(Arc::new(ArcSwap::from_pointee(fib)))
    }
    pub fn load(&self) -> arc_swap::Guard<Arc<Fib>> {
        self.0.load()
    }
    pub fn load_full(&self) -> Arc<Fib> {
        self.0.load_full()
    }
    /// Publish a new table; readers switch at their next vector.
    pub fn publish(&self, mut fib: Fib) {
        fib.generation = self.0.load().generation + 1;
        self.0.store(Arc::new(fib));
    }
}
