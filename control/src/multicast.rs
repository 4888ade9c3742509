//! The groups each port listens to, kept in step with the addresses the
//! neighbor engine holds: the NIC filter (`mcast_filter`) and the MLD host
//! (`mld`) of each port get the same set, recomputed only when the inputs
//! change.

use std::collections::BTreeSet;
use std::net::Ipv6Addr;
use std::time::Instant;

use crate::mcast_filter::McastFilter;
use ipoe_proto::mld::{self, Mld, MldConfig, Role};
use ipoe_proto::neigh::{Mac, Outgoing, Side};

/// What the set of one port was computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Inputs {
    role: Role,
    own: Vec<Ipv6Addr>,
    source: Ipv6Addr,
}

pub struct Multicast {
    filter: Option<McastFilter>,
    pub wan: Mld,
    pub lan: Mld,
    last: [Option<Inputs>; 2],
}

impl Multicast {
    /// Opens the filter socket: before the privileges go.
    pub fn new(wan: (Mac, u16), lan: (Mac, u16), seed: u64) -> Self {
        let filter = match McastFilter::open() {
            Ok(f) => Some(f),
            Err(e) => {
                log::error!(
                    "multicast filter: cannot open an AF_PACKET socket ({e}); a NIC that filters \
                     multicast will drop RS, DHCPv6 and NS for ipoed (workaround: \
                     `ip link set IF allmulticast on`)"
                );
                None
            }
        };
        let mld = |(mac, mtu): (Mac, u16), seed| {
            Mld::new(
                MldConfig {
                    mtu: usize::from(mtu),
                    ..MldConfig::default()
                },
                mac,
                seed,
            )
        };
        Self {
            filter,
            wan: mld(wan, seed),
            lan: mld(lan, seed.rotate_left(17)),
            last: [None, None],
        }
    }

    pub fn mld(&mut self, side: Side) -> &mut Mld {
        match side {
            Side::Wan => &mut self.wan,
            Side::Lan => &mut self.lan,
        }
    }

    /// The port's addresses (tentative ones included), its role and the
    /// address MLD is sent from; filter and MLD follow when they changed.
    pub fn sync(
        &mut self,
        now: Instant,
        side: Side,
        (ifindex, name): (u32, &str),
        role: Role,
        own: Vec<Ipv6Addr>,
        source: Ipv6Addr,
    ) {
        let inputs = Inputs { role, own, source };
        let slot = match side {
            Side::Wan => 0,
            Side::Lan => 1,
        };
        if self.last[slot].as_ref() == Some(&inputs) {
            return;
        }
        let groups = mld::memberships(role, &inputs.own);
        if self.last[slot].as_ref().map(|l| (l.role, &l.own)) != Some((role, &inputs.own)) {
            log::info!(
                "{name}: listening to {}",
                groups
                    .iter()
                    .map(|g| g.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        if let Some(f) = &mut self.filter {
            let macs: BTreeSet<Mac> = groups
                .iter()
                .map(|g| mld::wire::multicast_mac(*g))
                .collect();
            f.sync(ifindex, name, &macs);
        }
        self.mld(side).set_groups(now, &groups, source);
        self.last[slot] = Some(inputs);
    }

    /// Both MLD hosts' timers; returns the next deadline.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Outgoing>) -> Option<Instant> {
        let mut next = None;
        for side in [Side::Wan, Side::Lan] {
            let mut frames = Vec::new();
            let t = self.mld(side).poll(now, &mut frames);
            out.extend(frames.into_iter().map(|frame| Outgoing { side, frame }));
            next = [next, t].into_iter().flatten().min();
        }
        next
    }

    /// All multicast on an interface (see `McastFilter::set_allmulti`).
    pub fn set_allmulti(&mut self, ifindex: u32, name: &str, on: bool) {
        if let Some(f) = &mut self.filter {
            f.set_allmulti(ifindex, name, on);
        }
    }

    pub fn filter_errors(&self) -> u64 {
        self.filter.as_ref().map_or(0, |f| f.errors)
    }

    /// The Ethernet addresses the filter holds for us on `ifindex`.
    pub fn filter_joined(&self, ifindex: u32) -> Vec<String> {
        self.filter.as_ref().map_or_else(Vec::new, |f| {
            f.joined(ifindex)
                .into_iter()
                .map(crate::mcast_filter::show)
                .collect()
        })
    }
}
