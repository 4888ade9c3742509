//! Issue 15, finding 9: a saved PD lease is never younger than the lease
//! file can prove.

use super::*;

const DAY: u64 = 86_400;

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A lease file as written before this change (no boot id, no save time),
/// obtained `age` seconds before `saved`.
fn old_format(obtained_unix: u64) -> StoredLease {
    let text = format!(
        r#"{{ "prefix": "2001:db8:0:110::", "prefix_len": 60, "preferred": 3600,
             "valid": 7200, "t1": 1800, "t2": 2880, "server_id": "000100010abc",
             "obtained_unix": {obtained_unix}, "dns_servers": [], "domains": [],
             "aftr_name": null, "sol_max_rt": null, "address": null }}"#
    );
    serde_json::from_str(&text).expect("an old lease file still parses")
}

/// The review's reproduction: saved today, read at boot with the clock
/// at 1970 + 10 s. The age is unknown, so the lease comes back with short
/// lifetimes (confirmed by the Rebind that follows), not as new.
#[test]
fn f9_wall_clock_behind_save_time_does_not_republish_full_lifetimes() {
    let now = Instant::now();
    let today = unix(SystemTime::now());
    let lease = old_format(today - 2 * DAY)
        .into_lease(now, UNIX_EPOCH + Duration::from_secs(10))
        .unwrap();
    assert!(lease.valid <= 900, "valid {}", lease.valid);
    assert!(lease.preferred <= 300, "preferred {}", lease.preferred);
    assert!(lease.t2 <= lease.valid && lease.t1 <= lease.preferred);
}

/// Within the same boot CLOCK_BOOTTIME gives the age, whatever the wall
/// clock says: the lease is as old as it is, full lifetimes left.
#[test]
fn f9_same_boot_age_comes_from_the_boot_clock() {
    let now = Instant::now() + Duration::from_secs(100_000);
    let mut stored = old_format(unix(SystemTime::now()));
    stored.boot_id = Some("b1".into());
    stored.obtained_boottime = Some(5_000);
    stored.saved_unix = Some(unix(SystemTime::now()));
    let boot = BootClock {
        boot_id: "b1".into(),
        secs: 6_000,
    };
    let lease = stored
        .into_lease_at(now, UNIX_EPOCH + Duration::from_secs(10), Some(&boot))
        .unwrap();
    assert_eq!(now - lease.obtained, Duration::from_secs(1_000));
    assert_eq!((lease.preferred, lease.valid), (3600, 7200));
}

/// Another boot with a wall clock past the save time: the wall clock is
/// all there is, and it is used. Behind the save time (but after the
/// obtained time): unknown again.
#[test]
fn f9_other_boot_uses_the_wall_clock_unless_it_is_behind_the_save() {
    let now = Instant::now() + Duration::from_secs(100_000);
    let t = unix(SystemTime::now());
    let mut stored = old_format(t - 1000);
    stored.boot_id = Some("b1".into());
    stored.obtained_boottime = Some(5_000);
    stored.saved_unix = Some(t - 500);
    let other = BootClock {
        boot_id: "b2".into(),
        secs: 20,
    };
    let wall = UNIX_EPOCH + Duration::from_secs(t);
    let lease = stored.into_lease_at(now, wall, Some(&other)).unwrap();
    assert_eq!(now - lease.obtained, Duration::from_secs(1000));
    assert_eq!(lease.valid, 7200);

    let mut stored = old_format(t - 1000);
    stored.saved_unix = Some(t - 500);
    let behind_save = UNIX_EPOCH + Duration::from_secs(t - 700);
    let lease = stored
        .into_lease_at(now, behind_save, Some(&other))
        .unwrap();
    assert_eq!(lease.obtained, now);
    assert_eq!((lease.preferred, lease.valid), (300, 900));
}

/// What is saved now carries the boot id, the boot-clock time it was
/// obtained at, the save time and the other prefixes of the IA_PD, and
/// reads back within the same boot with the boot clock's age.
#[test]
fn f9_saved_lease_carries_the_boot_clock() {
    let dir = std::env::temp_dir().join(format!("ipoed-state15-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let mut st = StateDir::open(&dir);
    let now = Instant::now();
    let mut lease = tests::lease(now);
    lease.extra_prefixes = vec![DelegatedPrefix {
        prefix: "2001:db8:0:200::".parse().unwrap(),
        prefix_len: 60,
        preferred: 0,
        valid: 1000,
    }];
    st.save_pd_lease(&lease, now);
    let stored: StoredLease = serde_json::from_slice(&st.read(PD_LEASE_FILE).unwrap()).unwrap();
    let boot = BootClock::now().expect("this system has a boot id");
    assert_eq!(stored.boot_id.as_deref(), Some(boot.boot_id.as_str()));
    assert!(stored.obtained_boottime.is_some() && stored.saved_unix.is_some());
    // Same boot, a wall clock thrown back to 1970: the age still holds.
    let back = stored
        .into_lease_at(now, UNIX_EPOCH + Duration::from_secs(5), Some(&boot))
        .unwrap();
    let age = now.duration_since(back.obtained).as_secs();
    assert!((99..=102).contains(&age), "age {age}");
    assert_eq!(back.valid, 7200);
    assert_eq!(back.extra_prefixes, lease.extra_prefixes);
    let _ = fs::remove_dir_all(&dir);
}
