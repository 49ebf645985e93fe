//! SimKernel follows xnu's proc_info (reference §8): one test per rule, with the errno each
//! path must give, plus the binding's race safety against it.

use libproc_exporter::libproc::sim::{Call, SimKernel, SimProc, SimTable};
use libproc_exporter::libproc::{
    self, Errno, Error, Kernel, ListFilter, NODEV, PROC_ALL_PIDS, PROC_CALLNUM_KERNMSGBUF,
    PROC_CALLNUM_LISTPIDS, PROC_CALLNUM_PIDFDINFO, PROC_CALLNUM_PIDINFO, PROC_KDBG_ONLY,
    PROC_PIDPATHINFO, PROC_PIDT_SHORTBSDINFO, PROC_PIDTASKINFO, PROC_PIDTBSDINFO, SRUN, SSTOP,
    SZOMB,
};

const ALICE: u32 = 501;
const BOB: u32 = 502;
const TTYS000: u32 = 0x1000_0000;
const TTYS001: u32 = 0x1000_0001;

/// kernel_task, launchd, then (in fork order) alice's shell 100 on ttys000 with a child 101,
/// bob's daemon 102, and root's 103.
fn table() -> SimTable {
    let mut t = SimTable::booted();
    t.insert(SimProc::new(100, 1, "zsh").with_uid(ALICE).with_tty(TTYS000)).unwrap();
    let mut child = SimProc::new(101, 100, "make").with_uid(ALICE).with_tty(TTYS000);
    child.pgid = 101;
    child.sid = 100;
    t.insert(child).unwrap();
    t.insert(SimProc::new(102, 1, "bobd").with_uid(BOB)).unwrap();
    t.insert(SimProc::new(103, 1, "rootd")).unwrap();
    t
}

fn kernel(caller: u32) -> SimKernel {
    SimKernel::new(table(), caller)
}

fn list_raw(k: &dyn Kernel, kind: u32, info: u32, bytes: usize) -> Result<Vec<i32>, Errno> {
    let mut buf = vec![0u8; bytes];
    let n = k.proc_info(PROC_CALLNUM_LISTPIDS, kind as i32, info, 0, Some(&mut buf))?;
    Ok(buf[..n].chunks(4).map(|c| i32::from_ne_bytes(c.try_into().unwrap())).collect())
}

fn pidinfo(k: &dyn Kernel, pid: i32, flavor: u32, arg: u64, bytes: usize) -> Result<usize, Errno> {
    let mut buf = vec![0u8; bytes];
    k.proc_info(PROC_CALLNUM_PIDINFO, pid, flavor, arg, Some(&mut buf))
}

#[test]
fn probe_with_null_buffer_estimates_nprocs_plus_20_pids_without_kernel_task() {
    let k = kernel(ALICE);
    k.table().exit(103); // a zombie still counts in nprocs
    // 5 processes besides kernel_task: launchd, 100, 101, 102, 103 (zombie).
    assert_eq!(
        k.proc_info(PROC_CALLNUM_LISTPIDS, PROC_ALL_PIDS as i32, 0, 0, None),
        Ok((5 + 20) * 4)
    );
    // The estimate ignores the type: it is the same for a filter that matches nothing.
    assert_eq!(k.proc_info(PROC_CALLNUM_LISTPIDS, 4, 12345, 0, None), Ok((5 + 20) * 4));
}

#[test]
fn listing_into_fewer_than_4_bytes_is_enomem() {
    let k = kernel(ALICE);
    assert_eq!(list_raw(&k, PROC_ALL_PIDS, 0, 3), Err(Errno::ENOMEM));
    assert_eq!(list_raw(&k, PROC_ALL_PIDS, 0, 0), Err(Errno::ENOMEM));
    assert_eq!(list_raw(&k, PROC_ALL_PIDS, 0, 4).map(|v| v.len()), Ok(1));
}

#[test]
fn a_short_buffer_truncates_silently_dropping_the_oldest() {
    let k = kernel(ALICE);
    // Room for two pids: no error, the two newest, launchd and kernel_task cut off.
    assert_eq!(list_raw(&k, PROC_ALL_PIDS, 0, 8), Ok(vec![103, 102]));
    // 9 bytes still hold only two whole pids.
    assert_eq!(list_raw(&k, PROC_ALL_PIDS, 0, 9), Ok(vec![103, 102]));
}

#[test]
fn listing_order_is_newest_first_pid_0_last_then_zombies_by_death() {
    let k = kernel(ALICE);
    {
        let mut t = k.table();
        t.exit(101);
        t.exit(102);
    }
    assert_eq!(list_raw(&k, PROC_ALL_PIDS, 0, 4096), Ok(vec![103, 100, 1, 0, 102, 101]));
    // Zombies are only walked when the live walk left room.
    assert_eq!(list_raw(&k, PROC_ALL_PIDS, 0, 16), Ok(vec![103, 100, 1, 0]));
    // exec moves a process to the head (xnu >= 8792).
    k.table().exec(1, "launchd");
    assert_eq!(list_raw(&k, PROC_ALL_PIDS, 0, 4096).unwrap()[0], 1);
}

#[test]
fn unknown_list_types_return_nothing_and_are_not_an_error() {
    let k = kernel(ALICE);
    for kind in [0, 8, 99] {
        assert_eq!(list_raw(&k, kind, 0, 4096), Ok(vec![]), "type {kind}");
    }
}

#[test]
fn filters_match_xnu_predicates() {
    let k = kernel(ALICE);
    let list = |f| {
        let mut v = libproc::list_pids(&k, f).unwrap();
        v.sort();
        v
    };
    assert_eq!(list(ListFilter::Uid(ALICE)), [100, 101]);
    assert_eq!(list(ListFilter::Uid(0)), [0, 1, 103]);
    assert_eq!(list(ListFilter::Ppid(1)), [100, 102, 103]);
    assert_eq!(list(ListFilter::Pgrp(101)), [101]);
    assert_eq!(list(ListFilter::Tty(TTYS000)), [100, 101]);
    assert_eq!(list(ListFilter::Tty(TTYS001)), Vec::<i32>::new());
    assert_eq!(list(ListFilter::Kdebug), Vec::<i32>::new());
    k.table().get_mut(102).unwrap().kdebug = true;
    assert_eq!(list(ListFilter::Kdebug), [102]);
    assert_eq!(libproc::list_pids(&k, ListFilter::Kdebug).unwrap(), [102]);
    assert_eq!(ListFilter::Kdebug.raw(), (PROC_KDBG_ONLY, 0));
}

#[test]
fn ruid_filter_uses_the_real_uid_and_uid_the_effective_one() {
    let k = kernel(ALICE);
    {
        // A setuid-root program run by alice: euid 0, ruid alice.
        let mut t = k.table();
        let p = t.get_mut(101).unwrap();
        p.euid = 0;
    }
    assert_eq!(libproc::pids_for_ruid(&k, ALICE).unwrap().len(), 2);
    let mut by_euid = libproc::pids_for_uid(&k, ALICE).unwrap();
    by_euid.sort();
    assert_eq!(by_euid, [100]);
}

#[test]
fn tty_filter_needs_p_controlt_and_the_sessions_device() {
    let k = kernel(ALICE);
    {
        let mut t = k.table();
        // Same session device, but the process dropped its controlling terminal.
        let p = t.get_mut(101).unwrap();
        p.controlt = false;
    }
    assert_eq!(libproc::pids_for_tty(&k, TTYS000).unwrap(), [100]);
    // A revoked terminal leaves NODEV in the session; proc_listpids matches NODEV then
    // (reference §2.1 notes), which is why the exporter never asks for NODEV.
    k.table().revoke_tty(100);
    assert_eq!(libproc::pids_for_tty(&k, TTYS000).unwrap(), Vec::<i32>::new());
    assert_eq!(libproc::pids_for_tty(&k, NODEV).unwrap(), [100]);
}

#[test]
fn ppid_filter_also_matches_a_traced_processes_original_parent() {
    let k = kernel(ALICE);
    {
        // A debugger (103) attached to 101: its parent is now the debugger.
        let mut t = k.table();
        let p = t.get_mut(101).unwrap();
        p.traced = true;
        p.oppid = 100;
        p.ppid = 103;
    }
    assert_eq!(libproc::pids_for_ppid(&k, 100).unwrap(), [101]);
    assert_eq!(libproc::pids_for_ppid(&k, 103).unwrap(), [101]);
}

#[test]
fn zombies_keep_group_session_and_credentials_for_filters() {
    let k = kernel(ALICE);
    k.table().exit(101);
    assert_eq!(libproc::pids_for_pgrp(&k, 101).unwrap(), [101]);
    assert_eq!(libproc::pids_for_tty(&k, TTYS000).unwrap(), [100, 101]);
    assert_eq!(libproc::pids_for_uid(&k, ALICE).unwrap(), [100, 101]);
    // Reaped: gone everywhere.
    k.table().reap(101);
    assert_eq!(libproc::pids_for_uid(&k, ALICE).unwrap(), [100]);
}

#[test]
fn pidinfo_checks_flavor_and_size_before_existence() {
    let k = kernel(ALICE);
    // Unknown flavor on a pid that does not exist: EINVAL, not ESRCH.
    assert_eq!(pidinfo(&k, 4242, 999, 0, 4096), Err(Errno::EINVAL));
    // Too small a buffer on a pid that does not exist: ENOMEM, not ESRCH.
    assert_eq!(pidinfo(&k, 4242, PROC_PIDTBSDINFO, 0, 135), Err(Errno::ENOMEM));
    // Then existence: ESRCH.
    assert_eq!(pidinfo(&k, 4242, PROC_PIDTBSDINFO, 0, 136), Err(Errno::ESRCH));
    // A NULL buffer is a zero-sized one: ENOMEM.
    assert_eq!(
        k.proc_info(PROC_CALLNUM_PIDINFO, 100, PROC_PIDTBSDINFO, 0, None),
        Err(Errno::ENOMEM)
    );
}

#[test]
fn pidinfo_checks_existence_before_permission() {
    let k = kernel(ALICE);
    // bob's live pid: EPERM (existence leaks, as on a Mac); a pid that is not there: ESRCH.
    assert_eq!(pidinfo(&k, 102, PROC_PIDTBSDINFO, 0, 136), Err(Errno::EPERM));
    assert_eq!(pidinfo(&k, 4242, PROC_PIDTBSDINFO, 0, 136), Err(Errno::ESRCH));
}

#[test]
fn full_bsd_info_and_task_info_need_the_same_euid_or_root() {
    let alice = kernel(ALICE);
    assert_eq!(pidinfo(&alice, 100, PROC_PIDTBSDINFO, 0, 136), Ok(136));
    assert_eq!(pidinfo(&alice, 100, PROC_PIDTASKINFO, 0, 96), Ok(96));
    assert_eq!(pidinfo(&alice, 102, PROC_PIDTASKINFO, 0, 96), Err(Errno::EPERM));
    // kernel_task is root's: EPERM for alice (reference §7 item 4).
    assert_eq!(pidinfo(&alice, 0, PROC_PIDTBSDINFO, 0, 136), Err(Errno::EPERM));
    let root = kernel(0);
    assert_eq!(pidinfo(&root, 102, PROC_PIDTBSDINFO, 0, 136), Ok(136));
    assert_eq!(pidinfo(&root, 0, PROC_PIDTBSDINFO, 0, 136), Ok(136));
    let entitled = kernel(ALICE).entitled(true);
    assert_eq!(pidinfo(&entitled, 102, PROC_PIDTBSDINFO, 0, 136), Ok(136));
}

#[test]
fn short_bsd_info_has_no_same_user_check() {
    let k = kernel(ALICE);
    let info = libproc::pid_short_info(&k, 102, false).unwrap();
    assert_eq!((info.pbsi_uid, info.pbsi_ppid, info.pbsi_status), (BOB, 1, SRUN));
    assert_eq!(&info.pbsi_comm[..5], b"bobd\0");
    assert!(libproc::pid_short_info(&k, 0, false).is_ok());
}

#[test]
fn zombies_answer_only_with_a_nonzero_arg() {
    let k = kernel(ALICE);
    k.table().exit(101);
    assert_eq!(pidinfo(&k, 101, PROC_PIDT_SHORTBSDINFO, 0, 64), Err(Errno::ESRCH));
    assert_eq!(pidinfo(&k, 101, PROC_PIDT_SHORTBSDINFO, 1, 64), Ok(64));
    assert_eq!(pidinfo(&k, 101, PROC_PIDTBSDINFO, 0, 136), Err(Errno::ESRCH));
    let info = libproc::pid_bsd_info(&k, 101, true).unwrap();
    assert_eq!((info.pbi_status, info.pbi_nfiles), (SZOMB, 0));
    // The zombie keeps its terminal and group until reaped.
    assert_eq!((info.e_tdev, info.pbi_pgid), (TTYS000, 101));
    // Task info never finds a zombie.
    assert_eq!(pidinfo(&k, 101, PROC_PIDTASKINFO, 1, 96), Err(Errno::ESRCH));
    // A zombie of another user: found, then refused.
    k.table().exit(102);
    assert_eq!(pidinfo(&k, 102, PROC_PIDTBSDINFO, 1, 136), Err(Errno::EPERM));
}

#[test]
fn full_bsd_info_reports_the_terminal_and_nodev_without_one() {
    let k = kernel(0);
    assert_eq!(libproc::pid_bsd_info(&k, 100, false).unwrap().e_tdev, TTYS000);
    let daemon = libproc::pid_bsd_info(&k, 102, false).unwrap();
    assert_eq!((daemon.e_tdev, daemon.e_tpgid), (NODEV, 0));
    let shell = libproc::pid_bsd_info(&k, 100, false).unwrap();
    assert_ne!(shell.pbi_flags & libproc::PROC_FLAG_CONTROLT, 0);
    assert_ne!(shell.pbi_flags & libproc::PROC_FLAG_SLEADER, 0);
}

#[test]
fn stopped_processes_report_sstop() {
    let k = kernel(0);
    k.table().set_stopped(103, true);
    assert_eq!(libproc::pid_short_info(&k, 103, true).unwrap().pbsi_status, SSTOP);
}

#[test]
fn comm_keeps_15_bytes() {
    let k = kernel(0);
    k.table().insert(SimProc::new(200, 1, "a_very_long_command_name")).unwrap();
    let info = libproc::pid_bsd_info(&k, 200, false).unwrap();
    assert_eq!(&info.pbi_comm, b"a_very_long_com\0");
    assert_eq!(&info.pbi_name[..25], b"a_very_long_command_name\0");
}

#[test]
fn pathinfo_returns_zero_on_success_and_checks_its_sizes() {
    let k = kernel(ALICE);
    assert_eq!(pidinfo(&k, 102, PROC_PIDPATHINFO, 0, 1024), Ok(0));
    assert_eq!(libproc::pid_path(&k, 102).unwrap(), "/usr/bin/bobd");
    assert_eq!(pidinfo(&k, 102, PROC_PIDPATHINFO, 0, 1023), Err(Errno::ENOMEM));
    assert_eq!(pidinfo(&k, 102, PROC_PIDPATHINFO, 0, 4097), Err(Errno::EOVERFLOW));
    // kernel_task has no executable: ESRCH.
    assert_eq!(pidinfo(&k, 0, PROC_PIDPATHINFO, 0, 1024), Err(Errno::ESRCH));
}

#[test]
fn macf_policy_runs_after_existence_and_before_the_uid_check() {
    let deny = |call: &Call, _: Option<&SimProc>| {
        (call.callnum == PROC_CALLNUM_PIDINFO && call.flavor == PROC_PIDT_SHORTBSDINFO)
            .then_some(Errno(libc::EACCES))
    };
    let k = kernel(ALICE).with_policy(Box::new(deny));
    assert_eq!(pidinfo(&k, 4242, PROC_PIDT_SHORTBSDINFO, 0, 64), Err(Errno::ESRCH));
    assert_eq!(pidinfo(&k, 100, PROC_PIDT_SHORTBSDINFO, 0, 64), Err(Errno(libc::EACCES)));
    // Listing goes through the policy too, before anything else.
    let deny_list = |call: &Call, _: Option<&SimProc>| {
        (call.callnum == PROC_CALLNUM_LISTPIDS).then_some(Errno::EPERM)
    };
    let k = kernel(ALICE).with_policy(Box::new(deny_list));
    assert_eq!(k.proc_info(PROC_CALLNUM_LISTPIDS, 1, 0, 0, None), Err(Errno::EPERM));
}

#[test]
fn other_callnums_check_their_arguments() {
    let k = kernel(ALICE);
    let mut buf = [0u8; 64];
    assert_eq!(k.proc_info(PROC_CALLNUM_PIDFDINFO, 4242, 1, 0, Some(&mut buf)), Err(Errno::ESRCH));
    assert_eq!(k.proc_info(PROC_CALLNUM_PIDFDINFO, 102, 1, 0, Some(&mut buf)), Err(Errno::EPERM));
    assert_eq!(k.proc_info(PROC_CALLNUM_KERNMSGBUF, 0, 0, 0, Some(&mut buf)), Err(Errno::EPERM));
    assert_eq!(k.proc_info(42, 0, 0, 0, Some(&mut buf)), Err(Errno::EINVAL));
}

#[test]
fn fork_wraps_pids_at_99999_to_100() {
    let mut t = SimTable::booted();
    t.insert(SimProc::new(99_998, 1, "a")).unwrap();
    assert_eq!(t.fork(99_998), 99_999);
    assert_eq!(t.fork(1), 100);
}

#[test]
fn the_hook_changes_the_table_between_two_calls() {
    let k = kernel(ALICE);
    k.set_hook(Box::new(|table, call| {
        if call.index == 1 {
            table.fork(100);
        }
    }));
    let before = libproc::pid_short_info(&k, 100, false).unwrap();
    assert_eq!(before.pbsi_pid, 100);
    assert_eq!(libproc::pids_for_ppid(&k, 100).unwrap().len(), 2);
    assert_eq!(k.calls(), 3);
}

// ---- the binding's race safety -----------------------------------------------------------

#[test]
fn processes_forked_between_probe_and_fill_are_all_listed_once() {
    let k = SimKernel::new(SimTable::booted(), ALICE);
    for _ in 0..50 {
        k.table().fork(1);
    }
    // Between the size probe (call 0) and the first fill (call 1), a fork storm of 500: the
    // first fill comes back full and the binding must grow and fill again.
    k.set_hook(Box::new(|table, call| {
        if call.index == 1 {
            for _ in 0..500 {
                table.fork(1);
            }
        }
    }));
    let pids = libproc::all_pids(&k).unwrap();
    assert!(k.calls() >= 3, "the truncated fill was not retried ({} calls)", k.calls());
    let mut sorted = pids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), pids.len(), "a pid was listed twice");
    assert_eq!(pids.len(), 2 + 50 + 500, "every live pid, kernel_task and launchd included");
    assert_eq!(*pids.last().unwrap(), 0, "kernel_task comes last");
}

#[test]
fn a_fork_storm_that_never_ends_is_a_clear_error() {
    let k = SimKernel::new(SimTable::booted(), ALICE);
    k.set_hook(Box::new(|table, call| {
        // Before every fill, more processes than the buffer can have grown by.
        if let Some(len) = call.buf_len {
            for _ in 0..len / 2 {
                table.fork(1);
            }
        }
    }));
    let err = libproc::all_pids(&k).unwrap_err();
    assert!(
        matches!(err, Error::Truncated { filter: ListFilter::All, attempts: 8, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("listing pids with PROC_ALL_PIDS") && text.contains("8 attempts"),
        "{text}"
    );
}

// ---- wrapper errors ----------------------------------------------------------------------

#[test]
fn wrapper_errors_are_typed_and_name_the_call() {
    let k = kernel(ALICE);
    let err = libproc::pid_bsd_info(&k, 102, false).unwrap_err();
    assert!(matches!(err, Error::PermissionDenied(_)));
    assert_eq!(
        err.to_string(),
        "reading PROC_PIDTBSDINFO of pid 102: EPERM (Operation not permitted)"
    );
    let err = libproc::pid_short_info(&k, 4242, true).unwrap_err();
    assert!(matches!(err, Error::Vanished(_)));
    assert!(
        err.to_string().starts_with("reading PROC_PIDT_SHORTBSDINFO of pid 4242: ESRCH"),
        "{err}"
    );
    // An ENOMEM-sized buffer through the raw wrapper.
    let err =
        libproc::pid_info_raw(&k, 100, PROC_PIDT_SHORTBSDINFO, 1, &mut [0u8; 32]).unwrap_err();
    assert!(matches!(err, Error::Os(_, Errno::ENOMEM)), "{err:?}");
    assert!(
        err.to_string().starts_with("reading PROC_PIDT_SHORTBSDINFO of pid 100: ENOMEM"),
        "{err}"
    );
}

#[test]
fn tty_wrapper_errors_name_the_terminal() {
    let k = kernel(ALICE);
    let err = libproc::pids_for_tty_name(&k, "ttys999").unwrap_err();
    assert!(matches!(err, Error::Tty { .. }));
    assert_eq!(err.to_string(), "terminal \"ttys999\" (/dev/ttys999): no such terminal");
    let err = libproc::pids_for_tty_name(&k, "/etc/hosts").unwrap_err();
    assert_eq!(err.to_string(), "terminal \"/etc/hosts\" (/etc/hosts): not a character device");
}

#[test]
fn tty_names_resolve_like_ps_dash_t() {
    // /dev/null stands in for a terminal: a character device every machine has.
    let dev = libproc::tty_device("/dev/null").unwrap();
    assert_eq!(libproc::tty_device("null").unwrap(), dev);
    let k = SimKernel::new(SimTable::booted(), 0);
    k.table().insert(SimProc::new(300, 1, "getty").with_tty(dev)).unwrap();
    assert_eq!(libproc::pids_for_tty_name(&k, "/dev/null").unwrap(), [300]);
}

#[test]
fn a_failed_fork_spends_a_uniqueid_and_leaves_no_process() {
    // forkproc takes ++nextuniqueid before it can fail (§3.10); forkproc_free leaves nothing
    // behind (§2.2): the next fork's uniqueid skips one.
    let mut t = SimTable::booted();
    let first = t.fork(1);
    let procs = t.nprocs();
    t.fork_failed();
    assert_eq!((t.forks(), t.nprocs()), (3, procs));
    let next = t.fork(1);
    assert_eq!(t.get(next).unwrap().uniqueid, t.get(first).unwrap().uniqueid + 2);
}

#[test]
fn a_wrapped_allocator_hands_out_a_freed_pid_again() {
    // After the wrap at 99999 the allocator walks up from 100 and takes the first free pid
    // (§2.5): one freed a moment ago is handed out again, to a new process.
    let mut t = SimTable::booted();
    let old: Vec<i32> = (0..200).map(|_| t.fork(1)).collect();
    let reused = old[150];
    let uniqueid = t.get(reused).unwrap().uniqueid;
    t.kill(reused);
    t.reuse_next(reused);
    assert_eq!(t.fork(1), reused);
    assert!(t.get(reused).unwrap().uniqueid > uniqueid, "a new process, a new uniqueid");
    t.reuse_next(old[10]);
    assert_ne!(t.fork(1), old[10], "a pid in use is not handed out");
}
