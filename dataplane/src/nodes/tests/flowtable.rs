//! Issue 17: the firewall nodes look their sessions up a chunk at a time,
//! yet every packet still sees what the packets before it in the vector
//! did to the firewall's state.

use super::{aftr_frame, fix_ipv4_checksum, inet_reply, lan_tcp_syn, Bench};
use crate::graph::NodeId;
use crate::tables::Port;
use crate::testkit::{lab_fib, AFTR};

/// The server's first fragment (admitted with its session) and its second
/// fragment (offset 16) in the same vector: the second needs the first's
/// admission, made in the same chunk.
#[test]
fn a_later_fragment_follows_its_first_fragment_in_the_same_vector() {
    let fib = lab_fib();
    let mut first = inet_reply(50);
    first[6] = 0x20; // MF
    fix_ipv4_checksum(&mut first[..20]);
    let mut second = inet_reply(50);
    second[6..8].copy_from_slice(&2u16.to_be_bytes()); // offset 2 (16 bytes)
    fix_ipv4_checksum(&mut second[..20]);
    let mut b = Bench::new(&[
        (Port::Wan, aftr_frame(AFTR, &first)),
        (Port::Wan, aftr_frame(AFTR, &second)),
    ]);
    b.open(&fib, &[(Port::Lan, lan_tcp_syn(64, 0, b""))]);
    b.run(&fib);
    assert_eq!(b.err(NodeId::Ip4Firewall, "fragment-unadmitted"), 0);
    assert_eq!(b.tx(Port::Lan).len(), 2);
}

/// A later fragment whose first fragment never came is still dropped.
#[test]
fn a_later_fragment_alone_is_still_dropped() {
    let fib = lab_fib();
    let mut second = inet_reply(50);
    second[6..8].copy_from_slice(&2u16.to_be_bytes());
    fix_ipv4_checksum(&mut second[..20]);
    let mut b = Bench::new(&[(Port::Wan, aftr_frame(AFTR, &second))]);
    b.open(&fib, &[(Port::Lan, lan_tcp_syn(64, 0, b""))]);
    b.run(&fib);
    assert_eq!(b.err(NodeId::Ip4Firewall, "fragment-unadmitted"), 1);
    assert_eq!(b.tx(Port::Lan).len(), 0);
}
