//! punt: frames for the control thread. Each is charged to its class's
//! token bucket (`police.rs`), per port; over budget it is dropped here
//! under the class's counter. The worker copies the rest into the punt
//! queue after the vector; the counters here also say how often that
//! queue was full.

use crate::graph::{Cx, PuntReason};
use crate::police::PuntClass;

crate::node_errors! {
    pub enum Error {
        Local => ("local", "for the router itself, within budget (not a drop)"),
        NeighborMiss => ("neighbor-miss", "next hop MAC unknown, held by the control thread (not a drop)"),
        QueueFull => ("queue-full", "punt queue to the control thread full"),
        NoBuffer => ("no-buffer", "no free punt buffer"),
        Reserved => ("reserved", "from the known default router or to our DHCPv6 transaction: bypasses the class budgets (not a drop)"),
        PoliceNd => ("police-nd", "NS/unsolicited NA/redirect/ARP over the ND budget"),
        PoliceNdAnswer => ("police-nd-answer", "solicited NAs to our unicast address over their budget"),
        PoliceRa => ("police-ra", "RA/RS not from the known default router, over budget"),
        PoliceDhcp4 => ("police-dhcp4", "DHCPv4 over budget"),
        PoliceDhcp6 => ("police-dhcp6", "DHCPv6 over budget (replies to our transaction are reserved)"),
        PoliceDns => ("police-dns", "DNS to the router over budget"),
        PoliceTcp => ("police-tcp", "other TCP to the router (status page, metrics, the router's own fetches) over budget"),
        PoliceIcmpError => ("police-icmp-error", "ICMP errors to the router over budget"),
        PoliceOther => ("police-other", "echo, MLD and other frames to the router over budget"),
        PoliceHeld => ("police-held", "frames waiting for a neighbor over budget"),
        PoliceReserve => ("police-reserve", "reserved frames over their own budget (a flood spoofing the router)"),
    }
}

impl Error {
    /// The drop counter of a class's budget.
    pub fn police(class: PuntClass) -> Error {
        match class {
            PuntClass::Nd => Error::PoliceNd,
            PuntClass::NdAnswer => Error::PoliceNdAnswer,
            PuntClass::Ra => Error::PoliceRa,
            PuntClass::Dhcp4 => Error::PoliceDhcp4,
            PuntClass::Dhcp6 => Error::PoliceDhcp6,
            PuntClass::Dns => Error::PoliceDns,
            PuntClass::Tcp => Error::PoliceTcp,
            PuntClass::IcmpError => Error::PoliceIcmpError,
            PuntClass::Other => Error::PoliceOther,
            PuntClass::Held => Error::PoliceHeld,
            PuntClass::Reserved => Error::PoliceReserve,
        }
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    for &i in pkts {
        let m = cx.meta[usize::from(i)];
        // Charged to the port it came in on: a flood on one side never
        // spends the other side's budget.
        if !cx.police.admit(m.rx, m.class, cx.now_ns) {
            cx.drop(i, Error::police(m.class).index());
            continue;
        }
        if m.class == PuntClass::Reserved {
            cx.count(Error::Reserved.index());
        }
        match m.punt {
            PuntReason::Local => cx.count(Error::Local.index()),
            PuntReason::NeighborMiss => cx.count(Error::NeighborMiss.index()),
        }
        cx.punt_out(i);
    }
}
