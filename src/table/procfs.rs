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
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Comm, Error, Os, Process, Snapshot, Source, StartTime, State, Unreadable};
use crate::host::terminals::LinuxNamer;
use crate::libproc::Pid;
use crate::limits;

/// Pids per thread, at the least: 256 pids are about 6 ms of kernel work, a thread costs
/// tens of microseconds to start.
const PIDS_PER_WORKER: usize = 256;
/// Pids a thread takes at a time. Small enough that a thread whose core is busy with other
/// work holds up the end of the scrape by at most one block (about 1.5 ms), large enough
/// that taking one is free.
const BLOCK: usize = 64;
/// Big enough for any `stat` the kernel writes and the start of `status` up to the Gid line.
/// A `stat` that fills it is read on to the end (see [`Reader::read_file`]).
const READ_BUF: usize = 4096;
/// A `stat` longer than this is not one: the process is counted unreadable.
const STAT_MAX: usize = 1 << 20;

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
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
        Ok(ProcfsSource {
            root: root.to_path_buf(),
            root_c,
            dir,
            boot_time,
            clock_ticks: if ticks > 0 { ticks as u64 } else { 100 },
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
            if let Some(pid) = parse_pid(name.to_bytes()) {
                self.pids.push(pid);
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
        let work = || reader.read_blocks(pids, &next, &processes);
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
            limits: limits::host(&self.root),
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
    ) -> Unreadable {
        let mut buf = vec![0u8; READ_BUF];
        let mut block = Vec::with_capacity(BLOCK);
        let mut unreadable = Unreadable::default();
        loop {
            let start = next.fetch_add(BLOCK, Ordering::Relaxed);
            let Some(rest) = pids.get(start..).filter(|rest| !rest.is_empty()) else { break };
            for &pid in &rest[..rest.len().min(BLOCK)] {
                match self.read_one(pid, &mut buf) {
                    Ok(p) => block.push(p),
                    Err(ReadError::Vanished) => unreadable.vanished += 1,
                    Err(ReadError::Permission) => unreadable.permission += 1,
                    Err(ReadError::Other) => unreadable.other += 1,
                }
            }
            out.lock().unwrap_or_else(|p| p.into_inner()).append(&mut block);
        }
        unreadable
    }

    fn read_one(&self, pid: Pid, buf: &mut Vec<u8>) -> Result<Process, ReadError> {
        let n = self.read_file(pid, b"stat", buf, STAT_MAX)?;
        let stat = parse_stat(&buf[..n]).ok_or(ReadError::Other)?;
        // The Uid and Gid lines are near the top: the first buffer of status is enough.
        let n = self.read_file(pid, b"status", buf, 0)?;
        let ids = parse_status_ids(&buf[..n]).ok_or(ReadError::Other)?;
        Ok(Process {
            pid,
            ppid: stat.ppid,
            pgid: stat.pgid,
            euid: ids.uid[1],
            ruid: ids.uid[0],
            svuid: ids.uid[2],
            egid: ids.gid[1],
            rgid: ids.gid[0],
            tty: (stat.tty_nr != 0).then_some(stat.tty_nr),
            state: State::from_linux(stat.state),
            bsd_status: None,
            comm: stat.comm,
            flags: None,
            start: start_time(self.boot_time, stat.start_ticks, self.clock_ticks),
        })
    }

    /// `openat(dir, "PID/NAME")`, `read`, `close`: the bytes read, at the front of `buf`.
    ///
    /// One `read` normally. A file that fills `buf` may be longer: with `up_to` above
    /// `buf.len()` it is read on (growing `buf`) to its end, and one longer than `up_to` is an
    /// error; with `up_to` 0 the first `buf.len()` bytes are all the caller wants.
    fn read_file(
        &self,
        pid: Pid,
        name: &[u8],
        buf: &mut Vec<u8>,
        up_to: usize,
    ) -> Result<usize, ReadError> {
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
        let mut len = 0;
        let result = loop {
            let free = &mut buf[len..];
            // SAFETY: free is a live, exclusively borrowed buffer of free.len() bytes; fd is
            // open.
            let n = unsafe { libc::read(fd, free.as_mut_ptr().cast(), free.len()) };
            if n < 0 {
                break Err(classify(std::io::Error::last_os_error()));
            }
            len += n as usize;
            if n == 0 || len < buf.len() || up_to == 0 {
                break Ok(len);
            }
            // Full: a procfs file continues where the last read stopped.
            if len >= up_to {
                break Err(ReadError::Other);
            }
            buf.resize((len * 2).min(up_to + 1), 0);
        };
        // SAFETY: fd is ours and closed exactly once.
        unsafe { libc::close(fd) };
        match result {
            // An empty file: the task was torn down between open and read.
            Ok(0) => Err(ReadError::Vanished),
            other => other,
        }
    }
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

fn classify(error: std::io::Error) -> ReadError {
    match error.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESRCH) => ReadError::Vanished,
        Some(libc::EACCES) | Some(libc::EPERM) => ReadError::Permission,
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

/// A `/proc` entry name as a pid: only the kernel's own spelling, canonical decimal in `Pid`
/// range. `01` would be read as pid 1 (a second copy of it), `4294967297` as pid 1 too and
/// `2147483648` as a negative pid; such entries are not processes.
fn parse_pid(name: &[u8]) -> Option<Pid> {
    if name.len() > 1 && name[0] == b'0' {
        return None;
    }
    Pid::try_from(parse_u64(name)?).ok()
}

/// A non-empty run of ASCII digits as a number.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0')))
}

fn parse_i64(s: &[u8]) -> Option<i64> {
    match s.split_first() {
        // checked: "-9223372036854775808" is representable, but -(v as i64) would overflow.
        Some((b'-', rest)) => parse_u64(rest).and_then(|v| 0i64.checked_sub_unsigned(v)),
        _ => parse_u64(s).map(|v| v as i64),
    }
}

/// The fields of `/proc/PID/stat` the exporter uses.
#[derive(Debug, PartialEq, Eq)]
pub struct Stat {
    /// Command name (between the first `(` and the last `)`).
    pub comm: Comm,
    /// State letter.
    pub state: u8,
    /// Parent pid.
    pub ppid: Pid,
    /// Process group.
    pub pgid: Pid,
    /// Session.
    pub sid: Pid,
    /// Controlling terminal (`new_encode_dev` form), 0 for none.
    pub tty_nr: u32,
    /// Start time in clock ticks after boot.
    pub start_ticks: u64,
}

/// Parses `/proc/PID/stat`. The command name may hold spaces, parentheses and even `) (`,
/// so it ends at the *last* `)` in the line.
pub fn parse_stat(buf: &[u8]) -> Option<Stat> {
    let open = buf.iter().position(|&b| b == b'(')?;
    let close = rfind_byte(buf, b')')?;
    if close < open {
        return None;
    }
    let comm = Comm::new(&buf[open + 1..close]);
    let mut fields = Fields(&buf[close + 1..]);
    let state = *fields.next()?.first()?;
    let ppid = parse_i64(fields.next()?)? as Pid;
    let pgid = parse_i64(fields.next()?)? as Pid;
    let sid = parse_i64(fields.next()?)? as Pid;
    // tty_nr is printed as a signed int; the device number is its 32 bits.
    let tty_nr = parse_i64(fields.next()?)? as u32;
    // tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime priority nice
    // num_threads itrealvalue, then starttime.
    let start_ticks = parse_u64(fields.nth(14)?)?;
    Some(Stat { comm, state, ppid, pgid, sid, tty_nr, start_ticks })
}

/// Real, effective, saved and filesystem ids from `/proc/PID/status`.
#[derive(Debug, PartialEq, Eq)]
pub struct StatusIds {
    /// `Uid:` line.
    pub uid: [u32; 4],
    /// `Gid:` line.
    pub gid: [u32; 4],
}

/// Parses the `Uid:` and `Gid:` lines of `/proc/PID/status`.
///
/// One pass from the top, hopping from line to line: the two lines are about 100 bytes in,
/// one after the other, and the kilobyte after them is never looked at. The `Name:` line
/// cannot fake a `Uid:` line: the kernel escapes a newline in the name.
pub fn parse_status_ids(buf: &[u8]) -> Option<StatusIds> {
    let mut uid_line = Fields(after_line_key(buf, b"Uid:")?);
    let uid = uid_line.ids()?;
    let mut gid_line = Fields(after_line_key(uid_line.0, b"Gid:")?);
    Some(StatusIds { uid, gid: gid_line.ids()? })
}

/// What follows `key` on the first line of `buf` that starts with it, and the rest of `buf`.
fn after_line_key<'a>(mut buf: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    loop {
        if let Some(rest) = buf.strip_prefix(key) {
            return Some(rest);
        }
        buf = &buf[buf.iter().position(|&b| b == b'\n')? + 1..];
    }
}

/// The blank-separated fields of one line, left to right; a newline ends the line.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.0.iter().position(|&b| b != b' ' && b != b'\t')?;
        let rest = &self.0[start..];
        let len = rest.iter().position(|&b| matches!(b, b' ' | b'\t' | b'\n'));
        let (field, tail) = rest.split_at(len.unwrap_or(rest.len()));
        self.0 = tail;
        (!field.is_empty()).then_some(field)
    }
}

impl Fields<'_> {
    /// The four ids of a `Uid:` or `Gid:` line: real, effective, saved, filesystem.
    fn ids(&mut self) -> Option<[u32; 4]> {
        let mut ids = [0u32; 4];
        for id in &mut ids {
            *id = u32::try_from(parse_u64(self.next()?)?).ok()?;
        }
        Some(ids)
    }
}

/// The position of the last `byte` in `buf`, eight bytes at a time. The end of a stat line
/// is 150-250 bytes of numbers after the command name; scanning them back a byte at a time
/// was half of the stat parser's time.
fn rfind_byte(buf: &[u8], byte: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let chunks = buf.rchunks_exact(8);
    let head = chunks.remainder();
    for (i, chunk) in chunks.enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // Zero where the byte is; (w - 1) & !w & 0x80 per lane is non-zero iff some lane is.
        let w = u64::from_ne_bytes(word) ^ (ONES * u64::from(byte));
        if w.wrapping_sub(ONES) & !w & HIGHS != 0 {
            let start = buf.len() - (i + 1) * 8;
            return chunk.iter().rposition(|&b| b == byte).map(|p| start + p);
        }
    }
    head.iter().rposition(|&b| b == byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parentheses_and_spaces_in_comm() {
        let line = b"4242 (a) (b c)) S 1 4242 4242 34816 4242 4194560 1 2 3 4 5 6 7 8 20 0 1 0 987654 1000 100\n";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.comm.to_string(), "a) (b c)");
        assert_eq!((stat.state, stat.ppid, stat.pgid, stat.sid), (b'S', 1, 4242, 4242));
        assert_eq!(stat.tty_nr, 34816);
        assert_eq!(stat.start_ticks, 987654);
    }

    #[test]
    fn stat_of_a_kernel_thread() {
        let line = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 3 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let stat = parse_stat(line).unwrap();
        assert_eq!((stat.ppid, stat.pgid, stat.tty_nr, stat.start_ticks), (0, 0, 0, 3));
    }

    #[test]
    fn stat_with_i64_min_is_parsed_not_a_panic() {
        // Found by the proc_stat fuzz target: negating i64::MIN overflowed.
        let line = b"1 (a) S -9223372036854775808 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5 0";
        assert_eq!(parse_stat(line).map(|s| s.start_ticks), Some(5));
    }

    #[test]
    fn stat_truncated_is_rejected_not_misread() {
        assert_eq!(parse_stat(b"12 (x) S 1 12"), None);
        assert_eq!(parse_stat(b"12 )x( S 1 12 12 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5"), None);
        assert_eq!(parse_stat(b""), None);
    }

    #[test]
    fn status_ids() {
        let status = b"Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t7\nUid:\t1000\t0\t1000\t0\nGid:\t20\t21\t22\t23\nFDSize:\t64\n";
        let ids = parse_status_ids(status).unwrap();
        assert_eq!(ids.uid, [1000, 0, 1000, 0]);
        assert_eq!(ids.gid, [20, 21, 22, 23]);
        assert_eq!(parse_status_ids(b"Name:\tx\nUid:\t1\t2\n"), None);
    }

    #[test]
    fn rfind_byte_agrees_with_a_plain_scan() {
        let line =
            b"4242 (a) (b c)) S 1 4242 4242 34816 4242 4194560 1 2 3 4 5 6 7 8 20 0 1 0 987654";
        for len in 0..line.len() {
            for byte in [b')', b'(', b'4', b'x', b'S'] {
                let plain = line[..len].iter().rposition(|&b| b == byte);
                assert_eq!(rfind_byte(&line[..len], byte), plain, "len {len} byte {byte}");
            }
        }
        // Bytes with the high bit set must not fool the word test.
        assert_eq!(
            rfind_byte(&[0xff, b')', 0x80, 0xa9, 0xff, 0xfe, 0x7f, 0x29, 0x01], b')'),
            Some(7)
        );
    }

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
        for bad in [&b"01"[..], b"00", b"", b"+1", b"-1", b"2147483648", b"99999999999999999999"] {
            assert_eq!(parse_pid(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_pid(b"0"), Some(0));
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
    fn decimal_round_trip() {
        let mut out = [0u8; 20];
        for v in [0u64, 7, 10, 99_999, 4_194_304, u64::MAX] {
            let n = write_decimal(&mut out, v);
            assert_eq!(parse_u64(&out[..n]), Some(v).filter(|_| n <= 19));
        }
    }
}
