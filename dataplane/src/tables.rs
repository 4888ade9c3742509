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

/// Multiply-shift hashing for the neighbor maps: keys are addresses we
/// resolved ourselves, and SipHash costs more than the rest of a lookup.
#[derive(Default, Clone, Copy)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_ne_bytes(w))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(29);
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
    /// Largest inner IPv4 packet that fits (WAN MTU - 40 unless configured).
    pub mtu: u16,
}

#[derive(Clone, Debug, Default)]
pub struct Fib {
    pub wan: PortAddrs,
    pub lan: PortAddrs,
    /// Router's LAN IPv4 address and prefix length.
    pub lan_ipv4: Option<(Ipv4Addr, u8)>,
    /// The LAN /64 (network address).
    pub lan_prefix: Option<Ipv6Addr>,
    pub tunnel: Option<Tunnel>,
    /// WAN default router (link-local usually) and its MAC once resolved.
    pub gateway: Option<Ipv6Addr>,
    pub gateway_mac: Option<Mac>,
    /// LAN hosts by IPv4 (ARP) and IPv6 (NDP).
    pub arp: AddrMap<Ipv4Addr>,
    pub nd_lan: AddrMap<Ipv6Addr>,
    /// WAN neighbors other than the gateway (rare: on-link WAN hosts).
    pub nd_wan: AddrMap<Ipv6Addr>,
    /// Bumped by the control thread on every publish.
    pub generation: u64,
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
