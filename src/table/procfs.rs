//! A snapshot from Linux's `/proc`: `PID/stat` and `PID/status` for every pid.
//!
//! The cost is almost all kernel time spent generating those two files (see
//! `docs/bench-baseline.md`), so the reader does the least user-space work around them:
//! one `openat` relative to a `/proc` directory descriptor, one `read` into a reused buffer
//! and one `close` per file, no per-pid allocation, parsing on bytes in one pass, and the
//! pids shared out across the cores in blocks. `benches/run.sh` measures the result against
//! a C program doing the same reads (`benches/floor/floor.c`); `BENCHMARKS.md` has the
//! figures.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{Comm, Error, Os, Process, Snapshot, Source, StartTime, State, Unreadable};
use crate::host::procfs_stat::{parse_stat, parse_status_ids, parse_u64};
use crate::host::terminals::LinuxNamer;
use crate::libproc::Pid;

/// Pids per thread, at the least: 256 pids are about 6 ms of kernel work, a thread costs
/// tens of microseconds to start.
const PIDS_PER_WORKER: usize = 256;
/// Pids a thread takes at a time. Small enough that a thread whose core is busy with other
/// work holds up the end of the scrape by at most one block (about 1.5 ms), large enough
/// that taking one is free.
const BLOCK: usize = 64;
/// Big enough for any `stat` and the start of `status` up to the Gid line.
const READ_BUF: usize = 4096;

/// Reads snapshots from a procfs mount.
pub struct ProcfsSource {
    root: PathBuf,
    root_c: CString,
    dir: OwnedFd,
    boot_time: u64,
    clock_ticks: u64,
    workers: usize,
    pids: Vec<Pid>,
    ttys: LinuxNamer,
}

impl ProcfsSource {
    /// Opens the procfs mounted at `root` (usually `/proc`).
    pub fn open(root: &Path) -> Result<ProcfsSource, Error> {
        let io = |error| Error::Io { path: root.to_path_buf(), error };
        let root_c = CString::new(root.as_os_str().as_encoded_bytes())
            .map_err(|_| io(std::io::Error::other("path contains a NUL byte")))?;
        // SAFETY: root_c is NUL-terminated; open has no other preconditions.
        let fd = unsafe {
            libc::open(root_c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC)
        };
        if fd < 0 {
            return Err(io(std::io::Error::last_os_error()));
        }
        // SAFETY: fd is a descriptor we just opened and own.
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        let stat = std::fs::read_to_string(root.join("stat"))
            .map_err(|e| Error::Io { path: root.join("stat"), error: e })?;
        let boot_time = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
        Ok(ProcfsSource {
            root: root.to_path_buf(),
            root_c,
            dir,
            boot_time,
            // Linux has been 100 (USER_HZ) everywhere for decades; sysconf failing is not worth a
            // refusal to start.
            clock_ticks: crate::host::clock_ticks().unwrap_or(100),
            workers,
            pids: Vec::new(),
            ttys: LinuxNamer::new(Path::new("/dev")),
        })
    }

    /// Lists the numeric entries of the procfs root into `self.pids`.
    fn list_pids(&mut self) -> Result<(), Error> {
        self.pids.clear();
        // SAFETY: root_c is NUL-terminated.
        let dir = unsafe { libc::opendir(self.root_c.as_ptr()) };
        if dir.is_null() {
            return Err(Error::Io {
                path: self.root.clone(),
                error: std::io::Error::last_os_error(),
            });
        }
        loop {
            // SAFETY: dir is a valid, open DIR*; readdir returns NULL at the end.
            let entry = unsafe { libc::readdir(dir) };
            if entry.is_null() {
                break;
            }
            // SAFETY: d_name of a returned entry is a NUL-terminated name inside it.
            let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) };
            if let Some(pid) = parse_u64(name.to_bytes()) {
                self.pids.push(pid as Pid);
            }
        }
        // SAFETY: dir came from opendir and is closed once.
        unsafe { libc::closedir(dir) };
        Ok(())
    }

    /// Reads the table once.
    pub fn read(&mut self) -> Result<Snapshot, Error> {
        self.list_pids()?;
        let reader = Reader {
            dir: self.dir.as_raw_fd(),
            boot_time: self.boot_time,
            clock_ticks: self.clock_ticks,
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
                path: self.root.clone(),
                error: std::io::Error::from_raw_os_error(libc::EMFILE),
            });
        }
        // Blocks arrive in whatever order the threads finished them.
        let mut processes = processes.into_inner().unwrap_or_else(|p| p.into_inner());
        processes.sort_unstable_by_key(|p| p.pid);

        let mut devs: Vec<u32> = processes.iter().filter_map(|p| p.tty).collect();
        devs.sort_unstable();
        devs.dedup();
        let ttys = self.ttys.name_all(&devs);
        let euid = crate::host::euid();
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
            limits: crate::host::procfs_limits(&self.root),
            forks: crate::host::procfs_forks(&self.root),
            threads_max: crate::host::procfs_threads_max(&self.root),
        })
    }
}

impl Source for ProcfsSource {
    fn name(&self) -> &'static str {
        "procfs"
    }

    fn snapshot(&mut self) -> Result<Snapshot, Error> {
        self.read()
    }
}

/// The per-thread part of a read: everything it touches is either shared read-only or its own.
#[derive(Clone, Copy)]
struct Reader {
    dir: i32,
    boot_time: u64,
    clock_ticks: u64,
}

/// How reading one file failed.
enum ReadError {
    Vanished,
    Permission,
    /// EMFILE or ENFILE: this process (or the system) is out of descriptors. Not a fact about
    /// the pid: every read after it fails the same way, so the snapshot as a whole fails
    /// rather than count what it could not read as a partial table.
    NoDescriptors,
    Other,
}

impl Reader {
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
        let mut buf = [0u8; READ_BUF];
        let mut block = Vec::with_capacity(BLOCK);
        let mut unreadable = Unreadable::default();
        loop {
            let start = next.fetch_add(BLOCK, Ordering::Relaxed);
            let Some(rest) = pids.get(start..).filter(|rest| !rest.is_empty()) else { break };
            if out_of_descriptors.load(Ordering::Relaxed) {
                break;
            }
            for &pid in &rest[..rest.len().min(BLOCK)] {
                match self.read_one(pid, &mut buf) {
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

    fn read_one(&self, pid: Pid, buf: &mut [u8]) -> Result<Process, ReadError> {
        let n = self.read_file(pid, b"stat", buf)?;
        let stat = parse_stat(&buf[..n]).ok_or(ReadError::Other)?;
        let start_ticks = stat.start_ticks;
        // The ids come from status, read into the same buffer once stat is done with.
        let mut process = Process {
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
            start: Some(StartTime {
                sec: self.boot_time + start_ticks / self.clock_ticks,
                usec: (start_ticks % self.clock_ticks) * 1_000_000 / self.clock_ticks,
            }),
            uniqueid: None,
            threads: None,
        };
        let n = self.read_file(pid, b"status", buf)?;
        let ids = parse_status_ids(&buf[..n]).ok_or(ReadError::Other)?;
        [process.ruid, process.euid, process.svuid] = [ids.uid[0], ids.uid[1], ids.uid[2]];
        [process.rgid, process.egid] = [ids.gid[0], ids.gid[1]];
        process.threads = ids.threads;
        Ok(process)
    }

    /// `openat(dir, "PID/NAME")`, one `read`, `close`: the bytes read.
    fn read_file(&self, pid: Pid, name: &[u8], buf: &mut [u8]) -> Result<usize, ReadError> {
        let mut path = [0u8; 40];
        let mut len = write_decimal(&mut path, pid as u64);
        path[len] = b'/';
        len += 1;
        path[len..len + name.len()].copy_from_slice(name);
        // path[len + name.len()] is already the terminating NUL.
        // SAFETY: path is NUL-terminated within its 40 bytes (at most 20 digits + 8 bytes);
        // self.dir is an open directory descriptor for the life of the source.
        let fd = unsafe {
            libc::openat(self.dir, path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC)
        };
        if fd < 0 {
            return Err(classify(std::io::Error::last_os_error()));
        }
        // SAFETY: buf is a live, exclusively borrowed buffer of buf.len() bytes; fd is open.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        let read_error = (n < 0).then(std::io::Error::last_os_error);
        // SAFETY: fd is ours and closed exactly once.
        unsafe { libc::close(fd) };
        match read_error {
            Some(e) => Err(classify(e)),
            // An empty file: the task was torn down between open and read.
            None if n == 0 => Err(ReadError::Vanished),
            None => Ok(n as usize),
        }
    }
}

fn classify(error: std::io::Error) -> ReadError {
    match error.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESRCH) => ReadError::Vanished,
        Some(libc::EACCES) | Some(libc::EPERM) => ReadError::Permission,
        Some(libc::EMFILE) | Some(libc::ENFILE) => ReadError::NoDescriptors,
        _ => ReadError::Other,
    }
}

/// Writes `value` in decimal at the start of `out`, returning the length.
fn write_decimal(out: &mut [u8], mut value: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (value % 10) as u8;
        n += 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for i in 0..n {
        out[i] = digits[n - 1 - i];
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_descriptors_is_not_a_per_pid_failure() {
        let of = |errno| classify(std::io::Error::from_raw_os_error(errno));
        assert!(matches!(of(libc::EMFILE), ReadError::NoDescriptors));
        assert!(matches!(of(libc::ENFILE), ReadError::NoDescriptors));
        assert!(matches!(of(libc::ENOENT), ReadError::Vanished));
        assert!(matches!(of(libc::EACCES), ReadError::Permission));
        assert!(matches!(of(libc::EIO), ReadError::Other));
    }

    #[test]
    fn decimal_round_trip() {
        let mut out = [0u8; 20];
        for v in [0u64, 7, 10, 99_999, 4_194_304, u64::MAX] {
            let n = write_decimal(&mut out, v);
            assert_eq!(parse_u64(&out[..n]), Some(v).filter(|_| n <= 19));
        }
    }
}
