//! Which IPv6 prefix the LAN uses (`lan.ipv6.mode: auto | pd | proxy |
//! static`): a small pure state machine fed with what the WAN learned.
//!
//! `auto` chooses:
//! - **PD** whenever a delegated prefix exists, including one that arrives
//!   after the LAN went to proxy mode (a late DHCPv6 server);
//! - **proxy** (the WAN RA's /64 re-advertised on the LAN, `ndproxy`) when
//!   there is no delegation and the WAN RA carries a /64, once the PD
//!   client has had a fair chance: [`M0_GRACE`] after the RA said M=0,
//!   [`M1_WAIT`] after it said M=1, at once when no PD client runs;
//! - **waiting** otherwise (no LAN prefix yet).
//!
//! `pd`, `proxy` and `static` force the one source. Every change of the
//! outcome comes with a reason for the log.

use std::fmt;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

/// How long `auto` waits for a delegation after an RA with M=0 before it
/// proxies. M=0 does not mean "no PD": the FLET'S home gateway of a line
/// *with* PD also sends M=0 O=1 (the capture in the original notes). A
/// server that delegates answers the first exchange: the first Solicit
/// leaves within SOL_MAX_DELAY (1 s), Advertises are collected for the
/// first RT (IRT 1 s + RAND, at most 1.1 s), and Request/Reply takes well
/// under REQ_TIMEOUT (1 s), 1.1 s more if one Request is lost: at most
/// about 4.2 s. Going to proxy first and to PD a second later would
/// renumber every LAN host twice.
pub const M0_GRACE: Duration = Duration::from_secs(5);

/// How long `auto` waits after an RA with M=1 (the link says DHCPv6 is
/// how it is configured). RFC 8415 Solicit retransmissions double from
/// IRT 1 s (1, 2, 4, 8, 16, 32 s): the seventh Solicit leaves about 63 s
/// after the first (+ SOL_MAX_DELAY). A server that is up answers the
/// first; one behind a link losing half the packets still answers one of
/// seven with 99 % probability. Waiting for SOL_MAX_RT (3600 s) would
/// leave the LAN without IPv6 for an hour; a server that comes up later
/// still wins, since a delegation always takes over from the proxy.
pub const M1_WAIT: Duration = Duration::from_secs(65);

/// `lan.ipv6.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Auto,
    Pd,
    Proxy,
    Static,
}

/// Where the LAN's IPv6 prefix comes from now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LanV6 {
    /// No usable source yet: the LAN advertises no prefix.
    Waiting,
    /// The delegated prefix (DHCPv6-PD).
    Pd,
    /// The WAN RA's /64 (network address), proxied.
    Proxy(Ipv6Addr),
    /// The configured `lan.ipv6.prefix`.
    Static,
}

impl fmt::Display for LanV6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LanV6::Waiting => write!(f, "waiting"),
            LanV6::Pd => write!(f, "pd"),
            LanV6::Proxy(p) => write!(f, "proxy {p}/64"),
            LanV6::Static => write!(f, "static"),
        }
    }
}

/// What the WAN knows now; the caller passes a fresh one on every change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WanView {
    /// A delegated prefix is held.
    pub delegation: bool,
    /// A /64 of the WAN RA usable for SLAAC (A=1, valid lifetime left).
    pub ra_prefix: Option<Ipv6Addr>,
    /// The WAN RA's M flag.
    pub managed: bool,
    /// A DHCPv6-PD client runs (something can still delegate).
    pub pd_client: bool,
}

/// A change of [`LanV6`], with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: LanV6,
    pub to: LanV6,
    pub reason: String,
}

#[derive(Debug)]
pub struct ModeSelector {
    mode: Mode,
    view: WanView,
    current: LanV6,
    /// `auto` with an RA /64 and no delegation: since when, and under
    /// which M flag, it has been waiting for one.
    waiting_since: Option<(Instant, bool)>,
}

impl ModeSelector {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            view: WanView::default(),
            current: LanV6::Waiting,
            waiting_since: None,
        }
    }

    pub fn current(&self) -> LanV6 {
        self.current
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A reload changed `lan.ipv6.mode`.
    pub fn set_mode(&mut self, now: Instant, mode: Mode) -> Option<Transition> {
        self.mode = mode;
        self.evaluate(now)
    }

    /// The WAN changed (RA, delegation); returns the resulting transition.
    pub fn update(&mut self, now: Instant, view: WanView) -> Option<Transition> {
        let prefix = view.ra_prefix.map(network64);
        self.view = WanView {
            ra_prefix: prefix,
            ..view
        };
        self.evaluate(now)
    }

    /// Runs the wait timer; call at [`Self::next_deadline`].
    pub fn poll(&mut self, now: Instant) -> Option<Transition> {
        self.evaluate(now)
    }

    /// When the wait for a delegation ends, if one runs.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.current != LanV6::Waiting {
            return None;
        }
        self.waiting_since
            .map(|(since, managed)| since + wait_for(managed))
    }

    fn evaluate(&mut self, now: Instant) -> Option<Transition> {
        let (to, reason) = self.choose(now);
        if to == self.current {
            return None;
        }
        let t = Transition {
            from: self.current,
            to,
            reason,
        };
        log::info!("lan ipv6: {} -> {}: {}", t.from, t.to, t.reason);
        self.current = to;
        Some(t)
    }

    fn choose(&mut self, now: Instant) -> (LanV6, String) {
        let v = self.view;
        match self.mode {
            Mode::Static => (LanV6::Static, "lan.ipv6.mode is static".into()),
            Mode::Pd if v.delegation => (LanV6::Pd, "a prefix is delegated".into()),
            Mode::Pd => (
                LanV6::Waiting,
                "lan.ipv6.mode is pd and no prefix is delegated".into(),
            ),
            Mode::Proxy => match v.ra_prefix {
                Some(p) => (
                    LanV6::Proxy(p),
                    format!("lan.ipv6.mode is proxy; WAN RA {p}/64"),
                ),
                None => (
                    LanV6::Waiting,
                    "lan.ipv6.mode is proxy and the WAN RA has no /64".into(),
                ),
            },
            Mode::Auto => self.choose_auto(now),
        }
    }

    fn choose_auto(&mut self, now: Instant) -> (LanV6, String) {
        let v = self.view;
        if v.delegation {
            self.waiting_since = None;
            let reason = match self.current {
                LanV6::Proxy(_) => "a prefix was delegated; it replaces the proxied /64",
                _ => "a prefix is delegated",
            };
            return (LanV6::Pd, reason.into());
        }
        let Some(p) = v.ra_prefix else {
            self.waiting_since = None;
            return (
                LanV6::Waiting,
                "no delegated prefix and no /64 in the WAN RA".into(),
            );
        };
        if let LanV6::Proxy(old) = self.current {
            // Already proxying: follow the /64, never wait again for a
            // delegation that has not come (it still wins if it does).
            let reason = if old == p {
                String::new()
            } else {
                format!("the WAN RA /64 changed from {old}/64 to {p}/64")
            };
            return (LanV6::Proxy(p), reason);
        }
        if !v.pd_client {
            return (
                LanV6::Proxy(p),
                format!("no DHCPv6-PD client runs; proxying the WAN RA {p}/64"),
            );
        }
        // The wait starts when there is a /64 and no delegation, and
        // starts over when M changes (M=1 asks for the longer wait).
        let (since, managed) = match self.waiting_since {
            Some((since, m)) if m == v.managed => (since, m),
            _ => {
                self.waiting_since = Some((now, v.managed));
                (now, v.managed)
            }
        };
        let wait = wait_for(managed);
        if now >= since + wait {
            let reason = format!(
                "the WAN RA says M={} and no prefix was delegated within {} s; proxying {p}/64",
                u8::from(managed),
                wait.as_secs()
            );
            return (LanV6::Proxy(p), reason);
        }
        (
            LanV6::Waiting,
            format!(
                "waiting up to {} s for a delegation (WAN RA M={})",
                wait.as_secs(),
                u8::from(managed)
            ),
        )
    }
}

fn wait_for(managed: bool) -> Duration {
    if managed {
        M1_WAIT
    } else {
        M0_GRACE
    }
}

fn network64(addr: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(addr) & !u128::from(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0);
    const Q: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 3, 4, 0, 0, 0, 0);
    const SEC: Duration = Duration::from_secs(1);

    fn ra(managed: bool) -> WanView {
        WanView {
            delegation: false,
            ra_prefix: Some(P),
            managed,
            pd_client: true,
        }
    }

    fn delegated() -> WanView {
        WanView {
            delegation: true,
            ..ra(false)
        }
    }

    #[test]
    fn m0_without_a_delegation_proxies_after_the_grace() {
        let t0 = Instant::now();
        let mut s = ModeSelector::new(Mode::Auto);
        assert_eq!(s.update(t0, ra(false)), None);
        assert_eq!(s.current(), LanV6::Waiting);
        assert_eq!(s.next_deadline(), Some(t0 + M0_GRACE));
        assert_eq!(s.poll(t0 + M0_GRACE - SEC / 10), None);
        let t = s.poll(t0 + M0_GRACE).expect("proxy");
        assert_eq!((t.from, t.to), (LanV6::Waiting, LanV6::Proxy(P)));
        assert!(
            t.reason.contains("M=0") && t.reason.contains("5 s"),
            "{}",
            t.reason
        );
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn m1_waits_for_the_pd_client_longer_then_proxies() {
        let t0 = Instant::now();
        let mut s = ModeSelector::new(Mode::Auto);
        s.update(t0, ra(true));
        assert_eq!(s.poll(t0 + M0_GRACE), None);
        assert_eq!(s.poll(t0 + M1_WAIT - SEC), None);
        let t = s.poll(t0 + M1_WAIT).expect("proxy");
        assert_eq!(t.to, LanV6::Proxy(P));
        assert!(
            t.reason.contains("M=1") && t.reason.contains("65 s"),
            "{}",
            t.reason
        );
        // Repeated RAs while waiting do not restart the clock; a change of
        // M does.
        let mut s = ModeSelector::new(Mode::Auto);
        s.update(t0, ra(false));
        s.update(t0 + SEC * 3, ra(false));
        assert_eq!(s.next_deadline(), Some(t0 + M0_GRACE));
        s.update(t0 + SEC * 4, ra(true));
        assert_eq!(s.next_deadline(), Some(t0 + SEC * 4 + M1_WAIT));
    }

    #[test]
    fn a_delegation_wins_before_and_after_the_proxy() {
        let t0 = Instant::now();
        // In time: straight to PD, never proxied.
        let mut s = ModeSelector::new(Mode::Auto);
        s.update(t0, ra(true));
        let t = s.update(t0 + SEC * 2, delegated()).expect("pd");
        assert_eq!((t.from, t.to), (LanV6::Waiting, LanV6::Pd));
        assert_eq!(s.poll(t0 + M1_WAIT * 2), None);
        // Late (the server came up after the wait): PD replaces the proxy.
        let mut s = ModeSelector::new(Mode::Auto);
        s.update(t0, ra(true));
        s.poll(t0 + M1_WAIT);
        assert_eq!(s.current(), LanV6::Proxy(P));
        let t = s.update(t0 + SEC * 300, delegated()).expect("pd");
        assert_eq!((t.from, t.to), (LanV6::Proxy(P), LanV6::Pd));
        assert!(t.reason.contains("replaces the proxied"), "{}", t.reason);
        // The delegation goes away: wait again, then proxy.
        let lost = t0 + SEC * 400;
        let t = s.update(lost, ra(false)).expect("waiting");
        assert_eq!((t.from, t.to), (LanV6::Pd, LanV6::Waiting));
        assert!(t.reason.contains("waiting up to 5 s"), "{}", t.reason);
        assert_eq!(s.poll(lost + M0_GRACE).map(|t| t.to), Some(LanV6::Proxy(P)));
    }

    #[test]
    fn the_proxy_follows_the_wan_prefix_and_its_loss() {
        let t0 = Instant::now();
        let mut s = ModeSelector::new(Mode::Auto);
        let no_pd = WanView {
            pd_client: false,
            ..ra(false)
        };
        // No PD client: nothing to wait for.
        let t = s.update(t0, no_pd).expect("proxy");
        assert_eq!(t.to, LanV6::Proxy(P));
        assert!(t.reason.contains("no DHCPv6-PD client"), "{}", t.reason);
        // An address of the /64 is the same /64.
        let same = WanView {
            ra_prefix: Some("2001:db8:1:2::99".parse().unwrap()),
            ..no_pd
        };
        assert_eq!(s.update(t0, same), None);
        let renumbered = WanView {
            ra_prefix: Some(Q),
            ..no_pd
        };
        let t = s.update(t0 + SEC, renumbered).expect("renumbered");
        assert_eq!((t.from, t.to), (LanV6::Proxy(P), LanV6::Proxy(Q)));
        assert!(t.reason.contains("changed from"), "{}", t.reason);
        let gone = WanView {
            ra_prefix: None,
            ..no_pd
        };
        assert_eq!(
            s.update(t0 + SEC * 2, gone).map(|t| t.to),
            Some(LanV6::Waiting)
        );
    }

    #[test]
    fn forced_modes_use_only_their_source() {
        let t0 = Instant::now();
        let mut s = ModeSelector::new(Mode::Pd);
        s.update(t0, ra(false));
        assert_eq!(s.poll(t0 + SEC * 3600), None);
        assert_eq!(s.current(), LanV6::Waiting);
        assert_eq!(s.update(t0, delegated()).map(|t| t.to), Some(LanV6::Pd));

        let mut s = ModeSelector::new(Mode::Proxy);
        assert_eq!(
            s.update(t0, delegated()).map(|t| t.to),
            Some(LanV6::Proxy(P))
        );

        let mut s = ModeSelector::new(Mode::Static);
        assert_eq!(s.update(t0, delegated()).map(|t| t.to), Some(LanV6::Static));
        // A reload to auto re-decides at once.
        let t = s.set_mode(t0, Mode::Auto).expect("pd");
        assert_eq!((t.from, t.to), (LanV6::Static, LanV6::Pd));
        assert_eq!(s.mode(), Mode::Auto);
    }
}
