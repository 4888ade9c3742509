//! What must survive a restart, kept in `control.state_dir`: the DUID, the
//! RFC 7217 secret and the delegated-prefix lease.
//!
//! Every file is replaced atomically (temporary file, fsync, rename, fsync
//! of the directory), so a crash or a full disk leaves the last good version
//! in place. A file that does not parse is logged and treated as absent:
//! the daemon must start whatever the disk holds.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv6Addr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use ipoe_proto::dhcp6c::{DelegatedPrefix, Lease};

pub const DUID_FILE: &str = "duid";
pub const SECRET_FILE: &str = "stable-privacy.key";
pub const PD_LEASE_FILE: &str = "pd-lease.json";

/// A saved lease whose age the file cannot prove (another boot and a wall
/// clock behind the save time: an RTC-less board at boot) is published
/// with at most these lifetimes until a Rebind confirms it (RFC 9096 3:
/// never advertise beyond what is known valid). The valid one is also the
/// Rebind's MRD: a silent server lets the prefix go after 15 minutes.
pub const UNPROVEN_PREFERRED: u32 = 300;
pub const UNPROVEN_VALID: u32 = 900;

/// State files are small; anything bigger is not ours.
const MAX_STATE_FILE: u64 = 1 << 20;

pub struct StateDir {
    path: PathBuf,
    /// Write failures, for `ipoectl` and the log.
    pub write_errors: u64,
    pub last_error: Option<String>,
    /// The newest contents of each file whose write failed, written again
    /// by `retry` (a full or read-only disk may recover).
    pending: Vec<(String, Vec<u8>)>,
    /// Writes are failing: logged once, then again when they work.
    failing: bool,
    next_retry: Option<Instant>,
}

/// How often failed writes are tried again.
const RETRY_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl StateDir {
    /// Creates the directory (mode 0700) if needed. Failing to create it is
    /// not fatal: the router runs without persistence and says so.
    pub fn open(path: &Path) -> Self {
        if let Err(e) = fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
        {
            log::error!(
                "state_dir {}: {e}; state will not survive a restart",
                path.display()
            );
        }
        Self {
            path: path.to_path_buf(),
            write_errors: 0,
            last_error: None,
            pending: Vec::new(),
            failing: false,
            next_retry: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces `name` with `bytes` atomically. On failure the previous
    /// file is intact; the error is logged, counted and returned.
    pub fn write_atomic(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let result = write_atomic(&self.path, name, bytes);
        self.pending.retain(|(n, _)| n != name);
        match &result {
            Err(e) => {
                self.write_errors += 1;
                let msg = format!("writing {}: {e}", self.path.join(name).display());
                if !self.failing {
                    log::error!(
                        "{msg} (the previous version is kept; retrying every {}s)",
                        RETRY_EVERY.as_secs()
                    );
                } else {
                    log::debug!("{msg}");
                }
                self.failing = true;
                self.last_error = Some(msg);
                self.pending.push((name.to_owned(), bytes.to_vec()));
                self.next_retry
                    .get_or_insert_with(|| Instant::now() + RETRY_EVERY);
            }
            Ok(()) if self.failing && self.pending.is_empty() => {
                self.failing = false;
                log::info!(
                    "state_dir {}: writing works again, state saved",
                    self.path.display()
                );
            }
            Ok(()) => {}
        }
        result
    }

    /// Write again what failed, when it is time; returns when to call again.
    pub fn retry(&mut self, now: Instant) -> Option<Instant> {
        let due = self.next_retry?;
        if now < due {
            return Some(due);
        }
        self.next_retry = None;
        for (name, bytes) in std::mem::take(&mut self.pending) {
            let _ = self.write_atomic(&name, &bytes);
        }
        self.next_retry
    }

    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        let path = self.path.join(name);
        let file = File::open(&path).ok()?;
        match file.metadata() {
            Ok(m) if m.len() <= MAX_STATE_FILE => {}
            _ => {
                log::warn!("{}: not a state file of ours, ignored", path.display());
                return None;
            }
        }
        fs::read(&path).ok()
    }

    pub fn remove(&mut self, name: &str) {
        let path = self.path.join(name);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("removing {}: {e}", path.display()),
        }
    }

    /// The DUID kept from an earlier run, else `make()`'s, saved now. A DUID
    /// must never change (RFC 8415 11): servers key bindings on it.
    pub fn duid(&mut self, make: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
        if let Some(duid) = self.read(DUID_FILE).and_then(|b| parse_hex(&b)) {
            if (3..=130).contains(&duid.len()) {
                return duid;
            }
        }
        let duid = make();
        log::info!("new DUID {}", hex(&duid));
        let _ = self.write_atomic(DUID_FILE, format!("{}\n", hex(&duid)).as_bytes());
        duid
    }

    /// The RFC 7217 secret key, generated once.
    pub fn stable_privacy_secret(&mut self) -> [u8; 32] {
        if let Some(key) = self.read(SECRET_FILE).and_then(|b| parse_hex(&b)) {
            if let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) {
                return key;
            }
        }
        let mut key = [0u8; 32];
        ipoe_proto::osrand::fill_random(&mut key);
        let _ = self.write_atomic(SECRET_FILE, format!("{}\n", hex(&key)).as_bytes());
        key
    }

    /// Saves the lease; `now` maps the lease's `Instant`s to wall-clock time.
    pub fn save_pd_lease(&mut self, lease: &Lease, now: Instant) {
        let stored =
            StoredLease::from_lease(lease, now, SystemTime::now(), BootClock::now().as_ref());
        let mut text = serde_json::to_string_pretty(&stored).unwrap_or_default();
        text.push('\n');
        let _ = self.write_atomic(PD_LEASE_FILE, text.as_bytes());
    }

    /// The saved lease, with `obtained` mapped back onto this run's clock;
    /// `None` if there is none or it does not parse.
    pub fn load_pd_lease(&self, now: Instant) -> Option<Lease> {
        let bytes = self.read(PD_LEASE_FILE)?;
        match serde_json::from_slice::<StoredLease>(&bytes) {
            Ok(s) => s.into_lease(now, SystemTime::now()),
            Err(e) => {
                log::warn!("{PD_LEASE_FILE}: {e}; starting without a lease");
                None
            }
        }
    }
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    } else {
        sync_dir(dir);
    }
    result
}

/// Makes a rename durable.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// This boot's identity and CLOCK_BOOTTIME: an age measured on it holds
/// whatever the wall clock says (RTC-less boards start in 1970 or at the
/// last saved stamp).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootClock {
    pub boot_id: String,
    /// CLOCK_BOOTTIME in seconds (counts suspend, unlike CLOCK_MONOTONIC).
    pub secs: u64,
}

impl BootClock {
    pub fn now() -> Option<Self> {
        let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec we own.
        if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
            return None;
        }
        Some(Self {
            boot_id: id.trim().to_owned(),
            secs: u64::try_from(ts.tv_sec).ok()?,
        })
    }
}

/// The lease as written to disk: wall-clock time instead of `Instant`,
/// binary as hex. Fields after `address` are newer; files without them
/// still load.
#[derive(Serialize, Deserialize)]
struct StoredLease {
    prefix: Ipv6Addr,
    prefix_len: u8,
    preferred: u32,
    valid: u32,
    t1: u32,
    t2: u32,
    server_id: String,
    /// Seconds since the Unix epoch.
    obtained_unix: u64,
    #[serde(default)]
    dns_servers: Vec<Ipv6Addr>,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    aftr_name: Option<String>,
    #[serde(default)]
    sol_max_rt: Option<u32>,
    #[serde(default)]
    address: Option<(Ipv6Addr, u32, u32)>,
    #[serde(default)]
    extra_prefixes: Vec<DelegatedPrefix>,
    /// Wall clock at the save: a clock behind it has gone back.
    #[serde(default)]
    saved_unix: Option<u64>,
    /// The boot the lease was saved in, and CLOCK_BOOTTIME (s) when it was
    /// obtained: within that boot the age is known exactly.
    #[serde(default)]
    boot_id: Option<String>,
    #[serde(default)]
    obtained_boottime: Option<u64>,
}

impl StoredLease {
    fn from_lease(l: &Lease, now: Instant, wall: SystemTime, boot: Option<&BootClock>) -> Self {
        let age = now.saturating_duration_since(l.obtained);
        let obtained = wall
            .checked_sub(age)
            .unwrap_or(UNIX_EPOCH)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            prefix: l.prefix,
            prefix_len: l.prefix_len,
            preferred: l.preferred,
            valid: l.valid,
            t1: l.t1,
            t2: l.t2,
            server_id: hex(&l.server_id),
            obtained_unix: obtained.as_secs(),
            dns_servers: l.dns_servers.clone(),
            domains: l.domains.clone(),
            aftr_name: l.aftr_name.clone(),
            sol_max_rt: l.sol_max_rt,
            address: l.address,
            extra_prefixes: l.extra_prefixes.clone(),
            saved_unix: wall.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs()),
            boot_id: boot.map(|b| b.boot_id.clone()),
            obtained_boottime: boot.and_then(|b| b.secs.checked_sub(age.as_secs())),
        }
    }

    /// The lease on this run's clock, the boot read from the system.
    fn into_lease(self, now: Instant, wall: SystemTime) -> Option<Lease> {
        self.into_lease_at(now, wall, BootClock::now().as_ref())
    }

    /// The age is what the file can prove: CLOCK_BOOTTIME within the same
    /// boot; else the wall clock, unless it is behind the save time (it
    /// went back: an RTC-less board at boot), and then the age is unknown
    /// and the lease comes back as just obtained with short lifetimes
    /// (UNPROVEN_*) until its Rebind is answered.
    fn into_lease_at(
        self,
        now: Instant,
        wall: SystemTime,
        boot: Option<&BootClock>,
    ) -> Option<Lease> {
        if self.prefix_len > 128 || self.preferred > self.valid {
            log::warn!("{PD_LEASE_FILE}: inconsistent lease, ignored");
            return None;
        }
        let same_boot = match (boot, &self.boot_id, self.obtained_boottime) {
            (Some(b), Some(id), Some(at)) if *id == b.boot_id => b.secs.checked_sub(at),
            _ => None,
        };
        let wall_unix = wall.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs());
        let wall_age = wall_unix.and_then(|w| {
            let behind = w < self.obtained_unix || self.saved_unix.is_some_and(|s| w < s);
            (!behind).then(|| w - self.obtained_unix)
        });
        let (age, proven) = match (same_boot, wall_age) {
            (Some(age), _) | (None, Some(age)) => (age, true),
            (None, None) => (0, false),
        };
        let obtained = now.checked_sub(Duration::from_secs(age))?;
        let (mut preferred, mut valid, mut t1, mut t2) =
            (self.preferred, self.valid, self.t1, self.t2);
        if !proven {
            log::warn!(
                "{PD_LEASE_FILE}: the wall clock is behind the save time and the boot \
                 clock cannot tell the lease's age; advertising it with short lifetimes \
                 until the server confirms it"
            );
            valid = valid.min(UNPROVEN_VALID);
            preferred = preferred.min(UNPROVEN_PREFERRED);
            t1 = t1.min(preferred);
            t2 = t2.min(valid);
        }
        Some(Lease {
            prefix: self.prefix,
            prefix_len: self.prefix_len,
            preferred,
            valid,
            t1,
            t2,
            server_id: parse_hex(self.server_id.as_bytes())?,
            obtained,
            dns_servers: self.dns_servers,
            domains: self.domains,
            aftr_name: self.aftr_name,
            sol_max_rt: self.sol_max_rt,
            address: self.address,
            extra_prefixes: if proven {
                self.extra_prefixes
            } else {
                // Their lifetimes are as unknown; only the main one is
                // confirmed.
                Vec::new()
            },
        })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex digits, surrounding whitespace allowed; `None` on anything else.
pub fn parse_hex(text: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?.trim();
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod issue15_tests;

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn lease(now: Instant) -> Lease {
        Lease {
            prefix: "2001:db8:0:110::".parse().unwrap(),
            prefix_len: 60,
            preferred: 3600,
            valid: 7200,
            t1: 1800,
            t2: 2880,
            server_id: vec![0, 1, 0, 1, 0xab, 0xcd],
            obtained: now - Duration::from_secs(100),
            dns_servers: vec!["2001:db8:0:100::1".parse().unwrap()],
            domains: vec!["lab.example".into()],
            aftr_name: Some("aftr.lab.example".into()),
            sol_max_rt: None,
            address: None,
            extra_prefixes: Vec::new(),
        }
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ipoed-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn lease_round_trips_across_clocks() {
        let dir = tmpdir("lease");
        let mut st = StateDir::open(&dir);
        let now = Instant::now();
        let l = lease(now);
        st.save_pd_lease(&l, now);
        // A later run (another boot): its Instant is unrelated, the wall
        // clock moved on.
        let later = Instant::now() + Duration::from_secs(5000);
        let stored: StoredLease = serde_json::from_slice(&st.read(PD_LEASE_FILE).unwrap()).unwrap();
        let wall = SystemTime::now() + Duration::from_secs(50);
        let back = stored.into_lease_at(later, wall, None).unwrap();
        let age = later.duration_since(back.obtained).as_secs();
        assert!((149..=151).contains(&age), "age {age}");
        assert_eq!(back.prefix, l.prefix);
        assert_eq!(back.server_id, l.server_id);
        assert_eq!(back.aftr_name, l.aftr_name);
        assert_eq!(st.load_pd_lease(now).unwrap().prefix, l.prefix);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn duid_is_generated_once() {
        let dir = tmpdir("duid");
        let mut st = StateDir::open(&dir);
        let first = st.duid(|| vec![0, 3, 0, 1, 2, 0, 0, 0, 2, 2]);
        let second = StateDir::open(&dir).duid(|| vec![9; 10]);
        assert_eq!(first, second);
        let key = st.stable_privacy_secret();
        assert_eq!(StateDir::open(&dir).stable_privacy_secret(), key);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn garbage_state_is_ignored_and_failed_writes_keep_the_old_file() {
        let dir = tmpdir("garbage");
        let mut st = StateDir::open(&dir);
        st.write_atomic(PD_LEASE_FILE, b"{not json").unwrap();
        assert!(st.load_pd_lease(Instant::now()).is_none());
        st.write_atomic(DUID_FILE, b"zz\n").unwrap();
        assert_eq!(st.duid(|| vec![0, 3, 0, 1, 1, 2, 3, 4, 5, 6]).len(), 10);
        // A directory in the way of the rename makes the write fail.
        let good = st.read(DUID_FILE).unwrap();
        fs::create_dir_all(dir.join("blocked")).unwrap();
        assert!(st.write_atomic("blocked", b"x").is_err());
        assert_eq!(st.write_errors, 1);
        assert_eq!(st.read(DUID_FILE).unwrap(), good);
        assert!(!dir.join(".blocked.tmp").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    /// A write that failed is tried again every 5 s with its newest
    /// contents, until the disk takes it.
    #[test]
    fn failed_writes_are_retried_until_they_succeed() {
        let dir = tmpdir("retry");
        let mut st = StateDir::open(&dir);
        let t0 = Instant::now();
        fs::create_dir_all(dir.join("leases")).unwrap();
        assert!(st.write_atomic("leases", b"v1").is_err());
        assert!(st.write_atomic("leases", b"v2").is_err());
        assert_eq!(st.pending.len(), 1, "only the newest contents wait");
        let due = st.retry(t0).expect("a retry is scheduled");
        assert!(due > t0);
        // Still blocked at the retry: counted again, still pending.
        assert!(st.retry(due).is_some());
        assert_eq!(st.write_errors, 3);
        // The disk recovers.
        fs::remove_dir(dir.join("leases")).unwrap();
        let due = st.next_retry.unwrap();
        assert_eq!(st.retry(due), None);
        assert_eq!(fs::read(dir.join("leases")).unwrap(), b"v2");
        assert!(!st.failing && st.pending.is_empty());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn hex_parsing_is_strict() {
        assert_eq!(parse_hex(b" 00ff\n"), Some(vec![0, 255]));
        assert_eq!(parse_hex(b"0"), None);
        assert_eq!(parse_hex(b"0g"), None);
        assert_eq!(parse_hex("é0".as_bytes()), None);
    }
}
