//! `track_batch` gives what `track` one by one gives, on a small table
//! (whose chunks meet the same sessions again and again) as on a big one.

use super::*;

/// The same mixed traffic through `track` one by one and through
/// `track_batch` on a small and a large table: the same results, the
/// same sessions.
#[test]
fn both_ways_through_a_batch_agree_with_one_by_one() {
    let one = table(1 << 12);
    let small = table(1 << 12);
    let big = table(1 << 20);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut reqs = [Request::EMPTY; 100];
    let mut got = [Track::NotFound; 100];
    let mut got2 = [Track::NotFound; 100];
    for round in 0..300u32 {
        let now = T0 + round;
        let n = 1 + (x % 100) as usize;
        for r in reqs.iter_mut().take(n) {
            *r = random_request(&mut x, 300);
        }
        small.track_batch(&reqs[..n], now, &mut got[..n]);
        big.track_batch(&reqs[..n], now, &mut got2[..n]);
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
    assert_eq!(all(&one), all(&small));
    assert_eq!(all(&one), all(&big));
    for t in [&small, &big] {
        audit(t);
    }
}
