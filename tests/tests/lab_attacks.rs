//! Real attack tools against ipoed: thc-ipv6, the SI6 ipv6toolkit and a
//! DHCPv4 starvation script, from a LAN host on the switch (lan2), from
//! the internet (inet, through hgw) and from hgw itself on the WAN link.
//! For every attack:
//! - ipoed stays up (its process runs, `ipoectl version` answers);
//! - its RSS ends within `RSS_BOUND_KIB` of where it started;
//! - the counters named for the attack move (and those that must not,
//!   don't);
//! - two downloads from lan1 started before the attack (IPv4 through
//!   DS-Lite, native IPv6) keep flowing through it and end with the right
//!   SHA-256, and new connections made in the middle of it work;
//! - nothing from the internet reaches lan1 that lan1 did not ask for (a
//!   capture on lan1 during every attack from outside);
//! - lan1's neighbor entries survive, and the neighbor table stays within
//!   its bound.
//!
//! The attacks are numbered as in the issue and run as 1, 2a, 3, 4, 5, 6,
//! 2b, 2c, 7: the solicitation floods leave the neighbor table full (of
//! entries that can no longer evict anyone), which would hide whether the
//! scan grew it. `ATTACK_SECONDS` (default 5) is how long each attack runs;
//! `make attacks` runs them for 60 s each. The file prints one block per
//! attack and a summary table at the end.

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

use ipoe_tests::Lab;

const V4_SERVER: &str = "198.51.100.10";
const V6_SERVER: &str = "2001:db8:ffff::10";
const LAN1_V6: &str = "2001:db8:0:111::10";
const LAN1_MAC: &str = "02:00:00:00:01:10";
const ROUTER_LAN_MAC: &str = "02:00:00:00:02:01";
const ROUTER_LAN: &str = "2001:db8:0:111::1";
const ROUTER_WAN: &str = "2001:db8:0:100::2";
/// The AFTR: the only source whose fragments the B4 reassembles.
const AFTR: &str = "2001:db8:aaaa::1";
const LAN_PREFIX: &str = "2001:db8:0:111::/64";
const WAN_GATEWAY: &str = "fe80::1";
/// `control.max_neighbors` in the config below (resolved entries per
/// side); INCOMPLETE entries have their own budget on top.
const MAX_NEIGHBORS: usize = 1024;
const MAX_INCOMPLETE: usize = 64;
/// The DHCPv4 pool (the default .100-.250 of the /24) and the DHCPv6
/// server's binding table.
const V4_POOL: usize = 151;
const V6_BINDINGS: usize = 4096;
/// How much ipoed's RSS may grow during one attack.
const RSS_BOUND_KIB: u64 = 16 * 1024;
/// blob20.bin.
const BLOB_BYTES: u64 = 20_000_000;
/// lan1's client ports: the two streams (one pair per attack) and the new
/// connections made during an attack. The capture on lan1 admits answers
/// to exactly these.
const STREAM_PORTS: u16 = 40_000;
const FETCH_PORTS: &str = "41000-41999";

/// What each attack runs for: ATTACK_SECONDS, default 5.
fn attack_seconds() -> u64 {
    std::env::var("ATTACK_SECONDS")
        .ok()
        .map(|s| s.parse().expect("ATTACK_SECONDS: whole seconds"))
        .unwrap_or(5)
        .max(1)
}

/// The lab's static config, with stateful DHCPv6 (so a DHCPv6 flood has
/// addresses to take), RAs every 1.3-4 s (so "keeps advertising" shows
/// within a short attack), the neighbor bound spelled out, and logging at
/// the level a router runs with.
fn config(lab: &Lab) -> String {
    let cfg = lab
        .config(1)
        .replace(
            "    prefix: 2001:db8:0:111::/64\n",
            "    prefix: 2001:db8:0:111::/64\n    dhcpv6: stateful\n    ra: { interval: 4, m_flag: true }\n",
        )
        .replace(
            "  log_level: debug\n",
            &format!("  log_level: info\n  max_neighbors: {MAX_NEIGHBORS}\n"),
        );
    assert!(
        cfg.contains("dhcpv6: stateful") && cfg.contains("max_neighbors"),
        "Lab::config changed shape:\n{cfg}"
    );
    format!("{cfg}firewall:\n  log_drops: true\n")
}

/// DHCPv4 starvation (no Debian tool does it): DISCOVERs from random MACs
/// as fast as the server answers, a REQUEST for every OFFER, for argv[2]
/// seconds. Prints what it sent and received.
const DHCP4_STARVE: &str = r#"
import random, socket, struct, sys, time
iface, secs = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((iface, 0)); s.setblocking(False)
def csum(b):
    if len(b) % 2: b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
def frame(mac, xid, opts):
    bootp = struct.pack('!BBBBIHH4s4s4s4s16s64s128s', 1, 1, 6, 0, xid, 0, 0x8000, bytes(4), bytes(4),
                        bytes(4), bytes(4), mac + bytes(10), b'', b'') + b'\x63\x82\x53\x63' + opts + b'\xff'
    udp = struct.pack('!HHHH', 68, 67, 8 + len(bootp), 0) + bootp
    c = csum(bytes(4) + b'\xff' * 4 + struct.pack('!BBH', 0, 17, len(udp)) + udp) or 0xffff
    udp = udp[:6] + struct.pack('!H', c) + udp[8:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes(4), b'\xff' * 4)
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    return b'\xff' * 6 + mac + b'\x08\x00' + ip + udp
n = dict(discover=0, request=0, offer=0, ack=0, nak=0); macs = {}
end = time.time() + secs
while time.time() < end:
    mac = bytes([0x02, 0x66] + [random.randrange(256) for _ in range(4)])
    xid = random.getrandbits(32); macs[xid] = mac
    s.send(frame(mac, xid, b'\x35\x01\x01')); n['discover'] += 1
    wait = time.time() + 0.002
    while time.time() < wait:
        try: p = s.recv(2048)
        except BlockingIOError: continue
        if len(p) < 282 or p[23] != 17: continue
        u = 14 + (p[14] & 15) * 4
        if struct.unpack('!H', p[u + 2:u + 4])[0] != 68: continue
        b = p[u + 8:]; x = struct.unpack('!I', b[4:8])[0]; yi = b[16:20]
        if x not in macs: continue
        o = b[240:]; mt = sid = None; i = 0
        while i + 1 < len(o) and o[i] != 255:
            if o[i] == 0: i += 1; continue
            if o[i] == 53: mt = o[i + 2]
            if o[i] == 54: sid = o[i + 2:i + 6]
            i += 2 + o[i + 1]
        if mt == 2 and sid:
            n['offer'] += 1; n['request'] += 1
            s.send(frame(macs[x], x, b'\x35\x01\x03\x32\x04' + yi + b'\x36\x04' + sid))
        elif mt == 5: n['ack'] += 1
        elif mt == 6: n['nak'] += 1
print('sent %(discover)d DISCOVER %(request)d REQUEST, got %(offer)d OFFER %(ack)d ACK %(nak)d NAK' % n)
"#;

/// One attack: tools run together for ATTACK_SECONDS.
struct Attack {
    name: &'static str,
    /// (namespace, shell command). Each runs under `timeout`; a command
    /// that ends early is not restarted unless it loops itself.
    tools: Vec<(&'static str, String)>,
    /// Where the attack's packets leave: (namespace, interface).
    wire: (&'static str, &'static str),
    /// From outside the LAN: lan1 must receive nothing it did not ask for.
    from_wan: bool,
    /// Counters (`node/counter` of `show errors`) that must grow by at least this.
    expect: Vec<(&'static str, u64)>,
    /// Counters that must not move.
    still: Vec<&'static str>,
}

/// A download from lan1 at a fixed rate, written to a file whose size we watch.
struct Stream {
    family: &'static str,
    child: Child,
    file: std::path::PathBuf,
    samples: Vec<(Instant, u64)>,
}

impl Stream {
    fn start(lab: &Lab, family: &'static str, port: u16, rate: u64, secs: u64) -> Stream {
        let url = if family == "v4" {
            format!("http://{V4_SERVER}/blob20.bin")
        } else {
            format!("http://[{V6_SERVER}]/blob20.bin")
        };
        let file = lab.run_dir.join(format!("attacks/stream-{family}.bin"));
        let _ = std::fs::remove_file(&file);
        let child = lab.spawn(
            "lan1",
            &[
                "curl",
                "-sS",
                "-g",
                "--local-port",
                &port.to_string(),
                "--limit-rate",
                &rate.to_string(),
                "--max-time",
                &(secs + 90).to_string(),
                "-o",
                file.to_str().unwrap_or_default(),
                &url,
            ],
        );
        Stream {
            family,
            child,
            file,
            samples: Vec::new(),
        }
    }

    fn bytes(&self) -> u64 {
        std::fs::metadata(&self.file).map(|m| m.len()).unwrap_or(0)
    }

    fn sample(&mut self) {
        let b = self.bytes();
        self.samples.push((Instant::now(), b));
    }

    /// Bytes moved between the first and the last sample, and their rate.
    /// (Not a stall detector: curl's --limit-rate paces by the average, so
    /// after a slow second it bursts and after a burst it pauses.)
    fn during(&self) -> (f64, u64) {
        let (Some(first), Some(last)) = (self.samples.first(), self.samples.last()) else {
            return (0.0, 0);
        };
        let moved = last.1 - first.1;
        let secs = last.0.duration_since(first.0).as_secs_f64().max(1e-3);
        (moved as f64 / secs, moved)
    }

    /// Waits for curl; the SHA-256 of what it wrote, if it ended well.
    fn finish(mut self, timeout: Duration) -> Result<String, String> {
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().map_err(|e| e.to_string())? {
                if !st.success() {
                    let mut err = String::new();
                    if let Some(mut e) = self.child.stderr.take() {
                        use std::io::Read;
                        let _ = e.read_to_string(&mut err);
                    }
                    return Err(format!(
                        "curl ({}) {st} after {} bytes: {}",
                        self.family,
                        self.bytes(),
                        err.trim()
                    ));
                }
                break;
            }
            if t0.elapsed() > timeout {
                ipoe_tests::terminate(&mut self.child);
                return Err(format!(
                    "{} stream unfinished after {timeout:?} ({} bytes)",
                    self.family,
                    self.bytes()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = std::process::Command::new("sha256sum")
            .arg(&self.file)
            .output()
            .map_err(|e| e.to_string())?;
        let sum = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_owned();
        let _ = std::fs::remove_file(&self.file);
        Ok(sum)
    }
}

/// Packets sent on an interface that the namespace's own IPv6 stack did
/// not send or forward: what the raw-socket tools put on the wire.
fn wire_count(lab: &Lab, ns: &str, iface: &str) -> u64 {
    let r = lab.exec(
        ns,
        &[
            "cat",
            &format!("/sys/class/net/{iface}/statistics/tx_packets"),
            &format!("/proc/net/dev_snmp6/{iface}"),
        ],
    );
    let mut lines = r.stdout.lines();
    let tx: u64 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    let stack: u64 = lines
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            match (w.next(), w.next()) {
                (Some("Ip6OutRequests" | "Ip6OutForwDatagrams"), Some(v)) => v.parse::<u64>().ok(),
                _ => None,
            }
        })
        .sum();
    tx.saturating_sub(stack)
}

/// Per router interface: frames received, and frames the AF_XDP rings
/// could not take (rx ring full, dropped by the kernel, tx ring full).
type Rings = HashMap<String, (u64, u64)>;

/// `show interfaces` as [`Rings`].
fn ring_counts(lab: &Lab) -> Rings {
    lab.ctl_json(&["show", "interfaces"])["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let lost: u64 = i["queues"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|q| {
                    ["rx_ring_full", "rx_kernel_dropped", "tx_ring_full"]
                        .iter()
                        .map(|k| q[*k].as_u64().unwrap_or(0))
                        .sum::<u64>()
                })
                .sum();
            (
                i["name"].as_str().unwrap_or("?").to_owned(),
                (i["rx_packets"].as_u64().unwrap_or(0), lost),
            )
        })
        .collect()
}

/// TCP segments the servers in inet retransmitted (both streams' senders).
fn inet_retransmits(lab: &Lab) -> u64 {
    let snmp = lab.exec("inet", &["cat", "/proc/net/snmp"]).stdout;
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (Some(names), Some(values)) = (tcp.next(), tcp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RetransSegs")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// A row of `show neighbors`.
struct Neighbor {
    iface: String,
    ip: String,
    mac: String,
    state: String,
}

fn neighbors(lab: &Lab) -> Vec<Neighbor> {
    lab.ctl_json(&["show", "neighbors"])["neighbors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let s = |k: &str| n[k].as_str().unwrap_or("").to_owned();
            Neighbor {
                iface: s("interface"),
                ip: s("ip"),
                mac: s("mac"),
                state: s("state"),
            }
        })
        .collect()
}

/// (resolved, incomplete) entries on one side.
fn count_side(n: &[Neighbor], iface: &str) -> (usize, usize) {
    let side: Vec<_> = n.iter().filter(|e| e.iface == iface).collect();
    let incomplete = side.iter().filter(|e| e.state == "incomplete").count();
    (side.len() - incomplete, incomplete)
}

fn lan1_entries(n: &[Neighbor]) -> Vec<String> {
    let mut v: Vec<String> = n
        .iter()
        .filter(|e| e.mac == LAN1_MAC)
        .map(|e| e.ip.clone())
        .collect();
    v.sort();
    v
}

/// Starts tcpdump on what lan1's eth0 receives, writing `file`; returns
/// once it captures.
fn capture(lab: &Lab, filter: &str, file: &str) -> Child {
    let _ = std::fs::remove_file(file);
    let child = lab.spawn(
        "lan1",
        &[
            "tcpdump", "-i", "eth0", "-Q", "in", "-n", "-U", "-w", file, filter,
        ],
    );
    let up = lab.wait_for(Duration::from_secs(10), || {
        std::path::Path::new(file).exists()
    });
    assert!(up.is_some(), "tcpdump did not start on lan1");
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// The packets of a capture, one line each.
fn captured(file: &str) -> Vec<String> {
    let out = std::process::Command::new("tcpdump")
        .args(["-n", "-r", file])
        .output()
        .expect("tcpdump -r");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Everything on lan1's wire that lan1 did not ask for: not ARP, not from
/// the LAN (the router's RAs and ND, other LAN hosts, the switch's IGMP
/// queries: it is the LAN's querier and has no IPv4 address, so they come
/// from 0.0.0.0; its MLD queries come from a link-local), not the answers
/// to lan1's own connections (the streams and the fetches).
fn unsolicited_filter() -> String {
    format!(
        "not arp and not (ip6 and (src net {LAN_PREFIX} or src net fe80::/10)) \
         and not (ip and src host 192.168.2.1) \
         and not (igmp and src host 0.0.0.0) \
         and not ((src host {V6_SERVER} or src host {V4_SERVER}) and tcp src port 80 \
         and (tcp dst portrange {}-{} or tcp dst portrange {FETCH_PORTS}))",
        STREAM_PORTS,
        STREAM_PORTS + 999
    )
}

/// What the thc tools say they sent: a dot per 1000 packets.
fn thc_packets(out: &str) -> Option<u64> {
    let (_, dots) = out.split_once("a dot is printed for every 1000 packets")?;
    let dots = dots.split_once('\n').map(|x| x.1).unwrap_or("");
    Some(dots.chars().filter(|&c| c == '.').count() as u64 * 1000)
}

/// The figures of one attack, for the summary table.
struct Row {
    name: &'static str,
    tools: String,
    wire: u64,
    tool_said: String,
    counters: Vec<String>,
    rss: (u64, u64),
    streams: Vec<String>,
    unsolicited: Option<usize>,
    failures: Vec<String>,
}

struct Outcome {
    before: HashMap<String, u64>,
    after: HashMap<String, u64>,
    neigh_before: Vec<Neighbor>,
    neigh_after: Vec<Neighbor>,
    row: Row,
}

fn delta(o: &Outcome, k: &str) -> u64 {
    o.after
        .get(k)
        .copied()
        .unwrap_or(0)
        .saturating_sub(o.before.get(k).copied().unwrap_or(0))
}

/// Starts each tool of `a` in its namespace under `timeout`, its output
/// in a file; returns (output file, process).
fn start_tools(lab: &Lab, idx: u16, a: &Attack, secs: u64) -> Vec<(String, Child)> {
    let dir = lab.run_dir.join("attacks");
    a.tools
        .iter()
        .enumerate()
        .map(|(k, (ns, cmd))| {
            let out = dir.join(format!("{idx}-{k}.out")).display().to_string();
            eprintln!("   {ns}: {cmd}");
            let sh = format!("exec timeout {secs} sh -c '{cmd}' > {out} 2>&1");
            (out, lab.spawn(ns, &["sh", "-c", &sh]))
        })
        .collect()
}

/// New connections from lan1 to both servers, in the background.
fn start_fetches(lab: &Lab) -> Vec<(&'static str, Child)> {
    [
        ("v4", format!("http://{V4_SERVER}/hello.txt")),
        ("v6", format!("http://[{V6_SERVER}]/hello.txt")),
    ]
    .into_iter()
    .map(|(fam, url)| {
        let curl = [
            "curl",
            "-sS",
            "-g",
            "-m",
            "5",
            "--retry",
            "2",
            "--local-port",
            FETCH_PORTS,
            "-o",
            "/dev/null",
            &url,
        ];
        (fam, lab.spawn("lan1", &curl))
    })
    .collect()
}

/// What the tools said they sent, where they say it.
fn tools_said(a: &Attack, outputs: &[String]) -> String {
    outputs
        .iter()
        .zip(&a.tools)
        .filter_map(|(out, (_, cmd))| {
            let tool = cmd.split_whitespace().next().unwrap_or("");
            thc_packets(out).map(|n| format!("{tool} {n}")).or_else(|| {
                out.lines()
                    .find(|l| l.starts_with("sent "))
                    .map(|l| format!("{tool}: {l}"))
            })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The router's rings and the servers' retransmissions between two
/// snapshots: where the floods cost the streams packets.
fn network_note(rings: (&Rings, &Rings), retrans: u64) -> String {
    let mut v: Vec<String> = ["wan0", "lan0"]
        .iter()
        .map(|iface| {
            let (r0, l0) = rings.0.get(*iface).copied().unwrap_or_default();
            let (r1, l1) = rings.1.get(*iface).copied().unwrap_or_default();
            format!(
                "{iface} rx +{}, lost in the rings +{}",
                r1.saturating_sub(r0),
                l1.saturating_sub(l0)
            )
        })
        .collect();
    v.push(format!("servers retransmitted {retrans} TCP segments"));
    v.join("; ")
}

/// Runs one attack with every common check; the caller adds its own.
fn run_attack(lab: &Lab, idx: u16, a: Attack) -> Outcome {
    let secs = attack_seconds();
    let mut failures = Vec::new();
    let rate = BLOB_BYTES / (secs + 4);
    eprintln!("\n== {} ({secs} s)", a.name);

    let rss0 = lab.ipoed_rss_kib().unwrap_or(0);
    let before = lab.error_counts();
    let neigh_before = neighbors(lab);
    let wire0 = wire_count(lab, a.wire.0, a.wire.1);
    let rings0 = ring_counts(lab);
    let retrans0 = inet_retransmits(lab);
    let pcap = lab
        .run_dir
        .join(format!("attacks/lan1-{idx}.pcap"))
        .display()
        .to_string();
    let cap = a
        .from_wan
        .then(|| capture(lab, &unsolicited_filter(), &pcap));

    // The streams are established before the attack starts.
    let port = STREAM_PORTS + idx * 10;
    let mut streams = vec![
        Stream::start(lab, "v4", port, rate, secs),
        Stream::start(lab, "v6", port + 1, rate, secs),
    ];
    std::thread::sleep(Duration::from_millis(1500));
    streams.iter_mut().for_each(Stream::sample);

    let mut tools = start_tools(lab, idx, &a, secs);
    let t0 = Instant::now();
    let mut fetches = Vec::new();
    loop {
        std::thread::sleep(Duration::from_millis(250));
        streams.iter_mut().for_each(Stream::sample);
        if fetches.is_empty() && t0.elapsed() >= Duration::from_secs(secs) / 2 {
            fetches = start_fetches(lab);
        }
        if tools
            .iter_mut()
            .all(|(_, c)| c.try_wait().ok().flatten().is_some())
        {
            break;
        }
        if t0.elapsed() > Duration::from_secs(secs + 30) {
            failures.push("attack tools did not stop".to_owned());
            break;
        }
    }
    let ran = t0.elapsed();
    let outputs: Vec<String> = tools
        .iter()
        .map(|(f, _)| std::fs::read_to_string(f).unwrap_or_default())
        .collect();
    for (_, c) in &mut tools {
        ipoe_tests::terminate(c);
    }

    let mut fetched = Vec::new();
    for (fam, mut c) in fetches {
        let ok = c.wait().is_ok_and(|s| s.success());
        fetched.push(format!("{fam} {}", if ok { "ok" } else { "FAILED" }));
        if !ok {
            failures.push(format!(
                "a new {fam} connection from lan1 failed during the attack"
            ));
        }
    }

    // The streams: moving during the attack, complete and intact after it.
    let want = std::fs::read_to_string(lab.run_dir.join("www/blob20.bin.sha256"))
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned();
    let mut stream_notes = Vec::new();
    for s in streams {
        let (bps, moved) = s.during();
        let fam = s.family;
        let sum = s.finish(Duration::from_secs(secs + 60));
        let intact = sum.as_deref() == Ok(want.as_str());
        stream_notes.push(format!(
            "stream {fam} {:.2} MB/s (limit {:.2}), {}",
            bps / 1e6,
            rate as f64 / 1e6,
            if intact { "sha256 ok" } else { "BROKEN" }
        ));
        if moved == 0 {
            failures.push(format!("the {fam} stream did not move during the attack"));
        }
        match sum {
            Ok(s) if s == want => {}
            Ok(s) => failures.push(format!("the {fam} stream ended corrupted ({s})")),
            Err(e) => failures.push(e),
        }
    }

    let unsolicited = cap.map(|mut c| {
        std::thread::sleep(Duration::from_millis(300));
        ipoe_tests::terminate(&mut c);
        let lines = captured(&pcap);
        if !lines.is_empty() {
            let some: Vec<&str> = lines.iter().take(5).map(String::as_str).collect();
            failures.push(format!(
                "{} unsolicited packets reached lan1, e.g.:\n      {}",
                lines.len(),
                some.join("\n      ")
            ));
        }
        lines.len()
    });

    let wire = wire_count(lab, a.wire.0, a.wire.1).saturating_sub(wire0);
    let retrans = inet_retransmits(lab).saturating_sub(retrans0);
    stream_notes.push(network_note((&rings0, &ring_counts(lab)), retrans));
    let alive = lab.ipoed_alive();
    if !alive {
        failures.push(format!("ipoed is down:\n{}", tail(&lab.ipoed_log(), 40)));
    }
    let rss1 = lab.ipoed_rss_kib().unwrap_or(0);
    if rss1 > rss0 + RSS_BOUND_KIB {
        failures.push(format!(
            "RSS grew {rss0} -> {rss1} KiB (bound +{RSS_BOUND_KIB})"
        ));
    }
    let (after, neigh_after) = if alive {
        (lab.error_counts(), neighbors(lab))
    } else {
        (before.clone(), Vec::new())
    };

    let mut o = Outcome {
        before,
        after,
        neigh_before,
        neigh_after,
        row: Row {
            name: a.name,
            tools: a
                .tools
                .iter()
                .map(|(ns, c)| format!("{ns}: `{c}`"))
                .collect::<Vec<_>>()
                .join("<br>"),
            wire,
            tool_said: tools_said(&a, &outputs),
            counters: Vec::new(),
            rss: (rss0, rss1),
            streams: stream_notes,
            unsolicited,
            failures,
        },
    };
    for (k, min) in &a.expect {
        let (b, d) = (o.before.get(*k).copied().unwrap_or(0), delta(&o, k));
        o.row.counters.push(format!("{k} {b} -> {} (+{d})", b + d));
        if alive && d < *min {
            o.row
                .failures
                .push(format!("{k} moved {d} (expected at least {min})"));
        }
    }
    for k in &a.still {
        let d = delta(&o, k);
        o.row.counters.push(format!("{k} +{d} (must stay)"));
        if d != 0 {
            o.row.failures.push(format!("{k} moved by {d}"));
        }
    }

    // Not a check: what the attack cost the control thread's queue (the
    // ND, DHCP and RS frames of real hosts wait in it too).
    let full = delta(&o, "punt/queue-full");
    o.row.counters.push(format!(
        "punt/local +{}, punt/queue-full +{full} (not checked)",
        delta(&o, "punt/local")
    ));
    // Also not checked, but how a neighbor can be lost: its probes went
    // unanswered (UNREACHABLE, then removed), its answers were policed, or
    // it aged out.
    o.row.counters.push(format!(
        "neighbor/unreachable +{}, neighbor/probe_failed +{}, neighbor/resolve_failed +{}, neighbor/gc_removed +{}, punt/police-nd-answer +{} (not checked)",
        delta(&o, "neighbor/unreachable"),
        delta(&o, "neighbor/probe_failed"),
        delta(&o, "neighbor/resolve_failed"),
        delta(&o, "neighbor/gc_removed"),
        delta(&o, "punt/police-nd-answer")
    ));

    let r = &o.row;
    eprintln!(
        "   ran {:.1} s; on the wire ({}/{}): {wire} packets{}",
        ran.as_secs_f64(),
        a.wire.0,
        a.wire.1,
        if r.tool_said.is_empty() {
            String::new()
        } else {
            format!("; the tools said: {}", r.tool_said)
        }
    );
    for c in &r.counters {
        eprintln!("   {c}");
    }
    eprintln!(
        "   RSS {rss0} -> {rss1} KiB ({:+} KiB); ipoed {}",
        rss1 as i64 - rss0 as i64,
        if alive { "up" } else { "DOWN" }
    );
    for s in &r.streams {
        eprintln!("   {s}");
    }
    eprintln!(
        "   new connections during the attack: {}",
        fetched.join(", ")
    );
    if let Some(n) = unsolicited {
        eprintln!("   unsolicited packets on lan1: {n}");
    }
    o
}

/// Neighbor-table checks: within the bound on both sides, lan1's entries
/// (and the WAN gateway) still there.
fn check_neighbors(o: &mut Outcome, growth_limit: Option<usize>) {
    let (lan_b, _) = count_side(&o.neigh_before, "lan0");
    let (lan_a, lan_inc) = count_side(&o.neigh_after, "lan0");
    let (wan_b, _) = count_side(&o.neigh_before, "wan0");
    let (wan_a, wan_inc) = count_side(&o.neigh_after, "wan0");
    let kept_before = lan1_entries(&o.neigh_before);
    let kept_after = lan1_entries(&o.neigh_after);
    let note = format!(
        "neighbors lan0 {lan_b} -> {lan_a} (+{lan_inc} incomplete), wan0 {wan_b} -> {wan_a} (+{wan_inc} incomplete); lan1: {}",
        kept_after.join(" ")
    );
    eprintln!("   {note}");
    o.row.counters.push(note);
    for (side, n, inc) in [("lan0", lan_a, lan_inc), ("wan0", wan_a, wan_inc)] {
        if n > MAX_NEIGHBORS || inc > MAX_INCOMPLETE {
            o.row.failures.push(format!(
                "{side} neighbor table beyond its bound: {n} resolved, {inc} incomplete"
            ));
        }
    }
    if let Some(g) = growth_limit {
        if lan_a > lan_b + g || lan_inc > g {
            o.row.failures.push(format!(
                "the LAN neighbor table grew {lan_b} -> {lan_a} (+{lan_inc} incomplete)"
            ));
        }
    }
    for ip in &kept_before {
        if !kept_after.contains(ip) {
            o.row
                .failures
                .push(format!("lan1's neighbor entry {ip} was evicted"));
        }
    }
    if !o.neigh_after.iter().any(|e| e.ip == WAN_GATEWAY) {
        o.row
            .failures
            .push(format!("the WAN gateway {WAN_GATEWAY} was evicted"));
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn tools_present() {
    for t in [
        "atk6-flood_router6",
        "atk6-flood_advertise6",
        "atk6-flood_solicitate6",
        "atk6-ndpexhaust26",
        "atk6-fragmentation6",
        "atk6-thcping6",
        "atk6-implementation6",
        "atk6-flood_unreach6",
        "atk6-flood_dhcpc6",
        "scan6",
        "frag6",
        "tcp6",
        "icmp6",
        "tcpdump",
    ] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "{t} is missing: apt-get install -y thc-ipv6 ipv6toolkit tcpdump (scripts/install-deps.sh)"
        );
    }
}

/// A line count of a LAN host's events.log (each DHCP client event).
fn events(lab: &Lab, host: &str, client: &str) -> usize {
    std::fs::read_to_string(lab.run_dir.join("lanhosts").join(host).join("events.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(client))
        .count()
}

#[test]
fn attacks() {
    tools_present();
    let t_start = Instant::now();
    let secs = attack_seconds();
    // An empty state_dir: no leases left from an earlier run.
    let mut lab = Lab::fresh(1);
    let lab_up = t_start.elapsed();
    let cfg = config(&lab);
    lab.start_ipoed(&cfg);
    std::fs::create_dir_all(lab.run_dir.join("attacks")).expect("attacks dir");
    let starve = lab.run_dir.join("attacks/dhcp4starve.py");
    std::fs::write(&starve, DHCP4_STARVE).expect("write the starvation script");
    // lan1 is configured statically: it must take no RAs, or a rogue RA
    // flood rewrites its routes (the host's problem, not the router's).
    let r = lab.exec("lan1", &["sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=0"]);
    assert!(r.ok, "{}", r.stderr);
    let _ = lab.exec("lan1", &["ip", "-6", "route", "flush", "proto", "ra"]);
    // The attacker on the LAN: link-local only, no DHCP client.
    lab.lanhost("lan2", &["--ipv6", "off"]);
    for url in [
        format!("http://{V4_SERVER}/hello.txt"),
        format!("http://[{V6_SERVER}]/hello.txt"),
    ] {
        assert!(
            lab.fetch_within("lan1", &url, Duration::from_secs(15)),
            "{url} before the attacks\n{}",
            lab.ipoed_log()
        );
    }
    let rss_start = lab.ipoed_rss_kib().unwrap_or(0);
    let setup = t_start.elapsed();
    let mut rows: Vec<Row> = Vec::new();
    let ev = ["neighbor/stale_evicted"];

    // 1. Rogue RAs on the LAN: counted and ignored; we keep advertising.
    let rs_before = lab.ctl_json(&["show", "lan"]);
    let pcap = lab.run_dir.join("attacks/ra.pcap").display().to_string();
    let mut ra_cap = capture(
        &lab,
        &format!("icmp6 and ether src {ROUTER_LAN_MAC} and ip6[40] == 134"),
        &pcap,
    );
    let mut o = run_attack(
        &lab,
        1,
        Attack {
            name: "1. RA flood on the LAN",
            tools: vec![("lan2", "atk6-flood_router6 eth0".into())],
            wire: ("lan2", "eth0"),
            from_wan: false,
            // The punt node's RA budget (100/s) takes the flood; what it
            // lets through reaches the LAN RA engine as rogue RAs.
            expect: vec![
                ("punt/police-ra", 1000),
                ("lan-ra/rogue-ra", 100),
                ("lan-ra/tx-ra", u64::from(secs >= 4)),
            ],
            still: vec!["wan-ra/router-removed", "wan-ra/router-expired"],
        },
    );
    ipoe_tests::terminate(&mut ra_cap);
    let ours = captured(&pcap).len();
    let note = format!("RAs from the router seen on lan1 during the flood: {ours}");
    eprintln!("   {note}");
    o.row.counters.push(note);
    if secs >= 4 && ours == 0 {
        o.row
            .failures
            .push("lan1 saw no RA from the router during the flood".into());
    }
    let lan = lab.ctl_json(&["show", "lan"]);
    if lan["ra"]["advertising"] != true
        || lan["ra"]["router_lifetime_s"].as_u64().unwrap_or(0) == 0
        || lan["ra"]["prefixes"] != rs_before["ra"]["prefixes"]
    {
        o.row.failures.push(format!(
            "the router's own RA changed under the flood: {}",
            lan["ra"]
        ));
    }
    check_neighbors(&mut o, None);
    rows.push(o.row);

    // 2a. Neighbor advertisements for made-up targets.
    let mut o = run_attack(
        &lab,
        2,
        Attack {
            name: "2a. NA flood on the LAN",
            tools: vec![("lan2", "atk6-flood_advertise6 eth0".into())],
            wire: ("lan2", "eth0"),
            from_wan: false,
            expect: vec![("neighbor/na_rx", 1000), ("neighbor/na_unsolicited", 1000)],
            still: ev.to_vec(),
        },
    );
    check_neighbors(&mut o, Some(0));
    rows.push(o.row);

    // 3. NDP exhaustion: the LAN /64 scanned from the internet.
    let mut o = run_attack(
        &lab,
        3,
        Attack {
            name: "3. Scan of the LAN /64 from inet (NDP exhaustion)",
            tools: vec![
                ("inet", format!("scan6 -i v6 -d {LAN_PREFIX} -r 100000pps")),
                ("inet", format!("atk6-ndpexhaust26 -p v6 {LAN_PREFIX}")),
            ],
            wire: ("inet", "v6"),
            from_wan: true,
            expect: vec![("ip6-firewall/no-session", 1000)],
            still: vec![
                "neighbor/stale_evicted",
                "neighbor/incomplete_full",
                "neighbor/table_full",
            ],
        },
    );
    check_neighbors(&mut o, Some(2));
    rows.push(o.row);

    // 4. Fragments: overlapping, tiny, too many, to a LAN host and to the
    // router's WAN (= B4) address. The B4 reassembles only the AFTR's
    // (issue 15 m9), so the flood that reaches the reassembler spoofs the
    // AFTR, with a Destination Options header in front of the Fragment
    // header as a Linux AFTR sends (m5); overlaps and malformed fragments
    // in the reassembler itself are the unit tests' and the fuzzer's.
    let mut o = run_attack(
        &lab,
        4,
        Attack {
            name: "4. Fragmentation attacks from inet",
            tools: vec![
                ("inet", format!("atk6-fragmentation6 -p v6 {LAN1_V6}")),
                ("inet", format!("atk6-fragmentation6 -f v6 {ROUTER_WAN} 7")),
                ("inet", format!("atk6-fragmentation6 -f v6 {ROUTER_WAN} 13")),
                ("inet", format!("atk6-fragmentation6 -f v6 {ROUTER_WAN} 19")),
                ("inet", format!("frag6 -i v6 -d {ROUTER_WAN} -F 200000")),
                // Random sizes (malformed) and 64-byte later fragments of
                // ever new datagrams (each takes a context).
                (
                    "inet",
                    format!("frag6 -i v6 -s {AFTR} -U 8 -d {ROUTER_WAN} -F 200000"),
                ),
                (
                    "inet",
                    format!("frag6 -i v6 -s {AFTR} -U 8 -P 64 -T -o 8 -d {ROUTER_WAN} -F 200000"),
                ),
                ("inet", format!("frag6 -i v6 -d {LAN1_V6} -F 200000")),
            ],
            wire: ("inet", "v6"),
            from_wan: true,
            expect: vec![
                ("ip6-input/fragment-not-from-aftr", 100),
                ("ip6-reassembly/buffered", 100),
                ("ip6-reassembly/malformed", 1),
                ("ip6-firewall/no-session", 1),
                ("ip6-firewall/fragment-unadmitted", 1),
            ],
            still: vec![],
        },
    );
    let given_up = delta(&o, "ip6-reassembly/timeout") + delta(&o, "ip6-reassembly/evicted");
    let note = format!("ip6-reassembly timeout + evicted: +{given_up}");
    eprintln!("   {note}");
    o.row.counters.push(note);
    if given_up == 0 {
        o.row
            .failures
            .push("no incomplete datagram was ever given up (timeout/evicted)".into());
    }
    check_neighbors(&mut o, Some(2));
    rows.push(o.row);

    // 5. Extension-header chains: hop-by-hop, RH0, more headers than we walk.
    let many_dst = " -u 8".repeat(10);
    let mut o = run_attack(
        &lab,
        5,
        Attack {
            name: "5. Extension-header chains from inet",
            tools: vec![
                (
                    "inet",
                    format!("atk6-thcping6 -x -n 100000000 -a v6 x {LAN1_V6}"),
                ),
                (
                    "inet",
                    format!("atk6-thcping6 -x -n 100000000 -F 2001:db8:0:111::20 v6 x {LAN1_V6}"),
                ),
                (
                    "inet",
                    format!("atk6-thcping6 -x -n 100000000 -F {LAN1_V6} v6 x {ROUTER_WAN}"),
                ),
                // 128 hop-by-hop headers to the router, 128 destination
                // options headers to lan1 (each run waits 3 s for a reply).
                (
                    "inet",
                    format!("while :; do atk6-implementation6 -p v6 {ROUTER_WAN} 4; done"),
                ),
                (
                    "inet",
                    format!("while :; do atk6-implementation6 -p v6 {LAN1_V6} 8; done"),
                ),
                // More headers than ip6-firewall and ip6-local walk (8), to
                // lan1 and to the router. (No -H: hgw, a Linux router, drops
                // tcp6's hop-by-hop header as a header error before it
                // reaches us; thcping6 -a covers hop-by-hop.)
                (
                    "inet",
                    format!("tcp6 -i v6 -d {LAN1_V6} -a 22 -X S{many_dst} -F 100 -l -z 1"),
                ),
                (
                    "inet",
                    format!("tcp6 -i v6 -d {ROUTER_WAN} -a 22 -X S{many_dst} -F 100 -l -z 1"),
                ),
            ],
            wire: ("inet", "v6"),
            from_wan: true,
            expect: vec![
                ("ip6-firewall/rh0", 1000),
                ("ip6-firewall/no-session", 1000),
                ("ip6-firewall/bad-header", 1),
                ("ip6-local/bad-header", 1),
            ],
            still: vec![],
        },
    );
    check_neighbors(&mut o, Some(2));
    rows.push(o.row);

    // 6. ICMPv6 errors: unreachables and packet-too-bigs quoting nothing
    // we sent, to a LAN host, the whole /64 and the router.
    let mut o = run_attack(
        &lab,
        6,
        Attack {
            name: "6. ICMPv6 error floods from inet",
            tools: vec![
                ("inet", format!("atk6-flood_unreach6 v6 {LAN1_V6}")),
                ("inet", format!("atk6-flood_unreach6 -R v6 {ROUTER_WAN}")),
                ("inet", format!("atk6-ndpexhaust26 v6 {LAN_PREFIX}")),
                (
                    "inet",
                    format!("icmp6 -i v6 -d {LAN1_V6} -E -m 1280 -l -z 1"),
                ),
            ],
            wire: ("inet", "v6"),
            from_wan: true,
            // Errors to the router itself: the punt node's ICMP error
            // budget (200/s) lets some through to the control thread.
            expect: vec![
                ("ip6-firewall/icmp-unrelated", 1000),
                ("punt/police-icmp-error", 1000),
                ("punt/local", 100),
                ("wan/rx-unexpected", 100),
            ],
            still: vec![],
        },
    );
    check_neighbors(&mut o, Some(2));
    rows.push(o.row);

    // 2b, 2c. Solicitations for our addresses from made-up sources: each is
    // answered, but fills the neighbor table (then refused, never
    // evicting). They come after the scan, which shows best on a table not
    // already full of their entries.
    let mut o = run_attack(
        &lab,
        7,
        Attack {
            name: "2b. NS flood on the LAN (for the router's address, random sources)",
            tools: vec![(
                "lan2",
                format!("atk6-flood_solicitate6 eth0 {ROUTER_LAN} ff02::1:ff00:1"),
            )],
            wire: ("lan2", "eth0"),
            from_wan: false,
            expect: vec![
                ("neighbor/ns_rx", 1000),
                ("neighbor/na_tx", 1000),
                ("neighbor/table_full", 1),
            ],
            still: ev.to_vec(),
        },
    );
    check_neighbors(&mut o, None);
    rows.push(o.row);

    let mut o = run_attack(
        &lab,
        8,
        Attack {
            name: "2c. NS and NA floods on the WAN link (from hgw down0)",
            tools: vec![
                (
                    "hgw",
                    format!("atk6-flood_solicitate6 down0 {ROUTER_WAN} ff02::1:ff00:2"),
                ),
                ("hgw", "atk6-flood_advertise6 down0".into()),
            ],
            wire: ("hgw", "down0"),
            from_wan: true,
            expect: vec![
                ("neighbor/ns_rx", 1000),
                ("neighbor/na_tx", 1000),
                ("neighbor/na_unsolicited", 1000),
                ("neighbor/table_full", 1),
            ],
            still: ev.to_vec(),
        },
    );
    check_neighbors(&mut o, None);
    rows.push(o.row);

    // 7. DHCP starvation: a client that had its leases keeps them.
    lab.lanhost("lan3", &["--ipv6", "off"]);
    assert!(
        lab.dhcp_client("lan3", "udhcpc", &[]),
        "lan3 got no DHCPv4 lease before the attack"
    );
    assert!(
        lab.dhcp_client("lan3", "dhclient6", &["-N"]),
        "lan3 got no DHCPv6 address before the attack"
    );
    let v4_lease = lab.lease_file("lan3", "udhcpc.lease4");
    let v6_lease = lab.lease_file("lan3", "dhclient6.lease6");
    let mut o = run_attack(
        &lab,
        9,
        Attack {
            name: "7. DHCP starvation on the LAN (DHCPv4 and DHCPv6)",
            tools: vec![
                // It stops itself before `timeout` would, to say what it sent.
                (
                    "lan2",
                    format!(
                        "python3 {} eth0 {}",
                        starve.display(),
                        secs.saturating_sub(1).max(1)
                    ),
                ),
                ("lan2", "atk6-flood_dhcpc6 eth0".into()),
            ],
            wire: ("lan2", "eth0"),
            from_wan: false,
            expect: vec![
                ("dhcpv4-server/rx-discover", 100),
                ("dhcpv4-server/leases-granted", 100),
                ("dhcpv4-server/pool-exhausted", 1),
                // The punt node's DHCPv6 budget (500/s) takes most of the
                // flood; the server answers what it lets through. Replies
                // answer the tool's Requests, as many as the tool manages
                // to send after its Advertises (77 in 5 s on a busy run).
                ("punt/police-dhcp6", 1000),
                ("dhcpv6-server/rx-solicit", 1000),
                ("dhcpv6-server/tx-advertise", 1000),
                ("dhcpv6-server/tx-reply", 10),
            ],
            still: vec!["dhcpv4-server/drop-decoder-panic"],
        },
    );
    let leases = lab.ctl_json(&["show", "leases"]);
    let n4 = leases["dhcpv4"]["leases"].as_array().map_or(0, Vec::len);
    let n6 = leases["dhcpv6"]["leases"].as_array().map_or(0, Vec::len);
    let note = format!(
        "leases: DHCPv4 {n4} (pool {V4_POOL}), DHCPv6 {n6} (table {V6_BINDINGS}); \
         dhcpv6-server/table-full +{}",
        delta(&o, "dhcpv6-server/table-full")
    );
    eprintln!("   {note}");
    o.row.counters.push(note);
    if n4 > V4_POOL || n6 > V6_BINDINGS {
        o.row
            .failures
            .push(format!("lease tables beyond their bounds: {n4} / {n6}"));
    }
    // The legitimate client renews both leases and keeps its addresses.
    for (client, file, lease, key) in [
        ("udhcpc", "udhcpc.lease4", &v4_lease, "ip"),
        ("dhclient6", "dhclient6.lease6", &v6_lease, "addr"),
    ] {
        let n = events(&lab, "lan3", client);
        lab.script_ok(&["lanhost", "renew", "lan3", client]);
        let renewed = lab.wait_for(Duration::from_secs(15), || {
            let l = lab.lease_file("lan3", file);
            events(&lab, "lan3", client) > n
                && l.get("state").map(String::as_str) == Some("bound")
                && l.get(key) == lease.get(key)
        });
        let got = lab.lease_file("lan3", file);
        let note = format!(
            "lan3 {client} renewed after the attack: {} ({}={})",
            if renewed.is_some() { "yes" } else { "NO" },
            key,
            got.get(key).map(String::as_str).unwrap_or("-")
        );
        eprintln!("   {note}");
        o.row.counters.push(note);
        if renewed.is_none() {
            o.row.failures.push(format!(
                "lan3's {client} lease was not renewed after the starvation: {got:?}"
            ));
        }
    }
    rows.push(o.row);

    // The summary.
    let rss_end = lab.ipoed_rss_kib().unwrap_or(0);
    let total = t_start.elapsed();
    println!(
        "\n| attack | tools (namespace: command) | packets on the wire | tools said | counters | RSS KiB before -> after | streams during the attack | unsolicited on lan1 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} -> {} | {} | {} |",
            r.name,
            r.tools,
            r.wire,
            r.tool_said,
            r.counters.join("<br>"),
            r.rss.0,
            r.rss.1,
            r.streams.join("<br>"),
            r.unsolicited
                .map_or("n/a (LAN)".to_owned(), |n| n.to_string())
        );
    }
    println!(
        "\nATTACK_SECONDS={secs}: lab up {:.0} s (with the wait for the lab lock), setup {:.0} s, \
         attacks {:.0} s, total {:.0} s; ipoed RSS {rss_start} -> {rss_end} KiB",
        lab_up.as_secs_f64(),
        (setup - lab_up).as_secs_f64(),
        (total - setup).as_secs_f64(),
        total.as_secs_f64()
    );
    let failures: Vec<String> = rows
        .iter()
        .flat_map(|r| r.failures.iter().map(move |f| format!("{}: {f}", r.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}\n\nipoed log:\n{}",
        failures.len(),
        failures.join("\n"),
        tail(&lab.ipoed_log(), 60)
    );
}
