//! The darwin reader over SimKernel: one-pass counts equal the kernel's filtered listings on
//! random tables, privileged and unprivileged readings agree, and per-pid failures are
//! counted, not fatal.

use std::collections::{BTreeMap, HashMap};

use libproc_exporter::host::Limits;
use libproc_exporter::libproc::sim::{Call, SimKernel, SimProc, SimTable};
use libproc_exporter::libproc::{self, Errno, ListFilter, PROC_CALLNUM_PIDINFO};
use libproc_exporter::table::darwin::{DarwinSource, TtyDevices};
use libproc_exporter::table::{Process, Snapshot, Tty};

/// xorshift64*: a small deterministic generator, so a failing seed can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

pub const UIDS: [u32; 5] = [0, 1, 88, 501, 502];

/// Terminal devices: five in use at most, two never used.
pub fn ttys() -> Vec<Tty> {
    (0..7).map(|i| Tty { dev: 0x1000_0000 + i, name: format!("ttys{i:03}") }).collect()
}

/// A random table: forks from random parents, new sessions on terminals, setuid programs,
/// stopped processes, zombies and reaped children, execs. No tracing: a traced process
/// matches PROC_PPID_ONLY by its original parent, which short info does not carry.
pub fn random_table(rng: &mut Rng, size: usize) -> SimTable {
    let devs: Vec<u32> = (0..5).map(|i| 0x1000_0000 + i).collect();
    random_table_on(rng, size, &devs)
}

/// [`random_table`] with logins on the terminal devices `devs`.
pub fn random_table_on(rng: &mut Rng, size: usize, devs: &[u32]) -> SimTable {
    let mut t = SimTable::booted();
    let mut pids = vec![1];
    for _ in 0..size {
        let parent = pids[rng.below(pids.len() as u64) as usize];
        let pid = t.fork(parent);
        pids.push(pid);
        let p = t.get_mut(pid).unwrap();
        if rng.chance(15) {
            // A login: new session and group, maybe a terminal, a user.
            p.sid = pid;
            p.pgid = pid;
            let uid = UIDS[rng.below(UIDS.len() as u64) as usize];
            p.euid = uid;
            p.ruid = uid;
            if rng.chance(60) {
                p.controlt = true;
                p.session_tty = devs[rng.below(devs.len() as u64) as usize];
            } else {
                p.controlt = false;
                p.session_tty = libproc::NODEV;
            }
        }
        if rng.chance(10) {
            p.pgid = pid; // a job of its own
        }
        if rng.chance(4) {
            // Gave up its controlling terminal (TIOCNOTTY) but stays in the session.
            p.controlt = false;
        }
        if rng.chance(5) {
            p.euid = 0; // setuid root
        }
        if rng.chance(5) {
            t.set_stopped(pid, true);
        }
        if rng.chance(3) {
            t.exec(pid, "exec'd");
        }
    }
    for &pid in &pids[1..] {
        if rng.chance(8) {
            t.exit(pid);
            if rng.chance(50) {
                t.reap(pid);
            }
        }
    }
    t
}

/// A reader over `kernel`; it probes privilege as on a Mac, so the kernel's caller euid
/// (0 or 501) decides whether full or short info is read.
fn source(kernel: SimKernel) -> DarwinSource<SimKernel> {
    let euid = kernel.caller_euid();
    let limits = Limits {
        maxproc: Some(4176),
        maxprocperuid: Some(2784),
        ptmx_max: Some(511),
        ..Limits::default()
    };
    DarwinSource::new(kernel, TtyDevices::Fixed(ttys()), Some(limits), BTreeMap::new(), euid)
}

fn counts(snapshot: &Snapshot, key: impl Fn(&Process) -> Option<u32>) -> HashMap<u32, usize> {
    let mut out = HashMap::new();
    for p in &snapshot.processes {
        if let Some(k) = key(p) {
            *out.entry(k).or_insert(0) += 1;
        }
    }
    out
}

/// Every one-pass count equals the length of the kernel's listing for that key.
fn assert_counts_match_listings(seed: u64, snapshot: &Snapshot, kernel: &SimKernel) {
    let check =
        |what: &str, key: &dyn Fn(&Process) -> Option<u32>, filter: &dyn Fn(u32) -> ListFilter| {
            for (k, n) in counts(snapshot, key) {
                let listed = libproc::list_pids(kernel, filter(k)).unwrap().len();
                assert_eq!(
                    n, listed,
                    "seed {seed}: {what} {k}: one pass counted {n}, the listing has {listed}"
                );
            }
        };
    check("euid", &|p| Some(p.euid), &ListFilter::Uid);
    check("ruid", &|p| Some(p.ruid), &ListFilter::Ruid);
    check("ppid", &|p| Some(p.ppid as u32), &|k| ListFilter::Ppid(k as i32));
    check("pgid", &|p| Some(p.pgid as u32), &|k| ListFilter::Pgrp(k as i32));
    check("tty", &|p| p.tty, &ListFilter::Tty);
    // And the terminals nobody uses list nobody.
    let used = counts(snapshot, |p| p.tty);
    for tty in ttys() {
        if !used.contains_key(&tty.dev) {
            assert!(libproc::pids_for_tty(kernel, tty.dev).unwrap().is_empty(), "seed {seed}");
        }
    }
}

#[test]
fn one_pass_counts_equal_filtered_listings_on_random_tables() {
    for seed in 0..40 {
        let mut rng = Rng::new(seed);
        let size = 20 + rng.below(400) as usize;
        let mut src = source(SimKernel::new(random_table(&mut rng, size), 501));
        let snapshot = src.read().unwrap();
        assert!(!snapshot.privileged, "seed {seed}: alice is not privileged");
        assert_eq!(snapshot.unreadable.total(), 0, "seed {seed}");
        assert_counts_match_listings(seed, &snapshot, src.kernel_ref());
    }
}

#[test]
fn as_root_full_info_ttys_agree_with_tty_listings() {
    for seed in 100..130 {
        let mut rng = Rng::new(seed);
        let size = 20 + rng.below(300) as usize;
        let mut src = source(SimKernel::new(random_table(&mut rng, size), 0));
        let snapshot = src.read().unwrap();
        assert!(snapshot.privileged, "seed {seed}: root is privileged");
        for tty in ttys() {
            let mut listed = libproc::pids_for_tty(src.kernel_ref(), tty.dev).unwrap();
            listed.sort();
            let from_info: Vec<i32> = snapshot
                .processes
                .iter()
                .filter(|p| p.tty == Some(tty.dev))
                .map(|p| p.pid)
                .collect();
            assert_eq!(from_info, listed, "seed {seed}: {}", tty.name);
        }
        assert_counts_match_listings(seed, &snapshot, src.kernel_ref());
    }
}

/// What both readings must agree on: everything but the start time, which only full
/// information has.
fn comparable(snapshot: &Snapshot) -> Vec<Process> {
    snapshot
        .processes
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p.start = None;
            // What dates a leftover: the start time where full info is readable, else its
            // uniqueid (read only then), so which one a reading has depends on privilege.
            p.uniqueid = None;
            // SLEADER and CTTY are computed for full info only (reference §3.4).
            p.flags = p.flags.map(|f| f & !(libproc::PROC_FLAG_SLEADER | libproc::PROC_FLAG_CTTY));
            p
        })
        .collect()
}

#[test]
fn unprivileged_and_privileged_readings_of_one_table_agree() {
    for seed in 200..220 {
        let mut rng = Rng::new(seed);
        let table = random_table(&mut rng, 300);
        // The same table twice: SimTable is rebuilt from the same seed.
        let mut rng2 = Rng::new(seed);
        let table2 = random_table(&mut rng2, 300);
        let mut unprivileged = source(SimKernel::new(table, 501));
        let mut privileged = source(SimKernel::new(table2, 0));
        let a = unprivileged.read().unwrap();
        let b = privileged.read().unwrap();
        assert_eq!((a.privileged, b.privileged), (false, true));
        assert_eq!(comparable(&a), comparable(&b), "seed {seed}");
        assert_eq!(a.unreadable, b.unreadable);
    }
}

#[test]
fn pids_that_exit_between_listing_and_reading_are_counted_as_vanished() {
    let mut t = SimTable::booted();
    for i in 0..20 {
        t.insert(SimProc::new(100 + i, 1, "worker").with_uid(501)).unwrap();
    }
    let kernel = SimKernel::new(t, 501);
    // Calls: 0 privilege probe, 1 size probe, 2 fill; the hook runs before call 3, the first
    // per-pid read: five listed processes exit and are reaped, two exit and stay zombies.
    kernel.set_hook(Box::new(|table, call| {
        if call.index == 3 {
            for pid in 100..105 {
                table.kill(pid);
            }
            table.exit(110);
            table.exit(111);
        }
    }));
    let mut src = source(kernel);
    let snapshot = src.read().expect("vanished pids do not fail a snapshot");
    assert_eq!(snapshot.unreadable.vanished, 5);
    assert_eq!(snapshot.unreadable.permission + snapshot.unreadable.other, 0);
    assert_eq!(snapshot.processes.len(), 2 + 20 - 5);
    // Zombies are still read (arg = 1), as zombies.
    assert!(snapshot.find(110).unwrap().is_zombie());
    assert!(snapshot.find(100).is_none());
}

#[test]
fn a_sandbox_denial_is_counted_as_permission() {
    let mut t = SimTable::booted();
    for i in 0..10 {
        t.insert(SimProc::new(100 + i, 1, "app").with_uid(501)).unwrap();
    }
    // A sandbox profile that denies pid info about pids 100-102 with EPERM.
    let deny = |call: &Call, target: Option<&SimProc>| {
        let denied = call.callnum == PROC_CALLNUM_PIDINFO
            && target.is_some_and(|p| (100..103).contains(&p.pid));
        denied.then_some(Errno::EPERM)
    };
    let kernel = SimKernel::new(t, 501).with_policy(Box::new(deny));
    let mut src = source(kernel);
    let snapshot = src.read().unwrap();
    assert_eq!(snapshot.unreadable.permission, 3);
    assert_eq!(snapshot.unreadable.vanished, 0);
    assert_eq!(snapshot.processes.len(), 2 + 10 - 3);
    // Any other errno is "other".
    let mut t = SimTable::booted();
    t.insert(SimProc::new(100, 1, "app")).unwrap();
    let odd = |call: &Call, _: Option<&SimProc>| {
        (call.callnum == PROC_CALLNUM_PIDINFO && call.pid == 100).then_some(Errno(libc::EIO))
    };
    let mut src = source(SimKernel::new(t, 501).with_policy(Box::new(odd)));
    assert_eq!(src.read().unwrap().unreadable.other, 1);
}

#[test]
fn a_failed_pid_listing_fails_the_snapshot_with_the_call_named() {
    let deny = |call: &Call, _: Option<&SimProc>| {
        (call.callnum == libproc::PROC_CALLNUM_LISTPIDS).then_some(Errno::EPERM)
    };
    let kernel = SimKernel::new(SimTable::booted(), 501).with_policy(Box::new(deny));
    let mut src = source(kernel);
    let err = src.read().unwrap_err();
    assert_eq!(err.to_string(), "listing pids with PROC_ALL_PIDS: EPERM (Operation not permitted)");
}

#[test]
fn snapshot_states_follow_xnu() {
    let mut t = SimTable::booted();
    t.insert(SimProc::new(100, 1, "stopped")).unwrap();
    t.insert(SimProc::new(101, 1, "zombie")).unwrap();
    let mut idl = SimProc::new(102, 1, "forking");
    idl.status = libproc::SIDL;
    t.insert(idl).unwrap();
    t.insert(SimProc::new(103, 1, "exiting")).unwrap();
    t.set_stopped(100, true);
    t.exit(101);
    t.begin_exit(103);
    let mut src = source(SimKernel::new(t, 0));
    let s = src.read().unwrap();
    let state = |pid| s.find(pid).unwrap().state.label();
    assert_eq!(
        [state(1), state(100), state(101), state(102), state(103)],
        ["alive", "stopped", "zombie", "created", "zombie"]
    );
}

/// A laptop's /dev: console, 128 legacy ptys, open ptmx ptys, Bluetooth serial (dial-in and
/// call-out), with logins on any of them and some sessions' terminals revoked.
fn laptop_dev() -> Vec<Tty> {
    libproc_exporter::libproc::sim::mac_dev(9)
        .into_iter()
        .map(|(name, dev)| Tty { dev, name })
        .collect()
}

fn laptop_table(seed: u64) -> SimTable {
    let devs: Vec<u32> = laptop_dev().iter().map(|t| t.dev).collect();
    let mut rng = Rng::new(seed);
    let mut table = random_table_on(&mut rng, 300, &devs);
    let leaders: Vec<i32> =
        table.procs().filter(|p| p.sid == p.pid && p.controlt).map(|p| p.pid).collect();
    for sid in leaders {
        if rng.chance(10) {
            table.revoke_tty(sid);
        }
    }
    table
}

#[test]
fn readings_agree_on_random_tables_with_a_laptops_dev() {
    let limits = Some(Limits::default());
    for seed in 300..330 {
        let read = |euid: u32| {
            let fixed = TtyDevices::Fixed(laptop_dev());
            let kernel = SimKernel::new(laptop_table(seed), euid);
            DarwinSource::new(kernel, fixed, limits, BTreeMap::new(), euid).read().unwrap()
        };
        let unprivileged = read(501);
        let privileged = read(0);
        assert_eq!(comparable(&unprivileged), comparable(&privileged), "seed {seed}");
        // Every terminal in use has its /dev name: cu.*, legacy ptys and the console too.
        for p in &unprivileged.processes {
            if let Some(dev) = p.tty {
                assert!(unprivileged.tty_name(dev).is_some(), "seed {seed}: {dev:#x} unnamed");
            }
        }
    }
}
