//! The raw reader: a procfs mount opened once as a directory descriptor, its pids listed, and
//! `PID/NAME` read with one `openat`, one `read` into the caller's buffer and one `close`.
//!
//! The cost of a scrape is almost all kernel time spent generating `stat` and `status` (see
//! `docs/bench-baseline.md`), so this does the least user-space work around it: no path
//! allocation, no `std::fs::File` per read, no buffer per file.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::stat::parse_u64;

/// A procfs mount, open for reading.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    path_c: CString,
    dir: OwnedFd,
}

/// How reading one file of one pid failed.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// ENOENT or ESRCH, or an empty file: the process exited.
    Vanished,
    /// EACCES or EPERM (a `hidepid` mount, a sandbox).
    Permission,
    /// EMFILE or ENFILE: this process (or the system) is out of descriptors. Not a fact about
    /// the pid: every read after it fails the same way, so a caller should fail the whole
    /// table rather than count what it could not read as a partial one.
    NoDescriptors,
    /// Anything else, and a file longer than the caller allowed.
    Other,
}

impl Root {
    /// Opens the procfs mounted at `path` (usually `/proc`).
    pub fn open(path: &Path) -> std::io::Result<Root> {
        let path_c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| std::io::Error::other("path contains a NUL byte"))?;
        // SAFETY: path_c is NUL-terminated; open has no other preconditions.
        let fd = unsafe {
            libc::open(path_c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC)
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a descriptor we just opened and own.
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Root { path: path.to_path_buf(), path_c, dir })
    }

    /// Where the mount is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces `pids` with the numeric entries of the mount's root, in directory order.
    pub fn list_pids(&self, pids: &mut Vec<libc::pid_t>) -> std::io::Result<()> {
        pids.clear();
        // SAFETY: path_c is NUL-terminated.
        let dir = unsafe { libc::opendir(self.path_c.as_ptr()) };
        if dir.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        loop {
            // SAFETY: dir is a valid, open DIR*; readdir returns NULL at the end.
            let entry = unsafe { libc::readdir(dir) };
            if entry.is_null() {
                break;
            }
            // SAFETY: d_name of a returned entry is a NUL-terminated name inside it.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
            if let Some(pid) = parse_pid(name.to_bytes()) {
                pids.push(pid);
            }
        }
        // SAFETY: dir came from opendir and is closed once.
        unsafe { libc::closedir(dir) };
        Ok(())
    }

    /// `openat(root, "PID/NAME")`, `read`, `close`: the bytes read, at the front of `buf`.
    ///
    /// One `read` normally. A file that fills `buf` may be longer: with `up_to` above
    /// `buf.len()` it is read on (growing `buf`) to its end, and one longer than `up_to` is an
    /// error; with `up_to` 0 the first `buf.len()` bytes are all the caller wants.
    pub fn read_file(
        &self,
        pid: libc::pid_t,
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
        // self.dir is an open directory descriptor for the life of self.
        let fd = unsafe {
            libc::openat(
                self.dir.as_raw_fd(),
                path.as_ptr().cast(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
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

/// The kind of failure an errno from reading a pid's file means.
pub fn classify(error: std::io::Error) -> ReadError {
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

/// A `/proc` entry name as a pid: only the kernel's own spelling, canonical decimal in `pid_t`
/// range. `01` would be read as pid 1 (a second copy of it), `4294967297` as pid 1 too and
/// `2147483648` as a negative pid; such entries are not processes.
fn parse_pid(name: &[u8]) -> Option<libc::pid_t> {
    if name.len() > 1 && name[0] == b'0' {
        return None;
    }
    libc::pid_t::try_from(parse_u64(name)?).ok()
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
    fn proc_entry_names_that_are_not_canonical_pids() {
        for bad in [&b"01"[..], b"00", b"", b"+1", b"-1", b"2147483648", b"99999999999999999999"] {
            assert_eq!(parse_pid(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_pid(b"0"), Some(0));
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
