//! MAP-E: a DF-clear packet too big for the tunnel leaves as IPv4
//! fragments of at most the inner MTU, each in its own unfragmented IPv6
//! packet (a BR may not reassemble outer fragments). DS-Lite's outer
//! fragmentation is `tests::mtu::m5_outer_fragmentation_uses_tunnel_mtu`.

use super::*;
use crate::nodes::ip4_fragment;
use crate::wire::{checksum, put16, sum16};

const ID: u16 = 0x1234;

/// `run` with `spare` spare frames (for the pieces ip4-fragment makes).
fn run_spare(
    g: &mut Graph,
    fib: &Fib,
    frames: &[(Port, Vec<u8>)],
    spare: usize,
    now_s: u64,
) -> Vec<(Port, Vec<u8>)> {
    let mut a = FrameArena::new(frames.len() + spare);
    for k in 0..spare {
        g.spare
            .push(((frames.len() + k) * crate::FRAME_SIZE) as u64);
    }
    a.run(g, fib, &crate::testkit::as_refs(frames), now_s * SEC);
    let mut out = Vec::new();
    for p in Port::ALL {
        for &i in g.out.tx[p.index()].as_slice() {
            out.push((p, a.packet(g, i).to_vec()));
        }
    }
    out
}

/// The LAN host's fragments of IPv4 datagram `ip` (20-byte header, DF
/// clear) at `mtu`, as Ethernet frames.
fn lan_fragments(ip: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let data = &ip[20..];
    let step = (mtu - 20) & !7;
    (0..data.len())
        .step_by(step)
        .map(|off| {
            let end = (off + step).min(data.len());
            let mut h = ip[..20].to_vec();
            put16(&mut h, 2, (20 + end - off) as u16);
            put16(&mut h, 4, ID);
            let more = if end < data.len() { 0x2000 } else { 0 };
            put16(&mut h, 6, (off / 8) as u16 | more);
            put16(&mut h, 10, 0);
            let c = checksum(&h);
            put16(&mut h, 10, c);
            let mut f = Vec::new();
            f.extend_from_slice(&LAN_MAC);
            f.extend_from_slice(&HOST_MAC);
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            f.extend_from_slice(&h);
            f.extend_from_slice(&data[off..end]);
            f
        })
        .collect()
}

/// One IPv4 fragment sent toward the BR: checked (no IPv6 fragment
/// header, at most the inner MTU, valid header checksum, DF clear), as
/// (byte offset, more fragments, data, header).
fn piece(frame: &[u8]) -> (usize, bool, Vec<u8>, Vec<u8>) {
    let ip = inner_of(frame);
    assert!(ip.len() <= 1460, "{} bytes inside the tunnel", ip.len());
    assert_eq!(usize::from(u16::from_be_bytes([ip[2], ip[3]])), ip.len());
    assert_eq!(checksum(&ip[..20]), 0, "header checksum");
    let field = u16::from_be_bytes([ip[6], ip[7]]);
    assert_eq!(field & 0x4000, 0, "DF clear");
    (
        usize::from(field & 0x1fff) * 8,
        field & 0x2000 != 0,
        ip[20..].to_vec(),
        ip[..20].to_vec(),
    )
}

/// The pieces put back together by offset: contiguous from `base`, MF on
/// all but the last, which has `last_more`.
fn join(mut pieces: Vec<(usize, bool, Vec<u8>, Vec<u8>)>, base: usize, last_more: bool) -> Vec<u8> {
    pieces.sort_by_key(|p| p.0);
    let mut data = Vec::new();
    for (k, (off, more, d, _)) in pieces.iter().enumerate() {
        assert_eq!(*off, base + data.len(), "contiguous");
        assert_eq!(*more, k + 1 < pieces.len() || last_more, "MF of piece {k}");
        if k + 1 < pieces.len() {
            assert_eq!(d.len() % 8, 0);
        }
        data.extend_from_slice(d);
    }
    data
}

#[test]
fn a_3000_byte_lan_datagram_leaves_in_ipv4_fragments_without_outer_fragmentation() {
    let (mut g, fib, _) = setup(v6plus());
    let payload: Vec<u8> = (0..3000u32).map(|k| (k * 13 + 5) as u8).collect();
    let ip = udp_v4(HOST4, 40000, SERVER4, 53, 64, &payload);
    let frames: Vec<_> = lan_fragments(&ip, 1500)
        .into_iter()
        .map(|f| (Port::Lan, f))
        .collect();
    assert_eq!(frames.len(), 3);
    let out = run_spare(&mut g, &fib, &frames, 4, 100);
    // 1500 = 1460 + 60 twice, and the 68-byte tail.
    assert_eq!(out.len(), 5);
    assert!(out.iter().all(|(p, _)| *p == Port::Wan));
    assert_eq!(
        errors(
            &g,
            NodeId::Ip4Fragment,
            ip4_fragment::Error::Fragmented.index()
        ),
        2
    );
    assert_eq!(
        g.stats.nodes[NodeId::Ip6Fragment as usize].errors[0..]
            .iter()
            .sum::<u64>(),
        0
    );
    let pieces: Vec<_> = out.iter().map(|(_, f)| piece(f)).collect();
    for (_, _, _, h) in &pieces {
        assert_eq!(&h[12..16], &SHARED.octets());
        assert_eq!(&h[16..20], &SERVER4.octets());
        assert_eq!(u16::from_be_bytes([h[4], h[5]]), ID);
        assert_eq!(h[8], 63, "TTL decremented once");
    }
    let udp = join(pieces, 0, false);
    assert_eq!(udp.len(), 8 + payload.len());
    assert_eq!(&udp[8..], &payload[..], "the original payload");
    let port = u16::from_be_bytes([udp[0], udp[1]]);
    assert!(v6plus().index_of(port).is_some(), "a port of the set");
    // The UDP checksum (first fragment) still covers the whole datagram.
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&SHARED.octets());
    pseudo.extend_from_slice(&SERVER4.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
    let sum = sum16(&udp, sum16(&pseudo, 0));
    let mut s = sum;
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    assert_eq!(s, 0xffff, "UDP checksum");
}

#[test]
fn a_lan_fragment_in_the_middle_keeps_its_offset_and_mf() {
    let (mut g, fib, _) = setup(v6plus());
    let payload: Vec<u8> = (0..3000u32).map(|k| (k * 3 + 1) as u8).collect();
    let ip = udp_v4(HOST4, 40000, SERVER4, 53, 64, &payload);
    let frags = lan_fragments(&ip, 1500);
    for (k, more) in [(1, true), (2, false)] {
        let sent = frags[k].clone();
        let base =
            usize::from(u16::from_be_bytes([sent[ETH_LEN + 6], sent[ETH_LEN + 7]]) & 0x1fff) * 8;
        assert!(base > 0);
        let out = run_spare(&mut g, &fib, &[(Port::Lan, sent.clone())], 2, 100);
        let pieces: Vec<_> = out.iter().map(|(_, f)| piece(f)).collect();
        let n = pieces.len();
        assert_eq!(n, if k == 1 { 2 } else { 1 }, "fragment {k}");
        assert_eq!(
            join(pieces, base, more),
            sent[ETH_LEN + 20..],
            "fragment {k}"
        );
    }
}

#[test]
fn without_a_spare_frame_the_packet_is_dropped_and_named() {
    let (mut g, fib, _) = setup(v6plus());
    let mut big = lan_udp(40000, 53, &[7u8; 1600]);
    // etherparse sets DF.
    big[ETH_LEN + 6] &= !0x40;
    put16(&mut big, ETH_LEN + 10, 0);
    let c = checksum(&big[ETH_LEN..ETH_LEN + 20]);
    put16(&mut big, ETH_LEN + 10, c);
    assert!(run(&mut g, &fib, &[(Port::Lan, big)], 100).is_empty());
    assert_eq!(
        errors(
            &g,
            NodeId::Ip4Fragment,
            ip4_fragment::Error::NoFrames.index()
        ),
        1
    );
}

#[test]
fn a_df_packet_still_gets_fragmentation_needed() {
    let (mut g, fib, _) = setup(v6plus());
    // etherparse sets DF.
    let big = lan_udp(40000, 53, &[7u8; 1600]);
    assert_ne!(big[ETH_LEN + 6] & 0x40, 0);
    let back = run_spare(&mut g, &fib, &[(Port::Lan, big)], 2, 100);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].0, Port::Lan);
    let icmp = &back[0].1[ETH_LEN + 20..];
    assert_eq!((icmp[0], icmp[1]), (3, 4));
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1460);
}
