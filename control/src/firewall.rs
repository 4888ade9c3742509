//! The control thread's half of the firewall: it builds the policy the
//! nodes enforce from the config, owns the session table the workers
//! share, expires sessions once a second, and turns the workers' drop
//! events into log lines and the ring `ipoectl show firewall` prints.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ipoe_config::{Config, PinholeHost as CfgHost};
use ipoe_dataplane::firewall::{
    DropEvent, DropLog, Pinhole, PinholeHost, Policy, WorkerFirewall, DROP_LOG_CAPACITY,
};
use ipoe_dataplane::graph::NodeId;
use ipoe_dataplane::session::{SessionInfo, SessionTable, Stats, Timeouts, BYTES_PER_SESSION};
use serde_json::{json, Value};

/// Drops kept for `show firewall`.
const RECENT_DROPS: usize = 64;
/// Sessions freed per expiry pass at most (the rest wait a second).
const EXPIRE_BUDGET: usize = 65536;
/// Sessions `show sessions` lists at most (the totals count them all).
pub const SHOW_LIMIT: usize = 1000;

pub fn policy(config: &Config) -> Policy {
    let fw = &config.firewall;
    Policy {
        enabled: fw.enabled,
        log_drops: fw.log_drops,
        pinholes: fw
            .pinholes
            .iter()
            .map(|p| Pinhole {
                host: match p.host {
                    CfgHost::Iid(iid) => PinholeHost::Iid(iid),
                    CfgHost::Mac(mac) => PinholeHost::Mac(mac.0),
                },
                proto: p.proto.number(),
                ports: p.port.map(|r| (r.first, r.last)).unwrap_or((0, 0)),
            })
            .collect(),
        mss_clamp_v4: config.mss_clamp_v4(),
        mss_clamp_v6: fw.ipv6_mss_clamp,
        echo_limit: fw.echo_limit,
    }
}

pub fn timeouts(config: &Config) -> Timeouts {
    let t = &config.firewall.timeouts;
    Timeouts {
        tcp_established: t.tcp_established,
        tcp_transitory: t.tcp_transitory,
        tcp_closed: t.tcp_closed,
        udp: t.udp,
        udp_stream: t.udp_stream,
        icmp: t.icmp,
    }
}

pub struct Firewall {
    pub sessions: Arc<SessionTable>,
    log: Arc<DropLog>,
    epoch: Instant,
    recent: VecDeque<(SystemTime, DropEvent)>,
    next_expire: Instant,
    pub log_lines: u64,
    /// LAN neighbors the workers forwarded to (read once a second).
    pub neigh_use: Arc<ipoe_dataplane::neigh_use::NeighborUse>,
}

impl Firewall {
    pub fn new(config: &Config, now: Instant) -> Self {
        Firewall {
            sessions: Arc::new(SessionTable::for_workers(
                config.firewall.max_sessions as usize,
                timeouts(config),
                config.dataplane.workers,
            )),
            log: Arc::new(DropLog::new(DROP_LOG_CAPACITY)),
            epoch: now,
            recent: VecDeque::with_capacity(RECENT_DROPS),
            next_expire: now,
            log_lines: 0,
            neigh_use: Arc::default(),
        }
    }

    /// What one worker's graph gets: the shared table, log and clock.
    pub fn worker_state(&self) -> WorkerFirewall {
        let mut w = WorkerFirewall::new(self.sessions.clone(), Some(self.log.clone()), self.epoch);
        w.neigh_use = self.neigh_use.clone();
        w
    }

    /// The session clock (seconds since the epoch the workers share).
    pub fn now_s(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch).as_secs() as u32
    }

    /// Drain drop events into the log and the ring; expire sessions once a
    /// second. Returns when it next wants to run.
    pub fn poll(&mut self, now: Instant) -> Instant {
        while let Some(ev) = self.log.pop() {
            log::info!("firewall: dropped {}", describe(&ev));
            self.log_lines += 1;
            if self.recent.len() == RECENT_DROPS {
                self.recent.pop_front();
            }
            self.recent.push_back((SystemTime::now(), ev));
        }
        if now >= self.next_expire {
            self.sessions.expire(self.now_s(now), EXPIRE_BUDGET);
            self.next_expire = now + Duration::from_secs(1);
        }
        self.next_expire
    }

    pub fn stats(&self) -> Stats {
        self.sessions.stats()
    }

    /// `show firewall`: policy, table figures, and the recent drops.
    pub fn report(&self, policy: &Policy, timeouts: &Timeouts, rules: Vec<Value>) -> Value {
        let st = self.sessions.stats();
        let recent: Vec<Value> = self
            .recent
            .iter()
            .rev()
            .map(|(at, ev)| {
                let unix = at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                json!({
                    "at_unix": unix,
                    "node": ev.node.name(),
                    "reason": reason_name(ev),
                    "src": addr(&ev.src).to_string(),
                    "dst": addr(&ev.dst).to_string(),
                    "proto": ev.proto,
                    "sport": ev.sport,
                    "dport": ev.dport,
                })
            })
            .collect();
        let pinholes: Vec<Value> = policy
            .pinholes
            .iter()
            .map(|p| {
                json!({
                    "host": match p.host {
                        PinholeHost::Iid(iid) => {
                            let mut a = [0u8; 16];
                            a[8..].copy_from_slice(&iid);
                            Ipv6Addr::from(a).to_string()
                        }
                        PinholeHost::Mac(m) => crate::iface::format_mac(&m),
                    },
                    "proto": p.proto,
                    "ports": format!("{}-{}", p.ports.0, p.ports.1),
                })
            })
            .collect();
        json!({
            "enabled": policy.enabled,
            "log_drops": policy.log_drops,
            "echo_limit_per_source": policy.echo_limit,
            "mss_clamp_tunnel": policy.mss_clamp_v4,
            "mss_clamp_ipv6": policy.mss_clamp_v6,
            "sessions": stats_json(&st),
            "bytes_per_session": BYTES_PER_SESSION,
            "timeouts": {
                "tcp_established": timeouts.tcp_established,
                "tcp_transitory": timeouts.tcp_transitory,
                "tcp_closed": timeouts.tcp_closed,
                "udp": timeouts.udp,
                "udp_stream": timeouts.udp_stream,
                "icmp": timeouts.icmp,
            },
            "pinholes": pinholes,
            "rules": rules,
            "drops_logged": self.log_lines,
            "recent_drops": recent,
        })
    }

    /// `show sessions`: up to SHOW_LIMIT sessions matching the filters.
    /// `nat_addr` names the external address of a translation's bindings
    /// id (`None` for a set replaced by a prefix change).
    pub fn sessions_report(
        &self,
        now: Instant,
        proto: Option<u8>,
        host: Option<IpAddr>,
        nat_addr: impl Fn(u8) -> Option<std::net::Ipv4Addr>,
    ) -> Value {
        let host16 = host.map(|h| match h {
            IpAddr::V6(a) => a.octets(),
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        });
        let filter = |s: &SessionInfo| {
            proto.is_none_or(|p| s.key.proto == p)
                && host16.is_none_or(|h| s.key.int_addr == h || s.key.ext_addr == h)
        };
        let (list, matched) = self.sessions.snapshot(self.now_s(now), SHOW_LIMIT, &filter);
        let rows: Vec<Value> = list
            .iter()
            .map(|s| {
                json!({
                    "proto": s.key.proto,
                    "inside": addr(&s.key.int_addr).to_string(),
                    "inside_port": s.key.int_port,
                    "outside": addr(&s.key.ext_addr).to_string(),
                    "outside_port": s.key.ext_port,
                    "state": s.state.name(),
                    "idle_s": s.idle_s,
                    "expires_in_s": s.expires_in_s,
                    "packets_out": s.packets_out,
                    "packets_in": s.packets_in,
                    "bytes_out": s.bytes_out,
                    "bytes_in": s.bytes_in,
                    // MAP-E NAPT44: the shared address and port it leaves with.
                    "translated": s.nat.map(|n| json!({
                        "address": nat_addr(n.addr).map(|a| a.to_string()),
                        "port": n.port,
                    })),
                })
            })
            .collect();
        json!({
            "matched": matched,
            "shown": rows.len(),
            "totals": stats_json(&self.sessions.stats()),
            "sessions": rows,
        })
    }

    /// The `n` LAN hosts with the most live sessions (the inside end of
    /// each), most first: the status page's "who uses the table". One
    /// walk of the table, one shard locked at a time, as `show sessions`.
    pub fn top_hosts(&self, now: Instant, n: usize) -> Value {
        let counts = std::cell::RefCell::new(std::collections::HashMap::<[u8; 16], u64>::new());
        let count = |s: &SessionInfo| {
            *counts.borrow_mut().entry(s.key.int_addr).or_default() += 1;
            false
        };
        self.sessions.snapshot(self.now_s(now), 0, &count);
        let mut hosts: Vec<([u8; 16], u64)> = counts.into_inner().into_iter().collect();
        hosts.sort_by_key(|(a, c)| (std::cmp::Reverse(*c), *a));
        let total = hosts.len();
        hosts.truncate(n);
        let rows: Vec<Value> = hosts
            .iter()
            .map(|(a, c)| json!({"host": addr(a).to_string(), "sessions": c}))
            .collect();
        json!({"hosts": rows, "host_count": total})
    }
}

fn stats_json(st: &Stats) -> Value {
    json!({
        "active": st.active,
        "capacity": st.capacity,
        "created": st.created,
        "expired": st.expired,
        "evicted": st.evicted,
        "refused": st.refused,
        "invalid": st.invalid,
    })
}

/// IPv4-mapped addresses print as IPv4.
fn addr(a: &[u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(*a);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

fn reason_name(ev: &DropEvent) -> &'static str {
    ev.node
        .errors()
        .get(usize::from(ev.reason))
        .map(|(n, _)| *n)
        .unwrap_or("?")
}

fn describe(ev: &DropEvent) -> String {
    let (s, d) = (addr(&ev.src), addr(&ev.dst));
    let what = match ev.proto {
        6 | 17 => format!(
            "{} [{s}]:{} -> [{d}]:{}",
            if ev.proto == 6 { "tcp" } else { "udp" },
            ev.sport,
            ev.dport
        ),
        1 | 58 => format!("icmp type {} {s} -> {d}", ev.sport),
        p => format!("proto {p} {s} -> {d}"),
    };
    format!("{}/{}: {what}", ev.node.name(), reason_name(ev))
}

/// The per-rule counters: the drop reasons of the policy nodes.
pub fn rule_nodes() -> [NodeId; 3] {
    [NodeId::Ip6Local, NodeId::Ip6Firewall, NodeId::Ip4Firewall]
}
