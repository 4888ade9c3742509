//! Which IPv4 method a line has when the config names none (issue 20,
//! "IPv4 with nothing to configure"), sans-IO: the [`Selector`] is given
//! what the WAN knows ([`Inputs`]) and says what to run, where that came
//! from and why ([`Outcome`]), or what it still waits for, and which names
//! it wants resolved ([`Selection::resolve`]).
//!
//! The order:
//! 1. HB46PP: the provisioning server's answer (DS-Lite, MAP-E with a rule
//!    covering the end-user prefix, IPIP).
//! 2. The AFTR name from DHCPv6 (option 64), then the well-known AFTR names
//!    ([`WELL_KNOWN_AFTRS`]), resolved with the WAN's DNS: DS-Lite.
//! 3. MAP-E by a rule table (the user's `provisioning.map_rules`, then the
//!    built-in JP table) when it covers the end-user prefix.
//! 4. Nothing: no IPv4.
//!
//! A step still in progress (HB46PP's first round, a name not resolved
//! yet) holds the decision for [`Selector::grace`] after the WAN has an
//! address, so a slow answer does not make the router start one method and
//! switch a second later; after that the lower steps decide and the higher
//! one takes over when it answers.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use crate::hb46pp::{Aftr, Decision, Ipip};
use crate::map::jp_rules::{self, JpRule};
use crate::map::{IidFormat, Prefix6, Rule};

/// The AFTR names of the JP VNEs, asked in this order (transix, Xpass,
/// v6 connect; jp-ipoe-methods.md section 5).
pub const WELL_KNOWN_AFTRS: [&str; 3] = ["gw.transix.jp", "dgw.xpass.jp", "dslite.v6connect.net"];

/// How long a step in progress may hold the decision after the WAN has an
/// address (an HB46PP round is a TXT lookup and one fetch).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(20);

/// HB46PP as the selector sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hb46ppView<'a> {
    /// Disabled (`provisioning.enabled: false`).
    Off,
    /// No answer yet and no failure: the first round runs.
    Pending,
    /// The answer in use (from the server or the cache).
    Answered(&'a Decision),
    /// No answer: no record, or the round failed (the reason).
    Unavailable(&'a str),
}

/// What a resolution of a name gave so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameState {
    Pending,
    Resolved(Ipv6Addr),
    Failed(String),
}

/// A rule of a table, with its BR and where it is from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRule {
    pub rule: Rule,
    pub br: Ipv6Addr,
    pub iid: IidFormat,
    /// `provisioning.map_rules[i]`, or the built-in table's provider.
    pub label: String,
}

/// The rule of `user` (first) or the built-in JP table whose IPv6 prefix
/// holds `end_user`, the longest one in its table.
pub fn table_rule(user: &[TableRule], end_user: Prefix6) -> Option<TableRule> {
    let covers = |r: &Rule| {
        r.ipv6_prefix().contains(end_user.addr())
            && r.ipv6_prefix().prefix_len() <= end_user.prefix_len()
    };
    if let Some(r) = user
        .iter()
        .filter(|r| covers(&r.rule))
        .max_by_key(|r| r.rule.ipv6_prefix().prefix_len())
    {
        return Some(r.clone());
    }
    let row: &JpRule = jp_rules::rules()
        .iter()
        .filter(|r| covers(&r.rule))
        .max_by_key(|r| r.rule.ipv6_prefix().prefix_len())?;
    Some(TableRule {
        rule: row.rule,
        br: row.br,
        iid: IidFormat::Legacy,
        label: format!("built-in {} ({})", row.provider, jp_rules::TABLE_DATE),
    })
}

/// Everything the selector reads.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    /// The WAN has a global address (the grace counts from then).
    pub has_address: bool,
    pub hb46pp: Hb46ppView<'a>,
    /// Option 64 of the lease or the stateless Reply.
    pub dhcpv6_aftr: Option<&'a str>,
    /// What the resolutions asked for gave so far; a name not in it is
    /// [`NameState::Pending`].
    pub names: &'a [(String, NameState)],
    /// The end-user prefix (the delegated prefix, or the WAN /64).
    pub end_user: Option<Prefix6>,
    /// The user's extra MAP rules.
    pub user_rules: &'a [TableRule],
}

impl Inputs<'_> {
    fn name(&self, n: &str) -> NameState {
        self.names
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map_or(NameState::Pending, |(_, s)| s.clone())
    }
}

/// The method chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    DsLite {
        aftr: Ipv6Addr,
        /// The name it was resolved from.
        name: Option<String>,
    },
    MapE {
        br: Ipv6Addr,
        rule: Rule,
        iid: IidFormat,
    },
    /// HB46PP's fixed-IPv4 tunnel.
    Ipip(Ipip),
    /// No IPv4.
    None,
}

impl Method {
    pub fn kind(&self) -> &'static str {
        match self {
            Method::DsLite { .. } => "dslite",
            Method::MapE { .. } => "map-e",
            Method::Ipip(_) => "ipip",
            Method::None => "none",
        }
    }
}

/// Where the method came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Hb46pp,
    Dhcpv6,
    WellKnownName(&'static str),
    RuleTable(String),
    /// Nothing found.
    Nothing,
}

impl Source {
    pub fn as_str(&self) -> String {
        match self {
            Source::Hb46pp => "hb46pp".into(),
            Source::Dhcpv6 => "dhcpv6 (AFTR-Name)".into(),
            Source::WellKnownName(n) => format!("well-known name {n}"),
            Source::RuleTable(l) => format!("rule table ({l})"),
            Source::Nothing => "none".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub method: Method,
    pub source: Source,
    /// Why this one, and why not the steps before it.
    pub why: String,
}

/// What [`Selector::select`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// `None`: still waiting (the reason in `waiting`); keep what runs.
    pub outcome: Option<Outcome>,
    pub waiting: Option<String>,
    /// Names to resolve (and keep resolving) with the WAN's DNS.
    pub resolve: Vec<String>,
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct Selector {
    pub grace: Duration,
    since: Option<Instant>,
}

impl Default for Selector {
    fn default() -> Self {
        Selector::new(DEFAULT_GRACE)
    }
}

type StepFn<'a> = &'a dyn Fn(&mut Vec<String>) -> Step;

enum Step {
    Chosen(Method, Source, String),
    /// In progress: hold (within the grace) or skip with this note.
    Pending(String),
    /// Not available: the note says why.
    Skip(String),
}

impl Selector {
    pub fn new(grace: Duration) -> Self {
        Selector { grace, since: None }
    }

    /// Decides from `inputs` at `now`.
    pub fn select(&mut self, now: Instant, inputs: &Inputs<'_>) -> Selection {
        if !inputs.has_address {
            self.since = None;
        } else if self.since.is_none() {
            self.since = Some(now);
        }
        let patient = self.since.is_none_or(|s| now < s + self.grace);
        let mut resolve = Vec::new();
        let mut notes: Vec<String> = Vec::new();

        let steps: [StepFn<'_>; 4] = [
            &|r| hb46pp_step(inputs, r),
            &|r| dhcpv6_step(inputs, r),
            &|r| well_known_step(inputs, patient, r),
            &|_| rule_table_step(inputs),
        ];
        for step in steps {
            match step(&mut resolve) {
                Step::Chosen(method, source, why) => {
                    notes.push(why);
                    return Selection {
                        outcome: Some(Outcome {
                            method,
                            source,
                            why: notes.join("; "),
                        }),
                        waiting: None,
                        resolve,
                    };
                }
                Step::Pending(note) if patient => {
                    return Selection {
                        outcome: None,
                        waiting: Some(note),
                        resolve,
                    };
                }
                Step::Pending(note) | Step::Skip(note) => notes.push(note),
            }
        }
        if !inputs.has_address && inputs.end_user.is_none() && patient {
            return Selection {
                outcome: None,
                waiting: Some("no global IPv6 address on the WAN yet".into()),
                resolve,
            };
        }
        notes.push("no IPv4: IPv6 only".into());
        Selection {
            outcome: Some(Outcome {
                method: Method::None,
                source: Source::Nothing,
                why: notes.join("; "),
            }),
            waiting: None,
            resolve,
        }
    }
}

fn name_step(inputs: &Inputs<'_>, name: &str, what: &str, resolve: &mut Vec<String>) -> Step {
    resolve.push(name.to_string());
    match inputs.name(name) {
        NameState::Resolved(a) => Step::Chosen(
            Method::DsLite {
                aftr: a,
                name: Some(name.to_string()),
            },
            Source::Dhcpv6, // the caller sets the real source
            format!("{what} {name} resolves to {a}: DS-Lite"),
        ),
        NameState::Pending => Step::Pending(format!("{what} {name}: resolving")),
        NameState::Failed(e) => Step::Skip(format!("{what} {name}: {e}")),
    }
}

fn hb46pp_step(inputs: &Inputs<'_>, resolve: &mut Vec<String>) -> Step {
    match inputs.hb46pp {
        Hb46ppView::Off => Step::Skip("HB46PP off (provisioning.enabled: false)".into()),
        Hb46ppView::Pending => Step::Pending("HB46PP: asking the provisioning server".into()),
        Hb46ppView::Unavailable(why) => Step::Skip(format!("HB46PP: {why}")),
        Hb46ppView::Answered(Decision::Nothing) => {
            Step::Skip("HB46PP: the server offers no method ipoed runs".into())
        }
        Hb46ppView::Answered(Decision::DsLite(d)) => match &d.aftr {
            Aftr::Addr(a) => Step::Chosen(
                Method::DsLite {
                    aftr: *a,
                    name: None,
                },
                Source::Hb46pp,
                format!("HB46PP offers DS-Lite, AFTR {a}"),
            ),
            Aftr::Name(n) => match name_step(inputs, n, "HB46PP's AFTR", resolve) {
                Step::Chosen(m, _, why) => Step::Chosen(m, Source::Hb46pp, why),
                other => other,
            },
        },
        Hb46ppView::Answered(Decision::MapE(m)) => {
            let Some(end_user) = inputs.end_user else {
                return Step::Pending(
                    "HB46PP offers MAP-E: waiting for the end-user prefix".into(),
                );
            };
            match m.rule_for(end_user) {
                Some(rule) => Step::Chosen(
                    Method::MapE {
                        br: m.br,
                        rule: *rule,
                        iid: m.iid,
                    },
                    Source::Hb46pp,
                    format!(
                        "HB46PP offers MAP-E, BR {}, rule {} covers {end_user}",
                        m.br,
                        rule.ipv6_prefix()
                    ),
                ),
                None => Step::Skip(format!(
                    "HB46PP offers MAP-E but none of its {} rules covers {end_user}",
                    m.rules.len()
                )),
            }
        }
        Hb46ppView::Answered(Decision::Ipip(t)) => Step::Chosen(
            Method::Ipip(t.clone()),
            Source::Hb46pp,
            format!(
                "HB46PP offers fixed IPv4 {} over IPIP from {} to {}",
                t.ipv4, t.local, t.remote
            ),
        ),
    }
}

fn dhcpv6_step(inputs: &Inputs<'_>, resolve: &mut Vec<String>) -> Step {
    match inputs.dhcpv6_aftr {
        None => Step::Skip("no AFTR-Name from DHCPv6".into()),
        Some(n) => match name_step(inputs, n, "DHCPv6 AFTR-Name", resolve) {
            Step::Chosen(m, _, why) => Step::Chosen(m, Source::Dhcpv6, why),
            other => other,
        },
    }
}

fn well_known_step(inputs: &Inputs<'_>, patient: bool, resolve: &mut Vec<String>) -> Step {
    let mut notes = Vec::new();
    let mut pending = false;
    let mut chosen = None;
    for name in WELL_KNOWN_AFTRS {
        match name_step(inputs, name, "well-known AFTR", resolve) {
            // An earlier name still resolving comes first while patient.
            Step::Chosen(m, _, why) if chosen.is_none() && !(pending && patient) => {
                chosen = Some(Step::Chosen(m, Source::WellKnownName(name), why))
            }
            Step::Chosen(..) => {}
            Step::Pending(_) => pending = true,
            Step::Skip(note) => notes.push(note),
        }
    }
    if let Some(c) = chosen {
        return c;
    }
    if pending {
        Step::Pending("resolving the well-known AFTR names".into())
    } else {
        Step::Skip(format!(
            "no well-known AFTR name resolves ({})",
            notes.join(", ")
        ))
    }
}

fn rule_table_step(inputs: &Inputs<'_>) -> Step {
    let Some(end_user) = inputs.end_user else {
        return Step::Pending("no end-user prefix for the MAP rule tables yet".into());
    };
    match table_rule(inputs.user_rules, end_user) {
        Some(t) => Step::Chosen(
            Method::MapE {
                br: t.br,
                rule: t.rule,
                iid: t.iid,
            },
            Source::RuleTable(t.label.clone()),
            format!(
                "MAP rule {} ({}) covers {end_user}: MAP-E to BR {}",
                t.rule.ipv6_prefix(),
                t.label,
                t.br
            ),
        ),
        None => Step::Skip(format!("no MAP rule covers {end_user}")),
    }
}

#[cfg(test)]
#[path = "zeroconf_tests.rs"]
mod tests;
