//! The AF_XDP traffic generator and receiver: `pktgen tx` and `pktgen rx`.
//!
//! ```text
//! ipoe-bench pktgen tx --iface IF --traffic ipv4|ipv6|ipip6 --src A --dst A
//!     [--outer-src A6 --outer-dst A6] --dst-mac M [--src-mac M]
//!     [--hosts N] [--flows F] [--size 64..1518|imix] [--rate PPS]
//!     [--duration S] [--count N] [--stream ID] [--queue Q] [--batch B] [--inflight N] [--core C]
//!     [--endpoints E [--port-map FILE]]
//! ipoe-bench pktgen rx --iface IF [--queues 0,1] [--duration S] [--idle S]
//!     [--expect N] [--max-flows N] [--poll busy|adaptive] [--verify true|false]
//!     [--core C] [--ready-file PATH]
//!     [--tunnel-src A6 --tunnel-dst A6 --inner-src A4 --psid PSID/LEN/OFFSET]
//! ```
//!
//! Each prints one JSON report line on stdout when it ends (human notes go
//! to stderr). Both stop early, and still report, on SIGINT/SIGTERM. The
//! frame format and the flow numbering are in [`frames`].

pub mod frames;
pub mod rx;
pub mod tx;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{anyhow, bail, Context, Result};
use ipoe_dataplane::xsk::XdpStatistics;
use serde::{Deserialize, Serialize};

// The library API (the CLI above is one user of it).
#[allow(unused_imports)]
pub use frames::Traffic;
#[allow(unused_imports)]
pub use rx::{rx, RxArgs, RxReport};
#[allow(unused_imports)]
pub use tx::{tx, TxArgs, TxReport};

const USAGE: &str = "usage: ipoe-bench pktgen tx|rx --key value ... (see bench/src/pktgen/mod.rs)";

/// Entry point of `ipoe-bench pktgen ...`.
pub fn main_pktgen(args: &[String]) -> Result<()> {
    let Some(cmd) = args.first() else {
        bail!("{USAGE}");
    };
    let json = match cmd.as_str() {
        "tx" => {
            let a = TxArgs::from_opts(&Opts::parse(&args[1..], tx::KEYS)?)?;
            serde_json::to_string(&tx(&a)?)?
        }
        "rx" => {
            let a = RxArgs::from_opts(&Opts::parse(&args[1..], rx::KEYS)?)?;
            serde_json::to_string(&rx(&a)?)?
        }
        "help" | "--help" | "-h" => {
            eprintln!("{USAGE}");
            return Ok(());
        }
        other => bail!("pktgen: unknown subcommand {other:?}; {USAGE}"),
    };
    println!("{json}");
    Ok(())
}

/// `--key value` (or `--key=value`) options, checked against a list of keys.
pub(crate) struct Opts {
    pairs: Vec<(String, String)>,
}

impl Opts {
    pub(crate) fn parse(args: &[String], known: &[&str]) -> Result<Opts> {
        let mut pairs = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let Some(key) = a.strip_prefix("--") else {
                bail!("unexpected argument {a:?} (options are --key value)");
            };
            let (key, value) = match key.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => {
                    let v = it.next().ok_or_else(|| anyhow!("--{key} needs a value"))?;
                    (key.to_string(), v.clone())
                }
            };
            if !known.contains(&key.as_str()) {
                bail!("unknown option --{key} (known: --{})", known.join(", --"));
            }
            pairs.push((key, value));
        }
        Ok(Opts { pairs })
    }

    /// The last value given for `key`.
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn get<T: FromStr>(&self, key: &str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        self.str(key)
            .map(|v| v.parse::<T>().map_err(|e| anyhow!("--{key} {v:?}: {e}")))
            .transpose()
    }

    pub(crate) fn required<T: FromStr>(&self, key: &str) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        self.get(key)?.ok_or_else(|| anyhow!("--{key} is required"))
    }
}

/// A MAC address, written `aa:bb:cc:dd:ee:ff` in arguments and reports.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(try_from = "String", into = "String")]
pub struct Mac(pub [u8; 6]);

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Mac, String> {
        let mut m = [0u8; 6];
        let mut parts = s.trim().split(':');
        for b in m.iter_mut() {
            let p = parts.next().ok_or_else(|| format!("bad MAC {s:?}"))?;
            *b = u8::from_str_radix(p, 16).map_err(|_| format!("bad MAC {s:?}"))?;
        }
        if parts.next().is_some() {
            return Err(format!("bad MAC {s:?}"));
        }
        Ok(Mac(m))
    }
}

impl TryFrom<String> for Mac {
    type Error = String;
    fn try_from(s: String) -> Result<Mac, String> {
        s.parse()
    }
}

impl From<Mac> for String {
    fn from(m: Mac) -> String {
        m.to_string()
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// The MAC address of a local interface.
pub(crate) fn iface_mac(iface: &str) -> Result<Mac> {
    let path = format!("/sys/class/net/{iface}/address");
    let s = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    s.parse().map_err(|e: String| anyhow!("{path}: {e}"))
}

/// How many rx queues an interface has.
pub(crate) fn rx_queue_count(iface: &str) -> Result<u32> {
    let dir = format!("/sys/class/net/{iface}/queues");
    let n = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {dir}"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    Ok(n.max(1) as u32)
}

/// CLOCK_MONOTONIC in nanoseconds (the bench header's timestamp clock).
#[inline]
pub(crate) fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Make SIGINT and SIGTERM set the stop flag instead of killing us.
pub(crate) fn install_stop_handler() {
    // SAFETY: a zeroed sigaction with an async-signal-safe handler.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
    }
}

#[inline]
pub(crate) fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Pin the calling thread to one CPU.
pub(crate) fn pin_to_core(core: usize) -> Result<()> {
    // SAFETY: cpu_set_t is plain data; the call only reads it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("pinning to core {core}"));
    }
    Ok(())
}

/// XDP_STATISTICS of one AF_XDP socket, for the reports.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct XskStats {
    pub iface: String,
    pub queue: u32,
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

impl XskStats {
    pub(crate) fn new(iface: &str, queue: u32, s: &XdpStatistics) -> XskStats {
        XskStats {
            iface: iface.to_string(),
            queue,
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        }
    }
}

/// A boolean option value.
pub(crate) fn parse_bool(s: &str) -> Result<bool> {
    match s {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("expected true or false, got {s:?}"),
    }
}
