//! `resources` on the simulated Mac (§9.8): `proc_pid_rusage`'s same-euid rule (an
//! unprivileged reader counts other users' processes unreadable and adds nothing from them;
//! root reads all), its errors, the Mach tick conversion, reaped children's times reaching
//! the parent, and counters that never go down while processes fork, exec, exit, are reaped
//! and their pids are reused.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use libproc_exporter::collect;
use libproc_exporter::host::Limits;
use libproc_exporter::libproc::sim::churn::Churn;
use libproc_exporter::libproc::sim::{Phase, SimKernel, SimProc, SimRusage, SimTable};
use libproc_exporter::libproc::{self, Errno, Kernel, PROC_CALLNUM_PIDRUSAGE, RUSAGE_INFO_V2};
use libproc_exporter::metrics::Exporter;
use libproc_exporter::table::darwin::{DarwinSource, TtyDevices};

use crate::common::sample;
use crate::darwin_sim::Rng;

const ALICE: u32 = 501;
const BOB: u32 = 502;
/// Apple Silicon's tick rate, the simulator's default (§9.6).
const HZ: u64 = 24_000_000;

/// A process of `uid` named `comm` that has used `user_s` seconds of user CPU.
fn proc(pid: i32, ppid: i32, comm: &str, uid: u32, user_s: u64) -> SimProc {
    let mut p = SimProc::new(pid, ppid, comm).with_uid(uid);
    p.rusage = Some(SimRusage {
        user_ticks: user_s * HZ,
        system_ticks: HZ / 2,
        resident_bytes: 100 << 20,
        footprint_bytes: 60 << 20,
        disk_read_bytes: 1 << 20,
        disk_written_bytes: 2 << 20,
        ..SimRusage::default()
    });
    p
}

/// kernel_task, launchd, alice's `make` (pid 100) with a `cc1` child, bob's `python3`.
fn table() -> SimTable {
    let mut t = SimTable::booted();
    t.insert(proc(100, 1, "make", ALICE, 1)).unwrap();
    t.insert(proc(101, 100, "cc1", ALICE, 3)).unwrap();
    t.insert(proc(200, 1, "python3", BOB, 50)).unwrap();
    t
}

fn exporter(kernel: Arc<SimKernel>, euid: u32) -> Exporter {
    let limits = Limits { maxproc: Some(4176), ..Limits::default() };
    let source =
        DarwinSource::new(kernel, TtyDevices::Fixed(vec![]), Some(limits), BTreeMap::new(), euid)
            .reading_usage(true);
    let resources = collect::find("resources").unwrap().default_instance();
    Exporter::new(Box::new(source), vec![resources], false)
}

fn cpu(body: &str, comm: &str) -> Option<f64> {
    let user =
        sample(body, "libproc_comm_cpu_seconds_total", &format!("comm=\"{comm}\",mode=\"user\""))?;
    let system = sample(
        body,
        "libproc_comm_cpu_seconds_total",
        &format!("comm=\"{comm}\",mode=\"system\""),
    )?;
    Some(user + system)
}

#[test]
fn unprivileged_other_users_processes_are_unreadable_and_add_nothing_root_reads_all() {
    let body = exporter(Arc::new(SimKernel::new(table(), ALICE)), ALICE).scrape(None);
    assert_eq!(cpu(&body, "cc1"), Some(3.5), "ticks at 24 MHz converted:\n{body}");
    assert_eq!(cpu(&body, "python3"), None, "bob's process adds nothing, not a zero");
    assert_eq!(sample(&body, "libproc_resource_readable_processes", ""), Some(2.0));
    // kernel_task, launchd (root's) and bob's python3, refused without a call.
    let permission = "reason=\"permission\"";
    assert_eq!(sample(&body, "libproc_resource_unreadable_processes", permission), Some(3.0));
    let resident = |uid: u32| {
        sample(&body, "libproc_ruid_resident_bytes", &format!("uid=\"{uid}\",user=\"{uid}\""))
    };
    assert_eq!((resident(ALICE), resident(BOB)), (Some(200.0 * 1048576.0), None));

    let body = exporter(Arc::new(SimKernel::new(table(), 0)), 0).scrape(None);
    assert_eq!(cpu(&body, "python3"), Some(50.5));
    assert_eq!(sample(&body, "libproc_resource_readable_processes", ""), Some(5.0));
    assert_eq!(sample(&body, "libproc_resource_unreadable_processes", permission), Some(0.0));
    assert_eq!(
        sample(&body, "libproc_comm_footprint_bytes", "comm=\"python3\""),
        Some(60.0 * 1048576.0)
    );
    let read = sample(&body, "libproc_comm_disk_read_bytes_total", "comm=\"python3\"");
    assert_eq!(read, Some(1048576.0));
}

#[test]
fn proc_pid_rusage_checks_in_xnus_order() {
    let kernel = SimKernel::new(table(), ALICE);
    let call = |pid: i32, flavor: u32, len: usize| {
        let mut buf = vec![0u8; len];
        kernel.proc_info(PROC_CALLNUM_PIDRUSAGE, pid, flavor, 0, Some(&mut buf))
    };
    assert_eq!(call(101, RUSAGE_INFO_V2, 160), Ok(0), "success returns 0, not a length");
    assert_eq!(call(999, 99, 160), Err(Errno::ESRCH), "no such pid before a bad flavor");
    assert_eq!(call(200, 99, 160), Err(Errno::EPERM), "another user's before a bad flavor");
    assert_eq!(call(101, 7, 464), Err(Errno::EINVAL), "no flavor 7");
    assert_eq!(call(101, RUSAGE_INFO_V2, 96), Err(Errno::EFAULT), "no size is passed");
    // A zombie answers without any flag, its footprint 0 (§9.5).
    kernel.table().exit(101);
    let info = libproc::pid_rusage(&kernel, 101).unwrap();
    assert_eq!((info.ri_user_time, info.ri_phys_footprint), (3 * HZ, 0));
    // Reaped: gone, and make has its times.
    kernel.table().reap(101);
    assert_eq!(call(101, RUSAGE_INFO_V2, 160), Err(Errno::ESRCH));
    let make = libproc::pid_rusage(&kernel, 100).unwrap();
    assert_eq!((make.ri_child_user_time, make.ri_child_system_time), (3 * HZ, HZ / 2));
}

#[test]
fn a_kernel_without_callnum_9_is_asked_once_and_every_process_counted_other() {
    let kernel = Arc::new(SimKernel::new(table(), 0).with_rusage_max_flavor(None));
    let exporter = exporter(kernel.clone(), 0);
    let body = exporter.scrape(None);
    assert_eq!(sample(&body, "libproc_resource_readable_processes", ""), Some(0.0));
    assert_eq!(
        sample(&body, "libproc_resource_unreadable_processes", "reason=\"other\""),
        Some(5.0)
    );
    let before = kernel.calls();
    exporter.scrape(None);
    let again = kernel.calls() - before;
    let without = {
        let kernel = Arc::new(SimKernel::new(table(), 0));
        let limits = Limits::default();
        let mut source = DarwinSource::new(
            kernel.clone(),
            TtyDevices::Fixed(vec![]),
            Some(limits),
            BTreeMap::new(),
            0,
        );
        source.read().unwrap();
        let before = kernel.calls();
        source.read().unwrap();
        kernel.calls() - before
    };
    assert_eq!(again, without, "no rusage call after the kernel refused the first");
}

#[test]
fn the_tick_rate_is_the_kernels_not_one_nanosecond() {
    let intel = Arc::new(SimKernel::new(table(), ALICE).with_timebase_hz(1_000_000_000));
    intel.table().get_mut(101).unwrap().rusage.as_mut().unwrap().user_ticks = 2_000_000_000;
    let body = exporter(intel, ALICE).scrape(None);
    assert_eq!(cpu(&body, "cc1"), Some(2.0 + 0.012), "system: HZ / 2 ticks at 1 GHz");
}

#[test]
fn a_build_reaping_its_compilers_shows_as_its_childrens_cpu() {
    let kernel = Arc::new(SimKernel::new(table(), ALICE));
    let exporter = exporter(kernel.clone(), ALICE);
    exporter.scrape(None);
    // 100 compilers of 2 s each, forked, run, exited and reaped between two scrapes: no
    // scrape of the live table ever sees one.
    {
        let mut t = kernel.table();
        for _ in 0..100 {
            let pid = t.fork(100);
            t.exec(pid, "clang");
            t.get_mut(pid).unwrap().rusage.as_mut().unwrap().user_ticks = 2 * HZ;
            t.kill(pid);
        }
    }
    let body = exporter.scrape(None);
    let labels = "ppid=\"100\",parent=\"make\",mode=\"user\"";
    let children = sample(&body, "libproc_ppid_children_cpu_seconds_total", labels);
    assert_eq!(children, Some(200.0), "{body}");
    assert_eq!(cpu(&body, "clang"), None, "never seen alive");
}

#[test]
fn forks_execs_exits_reaps_and_reused_pids_never_decrease_a_counter() {
    for seed in 1..=60u64 {
        let kernel = Arc::new(SimKernel::new(table(), 0));
        let exporter = exporter(kernel.clone(), 0);
        let mut rng = Rng::new(seed);
        let mut last: HashMap<String, f64> = HashMap::new();
        for step in 0..30 {
            {
                let mut t = kernel.table();
                let pids: Vec<i32> = t.procs().map(|p| p.pid).filter(|&p| p > 1).collect();
                for _ in 0..rng.below(8) {
                    let Some(&pid) = pids.get(rng.below(pids.len().max(1) as u64) as usize) else {
                        break;
                    };
                    // Only a live process forks or execs; reap takes only a zombie.
                    let live = matches!(t.phase(pid), Some(Phase::Live | Phase::Exiting));
                    match rng.below(7) {
                        0 if live => {
                            t.fork(pid);
                        }
                        1 if live => {
                            t.exec(pid, ["sh", "cc1", "ld", "make"][rng.below(4) as usize])
                        }
                        2 => t.exit(pid),
                        3 => t.reap(pid),
                        // The pid reused at once by a new process with less CPU, under a
                        // name the old one may have had (a new uniqueid tells them apart).
                        4 if !live => {
                            t.reap(pid);
                            let comm = ["sh", "cc1", "make"][rng.below(3) as usize];
                            let uid = [ALICE, BOB][rng.below(2) as usize];
                            t.insert(proc(pid, 1, comm, uid, rng.below(2))).unwrap();
                        }
                        _ => {
                            if let Some(r) = t.get_mut(pid).and_then(|p| p.rusage.as_mut()) {
                                r.user_ticks += rng.below(5 * HZ);
                                r.system_ticks += rng.below(HZ);
                                r.disk_written_bytes += rng.below(1 << 20);
                            }
                        }
                    }
                }
            }
            let body = exporter.scrape(None);
            assert_no_counter_went_down(&body, &mut last, &format!("seed {seed} step {step}"));
        }
    }
}

/// Fails if a counter of `body` is below its value in `last` (the previous scrapes); then
/// remembers `body`'s. A series not shown for a while must not come back lower either.
fn assert_no_counter_went_down(body: &str, last: &mut HashMap<String, f64>, at: &str) {
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        if !series.split('{').next().unwrap_or_default().ends_with("_total") {
            continue;
        }
        let value: f64 = value.parse().unwrap();
        if let Some(&before) = last.get(series) {
            assert!(value >= before, "{at}: {series} {before} -> {value}");
        }
        last.insert(series.to_string(), value);
    }
}

#[test]
fn under_churn_no_counter_ever_decreases_for_an_unprivileged_or_a_root_reader() {
    // The churn mode (issue 19) forks, execs, exits, reaps and reuses pids between any two
    // calls of a scrape: between the listing and the rusage call, between a process's short
    // info and its usage. Between scrapes, live processes use more CPU and disk.
    let mut shown = 0;
    for seed in 1..=80u64 {
        let caller = if seed % 2 == 0 { 0 } else { ALICE };
        let kernel = Arc::new(SimKernel::new(table(), caller));
        Churn::install(&kernel, seed, vec![]);
        let exporter = exporter(kernel.clone(), caller);
        let mut rng = Rng::new(seed);
        let mut last: HashMap<String, f64> = HashMap::new();
        for step in 0..25 {
            {
                let mut t = kernel.table();
                let pids: Vec<i32> = t.procs().map(|p| p.pid).collect();
                for pid in pids {
                    if let Some(r) = t.get_mut(pid).and_then(|p| p.rusage.as_mut()) {
                        r.user_ticks += rng.below(2 * HZ);
                        r.disk_read_bytes += rng.below(1 << 16);
                    }
                }
            }
            let body = exporter.scrape(None);
            shown += body.lines().filter(|l| l.starts_with("libproc_ppid_children")).count();
            assert_no_counter_went_down(&body, &mut last, &format!("seed {seed} step {step}"));
        }
    }
    assert!(shown > 0, "reaps under churn gave some parent children's CPU");
}
