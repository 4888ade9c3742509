//! The completion on frames built as the kernel hands them over. Reference
//! frames come from etherparse's builder (its own checksum code), partial
//! ones from `testkit::make_partial` (the 16-bit `wire` sums), so neither
//! agrees with `csum.rs` by construction.

use etherparse::PacketBuilder;

use super::{complete_ipv4, complete_ipv6};
use crate::testkit::{make_partial, XorShift, HOST_MAC, LAN_MAC};
use crate::wire::{be16, fold, put16, sum16, ETH_LEN};

const SRC4: [u8; 4] = [192, 168, 2, 10];
const DST4: [u8; 4] = [198, 51, 100, 10];
const SRC6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0x01, 0x11, 0, 0, 0, 0, 0, 0, 0, 0x10,
];
const DST6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Tcp4,
    Udp4,
    Tcp6,
    Udp6,
}

const KINDS: [Kind; 4] = [Kind::Tcp4, Kind::Udp4, Kind::Tcp6, Kind::Udp6];

impl Kind {
    fn v6(self) -> bool {
        matches!(self, Kind::Tcp6 | Kind::Udp6)
    }
    /// Offset of the L4 header and of its checksum field in the frame.
    fn l4(self) -> usize {
        ETH_LEN + if self.v6() { 40 } else { 20 }
    }
    fn field(self) -> usize {
        self.l4()
            + if matches!(self, Kind::Tcp4 | Kind::Tcp6) {
                16
            } else {
                6
            }
    }
}

/// A correct frame (checksums by etherparse).
fn frame(kind: Kind, sport: u16, payload: &[u8]) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(HOST_MAC, LAN_MAC);
    let mut v = Vec::new();
    match kind {
        Kind::Tcp4 => eth
            .ipv4(SRC4, DST4, 64)
            .tcp(sport, 443, 7, 64240)
            .ack(9)
            .write(&mut v, payload),
        Kind::Udp4 => eth
            .ipv4(SRC4, DST4, 64)
            .udp(sport, 53)
            .write(&mut v, payload),
        Kind::Tcp6 => eth
            .ipv6(SRC6, DST6, 64)
            .tcp(sport, 443, 7, 64240)
            .ack(9)
            .write(&mut v, payload),
        Kind::Udp6 => eth
            .ipv6(SRC6, DST6, 64)
            .udp(sport, 53)
            .write(&mut v, payload),
    }
    .unwrap();
    v
}

/// Runs the completion the input node would run on `f`.
fn complete(kind: Kind, f: &mut [u8]) -> bool {
    if kind.v6() {
        complete_ipv6(&mut f[ETH_LEN..])
    } else {
        complete_ipv4(&mut f[ETH_LEN..], 20)
    }
}

/// The folded pseudo-header sum of `f` (16-bit sums, as the kernel does).
fn pseudo(kind: Kind, f: &[u8]) -> u32 {
    let l4_len = (f.len() - kind.l4()) as u32;
    let (proto, addrs) = match kind {
        Kind::Tcp4 => (6, &f[ETH_LEN + 12..ETH_LEN + 20]),
        Kind::Udp4 => (17, &f[ETH_LEN + 12..ETH_LEN + 20]),
        Kind::Tcp6 => (6, &f[ETH_LEN + 8..ETH_LEN + 40]),
        Kind::Udp6 => (17, &f[ETH_LEN + 8..ETH_LEN + 40]),
    };
    sum16(addrs, 0) + proto + l4_len
}

/// Whether the L4 checksum of `f` verifies.
fn verifies(kind: Kind, f: &[u8]) -> bool {
    fold(sum16(&f[kind.l4()..], pseudo(kind, f))) == 0xffff
}

#[test]
fn kernel_partial_checksums_are_completed_to_the_senders_checksum() {
    for kind in KINDS {
        for len in [0usize, 1, 2, 3, 5, 64, 999, 1400] {
            let payload: Vec<u8> = (0..len).map(|k| (k * 7 + len) as u8).collect();
            let want = frame(kind, 40000 + len as u16, &payload);
            let mut f = want.clone();
            assert!(make_partial(&mut f));
            assert_eq!(
                be16(&f, kind.field()),
                fold(pseudo(kind, &f)),
                "what Linux leaves in the field"
            );
            assert!(
                !verifies(kind, &f),
                "{kind:?} {len}: partial must not verify"
            );
            assert!(complete(kind, &mut f), "{kind:?} {len}");
            assert!(verifies(kind, &f), "{kind:?} {len}");
            // Byte for byte the sender's frame, except that a sum of zero
            // is written 0xffff (the same value in ones' complement).
            let (w, g) = (be16(&want, kind.field()), be16(&f, kind.field()));
            assert!(
                w == g || (w == 0 && g == 0xffff),
                "{kind:?} {len}: {w:#x} {g:#x}"
            );
            put16(&mut f, kind.field(), w);
            assert_eq!(f, want, "{kind:?} {len}");
        }
    }
}

#[test]
fn correct_frames_are_untouched() {
    let mut rng = XorShift::new(0x005e_edc5);
    let mut matched = 0;
    for n in 0..20_000 {
        let kind = KINDS[n % 4];
        let len = rng.below(300);
        let payload: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let want = frame(kind, rng.next_u64() as u16, &payload);
        let mut f = want.clone();
        if complete(kind, &mut f) {
            matched += 1;
        }
        assert_eq!(f, want, "{kind:?} {len}");
    }
    // A correct checksum equals the pseudo sum about once in 65535.
    assert!(matched <= 5, "{matched} ordinary frames taken for partial");
}

/// Sets the two payload bytes at `w` (inside the segment) so that the
/// sender's correct checksum equals the pseudo-header sum; returns the frame
/// with that checksum.
fn correct_and_equal_to_pseudo(kind: Kind, mut f: Vec<u8>, w: usize) -> Vec<u8> {
    put16(&mut f, kind.field(), 0);
    put16(&mut f, w, 0);
    let p = fold(pseudo(kind, &f));
    // Want P + D = ~P, i.e. the word makes D0 + W = ~P - P.
    let d0 = fold(sum16(&f[kind.l4()..], u32::from(p)));
    let target = !p;
    let word = fold(u32::from(target) + u32::from(!d0));
    put16(&mut f, w, word);
    put16(&mut f, kind.field(), p);
    f
}

#[test]
fn a_correct_frame_whose_checksum_is_the_pseudo_sum_is_unchanged() {
    for kind in KINDS {
        let base = frame(kind, 41000, &[0x11; 40]);
        let want = correct_and_equal_to_pseudo(kind, base, kind.field() + 20);
        assert!(
            verifies(kind, &want),
            "{kind:?}: the construction is correct"
        );
        assert_eq!(
            be16(&want, kind.field()),
            fold(pseudo(kind, &want)),
            "{kind:?}: and matches"
        );
        let mut f = want.clone();
        assert!(complete(kind, &mut f), "{kind:?}: taken for partial");
        assert_eq!(f, want, "{kind:?}: completing it changes nothing");
    }
}

#[test]
fn pseudo_sum_of_negative_zero_keeps_ffff() {
    // P = 0xffff (addresses chosen so), and D = 0 (mod 0xffff): the
    // correct field is 0x0000 or 0xffff; the kernel's would be 0xffff.
    for kind in [Kind::Udp4, Kind::Tcp4] {
        let mut f = frame(kind, 41000, &[0x22; 40]);
        put16(&mut f, ETH_LEN + 18, 0);
        let p = fold(pseudo(kind, &f));
        put16(&mut f, ETH_LEN + 18, !p);
        assert_eq!(fold(pseudo(kind, &f)), 0xffff);
        // IPv4 header checksum is not our business here.
        let w = kind.field() + 20;
        put16(&mut f, kind.field(), 0);
        put16(&mut f, w, 0);
        let d0 = fold(sum16(&f[kind.l4()..], 0));
        put16(&mut f, w, !d0);
        put16(&mut f, kind.field(), 0xffff);
        assert!(verifies(kind, &f));
        let want = f.clone();
        assert!(complete(kind, &mut f));
        assert_eq!(f, want);
    }
}

#[test]
fn a_partial_udp_sum_of_zero_is_written_ffff() {
    for kind in [Kind::Udp4, Kind::Udp6] {
        let mut f = frame(kind, 42000, &[0x33; 40]);
        // Make the full sum ~0: choose a payload word so that P + D = 0xffff.
        let w = kind.field() + 10;
        put16(&mut f, kind.field(), 0);
        put16(&mut f, w, 0);
        let sum = fold(sum16(&f[kind.l4()..], pseudo(kind, &f)));
        put16(&mut f, w, !sum);
        assert!(make_partial(&mut f));
        assert!(complete(kind, &mut f));
        assert_eq!(
            be16(&f, kind.field()),
            0xffff,
            "0 means no checksum for UDP"
        );
        assert!(verifies(kind, &f));
    }
}

#[test]
fn udp4_without_checksum_is_left_alone() {
    let mut f = frame(Kind::Udp4, 43000, b"no checksum");
    put16(&mut f, Kind::Udp4.field(), 0);
    let want = f.clone();
    assert!(!complete(Kind::Udp4, &mut f));
    assert_eq!(f, want);
}

#[test]
fn fragments_extension_headers_and_other_protocols_are_left_alone() {
    // IPv4 with more-fragments, and a later fragment.
    for flags in [0x2000u16, 0x0010] {
        let mut f = frame(Kind::Tcp4, 44000, &[1; 100]);
        make_partial(&mut f);
        put16(&mut f, ETH_LEN + 6, flags);
        let want = f.clone();
        assert!(!complete(Kind::Tcp4, &mut f));
        assert_eq!(f, want);
    }
    // IPv6 with a hop-by-hop header in front of UDP.
    let mut f = frame(Kind::Udp6, 44001, &[2; 100]);
    make_partial(&mut f);
    f[ETH_LEN + 6] = 0;
    let want = f.clone();
    assert!(!complete(Kind::Udp6, &mut f));
    assert_eq!(f, want);
    // ICMP whose checksum field happens to hold the "pseudo sum".
    let mut f = frame(Kind::Udp4, 44002, &[3; 100]);
    make_partial(&mut f);
    f[ETH_LEN + 9] = 1;
    let want = f.clone();
    assert!(!complete(Kind::Udp4, &mut f));
    assert_eq!(f, want);
}

#[test]
fn segments_shorter_than_their_header_are_left_alone() {
    // A TCP "segment" of 19 bytes whose field would match.
    let mut f = frame(Kind::Tcp4, 45000, &[]);
    f.truncate(ETH_LEN + 20 + 19);
    let len = (20 + 19) as u16;
    put16(&mut f, ETH_LEN + 2, len);
    assert!(!complete_ipv4(&mut f[ETH_LEN..], 20));
    let mut f = frame(Kind::Udp6, 45001, &[]);
    f.truncate(ETH_LEN + 40 + 7);
    assert!(!complete_ipv6(&mut f[ETH_LEN..]));
}

#[test]
fn hostile_lengths_never_panic() {
    let mut rng = XorShift::new(0x000b_adc5);
    let mut buf = [0u8; 200];
    for _ in 0..200_000 {
        let len = rng.below(buf.len() + 1);
        for b in &mut buf[..len] {
            *b = rng.next_u64() as u8;
        }
        // Make a match likely: TCP/UDP and a field that equals the pseudo
        // sum, whatever the lengths say.
        if len > 40 && rng.below(2) == 0 {
            buf[9] = if rng.below(2) == 0 { 6 } else { 17 };
            buf[6] = buf[9];
        }
        let ihl = rng.below(80);
        let _ = complete_ipv4(&mut buf[..len], ihl);
        let _ = complete_ipv6(&mut buf[..len]);
        let mut f = [0u8; 200];
        f[..len].copy_from_slice(&buf[..len]);
        let _ = make_partial(&mut f[..len]);
    }
    for len in 0..200 {
        for ihl in [0, 19, 20, 24, 60, 199, 200, 201, usize::MAX] {
            let mut b = vec![0x45u8; len];
            let _ = complete_ipv4(&mut b, ihl);
            let _ = complete_ipv6(&mut b);
        }
    }
}
