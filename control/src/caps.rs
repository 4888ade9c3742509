//! Dropping privileges once the XDP programs are attached: what ipoed does
//! afterwards needs only its open sockets, the BPF maps (CAP_BPF, since
//! unprivileged bpf() is off on most distributions) and network admin and
//! raw access for what may still come (CAP_NET_ADMIN, CAP_NET_RAW). The
//! rest (CAP_SYS_ADMIN, CAP_DAC_OVERRIDE, CAP_SYS_MODULE, ...) goes, from
//! the permitted, effective, inheritable, ambient and bounding sets, so no
//! later exec or bug can get them back.
//!
//! Capabilities belong to a thread: this runs on the main thread before
//! the workers are spawned, and they inherit the reduced set.

pub const CAP_CHOWN: u32 = 0;
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;
pub const CAP_SETPCAP: u32 = 8;
pub const CAP_BPF: u32 = 39;

/// What ipoed keeps.
pub const KEEP: &[u32] = &[CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF];

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const VERSION_3: u32 = 0x2008_0522;

fn capget() -> Option<[Data; 2]> {
    let mut h = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget with a v3 header fills two data structs.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) };
    (rc == 0).then_some(d)
}

fn has(d: &[Data; 2], cap: u32, f: fn(&Data) -> u32) -> bool {
    f(&d[(cap / 32) as usize]) & (1 << (cap % 32)) != 0
}

/// The effective set of the calling thread as a 64-bit mask.
pub fn effective() -> u64 {
    capget().map_or(0, |d| {
        u64::from(d[0].effective) | (u64::from(d[1].effective) << 32)
    })
}

/// Keep only `keep` (those of them we hold); returns the mask kept, or an
/// error text. Without CAP_SETPCAP (not root) there is nothing to drop.
pub fn drop_all_but(keep: &[u32]) -> Result<u64, String> {
    let Some(cur) = capget() else {
        return Err(format!("capget: {}", std::io::Error::last_os_error()));
    };
    let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40);
    // The bounding set first: dropping from it needs CAP_SETPCAP, which
    // goes with the rest below.
    if has(&cur, CAP_SETPCAP, |d| d.effective) {
        for cap in 0..=last_cap {
            if !keep.contains(&cap) {
                // SAFETY: prctl with integer arguments.
                unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            }
        }
    }
    // SAFETY: prctl with integer arguments; clears the ambient set.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    let mut mask = [0u32; 2];
    for &cap in keep {
        if has(&cur, cap, |d| d.permitted) {
            mask[(cap / 32) as usize] |= 1 << (cap % 32);
        }
    }
    let mut h = Header {
        version: VERSION_3,
        pid: 0,
    };
    let d = [
        Data {
            effective: mask[0],
            permitted: mask[0],
            inheritable: 0,
        },
        Data {
            effective: mask[1],
            permitted: mask[1],
            inheritable: 0,
        },
    ];
    // SAFETY: capset with a v3 header and two data structs.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) };
    if rc != 0 {
        return Err(format!("capset: {}", std::io::Error::last_os_error()));
    }
    // No exec of ours may gain privileges again.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    Ok(u64::from(mask[0]) | (u64::from(mask[1]) << 32))
}

/// Names of the capabilities in a mask, for the log.
pub fn names(mask: u64) -> Vec<&'static str> {
    [
        (CAP_CHOWN, "chown"),
        (CAP_SETPCAP, "setpcap"),
        (CAP_NET_ADMIN, "net_admin"),
        (CAP_NET_RAW, "net_raw"),
        (CAP_BPF, "bpf"),
    ]
    .iter()
    .filter(|(c, _)| mask & (1 << c) != 0)
    .map(|(_, n)| *n)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a thread of its own (capabilities are per thread), so the other
    /// tests keep theirs.
    #[test]
    fn dropping_keeps_only_what_is_asked() {
        std::thread::spawn(|| {
            let before = effective();
            match drop_all_but(&[CAP_NET_RAW]) {
                Ok(kept) => {
                    assert_eq!(effective(), kept);
                    assert_eq!(kept & !(1 << CAP_NET_RAW), 0);
                    assert_eq!(kept, before & (1 << CAP_NET_RAW));
                }
                Err(e) => panic!("{e}"),
            }
        })
        .join()
        .unwrap();
        assert_eq!(names(1 << CAP_BPF | 1 << CAP_NET_RAW), ["net_raw", "bpf"]);
    }
}
