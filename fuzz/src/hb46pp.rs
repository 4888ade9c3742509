//! The `hb46pp_reply` target: the HB46PP client fed TXT answers and HTTP
//! replies as the integrator would pass them, and the reply parser alone.
//!
//! Header: one byte; bit 0: credentials with a server name (so the
//! credential rules run); bit 1: no `map_e` in the capabilities.
//!
//! Records, by flags bits 0-1: 0, a TXT record (records in a row form one
//! answer, given when the client asks); 1, the body of a 200 reply; 2, the
//! `Location` of a 307; 3, a body for `reply::parse` only. Bits 2-4: the
//! clock runs first (0, 1 s, 1 min, 30 min, 3 h, 1 day, 8 days, and an
//! IPv6 address change).
//!
//! Checked: a reply that parses gives a decision among the capabilities;
//! the client's deadline is never in the past; what the client asks to
//! fetch goes from its address; the password we append is masked in the
//! URL's `Display`; the cache names the server without a query.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use ipoe_proto::hb46pp::{
    reply, Action, Cache, Client, Credentials, Method, RequestConfig, Settings, TxtOutcome,
};
use ipoe_proto::http::{FetchError, Response};

const SECRET: &str = "Secret_pw_46";
const STEPS: [u64; 7] = [0, 1, 60, 1800, 3 * 3600, 86_400, 8 * 86_400];

pub fn run(data: &[u8]) {
    let (header, records) = crate::split::<1>(data);
    let mut request = RequestConfig::new("acde48-ipoe_fuzz");
    if header[0] & 1 != 0 {
        request.credentials = Some(Credentials {
            user: "fuzz".into(),
            pass: SECRET.into(),
            server: Some("prov.example".into()),
        });
    }
    if header[0] & 2 != 0 {
        request.capabilities = vec![Method::DsLite, Method::Ipip];
    }
    let caps = request.capabilities.clone();
    let Ok(mut client) = Client::new(Settings::new(request), 46) else {
        return;
    };
    let start = Instant::now();
    let mut now = start;
    let mut address: Ipv6Addr = "2001:db8:1::10".parse().unwrap();
    client.set_address(now, Some(address));
    let mut txt: Vec<Vec<u8>> = Vec::new();
    let mut pending: Vec<Action> = Vec::new();

    for record in &records {
        match (record.flags >> 2) & 7 {
            7 => {
                let mut o = address.octets();
                o[7] = o[7].wrapping_add(1);
                address = Ipv6Addr::from(o);
                client.set_address(now, Some(address));
            }
            step => now += Duration::from_secs(STEPS[usize::from(step)]),
        }
        poll(&mut client, now, &mut pending, address);
        match record.flags & 3 {
            0 => txt.push(record.bytes.to_vec()),
            3 => {
                if let Ok(p) = reply::parse(record.bytes) {
                    assert!(p.decide(&caps).method().is_none_or(|m| caps.contains(&m)));
                }
            }
            kind => {
                let response = if kind == 1 {
                    Response {
                        status: 200,
                        reason: "OK".into(),
                        headers: vec![],
                        body: record.bytes.to_vec(),
                    }
                } else {
                    Response {
                        status: 307,
                        reason: String::new(),
                        headers: vec![("location".into(), record.bytes.to_vec())],
                        body: vec![],
                    }
                };
                answer(
                    &mut client,
                    now,
                    &mut pending,
                    &mut txt,
                    Some(Ok(response)),
                    address,
                );
            }
        }
        answer(&mut client, now, &mut pending, &mut txt, None, address);
    }
    if let Some(cache) = client.cache(0) {
        let json = cache.to_json();
        // The server as the cache names it has no query, where our
        // parameters go.
        assert!(!cache.server.contains('?'));
        let back = Cache::from_json(json.as_bytes()).expect("own cache reads back");
        let mut again = Client::new(Settings::new(RequestConfig::new("acde48")), 1).unwrap();
        assert!(
            again.restore(now, &back).is_ok(),
            "an accepted reply restores"
        );
    }
}

/// Answers what the client asked for: TXT queries with the records
/// gathered so far, fetches with `response` (or a timeout when none).
fn answer(
    client: &mut Client,
    now: Instant,
    pending: &mut Vec<Action>,
    txt: &mut Vec<Vec<u8>>,
    response: Option<Result<Response, FetchError>>,
    address: Ipv6Addr,
) {
    let mut response = response;
    for action in std::mem::take(pending) {
        match action {
            Action::QueryTxt { id } => {
                let outcome = if txt.is_empty() {
                    TxtOutcome::NxDomain
                } else {
                    TxtOutcome::Records(std::mem::take(txt))
                };
                client.txt_result(now, id, outcome);
            }
            Action::Fetch {
                id, target, source, ..
            } => {
                // Actions of an earlier address are answered late: the
                // client must ignore them.
                match response.take() {
                    Some(r) => client.http_result(now, id, &r),
                    None => pending.push(Action::Fetch {
                        id,
                        target,
                        verify: false,
                        source,
                    }),
                }
            }
        }
    }
    poll(client, now, pending, address);
}

/// Polls; checks the deadline and what the client newly asks for.
fn poll(client: &mut Client, now: Instant, pending: &mut Vec<Action>, address: Ipv6Addr) {
    let mut fresh = Vec::new();
    let next = client.poll(now, &mut fresh);
    assert!(next.is_none_or(|n| n >= now), "deadline in the past");
    for action in &fresh {
        if let Action::Fetch { target, source, .. } = action {
            assert_eq!(*source, address, "fetch from the current address");
            // The server's data (the TXT url, a Location) may hold the
            // secret's text; the copy we append must be masked.
            let exposed = target.expose();
            let ours = exposed.ends_with(&format!("&user=fuzz&pass={SECRET}"));
            let shown = target.to_string().matches(SECRET).count();
            assert!(
                shown + usize::from(ours) <= exposed.matches(SECRET).count(),
                "credential in a log line"
            );
        }
    }
    pending.append(&mut fresh);
}
