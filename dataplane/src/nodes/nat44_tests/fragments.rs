//! Fragments through NAPT44: inbound later fragments take their first
//! fragment's translation (virtual reassembly, `nat::frags`); outbound, a
//! datagram too big for the tunnel without DF leaves in fragments.

use super::*;
use crate::nat::frags::HOLD_S;
use crate::wire::{checksum, put16};

const ID: u16 = 0x4242;

/// Splits IPv4 datagram `ip` (20-byte header) into two fragments, the
/// first carrying `first_len` bytes (a multiple of 8) of its payload.
pub(super) fn split(ip: &[u8], first_len: usize) -> [Vec<u8>; 2] {
    let payload = &ip[20..];
    let part = |data: &[u8], off: usize, more: bool| {
        let mut h = ip[..20].to_vec();
        put16(&mut h, 2, (20 + data.len()) as u16);
        put16(&mut h, 4, ID);
        put16(&mut h, 6, (off / 8) as u16 | if more { 0x2000 } else { 0 });
        put16(&mut h, 10, 0);
        let c = checksum(&h);
        put16(&mut h, 10, c);
        h.extend_from_slice(data);
        h
    };
    [
        part(&payload[..first_len], 0, true),
        part(&payload[first_len..], first_len, false),
    ]
}

/// The LAN host's flow out, and the external port it got.
fn open(g: &mut Graph, fib: &Fib) -> u16 {
    let out = run(g, fib, &[(Port::Lan, lan_udp(40000, 53, b"q"))], 100);
    let i = inner_of(&out[0].1);
    u16::from_be_bytes([i[20], i[21]])
}

/// More than the tunnel MTU, less than the largest frame (1778 bytes).
fn big_payload() -> Vec<u8> {
    (0..1600u32).map(|k| (k * 7 + 3) as u8).collect()
}

fn to_host(ip: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&HOST_MAC);
    v.extend_from_slice(&LAN_MAC);
    v.extend_from_slice(&0x0800u16.to_be_bytes());
    v.extend_from_slice(ip);
    v
}

fn frag_drops(g: &Graph) -> u64 {
    errors(g, NodeId::Nat44In, nat44_in::Error::Fragment.index())
}

#[test]
fn every_fragment_of_a_reply_reaches_the_lan_host_in_either_order() {
    let (mut g, fib, _) = setup(v6plus());
    let port = open(&mut g, &fib);
    let reply = udp_v4(SERVER4, 53, SHARED, port, 50, &big_payload());
    let [a, b] = split(&reply, 1400);
    // What the host must get: the whole datagram translated (its UDP
    // checksum, in the first fragment, covers all of it), then split alike.
    let want = split(&udp_v4(SERVER4, 53, HOST4, 40000, 49, &big_payload()), 1400);
    let offset = |f: &Vec<u8>| u16::from_be_bytes([f[ETH_LEN + 6], f[ETH_LEN + 7]]) & 0x1fff;
    let want: Vec<Vec<u8>> = want.iter().map(|f| to_host(f)).collect();
    for (k, frames) in [[a.clone(), b.clone()], [b, a]].into_iter().enumerate() {
        let frames: Vec<_> = frames.iter().map(|f| (Port::Wan, from_br(f))).collect();
        let mut got: Vec<Vec<u8>> = run(&mut g, &fib, &frames, 101 + k as u64)
            .into_iter()
            .map(|(p, f)| {
                assert_eq!(p, Port::Lan);
                f
            })
            .collect();
        got.sort_by_key(offset);
        assert_eq!(got, want, "order {k}");
    }
    assert_eq!(frag_drops(&g), 0);
}

#[test]
fn a_later_fragment_needs_its_first_one_passed_and_recent() {
    let (mut g, fib, _) = setup(v6plus());
    let port = open(&mut g, &fib);
    let [a, b] = split(&udp_v4(SERVER4, 53, SHARED, port, 50, &big_payload()), 1400);
    // Alone: dropped and named.
    assert!(run(&mut g, &fib, &[(Port::Wan, from_br(&b))], 101).is_empty());
    assert_eq!(frag_drops(&g), 1);
    // After its first fragment, in a later vector: through.
    assert_eq!(run(&mut g, &fib, &[(Port::Wan, from_br(&a))], 102).len(), 1);
    assert_eq!(
        run(
            &mut g,
            &fib,
            &[(Port::Wan, from_br(&b))],
            102 + u64::from(HOLD_S)
        )
        .len(),
        1
    );
    // Too long after: dropped.
    assert!(run(
        &mut g,
        &fib,
        &[(Port::Wan, from_br(&b))],
        103 + u64::from(HOLD_S)
    )
    .is_empty());
    assert_eq!(frag_drops(&g), 2);
    // A first fragment the filter refuses admits nothing after it.
    let stranger = Ipv4Addr::new(198, 51, 100, 11);
    let [c, d] = split(
        &udp_v4(stranger, 53, SHARED, port, 50, &big_payload()),
        1400,
    );
    let frames = [(Port::Wan, from_br(&c)), (Port::Wan, from_br(&d))];
    assert!(run(&mut g, &fib, &frames, 110).is_empty());
    assert_eq!(
        errors(&g, NodeId::Nat44In, nat44_in::Error::Filtered.index()),
        1
    );
    assert_eq!(frag_drops(&g), 3);
}

#[test]
fn many_fragmented_datagrams_evict_and_count_but_stay_bounded() {
    let (mut g, fib, _) = setup(v6plus());
    let port = open(&mut g, &fib);
    let n = crate::nat::frags::CAPACITY + 100;
    let firsts: Vec<(Port, Vec<u8>)> = (0..n)
        .map(|k| {
            let mut ip = udp_v4(SERVER4, 53, SHARED, port, 50, &big_payload());
            put16(&mut ip, 4, k as u16);
            let [mut a, _] = split(&ip, 1400);
            put16(&mut a, 4, k as u16);
            put16(&mut a, 10, 0);
            let c = checksum(&a[..20]);
            put16(&mut a, 10, c);
            (Port::Wan, from_br(&a))
        })
        .collect();
    let mut through = 0;
    for chunk in firsts.chunks(32) {
        through += run(&mut g, &fib, chunk, 101).len();
    }
    assert_eq!(through, n);
    let evicted = errors(&g, NodeId::Nat44In, nat44_in::Error::FragEvicted.index());
    assert!(evicted >= 100, "{evicted}");
    assert_eq!(evicted, g.fw.nat_frags.evicted);
    assert!(g.fw.nat_frags.len(101) <= crate::nat::frags::CAPACITY);
}

/// `run` with one spare frame, for the second fragment ip4-fragment makes.
fn run_spare(
    g: &mut Graph,
    fib: &Fib,
    frames: &[(Port, Vec<u8>)],
    now_s: u64,
) -> Vec<(Port, Vec<u8>)> {
    let mut a = FrameArena::new(frames.len() + 1);
    g.spare.push((frames.len() * crate::FRAME_SIZE) as u64);
    a.run(g, fib, &crate::testkit::as_refs(frames), now_s * SEC);
    let mut out = Vec::new();
    for p in Port::ALL {
        for &i in g.out.tx[p.index()].as_slice() {
            out.push((p, a.packet(g, i).to_vec()));
        }
    }
    out
}

/// `frame` (Ethernet + IPv4) with DF set to `df`.
fn with_df(mut frame: Vec<u8>, df: bool) -> Vec<u8> {
    let ip = &mut frame[ETH_LEN..];
    ip[6] = if df { ip[6] | 0x40 } else { ip[6] & !0x40 };
    put16(ip, 10, 0);
    let c = checksum(&ip[..20]);
    put16(ip, 10, c);
    frame
}

#[test]
fn a_lan_datagram_too_big_for_the_tunnel_leaves_in_fragments_unless_df() {
    let (mut g, fib, _) = setup(v6plus());
    let big = with_df(lan_udp(40000, 53, &big_payload()), false);
    let out = run_spare(&mut g, &fib, &[(Port::Lan, big)], 100);
    assert_eq!(
        out.len(),
        2,
        "{:?}",
        g.stats.nodes[NodeId::Nat44Out as usize].errors
    );
    // IPv4 fragments, each whole in its IPv6 packet (a MAP-E BR need not
    // reassemble outer fragments): their data put back together is the
    // translated datagram's.
    let mut pieces: Vec<(u16, Vec<u8>)> = out
        .iter()
        .map(|(p, f)| {
            assert_eq!(*p, Port::Wan);
            let ip = inner_of(f);
            assert!(ip.len() <= 1460);
            (u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff, ip.to_vec())
        })
        .collect();
    pieces.sort_by_key(|p| p.0);
    let mut inner = pieces[0].1[20..].to_vec();
    assert_eq!(usize::from(pieces[1].0) * 8, inner.len());
    inner.extend_from_slice(&pieces[1].1[20..]);
    let port = u16::from_be_bytes([inner[0], inner[1]]);
    assert!(v6plus().index_of(port).is_some());
    let want = udp_v4(SHARED, port, SERVER4, 53, 63, &big_payload());
    assert_eq!(inner, want[20..]);

    // With DF: fragmentation needed, quoting the host's own packet.
    let df = with_df(lan_udp(40000, 53, &big_payload()), true);
    let back = run(&mut g, &fib, &[(Port::Lan, df)], 101);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].0, Port::Lan);
    let icmp = &back[0].1[ETH_LEN + 20..];
    assert_eq!((icmp[0], icmp[1]), (3, 4));
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1460);
    assert_eq!(
        &icmp[8 + 12..8 + 16],
        &HOST4.octets(),
        "quotes the untranslated packet"
    );
}
