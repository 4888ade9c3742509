//! When to tell a fixed-IPv4 provider the tunnel's local address (the
//! update URL of transix, v6plus, Xpass fixed IP), and whether it took it.
//! Sans-IO: fed the local address and the outcome of each fetch with the
//! time; it says when the next GET is due. The fetch itself is
//! [`crate::http::Fetch`], run by the caller from that local address.
//!
//! Times: at once when there is a local address and again every time it
//! changes; after a failure 30 s, doubled per failure up to 30 min; after
//! a success once a day (the providers forget nothing, but a day bounds
//! how long a registration stolen by another device goes unnoticed).

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use crate::http::{FetchError, Response};

/// The first retry after a failure; doubled per failure up to [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_secs(30);
pub const RETRY_MAX: Duration = Duration::from_secs(30 * 60);
/// The refresh after a success.
pub const REFRESH: Duration = Duration::from_secs(24 * 3600);

/// What one GET came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 200 and a body saying OK.
    Ok,
    /// 200 with another body (v6plus answers "NG" to wrong credentials
    /// with 200; an HTML page means a wrong path).
    NotOk,
    /// Any other status.
    Status(u16),
    /// No response: the fetch failed ([`FetchError::name`]).
    Error(&'static str),
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        *self == Outcome::Ok
    }

    /// "ok", "not-ok", "http-503", or the fetch error's name.
    pub fn name(&self) -> String {
        match self {
            Outcome::Ok => "ok".to_owned(),
            Outcome::NotOk => "not-ok".to_owned(),
            Outcome::Status(s) => format!("http-{s}"),
            Outcome::Error(e) => (*e).to_owned(),
        }
    }

    /// The provider's answer judged (v6plus and transix style): status 200
    /// and the word `OK` in the body, which must not say `NG`.
    pub fn of(result: &Result<Response, FetchError>) -> Outcome {
        let r = match result {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e.name()),
        };
        if r.status != 200 {
            return Outcome::Status(r.status);
        }
        let words = || {
            r.body
                .split(|b| !b.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
        };
        if words().any(|w| w == b"OK") && !words().any(|w| w == b"NG") {
            Outcome::Ok
        } else {
            Outcome::NotOk
        }
    }
}

/// The last finished attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub local: Ipv6Addr,
    pub at: Instant,
    pub outcome: Outcome,
}

/// The registration schedule; see the module documentation.
#[derive(Debug, Default)]
pub struct Registrar {
    local: Option<Ipv6Addr>,
    /// The address of the GET under way, if one is.
    in_flight: Option<Ipv6Addr>,
    next_at: Option<Instant>,
    backoff: Option<Duration>,
    pub last: Option<Attempt>,
    /// When the current address was last registered.
    pub registered: Option<(Ipv6Addr, Instant)>,
    pub attempts: u64,
    pub failures: u64,
}

impl Registrar {
    /// The tunnel's local address now (`None` while there is none or it is
    /// not usable). A new address is registered at once, and a GET for the
    /// old one is abandoned: returns true when the caller must drop the
    /// fetch it runs.
    pub fn set_local(&mut self, now: Instant, local: Option<Ipv6Addr>) -> bool {
        if local == self.local {
            return false;
        }
        self.local = local;
        self.backoff = None;
        self.next_at = local.map(|_| now);
        self.in_flight.take().is_some()
    }

    pub fn local(&self) -> Option<Ipv6Addr> {
        self.local
    }

    /// The address to register now, if a GET is due and none is under way;
    /// the caller starts one from that address and reports it with
    /// [`Registrar::finished`].
    pub fn due(&mut self, now: Instant) -> Option<Ipv6Addr> {
        let local = self.local?;
        if self.in_flight.is_some() || self.next_at.is_none_or(|t| now < t) {
            return None;
        }
        self.in_flight = Some(local);
        self.attempts += 1;
        Some(local)
    }

    /// A GET under way.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The GET that [`Registrar::due`] gave ended with `outcome`.
    pub fn finished(&mut self, now: Instant, outcome: Outcome) {
        let Some(local) = self.in_flight.take() else {
            return;
        };
        if outcome.is_ok() {
            self.backoff = None;
            self.registered = Some((local, now));
            self.next_at = Some(now + REFRESH);
        } else {
            self.failures += 1;
            let wait = self.backoff.map_or(RETRY_FIRST, |b| (b * 2).min(RETRY_MAX));
            self.backoff = Some(wait);
            self.next_at = Some(now + wait);
        }
        self.last = Some(Attempt {
            local,
            at: now,
            outcome,
        });
    }

    /// When the next GET is due (none under way and an address known).
    pub fn next_attempt(&self) -> Option<Instant> {
        self.local?;
        if self.in_flight.is_some() {
            return None;
        }
        self.next_at
    }

    /// Whether the provider holds the current address (its last GET for it
    /// succeeded).
    pub fn is_registered(&self) -> bool {
        matches!((self.registered, self.local), (Some((r, _)), Some(l)) if r == l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ResponseError;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn resp(status: u16, body: &str) -> Result<Response, FetchError> {
        Ok(Response {
            status,
            reason: String::new(),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn judges_the_providers_answers() {
        assert_eq!(Outcome::of(&resp(200, "OK")), Outcome::Ok);
        assert_eq!(Outcome::of(&resp(200, "OK\r\n")), Outcome::Ok);
        assert_eq!(Outcome::of(&resp(200, "status: OK")), Outcome::Ok);
        // v6plus answers wrong credentials with 200 "NG".
        assert_eq!(Outcome::of(&resp(200, "NG")), Outcome::NotOk);
        assert_eq!(
            Outcome::of(&resp(200, "<html>Welcome</html>")),
            Outcome::NotOk
        );
        assert_eq!(Outcome::of(&resp(200, "BROKEN")), Outcome::NotOk);
        assert_eq!(Outcome::of(&resp(400, "NG")), Outcome::Status(400));
        assert_eq!(Outcome::of(&resp(401, "OK")), Outcome::Status(401));
        assert_eq!(Outcome::Status(503).name(), "http-503");
        let e = Outcome::of(&Err(FetchError::ConnectTimeout));
        assert_eq!(e.name(), "connect-timeout");
        let e = Outcome::of(&Err(FetchError::Response(ResponseError::BodyTooLarge)));
        assert!(!e.is_ok());
    }

    /// Start, failures backing off 30 s .. 30 min, success and the daily
    /// refresh, all on a fake clock.
    #[test]
    fn timers_back_off_and_refresh() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let mut r = Registrar::default();
        assert_eq!(r.due(t0), None, "nothing without an address");
        assert!(!r.set_local(t0, Some(a("2001:db8::feed"))));
        assert_eq!(r.next_attempt(), Some(t0));
        assert_eq!(r.due(t0), Some(a("2001:db8::feed")));
        assert_eq!(r.due(t0), None, "one GET at a time");
        assert_eq!(r.next_attempt(), None);
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..9 {
            r.finished(s(now), Outcome::Status(503));
            let next = r.next_attempt().unwrap();
            let wait = next.duration_since(s(now)).as_secs();
            waits.push(wait);
            assert_eq!(r.due(next - Duration::from_millis(1)), None);
            now += wait;
            assert!(r.due(s(now)).is_some());
        }
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1800, 1800, 1800]);
        assert_eq!(r.failures, 9);
        assert!(!r.is_registered());
        r.finished(s(now), Outcome::Ok);
        assert!(r.is_registered());
        assert_eq!(r.next_attempt(), Some(s(now) + REFRESH));
        assert_eq!(r.due(s(now) + REFRESH - Duration::from_secs(1)), None);
        assert!(r.due(s(now) + REFRESH).is_some());
        // A failure after a success starts again at 30 s.
        r.finished(s(now) + REFRESH, Outcome::NotOk);
        assert_eq!(r.next_attempt(), Some(s(now) + REFRESH + RETRY_FIRST));
        assert_eq!(r.last.as_ref().unwrap().outcome, Outcome::NotOk);
        assert_eq!(r.attempts, 11);
    }

    /// A new address is registered at once, whatever the back-off, and the
    /// GET for the old one is abandoned; losing the address stops it all.
    #[test]
    fn a_new_address_is_registered_at_once() {
        let t0 = Instant::now();
        let mut r = Registrar::default();
        r.set_local(t0, Some(a("2001:db8:1::feed")));
        r.due(t0).unwrap();
        r.finished(t0, Outcome::Error("timeout"));
        r.due(t0 + RETRY_FIRST).unwrap();
        let t1 = t0 + Duration::from_secs(40);
        assert!(
            r.set_local(t1, Some(a("2001:db8:2::feed"))),
            "old GET dropped"
        );
        assert_eq!(r.due(t1), Some(a("2001:db8:2::feed")));
        // The old GET's late end changes nothing.
        r.finished(t1, Outcome::Ok);
        assert!(r.is_registered());
        assert_eq!(r.registered.unwrap().0, a("2001:db8:2::feed"));
        // Renumbered again: not registered until the new GET succeeds.
        let t2 = t1 + Duration::from_secs(5);
        assert!(!r.set_local(t2, Some(a("2001:db8:3::feed"))));
        assert!(!r.is_registered());
        assert_eq!(r.next_attempt(), Some(t2));
        r.set_local(t2, None);
        assert_eq!(r.next_attempt(), None);
        assert_eq!(r.due(t2 + REFRESH), None);
    }
}
