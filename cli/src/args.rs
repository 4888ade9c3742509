//! The command line: options anywhere, the command as words, and every
//! check the daemon would otherwise make after a round trip (a bad count, a
//! filter on the wrong command), so a typo is a usage error (exit 2) and
//! never an error reply.

use std::net::IpAddr;

use ipoe_proto::ctl::TRACE_ADD_MAX as TRACE_MAX;
use serde_json::{json, Map, Value};

pub const DEFAULT_SOCKET: &str = "/run/ipoed/ipoed.sock";

/// Every command as typed, which is also its protocol name, with what the
/// usage text says about it.
const COMMANDS: &[(&str, &str)] = &[
    (
        "show interfaces",
        "interfaces, addresses, per-queue counters",
    ),
    (
        "show errors",
        "non-zero error counters of every node (--all: zeros too)",
    ),
    ("show runtime", "per-worker node calls, vectors and clocks"),
    ("show neighbors", "ARP and NDP neighbors"),
    ("show config", "the running config as YAML"),
    ("show wan", "WAN IPv6: addresses, routers, RA"),
    ("show pd", "DHCPv6 prefix delegation"),
    ("show tunnel", "the DS-Lite tunnel"),
    ("show lan", "LAN addresses, RA as sent, DNS proxy"),
    ("show leases", "DHCPv4 and DHCPv6 leases"),
    ("show firewall", "firewall policy, rule hits, recent drops"),
    (
        "show sessions",
        "firewall sessions (--proto P, --host ADDR)",
    ),
    ("show trace", "the packets traced since `trace add`"),
    (
        "trace add",
        "trace the next N packets (1..1000), from wan, lan or both",
    ),
    ("clear runtime", "zero the runtime figures"),
    ("clear errors", "zero the error counters"),
    ("clear trace", "forget the traced packets"),
    ("pd renew", "make the DHCPv6 client Renew now"),
    ("pd rebind", "make the DHCPv6 client Rebind now"),
    ("reload", "re-read the config file and apply the changes"),
    ("version", "daemon and protocol versions"),
];

pub fn usage() -> String {
    let mut s = String::from("usage: ipoectl [--socket PATH] [--json] COMMAND [ARGS]\ncommands:\n");
    for (name, what) in COMMANDS {
        let shown = if *name == "trace add" {
            "trace add N [wan|lan]"
        } else {
            name
        };
        s.push_str(&format!("  {shown:<21} {what}\n"));
    }
    s.push_str(&format!(
        "options (anywhere on the line):\n\
         \x20 --socket PATH     the control socket (default $IPOED_SOCKET, else {DEFAULT_SOCKET})\n\
         \x20 --json            print the reply's data as JSON\n\
         \x20 --all             with show errors: list zero counters too\n\
         \x20 --proto P         with show sessions: tcp, udp, icmp, icmpv6 or a protocol number\n\
         \x20 --host ADDR       with show sessions: an IPv4 or IPv6 address, either end\n\
         \x20 -h, --help        this text"
    ));
    s
}

/// A request ready to send, and how to print its reply.
#[derive(Debug)]
pub struct Invocation {
    pub socket: String,
    pub json: bool,
    /// `show errors --all`.
    pub all: bool,
    /// The protocol command, e.g. `show runtime`.
    pub command: &'static str,
    /// The request's `args`, only for commands that take any.
    pub args: Option<Value>,
}

#[derive(Debug)]
pub enum Parsed {
    Help,
    Run(Invocation),
}

/// Why the command line is wrong, in one line.
#[derive(Debug)]
pub struct UsageError(pub String);

fn bad<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// What the options said, before the command is known.
#[derive(Default)]
struct Options {
    socket: Option<String>,
    json: bool,
    all: bool,
    proto: Option<String>,
    host: Option<String>,
}

pub fn parse(
    argv: impl IntoIterator<Item = String>,
    env_socket: Option<String>,
) -> Result<Parsed, UsageError> {
    let mut opts = Options::default();
    let mut words = Vec::new();
    let mut argv = argv.into_iter();
    while let Some(arg) = argv.next() {
        if !is_option(&arg) {
            words.push(arg);
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--json" | "--all" => {
                if inline.is_some() {
                    return bad(format!("{name} takes no value"));
                }
                if name == "--json" {
                    opts.json = true;
                } else {
                    opts.all = true;
                }
            }
            "--socket" | "--proto" | "--host" => {
                let Some(value) = inline.or_else(|| argv.next()) else {
                    return bad(format!("{name} needs a value"));
                };
                let slot = match name.as_str() {
                    "--socket" => &mut opts.socket,
                    "--proto" => &mut opts.proto,
                    _ => &mut opts.host,
                };
                if slot.is_some() {
                    return bad(format!("{name} given twice"));
                }
                *slot = Some(value);
            }
            _ => return bad(format!("unknown option {name}")),
        }
    }
    let (command, trace) = command(&words)?;
    let args = args(command, trace, &opts)?;
    Ok(Parsed::Run(Invocation {
        socket: opts
            .socket
            .or(env_socket)
            .unwrap_or_else(|| DEFAULT_SOCKET.to_string()),
        json: opts.json,
        all: opts.all,
        command,
        args,
    }))
}

/// Options start with `-`; a negative number is a (bad) argument, so that
/// `trace add -5` says what is wrong with the count.
fn is_option(arg: &str) -> bool {
    arg.starts_with('-') && arg.len() > 1 && !arg[1..].bytes().all(|b| b.is_ascii_digit())
}

/// `trace add`'s count and the interface it traces (`None`: both).
type TraceArgs = (u64, Option<&'static str>);

/// The command the words name, and `trace add`'s arguments.
fn command(words: &[String]) -> Result<(&'static str, Option<TraceArgs>), UsageError> {
    if words.is_empty() {
        return bad("no command given");
    }
    if words.len() >= 2 && words[0] == "trace" && words[1] == "add" {
        return match &words[2..] {
            [] => bad("trace add needs a packet count, 1..1000"),
            [n] => Ok(("trace add", Some((trace_count(n)?, None)))),
            [n, side] => {
                let side = match side.as_str() {
                    "wan" => "wan",
                    "lan" => "lan",
                    other => {
                        return bad(format!(
                            "trace add: traces packets received on wan or lan, not {other:?}"
                        ))
                    }
                };
                Ok(("trace add", Some((trace_count(n)?, Some(side)))))
            }
            [_, _, extra, ..] => bad(format!(
                "trace add takes a count and an interface; unexpected {extra:?}"
            )),
        };
    }
    let typed = words.join(" ");
    if let Some((name, _)) = COMMANDS
        .iter()
        .find(|(c, _)| *c == typed && *c != "trace add")
    {
        return Ok((name, None));
    }
    let subs: Vec<&str> = COMMANDS
        .iter()
        .filter_map(|(c, _)| c.strip_prefix(&format!("{typed} ")))
        .collect();
    if !subs.is_empty() {
        return bad(format!(
            "incomplete command {typed:?}: one of {}",
            subs.join(", ")
        ));
    }
    bad(format!("unknown command {typed:?}"))
}

fn trace_count(n: &str) -> Result<u64, UsageError> {
    match n.parse::<u64>() {
        Ok(c) if (1..=TRACE_MAX).contains(&c) && n.bytes().all(|b| b.is_ascii_digit()) => Ok(c),
        _ => bad(format!(
            "trace add: the count must be a whole number from 1 to {TRACE_MAX}, not {n:?}"
        )),
    }
}

/// The request's `args`, after checking each option goes with the command.
fn args(
    command: &str,
    trace: Option<TraceArgs>,
    opts: &Options,
) -> Result<Option<Value>, UsageError> {
    if opts.all && command != "show errors" {
        return bad(format!(
            "--all goes only with `show errors`, not `{command}`"
        ));
    }
    for (name, given) in [("--proto", &opts.proto), ("--host", &opts.host)] {
        if given.is_some() && command != "show sessions" {
            return bad(format!(
                "{name} goes only with `show sessions`, not `{command}`"
            ));
        }
    }
    if let Some((n, side)) = trace {
        return Ok(Some(match side {
            Some(rx) => json!({ "count": n, "rx": rx }),
            None => json!({ "count": n }),
        }));
    }
    if command != "show sessions" {
        return Ok(None);
    }
    let mut filters = Map::new();
    if let Some(p) = &opts.proto {
        check_proto(p)?;
        filters.insert("proto".into(), Value::String(p.clone()));
    }
    if let Some(h) = &opts.host {
        if h.parse::<IpAddr>().is_err() {
            return bad(format!("--host {h:?}: not an IPv4 or IPv6 address"));
        }
        filters.insert("host".into(), Value::String(h.clone()));
    }
    Ok((!filters.is_empty()).then_some(Value::Object(filters)))
}

/// The protocols the daemon accepts: a name or a protocol number.
fn check_proto(p: &str) -> Result<(), UsageError> {
    if matches!(p, "tcp" | "udp" | "icmp" | "icmpv6") || p.parse::<u8>().is_ok() {
        Ok(())
    } else {
        bad(format!(
            "--proto {p:?}: expected tcp, udp, icmp, icmpv6 or a protocol number (0..255)"
        ))
    }
}
