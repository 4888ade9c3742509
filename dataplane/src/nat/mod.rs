//! NAPT44 (issue 18): the external ports a router that owns one IPv4
//! address, or only a MAP-E port set of one, hands to its LAN hosts' flows.
//!
//! Sans-IO like the protocol engines: every call takes the time (`now`, in
//! the session table's seconds) from the caller, so the tests drive a fake
//! clock; nothing here allocates after construction.

pub mod bindings;
pub mod frags;
pub mod ports;
pub mod rewrite;

use std::net::{Ipv4Addr, Ipv6Addr};

use ipoe_proto::map::{IidFormat, PortSet, Rule};

/// A MAP-E Forwarding Mapping Rule: peer CEs under it may send to us
/// directly, from the address the rule gives their IPv4 source and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fmr {
    pub rule: Rule,
    pub iid: IidFormat,
}

impl Fmr {
    /// The MAP address of the CE owning `src` and `port` under the rule;
    /// `None` when no CE does (or there is no port).
    #[inline]
    pub fn owner_of(&self, src: Ipv4Addr, port: Option<u16>) -> Option<Ipv6Addr> {
        self.rule.ce_address_for(src, port?, self.iid)
    }
}

/// The ports a NAPT may use on its external address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortPool {
    /// A MAP-E port set: every run of the PSID, not only the first.
    Set(PortSet),
    /// `first..=last`, for an address the router owns whole.
    Range { first: u16, last: u16 },
}

/// Ports a NAPT with a whole address uses: the dynamic range of RFC 6335 6
/// would leave only 16k, so everything above the system ports, which LAN
/// servers reached through port forwards may need.
pub const WHOLE_ADDRESS: PortPool = PortPool::Range {
    first: 1024,
    last: 65535,
};

/// A fixed IPv4 address (IPIP): every port, so that port forwards may use
/// the system ports too (a home web server on 80 and 443 is why people pay
/// for one); [`Bindings::reserving_system_ports`] keeps the allocator above
/// them, as with [`WHOLE_ADDRESS`].
///
/// [`Bindings::reserving_system_ports`]: bindings::Bindings::reserving_system_ports
pub const FIXED_ADDRESS: PortPool = PortPool::Range {
    first: 1,
    last: 65535,
};

impl PortPool {
    /// A MAP-E set; one without a PSID (the CE owns the whole address) is
    /// [`WHOLE_ADDRESS`], not all 65536 ports.
    pub fn from_set(set: PortSet) -> Self {
        if set.is_unrestricted() {
            WHOLE_ADDRESS
        } else {
            PortPool::Set(set)
        }
    }

    /// Ports in the pool (port 0 included when the set has it; the
    /// allocator never hands that one out).
    pub fn len(&self) -> u32 {
        match *self {
            PortPool::Set(s) => s.len(),
            PortPool::Range { first, last } => {
                (u32::from(last) + 1).saturating_sub(u32::from(first))
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The port at dense index `index` (0..len), ascending.
    #[inline]
    pub fn port_at(&self, index: u32) -> Option<u16> {
        match *self {
            PortPool::Set(s) => s.port_at(index),
            PortPool::Range { first, .. } => {
                (index < self.len()).then(|| (u32::from(first) + index) as u16)
            }
        }
    }

    /// The dense index of `port`, or `None` when the pool lacks it.
    #[inline]
    pub fn index_of(&self, port: u16) -> Option<u32> {
        match *self {
            PortPool::Set(s) => s.index_of(port),
            PortPool::Range { first, last } => (first..=last)
                .contains(&port)
                .then(|| u32::from(port - first)),
        }
    }

    /// The contiguous runs, `(first, last)` inclusive, ascending.
    pub fn runs(&self) -> Vec<(u16, u16)> {
        match *self {
            PortPool::Set(s) => s.runs().collect(),
            PortPool::Range { first, last } if first <= last => vec![(first, last)],
            PortPool::Range { .. } => Vec::new(),
        }
    }
}

#[cfg(test)]
mod session_tests;

#[cfg(test)]
mod batch_tests;
