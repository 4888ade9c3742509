//! Issue 19: stateless DHCPv6 (Information-request, RFC 8415 18.2.6) for
//! lines without PD, on the fake clock of the parent module.

use super::*;

const DNS1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x7f01, 0xa, 0, 0, 0, 3);
const DNS2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x7f01, 0xb, 0, 0, 0, 3);

/// A stateless server's Reply to `request`.
struct InfoServer {
    duid: Vec<u8>,
    dns: Vec<Ipv6Addr>,
    domains: Vec<&'static str>,
    refresh: Option<u32>,
    inf_max_rt: Option<u32>,
    status: Option<Status>,
    with_server_id: bool,
}

impl InfoServer {
    fn new() -> Self {
        Self {
            duid: duid_en(32473, &[9; 6]),
            dns: vec![DNS1, DNS2],
            domains: vec!["flets-east.jp", "iptvf.jp"],
            refresh: None,
            inf_max_rt: None,
            status: None,
            with_server_id: true,
        }
    }

    fn answer(&self, kind: MessageType, request: &Message) -> Vec<u8> {
        let mut message = Message::new_with_id(kind, request.xid());
        let opts = message.opts_mut();
        if let Some(client_id) = client_id_of(request) {
            opts.insert(DhcpOption::ClientId(client_id));
        }
        if self.with_server_id {
            opts.insert(DhcpOption::ServerId(self.duid.clone()));
        }
        if let Some(status) = self.status {
            opts.insert(DhcpOption::StatusCode(StatusCode {
                status,
                msg: String::new(),
            }));
        }
        opts.insert(DhcpOption::DomainNameServers(self.dns.clone()));
        let names = self
            .domains
            .iter()
            .map(|d| Name::from_ascii(format!("{d}.")).expect("test domain"))
            .collect();
        opts.insert(DhcpOption::DomainSearchList(names));
        if let Some(value) = self.refresh {
            opts.insert(DhcpOption::InformationRefreshTime(value));
        }
        if let Some(value) = self.inf_max_rt {
            opts.insert(DhcpOption::Unknown(UnknownOption::new(
                OptionCode::InfMaxRt,
                value.to_be_bytes().to_vec(),
            )));
        }
        encode(&message)
    }

    fn reply(&self, request: &Message) -> Vec<u8> {
        assert_eq!(request.msg_type(), MessageType::InformationRequest);
        self.answer(MessageType::Reply, request)
    }
}

fn oro_of(message: &Message) -> Vec<OptionCode> {
    match message.opts().get(OptionCode::ORO) {
        Some(DhcpOption::ORO(oro)) => oro.opts.clone(),
        other => panic!("no ORO: {other:?}"),
    }
}

fn of_type(sent: &[(Instant, Message)], kind: MessageType) -> Vec<(Instant, Message)> {
    sent.iter()
        .filter(|(_, m)| m.msg_type() == kind)
        .cloned()
        .collect()
}

/// A client asked for stateless configuration by an RA with O=1, and its
/// first Information-request.
fn informing(seed: u64) -> (Harness, Message) {
    let mut h = Harness::new(config(), seed);
    h.client.request_information();
    assert!(h.poll().is_empty(), "the first one waits INF_MAX_DELAY");
    let request = h.single();
    (h, request)
}

#[test]
fn o_flag_sends_information_request_without_ia_and_retransmits() {
    let (mut h, request) = informing(71);
    let first = h.now;
    // 18.2.6: delayed by 0..=INF_MAX_DELAY; no IA option; Client ID,
    // Elapsed Time 0, and an ORO asking for DNS, the search list, the
    // refresh time and INF_MAX_RT.
    assert!(first - h.t0 <= SECOND);
    assert_eq!(request.msg_type(), MessageType::InformationRequest);
    assert_eq!(client_id_of(&request), Some(duid_ll(MAC)));
    assert_eq!(server_id_of(&request), None);
    assert!(ia_pd_of(&request).is_none());
    assert!(request.opts().get(OptionCode::IANA).is_none());
    assert_eq!(elapsed(&request), 0);
    let oro = oro_of(&request);
    for code in [
        OptionCode::DomainNameServers,
        OptionCode::DomainSearchList,
        OptionCode::InformationRefreshTime,
        OptionCode::InfMaxRt,
    ] {
        assert!(oro.contains(&code), "{code:?} missing from {oro:?}");
    }
    // The PD state machine is untouched.
    assert_eq!(h.client.state(), State::Idle);
    assert_eq!(h.client.information_xid(), Some(request.xid_num()));
    // Unanswered: INF_TIMEOUT doubling up to INF_MAX_RT (3600 s), forever.
    let sent = h.run_until(first + secs(4 * 3600));
    let mut times = vec![first];
    times.extend(sent.iter().map(|(t, _)| *t));
    assert!(sent
        .iter()
        .all(|(_, m)| m.msg_type() == MessageType::InformationRequest && m.xid() == request.xid()));
    check_backoff(&times, SECOND, secs(3600), false);
    assert!(times.len() > 14, "{}", times.len());
    assert_eq!(
        h.client.counters().tx_information_request,
        times.len() as u64
    );
}

#[test]
fn the_reply_is_exposed_and_refreshed_after_the_refresh_time() {
    let (mut h, request) = informing(72);
    let mut server = InfoServer::new();
    server.refresh = Some(1000);
    assert!(h.deliver(&server.reply(&request)).is_empty());
    let got = h.now;
    let info = h.client.information().expect("information").clone();
    assert_eq!(info.dns_servers, [DNS1, DNS2]);
    assert_eq!(info.domains, ["flets-east.jp", "iptvf.jp"]);
    assert_eq!((info.refresh, info.obtained), (1000, got));
    assert_eq!(h.client.dns_servers(), [DNS1, DNS2]);
    assert_eq!(h.client.domains(), ["flets-east.jp", "iptvf.jp"]);
    assert_eq!(h.client.information_xid(), None);
    assert_eq!(h.client.counters().information_replies, 1);
    // Refreshed after 1000 s stretched by a positive RAND (up to 10 %),
    // never before.
    let next = h.next.expect("refresh deadline");
    assert!(
        next > got + secs(1000) && next <= got + secs(1100),
        "{:?}",
        next - got
    );
    assert!(h.run_until(got + secs(1000)).is_empty());
    let sent = h.run_until(got + secs(1101));
    let (at, refresh) = sent.first().expect("refresh sent").clone();
    assert_eq!(refresh.msg_type(), MessageType::InformationRequest);
    assert_ne!(refresh.xid(), request.xid());
    assert!(at - got <= secs(1101));
    // The default refresh time when the option is absent: 86400 s.
    server.refresh = None;
    h.deliver(&server.reply(&refresh));
    assert_eq!(h.client.information().map(|i| i.refresh), Some(86_400));
    let next = h.next.expect("refresh deadline") - h.now;
    assert!(next > secs(86_400) && next <= secs(95_040), "{next:?}");
    // Below IRT_MINIMUM: 600 s.
    let (mut h, request) = informing(73);
    server.refresh = Some(5);
    h.deliver(&server.reply(&request));
    assert_eq!(h.client.information().map(|i| i.refresh), Some(600));
    assert!(h.run_until(h.now + secs(600)).is_empty());
    // Infinite: never refreshed.
    let (mut h, request) = informing(74);
    server.refresh = Some(u32::MAX);
    h.deliver(&server.reply(&request));
    assert_eq!(h.next, None);
    assert!(h.run_until(h.now + secs(10 * 86_400)).is_empty());
}

#[test]
fn noprefixavail_asks_for_information_when_the_fallback_is_on() {
    for fallback in [false, true] {
        let mut h = Harness::started(config(), 75);
        h.client.set_stateless_fallback(fallback);
        let mut pd = FakeServer::new(1);
        pd.ia_status = Some(Status::NoPrefixAvail);
        h.poll();
        let solicit = h.single();
        h.deliver(&pd.advertise(&solicit));
        let sent = h.run_until(h.now + secs(10));
        let informs = of_type(&sent, MessageType::InformationRequest);
        // Solicits go on either way: a prefix may still come.
        assert!(!of_type(&sent, MessageType::Solicit).is_empty());
        if !fallback {
            assert!(informs.is_empty());
            continue;
        }
        assert!(!informs.is_empty());
        let first_inform = informs[0].1.clone();
        h.deliver(&InfoServer::new().reply(&first_inform));
        assert_eq!(h.client.dns_servers(), [DNS1, DNS2]);
        assert_eq!(h.client.state(), State::Soliciting);
    }
}

#[test]
fn a_lease_takes_precedence_and_information_resumes_without_it() {
    let mut h = Harness::started(config(), 76);
    h.client.request_information();
    let mut info_server = InfoServer::new();
    info_server.refresh = Some(600);
    let sent = h.run_until(h.t0 + secs(2));
    let inform = of_type(&sent, MessageType::InformationRequest)
        .pop()
        .expect("Information-request beside the Solicit")
        .1;
    h.deliver(&info_server.reply(&inform));
    assert_eq!(h.client.dns_servers(), [DNS1, DNS2]);
    // A delegation arrives: its own DNS servers win and no refresh is
    // sent while it is held (its Renews bring the options).
    let mut pd = FakeServer::new(2);
    pd.preference = Some(255);
    pd.valid = 2000;
    pd.preferred = 1000;
    pd.t1 = 5000;
    pd.t2 = 6000;
    let solicit = of_type(&sent, MessageType::Solicit)
        .pop()
        .expect("Solicit")
        .1;
    let request = h.deliver(&pd.advertise(&solicit)).remove(0);
    h.deliver(&pd.reply(&request));
    let bound_at = h.now;
    assert_eq!(h.client.dns_servers(), pd.dns.as_slice());
    let sent = h.run_until(bound_at + secs(1999));
    assert!(of_type(&sent, MessageType::InformationRequest).is_empty());
    // The lease runs out (no Renew answered): the stale information is
    // refreshed at once, and exposed again meanwhile.
    let sent = h.run_until(bound_at + secs(2002));
    assert!(matches!(
        h.client.drain_events().last(),
        Some(Event::Expired(_))
    ));
    assert_eq!(h.client.dns_servers(), [DNS1, DNS2]);
    let informs = of_type(&sent, MessageType::InformationRequest);
    assert!(!informs.is_empty(), "{sent:?}");
    assert!(informs.iter().all(|(_, m)| m.xid() == informs[0].1.xid()));
    assert!(informs[0].0 - (bound_at + secs(2000)) <= SECOND);
}

#[test]
fn bad_information_replies_are_ignored_and_counted() {
    let (mut h, request) = informing(77);
    let good = InfoServer::new();
    // Another transaction.
    let mut other = request.clone();
    other.set_xid_num(request.xid_num() ^ 1);
    h.deliver(&good.reply(&other));
    assert_eq!(h.client.counters().rx_wrong_xid, 1);
    // An Advertise is no answer to an Information-request.
    h.deliver(&good.answer(MessageType::Advertise, &request));
    // No Server Identifier.
    let mut anonymous = InfoServer::new();
    anonymous.with_server_id = false;
    h.deliver(&anonymous.reply(&request));
    assert_eq!(h.client.counters().rx_no_server_id, 1);
    // Another client's.
    let mut foreign = request.clone();
    foreign.opts_mut().remove(OptionCode::ClientId);
    foreign
        .opts_mut()
        .insert(DhcpOption::ClientId(duid_ll([2, 0, 0, 0, 0, 9])));
    h.deliver(&good.reply(&foreign));
    assert_eq!(h.client.counters().rx_wrong_client_id, 1);
    // UnspecFail: keep retransmitting.
    let mut failing = InfoServer::new();
    failing.status = Some(Status::UnspecFail);
    h.deliver(&failing.reply(&request));
    assert_eq!(h.client.counters().rx_status_error, 1);
    assert!(h.client.information().is_none());
    assert_eq!(h.client.information_xid(), Some(request.xid_num()));
    let again = h.single();
    assert_eq!(again.xid(), request.xid());
    // A truncated Information Refresh Time makes the message malformed.
    let mut bytes = good.reply(&request);
    let at = find_option(&bytes, 23).expect("dns option");
    bytes.truncate(at);
    bytes.extend_from_slice(&[0, 32, 0, 2, 0, 1]);
    h.deliver(&bytes);
    assert_eq!(h.client.counters().rx_malformed, 1);
    assert!(h.client.information().is_none());
    // INF_MAX_RT from the server caps the retransmissions.
    let (mut h, request) = informing(78);
    let mut capped = InfoServer::new();
    capped.inf_max_rt = Some(120);
    capped.status = Some(Status::UnspecFail);
    h.deliver(&capped.reply(&request));
    let first = h.now;
    let sent = h.run_until(first + secs(2000));
    let mut times = vec![first];
    times.extend(sent.iter().map(|(t, _)| *t));
    assert!(
        times.windows(2).all(|w| w[1] - w[0] <= secs(132)),
        "INF_MAX_RT 120 s not honoured"
    );
}
