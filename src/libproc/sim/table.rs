//! The process model behind [`SimKernel`](super::SimKernel): the processes (§8 "state per
//! proc"), their lists in the kernel's order (§2.5), and what happens to them (fork, exec,
//! exit, reap). The syscall emulator in `mod.rs` reads it; tests and the churn mode change it.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::SimRusage;

use crate::libproc::pidinfo::ProcTaskInfo;
use crate::libproc::{
    NODEV, PROC_ALL_PIDS, PROC_FLAG_CONTROLT, PROC_FLAG_CTTY, PROC_FLAG_INEXIT, PROC_FLAG_SLEADER,
    PROC_KDBG_ONLY, PROC_PGRP_ONLY, PROC_PPID_ONLY, PROC_RUID_ONLY, PROC_TTY_ONLY, PROC_UID_ONLY,
    Pid, SRUN, SSTOP, SZOMB,
};

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
    /// A replayed process whose recording has no uniqueid: the recorder asked after its
    /// snapshot and the process had been reaped (ESRCH). Flavor 17 says ESRCH again, so the
    /// replay records back what was recorded, and the table does not number it at insert.
    pub uniqueid_unknown: bool,
    /// A replayed process whose recording has no session id: the recorder's `getsid` found
    /// it gone (ESRCH, §10.1). `getsid` says ESRCH again, so the replay records back what
    /// was recorded; `sid` still groups it (as its process group) for the terminal model.
    pub sid_unknown: bool,
    /// A replayed process whose recording has no start time although its full BSD info was
    /// the recorder's to read (its own, or as root): it was gone when asked. Full BSD info
    /// says ESRCH again, after the same-user check, so the replay records back the same.
    pub start_unknown: bool,
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
            flags: crate::libproc::PROC_FLAG_LP64,
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
            uniqueid_unknown: false,
            sid_unknown: false,
            start_unknown: false,
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

    pub(super) fn flags_full(&self) -> u32 {
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
    pub(super) live: Vec<Pid>,
    /// Zombies in order of death; walked from the end (most recent death first).
    pub(super) zombies: Vec<Pid>,
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
        kernel_task.flags |= crate::libproc::PROC_FLAG_SYSTEM;
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
    /// `uniqueid` (a recording) keeps it, and the counter moves past it; one marked
    /// `uniqueid_unknown` has none.
    pub fn insert_with_phase(&mut self, mut proc: SimProc, phase: Phase) -> Result<(), PidTaken> {
        if self.procs.contains_key(proc.pid) {
            return Err(PidTaken(proc.pid));
        }
        // kernel_task is not forked: its uniqueid stays 0 and launchd's is 1 (§3.10).
        if proc.uniqueid == 0 && proc.pid != 0 && !proc.uniqueid_unknown {
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
        child.uniqueid_unknown = false;
        child.sid_unknown = false;
        child.start_unknown = false;
        // A new process has used nothing yet and reaped nothing (§9.8).
        child.rusage = Some(SimRusage::default());
        self.clock += 1;
        child.start_sec = 1_732_800_000 + self.clock;
        self.insert(child).expect("next_pid returns a free pid");
        pid
    }

    /// A fork that took its uniqueid and then failed (`forkproc_free`, §2.2): the counter
    /// moves (§3.10), and no process is left behind.
    pub fn fork_failed(&mut self) {
        self.forks += 1;
    }

    /// Makes the next fork take `pid` if it is free, as the allocator does when it has
    /// wrapped round to it (§2.5; never below 100 after a wrap).
    pub fn reuse_next(&mut self, pid: Pid) {
        if pid > 100 && !self.procs.contains_key(pid) {
            self.last_pid = pid - 1;
        }
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

    /// The process with this pid and its phase: what the emulator looks up.
    pub(super) fn lookup(&self, pid: Pid) -> Option<(&SimProc, Phase)> {
        self.procs.get(pid).map(|e| (&e.proc, e.phase))
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
    pub(super) fn on_tty(&self, dev: u32) -> &[Pid] {
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

    pub(super) fn matches(proc: &SimProc, kind: u32, info: u32) -> bool {
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

/// Copies a name into a fixed `char[N]`, keeping at most N-1 bytes and a NUL, as the kernel
/// does for `p_comm` (15 chars survive in a 16-byte field, §3.3).
fn c_field<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let n = s.len().min(N - 1);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
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
