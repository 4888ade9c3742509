//! interface-output: last check before the TX ring of the egress port.

use crate::graph::Cx;
use crate::wire::ETH_LEN;

crate::node_errors! {
    pub enum Error {
        TooLong => ("too-long", "frame longer than the egress MTU allows"),
        TxRingFull => ("tx-ring-full", "no room on the TX ring"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    for &i in pkts {
        let m = cx.meta[usize::from(i)];
        let mtu = usize::from(cx.fib.port(m.tx).mtu);
        if m.len as usize > ETH_LEN + mtu {
            cx.drop(i, Error::TooLong.index());
            continue;
        }
        cx.transmit(i);
    }
}
