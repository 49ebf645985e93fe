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
        let mut buf = [0u8; READ_BUF];
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

    fn read_one(&self, pid: Pid, buf: &mut [u8]) -> Result<Process, ReadError> {
        let n = self.read_file(pid, b"stat", buf)?;
        let stat = parse_stat(&buf[..n]).ok_or(ReadError::Other)?;
        let n = self.read_file(pid, b"status", buf)?;
        let ids = parse_status_ids(&buf[..n]).ok_or(ReadError::Other)?;
        let start_ticks = stat.start_ticks;
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
            start: Some(StartTime {
                sec: self.boot_time + start_ticks / self.clock_ticks,
                usec: (start_ticks % self.clock_ticks) * 1_000_000 / self.clock_ticks,
            }),
        })
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

    #[test]
    fn decimal_round_trip() {
        let mut out = [0u8; 20];
        for v in [0u64, 7, 10, 99_999, 4_194_304, u64::MAX] {
            let n = write_decimal(&mut out, v);
            assert_eq!(parse_u64(&out[..n]), Some(v).filter(|_| n <= 19));
        }
    }
}
