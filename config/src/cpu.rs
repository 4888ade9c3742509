//! Which CPU ids exist on this machine, for checking `dataplane.cores`.

use std::fmt;
use std::sync::OnceLock;

/// The CPUs present on this machine, as inclusive ranges of ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CpuSet(Vec<(usize, usize)>);

impl CpuSet {
    pub(crate) fn contains(&self, id: usize) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&id))
    }

    /// Parses the kernel's cpulist format, e.g. `0-3,8,10-11`.
    pub(crate) fn parse_list(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let ranges = text
            .split(',')
            .map(|part| {
                let (lo, hi) = part.split_once('-').unwrap_or((part, part));
                let (lo, hi) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
                (lo <= hi).then_some((lo, hi))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self(ranges))
    }
}

impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// The present CPUs, read once. `present` (not `online`) because a CPU that
/// is offline now may be brought up before the daemon pins a worker to it.
pub(crate) fn present() -> &'static CpuSet {
    static PRESENT: OnceLock<CpuSet> = OnceLock::new();
    PRESENT.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/present")
            .ok()
            .and_then(|text| CpuSet::parse_list(&text))
            .unwrap_or_else(|| {
                // No sysfs (e.g. in some containers): CPUs are numbered 0..n.
                // SAFETY: sysconf has no preconditions.
                let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
                let n = usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1);
                CpuSet(vec![(0, n - 1)])
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpulists() {
        let set = CpuSet::parse_list("0-3,8,10-11\n").unwrap();
        assert!(set.contains(0) && set.contains(3) && set.contains(8) && set.contains(11));
        assert!(!set.contains(4) && !set.contains(9) && !set.contains(12));
        assert_eq!(set.to_string(), "0-3,8,10-11");
        assert_eq!(CpuSet::parse_list("0\n"), Some(CpuSet(vec![(0, 0)])));
        for bad in ["", "a", "3-1", "0-", "0,,1"] {
            assert_eq!(CpuSet::parse_list(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cpu_zero_is_always_present() {
        assert!(present().contains(0));
        assert!(!present().contains(4096));
    }
}
