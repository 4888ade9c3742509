//! Notices an AFTR that stopped answering: packets keep going into the
//! tunnel and nothing comes out of it. DS-Lite has no keepalive (RFC 6333),
//! so the counters are the only sign; the log then says what happened,
//! and says it again when the AFTR is back.

use std::time::{Duration, Instant};

/// How long the tunnel may carry traffic out with none back before it is
/// reported.
pub const SILENCE: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct TunnelWatch {
    last: Option<(u64, u64)>,
    /// Since when packets went out with none coming back.
    silent_since: Option<Instant>,
    /// Packets sent since then.
    sent_in_silence: u64,
    reported: bool,
}

/// What to log.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Silent { for_s: u64, sent: u64 },
    Back { after_s: u64 },
}

impl TunnelWatch {
    /// Feed the tunnel's totals (encapsulated, decapsulated packets), about
    /// once a second.
    pub fn check(&mut self, now: Instant, encap: u64, decap: u64) -> Option<Event> {
        let (e0, d0) = self.last.replace((encap, decap))?;
        if decap != d0 || encap < e0 || decap < d0 {
            // Something came back (or the counters restarted).
            let since = self.silent_since.take();
            self.sent_in_silence = 0;
            if std::mem::take(&mut self.reported) {
                let after_s = since.map_or(0, |t| now.saturating_duration_since(t).as_secs());
                return Some(Event::Back { after_s });
            }
            return None;
        }
        if encap == e0 {
            // Idle: nothing to judge by.
            return None;
        }
        let since = *self.silent_since.get_or_insert(now);
        self.sent_in_silence += encap - e0;
        let silent = now.saturating_duration_since(since);
        if !self.reported && silent >= SILENCE {
            self.reported = true;
            return Some(Event::Silent {
                for_s: silent.as_secs(),
                sent: self.sent_in_silence,
            });
        }
        None
    }
}

impl TunnelWatch {
    /// While the silence is reported: for how long (s) and how many packets
    /// went out meanwhile (`show tunnel`'s alarm).
    pub fn silence(&self, now: Instant) -> Option<(u64, u64)> {
        if !self.reported {
            return None;
        }
        let since = self.silent_since?;
        Some((
            now.saturating_duration_since(since).as_secs(),
            self.sent_in_silence,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn silence_is_reported_once_and_the_return_too() {
        let t0 = Instant::now();
        let mut w = TunnelWatch::default();
        assert_eq!(w.check(t0, 100, 90), None);
        // Out only, for 10 s.
        let mut ev = Vec::new();
        for s in 1..=15 {
            if let Some(e) = w.check(at(t0, s), 100 + s * 10, 90) {
                ev.push((s, e));
            }
        }
        assert_eq!(
            ev,
            [(
                11,
                Event::Silent {
                    for_s: 10,
                    sent: 110
                }
            )]
        );
        assert_eq!(w.silence(at(t0, 15)), Some((14, 150)));
        assert_eq!(
            w.check(at(t0, 16), 300, 95),
            Some(Event::Back { after_s: 15 })
        );
        assert_eq!(w.silence(at(t0, 16)), None);
        assert_eq!(w.check(at(t0, 17), 310, 100), None);
    }

    #[test]
    fn an_idle_tunnel_is_not_silent() {
        let t0 = Instant::now();
        let mut w = TunnelWatch::default();
        for s in 0..60 {
            assert_eq!(w.check(at(t0, s), 100, 90), None);
        }
        // One packet now and then with answers: fine.
        for s in 60..120 {
            assert_eq!(w.check(at(t0, s), 100 + s, 30 + s), None);
        }
    }
}
