//! Issue 15, DHCPv6 and WAN (control-plane review findings 3, 4 and 8),
//! on the fake clock and fake server of the parent module.

use super::*;

fn advertise_sol_max_rt(h: &mut Harness, value: u32) {
    // Even an Advertise that is otherwise ignored carries SOL_MAX_RT.
    let mut server = FakeServer::new(1);
    server.ia_status = Some(Status::NoPrefixAvail);
    server.sol_max_rt = Some(value);
    h.poll();
    let solicit = h.single();
    h.deliver(&server.advertise(&solicit));
}

/// Finding 8: RFC 8415 21.24, a SOL_MAX_RT below 60 or above 86400 is
/// ignored, not clamped; the edges are taken.
#[test]
fn f8_out_of_range_sol_max_rt_is_ignored() {
    for (option, effective) in [
        (1u32, 3600u32),
        (59, 3600),
        (60, 60),
        (86_400, 86_400),
        (86_401, 3600),
        (u32::MAX, 3600),
    ] {
        let mut h = Harness::started(config(), 61);
        advertise_sol_max_rt(&mut h, option);
        assert_eq!(h.client.sol_max_rt, effective, "option {option}");
    }
}

/// Finding 8, on restore: a saved out-of-range value is ignored as well.
#[test]
fn f8_out_of_range_sol_max_rt_is_ignored_on_restore() {
    let t0 = Instant::now() + secs(100_000);
    for (saved, effective) in [
        (Some(5u32), 3600u32),
        (Some(100_000), 3600),
        (Some(120), 120),
    ] {
        let server = FakeServer::new(4);
        let lease = Lease {
            prefix: server.prefix,
            prefix_len: 56,
            preferred: 3600,
            valid: 7200,
            t1: 1800,
            t2: 2880,
            server_id: server.duid.clone(),
            obtained: t0 - secs(100),
            dns_servers: vec![],
            domains: vec![],
            aftr_name: None,
            sol_max_rt: saved,
            address: None,
            extra_prefixes: Vec::new(),
        };
        let mut client = Client::new(config(), 62);
        client.restore(lease, t0);
        assert_eq!(client.sol_max_rt, effective, "saved {saved:?}");
    }
}

/// Finding 3: a Solicit that has backed off starts again from IRT (RFC
/// 8415 15: RT 1, 2, 4 ... s with jitter) when the link changes.
#[test]
fn f3_restart_discovery_starts_solicit_from_irt() {
    let mut h = Harness::started(config(), 63);
    h.run_until(h.t0 + secs(2 * 3600));
    let before = h.client.counters().tx_solicit;
    h.client.restart_discovery(h.now);
    let restart = h.now;
    let sent = h.run_until(restart + secs(40));
    let times: Vec<Instant> = sent
        .iter()
        .filter(|(_, m)| m.msg_type() == MessageType::Solicit)
        .map(|(t, _)| *t)
        .collect();
    assert!(times[0] <= restart + SECOND, "SOL_MAX_DELAY");
    assert!(times.len() >= 5, "{} Solicits in 40 s", times.len());
    check_backoff(&times, SECOND, secs(3600), true);
    assert_eq!(
        elapsed(&sent[0].1),
        0,
        "a new exchange: Elapsed Time starts again"
    );
    assert!(h.client.counters().tx_solicit > before);
}

/// Finding 3: nothing to restart while a lease is held, or while the
/// Solicit is still young.
#[test]
fn f3_restart_discovery_leaves_leases_and_young_solicits_alone() {
    let mut h = Harness::started(config(), 64);
    h.poll();
    let first = h.single();
    h.client.restart_discovery(h.now);
    let second = h.single();
    assert_eq!(first.xid(), second.xid(), "young exchange restarted");

    let mut h = Harness::started(config(), 65);
    let lease = h.bind(&FakeServer::new(1));
    h.client.restart_discovery(h.now);
    assert_eq!(h.client.state(), State::Bound);
    assert_eq!(h.client.lease(), Some(&lease));
    assert!(h.poll().is_empty());
}

/// Finding 4 (the review's sequence): bound to one /56; at T1 the Reply
/// returns it deprecated (0/3000) beside a new preferred one
/// (3600/7200). The client moves to the new prefix and keeps the old one
/// in the lease, deprecated, until its valid lifetime ends.
#[test]
fn f4_deprecated_held_prefix_gives_way_to_new_preferred_one() {
    let mut h = Harness::started(config(), 66);
    let mut server = FakeServer::new(1);
    let old = h.bind(&server);
    assert_eq!(old.prefix, "2001:db8:100::".parse::<Ipv6Addr>().unwrap());
    h.now = old.obtained + secs(1800);
    let renew = h.poll().remove(0);
    assert_eq!(renew.msg_type(), MessageType::Renew);
    let new_prefix: Ipv6Addr = "2001:db8:7700::".parse().unwrap();
    server.extra_prefixes = vec![iaprefix(old.prefix, 56, 0, 3000)];
    server.prefix = new_prefix;
    assert!(h.deliver(&server.reply(&renew)).is_empty());
    let bound = match h.client.drain_events().as_slice() {
        [Event::Bound(lease)] => lease.clone(),
        other => panic!("expected Bound to the new prefix, got {other:?}"),
    };
    assert_eq!(
        (bound.prefix, bound.preferred, bound.valid),
        (new_prefix, 3600, 7200)
    );
    assert_eq!(
        bound.extra_prefixes,
        vec![DelegatedPrefix {
            prefix: old.prefix,
            prefix_len: 56,
            preferred: 0,
            valid: 3000,
        }]
    );
}

/// Finding 4: every prefix of the IA_PD is renewed, and a lease left out
/// of a Reply is kept unchanged (18.2.10.1) until its valid lifetime ends.
#[test]
fn f4_every_prefix_of_the_ia_pd_is_renewed_and_expires_on_its_own() {
    let mut h = Harness::started(config(), 67);
    let mut server = FakeServer::new(1);
    let second: Ipv6Addr = "2001:db8:7700::".parse().unwrap();
    server.extra_prefixes = vec![iaprefix(second, 56, 1000, 2000)];
    let lease = h.bind(&server);
    assert_eq!(lease.prefix, server.prefix, "the longest-lived one is used");
    assert_eq!(lease.extra_prefixes.len(), 1);

    h.now = lease.obtained + secs(1800);
    let renew = h.poll().remove(0);
    let mut asked = pd_prefixes(&renew);
    asked.sort();
    assert_eq!(asked, vec![(server.prefix, 56, 0, 0), (second, 56, 0, 0)]);

    // The server leaves the second one out: kept, with what it had left.
    server.extra_prefixes.clear();
    assert!(h.deliver(&server.reply(&renew)).is_empty());
    let renewed = h.client.lease().unwrap().clone();
    assert_eq!(
        renewed.extra_prefixes,
        vec![DelegatedPrefix {
            prefix: second,
            prefix_len: 56,
            preferred: 0,
            valid: 200,
        }]
    );
    // Its valid lifetime ends: it is no longer renewed.
    h.now = renewed.obtained + secs(1800);
    let renew = h.poll().remove(0);
    assert_eq!(pd_prefixes(&renew), vec![(server.prefix, 56, 0, 0)]);
    assert!(h.client.lease().unwrap().extra_prefixes.is_empty());
}

/// Finding 4: a held prefix that is still preferred stays in use when the
/// server adds another one (no needless renumbering).
#[test]
fn f4_preferred_held_prefix_stays_when_another_is_added() {
    let mut h = Harness::started(config(), 68);
    let mut server = FakeServer::new(1);
    let old = h.bind(&server);
    h.now = old.obtained + secs(1800);
    let renew = h.poll().remove(0);
    server.extra_prefixes = vec![iaprefix("2001:db8::".parse().unwrap(), 48, 3600, 9000)];
    assert!(h.deliver(&server.reply(&renew)).is_empty());
    match h.client.drain_events().as_slice() {
        [Event::Renewed(l)] => assert_eq!(l.prefix, old.prefix),
        other => panic!("{other:?}"),
    }
}

fn ia_na_of(message: &Message) -> Option<IANA> {
    match message.opts().get(OptionCode::IANA) {
        Some(DhcpOption::IANA(na)) => Some(na.clone()),
        _ => None,
    }
}

fn na_addresses(na: &IANA) -> Vec<Ipv6Addr> {
    na.opts
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IAAddr(a) => Some(a.addr),
            _ => None,
        })
        .collect()
}

/// Finding 2 (RFC 7084 WAA-6): an RA with M=1 makes the client ask for an
/// IA_NA even when `request_na` is off, and the address is kept.
#[test]
fn f2_request_address_adds_ia_na_to_solicit() {
    let mut h = Harness::started(config(), 71);
    h.client.request_address();
    let server = FakeServer::new(1);
    h.poll();
    let solicit = h.single();
    let na = ia_na_of(&solicit).expect("IA_NA in the Solicit");
    assert_eq!(na.id, IAID);
    // `bind` starts its own exchange; answer this one by hand.
    let mut sent = h.deliver(&server.advertise(&solicit));
    if sent.is_empty() {
        sent = h.run_to_next();
    }
    let request = sent.remove(0);
    assert!(ia_na_of(&request).is_some());
    h.deliver(&server.reply(&request));
    let lease = h.client.lease().unwrap();
    assert_eq!(
        lease.address,
        Some((server.address, server.preferred, server.valid))
    );
}

/// Finding 2 (RFC 8415 18.2.8): an IA_NA address that fails DAD is
/// dropped and declined to its server with a Decline carrying only that
/// IA_NA; once the server answers, a Renew asks for another address.
#[test]
fn f2_conflicting_address_is_declined_then_another_requested() {
    let mut cfg = config();
    cfg.request_na = true;
    let mut h = Harness::started(cfg, 72);
    let server = FakeServer::new(1);
    let lease = h.bind(&server);
    assert_eq!(lease.address.map(|a| a.0), Some(server.address));
    h.now += secs(2);
    h.client.decline(h.now, server.address);
    assert_eq!(h.client.lease().unwrap().address, None);
    let sent = h.poll();
    assert_eq!(sent.len(), 1);
    let decline = &sent[0];
    assert_eq!(decline.msg_type(), MessageType::Decline);
    assert_eq!(server_id_of(decline), Some(server.duid.clone()));
    assert!(ia_pd_of(decline).is_none(), "a Decline carries no IA_PD");
    let na = ia_na_of(decline).expect("IA_NA");
    assert_eq!(na_addresses(&na), vec![server.address]);
    // Retransmitted up to DEC_MAX_RC without an answer.
    let declines = h
        .run_until(h.now + secs(3))
        .iter()
        .filter(|(_, m)| m.msg_type() == MessageType::Decline)
        .count();
    assert!(declines >= 1);
    let decline = h.run_to_next().remove(0);
    assert_eq!(decline.msg_type(), MessageType::Decline);
    let mut reply = Message::new_with_id(MessageType::Reply, decline.xid());
    reply
        .opts_mut()
        .insert(DhcpOption::ClientId(client_id_of(&decline).unwrap()));
    reply
        .opts_mut()
        .insert(DhcpOption::ServerId(server.duid.clone()));
    let sent = h.deliver(&encode(&reply));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].msg_type(), MessageType::Renew);
    let na = ia_na_of(&sent[0]).expect("the Renew asks for an address");
    assert!(na_addresses(&na).is_empty());
    assert_eq!(h.client.counters().tx_decline as usize, declines + 2);
    // A conflict on an address that is not ours does nothing.
    h.client.decline(h.now, "2001:db8::99".parse().unwrap());
    assert_eq!(h.client.state(), State::Renewing);
}

/// Finding 2: the address is dropped when its own valid lifetime ends,
/// even while the prefix lives on.
#[test]
fn f2_address_is_dropped_at_its_valid_lifetime() {
    let t0 = Instant::now() + secs(100_000);
    let server = FakeServer::new(4);
    let address: Ipv6Addr = "2001:db8:ffff::10".parse().unwrap();
    let lease = Lease {
        prefix: server.prefix,
        prefix_len: 56,
        preferred: 3600,
        valid: 7200,
        t1: 1800,
        t2: 2880,
        server_id: server.duid.clone(),
        obtained: t0,
        dns_servers: vec![],
        domains: vec![],
        aftr_name: None,
        sol_max_rt: None,
        address: Some((address, 50, 100)),
        extra_prefixes: Vec::new(),
    };
    let mut h = Harness::new(config(), 73);
    h.now = t0;
    h.client.restore(lease, t0);
    h.run_until(t0 + secs(99));
    assert!(h.client.lease().unwrap().address.is_some());
    h.run_until(t0 + secs(100));
    assert_eq!(h.client.lease().unwrap().address, None);
    assert_eq!(h.client.counters().address_expirations, 1);
    assert!(h.client.lease().is_some(), "the prefix is still held");
}
