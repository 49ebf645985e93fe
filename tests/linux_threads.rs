//! Linux threads: `libproc_threads` is the sum of every process's `Threads:` line, checked
//! against `ps -eLf` (one line per thread) taken around the snapshot, and against a process
//! of known thread count (this test's own, with threads it starts).

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};

use libproc_exporter::table::procfs::ProcfsSource;

/// Threads `ps -eLf` lists, one line each after the header.
fn ps_threads() -> u64 {
    let out = Command::new("ps").arg("-eLf").output().expect("ps -eLf runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).lines().count() as u64 - 1
}

#[test]
fn threads_sum_agrees_with_ps_and_counts_a_known_process_exactly() {
    // 24 threads that wait until the snapshot is read, so this process has 25 at least.
    let started = Arc::new(Barrier::new(25));
    let done = Arc::new(Barrier::new(25));
    let workers: Vec<_> = (0..24)
        .map(|_| {
            let (started, done) = (started.clone(), done.clone());
            std::thread::spawn(move || {
                started.wait();
                done.wait();
            })
        })
        .collect();
    started.wait();

    let mut source = ProcfsSource::open(Path::new("/proc")).expect("/proc");
    let before = ps_threads();
    let snapshot = source.read().expect("snapshot");
    let after = ps_threads();
    let me = snapshot.find(std::process::id() as i32).expect("this process is in the table");
    let own = std::fs::read_dir("/proc/self/task").unwrap().count() as u32;
    let total: u64 = snapshot.processes.iter().filter_map(|p| p.threads).map(u64::from).sum();
    done.wait();
    for w in workers {
        w.join().unwrap();
    }

    // Other tests run threads of their own in this process meanwhile: at least the 25.
    assert!(me.threads.is_some_and(|n| n >= 25), "own threads {:?}", me.threads);
    assert!(own >= 25);
    let live = snapshot.processes.iter().filter(|p| !p.is_zombie());
    assert!(live.clone().all(|p| p.threads.is_some_and(|n| n >= 1)), "a live process has a thread");
    // Threads come and go on a busy machine (other test threads, builds) between the three
    // readings; a slack of 10 % (20 at least) cannot hide a missing sum, which would be off
    // by every multi-threaded process at once.
    let (lo, hi) = (before.min(after), before.max(after));
    let slack = (hi / 10).max(20);
    assert!(
        total + slack >= lo && total <= hi + slack,
        "libproc_threads {total}, ps -eLf {before} then {after}"
    );
    let max = snapshot.threads_max.expect("kernel.threads-max");
    assert!(max >= total, "threads-max {max} below the threads running ({total})");
}
