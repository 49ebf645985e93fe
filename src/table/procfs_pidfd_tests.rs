//! The pidfd path against real processes: taken where it should be, agreeing with the status
//! path, and never giving one process's ids to another that took its pid meanwhile.

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use super::*;
use crate::procfs::pidfd::tests::kernel_has_pidfd_info;

fn sleeper() -> Child {
    Command::new("sleep").arg("60").spawn().expect("start sleep")
}

fn end(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A source on this machine's `/proc` calling `between` for every pid between its `stat`
/// read and its ids.
fn real_source(pidfd: bool, between: impl Fn(Pid) + Send + Sync + 'static) -> ProcfsSource {
    let proc = Path::new("/proc");
    let mut source =
        if pidfd { ProcfsSource::open(proc) } else { ProcfsSource::open_reading_status(proc) }
            .expect("open /proc");
    assert_eq!(source.ids() == IdSource::Pidfd, pidfd, "the path asked for is the path taken");
    source.between = Some(Box::new(between));
    source
}

#[test]
fn our_own_proc_reads_ids_through_pidfds_where_the_kernel_has_them() {
    let source = ProcfsSource::open(Path::new("/proc")).unwrap();
    let want = if kernel_has_pidfd_info() { IdSource::Pidfd } else { IdSource::Status };
    assert_eq!(source.ids(), want);
}

#[test]
fn a_fake_proc_is_not_our_namespace_and_reads_status() {
    let root = std::env::temp_dir().join(format!("libproc-fake-ns-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("1")).unwrap();
    std::fs::write(root.join("stat"), "btime 1700000000\n").unwrap();
    let stat = "1 (init) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 3 0 5 0 0\n";
    std::fs::write(root.join("1/stat"), stat).unwrap();
    std::fs::write(root.join("1/status"), "Uid:\t7\t8\t9\t9\nGid:\t5\t6\t6\t6\nThreads:\t2\n")
        .unwrap();
    let mut source = ProcfsSource::open(&root).unwrap();
    let snapshot = source.read().unwrap();
    std::fs::remove_dir_all(&root).unwrap();
    assert_eq!(source.ids(), IdSource::Status);
    let p = snapshot.find(1).unwrap();
    // From status, not from whatever pid 1 of this machine is: its ids and its Threads line.
    assert_eq!((p.ruid, p.euid, p.svuid, p.rgid, p.egid, p.threads), (7, 8, 9, 5, 6, Some(2)));
}

#[test]
fn the_pidfd_path_and_the_status_path_agree_on_real_processes() {
    let children: Vec<Child> = (0..3).map(|_| sleeper()).collect();
    // Before 6.13 both read status (our_own_proc_reads_ids_... checks that choice).
    let mut fast = real_source(kernel_has_pidfd_info(), |_| {});
    let mut slow = real_source(false, |_| {});
    let (a, b) = (fast.read().unwrap(), slow.read().unwrap());
    let key = |p: &Process| (p.euid, p.ruid, p.svuid, p.egid, p.rgid);
    let mut compared = 0;
    for p in &a.processes {
        // The same process in both (a pid reused between the reads has another start time).
        let Some(q) = b.find(p.pid).filter(|q| q.start == p.start && q.comm == p.comm) else {
            continue;
        };
        assert_eq!(key(p), key(q), "pid {} ({}): pidfd vs status", p.pid, p.comm);
        compared += 1;
    }
    for child in &children {
        let pid = child.id() as Pid;
        let (p, q) = (a.find(pid).unwrap(), b.find(pid).unwrap());
        assert_eq!((key(p), p.threads), (key(q), q.threads), "our sleep {pid}");
        assert_eq!(p.threads, Some(1), "threads from stat field 20");
    }
    assert!(compared > 3, "only {compared} processes compared");
    children.into_iter().for_each(end);
}

#[test]
fn a_process_reaped_between_stat_and_its_ids_is_vanished_on_both_paths() {
    for pidfd in [true, false] {
        let child = sleeper();
        let pid = child.id() as Pid;
        let child = Mutex::new(Some(child));
        let mut source = real_source(pidfd && kernel_has_pidfd_info(), move |p| {
            if p == pid {
                if let Some(child) = child.lock().unwrap().take() {
                    end(child);
                }
            }
        });
        let snapshot = source.read().unwrap();
        assert_eq!(snapshot.find(pid), None, "pidfd {pidfd}: the reaped sleep is not counted");
        assert!(snapshot.unreadable.vanished >= 1, "pidfd {pidfd}: {:?}", snapshot.unreadable);
        // On the pidfd path the ioctl's ESRCH sent it to status before it was called vanished.
        let via_pidfd = source.ids() == IdSource::Pidfd;
        assert_eq!(source.status_fallbacks() >= 1, via_pidfd, "pidfd {pidfd}");
    }
}

/// Writes `pid - 1` to `ns_last_pid` and forks `cat` as `uid` until it gets `pid`: a real
/// recycled pid. Other processes forking meanwhile can take it first, hence the tries.
fn take_pid(pid: Pid, uid: u32) -> Child {
    use std::os::unix::process::CommandExt;
    for _ in 0..500 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
        let child = Command::new("cat").stdin(Stdio::piped()).uid(uid).spawn().unwrap();
        if child.id() as Pid == pid {
            return child;
        }
        end(child);
    }
    panic!("could not recycle pid {pid} in 500 tries");
}

/// What `/proc/PID` of a recycled pid held in the snapshot: a `sleep` (root) was read by
/// `stat`, then reaped, and a `cat` of uid 65534 took its pid before the ids were read.
fn recycled_read(pidfd: bool) -> (Option<(String, u32, u32)>, Unreadable) {
    let old = sleeper();
    let pid = old.id() as Pid;
    let state = Mutex::new((Some(old), None::<Child>));
    let state = std::sync::Arc::new(state);
    let hook_state = state.clone();
    let mut source = real_source(pidfd, move |p| {
        if p != pid {
            return;
        }
        let mut state = hook_state.lock().unwrap();
        if let Some(old) = state.0.take() {
            end(old);
            state.1 = Some(take_pid(pid, 65534));
        }
    });
    let snapshot = source.read().unwrap();
    if let Some(new) = state.lock().unwrap().1.take() {
        end(new);
    }
    let found = snapshot.find(pid).map(|p| (p.comm.to_string(), p.euid, p.ruid));
    (found, snapshot.unreadable)
}

#[test]
#[ignore = "needs root (recycles a pid through ns_last_pid, starts a process as uid 65534)"]
fn a_recycled_pid_never_gets_the_ids_of_the_process_that_took_it() {
    assert!(kernel_has_pidfd_info(), "the pidfd path needs Linux 6.13 or later");
    // Control: the status path has nothing pinning the process, so the hook's recycling
    // shows: sleep's stat with cat's ids. (This is why the pidfd path reads stat pinned.)
    let (found, _) = recycled_read(false);
    assert_eq!(found, Some(("sleep".to_string(), 65534, 65534)), "the control did not recycle");
    // The pidfd path: stat was sleep's, the ioctl says ESRCH (reaped), status is cat's, and
    // the pidfd polls hung up, so the line is dropped as vanished rather than mixed.
    let (found, unreadable) = recycled_read(true);
    assert_eq!(found, None, "a recycled pid was read with another process's ids");
    assert!(unreadable.vanished >= 1, "{unreadable:?}");
}
