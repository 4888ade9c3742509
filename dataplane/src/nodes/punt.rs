//! punt: frames for the control thread. The worker copies them into the
//! punt queue after the vector; the counters here say why and how often
//! that queue was full.

use crate::graph::{Cx, PuntReason};

crate::node_errors! {
    pub enum Error {
        Local => ("local", "for the router itself (not a drop)"),
        NeighborMiss => ("neighbor-miss", "next hop MAC unknown, held by the control thread (not a drop)"),
        QueueFull => ("queue-full", "punt queue to the control thread full"),
        NoBuffer => ("no-buffer", "no free punt buffer"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    for &i in pkts {
        match cx.meta[usize::from(i)].punt {
            PuntReason::Local => cx.count(Error::Local.index()),
            PuntReason::NeighborMiss => cx.count(Error::NeighborMiss.index()),
        }
        cx.punt_out(i);
    }
}
