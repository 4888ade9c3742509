//! `track_batch` on a table small enough to stay in cache skips its
//! prefetch passes; which way it goes hangs on `live`, the sessions
//! counted without visiting the shards.

use super::*;

/// `live` is what the shards hold, after every way a session comes or
/// goes: creation, expiry seen by a packet, a reopened tuple, the control
/// thread's sweep, eviction and `clear`.
#[test]
fn live_follows_every_way_sessions_come_and_go() {
    let t = table(64);
    let check = |t: &SessionTable| {
        assert_eq!(t.live.load(Ordering::Relaxed), t.stats().active);
    };
    for n in 0..40 {
        out(&t, &key(n, 17), Segment::Udp, T0);
    }
    check(&t);
    // A packet finding its session expired frees it (and makes a new one).
    out(&t, &key(0, 17), Segment::Udp, T0 + 1000);
    check(&t);
    // A SYN on a reset connection reopens the tuple.
    let k = key(100, 6);
    handshake(&t, &k, 1, 5000, T0);
    t.track(&k, &seg(RST | ACK, 2, 5001), Dir::Out, 60, T0, false);
    out(&t, &k, seg(SYN, 7, 0), T0 + 1);
    check(&t);
    // The control thread's sweep.
    assert!(t.expire(T0 + 1000, 1000) > 0);
    check(&t);
    // More flows than slots: eviction.
    for n in 200..400 {
        out(&t, &key(n, 17), Segment::Udp, T0 + 1000);
    }
    assert!(t.stats().evicted > 0);
    check(&t);
    t.clear();
    check(&t);
    assert_eq!(t.live.load(Ordering::Relaxed), 0);
}

/// The same mixed traffic through `track` one by one, through
/// `track_batch` forced past its passes, and forced onto the packet-by-
/// packet way: the same results, the same sessions.
#[test]
fn both_ways_through_a_batch_agree_with_one_by_one() {
    let one = table(1 << 12);
    let mut passes = table(1 << 12);
    passes.cached_sessions = 0;
    let mut direct = table(1 << 12);
    direct.cached_sessions = u64::MAX;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut reqs = [Request::EMPTY; 100];
    let mut got = [Track::NotFound; 100];
    let mut got2 = [Track::NotFound; 100];
    for round in 0..300u32 {
        let now = T0 + round;
        let n = 1 + (x % 100) as usize;
        for r in reqs.iter_mut().take(n) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = (x % 300) as u32;
            let proto = [6u8, 17, 1][(f % 3) as usize];
            let seg = match proto {
                6 => {
                    let flags = [SYN, SYN | ACK, ACK, FIN | ACK, RST, ACK][(x >> 20) as usize % 6];
                    seg(flags, (x >> 32) as u32 % 3, (x >> 40) as u32 % 3)
                }
                17 => Segment::Udp,
                _ => Segment::Icmp,
            };
            *r = Request {
                key: key(f, proto),
                seg,
                dir: if x & (1 << 50) != 0 {
                    Dir::Out
                } else {
                    Dir::In
                },
                bytes: (x >> 52) as u32,
                create: x & (1 << 51) != 0,
            };
        }
        passes.track_batch(&reqs[..n], now, &mut got[..n]);
        direct.track_batch(&reqs[..n], now, &mut got2[..n]);
        for ((r, g), g2) in reqs[..n].iter().zip(&got[..n]).zip(&got2[..n]) {
            let want = one.track(&r.key, &r.seg, r.dir, r.bytes, now, r.create);
            assert_eq!((*g, *g2), (want, want), "{r:?}");
        }
    }
    let all = |t: &SessionTable| {
        let (mut v, _) = t.snapshot(T0 + 300, usize::MAX, &|_| true);
        v.sort_by_key(|s| (s.key.ext_addr, s.key.int_port, s.key.proto));
        v
    };
    assert!(!all(&one).is_empty());
    assert_eq!(all(&one), all(&passes));
    assert_eq!(all(&one), all(&direct));
    for t in [&passes, &direct] {
        assert_eq!(t.live.load(Ordering::Relaxed), t.stats().active);
        audit(t);
    }
}
