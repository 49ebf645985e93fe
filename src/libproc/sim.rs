//! `SimKernel`: a model of xnu's `proc_info` over an in-memory process table.
//!
//! It follows §8 of `docs/xnu-proc-info.md` in the order given there, so that the binding
//! and everything above it can be tested on Linux against the behaviour a Mac will show:
//! the `(nprocs + 20) * 4` size estimate, ENOMEM under 4 bytes, silent truncation, live
//! processes newest first with pid 0 last and zombies after them, the check order
//! EINVAL/ENOMEM -> ESRCH -> MACF/EPERM, the same-euid rule, zombies only with `arg != 0`,
//! `PROC_TTY_ONLY` by the session's terminal, and `PROC_PPID_ONLY` matching a traced
//! process's original parent.
//!
//! A test can change the table between two calls with [`SimKernel::set_hook`], which runs at
//! the start of every call (to fork between the size probe and the fill, say), or simply by
//! locking [`SimKernel::table`] between calls.
//!
//! Not modelled: callnums 3 to 6 beyond their argument checks (no file descriptors or
//! fileports exist here), flavors other than 2, 3, 4, 11, 13 and 17 (EINVAL, as an unknown flavor
//! is), shadow processes of an exec in flight (they are never visible, §2.4).
//!
//! Flavor 17 (`PROC_PIDUNIQIDENTIFIERINFO`, §3.10) is modelled with the kernel's fork
//! counter: every process inserted without a `uniqueid` (every [`SimTable::fork`]) takes the
//! next one, as `forkproc` does, and exec keeps it.
//!
//! Callnum 9 (`proc_pid_rusage`, §9.8) is `rusage.rs`: each process's [`SimRusage`], which
//! a reap adds to the reaper's children's times and an exec clears, the same-euid rule, and
//! a kernel tick rate (24 MHz by default, as on Apple Silicon) that a reader must convert.

mod rusage;

pub use rusage::SimRusage;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

use super::pidinfo::{Pod, ProcBsdInfo, ProcBsdShortInfo, ProcTaskInfo, ProcUniqIdentifierInfo};
use super::{
    Errno, Kernel, NODEV, PROC_ALL_PIDS, PROC_CALLNUM_KERNMSGBUF, PROC_CALLNUM_LISTPIDS,
    PROC_CALLNUM_PIDFDINFO, PROC_CALLNUM_PIDFILEPORTINFO, PROC_CALLNUM_PIDINFO,
    PROC_CALLNUM_PIDRUSAGE, PROC_CALLNUM_SETCONTROL, PROC_FLAG_CONTROLT, PROC_FLAG_CTTY,
    PROC_FLAG_INEXIT, PROC_FLAG_SLEADER, PROC_KDBG_ONLY, PROC_PGRP_ONLY, PROC_PIDPATHINFO,
    PROC_PIDPATHINFO_MAXSIZE, PROC_PIDT_SHORTBSDINFO, PROC_PIDTASKINFO, PROC_PIDTBSDINFO,
    PROC_PIDUNIQIDENTIFIERINFO, PROC_PPID_ONLY, PROC_RUID_ONLY, PROC_TTY_ONLY, PROC_UID_ONLY, Pid,
    SRUN, SSTOP, SZOMB,
};

/// `PROC_PIDTASKALLINFO`: bsd info followed by task info.
const PROC_PIDTASKALLINFO: u32 = 2;
/// `PROC_PIDWORKQUEUEINFO`: EINVAL for pid 0 before anything else (§3.1).
const PROC_PIDWORKQUEUEINFO: u32 = 12;
/// pids wrap at this value back to 100 (§2.5).
const PID_MAX: Pid = 99_999;
/// `NO_PID`, the foreground process group of a session without one.
const NO_PID: Pid = 100_000;

/// One simulated process: the state §8 lists, set by whoever builds the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimProc {
    /// Process id.
    pub pid: Pid,
    /// Parent pid (`p_ppid`).
    pub ppid: Pid,
    /// Original parent while traced (`p_oppid`); matched by `PROC_PPID_ONLY` when `traced`.
    pub oppid: Pid,
    /// Being traced (`P_LTRACED`).
    pub traced: bool,
    /// Process group id.
    pub pgid: Pid,
    /// Session id (the session leader's pid).
    pub sid: Pid,
    /// Has a controlling terminal (`P_CONTROLT`).
    pub controlt: bool,
    /// The session's cached terminal device (`s_ttydev`), [`NODEV`] when it has none or it
    /// was revoked.
    pub session_tty: u32,
    /// The terminal's foreground process group (`s_ttypgrpid`).
    pub tpgid: Pid,
    /// Effective uid.
    pub euid: u32,
    /// Real uid.
    pub ruid: u32,
    /// Saved uid.
    pub svuid: u32,
    /// Effective gid.
    pub egid: u32,
    /// Real gid.
    pub rgid: u32,
    /// Saved gid.
    pub svgid: u32,
    /// `p_stat`: SIDL, SRUN, SSTOP or SZOMB.
    pub status: u32,
    /// `PROC_FLAG_*` bits other than SLEADER, CTTY and CONTROLT, which are derived.
    pub flags: u32,
    /// `p_comm` as proc_info copies it out: at most 15 bytes and NUL padding (§3.3). Held
    /// inline, as the kernel holds it, so a table of a million processes is not two million
    /// small strings.
    pub comm: [u8; 16],
    /// `p_name` as copied out: at most 31 bytes and NUL padding.
    pub name: [u8; 32],
    /// Nice value.
    pub nice: i32,
    /// Start time, seconds since the epoch.
    pub start_sec: u64,
    /// Start time, microseconds.
    pub start_usec: u64,
    /// The executable's path; `None` for kernel_task.
    pub text_path: Option<String>,
    /// Allocated fd-table slots (0 for zombies).
    pub nfiles: u32,
    /// Marked for kdebug filtering.
    pub kdebug: bool,
    /// What `PROC_PIDTASKINFO` returns; `None` for one thread and nothing else counted (96
    /// bytes a process that almost no test reads).
    pub task: Option<Box<ProcTaskInfo>>,
    /// `p_uniqueid` (§3.10): 0 until the table numbers it at insert; kernel_task keeps 0.
    pub uniqueid: u64,
    /// What `proc_pid_rusage` reports (§9.8); `None` for a replayed process the recorder
    /// could not read, which answers ESRCH as it did then.
    pub rusage: Option<SimRusage>,
}

impl SimProc {
    /// A live process with sensible defaults: its own process group and session, no
    /// terminal, uid/gid 0 unless changed.
    pub fn new(pid: Pid, ppid: Pid, comm: &str) -> SimProc {
        SimProc {
            pid,
            ppid,
            oppid: 0,
            traced: false,
            pgid: pid,
            sid: pid,
            controlt: false,
            session_tty: NODEV,
            tpgid: NO_PID,
            euid: 0,
            ruid: 0,
            svuid: 0,
            egid: 0,
            rgid: 0,
            svgid: 0,
            status: SRUN,
            flags: super::PROC_FLAG_LP64,
            comm: c_field(comm),
            name: c_field(comm),
            nice: 0,
            start_sec: 1_732_700_000,
            start_usec: 0,
            text_path: Some(format!("/usr/bin/{comm}")),
            nfiles: 64,
            kdebug: false,
            task: None,
            uniqueid: 0,
            rusage: Some(SimRusage::default()),
        }
    }

    /// What `PROC_PIDTASKINFO` returns for this process.
    pub fn task_info(&self) -> ProcTaskInfo {
        match &self.task {
            Some(task) => **task,
            None => ProcTaskInfo { pti_threadnum: 1, ..ProcTaskInfo::default() },
        }
    }

    /// Sets effective, real and saved uid (and gids to 20, "staff", for non-root).
    pub fn with_uid(mut self, uid: u32) -> SimProc {
        self.euid = uid;
        self.ruid = uid;
        self.svuid = uid;
        let gid = if uid == 0 { 0 } else { 20 };
        self.egid = gid;
        self.rgid = gid;
        self.svgid = gid;
        self
    }

    /// Puts the process on a terminal: controlling terminal `dev` for its session.
    pub fn with_tty(mut self, dev: u32) -> SimProc {
        self.controlt = true;
        self.session_tty = dev;
        self.tpgid = self.pgid;
        self
    }

    fn flags_full(&self) -> u32 {
        let mut flags = self.flags;
        if self.controlt {
            flags |= PROC_FLAG_CONTROLT;
        }
        if self.pid == self.sid {
            flags |= PROC_FLAG_SLEADER;
        }
        if self.controlt && self.session_tty != NODEV {
            flags |= PROC_FLAG_CTTY;
        }
        flags
    }
}

/// Where a process is in its life (§8 "phase").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// On the live list, findable.
    Live,
    /// Exiting: still on the live list and findable, with `PROC_FLAG_INEXIT`.
    Exiting,
    /// Exited and not yet reaped: on the zombie list, not findable without `arg != 0`.
    Dead,
}

/// The terminal devices of a Mac's `/dev`, as `(name, st_rdev)`, with `ptys` Terminal or ssh
/// sessions open (`ttys000` on): what the reader scans before `PROC_TTY_ONLY`.
///
/// Shaped like a laptop's: `console` (0, 0); the 128 legacy BSD ptys `ttyp0`..`ttywf` that
/// xnu creates at boot whether or not anything uses them (`pty_init` in
/// `bsd/kern/tty_pty.c`: `makedev(PTS_MAJOR, m)` named `"tty%c%x"`, `'p' + m / 16`, for
/// `m` below the configured count), one `ttysNNN` (major 16) per open pty, and the Bluetooth
/// serial port's dial-in and call-out sides. Device numbers are `makedev(major, minor)` =
/// `major << 24 | minor` (reference §2.1).
pub fn mac_dev(ptys: usize) -> Vec<(String, u32)> {
    const PTS_MAJOR: u32 = 4;
    const PTMX_SLAVE_MAJOR: u32 = 16;
    const SERIAL_MAJOR: u32 = 9;
    let mut dev = vec![("console".to_string(), 0)];
    for m in 0..128u32 {
        let name = format!("tty{}{:x}", char::from(b'p' + (m / 16) as u8), m % 16);
        dev.push((name, (PTS_MAJOR << 24) | m));
    }
    for i in 0..ptys as u32 {
        dev.push((format!("ttys{i:03}"), (PTMX_SLAVE_MAJOR << 24) | i));
    }
    dev.push(("tty.Bluetooth-Incoming-Port".to_string(), SERIAL_MAJOR << 24));
    dev.push(("cu.Bluetooth-Incoming-Port".to_string(), (SERIAL_MAJOR << 24) | 1));
    dev
}

#[derive(Debug)]
struct Entry {
    proc: SimProc,
    phase: Phase,
}

/// The processes by pid: entries packed in a vector, a map from pid to slot beside it. A map
/// of whole entries would hold twice their size in empty buckets (at a million processes,
/// over 500 MB). Every change clears the terminal index, so no caller can forget to.
#[derive(Debug, Default)]
struct Procs {
    entries: Vec<Entry>,
    slot: HashMap<Pid, u32>,
    /// Controlling terminal device -> the pids `PROC_TTY_ONLY` lists for it, in list order;
    /// built on the first such listing after a change. Without it each listing walks the
    /// whole table: an unprivileged read of T terminals cost N x T.
    by_tty: OnceLock<HashMap<u32, Vec<Pid>>>,
}

impl Procs {
    fn get(&self, pid: Pid) -> Option<&Entry> {
        self.slot.get(&pid).map(|&i| &self.entries[i as usize])
    }

    fn get_mut(&mut self, pid: Pid) -> Option<&mut Entry> {
        self.by_tty.take();
        self.slot.get(&pid).map(|&i| &mut self.entries[i as usize])
    }

    fn contains_key(&self, pid: Pid) -> bool {
        self.slot.contains_key(&pid)
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds an entry whose pid the caller checked is free.
    fn insert(&mut self, entry: Entry) {
        self.by_tty.take();
        self.slot.insert(entry.proc.pid, self.entries.len() as u32);
        self.entries.push(entry);
    }

    fn remove(&mut self, pid: Pid) {
        self.by_tty.take();
        let Some(i) = self.slot.remove(&pid) else { return };
        self.entries.swap_remove(i as usize);
        if let Some(moved) = self.entries.get(i as usize) {
            self.slot.insert(moved.proc.pid, i);
        }
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.by_tty.take();
        self.entries.iter_mut()
    }
}

/// The simulated process table.
#[derive(Debug, Default)]
pub struct SimTable {
    procs: Procs,
    /// Live and exiting pids in insertion order; the kernel walks it from the end (newest
    /// first), so kernel_task, inserted at boot, comes last.
    live: Vec<Pid>,
    /// Zombies in order of death; walked from the end (most recent death first).
    zombies: Vec<Pid>,
    last_pid: Pid,
    clock: u64,
    /// xnu's `nextuniqueid`: the last `p_uniqueid` given out, so the forks since boot.
    forks: u64,
}

impl SimTable {
    /// An empty table (not even kernel_task).
    pub fn new() -> SimTable {
        SimTable::default()
    }

    /// An empty table with room for `n` processes (a replayed file's), so that it is
    /// allocated once at its size.
    pub fn with_capacity(n: usize) -> SimTable {
        let mut table = SimTable::new();
        table.procs.entries.reserve_exact(n);
        table.procs.slot.reserve(n);
        table.live.reserve_exact(n);
        table
    }

    /// A booted machine: kernel_task (pid 0) and launchd (pid 1), both root.
    pub fn booted() -> SimTable {
        let mut table = SimTable::new();
        let mut kernel_task = SimProc::new(0, 0, "kernel_task");
        kernel_task.text_path = None;
        kernel_task.flags |= super::PROC_FLAG_SYSTEM;
        table.insert(kernel_task).expect("empty table");
        table.insert(SimProc::new(1, 0, "launchd")).expect("pid 1 is free");
        table
    }

    /// Adds a process at the head of its list (as fork does): a live one, or a zombie when its
    /// status is SZOMB.
    pub fn insert(&mut self, proc: SimProc) -> Result<(), PidTaken> {
        let phase = if proc.status == SZOMB { Phase::Dead } else { Phase::Live };
        self.insert_with_phase(proc, phase)
    }

    /// Adds a process in the given phase (a zombie can still show SRUN with INEXIT, §2.4).
    /// A process without a `uniqueid` takes the next one (it is being forked); one with a
    /// `uniqueid` (a recording) keeps it, and the counter moves past it.
    pub fn insert_with_phase(&mut self, mut proc: SimProc, phase: Phase) -> Result<(), PidTaken> {
        if self.procs.contains_key(proc.pid) {
            return Err(PidTaken(proc.pid));
        }
        // kernel_task is not forked: its uniqueid stays 0 and launchd's is 1 (§3.10).
        if proc.uniqueid == 0 && proc.pid != 0 {
            self.forks += 1;
            proc.uniqueid = self.forks;
        }
        self.forks = self.forks.max(proc.uniqueid);
        let pid = proc.pid;
        self.last_pid = self.last_pid.max(pid);
        self.procs.insert(Entry { proc, phase });
        match phase {
            Phase::Dead => self.zombies.push(pid),
            _ => self.live.push(pid),
        }
        Ok(())
    }

    /// Forks `parent`: the child inherits credentials, process group, session and terminal,
    /// gets the next free pid (wrapping at 99999 to 100) and goes to the head of the list.
    pub fn fork(&mut self, parent: Pid) -> Pid {
        let mut child =
            self.procs.get(parent).expect("fork of a process in the table").proc.clone();
        let pid = self.next_pid();
        child.pid = pid;
        child.ppid = parent;
        child.traced = false;
        child.status = SRUN;
        child.flags &= !PROC_FLAG_INEXIT;
        child.uniqueid = 0;
        // A new process has used nothing yet and reaped nothing (§9.8).
        child.rusage = Some(SimRusage::default());
        self.clock += 1;
        child.start_sec = 1_732_800_000 + self.clock;
        self.insert(child).expect("next_pid returns a free pid");
        pid
    }

    fn next_pid(&mut self) -> Pid {
        let mut pid = self.last_pid;
        loop {
            pid = if pid >= PID_MAX { 100 } else { pid + 1 };
            if !self.procs.contains_key(pid) {
                self.last_pid = pid;
                return pid;
            }
        }
    }

    /// Replaces the program of `pid` (exec); in xnu 8792 and later exec moves the process to
    /// the head of the list (§2.4).
    pub fn exec(&mut self, pid: Pid, comm: &str) {
        if let Some(entry) = self.procs.get_mut(pid) {
            entry.proc.comm = c_field(comm);
            entry.proc.name = c_field(comm);
            // xnu 8792 and later start the reaped children's times again from 0 (§9.4).
            if let Some(rusage) = &mut entry.proc.rusage {
                (rusage.child_user_ticks, rusage.child_system_ticks) = (0, 0);
            }
            self.live.retain(|&p| p != pid);
            self.live.push(pid);
        }
    }

    /// Starts exiting `pid`: findable still, with `PROC_FLAG_INEXIT`.
    pub fn begin_exit(&mut self, pid: Pid) {
        if let Some(entry) = self.procs.get_mut(pid) {
            entry.phase = Phase::Exiting;
            entry.proc.flags |= PROC_FLAG_INEXIT;
        }
    }

    /// `pid` exits: it becomes a zombie (SZOMB, on the zombie list, credentials, group and
    /// session kept until reaped), and its children are reparented to launchd.
    pub fn exit(&mut self, pid: Pid) {
        let Some(entry) = self.procs.get_mut(pid) else { return };
        if entry.phase == Phase::Dead {
            return;
        }
        entry.phase = Phase::Dead;
        entry.proc.status = SZOMB;
        entry.proc.flags |= PROC_FLAG_INEXIT;
        entry.proc.nfiles = 0;
        self.live.retain(|&p| p != pid);
        self.zombies.push(pid);
        for other in self.procs.values_mut() {
            if other.proc.ppid == pid && other.proc.pid != pid {
                other.proc.ppid = 1;
            }
        }
    }

    /// The parent reaps zombie `pid`: it is gone, and its parent gains its CPU times and its
    /// reaped children's (§9.4).
    pub fn reap(&mut self, pid: Pid) {
        let dead = self.procs.get(pid).filter(|e| e.phase == Phase::Dead);
        if let Some((ppid, Some(child))) = dead.map(|e| (e.proc.ppid, e.proc.rusage)) {
            if let Some(Some(parent)) = self.procs.get_mut(ppid).map(|e| &mut e.proc.rusage) {
                parent.add_reaped(&child);
            }
        }
        if self.procs.get(pid).is_some_and(|e| e.phase == Phase::Dead) {
            self.procs.remove(pid);
            self.zombies.retain(|&p| p != pid);
        }
    }

    /// Exit and reap in one step.
    pub fn kill(&mut self, pid: Pid) {
        self.exit(pid);
        self.reap(pid);
    }

    /// Stops (`SSTOP`) or continues (`SRUN`) a live process.
    pub fn set_stopped(&mut self, pid: Pid, stopped: bool) {
        if let Some(entry) = self.procs.get_mut(pid) {
            entry.proc.status = if stopped { SSTOP } else { SRUN };
        }
    }

    /// Clears the terminal of session `sid` (its cached device becomes NODEV, §2.1 notes);
    /// processes keep `P_CONTROLT`.
    pub fn revoke_tty(&mut self, sid: Pid) {
        for entry in self.procs.values_mut() {
            if entry.proc.sid == sid {
                entry.proc.session_tty = NODEV;
            }
        }
    }

    /// Processes forked since boot: the last `p_uniqueid` given out (§3.10).
    pub fn forks(&self) -> u64 {
        self.forks
    }

    /// The process with this pid, in any phase.
    pub fn get(&self, pid: Pid) -> Option<&SimProc> {
        self.procs.get(pid).map(|e| &e.proc)
    }

    /// Mutable access to a process, in any phase.
    pub fn get_mut(&mut self, pid: Pid) -> Option<&mut SimProc> {
        self.procs.get_mut(pid).map(|e| &mut e.proc)
    }

    /// The phase of `pid`, if it exists.
    pub fn phase(&self, pid: Pid) -> Option<Phase> {
        self.procs.get(pid).map(|e| e.phase)
    }

    /// Every process, in the kernel's list order (live newest first, then zombies).
    pub fn procs(&self) -> impl Iterator<Item = &SimProc> {
        let entry = |pid: &Pid| self.procs.get(*pid).expect("listed pids are in the table");
        self.live.iter().rev().chain(self.zombies.iter().rev()).map(move |pid| &entry(pid).proc)
    }

    /// The pids `PROC_TTY_ONLY` matches for `dev`, in list order (see [`SimTable::matches`]).
    fn on_tty(&self, dev: u32) -> &[Pid] {
        let index = self.procs.by_tty.get_or_init(|| {
            let mut index: HashMap<u32, Vec<Pid>> = HashMap::new();
            for p in self.procs().filter(|p| p.controlt) {
                index.entry(p.session_tty).or_default().push(p.pid);
            }
            index
        });
        index.get(&dev).map_or(&[], Vec::as_slice)
    }

    /// `nprocs`: live, exiting and zombie processes, kernel_task excluded (§2.2).
    pub fn nprocs(&self) -> usize {
        self.procs.len() - usize::from(self.procs.contains_key(0))
    }

    fn matches(proc: &SimProc, kind: u32, info: u32) -> bool {
        match kind {
            PROC_ALL_PIDS => true,
            PROC_PGRP_ONLY => proc.pgid == info as Pid,
            // xnu >= 8020: P_CONTROLT and the session's cached device (§2.1).
            PROC_TTY_ONLY => proc.controlt && proc.session_tty == info,
            PROC_UID_ONLY => proc.euid == info,
            PROC_RUID_ONLY => proc.ruid == info,
            PROC_PPID_ONLY => {
                proc.ppid == info as Pid || (proc.traced && proc.oppid == info as Pid)
            }
            PROC_KDBG_ONLY => proc.kdebug,
            // Unknown types match nothing and are not an error (§2.1).
            _ => false,
        }
    }
}

/// One `proc_info` call as the hook and MACF policy see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// 0 for the first call made to this kernel, and so on.
    pub index: u64,
    /// The callnum.
    pub callnum: i32,
    /// The pid slot (the list type for callnum 1).
    pub pid: i32,
    /// The flavor slot (typeinfo for callnum 1).
    pub flavor: u32,
    /// The arg slot.
    pub arg: u64,
    /// The buffer size, `None` for a NULL buffer.
    pub buf_len: Option<usize>,
}

/// A MACF policy (a sandbox): given the call and the target (if any), an errno to deny with.
pub type MacPolicy = Box<dyn Fn(&Call, Option<&SimProc>) -> Option<Errno> + Send + Sync>;
/// A hook run at the start of every call, with the table to change.
pub type Hook = Box<dyn FnMut(&mut SimTable, &Call) + Send>;

struct State {
    table: SimTable,
    hook: Option<Hook>,
    calls: u64,
}

/// The locked table of a [`SimKernel`]; calls wait while a test holds it.
pub struct TableGuard<'a>(MutexGuard<'a, State>);

impl std::ops::Deref for TableGuard<'_> {
    type Target = SimTable;
    fn deref(&self) -> &SimTable {
        &self.0.table
    }
}

impl std::ops::DerefMut for TableGuard<'_> {
    fn deref_mut(&mut self) -> &mut SimTable {
        &mut self.0.table
    }
}

/// A simulated xnu kernel: a [`SimTable`] and the caller's credentials.
pub struct SimKernel {
    state: Mutex<State>,
    caller_euid: u32,
    entitled: bool,
    macf: Option<MacPolicy>,
    /// `hw.tbfrequency`: Mach ticks a second (§9.6).
    timebase_hz: u64,
    /// The newest `RUSAGE_INFO_V*` flavor this kernel knows; `None`: no callnum 9 at all.
    rusage_max_flavor: Option<u32>,
}

impl SimKernel {
    /// A kernel over `table`, called by a process with effective uid `caller_euid`.
    pub fn new(table: SimTable, caller_euid: u32) -> SimKernel {
        SimKernel {
            state: Mutex::new(State { table, hook: None, calls: 0 }),
            caller_euid,
            entitled: false,
            macf: None,
            // Apple Silicon's 24 MHz (§9.6): a tick is not a nanosecond, so a reader that
            // forgets to convert is caught.
            timebase_hz: 24_000_000,
            // RUSAGE_INFO_V6, xnu-8792 (macOS 13) and later (§9.2).
            rusage_max_flavor: Some(6),
        }
    }

    /// The Mach tick rate this kernel reports (`hw.tbfrequency`): 24 MHz unless set, 10^9
    /// as on Intel, where a tick is a nanosecond (§9.6).
    pub fn with_timebase_hz(mut self, hz: u64) -> SimKernel {
        self.timebase_hz = hz;
        self
    }

    /// The newest `proc_pid_rusage` flavor this kernel knows (§9.2: 2 from macOS 10.9 to
    /// 10.9.x, 6 from macOS 13); `None` models a kernel without callnum 9, older than 10.9.
    pub fn with_rusage_max_flavor(mut self, flavor: Option<u32>) -> SimKernel {
        self.rusage_max_flavor = flavor;
        self
    }

    /// Grants `com.apple.private.kernel.global-proc-info` (passes the same-euid check).
    pub fn entitled(mut self, entitled: bool) -> SimKernel {
        self.entitled = entitled;
        self
    }

    /// Installs a MACF policy; it runs before the same-euid check, as in xnu (§1.5).
    pub fn with_policy(mut self, policy: MacPolicy) -> SimKernel {
        self.macf = Some(policy);
        self
    }

    /// Runs `hook` at the start of every later call, before the kernel looks at the table.
    pub fn set_hook(&self, hook: Hook) {
        self.lock().hook = Some(hook);
    }

    /// The table, to change between calls.
    pub fn table(&self) -> TableGuard<'_> {
        TableGuard(self.lock())
    }

    /// How many `proc_info` calls were made.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// The caller's effective uid.
    pub fn caller_euid(&self) -> u32 {
        self.caller_euid
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test hook must not wedge every later call.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn deny(&self, call: &Call, target: Option<&SimProc>) -> Result<(), Errno> {
        match self.macf.as_ref().and_then(|policy| policy(call, target)) {
            Some(errno) => Err(errno),
            None => Ok(()),
        }
    }

    fn listpids(
        &self,
        table: &SimTable,
        call: &Call,
        buf: Option<&mut [u8]>,
    ) -> Result<usize, Errno> {
        self.deny(call, None)?;
        let estimate = (table.nprocs() + 20) * 4;
        let Some(buf) = buf else { return Ok(estimate) };
        if (buf.len() as u32) < 4 {
            return Err(Errno::ENOMEM);
        }
        let capacity = (table.nprocs() + 20).min(buf.len() / 4);
        let (kind, info) = (call.pid as u32, call.flavor);
        let mut n = 0;
        // The zombie list is walked only when the live walk left room (§2.2 step 5), which
        // `take(capacity)` over the chained walk gives exactly.
        let matching: Box<dyn Iterator<Item = Pid>> = if kind == PROC_TTY_ONLY {
            Box::new(table.on_tty(info).iter().copied())
        } else {
            Box::new(table.procs().filter(|p| SimTable::matches(p, kind, info)).map(|p| p.pid))
        };
        for pid in matching.take(capacity) {
            buf[n * 4..n * 4 + 4].copy_from_slice(&pid.to_ne_bytes());
            n += 1;
        }
        Ok(n * 4)
    }

    fn pidinfo(
        &self,
        table: &SimTable,
        call: &Call,
        buf: Option<&mut [u8]>,
    ) -> Result<usize, Errno> {
        let (pid, flavor, arg) = (call.pid, call.flavor, call.arg);
        if pid == 0 && flavor == PROC_PIDWORKQUEUEINFO {
            return Err(Errno::EINVAL);
        }
        let size = match flavor {
            PROC_PIDTASKALLINFO => 232,
            PROC_PIDTBSDINFO => size_of::<ProcBsdInfo>(),
            PROC_PIDTASKINFO => size_of::<ProcTaskInfo>(),
            PROC_PIDPATHINFO => super::PROC_PIDPATHINFO_SIZE,
            PROC_PIDT_SHORTBSDINFO => size_of::<ProcBsdShortInfo>(),
            PROC_PIDUNIQIDENTIFIERINFO => size_of::<ProcUniqIdentifierInfo>(),
            _ => return Err(Errno::EINVAL),
        };
        let len = call.buf_len.unwrap_or(0);
        if (len as u32 as usize) < size {
            return Err(Errno::ENOMEM);
        }
        if flavor == PROC_PIDPATHINFO && len > PROC_PIDPATHINFO_MAXSIZE {
            return Err(Errno::EOVERFLOW);
        }
        let findzomb = matches!(
            flavor,
            PROC_PIDTBSDINFO | PROC_PIDT_SHORTBSDINFO | PROC_PIDUNIQIDENTIFIERINFO
        ) && arg != 0;
        let entry = match table.procs.get(pid) {
            Some(e) if e.phase != Phase::Dead => e,
            Some(e) if findzomb => e,
            _ => return Err(Errno::ESRCH),
        };
        let target = &entry.proc;
        self.deny(call, Some(target))?;
        let check_same_user = !matches!(
            flavor,
            PROC_PIDT_SHORTBSDINFO | PROC_PIDPATHINFO | PROC_PIDUNIQIDENTIFIERINFO
        );
        if check_same_user
            && self.caller_euid != target.euid
            && self.caller_euid != 0
            && !self.entitled
        {
            return Err(Errno::EPERM);
        }
        let buf = buf.ok_or(Errno::EFAULT)?;
        match flavor {
            PROC_PIDTBSDINFO => Ok(write_pod(buf, &bsd_info(target))),
            PROC_PIDT_SHORTBSDINFO => Ok(write_pod(buf, &short_info(target))),
            PROC_PIDTASKINFO => Ok(write_pod(buf, &target.task_info())),
            PROC_PIDUNIQIDENTIFIERINFO => Ok(write_pod(buf, &uniqid_info(target))),
            PROC_PIDTASKALLINFO => {
                write_pod(buf, &bsd_info(target));
                write_pod(&mut buf[size_of::<ProcBsdInfo>()..], &target.task_info());
                Ok(232)
            }
            _ => {
                // PROC_PIDPATHINFO: ESRCH without a text vnode; the whole buffer is written,
                // and success returns 0 (§3.8).
                let path = target.text_path.as_deref().ok_or(Errno::ESRCH)?;
                if path.len() >= len {
                    return Err(Errno::ESRCH);
                }
                buf.fill(0);
                buf[..path.len()].copy_from_slice(path.as_bytes());
                Ok(0)
            }
        }
    }
}

/// Copies exactly `size_of::<T>()` bytes into the front of `buf`; the rest stays untouched,
/// as with the kernel's copyout (§3.1 step 10). The caller checked the length.
fn write_pod<T: Pod>(buf: &mut [u8], value: &T) -> usize {
    let mut copy = *value;
    let bytes = copy.as_bytes_mut();
    buf[..bytes.len()].copy_from_slice(bytes);
    bytes.len()
}

/// Copies a name into a fixed `char[N]`, keeping at most N-1 bytes and a NUL, as the kernel
/// does for `p_comm` (15 chars survive in a 16-byte field, §3.3).
fn c_field<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let n = s.len().min(N - 1);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}

fn bsd_info(p: &SimProc) -> ProcBsdInfo {
    ProcBsdInfo {
        pbi_flags: p.flags_full(),
        pbi_status: p.status,
        pbi_xstatus: 0,
        pbi_pid: p.pid as u32,
        pbi_ppid: p.ppid as u32,
        pbi_uid: p.euid,
        pbi_gid: p.egid,
        pbi_ruid: p.ruid,
        pbi_rgid: p.rgid,
        pbi_svuid: p.svuid,
        pbi_svgid: p.svgid,
        rfu_1: 0,
        pbi_comm: p.comm,
        pbi_name: p.name,
        pbi_nfiles: p.nfiles,
        pbi_pgid: p.pgid as u32,
        pbi_pjobc: 0,
        e_tdev: if p.controlt { p.session_tty } else { NODEV },
        e_tpgid: if p.controlt { p.tpgid as u32 } else { 0 },
        pbi_nice: p.nice,
        pbi_start_tvsec: p.start_sec,
        pbi_start_tvusec: p.start_usec,
    }
}

fn uniqid_info(p: &SimProc) -> ProcUniqIdentifierInfo {
    // The parent's uniqueid and the pid versions are not modelled; nothing here reads them.
    ProcUniqIdentifierInfo { p_uniqueid: p.uniqueid, ..ProcUniqIdentifierInfo::default() }
}

fn short_info(p: &SimProc) -> ProcBsdShortInfo {
    ProcBsdShortInfo {
        pbsi_pid: p.pid as u32,
        pbsi_ppid: p.ppid as u32,
        pbsi_pgid: p.pgid as u32,
        pbsi_status: p.status,
        pbsi_comm: p.comm,
        // SLEADER and CTTY are computed only for full BSD info (§3.4).
        pbsi_flags: p.flags_full() & !(PROC_FLAG_SLEADER | PROC_FLAG_CTTY),
        pbsi_uid: p.euid,
        pbsi_gid: p.egid,
        pbsi_ruid: p.ruid,
        pbsi_rgid: p.rgid,
        pbsi_svuid: p.svuid,
        pbsi_svgid: p.svgid,
        pbsi_rfu: 0,
    }
}

impl Kernel for SimKernel {
    fn proc_info(
        &self,
        callnum: i32,
        pid: i32,
        flavor: u32,
        arg: u64,
        buf: Option<&mut [u8]>,
    ) -> Result<usize, Errno> {
        let mut state = self.lock();
        let call = Call {
            index: state.calls,
            callnum,
            pid,
            flavor,
            arg,
            buf_len: buf.as_ref().map(|b| b.len()),
        };
        state.calls += 1;
        let State { table, hook, .. } = &mut *state;
        if let Some(hook) = hook.as_mut() {
            hook(table, &call);
        }
        match callnum {
            PROC_CALLNUM_LISTPIDS => self.listpids(table, &call, buf),
            PROC_CALLNUM_PIDINFO => self.pidinfo(table, &call, buf),
            PROC_CALLNUM_PIDRUSAGE => self.pid_rusage(table, &call, buf),
            PROC_CALLNUM_PIDFDINFO | PROC_CALLNUM_PIDFILEPORTINFO => {
                // No live process: ESRCH (no zombie lookup); otherwise the same-user check,
                // then EINVAL, since no descriptor or fileport exists here.
                let target = table.procs.get(pid).filter(|e| e.phase != Phase::Dead);
                let target = target.ok_or(Errno::ESRCH)?;
                self.deny(&call, Some(&target.proc))?;
                if self.caller_euid != target.proc.euid && self.caller_euid != 0 && !self.entitled {
                    return Err(Errno::EPERM);
                }
                Err(Errno::EINVAL)
            }
            PROC_CALLNUM_KERNMSGBUF if self.caller_euid == 0 => Ok(0),
            PROC_CALLNUM_KERNMSGBUF => Err(Errno::EPERM),
            PROC_CALLNUM_SETCONTROL => Err(Errno::EINVAL),
            _ => Err(Errno::EINVAL),
        }
    }

    fn timebase_hz(&self) -> Option<u64> {
        Some(self.timebase_hz)
    }
}

/// [`SimTable::insert`] was given a pid the table already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidTaken(pub i32);

impl std::fmt::Display for PidTaken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} already exists", self.0)
    }
}

impl std::error::Error for PidTaken {}
