//! ip4-fragment: MAP-E only. A translated IPv4 packet without DF that is
//! larger than the tunnel's inner MTU is cut into IPv4 fragments (RFC 791
//! 3.2) before dslite-encap, so that no outer IPv6 packet is fragmented:
//! MAP-E BRs need not reassemble IPv6 fragments (RFC 7597 8.3.1 lets the CE
//! fragment the IPv4 packet instead). DS-Lite keeps outer fragmentation
//! (ip6-fragment). Two pieces always suffice: the inner MTU is at least
//! 1240 bytes and a packet at most 1778. The first piece stays in its
//! frame; the second is built in a spare frame, like ip6-fragment's.

use crate::frag4::{self, Refused};
use crate::graph::{Cx, NodeId};

crate::node_errors! {
    pub enum Error {
        TooBig => ("too-big", "does not fit in two fragments at the tunnel MTU"),
        NoFrames => ("no-frames", "no spare frame for the second fragment"),
        Options => ("options", "IPv4 options: sent whole, the outer packet fragmented (not a drop)"),
        Fragmented => ("fragmented", "packets sent as two IPv4 fragments (not a drop)"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    let Some(tun) = cx.fib.tunnel else {
        // dslite-encap names the missing tunnel.
        for &i in pkts {
            cx.next(i, NodeId::DsliteEncap);
        }
        return;
    };
    let mtu = usize::from(tun.mtu);
    for &i in pkts {
        // A spare frame that cannot be paired is freed: only the packet
        // counts as a drop here.
        match frag4::split(cx, i, mtu, None) {
            Ok(Some(j)) => {
                cx.count(Error::Fragmented.index());
                cx.next(i, NodeId::DsliteEncap);
                cx.next(j, NodeId::DsliteEncap);
            }
            Ok(None) => cx.next(i, NodeId::DsliteEncap),
            Err(Refused::Options) => {
                // Sorting options by their copy flag is not worth it for
                // traffic that never carries them: the old way instead.
                cx.count(Error::Options.index());
                cx.next(i, NodeId::DsliteEncap);
            }
            Err(Refused::TooBig) => cx.drop(i, Error::TooBig.index()),
            Err(Refused::NoFrame) => cx.drop(i, Error::NoFrames.index()),
        }
    }
}
