//! One consistent snapshot of the process table per call, from one of three sources behind
//! the [`Source`] trait: [`darwin`] (any libproc [`Kernel`](crate::libproc::Kernel): the real
//! one on macOS, `SimKernel` elsewhere), [`procfs`] (Linux) and [`replay`] (a recorded file,
//! through `SimKernel` and the darwin reader).
//!
//! [`open`] picks the source; which binding `auto` means is the host's answer
//! ([`NATIVE_BINDING`](crate::host::NATIVE_BINDING)), the one place the OS is chosen.
//! Everything that counts or renders works on a [`Snapshot`] and never asks which OS it runs
//! on.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::host::{Binding, Limits};
use crate::libproc::{self, Pid};

pub use crate::host::terminals::Tty;

pub mod darwin;
pub mod procfs;
pub mod replay;
pub mod snapshot_file;

/// Which kernel a snapshot describes; it decides the set of states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Os {
    /// xnu: created, alive, stopped, zombie.
    Macos,
    /// Linux: running, sleeping, disk_sleep, stopped, zombie, idle, other.
    Linux,
}

impl Os {
    /// The states a process of this OS can be in, in exposition order.
    pub fn states(self) -> &'static [State] {
        match self {
            Os::Macos => &[State::Created, State::Alive, State::Stopped, State::Zombie],
            Os::Linux => &[
                State::Running,
                State::Sleeping,
                State::DiskSleep,
                State::Stopped,
                State::Zombie,
                State::Idle,
                State::Other,
            ],
        }
    }

    /// `macos` or `linux`, as in the snapshot file.
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Macos => "macos",
            Os::Linux => "linux",
        }
    }
}

/// A process's scheduling state, in the vocabulary of its kernel.
///
/// xnu never reports sleeping (every live process is SRUN, reference §3.5), so macOS
/// processes are `Created`, `Alive`, `Stopped` or `Zombie`; Linux ones use the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// macOS SIDL: being created by fork.
    Created,
    /// macOS SRUN: alive (running or sleeping; xnu does not say which).
    Alive,
    /// Linux R.
    Running,
    /// Linux S.
    Sleeping,
    /// Linux D: uninterruptible sleep.
    DiskSleep,
    /// Stopped by a signal or a debugger (macOS SSTOP, Linux T and t).
    Stopped,
    /// Exited, not yet reaped by its parent.
    Zombie,
    /// Linux I: an idle kernel thread.
    Idle,
    /// Any other Linux state letter (X, W, P, K...).
    Other,
}

impl State {
    /// The `state` label value.
    pub fn label(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Alive => "alive",
            State::Running => "running",
            State::Sleeping => "sleeping",
            State::DiskSleep => "disk_sleep",
            State::Stopped => "stopped",
            State::Zombie => "zombie",
            State::Idle => "idle",
            State::Other => "other",
        }
    }

    /// The state of a process from xnu's `p_stat` and flags. A process past the point of no
    /// return in exit (`PROC_FLAG_INEXIT`) counts as a zombie: xnu moves it to the zombie list
    /// before it writes SZOMB (reference §2.4).
    pub fn from_bsd(status: u32, flags: u32) -> State {
        if status == libproc::SZOMB || flags & libproc::PROC_FLAG_INEXIT != 0 {
            return State::Zombie;
        }
        match status {
            libproc::SIDL => State::Created,
            libproc::SSTOP => State::Stopped,
            _ => State::Alive,
        }
    }

    /// The state of a Linux process from the letter in `/proc/PID/stat`.
    pub fn from_linux(letter: u8) -> State {
        match letter {
            b'R' => State::Running,
            b'S' => State::Sleeping,
            b'D' => State::DiskSleep,
            b'T' | b't' => State::Stopped,
            b'Z' => State::Zombie,
            b'I' => State::Idle,
            _ => State::Other,
        }
    }

    /// The nearest BSD `p_stat`, for writing a snapshot file from a Linux table: every live
    /// state is SRUN (as xnu reports it), stopped is SSTOP, zombie is SZOMB.
    pub fn to_bsd(self) -> u32 {
        match self {
            State::Created => libproc::SIDL,
            State::Stopped => libproc::SSTOP,
            State::Zombie => libproc::SZOMB,
            _ => libproc::SRUN,
        }
    }
}

/// A command name held inline (kernels keep at most 15 bytes of it), so a snapshot of N
/// processes is one allocation, not N.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Comm {
    bytes: [u8; 16],
    len: u8,
}

impl Comm {
    /// The first 16 bytes of `raw`, cut at a NUL, without a character cut in two at the end:
    /// a Linux kernel thread's name in `stat` can be longer than 16 bytes, and xnu keeps 15
    /// bytes of `p_comm` wherever they end (reference §3.3).
    pub fn new(raw: &[u8]) -> Comm {
        let raw = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
        let mut len = raw.len().min(16);
        // Only an incomplete UTF-8 sequence at the cut is dropped; invalid bytes elsewhere are
        // kept (they are the kernel's, and display lossily).
        if let Err(e) = std::str::from_utf8(&raw[..len]) {
            if e.error_len().is_none() {
                len = e.valid_up_to();
            }
        }
        let mut bytes = [0; 16];
        bytes[..len].copy_from_slice(&raw[..len]);
        Comm { bytes, len: len as u8 }
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

#[cfg(test)]
mod comm_tests {
    use super::Comm;

    #[test]
    fn a_long_name_is_cut_on_a_character_boundary() {
        // 15 bytes, then a 2-byte character across the 16-byte cut: it used to show as U+FFFD.
        let name = "kworker/u16:2-eé-events";
        assert_eq!(name.as_bytes()[15..17], "é".as_bytes()[..]);
        assert_eq!(Comm::new(name.as_bytes()).to_string(), "kworker/u16:2-e");
        assert_eq!(Comm::new("aaaaaaaaaaaaaaé".as_bytes()).to_string(), "aaaaaaaaaaaaaaé");
        // A name that is not UTF-8 keeps its bytes.
        assert_eq!(Comm::new(b"a\xffb").as_bytes(), b"a\xffb");
    }
}

/// When a process started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StartTime {
    /// Seconds since the Unix epoch.
    pub sec: u64,
    /// Microseconds.
    pub usec: u64,
}

/// What one process has used, as its kernel counts it, in the units the collectors want:
/// nanoseconds of CPU and bytes. Read with the process (Linux: the `stat` line already read;
/// macOS: `proc_pid_rusage`, §9), or not at all ([`Process::usage`] `None`).
///
/// A snapshot file (v2) holds it as it is, per process (`usage`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// CPU time in user mode, nanoseconds.
    pub user_ns: u64,
    /// CPU time in the kernel on the process's behalf, nanoseconds.
    pub system_ns: u64,
    /// User CPU time of the children this process reaped (waited for), nanoseconds.
    pub child_user_ns: u64,
    /// System CPU time of the reaped children, nanoseconds.
    pub child_system_ns: u64,
    /// Resident memory, bytes (Linux `rss` pages times the page size; macOS
    /// `ri_resident_size`). Shared pages count in every process that maps them.
    pub resident_bytes: u64,
    /// macOS `ri_phys_footprint` (Activity Monitor's Memory), bytes; 0 on Linux, which has
    /// no such figure (the footprint families are macOS's only). Not an `Option`: there is one
    /// `Usage` per process, and it is 16 bytes of every process of the table.
    pub footprint_bytes: u64,
    /// Bytes read from and written to storage; `None` where not read (Linux without
    /// `--collector.resources.io`, or `/proc/PID/io` refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskBytes>,
}

/// Storage traffic of one process, bytes since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskBytes {
    /// Read (macOS `ri_diskio_bytesread`, Linux `read_bytes`).
    pub read: u64,
    /// Written (macOS `ri_diskio_byteswritten`, Linux `write_bytes`).
    pub written: u64,
}

/// One process as read from the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// Process id.
    pub pid: Pid,
    /// Parent pid.
    pub ppid: Pid,
    /// Process group id.
    pub pgid: Pid,
    /// Effective uid (what `PROC_UID_ONLY` matches).
    pub euid: u32,
    /// Real uid (what `PROC_RUID_ONLY` matches and fork() counts against the per-user limit).
    pub ruid: u32,
    /// Saved uid.
    pub svuid: u32,
    /// Effective gid.
    pub egid: u32,
    /// Real gid.
    pub rgid: u32,
    /// Controlling terminal's device number, `None` without one.
    pub tty: Option<u32>,
    /// Scheduling state.
    pub state: State,
    /// xnu's raw `p_stat`, where the source is xnu (kept so a recording is exact).
    pub bsd_status: Option<u32>,
    /// Command name.
    pub comm: Comm,
    /// `PROC_FLAG_*` bits, where the source is xnu.
    pub flags: Option<u32>,
    /// Start time, where the source knows it (full BSD info, `/proc`).
    pub start: Option<StartTime>,
    /// xnu's `p_uniqueid` (§3.10), where it was read: `record` asks for every process's; a
    /// scrape reads only the newest one's, into [`Snapshot::forks`].
    pub uniqueid: Option<u64>,
    /// Threads (Linux `Threads:` in `status`); `None` where the source does not read them
    /// (macOS: only task info has them, one more call per process and same-user only).
    pub threads: Option<u32>,
    /// Session id, where it was read: every process's on Linux (`stat` field 6); on macOS
    /// only where the leftover test needs it (one `getsid` each, §10.1), see
    /// [`darwin`]'s module doc.
    pub sid: Option<Pid>,
    /// CPU, memory and disk used; `None` where the source did not read it (counted in
    /// [`Snapshot::usage_unreadable`]) or does not know it (a recording without it).
    pub usage: Option<Usage>,
}

impl Process {
    /// A sleeping root process in its own group, for unit tests of what counts processes.
    #[cfg(test)]
    pub(crate) fn sample(
        pid: crate::libproc::Pid,
        ppid: crate::libproc::Pid,
        comm: &str,
    ) -> Process {
        Process {
            pid,
            ppid,
            pgid: pid,
            euid: 0,
            ruid: 0,
            svuid: 0,
            egid: 0,
            rgid: 0,
            tty: None,
            state: State::Sleeping,
            bsd_status: None,
            comm: Comm::new(comm.as_bytes()),
            flags: None,
            start: None,
            uniqueid: None,
            threads: None,
            sid: None,
            usage: None,
        }
    }

    /// Exited and not reaped.
    pub fn is_zombie(&self) -> bool {
        self.state == State::Zombie
    }
}

/// Pids that were listed but could not be read, by reason. None of them fails a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unreadable {
    /// Exited between listing and reading (ESRCH, or ENOENT under /proc).
    pub vanished: u64,
    /// Refused (EPERM: another user's process without privilege, or a sandbox).
    pub permission: u64,
    /// Any other error.
    pub other: u64,
}

impl Unreadable {
    /// Counts one failure by the kind of libproc error.
    pub fn count(&mut self, error: &libproc::Error) {
        match error {
            libproc::Error::Vanished(_) => self.vanished += 1,
            libproc::Error::PermissionDenied(_) => self.permission += 1,
            _ => self.other += 1,
        }
    }

    /// Total.
    pub fn total(&self) -> u64 {
        self.vanished + self.permission + self.other
    }
}

/// The process table at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The kernel whose vocabulary the states use (a replay is read as a Mac is).
    pub os: Os,
    /// Where the table was read originally: `os`, except for a replayed Linux recording.
    pub origin: Os,
    /// Every process read, sorted by pid.
    pub processes: Vec<Process>,
    /// What was listed but not read.
    pub unreadable: Unreadable,
    /// Whether the reader could read full information about other users' processes.
    pub privileged: bool,
    /// The reader's effective uid.
    pub caller_euid: u32,
    /// Terminal devices, sorted by device number, so their processes can be named.
    pub ttys: Vec<Tty>,
    /// User names the source carries (a replayed file's); others come from the password
    /// database.
    pub users: BTreeMap<u32, String>,
    /// The kernel's limits.
    pub limits: Limits,
    /// Processes created since boot, never less than an earlier snapshot of the same source
    /// said: the newest live process's `p_uniqueid` on macOS (§3.10), the `processes` line of
    /// `/proc/stat` on Linux. `None` where the source cannot tell (a replayed file without
    /// uniqueids).
    pub forks: Option<u64>,
    /// Most threads the kernel allows (Linux `kernel.threads-max`); `None` elsewhere.
    pub threads_max: Option<u64>,
    /// Processes of the table whose [`Usage`] could not be read, by reason (macOS: another
    /// user's process while unprivileged is `permission`). Pids not read at all are in
    /// [`Snapshot::unreadable`] instead.
    pub usage_unreadable: Unreadable,
}

impl Snapshot {
    /// A snapshot of `processes` read by an unprivileged caller, with no limits, terminals or
    /// users, for unit tests of collectors.
    #[cfg(test)]
    pub(crate) fn sample(os: Os, processes: Vec<Process>) -> Snapshot {
        Snapshot {
            os,
            origin: os,
            processes,
            unreadable: Unreadable::default(),
            privileged: false,
            caller_euid: 501,
            ttys: Vec::new(),
            users: BTreeMap::new(),
            limits: Limits::default(),
            forks: None,
            threads_max: None,
            usage_unreadable: Unreadable::default(),
        }
    }

    /// The process with this pid.
    pub fn find(&self, pid: Pid) -> Option<&Process> {
        self.processes.binary_search_by_key(&pid, |p| p.pid).ok().map(|i| &self.processes[i])
    }

    /// The name of a terminal device (`ttys003`), if the source knows it.
    pub fn tty_name(&self, dev: u32) -> Option<&str> {
        self.ttys.binary_search_by_key(&dev, |t| t.dev).ok().map(|i| self.ttys[i].name.as_str())
    }
}

/// Why a snapshot could not be taken.
#[derive(Debug)]
pub enum Error {
    /// A libproc call that the whole snapshot depends on (the pid listing) failed.
    Libproc(libproc::Error),
    /// Reading a file or directory failed.
    Io {
        /// What was read.
        path: PathBuf,
        /// Why it failed.
        error: std::io::Error,
    },
    /// A snapshot file is malformed.
    Replay {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field and process.
        message: String,
    },
    /// The source cannot run on this system.
    Unsupported(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Libproc(e) => e.fmt(f),
            Error::Io { path, error } => write!(f, "{}: {error}", path.display()),
            Error::Replay { path, message } => write!(f, "{}: {message}", path.display()),
            Error::Unsupported(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for Error {}

impl From<libproc::Error> for Error {
    fn from(e: libproc::Error) -> Error {
        Error::Libproc(e)
    }
}

/// Something that can take a snapshot of a process table. Sources keep their buffers between
/// calls, hence `&mut self`.
pub trait Source: Send {
    /// `libproc`, `procfs/pidfd`, `procfs/status` or `replay` (`libproc_source_info`).
    fn name(&self) -> &'static str;
    /// Reads the whole table once.
    fn snapshot(&mut self) -> Result<Snapshot, Error>;

    /// The libproc kernel behind the source, for direct `PROC_*` listings; `None` for procfs.
    fn kernel(&self) -> Option<&dyn libproc::Kernel> {
        None
    }

    /// The uid of a user name as this source knows users (a replayed file's map first).
    fn user_id(&self, name: &str) -> Option<u32> {
        crate::users::lookup_name(name)
    }

    /// The device number of a terminal name as this source knows terminals.
    fn resolve_tty(&self, name: &str) -> Result<u32, libproc::Error> {
        libproc::tty_device(name)
    }
}

/// Which source `--source` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceKind {
    /// libproc on macOS, procfs on Linux.
    Auto,
    /// `__proc_info` (macOS only).
    Libproc,
    /// `/proc` (Linux).
    Procfs,
    /// A recorded snapshot file.
    Replay,
}

/// Everything needed to open a source.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    /// Which one.
    pub kind: SourceKind,
    /// `--source.replay-file`.
    pub replay_file: Option<PathBuf>,
    /// `--path.procfs`.
    pub procfs: PathBuf,
    /// `--collector.resources.io`: procfs reads `PID/io` too.
    pub disk_io: bool,
    /// The `resources` collector runs: libproc reads each readable process's usage (one
    /// call each; procfs has it in `stat` anyway).
    pub usage: bool,
}

impl Default for SourceConfig {
    fn default() -> SourceConfig {
        SourceConfig {
            kind: SourceKind::Auto,
            replay_file: None,
            procfs: PathBuf::from("/proc"),
            disk_io: false,
            usage: false,
        }
    }
}

/// Opens the source `config` asks for.
///
/// # Platform-specific behavior
/// `auto` is the host's [`NATIVE_BINDING`](crate::host::NATIVE_BINDING): `libproc` on macOS
/// and `procfs` elsewhere. `libproc` on a system without `__proc_info` is an error, not an
/// empty table.
pub fn open(config: &SourceConfig) -> Result<Box<dyn Source>, Error> {
    let kind = match config.kind {
        SourceKind::Auto => match crate::host::NATIVE_BINDING {
            Binding::Libproc => SourceKind::Libproc,
            Binding::Procfs => SourceKind::Procfs,
        },
        other => other,
    };
    match kind {
        SourceKind::Libproc => {
            let kernel = libproc::host_kernel()
                .map_err(|e| Error::Unsupported(format!("--source=libproc: {e}")))?;
            Ok(Box::new(darwin::DarwinSource::host(kernel).reading_usage(config.usage)))
        }
        // `Auto` was resolved above.
        SourceKind::Procfs | SourceKind::Auto => {
            let source = procfs::ProcfsSource::open(&config.procfs)?;
            Ok(Box::new(source.reading_disk_io(config.disk_io)))
        }
        SourceKind::Replay => {
            let path = config.replay_file.as_ref().ok_or_else(|| {
                Error::Unsupported("--source=replay needs --source.replay-file".to_string())
            })?;
            Ok(Box::new(replay::open(path)?))
        }
    }
}

#[cfg(test)]
mod size_tests {
    /// One `Process` per process of the table, held for a scrape: what `usage` adds is
    /// memory at 10,000 processes (`benches/run.sh` measures the RSS goal).
    #[test]
    fn usage_adds_at_most_72_bytes_to_a_process() {
        assert!(std::mem::size_of::<Option<super::Usage>>() <= 72);
    }
}
