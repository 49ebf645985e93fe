//! A typed, race-safe binding to `__proc_info`, the system call behind macOS's libproc.dylib.
//!
//! Everything the Python package libproc 0.2 offered is here: the callnum constants, the
//! `PROC_*` list types, the size probe with a NULL buffer, and the listing wrappers
//! ([`all_pids`], [`pids_for_uid`], [`pids_for_ruid`], [`pids_for_ppid`], [`pids_for_pgrp`],
//! [`pids_for_tty`]), plus the per-pid flavors the exporter reads ([`pid_short_info`],
//! [`pid_bsd_info`], [`pid_task_info`], [`pid_path`], [`pid_uniqid_info`]) and callnum 9,
//! [`pid_rusage`].
//!
//! The system call sits behind the [`Kernel`] trait. On macOS, `sys::Darwin` is the real
//! kernel; everywhere, [`sim::SimKernel`] models xnu's `proc_info` so that everything above
//! the trait runs and is tested on Linux. Kernel behaviour is cited from
//! `docs/xnu-proc-info.md` (§ numbers below) rather than repeated.

use std::fmt;

mod list;
mod pidinfo;
mod rusage;
pub mod sim;
#[cfg(target_os = "macos")]
pub mod sys;

pub use list::{
    PidList, all_pids, list_pids, pids_for_pgrp, pids_for_ppid, pids_for_ruid, pids_for_tty,
    pids_for_tty_name, pids_for_uid, tty_device, tty_device_in,
};
pub use pidinfo::{
    ProcBsdInfo, ProcBsdShortInfo, ProcTaskInfo, ProcUniqIdentifierInfo, pid_bsd_info,
    pid_info_raw, pid_path, pid_short_info, pid_task_info, pid_uniqid_info,
};
pub use rusage::{
    PROC_CALLNUM_PIDRUSAGE, RUSAGE_INFO_V0, RUSAGE_INFO_V1, RUSAGE_INFO_V2, RusageInfoV2,
    pid_rusage, ticks_to_ns,
};

/// A process id as the kernel passes it (`pid_t`).
pub type Pid = i32;

/// `PROC_INFO_CALL_LISTPIDS`: list pids by a [`ListFilter`] (§2).
pub const PROC_CALLNUM_LISTPIDS: i32 = 1;
/// `PROC_INFO_CALL_PIDINFO`: per-pid information by flavor (§3).
pub const PROC_CALLNUM_PIDINFO: i32 = 2;
/// `PROC_INFO_CALL_PIDFDINFO`: per-file-descriptor information.
pub const PROC_CALLNUM_PIDFDINFO: i32 = 3;
/// `PROC_INFO_CALL_KERNMSGBUF`: the kernel message buffer (root only).
pub const PROC_CALLNUM_KERNMSGBUF: i32 = 4;
/// `PROC_INFO_CALL_SETCONTROL`: process control settings (self only).
pub const PROC_CALLNUM_SETCONTROL: i32 = 5;
/// `PROC_INFO_CALL_PIDFILEPORTINFO`: information about a fileport.
pub const PROC_CALLNUM_PIDFILEPORTINFO: i32 = 6;

/// List type: every process, zombies included.
pub const PROC_ALL_PIDS: u32 = 1;
/// List type: members of one process group.
pub const PROC_PGRP_ONLY: u32 = 2;
/// List type: processes whose session's controlling terminal is a device number.
pub const PROC_TTY_ONLY: u32 = 3;
/// List type: processes with an effective uid.
pub const PROC_UID_ONLY: u32 = 4;
/// List type: processes with a real uid.
pub const PROC_RUID_ONLY: u32 = 5;
/// List type: children of a pid (and traced processes whose original parent it is).
pub const PROC_PPID_ONLY: u32 = 6;
/// List type: processes marked for kdebug pid filtering (macOS 10.13 and later).
pub const PROC_KDBG_ONLY: u32 = 7;

/// Flavor: `proc_taskinfo` (same-euid check).
pub const PROC_PIDTASKINFO: u32 = 4;
/// Flavor: `proc_bsdinfo` (same-euid check; zombies with `arg != 0`).
pub const PROC_PIDTBSDINFO: u32 = 3;
/// Flavor: the executable's path (no same-euid check; succeeds with a return of 0, §3.8).
pub const PROC_PIDPATHINFO: u32 = 11;
/// Flavor: `proc_bsdshortinfo` (no same-euid check; zombies with `arg != 0`).
pub const PROC_PIDT_SHORTBSDINFO: u32 = 13;

/// Flavor: `proc_uniqidentifierinfo`, the process's `p_uniqueid` (no same-euid check;
/// zombies with `arg != 0`; private header, §3.10).
pub const PROC_PIDUNIQIDENTIFIERINFO: u32 = 17;

/// `PROC_PIDPATHINFO` needs at least `MAXPATHLEN` bytes...
pub const PROC_PIDPATHINFO_SIZE: usize = 1024;
/// ...and refuses more than this with EOVERFLOW.
pub const PROC_PIDPATHINFO_MAXSIZE: usize = 4096;

/// `p_stat`: being created by fork.
pub const SIDL: u32 = 1;
/// `p_stat`: alive. xnu reports every live, unstopped process as SRUN (§3.5).
pub const SRUN: u32 = 2;
/// `p_stat`: sleeping. Defined, but xnu never assigns it (§3.5).
pub const SSLEEP: u32 = 3;
/// `p_stat`: stopped by a signal or a debugger.
pub const SSTOP: u32 = 4;
/// `p_stat`: exited, waiting for its parent to reap it.
pub const SZOMB: u32 = 5;

/// `pbi_flags`: a system process.
pub const PROC_FLAG_SYSTEM: u32 = 0x1;
/// `pbi_flags`: being traced.
pub const PROC_FLAG_TRACED: u32 = 0x2;
/// `pbi_flags`: in exit (a zombie may briefly show SRUN with this bit, §2.4).
pub const PROC_FLAG_INEXIT: u32 = 0x4;
/// `pbi_flags`: a 64-bit process.
pub const PROC_FLAG_LP64: u32 = 0x10;
/// `pbi_flags`: session leader (full BSD info only).
pub const PROC_FLAG_SLEADER: u32 = 0x20;
/// `pbi_flags`: the session has a tty vnode (full BSD info only).
pub const PROC_FLAG_CTTY: u32 = 0x40;
/// `pbi_flags`: the process has a controlling terminal (`P_CONTROLT`).
pub const PROC_FLAG_CONTROLT: u32 = 0x80;
/// `pbi_flags`: an x86_64 process translated by Rosetta on Apple Silicon.
pub const PROC_FLAG_ROSETTA: u32 = 0x200_0000;

/// "No device": `e_tdev` of a process without a controlling terminal (§5).
pub const NODEV: u32 = u32::MAX;

/// Which processes a listing returns: a `PROC_*` list type with its argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListFilter {
    /// `PROC_ALL_PIDS`.
    All,
    /// `PROC_PGRP_ONLY` for a process group id.
    Pgrp(Pid),
    /// `PROC_TTY_ONLY` for a terminal's device number (`st_rdev`).
    Tty(u32),
    /// `PROC_UID_ONLY` for an effective uid.
    Uid(u32),
    /// `PROC_RUID_ONLY` for a real uid.
    Ruid(u32),
    /// `PROC_PPID_ONLY` for a parent pid.
    Ppid(Pid),
    /// `PROC_KDBG_ONLY`.
    Kdebug,
}

impl ListFilter {
    /// The `(type, typeinfo)` pair passed in the pid and flavor slots of callnum 1 (§1.3).
    pub fn raw(self) -> (u32, u32) {
        match self {
            ListFilter::All => (PROC_ALL_PIDS, 0),
            ListFilter::Pgrp(pgid) => (PROC_PGRP_ONLY, pgid as u32),
            ListFilter::Tty(dev) => (PROC_TTY_ONLY, dev),
            ListFilter::Uid(uid) => (PROC_UID_ONLY, uid),
            ListFilter::Ruid(uid) => (PROC_RUID_ONLY, uid),
            ListFilter::Ppid(ppid) => (PROC_PPID_ONLY, ppid as u32),
            ListFilter::Kdebug => (PROC_KDBG_ONLY, 0),
        }
    }
}

impl fmt::Display for ListFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListFilter::All => f.write_str("PROC_ALL_PIDS"),
            ListFilter::Pgrp(pgid) => write!(f, "PROC_PGRP_ONLY({pgid})"),
            ListFilter::Tty(dev) => write!(f, "PROC_TTY_ONLY(dev {dev:#x})"),
            ListFilter::Uid(uid) => write!(f, "PROC_UID_ONLY({uid})"),
            ListFilter::Ruid(uid) => write!(f, "PROC_RUID_ONLY({uid})"),
            ListFilter::Ppid(ppid) => write!(f, "PROC_PPID_ONLY({ppid})"),
            ListFilter::Kdebug => f.write_str("PROC_KDBG_ONLY"),
        }
    }
}

/// An errno value returned by the kernel, in the numbering of the target it runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// No such process.
    pub const ESRCH: Errno = Errno(libc::ESRCH);
    /// Operation not permitted.
    pub const EPERM: Errno = Errno(libc::EPERM);
    /// Invalid argument.
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    /// Buffer too small.
    pub const ENOMEM: Errno = Errno(libc::ENOMEM);
    /// Buffer too large (`PROC_PIDPATHINFO`).
    pub const EOVERFLOW: Errno = Errno(libc::EOVERFLOW);
    /// The executable no longer resolves (`PROC_PIDPATHINFO`).
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    /// Bad address.
    pub const EFAULT: Errno = Errno(libc::EFAULT);

    /// The symbolic name, for messages an operator can search for.
    pub fn name(self) -> &'static str {
        match self.0 {
            libc::ESRCH => "ESRCH",
            libc::EPERM => "EPERM",
            libc::EINVAL => "EINVAL",
            libc::ENOMEM => "ENOMEM",
            libc::EOVERFLOW => "EOVERFLOW",
            libc::ENOENT => "ENOENT",
            libc::EFAULT => "EFAULT",
            libc::ENODEV => "ENODEV",
            libc::EACCES => "EACCES",
            libc::ENOTSUP => "ENOTSUP",
            _ => "errno",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The OS's description without std's " (os error N)" suffix.
        let full = std::io::Error::from_raw_os_error(self.0).to_string();
        let text = full.split(" (os error").next().unwrap_or(&full);
        match self.name() {
            "errno" => write!(f, "errno {} ({text})", self.0),
            name => write!(f, "{name} ({text})"),
        }
    }
}

/// The `__proc_info` system call, the contract every kernel (real or simulated) honours.
///
/// The meaning of `pid`, `flavor` and `arg` depends on `callnum` (§1.3). `buf` is `None` for
/// the NULL-buffer size probe; otherwise its length is passed as `buffersize`. On success
/// the result is the number of bytes written (or, for a probe, the estimate), as the raw
/// syscall returns it; on failure, the errno.
pub trait Kernel: Send + Sync {
    /// One `__proc_info(callnum, pid, flavor, arg, buffer, buffersize)` call.
    fn proc_info(
        &self,
        callnum: i32,
        pid: i32,
        flavor: u32,
        arg: u64,
        buf: Option<&mut [u8]>,
    ) -> Result<usize, Errno>;

    /// `getsid(pid)`: the session id of `pid` (§10.1). Any user may ask about any process;
    /// a zombie or a gone pid gives ESRCH. Not part of `__proc_info`, but the only call
    /// that tells a session (no `proc_info` flavor a non-root caller may read carries it).
    fn getsid(&self, pid: i32) -> Result<i32, Errno>;

    /// The Mach absolute-time tick rate (`hw.tbfrequency`), for the CPU times of
    /// [`pid_rusage`] (§9.6); `None` where this kernel does not say.
    fn timebase_hz(&self) -> Option<u64> {
        None
    }
}

/// A kernel behind a reference or a smart pointer is a kernel: the source can own one while a
/// test keeps a handle to it.
macro_rules! forward_kernel {
    ($($ptr:ty),*) => {$(
        impl<K: Kernel + ?Sized> Kernel for $ptr {
            fn proc_info(
                &self,
                callnum: i32,
                pid: i32,
                flavor: u32,
                arg: u64,
                buf: Option<&mut [u8]>,
            ) -> Result<usize, Errno> {
                (**self).proc_info(callnum, pid, flavor, arg, buf)
            }

            fn getsid(&self, pid: i32) -> Result<i32, Errno> {
                (**self).getsid(pid)
            }

            fn timebase_hz(&self) -> Option<u64> {
                (**self).timebase_hz()
            }
        }
    )*};
}
forward_kernel!(&K, Box<K>, std::sync::Arc<K>);

/// The kernel of the machine we run on, when it has `__proc_info`.
///
/// # Platform-specific behavior
/// On macOS this is `sys::Darwin`. Elsewhere there is no such system call and this returns
/// [`Error::Unsupported`]; use [`sim::SimKernel`] instead.
pub fn host_kernel() -> Result<Box<dyn Kernel>, Error> {
    #[cfg(target_os = "macos")]
    {
        Ok(Box::new(sys::Darwin))
    }
    #[cfg(not(target_os = "macos"))]
    {
        Err(Error::Unsupported)
    }
}

/// The name of a pid-info flavor, for messages.
pub fn flavor_name(flavor: u32) -> &'static str {
    match flavor {
        PROC_PIDTASKINFO => "PROC_PIDTASKINFO",
        PROC_PIDTBSDINFO => "PROC_PIDTBSDINFO",
        PROC_PIDPATHINFO => "PROC_PIDPATHINFO",
        PROC_PIDT_SHORTBSDINFO => "PROC_PIDT_SHORTBSDINFO",
        PROC_PIDUNIQIDENTIFIERINFO => "PROC_PIDUNIQIDENTIFIERINFO",
        _ => "unknown flavor",
    }
}

/// What was being asked of the kernel when an [`Error`] happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Listing pids with a filter.
    List(ListFilter),
    /// Reading one pid's information with a flavor.
    PidInfo {
        /// The pid asked about.
        pid: Pid,
        /// The `PROC_PID*` flavor.
        flavor: u32,
    },
    /// Reading one pid's resource usage (callnum 9) with a `RUSAGE_INFO_V*` flavor.
    PidRusage {
        /// The pid asked about.
        pid: Pid,
        /// The flavor.
        flavor: u32,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::List(filter) => write!(f, "listing pids with {filter}"),
            Op::PidInfo { pid, flavor } => {
                write!(f, "reading {} of pid {pid}", flavor_name(*flavor))
            }
            Op::PidRusage { pid, flavor } => {
                write!(f, "reading proc_pid_rusage(RUSAGE_INFO_V{flavor}) of pid {pid}")
            }
        }
    }
}

/// Why a libproc call failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// ESRCH: the process does not exist (any more), or is a zombie and zombies were not asked for.
    Vanished(Op),
    /// EPERM: another user's process without privilege, or a sandbox (MACF) denial.
    PermissionDenied(Op),
    /// Any other errno.
    Os(Op, Errno),
    /// The kernel kept filling the buffer (a fork storm) through every retry.
    Truncated {
        /// The listing.
        filter: ListFilter,
        /// How many fills were tried.
        attempts: u32,
        /// The last buffer size, in pids.
        capacity: usize,
    },
    /// The kernel returned fewer bytes than the structure asked for.
    ShortRead {
        /// The call.
        op: Op,
        /// Bytes returned.
        got: usize,
        /// Bytes expected.
        want: usize,
    },
    /// A terminal name could not be resolved to a character device.
    Tty {
        /// The name as given.
        name: String,
        /// The path tried.
        path: String,
        /// Why it is not a terminal.
        reason: String,
    },
    /// No `__proc_info` on this operating system.
    Unsupported,
}

impl Error {
    fn from_errno(op: Op, errno: Errno) -> Error {
        match errno {
            Errno::ESRCH => Error::Vanished(op),
            Errno::EPERM => Error::PermissionDenied(op),
            other => Error::Os(op, other),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Vanished(op) => write!(f, "{op}: {}", Errno::ESRCH),
            Error::PermissionDenied(op) => write!(f, "{op}: {}", Errno::EPERM),
            Error::Os(op, errno) => write!(f, "{op}: {errno}"),
            Error::Truncated { filter, attempts, capacity } => write!(
                f,
                "listing pids with {filter}: the result still filled a buffer of {capacity} pids \
                 after {attempts} attempts (processes are being created faster than they can be listed)"
            ),
            Error::ShortRead { op, got, want } => {
                write!(f, "{op}: the kernel returned {got} bytes, expected {want}")
            }
            Error::Tty { name, path, reason } => {
                write!(f, "terminal {name:?} ({path}): {reason}")
            }
            Error::Unsupported => f.write_str(
                "__proc_info exists only on macOS; use the procfs or replay source on this system",
            ),
        }
    }
}

impl std::error::Error for Error {}
