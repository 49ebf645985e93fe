//! `libproc_forks_total`: on SimKernel the counter follows xnu's uniqueid rules exactly,
//! blind spot included (reference §3.10), costs one call in the common case, and never goes
//! back; on Linux a storm of short-lived processes between two scrapes shows in it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use libproc_exporter::libproc::sim::{SimKernel, SimProc, SimTable};
use libproc_exporter::libproc::{
    self, Errno, Kernel, PROC_CALLNUM_PIDINFO, PROC_PIDUNIQIDENTIFIERINFO,
};
use libproc_exporter::table::darwin::{DarwinSource, TtyDevices};

/// A user who is not root, reading other users' processes.
const USER: u32 = 501;

fn source(kernel: Arc<SimKernel>) -> DarwinSource<Arc<SimKernel>> {
    DarwinSource::new(kernel, TtyDevices::Fixed(Vec::new()), None, BTreeMap::new(), USER)
}

fn forks(source: &mut DarwinSource<Arc<SimKernel>>) -> u64 {
    source.read().expect("snapshot").forks.expect("a libproc source reads the fork counter")
}

/// launchd, a root daemon and a user's shell, each forked once: uniqueids 1, 2, 3.
fn machine() -> (Arc<SimKernel>, i32) {
    let mut table = SimTable::booted();
    let daemon = table.fork(1);
    let shell = table.fork(1);
    table.get_mut(shell).unwrap().euid = 502;
    assert_eq!(table.get(daemon).unwrap().uniqueid, 2);
    (Arc::new(SimKernel::new(table, USER)), shell)
}

#[test]
fn flavor_17_answers_any_user_and_zombies_only_when_asked() {
    let (kernel, shell) = machine();
    // Another user's process, no privilege: no same-user check for flavor 17.
    let info = libproc::pid_uniqid_info(&*kernel, shell, false).expect("any user reads it");
    assert_eq!(info.p_uniqueid, 3);
    assert_eq!(libproc::pid_uniqid_info(&*kernel, 0, false).unwrap().p_uniqueid, 0);
    assert_eq!(libproc::pid_uniqid_info(&*kernel, 1, false).unwrap().p_uniqueid, 1);
    // 55 bytes is short of the struct: ENOMEM before any lookup.
    let mut short = [0u8; 55];
    let got = kernel.proc_info(
        PROC_CALLNUM_PIDINFO,
        99_999,
        PROC_PIDUNIQIDENTIFIERINFO,
        0,
        Some(&mut short),
    );
    assert_eq!(got, Err(Errno::ENOMEM));
    kernel.table().exit(shell);
    assert!(matches!(
        libproc::pid_uniqid_info(&*kernel, shell, false),
        Err(libproc::Error::Vanished(_))
    ));
    assert_eq!(libproc::pid_uniqid_info(&*kernel, shell, true).unwrap().p_uniqueid, 3);
}

#[test]
fn the_counter_is_the_newest_live_process_uniqueid_and_exec_keeps_it() {
    let (kernel, shell) = machine();
    let mut source = source(kernel.clone());
    assert_eq!(forks(&mut source), 3);
    let child = kernel.table().fork(shell);
    kernel.table().exec(child, "make");
    assert_eq!(forks(&mut source), 4, "fork counts, exec does not");
    assert_eq!(forks(&mut source), kernel.table().forks());
}

#[test]
fn forks_whose_processes_all_exited_are_missed_until_a_newer_process_lives() {
    // The documented blind spot (§3.10): the counter is read off a live process.
    let (kernel, shell) = machine();
    let mut source = source(kernel.clone());
    assert_eq!(forks(&mut source), 3);
    for _ in 0..100 {
        let pid = kernel.table().fork(shell);
        kernel.table().kill(pid);
    }
    // A zombie is listed after every live process, so it does not help either.
    let zombie = kernel.table().fork(shell);
    kernel.table().exit(zombie);
    assert_eq!(kernel.table().forks(), 104);
    assert_eq!(forks(&mut source), 3, "no live process newer than the shell");
    // One fork alive at the next scrape brings the whole count back: uniqueids are not reused.
    kernel.table().fork(shell);
    assert_eq!(forks(&mut source), 105);
}

#[test]
fn an_exec_at_the_head_of_the_list_does_not_make_the_counter_go_back() {
    let (kernel, shell) = machine();
    let mut source = source(kernel.clone());
    let child = kernel.table().fork(shell);
    assert_eq!(forks(&mut source), 4);
    // launchd (uniqueid 1) execs: xnu >= 8792 moves it to the head of the list (§2.4).
    kernel.table().exec(1, "launchd");
    assert_eq!(forks(&mut source), 4, "never less than before");
    kernel.table().kill(child);
    assert_eq!(forks(&mut source), 4);
}

#[test]
fn the_newest_reaped_after_the_listing_costs_one_more_call_and_nothing_else() {
    let (kernel, shell) = machine();
    let newest = kernel.table().fork(shell);
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    // The newest process exits and is reaped once its short info is read: the reader sees it
    // in the table, asks its uniqueid, gets ESRCH, and asks the next one.
    kernel.set_hook(Box::new(move |table, call| {
        if call.callnum == PROC_CALLNUM_PIDINFO && call.flavor == PROC_PIDUNIQIDENTIFIERINFO {
            log.lock().unwrap().push(call.pid);
            if call.pid == newest {
                table.kill(newest);
            }
        }
    }));
    let mut source = source(kernel.clone());
    assert_eq!(forks(&mut source), 3, "the next newest: the shell");
    assert_eq!(*asked.lock().unwrap(), vec![newest, shell]);
}

#[test]
fn a_process_numbered_by_hand_moves_the_counter_past_it() {
    let mut table = SimTable::booted();
    let mut recorded = SimProc::new(500, 1, "sshd");
    recorded.uniqueid = 40_000;
    table.insert(recorded).unwrap();
    let next = table.fork(500);
    assert_eq!(table.get(next).unwrap().uniqueid, 40_001);
}

/// Linux: 500 short-lived processes between two scrapes, all gone by the second, raise the
/// counter by at least 500 while the process count stays flat.
#[cfg(target_os = "linux")]
#[test]
fn five_hundred_short_lived_forks_between_two_scrapes_raise_the_counter_by_500() {
    use libproc_exporter::table::procfs::ProcfsSource;
    let mut source = ProcfsSource::open(std::path::Path::new("/proc")).expect("/proc");
    let before = source.read().expect("first scrape").forks.expect("/proc/stat processes");
    for i in 0..500 {
        let status = std::process::Command::new("true").status();
        assert!(status.is_ok_and(|s| s.success()), "spawn {i}");
    }
    let after = source.read().expect("second scrape").forks.expect("/proc/stat processes");
    assert!(after >= before + 500, "forks went from {before} to {after}");
}

#[test]
fn a_first_scrape_whose_newest_processes_were_all_reaped_still_counts_forks() {
    // Found by churn (seed 6257): the reader asked the four newest read processes for their
    // uniqueid after reading the whole table; all four had been reaped meanwhile (on a Mac
    // running a build the newest processes are the short-lived ones), and a first scrape,
    // with no last value to stand, served no fork count: the forks collector said
    // success 0. Any older process still answers with a lower bound (§3.10).
    let (kernel, shell) = machine();
    let newest: Vec<i32> = (0..6).map(|_| kernel.table().fork(shell)).collect();
    let doomed = newest.clone();
    kernel.set_hook(Box::new(move |table, call| {
        if call.callnum == PROC_CALLNUM_PIDINFO && call.flavor == PROC_PIDUNIQIDENTIFIERINFO {
            doomed.iter().for_each(|&pid| table.kill(pid));
        }
    }));
    let mut source = source(kernel.clone());
    assert_eq!(forks(&mut source), 3, "the newest process still answering: the shell");
}
