//! ip6-reassembly: outer IPv6 fragments from the AFTR to our B4 address.
//! The AFTR fragments the outer header when a 1500-byte IPv4 packet meets
//! the 1500-byte link (RFC 6333 5.3, RFC 2473 7.2); the inner packet is
//! only whole once the outer datagram is. Each fragment is copied aside
//! into the worker's bounded reassembler; the one that completes the
//! datagram carries it on, in its own frame, to dslite-decap (or to
//! ip6-local, which applies the to-the-router policy, if it is not IPv4
//! inside). The other fragments' frames are freed. Destination Options
//! after the Fragment header (where RFC 8200 4.1 puts the tunnel exit's
//! encapsulation limit) are processed and removed once the datagram is
//! whole; ip6-input did the same for those before the Fragment header.

use crate::flow::EXT_DEST_OPTS;
use crate::graph::{Cx, NodeId};
use crate::reass::ReassError;
use crate::tunnel_opts;
use crate::wire::{put16, ETH_LEN, PROTO_IPIP};

crate::node_errors! {
    pub enum Error {
        Overlap => ("overlap", "overlapping fragments: datagram discarded (RFC 5722)"),
        TooBig => ("too-big", "reassembled datagram larger than the largest we accept"),
        Malformed => ("malformed", "bad fragment header or length"),
        Unsupported => ("unsupported", "extension headers other than hop-by-hop and destination options before the fragment header"),
        Evicted => ("evicted", "datagram dropped to make room for a newer one"),
        Timeout => ("timeout", "datagram incomplete when its time ran out"),
        BadOptions => ("bad-options", "destination options after the fragment header malformed, or one that says discard when unknown (RFC 8200 4.2)"),
        Buffered => ("buffered", "fragments held for reassembly (not a drop)"),
    }
}

pub fn process(cx: &mut Cx, pkts: &[u16]) {
    // Time out old datagrams first so their buffers serve this vector.
    let before = cx.reass.stats();
    let now_ns = cx.now_ns;
    cx.reass.expire(now_ns);
    for &i in pkts {
        let len = cx.meta[usize::from(i)].len as usize;
        let (chunk, off, scratch, reass) = cx.chunk_scratch_reass(i);
        let ip_len = len.saturating_sub(ETH_LEN).min(scratch.len());
        let start = off + ETH_LEN;
        if start + ip_len > chunk.len() {
            cx.drop(i, Error::Malformed.index());
            continue;
        }
        scratch[..ip_len].copy_from_slice(&chunk[start..start + ip_len]);
        let out = &mut chunk[start..];
        match reass.insert(&scratch[..ip_len], now_ns, out) {
            Ok(None) => {
                cx.count(Error::Buffered.index());
                cx.consume(i);
            }
            Ok(Some(total)) => {
                let m = &mut cx.meta[usize::from(i)];
                m.len = (ETH_LEN + total) as u32;
                let data = cx.data(i);
                let next = data[ETH_LEN + 6];
                // Ethernet header stays: same frame, same MACs.
                put16(data, 12, crate::wire::ETHERTYPE_IPV6);
                if next == PROTO_IPIP {
                    cx.next(i, NodeId::DsliteDecap);
                } else if next == EXT_DEST_OPTS {
                    match tunnel_opts::walk(&data[ETH_LEN..], false) {
                        Ok(p) if p.next == PROTO_IPIP && tunnel_opts::strip_packet(cx, i, p) => {
                            cx.next(i, NodeId::DsliteDecap)
                        }
                        Ok(_) => cx.next(i, NodeId::Ip6Local),
                        Err(_) => cx.drop(i, Error::BadOptions.index()),
                    }
                } else {
                    cx.next(i, NodeId::Ip6Local);
                }
            }
            Err(e) => {
                let reason = match e {
                    ReassError::Overlap => Error::Overlap,
                    ReassError::TooBig => Error::TooBig,
                    ReassError::Malformed => Error::Malformed,
                    ReassError::Unsupported => Error::Unsupported,
                };
                cx.drop(i, reason.index());
            }
        }
    }
    // Datagrams given up on don't correspond to a packet of this vector:
    // count them without a drop.
    let after = cx.reass.stats();
    for _ in before.timed_out..after.timed_out {
        cx.count(Error::Timeout.index());
    }
    for _ in before.evicted..after.evicted {
        cx.count(Error::Evicted.index());
    }
}
