//! The HB46PP provisioning client (v6pc "IPv6マイグレーション技術の国内標準
//! プロビジョニング方式", 1.0/1.1): how ipoed learns, with nothing
//! configured, whether its line runs DS-Lite, MAP-E or fixed-IPv4 IPIP.
//!
//! * [`txt`]: the `4over6.info` TXT record (`v=v6mig-1 url=... t=a|b`).
//! * [`query`]: the request URL (vendorid, product, version, capability,
//!   token, user/pass).
//! * [`reply`]: the strict JSON reply parser and the [`Decision`].
//! * [`Client`]: the state machine of HB46PP 3.6, sans-IO. It asks for a
//!   TXT lookup and for HTTP fetches ([`Action`]), which the integrator
//!   carries out (the WAN resolvers, [`crate::http::Fetch`]) and answers
//!   with [`Client::txt_result`] and [`Client::http_result`].
//!
//! Timers (HB46PP 3.6; "n" counts the failures in a row, the window
//! doubles per failure up to 8 times the spec's):
//!
//! | event | next round |
//! |---|---|
//! | reply accepted, with `ttl` | after `ttl` (at least [`MIN_TTL`]) |
//! | reply accepted, no `ttl` | 20-24 h |
//! | the IPv6 address changes | at once |
//! | TXT NXDOMAIN / NODATA / no v6mig record | 1-3 h; the method is dropped |
//! | other DNS failure, bad record, no answer in [`Settings::dns_timeout`] | 1-10 min x 2^(n-1) (up to 8-80 min) |
//! | no HTTP reply, a status other than 200/307/308, a refused reply | 10-30 min x 2^(n-1) (up to 80-240 min) |
//! | 307/308 | the `Location` at once, [`Settings::max_redirects`] at most |
//!
//! A failure keeps the decision in use (the spec lets the CPE keep using
//! stored data while the server is unreachable); only NXDOMAIN/NODATA or
//! a reply that offers nothing (`order: []`) drops it. The last accepted
//! reply is the [`Cache`] the integrator writes to `state_dir` and gives
//! back at start ([`Client::restore`]), re-checked by the same parser.

pub mod query;
pub mod reply;
pub mod txt;

#[cfg(test)]
mod tests;

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use crate::http::target::Target;
use crate::http::{FetchError, Response};
use crate::jitter::Jitter;

pub use query::{Credentials, RequestConfig};
pub use reply::{Aftr, Auth, Decision, DsLite, Ipip, MapE, Method, Provisioning, ReplyError};
pub use txt::{Discovery, TxtError, TXT_NAME};

/// Shortest refresh a `ttl` can ask for: a server answering `ttl: 0`
/// must not make the router ask in a loop.
pub const MIN_TTL: Duration = Duration::from_secs(300);
/// Largest cache file read back.
pub const MAX_CACHE: usize = reply::MAX_BODY + 8192;

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
/// The spec's windows.
const REFRESH: (Duration, Duration) = (
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
);
const NO_RECORD: (Duration, Duration) = (HOUR, Duration::from_secs(3 * 3600));
const DNS_ERROR: (Duration, Duration) = (MIN, Duration::from_secs(10 * 60));
const HTTP_ERROR: (Duration, Duration) =
    (Duration::from_secs(10 * 60), Duration::from_secs(30 * 60));
/// The backoff stops doubling after this many failures (x8).
const MAX_DOUBLINGS: u32 = 3;

#[derive(Clone, Debug)]
pub struct Settings {
    pub request: RequestConfig,
    /// How long a TXT lookup may take before it counts as a DNS failure.
    pub dns_timeout: Duration,
    /// How long a fetch may take before it counts as no reply (the fetch's
    /// own timeouts are shorter; this catches a fetch never answered).
    pub http_timeout: Duration,
    pub max_redirects: u8,
}

impl Settings {
    pub fn new(request: RequestConfig) -> Self {
        Settings {
            request,
            dns_timeout: Duration::from_secs(30),
            http_timeout: Duration::from_secs(60),
            max_redirects: 5,
        }
    }
}

/// What the integrator must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Look up the TXT records of [`TXT_NAME`] with the WAN's resolvers;
    /// answer with [`Client::txt_result`] and this `id`.
    QueryTxt { id: u64 },
    /// GET `target` from `source` (over IPv6, the spec's MUST); verify the
    /// server's certificate when `verify` (else [`crate::http::tls::insecure_config`]);
    /// answer with [`Client::http_result`] and this `id`. `target` holds
    /// the credentials: log it with `Display`, which masks them.
    Fetch {
        id: u64,
        target: Target,
        verify: bool,
        source: Ipv6Addr,
    },
}

/// The TXT lookup's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxtOutcome {
    /// The records, each its character-strings joined.
    Records(Vec<Vec<u8>>),
    NxDomain,
    NoData,
    /// SERVFAIL, timeout, no resolver...
    Failed(String),
}

/// A change to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The decision in use changed (to [`Decision::Nothing`] too).
    Decided(Decision),
    /// A round failed; the reason is log-worthy (no credentials in it).
    Failed(String),
}

named_counters! {
    /// Monotonic counters; every round ends in exactly one of `accepted`,
    /// `no_record`, a `txt_*`/`dns_*` failure, or an HTTP/reply failure.
    pub struct Counters {
        /// TXT lookups asked for.
        txt_queries => "txt-queries",
        /// NXDOMAIN, NODATA, or no v6mig record in the answer.
        no_record => "no-record",
        /// DNS failures and lookups not answered in time.
        dns_failed => "dns-failed",
        /// v6mig records refused (bad version, url, t, duplicates).
        txt_malformed => "txt-malformed",
        /// Fetches asked for (redirects included).
        fetches => "fetches",
        /// Fetches that ended without a response (or not in time).
        http_failed => "http-failed",
        /// Responses with a status other than 200, 307 and 308.
        http_status => "http-status",
        /// Redirects followed.
        redirects => "redirects",
        /// Redirects refused: too many, no or bad Location, https to http.
        redirect_refused => "redirect-refused",
        /// Replies accepted.
        accepted => "accepted",
        /// Reply bodies over `reply::MAX_BODY`.
        reply_too_large => "reply-too-large",
        /// Replies that are not a JSON object of the spec's types.
        reply_malformed => "reply-malformed",
        /// Replies without `order`.
        reply_no_order => "reply-no-order",
        /// `ttl` over 7 days.
        reply_bad_ttl => "reply-bad-ttl",
        /// `token` not 64 lower-case hex digits.
        reply_bad_token => "reply-bad-token",
        /// `auth` not req, bad or ok.
        reply_bad_auth => "reply-bad-auth",
        /// A name field over 256 bytes.
        reply_bad_name => "reply-bad-name",
        /// A `map_e` section that is not a usable BR and rule set.
        reply_bad_map_e => "reply-bad-map-e",
        /// A `dslite` section without a usable AFTR.
        reply_bad_dslite => "reply-bad-dslite",
        /// An `ipip` section with a bad address.
        reply_bad_ipip => "reply-bad-ipip",
        /// `order` names a method whose section is missing.
        reply_missing_section => "reply-missing-section",
        /// Results whose id is not the one awaited (late, or replaced).
        stale_results => "stale-results",
        /// Rounds started at once by an IPv6 address change.
        address_changes => "address-changes",
        /// Cache files refused at restore.
        cache_refused => "cache-refused",
    }
}

impl Counters {
    fn refused(&mut self, e: &ReplyError) {
        *match e {
            ReplyError::TooLarge => &mut self.reply_too_large,
            ReplyError::Malformed(_) => &mut self.reply_malformed,
            ReplyError::NoOrder => &mut self.reply_no_order,
            ReplyError::BadTtl(_) => &mut self.reply_bad_ttl,
            ReplyError::BadToken => &mut self.reply_bad_token,
            ReplyError::BadAuth(_) => &mut self.reply_bad_auth,
            ReplyError::BadName(_) => &mut self.reply_bad_name,
            ReplyError::BadMapE(_) => &mut self.reply_bad_map_e,
            ReplyError::BadDsLite(_) => &mut self.reply_bad_dslite,
            ReplyError::BadIpip(_) => &mut self.reply_bad_ipip,
            ReplyError::MissingSection(_) => &mut self.reply_missing_section,
        } += 1;
    }
}

/// Where the decision in use came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Server,
    Cache,
}

/// The answer in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub provisioning: Provisioning,
    pub decision: Decision,
    pub source: Source,
    /// When it was accepted (restored, for a cached one).
    pub at: Instant,
    /// The server that gave it, masked (for `show`).
    pub server: String,
    /// The reply as received, for the cache.
    body: Vec<u8>,
    /// The address it was asked from.
    address: Option<Ipv6Addr>,
}

/// The last accepted reply, for `state_dir` (serde JSON).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cache {
    /// The server, masked: no credential is ever written.
    pub server: String,
    /// The IPv6 address the reply was for.
    pub address: Option<Ipv6Addr>,
    /// Wall-clock seconds when it was saved (the caller's clock).
    pub saved_unix: u64,
    /// The reply body as received (UTF-8: it parsed as JSON).
    pub body: String,
}

impl Cache {
    /// Reads a cache file; `None` if it is not one (the caller logs and
    /// removes it).
    pub fn from_json(bytes: &[u8]) -> Option<Cache> {
        if bytes.len() > MAX_CACHE {
            return None;
        }
        serde_json::from_slice(bytes).ok()
    }

    pub fn to_json(&self) -> String {
        // A struct of strings and numbers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Clone, Debug)]
enum Phase {
    /// No IPv6 address to ask from.
    NoAddress,
    /// Next round at `at`.
    Waiting {
        at: Instant,
    },
    Txt {
        id: u64,
        deadline: Instant,
    },
    Http {
        id: u64,
        deadline: Instant,
        discovery: Discovery,
        target: Target,
        hops: u8,
    },
}

/// What `show` tells about the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// `no-address`, `waiting`, `dns`, `http`.
    pub phase: &'static str,
    pub next: Option<Instant>,
    pub address: Option<Ipv6Addr>,
    /// The provisioning server last found, masked.
    pub server: Option<String>,
    pub decision: Option<Decision>,
    pub source: Option<Source>,
    pub enabler_name: Option<String>,
    pub last_success: Option<Instant>,
    pub last_error: Option<String>,
    pub failures: u32,
}

/// The client; see the module documentation. Drive it with
/// [`Client::poll`] after every input and when its deadline passes.
#[derive(Debug)]
pub struct Client {
    settings: Settings,
    jitter: Jitter,
    phase: Phase,
    address: Option<Ipv6Addr>,
    answer: Option<Answer>,
    /// The token of the last reply, sent back with the next request.
    token: Option<String>,
    failures: u32,
    last_error: Option<String>,
    last_success: Option<Instant>,
    server: Option<String>,
    next_id: u64,
    actions: Vec<Action>,
    events: Vec<Event>,
    counters: Counters,
}

fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or(t)
}

impl Client {
    /// Refuses request values outside the spec's character sets.
    pub fn new(settings: Settings, seed: u64) -> Result<Self, String> {
        settings.request.validate()?;
        Ok(Client {
            settings,
            jitter: Jitter::new(seed),
            phase: Phase::NoAddress,
            address: None,
            answer: None,
            token: None,
            failures: 0,
            last_error: None,
            last_success: None,
            server: None,
            next_id: 1,
            actions: Vec::new(),
            events: Vec::new(),
            counters: Counters::default(),
        })
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A configured token (`provisioning.token`), sent until a reply
    /// gives another.
    pub fn set_token(&mut self, token: Option<String>) {
        if token.as_deref().is_none_or(query::is_token) {
            self.token = token;
        }
    }

    /// The answer in use.
    pub fn answer(&self) -> Option<&Answer> {
        self.answer.as_ref()
    }

    /// The decision in use (`None` before any answer).
    pub fn decision(&self) -> Option<&Decision> {
        self.answer.as_ref().map(|a| &a.decision)
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The WAN's global IPv6 address the requests go from (`None`: none
    /// yet, or lost). A different address starts a round at once.
    pub fn set_address(&mut self, now: Instant, address: Option<Ipv6Addr>) {
        if address == self.address {
            return;
        }
        let had = self.address.is_some();
        self.address = address;
        match address {
            None => self.phase = Phase::NoAddress,
            Some(a) => {
                if had {
                    self.counters.address_changes += 1;
                    log::info!("hb46pp: IPv6 address now {a}, asking again");
                }
                self.failures = 0;
                self.phase = Phase::Waiting { at: now };
            }
        }
    }

    /// Starts a round now (an operator's request).
    pub fn refresh(&mut self, now: Instant) {
        if self.address.is_some() {
            self.phase = Phase::Waiting { at: now };
        }
    }

    /// Forgets the answer in use and the token (the spec's "a way to clear
    /// the stored data"); a round follows at once.
    pub fn clear(&mut self, now: Instant) {
        self.token = None;
        self.set_decision(None);
        self.refresh(now);
    }

    /// Takes a cache file's answer as the decision in use until the server
    /// answers (the round still runs as soon as there is an address).
    pub fn restore(&mut self, now: Instant, cache: &Cache) -> Result<(), ReplyError> {
        let p = reply::parse(cache.body.as_bytes()).inspect_err(|_| {
            self.counters.cache_refused += 1;
        })?;
        self.token = p.token.clone();
        let decision = p.decide(&self.settings.request.capabilities);
        self.answer = Some(Answer {
            decision: decision.clone(),
            provisioning: p,
            source: Source::Cache,
            at: now,
            server: cache.server.clone(),
            body: cache.body.clone().into_bytes(),
            address: cache.address,
        });
        self.events.push(Event::Decided(decision));
        Ok(())
    }

    /// The answer in use as a cache file's content; `None` when there is
    /// nothing to keep (the integrator then removes the file).
    pub fn cache(&self, saved_unix: u64) -> Option<Cache> {
        let a = self.answer.as_ref()?;
        Some(Cache {
            server: a.server.clone(),
            address: a.address,
            saved_unix,
            body: String::from_utf8_lossy(&a.body).into_owned(),
        })
    }

    pub fn status(&self, now: Instant) -> Status {
        let (phase, next) = match &self.phase {
            Phase::NoAddress => ("no-address", None),
            Phase::Waiting { at } => ("waiting", Some((*at).max(now))),
            Phase::Txt { deadline, .. } => ("dns", Some(*deadline)),
            Phase::Http { deadline, .. } => ("http", Some(*deadline)),
        };
        Status {
            phase,
            next,
            address: self.address,
            server: self.server.clone(),
            decision: self.answer.as_ref().map(|a| a.decision.clone()),
            source: self.answer.as_ref().map(|a| a.source),
            enabler_name: self
                .answer
                .as_ref()
                .and_then(|a| a.provisioning.enabler_name.clone()),
            last_success: self.last_success,
            last_error: self.last_error.clone(),
            failures: self.failures,
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Actions due at `now` go to `out`; returns when to poll next.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Action>) -> Option<Instant> {
        match &self.phase {
            Phase::NoAddress => {}
            Phase::Waiting { at } if now >= *at => {
                let id = self.id();
                self.counters.txt_queries += 1;
                self.actions.push(Action::QueryTxt { id });
                self.phase = Phase::Txt {
                    id,
                    deadline: later(now, self.settings.dns_timeout),
                };
            }
            Phase::Txt { deadline, .. } if now >= *deadline => {
                self.counters.dns_failed += 1;
                self.fail(now, DNS_ERROR, "no TXT answer in time".into());
            }
            Phase::Http { deadline, .. } if now >= *deadline => {
                self.counters.http_failed += 1;
                self.fail(now, HTTP_ERROR, "no HTTP result in time".into());
            }
            _ => {}
        }
        out.append(&mut self.actions);
        match &self.phase {
            Phase::NoAddress => None,
            Phase::Waiting { at } => Some(*at),
            Phase::Txt { deadline, .. } | Phase::Http { deadline, .. } => Some(*deadline),
        }
    }

    /// The result of [`Action::QueryTxt`] `id`.
    pub fn txt_result(&mut self, now: Instant, id: u64, outcome: TxtOutcome) {
        if !matches!(self.phase, Phase::Txt { id: want, .. } if want == id) {
            self.counters.stale_results += 1;
            return;
        }
        let records = match outcome {
            TxtOutcome::Records(r) => r,
            TxtOutcome::NxDomain | TxtOutcome::NoData => {
                return self.no_record(now, "no 4over6.info TXT record")
            }
            TxtOutcome::Failed(reason) => {
                self.counters.dns_failed += 1;
                return self.fail(
                    now,
                    DNS_ERROR,
                    format!("TXT lookup failed: {}", clip(&reason)),
                );
            }
        };
        let discovery = match txt::parse(&records) {
            Ok(d) => d,
            Err(TxtError::NoRecord) => {
                return self.no_record(now, "no v6mig record at 4over6.info")
            }
            Err(e) => {
                self.counters.txt_malformed += 1;
                return self.fail(now, DNS_ERROR, format!("4over6.info: {e}"));
            }
        };
        self.server = Some(discovery.url.masked());
        let target =
            query::for_discovery(&self.settings.request, &discovery, self.token.as_deref());
        self.start_fetch(now, discovery, target, 0);
    }

    fn start_fetch(&mut self, now: Instant, discovery: Discovery, target: Target, hops: u8) {
        let Some(source) = self.address else {
            self.phase = Phase::NoAddress;
            return;
        };
        let id = self.id();
        self.counters.fetches += 1;
        log::debug!("hb46pp: GET {target}");
        self.actions.push(Action::Fetch {
            id,
            target: target.clone(),
            verify: discovery.verify && target.is_https(),
            source,
        });
        self.phase = Phase::Http {
            id,
            deadline: later(now, self.settings.http_timeout),
            discovery,
            target,
            hops,
        };
    }

    /// The result of [`Action::Fetch`] `id`.
    pub fn http_result(&mut self, now: Instant, id: u64, result: &Result<Response, FetchError>) {
        let (discovery, target, hops) = match &self.phase {
            Phase::Http {
                id: want,
                discovery,
                target,
                hops,
                ..
            } if *want == id => (discovery.clone(), target.clone(), *hops),
            _ => {
                self.counters.stale_results += 1;
                return;
            }
        };
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                self.counters.http_failed += 1;
                return self.fail(now, HTTP_ERROR, format!("{target}: {e}"));
            }
        };
        match response.status {
            200 => {}
            307 | 308 => return self.redirect(now, discovery, &target, hops, response),
            status => {
                self.counters.http_status += 1;
                return self.fail(now, HTTP_ERROR, format!("{target}: HTTP {status}"));
            }
        }
        match reply::parse(&response.body) {
            Ok(p) => self.accept(now, p, &response.body, &target),
            Err(e) => {
                self.counters.refused(&e);
                self.fail(
                    now,
                    HTTP_ERROR,
                    format!("{target}: reply refused ({}): {e}", e.name()),
                )
            }
        }
    }

    fn redirect(
        &mut self,
        now: Instant,
        discovery: Discovery,
        from: &Target,
        hops: u8,
        response: &Response,
    ) {
        let next = match response.location().map(|l| from.join(l)) {
            Some(Ok(t)) => t,
            _ => {
                self.counters.redirect_refused += 1;
                return self.fail(
                    now,
                    HTTP_ERROR,
                    format!("{from}: redirect without a valid Location"),
                );
            }
        };
        if hops >= self.settings.max_redirects {
            self.counters.redirect_refused += 1;
            return self.fail(
                now,
                HTTP_ERROR,
                format!("{from}: more than {} redirects", hops),
            );
        }
        // A verified https server does not get to send the request (and
        // the credentials in it) somewhere unverified.
        if discovery.verify && !next.is_https() {
            self.counters.redirect_refused += 1;
            return self.fail(
                now,
                HTTP_ERROR,
                format!("{from}: redirect from https to {next}"),
            );
        }
        self.counters.redirects += 1;
        // A Location with its own query is the server's whole request;
        // one without gets our parameters.
        let target = if next.query().is_some() {
            next
        } else {
            query::build(
                &self.settings.request,
                &next,
                discovery.verify,
                self.token.as_deref(),
            )
        };
        let discovery = Discovery {
            verify: discovery.verify && target.is_https(),
            url: discovery.url,
        };
        self.start_fetch(now, discovery, target, hops + 1);
    }

    fn accept(&mut self, now: Instant, p: Provisioning, body: &[u8], target: &Target) {
        self.counters.accepted += 1;
        self.failures = 0;
        self.last_error = None;
        self.last_success = Some(now);
        if p.token.is_some() {
            self.token = p.token.clone();
        }
        let wait = match p.ttl {
            Some(ttl) => ttl.max(MIN_TTL),
            None => self.jitter.between(REFRESH.0, REFRESH.1),
        };
        let decision = p.decide(&self.settings.request.capabilities);
        log::info!(
            "hb46pp: {} offers {:?}, using {:?}; next in {}s",
            p.enabler_name.as_deref().unwrap_or("the server"),
            p.order,
            decision.method(),
            wait.as_secs()
        );
        let changed = self.decision() != Some(&decision);
        self.answer = Some(Answer {
            decision: decision.clone(),
            provisioning: p,
            source: Source::Server,
            at: now,
            server: target.origin_and_path(),
            body: body.to_vec(),
            address: self.address,
        });
        if changed {
            self.events.push(Event::Decided(decision));
        }
        self.phase = Phase::Waiting {
            at: later(now, wait),
        };
    }

    fn set_decision(&mut self, decision: Option<Decision>) {
        if decision.is_none() && self.answer.is_some() {
            self.answer = None;
            self.events.push(Event::Decided(Decision::Nothing));
        }
    }

    fn no_record(&mut self, now: Instant, reason: &str) {
        self.counters.no_record += 1;
        self.failures = 0;
        self.last_error = Some(reason.to_string());
        // HB46PP 3.6 c.2: the method is disabled.
        self.token = None;
        self.set_decision(None);
        let wait = self.jitter.between(NO_RECORD.0, NO_RECORD.1);
        log::info!("hb46pp: {reason}; asking again in {}s", wait.as_secs());
        self.phase = Phase::Waiting {
            at: later(now, wait),
        };
    }

    fn fail(&mut self, now: Instant, window: (Duration, Duration), reason: String) {
        self.failures = self.failures.saturating_add(1);
        let factor = 1u32 << (self.failures - 1).min(MAX_DOUBLINGS);
        let wait = self.jitter.between(window.0 * factor, window.1 * factor);
        log::warn!("hb46pp: {reason}; retrying in {}s", wait.as_secs());
        self.events.push(Event::Failed(reason.clone()));
        self.last_error = Some(reason);
        self.phase = Phase::Waiting {
            at: later(now, wait),
        };
    }
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}
