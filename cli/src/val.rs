//! Turning reply fields into text. Every helper takes any `Value` and
//! never panics: the daemon may be older or newer than this ipoectl, so a
//! field can be missing, `null` or of another type, and then prints as `-`.

use serde_json::Value;

/// What a missing or unknown value prints as.
pub const NONE: &str = "-";

/// The elements of an array field; nothing when it is not an array.
pub fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// A scalar as a person reads it: strings bare, booleans as yes/no,
/// arrays joined with commas, `null` and missing as `-`.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => NONE.into(),
        Value::Bool(b) => yes_no(*b).into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.is_empty() => NONE.into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => NONE.into(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
        Value::Object(_) => v.to_string(),
    }
}

pub fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// A count: a number prints as is, a string passes through (an odd daemon
/// is still worth reading), anything else is `-`.
pub fn count(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) if !s.is_empty() => s.clone(),
        _ => NONE.into(),
    }
}

/// A float with `prec` decimals, for ratios such as vectors/call.
pub fn fixed(v: &Value, prec: usize) -> String {
    v.as_f64()
        .map_or_else(|| NONE.into(), |f| format!("{f:.prec$}"))
}

/// The integer in `v`, if it is a non-negative number.
pub fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

/// Seconds as `45s`, `2m05s`, `1h02m03s` or `3d04h05m06s`: long timers
/// (leases, lifetimes) are unreadable as raw seconds. Below a minute a
/// fraction keeps one decimal (`0.4s`), since neighbor ages are fractional.
pub fn human_secs(s: f64) -> String {
    if !s.is_finite() {
        return NONE.into();
    }
    let sign = if s < 0.0 { "-" } else { "" };
    let a = s.abs();
    if a < 59.95 && a.fract() != 0.0 {
        return format!("{sign}{a:.1}s");
    }
    let t = a.round() as u64;
    let (d, h, m, sec) = (t / 86_400, t / 3600 % 24, t / 60 % 60, t % 60);
    let body = if d > 0 {
        format!("{d}d{h:02}h{m:02}m{sec:02}s")
    } else if h > 0 {
        format!("{h}h{m:02}m{sec:02}s")
    } else if m > 0 {
        format!("{m}m{sec:02}s")
    } else {
        format!("{sec}s")
    };
    format!("{sign}{body}")
}

/// A duration in seconds; any other value prints as `text` does.
pub fn duration(v: &Value) -> String {
    v.as_f64().map_or_else(|| text(v), human_secs)
}

/// Time left until something expires: `null` means it does not
/// (`on_null`), a negative value means it already has.
pub fn left(v: &Value, on_null: &str) -> String {
    match v.as_f64() {
        Some(s) if s < 0.0 => format!("expired {} ago", human_secs(-s)),
        Some(s) => human_secs(s),
        None if v.is_null() => on_null.into(),
        None => text(v),
    }
}

/// Seconds since something happened; `null` means it never did.
pub fn ago(v: &Value) -> String {
    match v.as_f64() {
        Some(s) => format!("{} ago", human_secs(s)),
        None if v.is_null() => "never".into(),
        None => text(v),
    }
}

/// A byte count, exact, with a binary-unit reading beside it once it is
/// large enough for the digits to be hard to count.
pub fn bytes(v: &Value) -> String {
    match as_u64(v) {
        Some(n) => match unit(n) {
            Some(u) => format!("{n} ({u})"),
            None => n.to_string(),
        },
        None => count(v),
    }
}

/// `n` bytes in KiB, MiB, ... with one decimal; `None` below 1 KiB.
pub fn unit(n: u64) -> Option<String> {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut f = n as f64;
    let mut unit = None;
    for u in UNITS {
        if f < 1024.0 {
            break;
        }
        f /= 1024.0;
        unit = Some(u);
    }
    unit.map(|u| format!("{f:.1} {u}"))
}

/// IP protocol numbers by name, as `--proto` takes them.
pub fn proto(v: &Value) -> String {
    match v.as_u64() {
        Some(1) => "icmp".into(),
        Some(6) => "tcp".into(),
        Some(17) => "udp".into(),
        Some(58) => "icmpv6".into(),
        _ => text(v),
    }
}

/// ICMP carries a type where TCP and UDP carry a port.
pub fn is_icmp(v: &Value) -> bool {
    matches!(v.as_u64(), Some(1 | 58)) || matches!(v.as_str(), Some("icmp" | "icmpv6"))
}

/// `addr:port`, with IPv6 in brackets so the port stays readable.
pub fn endpoint(addr: &Value, port: &Value) -> String {
    let a = text(addr);
    let p = count(port);
    if p == NONE {
        a
    } else if a.contains(':') {
        format!("[{a}]:{p}")
    } else {
        format!("{a}:{p}")
    }
}

/// A reply key as a label: `dns_servers` reads `DNS servers`, and a unit
/// suffix the value already shows (`_s`, `_s_ago`) is dropped.
pub fn label(key: &str) -> String {
    let base = key
        .strip_suffix("_s_ago")
        .or_else(|| key.strip_suffix("_s"))
        .unwrap_or(key);
    base.split('_').map(acronym).collect::<Vec<_>>().join(" ")
}

fn acronym(word: &str) -> String {
    const UPPER: &[&str] = &[
        "ra", "dns", "mtu", "mss", "aftr", "duid", "iaid", "dad", "rdnss", "dnssl", "b4", "lan",
        "wan", "mac", "t1", "t2", "ttl", "tcp", "udp", "icmp", "ip", "xdp", "rx", "tx", "pd",
    ];
    match word {
        "ipv4" => "IPv4".into(),
        "ipv6" => "IPv6".into(),
        "icmpv6" => "ICMPv6".into(),
        w if UPPER.contains(&w) => w.to_uppercase(),
        w => w.into(),
    }
}
