//! A snapshot from Linux's `/proc`: `PID/stat` for every pid, and its ids through a pidfd
//! (`PIDFD_GET_INFO`) or from `PID/status`, read through the [`procfs`] binding and
//! assembled into [`Process`] records.
//!
//! Which way the ids come is decided once, when the source opens ([`IdSource`]): through a
//! pidfd where the kernel answers `PIDFD_GET_INFO` (6.13 and later) and the mount is of our
//! own pid namespace, else from `status`. The pidfd way skips the kernel's formatting of the
//! `status` text, a third of the read (`benches/run.sh` measures both).
//!
//! The cost is almost all kernel time spent generating those two files (see
//! `docs/bench-baseline.md`), so the reader does the least user-space work around them: the
//! binding's one `openat`, one `read` into a reused buffer and one `close` per file, no
//! per-pid allocation, parsing on bytes in one pass, and the pids shared out across the
//! cores in blocks. `benches/run.sh` measures the result against a C program doing the
//! same reads (`benches/floor/floor.c`); `BENCHMARKS.md` has the figures.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::{
    Comm, DiskBytes, Error, Os, Process, Snapshot, Source, StartTime, State, Tty, Unreadable, Usage,
};
use crate::host::Limits;
use crate::host::terminals;
use crate::libproc::Pid;
use crate::procfs::pidfd::Pidfd;
use crate::procfs::stat::{parse_io, parse_stat, parse_status_ids};
use crate::procfs::{
    self,
    read::{ReadError, Root},
};

/// Pids per thread, at the least: 256 pids are about 6 ms of kernel work, a thread costs
/// tens of microseconds to start.
const PIDS_PER_WORKER: usize = 256;
/// Pids a thread takes at a time. Small enough that a thread whose core is busy with other
/// work holds up the end of the scrape by at most one block (about 1.5 ms), large enough
/// that taking one is free.
const BLOCK: usize = 64;
/// Big enough for any `stat` the kernel writes and the start of `status` up to the Gid line.
/// A `stat` that fills it is read on to the end (see [`Root::read_file`]).
const READ_BUF: usize = 4096;
/// A `stat` longer than this is not one: the process is counted unreadable.
const STAT_MAX: usize = 1 << 20;

/// Where a procfs snapshot's uids and gids come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdSource {
    /// `pidfd_open`, `PID/stat`, then `PIDFD_GET_INFO` on the pidfd: `status` is not opened
    /// (the thread count comes from `stat`). A process the ioctl does not answer for is read
    /// through `status` as below.
    Pidfd,
    /// `PID/stat`, then `PID/status`.
    Status,
}

impl IdSource {
    /// `pidfd` or `status`, for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            IdSource::Pidfd => "pidfd",
            IdSource::Status => "status",
        }
    }
}

/// Reads snapshots from a procfs mount.
pub struct ProcfsSource {
    root: Root,
    ids: IdSource,
    /// Whether `PID/io` is read for the disk figures (`--collector.resources.io`).
    disk_io: bool,
    /// Processes read through `status` on the pidfd path since the source opened.
    fallbacks: AtomicU64,
    /// Called between the `stat` read and the ids of each process: a test reaps and recycles
    /// a pid there.
    #[cfg(test)]
    between: Option<Box<dyn Fn(Pid) + Send + Sync>>,
    boot_time: u64,
    clock_ticks: u64,
    page_size: u64,
    workers: usize,
    pids: Vec<Pid>,
    ttys: procfs::tty::Namer,
}

impl ProcfsSource {
    /// Opens the procfs mounted at `root` (usually `/proc`), reading the ids through pidfds
    /// where the kernel and the mount allow it. The source's [`name`](Source::name) says
    /// which (the exporter's start-up line shows it); why not is logged at debug level.
    ///
    /// # Platform-specific behavior
    /// Pidfds are Linux's (6.13 and later for `PIDFD_GET_INFO`); elsewhere, and on an older
    /// kernel, under a seccomp filter refusing them, or with a mount of another pid
    /// namespace, the ids come from `status`.
    pub fn open(root: &Path) -> Result<ProcfsSource, Error> {
        let mut source = ProcfsSource::open_reading_status(root)?;
        match procfs::pidfd::available(root) {
            Ok(()) => source.ids = IdSource::Pidfd,
            // Debug, not info: a start-up that fails after this (a taken port) says one line.
            Err(why) => crate::log::debug(
                "reading process ids from status, not through pidfds",
                &[("reason", &why.to_string())],
            ),
        }
        Ok(source)
    }

    /// Opens the procfs mounted at `root` reading every process's ids from `status`, whatever
    /// the kernel offers: the path older kernels take, kept reachable for tests and for
    /// comparing the two.
    pub fn open_reading_status(root: &Path) -> Result<ProcfsSource, Error> {
        let io = |error| Error::Io { path: root.to_path_buf(), error };
        let dir = Root::open(root).map_err(io)?;
        let boot_time = procfs::sys::boot_time(root)
            .map_err(|e| Error::Io { path: root.join("stat"), error: e })?
            .unwrap_or(0);
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
        Ok(ProcfsSource {
            root: dir,
            ids: IdSource::Status,
            disk_io: false,
            fallbacks: AtomicU64::new(0),
            #[cfg(test)]
            between: None,
            boot_time,
            // Linux has been 100 (USER_HZ) everywhere for decades; sysconf failing is not worth a
            // refusal to start.
            clock_ticks: crate::host::clock_ticks().unwrap_or(100),
            // 4 KiB on every Linux the exporter is built for but arm64 kernels configured for
            // 16 or 64 KiB pages, where sysconf answers.
            page_size: crate::host::page_size().unwrap_or(4096),
            workers,
            pids: Vec::new(),
            ttys: procfs::tty::Namer::new(),
        })
    }

    /// The same source reading `PID/io` too when `disk_io` (`--collector.resources.io`): one
    /// more read per process, refused for another user's process without ptrace access
    /// (that process then has no disk figures; its CPU and memory are still read).
    pub fn reading_disk_io(mut self, disk_io: bool) -> ProcfsSource {
        self.disk_io = disk_io;
        self
    }

    /// Where this source reads the ids from.
    pub fn ids(&self) -> IdSource {
        self.ids
    }

    /// Processes whose ids the pidfd path read from `status` (the ioctl did not answer for
    /// them) since the source opened.
    pub fn status_fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Reads the table once.
    pub fn read(&mut self) -> Result<Snapshot, Error> {
        self.root
            .list_pids(&mut self.pids)
            .map_err(|error| Error::Io { path: self.root.path().to_path_buf(), error })?;
        let reader = Reader {
            root: &self.root,
            ids: self.ids,
            disk_io: self.disk_io,
            fallbacks: &self.fallbacks,
            boot_time: self.boot_time,
            clock_ticks: self.clock_ticks,
            page_size: self.page_size,
            #[cfg(test)]
            between: self.between.as_deref(),
        };
        let pids = &self.pids[..];
        let workers = self.workers.min(pids.len().div_ceil(PIDS_PER_WORKER)).max(1);
        // Every thread appends its blocks here, so the table is allocated once, by this
        // thread, and not once more per worker.
        let processes = Mutex::new(Vec::with_capacity(pids.len()));
        let next = AtomicUsize::new(0);
        let out_of_descriptors = AtomicBool::new(false);
        let work = || reader.read_blocks(pids, &next, &processes, &out_of_descriptors);
        let unreadable = std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..workers).map(|_| scope.spawn(work)).collect();
            // This thread takes blocks too instead of waiting.
            let mut unreadable = work();
            for helper in helpers {
                // A worker only reads and parses bytes; if it panicked that is a bug worth
                // seeing (the server turns the panic into a failed scrape).
                let u = helper.join().expect("procfs worker panicked");
                unreadable.vanished += u.vanished;
                unreadable.permission += u.permission;
                unreadable.other += u.other;
            }
            unreadable
        });
        if out_of_descriptors.into_inner() {
            return Err(Error::Io {
                path: self.root.path().to_path_buf(),
                error: std::io::Error::from_raw_os_error(libc::EMFILE),
            });
        }
        // Blocks arrive in whatever order the threads finished them.
        let mut processes = processes.into_inner().unwrap_or_else(|p| p.into_inner());
        processes.sort_unstable_by_key(|p| p.pid);

        let mut devs: Vec<u32> = processes.iter().filter_map(|p| p.tty).collect();
        devs.sort_unstable();
        devs.dedup();
        let ttys = self
            .ttys
            .name_all(&devs, dev_terminals)
            .into_iter()
            .map(|(dev, name)| Tty { dev, name })
            .collect();
        let euid = crate::host::euid();
        let limits = procfs::sys::limits(self.root.path());
        Ok(Snapshot {
            os: Os::Linux,
            origin: Os::Linux,
            processes,
            unreadable,
            // Every user can read stat and status of every process (unless /proc is mounted
            // with hidepid, which root bypasses); root is the one reader guaranteed to see all.
            privileged: euid == 0,
            caller_euid: euid,
            ttys,
            users: Default::default(),
            limits: Limits::from(&limits),
            forks: procfs::sys::forks(self.root.path()),
            threads_max: limits.threads_max,
            // Every process read has its usage: it comes from the stat line itself.
            usage_unreadable: Unreadable::default(),
        })
    }
}

impl Source for ProcfsSource {
    /// `procfs/pidfd` or `procfs/status`: where the ids come from ([`IdSource`]).
    fn name(&self) -> &'static str {
        match self.ids {
            IdSource::Pidfd => "procfs/pidfd",
            IdSource::Status => "procfs/status",
        }
    }

    fn snapshot(&mut self) -> Result<Snapshot, Error> {
        self.read()
    }
}

/// The per-thread part of a read: everything it touches is either shared read-only or its own.
#[derive(Clone, Copy)]
struct Reader<'a> {
    root: &'a Root,
    ids: IdSource,
    disk_io: bool,
    fallbacks: &'a AtomicU64,
    #[cfg(test)]
    between: Option<&'a (dyn Fn(Pid) + Send + Sync)>,
    boot_time: u64,
    clock_ticks: u64,
    page_size: u64,
}

impl Reader<'_> {
    /// Reads blocks of [`BLOCK`] pids until none are left, appending each block's processes
    /// to `out`. Taking blocks rather than a fixed share keeps every thread busy to the end
    /// even when some core is also running something else.
    fn read_blocks(
        &self,
        pids: &[Pid],
        next: &AtomicUsize,
        out: &Mutex<Vec<Process>>,
        out_of_descriptors: &AtomicBool,
    ) -> Unreadable {
        let mut buf = vec![0u8; READ_BUF];
        let mut block = Vec::with_capacity(BLOCK);
        let mut unreadable = Unreadable::default();
        loop {
            let start = next.fetch_add(BLOCK, Ordering::Relaxed);
            let Some(rest) = pids.get(start..).filter(|rest| !rest.is_empty()) else { break };
            if out_of_descriptors.load(Ordering::Relaxed) {
                break;
            }
            for &pid in &rest[..rest.len().min(BLOCK)] {
                match self.read_one(pid, &mut buf).and_then(|p| self.read_io(p, &mut buf)) {
                    Ok(p) => block.push(p),
                    Err(ReadError::Vanished) => unreadable.vanished += 1,
                    Err(ReadError::Permission) => unreadable.permission += 1,
                    Err(ReadError::Other) => unreadable.other += 1,
                    Err(ReadError::NoDescriptors) => {
                        out_of_descriptors.store(true, Ordering::Relaxed);
                        return unreadable;
                    }
                }
            }
            out.lock().unwrap_or_else(|p| p.into_inner()).append(&mut block);
        }
        unreadable
    }

    /// `PID/io` into the process's usage when asked for. Only running out of descriptors
    /// fails the process: refused, vanished or unparsable, it just has no disk figures.
    fn read_io(&self, mut process: Process, buf: &mut Vec<u8>) -> Result<Process, ReadError> {
        if !self.disk_io {
            return Ok(process);
        }
        let disk = match self.root.read_file(process.pid, b"io", buf, 0) {
            Ok(n) => parse_io(&buf[..n]),
            Err(ReadError::NoDescriptors) => return Err(ReadError::NoDescriptors),
            Err(_) => None,
        };
        if let Some(usage) = &mut process.usage {
            usage.disk = disk.map(|(read, written)| DiskBytes { read, written });
        }
        Ok(process)
    }

    fn read_one(&self, pid: Pid, buf: &mut Vec<u8>) -> Result<Process, ReadError> {
        if self.ids == IdSource::Pidfd {
            match Pidfd::open(pid) {
                Ok(pidfd) => return self.read_pinned(pid, &pidfd, buf),
                Err(libc::EMFILE | libc::ENFILE) => return Err(ReadError::NoDescriptors),
                // ESRCH (gone), or EINVAL/ENOENT (reaped meanwhile, or not a process): the
                // status path reads it if it is there and says vanished if not.
                Err(_) => {}
            }
        }
        let mut process = self.read_stat(pid, buf)?;
        self.between(pid);
        // The Uid and Gid lines are near the top: the first buffer of status is enough.
        let n = self.root.read_file(pid, b"status", buf, 0)?;
        set_status_ids(&mut process, &buf[..n])?;
        Ok(process)
    }

    /// The pidfd path: `pidfd` was opened before `stat` is read, so an answer from it after
    /// the read proves the line was this process's and not one that took its number
    /// (`docs/linux-pidfd.md`, section 3).
    fn read_pinned(
        &self,
        pid: Pid,
        pidfd: &Pidfd,
        buf: &mut Vec<u8>,
    ) -> Result<Process, ReadError> {
        let mut process = self.read_stat(pid, buf)?;
        self.between(pid);
        match pidfd.creds() {
            Ok(creds) => {
                [process.ruid, process.euid, process.svuid] = [creds.ruid, creds.euid, creds.suid];
                [process.rgid, process.egid] = [creds.rgid, creds.egid];
                Ok(process)
            }
            // ESRCH is a reaped process, or on 6.13-6.15.2 a live one whose parent is outside
            // our namespace (docs/linux-pidfd.md, section 2.5); anything else is this process
            // only. Its status says which: read it, then ask the pidfd whether the process was
            // reaped. Not reaped then means not reaped before the read either, so the number
            // was still this process's and status is its own.
            Err(_) => {
                self.fallbacks.fetch_add(1, Ordering::Relaxed);
                let n = self.root.read_file(pid, b"status", buf, 0)?;
                set_status_ids(&mut process, &buf[..n])?;
                if pidfd.reaped() {
                    return Err(ReadError::Vanished);
                }
                Ok(process)
            }
        }
    }

    /// A test's hook between the `stat` read and the ids; nothing outside tests.
    fn between(&self, _pid: Pid) {
        #[cfg(test)]
        if let Some(between) = self.between {
            between(_pid);
        }
    }

    /// `PID/stat` as a process without its ids (0) yet; threads from field 20.
    fn read_stat(&self, pid: Pid, buf: &mut Vec<u8>) -> Result<Process, ReadError> {
        let n = self.root.read_file(pid, b"stat", buf, STAT_MAX)?;
        let stat = parse_stat(&buf[..n]).ok_or(ReadError::Other)?;
        Ok(Process {
            pid,
            ppid: stat.ppid,
            pgid: stat.pgid,
            euid: 0,
            ruid: 0,
            svuid: 0,
            egid: 0,
            rgid: 0,
            tty: (stat.tty_nr != 0).then_some(stat.tty_nr),
            state: State::from_linux(stat.state),
            bsd_status: None,
            comm: Comm::new(stat.comm),
            flags: None,
            start: start_time(self.boot_time, stat.start_ticks, self.clock_ticks),
            uniqueid: None,
            threads: stat.threads,
            sid: Some(stat.sid),
            usage: Some(Usage {
                user_ns: ticks_to_ns(stat.utime, self.clock_ticks),
                system_ns: ticks_to_ns(stat.stime, self.clock_ticks),
                child_user_ns: ticks_to_ns(stat.cutime, self.clock_ticks),
                child_system_ns: ticks_to_ns(stat.cstime, self.clock_ticks),
                resident_bytes: stat.rss_pages.saturating_mul(self.page_size),
                footprint_bytes: 0,
                disk: None,
            }),
        })
    }
}

/// The ids and thread count of `status` into `process`.
fn set_status_ids(process: &mut Process, status: &[u8]) -> Result<(), ReadError> {
    let ids = parse_status_ids(status).ok_or(ReadError::Other)?;
    [process.ruid, process.euid, process.svuid] = [ids.uid[0], ids.uid[1], ids.uid[2]];
    [process.rgid, process.egid] = [ids.gid[0], ids.gid[1]];
    process.threads = ids.threads;
    Ok(())
}

/// The terminal devices in `/dev`, for the names the kernel does not fix; none when `/dev`
/// cannot be read (the numbers are then named `major:minor`).
fn dev_terminals() -> Vec<(u32, String)> {
    let ttys = terminals::scan(Path::new("/dev")).unwrap_or_default();
    ttys.into_iter().map(|t| (t.dev, t.name)).collect()
}

/// Clock ticks as nanoseconds, saturating (a tick count near 2^64 is corrupt, not real).
fn ticks_to_ns(ticks: u64, clock_ticks: u64) -> u64 {
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(clock_ticks);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// A start time from the boot time and the clock ticks after boot. `None` (unknown, written
/// `null` by `record`) when it does not fit in 64-bit seconds: only a corrupt `btime` or
/// `starttime` gets there, and a wrapped time would be a made-up one.
fn start_time(boot_time: u64, ticks: u64, clock_ticks: u64) -> Option<StartTime> {
    let sec = boot_time.checked_add(ticks / clock_ticks)?;
    // Below 1,000,000 since ticks % clock_ticks < clock_ticks; u128 cannot overflow.
    let usec = u128::from(ticks % clock_ticks) * 1_000_000 / u128::from(clock_ticks);
    Some(StartTime { sec, usec: usec as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A procfs tree in a temporary directory: `stat` with `btime`, and `PID/stat` and
    /// `PID/status` for each `(entry name, stat line)`.
    fn fake_proc(test: &str, btime: u64, entries: &[(&str, String)]) -> PathBuf {
        let root = std::env::temp_dir()
            .join(format!("libproc-exporter-fake-proc-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("stat"), format!("cpu 1 2 3\nbtime {btime}\n")).unwrap();
        for (name, stat) in entries {
            let dir = root.join(name);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("stat"), stat).unwrap();
            let status = "Name:\tx\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
            std::fs::write(dir.join("status"), status).unwrap();
        }
        root
    }

    /// A `stat` line: `comm` as given, sleeping, parent `ppid`, started `start` ticks after boot.
    fn stat_line(pid: Pid, comm: &str, ppid: Pid, start: u64) -> String {
        format!(
            "{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0\n"
        )
    }

    fn read_fake(root: &Path) -> Snapshot {
        let snapshot = ProcfsSource::open(root).unwrap().read().unwrap();
        std::fs::remove_dir_all(root).unwrap();
        snapshot
    }

    #[test]
    fn proc_entries_that_are_not_canonical_pids_are_skipped() {
        // "01" and "4294967297" used to be read as a second and third pid 1, "2147483648" as
        // pid -2147483648 (then counted vanished).
        let entries: Vec<(&str, String)> = ["1", "01", "4294967297", "2147483648", "2147483647"]
            .iter()
            .map(|&name| (name, stat_line(1, name, 0, 5)))
            .collect();
        let snapshot = read_fake(&fake_proc("names", 1_700_000_000, &entries));
        let pids: Vec<Pid> = snapshot.processes.iter().map(|p| p.pid).collect();
        assert_eq!(pids, [1, i32::MAX]);
        assert_eq!(snapshot.processes[0].comm.to_string(), "1", "read from /proc/1 only");
        assert_eq!(snapshot.unreadable.total(), 0);
    }

    #[test]
    fn a_stat_longer_than_the_buffer_is_read_whole_not_misparsed() {
        // The command name holds a whole fake stat tail; the real one comes after 5000 bytes.
        // Cut at 4096, the last ')' was the fake one: a zombie whose parent is 99.
        let comm = format!("a) Z 99 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 7 {}", "x".repeat(5000));
        let long = stat_line(2, &comm, 1, 5);
        assert!(long.len() > READ_BUF);
        let too_long = stat_line(3, &"y".repeat(STAT_MAX), 1, 5);
        let entries = [("1", stat_line(1, "init", 0, 5)), ("2", long), ("3", too_long)];
        let snapshot = read_fake(&fake_proc("long-stat", 1_700_000_000, &entries));
        let p = snapshot.find(2).expect("pid 2 is read");
        assert_eq!((p.state, p.ppid, p.pgid), (State::Sleeping, 1, 2));
        assert_eq!(snapshot.find(3), None, "a stat over STAT_MAX is unreadable");
        assert_eq!(snapshot.unreadable.other, 1);
    }

    #[test]
    fn a_start_time_beyond_u64_is_unknown_not_wrapped() {
        let entries = [("1", stat_line(1, "init", 0, 1000)), ("2", stat_line(2, "b", 1, 0))];
        let snapshot = read_fake(&fake_proc("btime", u64::MAX - 5, &entries));
        // 1000 ticks are 10 s (100 Hz) or more: past u64::MAX.
        assert_eq!(snapshot.find(1).unwrap().start, None);
        let at_boot = StartTime { sec: u64::MAX - 5, usec: 0 };
        assert_eq!(snapshot.find(2).unwrap().start, Some(at_boot));
        assert_eq!(start_time(10, 250, 100), Some(StartTime { sec: 12, usec: 500_000 }));
    }

    #[test]
    fn usage_comes_from_the_stat_line_in_nanoseconds_and_bytes() {
        let line = |pid: Pid| {
            format!("{pid} (cc1) R 1 {pid} {pid} 0 -1 0 0 0 0 0 250 50 70 30 20 0 1 0 5 9000 300\n")
        };
        let snapshot = read_fake(&fake_proc("usage", 1_700_000_000, &[("7", line(7))]));
        let usage = snapshot.find(7).unwrap().usage.unwrap();
        let tick = 1_000_000_000 / crate::host::clock_ticks().unwrap();
        assert_eq!((usage.user_ns, usage.system_ns), (250 * tick, 50 * tick));
        assert_eq!((usage.child_user_ns, usage.child_system_ns), (70 * tick, 30 * tick));
        assert_eq!(usage.resident_bytes, 300 * crate::host::page_size().unwrap());
        assert_eq!((usage.footprint_bytes, usage.disk), (0, None));
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX, "saturates, does not wrap");
    }
}

// Against this machine's real processes: the two ways of reading ids, and pid reuse.
#[cfg(all(test, target_os = "linux"))]
#[path = "procfs_pidfd_tests.rs"]
mod pidfd_tests;
