//! The two locking schemes (`Locking` in mod.rs) are two ways into the
//! same shards: the same traffic gives the same answers and sessions.

use super::*;

#[test]
fn only_a_one_worker_table_locks_per_chunk() {
    let t = |w| SessionTable::for_workers(64, Timeouts::default(), w);
    assert!(t(1).locks_per_chunk());
    for w in [0, 2, 4] {
        assert!(!t(w).locks_per_chunk(), "{w} workers");
    }
    assert!(!SessionTable::new(64, Timeouts::default()).locks_per_chunk());
}

/// Mixed TCP, UDP and ICMP in batches of random size, with the control
/// thread's sweep between some of them and one-by-one `track` and
/// `lookup` in between, on a small table that must evict.
#[test]
fn chunk_and_shard_locking_give_the_same_results() {
    // One shard each: with more, each table's secret seeds would put a
    // key in a different shard, and eviction would choose differently.
    let chunk = SessionTable::for_workers(32, Timeouts::default(), 1);
    let shard = SessionTable::for_workers(32, Timeouts::default(), 2);
    assert!(chunk.locks_per_chunk() && !shard.locks_per_chunk());
    assert_eq!((chunk.shards.len(), shard.shards.len()), (1, 1));
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut reqs = [Request::EMPTY; 64];
    let (mut a, mut b) = ([Track::NotFound; 64], [Track::NotFound; 64]);
    for round in 0..2000u32 {
        let now = T0.wrapping_add(round / 4);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = 1 + (x % 64) as usize;
        for r in reqs.iter_mut().take(n) {
            *r = random_request(&mut x, 200);
        }
        chunk.track_batch(&reqs[..n], now, &mut a[..n]);
        shard.track_batch(&reqs[..n], now, &mut b[..n]);
        assert_eq!(a[..n], b[..n], "round {round}");
        let k = reqs[0].key;
        assert_eq!(chunk.lookup(&k, now), shard.lookup(&k, now));
        if round % 7 == 0 {
            assert_eq!(chunk.expire(now, 16), shard.expire(now, 16));
        }
    }
    let st = chunk.stats();
    assert!(st.created > 200 && st.evicted > 0, "{st:?}");
    assert_eq!(st, shard.stats());
    let all = |t: &SessionTable| {
        let (mut v, _) = t.snapshot(T0 + 500, usize::MAX, &|_| true);
        v.sort_by_key(|s| (s.key.ext_addr, s.key.int_port, s.key.proto));
        v
    };
    assert!(!all(&chunk).is_empty());
    assert_eq!(all(&chunk), all(&shard));
    audit(&chunk);
    audit(&shard);
}
