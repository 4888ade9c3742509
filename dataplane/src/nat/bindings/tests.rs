use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipoe_proto::map::PortSet;

use super::*;

const EXT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 77);

fn v6plus() -> PortPool {
    PortPool::from_set(PortSet::new(4, 8, 0x3c))
}

fn limits(grace_s: u32) -> Limits {
    Limits {
        grace_s,
        ..Limits::default()
    }
}

fn host(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 2, n)
}

#[test]
fn one_endpoint_keeps_its_port_for_every_destination() {
    let b = Bindings::new(EXT, v6plus(), limits(0));
    let int = (host(20), 40000);
    // Three sessions of one LAN socket (three destinations): one mapping.
    let p = b.bind(NatProto::Udp, int, 0, 1).unwrap();
    assert_eq!(b.bind(NatProto::Udp, int, 0, 999), Ok(p));
    assert_eq!(b.bind(NatProto::Udp, int, 0, 12345), Ok(p));
    assert!(v6plus().index_of(p).is_some());
    assert_eq!(b.refs(NatProto::Udp, p), 3);
    assert_eq!(b.internal(NatProto::Udp, p), Some(int));
    assert_eq!(b.mapped(NatProto::Udp, int), Some(p));
    // Another socket of the same host gets another port.
    let q = b.bind(NatProto::Udp, (host(20), 40001), 0, 1).unwrap();
    assert_ne!(p, q);
    assert_eq!(b.stats(NatProto::Udp).mappings, 2);
    b.audit();
}

#[test]
fn the_last_session_gives_the_port_back_after_the_grace_period() {
    let pool = PortPool::Range {
        first: 2000,
        last: 2000,
    };
    let b = Bindings::new(EXT, pool, limits(60));
    let int = (host(20), 5353);
    let p = b.bind(NatProto::Tcp, int, 100, 0).unwrap();
    b.bind(NatProto::Tcp, int, 100, 0).unwrap();
    assert!(b.unbind(NatProto::Tcp, p, 150));
    assert_eq!(b.internal(NatProto::Tcp, p), Some(int), "one session left");
    assert!(b.unbind(NatProto::Tcp, p, 160));
    assert_eq!(b.internal(NatProto::Tcp, p), None);
    assert_eq!(b.mapped(NatProto::Tcp, int), None);
    assert!(!b.unbind(NatProto::Tcp, p, 160), "not mapped any more");
    let other = (host(21), 7000);
    assert_eq!(
        b.bind(NatProto::Tcp, other, 219, 0),
        Err(AllocError::Exhausted),
        "59 s after the flow was last seen"
    );
    assert_eq!(b.bind(NatProto::Tcp, other, 220, 0), Ok(p));
    assert_eq!(b.internal(NatProto::Tcp, p), Some(other));
    assert_eq!(b.stats(NatProto::Tcp).ports.exhausted, 1);
    b.audit();
}

#[test]
fn protocols_have_their_own_port_spaces() {
    let pool = PortPool::Range {
        first: 3000,
        last: 3000,
    };
    let b = Bindings::new(EXT, pool, limits(0));
    // One port, yet a TCP, a UDP and an echo mapping of three hosts.
    assert_eq!(b.bind(NatProto::Tcp, (host(1), 1), 0, 0), Ok(3000));
    assert_eq!(b.bind(NatProto::Udp, (host(2), 2), 0, 0), Ok(3000));
    assert_eq!(b.bind(NatProto::Icmp, (host(3), 3), 0, 0), Ok(3000));
    assert_eq!(b.internal(NatProto::Tcp, 3000), Some((host(1), 1)));
    assert_eq!(b.internal(NatProto::Udp, 3000), Some((host(2), 2)));
    assert_eq!(b.internal(NatProto::Icmp, 3000), Some((host(3), 3)));
    assert_eq!(NatProto::of(6), Some(NatProto::Tcp));
    assert_eq!(NatProto::of(47), None);
}

#[test]
fn as_many_endpoints_as_ports_then_refusal() {
    let b = Bindings::new(EXT, v6plus(), limits(0));
    let mut ports = HashMap::new();
    for k in 0..240u16 {
        let int = (host(10 + (k % 5) as u8), 10000 + k);
        let p = b.bind(NatProto::Udp, int, 0, u32::from(k) * 7919).unwrap();
        assert!(ports.insert(p, int).is_none(), "port {p} twice");
    }
    assert_eq!(
        b.bind(NatProto::Udp, (host(99), 1), 0, 0),
        Err(AllocError::Exhausted)
    );
    // Existing endpoints still find their mapping.
    let (&p, &int) = ports.iter().next().unwrap();
    assert_eq!(b.bind(NatProto::Udp, int, 0, 0), Ok(p));
    for (&p, &int) in &ports {
        assert_eq!(b.internal(NatProto::Udp, p), Some(int));
    }
    b.audit();
}

#[test]
fn churn_keeps_the_three_views_in_step() {
    let b = Bindings::new(EXT, v6plus(), limits(3));
    // endpoint -> (port, sessions)
    let mut model: HashMap<Endpoint, (u16, u32)> = HashMap::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for step in 0..50_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let now = step / 50;
        // 400 endpoints over 240 ports: exhaustion happens.
        let int = (host((x % 4) as u8 + 1), 1000 + (x >> 8) as u16 % 100);
        if x >> 40 & 3 != 0 {
            match b.bind(NatProto::Udp, int, now, (x >> 20) as u32) {
                Ok(p) => {
                    let e = model.entry(int).or_insert((p, 0));
                    assert_eq!(e.0, p, "mapping of {int:?} changed while in use");
                    e.1 += 1;
                }
                Err(e) => {
                    assert_eq!(e, AllocError::Exhausted);
                    assert!(!model.contains_key(&int));
                }
            }
        } else if let Some(&(p, n)) = model.get(&int) {
            assert!(b.unbind(NatProto::Udp, p, now));
            if n == 1 {
                model.remove(&int);
            } else {
                model.insert(int, (p, n - 1));
            }
        }
        if step % 1000 == 0 {
            b.audit();
        }
    }
    for (int, (p, n)) in &model {
        assert_eq!(b.internal(NatProto::Udp, *p), Some(*int));
        assert_eq!(b.refs(NatProto::Udp, *p), *n);
    }
    assert!(b.stats(NatProto::Udp).ports.exhausted > 0);
    b.audit();
}

#[test]
fn forwards_from_the_config_are_reserved_and_a_bad_one_refused() {
    use super::{Forward, ForwardError};
    use ipoe_config::{ForwardProto, PortForward};
    let set = PortPool::from_set(ipoe_proto::map::PortSet::new(4, 8, 0x3c));
    let inside = set.port_at(10).unwrap();
    let fw = |proto, port| PortForward {
        proto,
        port,
        to: "192.168.2.20:8080".parse().unwrap(),
    };
    let lim = Limits::default();
    let ext = Ipv4Addr::new(203, 0, 113, 77);
    let b = Bindings::from_config(
        ext,
        set,
        lim,
        &[fw(ForwardProto::Tcp, inside), fw(ForwardProto::Udp, inside)],
    )
    .unwrap();
    let to = (Ipv4Addr::new(192, 168, 2, 20), 8080);
    assert_eq!(b.inbound(NatProto::Tcp, inside), Some((to, true)));
    assert_eq!(b.inbound(NatProto::Udp, inside), Some((to, true)));
    assert_eq!(b.inbound(NatProto::Icmp, inside), None);
    assert_eq!(b.forwards().len(), 2);
    b.audit();

    // Past the end of a run of 16.
    let outside = set.port_at(15).unwrap() + 1;
    let err = Bindings::from_config(ext, set, lim, &[fw(ForwardProto::Tcp, outside)]).unwrap_err();
    assert!(matches!(err, ForwardError::NotInSet(Forward { port, .. }) if port == outside));
    let twice = [fw(ForwardProto::Tcp, inside), fw(ForwardProto::Tcp, inside)];
    let err = Bindings::from_config(ext, set, lim, &twice).unwrap_err();
    assert!(matches!(err, ForwardError::Duplicate(_)));
}

#[test]
fn a_fixed_address_forwards_system_ports_but_never_allocates_them() {
    use super::Forward;
    use crate::nat::FIXED_ADDRESS;
    let to = (host(20), 8080);
    let web = Forward {
        proto: NatProto::Tcp,
        port: 80,
        to,
    };
    let b = Bindings::new(EXT, FIXED_ADDRESS, limits(0))
        .with_forwards(&[web])
        .unwrap()
        .reserving_system_ports();
    assert_eq!(b.inbound(NatProto::Tcp, 80), Some((to, true)));
    assert_eq!(b.inbound(NatProto::Tcp, 81), None);
    b.audit();
    // Every other endpoint gets a port of 1024-65535, all of them, then
    // a refusal.
    let mut seen = std::collections::HashSet::new();
    for k in 0..(65536 - 1024) as u32 {
        let int = (host(30 + (k / 60000) as u8), (k % 60000) as u16 + 1);
        let p = b
            .bind(NatProto::Udp, int, 0, k.wrapping_mul(2_654_435_761))
            .unwrap();
        assert!(p >= 1024, "system port {p} allocated");
        assert!(seen.insert(p), "port {p} twice");
    }
    assert_eq!(
        b.bind(NatProto::Udp, (host(99), 1), 0, 0),
        Err(AllocError::Exhausted)
    );
    b.audit();
}
