use std::collections::{HashMap, HashSet};

use ipoe_proto::map::PortSet;

use super::*;
use crate::nat::{PortPool, WHOLE_ADDRESS};

/// v6plus/BIGLOBE: offset 4, 8-bit PSID: 15 runs of 16.
fn v6plus() -> PortPool {
    PortPool::from_set(PortSet::new(4, 8, 0x3c))
}

/// OCN Virtual Connect: offset 6, 6-bit PSID: 63 runs of 16.
fn ocn() -> PortPool {
    PortPool::from_set(PortSet::new(6, 6, 0x15))
}

fn no_grace() -> Limits {
    Limits {
        grace_s: 0,
        ..Limits::default()
    }
}

/// xorshift64*: a reproducible sequence for the churn tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

const HOST: u32 = 0xc0a8_0214; // 192.168.2.20

/// Every port of the pool is handed out exactly once before exhaustion,
/// whatever the hints, and the next request is refused and counted.
fn exhaust(pool: PortPool, expect_len: u32) {
    assert_eq!(pool.len(), expect_len);
    let mut a = PortAllocator::new(pool, no_grace());
    let mut rng = Rng(0x1234_5678);
    let mut seen = HashSet::new();
    for _ in 0..expect_len {
        let p = a
            .alloc(HOST, 10, rng.next() as u32)
            .expect("a free port while the pool is not full");
        assert!(pool.index_of(p).is_some(), "port {p} outside the pool");
        assert_ne!(p, 0);
        assert!(seen.insert(p), "port {p} handed out twice");
    }
    assert_eq!(a.alloc(HOST, 10, 7), Err(AllocError::Exhausted));
    assert_eq!(a.counters().exhausted, 1);
    assert_eq!(a.in_use(), expect_len);
    // Every port of the set, in every run, was reached.
    let all: HashSet<u16> = (0..expect_len).filter_map(|i| pool.port_at(i)).collect();
    assert_eq!(seen, all);
    a.audit();
}

#[test]
fn every_port_of_a_v6plus_set_is_reachable() {
    exhaust(v6plus(), 240);
    // All 15 runs, not only the first 16-port one.
    assert_eq!(v6plus().runs().len(), 15);
}

#[test]
fn every_port_of_an_ocn_set_is_reachable() {
    exhaust(ocn(), 1008);
    assert_eq!(ocn().runs().len(), 63);
}

#[test]
fn every_port_of_a_plain_range_is_reachable() {
    exhaust(WHOLE_ADDRESS, 64512);
    exhaust(
        PortPool::Range {
            first: 5000,
            last: 5099,
        },
        100,
    );
}

#[test]
fn port_zero_is_never_handed_out() {
    // Offset 0 and PSID 0: the set's first port is 0.
    let pool = PortPool::from_set(PortSet::new(0, 4, 0));
    assert_eq!(pool.port_at(0), Some(0));
    let mut a = PortAllocator::new(pool, no_grace());
    let got: Vec<u16> = std::iter::from_fn(|| a.alloc(HOST, 0, 0).ok()).collect();
    assert_eq!(got.len() as u32, pool.len() - 1);
    assert!(!got.contains(&0));
}

#[test]
fn an_empty_range_refuses() {
    let mut a = PortAllocator::new(PortPool::Range { first: 9, last: 8 }, no_grace());
    assert_eq!(a.alloc(HOST, 0, 3), Err(AllocError::Exhausted));
}

#[test]
fn a_freed_port_waits_for_its_grace_period() {
    let limits = Limits {
        grace_s: 120,
        ..Limits::default()
    };
    let pool = v6plus();
    let mut a = PortAllocator::new(pool, limits);
    let ports: Vec<u16> = (0..240).map(|_| a.alloc(HOST, 1000, 0).unwrap()).collect();
    let freed = ports[77];
    assert!(a.release(freed, 2000));
    assert_eq!(a.in_grace(), 1);
    // Not at 119 s, although the port is no longer in use.
    assert_eq!(a.alloc(HOST, 2119, 0), Err(AllocError::Exhausted));
    assert!(!a.is_live(freed));
    // At 120 s it is the one free port.
    assert_eq!(a.alloc(HOST, 2120, 0), Ok(freed));
    assert_eq!(a.in_grace(), 0);
    a.audit();
}

#[test]
fn grace_survives_a_clock_that_steps_back() {
    let limits = Limits {
        grace_s: 30,
        ..Limits::default()
    };
    let mut a = PortAllocator::new(
        PortPool::Range {
            first: 100,
            last: 100,
        },
        limits,
    );
    let p = a.alloc(HOST, 500, 0).unwrap();
    a.release(p, 500);
    // Another core's older second: not a 136-year wait, not due either.
    assert_eq!(a.expire_grace(499, 10), 0);
    assert_eq!(a.expire_grace(529, 10), 0);
    assert_eq!(a.expire_grace(530, 10), 1);
}

#[test]
fn churn_never_hands_out_a_live_or_resting_port() {
    for pool in [
        v6plus(),
        ocn(),
        PortPool::Range {
            first: 40000,
            last: 40999,
        },
    ] {
        let grace = 5;
        let mut a = PortAllocator::new(
            pool,
            Limits {
                grace_s: grace,
                ..Limits::default()
            },
        );
        let mut rng = Rng(0xdead_beef_cafe);
        let mut live: Vec<u16> = Vec::new();
        let mut released_at: HashMap<u16, u32> = HashMap::new();
        let (mut refused, mut handed) = (0, 0);
        for step in 0..60_000u32 {
            let now = step / 100;
            let r = rng.next();
            // Keep the pool near full so refusals and reuse both happen.
            if r % 100 < 55 || live.is_empty() {
                match a.alloc(HOST + (r as u32 % 7), now, (r >> 32) as u32) {
                    Ok(p) => {
                        assert!(!live.contains(&p), "port {p} handed out twice");
                        if let Some(&t) = released_at.get(&p) {
                            assert!(now - t >= grace, "port {p} reused after {} s", now - t);
                        }
                        live.push(p);
                        handed += 1;
                    }
                    Err(e) => {
                        assert_eq!(e, AllocError::Exhausted);
                        // Only when every port is live or resting.
                        let resting =
                            released_at.values().filter(|&&t| now - t < grace).count() as u32;
                        assert_eq!(live.len() as u32 + resting, pool.len());
                        refused += 1;
                    }
                }
            } else {
                let p = live.swap_remove((r >> 8) as usize % live.len());
                assert!(a.release(p, now));
                released_at.insert(p, now);
            }
            if step % 997 == 0 {
                a.audit();
            }
        }
        assert!(refused > 0 && handed > pool.len(), "{refused} {handed}");
        assert_eq!(a.in_use() as usize, live.len());
        assert_eq!(a.counters().exhausted, refused);
        a.audit();
    }
}

#[test]
fn exhaustion_is_refused_only_while_no_port_is_free() {
    let mut a = PortAllocator::new(v6plus(), no_grace());
    let ports: Vec<u16> = (0..240).map(|_| a.alloc(HOST, 0, 0).unwrap()).collect();
    for k in 0..5 {
        assert_eq!(a.alloc(HOST, 0, k), Err(AllocError::Exhausted));
    }
    assert_eq!(a.counters().exhausted, 5);
    // Any one freed port, wherever it is, is found from any start.
    for (n, &p) in ports.iter().enumerate().step_by(17) {
        a.release(p, 0);
        assert_eq!(a.alloc(HOST, 0, n as u32 * 31), Ok(p));
    }
}

#[test]
fn the_per_host_limit_holds_one_host_back_only() {
    let limits = Limits {
        grace_s: 0,
        per_host: Some(3),
        max_hosts: 2,
    };
    let mut a = PortAllocator::new(v6plus(), limits);
    let (h1, h2, h3) = (HOST, HOST + 1, HOST + 2);
    let mine: Vec<u16> = (0..3).map(|_| a.alloc(h1, 0, 0).unwrap()).collect();
    assert_eq!(a.alloc(h1, 0, 0), Err(AllocError::HostLimit));
    assert_eq!(a.host_ports(h1), 3);
    assert!(a.alloc(h2, 0, 0).is_ok());
    // A third host finds the table full (bounded), counted.
    assert_eq!(a.alloc(h3, 0, 0), Err(AllocError::HostsFull));
    assert_eq!(a.owner(mine[0]), Some(h1));
    a.release(mine[0], 0);
    assert_eq!(a.host_ports(h1), 2);
    assert!(a.alloc(h1, 0, 0).is_ok());
    let c = a.counters();
    assert_eq!((c.host_limit, c.hosts_full), (1, 1));
}

#[test]
fn host_counts_follow_a_map_under_churn() {
    let mut t = HostCounts::new(64);
    let mut model: HashMap<u32, u32> = HashMap::new();
    let mut rng = Rng(99);
    for _ in 0..200_000 {
        let r = rng.next();
        // Few distinct keys, so they collide and get deleted often;
        // 0 is a key like any other.
        let host = (r % 80) as u32 * 256;
        let have = model.get(&host).copied().unwrap_or(0);
        if r >> 40 & 1 == 0 {
            if have > 0 || (model.len() as u32) < 64 {
                t.add(host, 1);
                *model.entry(host).or_default() += 1;
            } else {
                assert!(!t.has_room_for(host));
            }
        } else if have > 0 {
            t.add(host, -1);
            if have == 1 {
                model.remove(&host);
            } else {
                model.insert(host, have - 1);
            }
        }
        assert_eq!(t.get(host), model.get(&host).copied().unwrap_or(0));
    }
    for (h, n) in &model {
        assert_eq!(t.get(*h), *n);
    }
    assert_eq!(t.used as usize, model.len());
}

#[test]
fn a_reserved_port_is_never_handed_out() {
    let pool = v6plus();
    let forward = pool.port_at(100).unwrap();
    let mut a = PortAllocator::new(pool, no_grace());
    assert!(a.reserve(forward));
    assert!(!a.reserve(forward), "already taken");
    assert!(!a.reserve(pool.port_at(0).unwrap() - 1), "outside the set");
    let got: HashSet<u16> = std::iter::from_fn(|| a.alloc(HOST, 0, 0).ok()).collect();
    assert_eq!(got.len(), 239);
    assert!(!got.contains(&forward));
}

#[test]
fn a_bad_release_changes_nothing() {
    let mut a = PortAllocator::new(v6plus(), no_grace());
    let p = a.alloc(HOST, 0, 0).unwrap();
    assert!(a.release(p, 0));
    assert!(!a.release(p, 0), "twice");
    assert!(!a.release(1, 0), "outside the set");
    assert_eq!(a.counters().bad_release, 2);
    assert_eq!(a.in_use(), 0);
    a.audit();
}

#[test]
fn hints_spread_the_ports() {
    let mut a = PortAllocator::new(ocn(), no_grace());
    let mut rng = Rng(5);
    let got: Vec<u16> = (0..64)
        .map(|_| a.alloc(HOST, 0, rng.next() as u32).unwrap())
        .collect();
    // Not 64 consecutive ports of one run: more than 20 runs touched.
    let runs: HashSet<u16> = got.iter().map(|p| p >> 10).collect();
    assert!(runs.len() > 20, "{runs:?}");
}

#[test]
fn next_set_cyclic_wraps() {
    let map = [0b1000u64, 0, 1 << 63];
    assert_eq!(next_set_cyclic(&map, 0, 192), Some(3));
    assert_eq!(next_set_cyclic(&map, 4, 192), Some(191));
    assert_eq!(next_set_cyclic(&map, 100, 192), Some(191));
    assert_eq!(next_set_cyclic(&[0b1000u64, 0, 0], 4, 192), Some(3));
    assert_eq!(next_set_cyclic(&[0u64; 3], 4, 192), None);
}
