//! Churn mode: a [`SimKernel`] whose table changes between any two `proc_info` calls, as a busy
//! Mac's does, driven by a seed so that a failure replays exactly.
//!
//! Before each call the schedule may apply a few of these, each as xnu does it:
//! - fork: the next pid, the next uniqueid, at the head of the list (§2.4, §2.5, §3.10); now
//!   and then a login (a new session, maybe on a terminal);
//! - exec: to the head of the list, the uniqueid kept (§2.4, §3.10); the comm may change, and
//!   a setuid program changes the effective uid;
//! - the exit window: findable, with `PROC_FLAG_INEXIT` (§2.4);
//! - exit to a zombie: its zombie children are reaped on the spot and the others go to
//!   launchd (§10.4); an orphan launchd adopted is reaped at once (§10.4);
//! - reap of a zombie by its parent (§2.4);
//! - a pid reused: the allocator, wrapped round, lands on a pid freed a moment ago (§2.5,
//!   §7 item 1: never one still in use as a process group or session id);
//! - a session gaining its terminal (TIOCSCTTY sets `P_CONTROLT`, §2.1 notes) or losing it
//!   (revoked: the session's device becomes NODEV, members keep the flag; or `setsid`,
//!   which clears the flag, §2.1 notes);
//! - a fork that takes a uniqueid and then fails (§2.2 `forkproc_free`, §3.10);
//! - right after a NULL size probe of the full listing, a burst of forks, so the fill sees
//!   more processes than the probe counted (§2.2, §2.3).
//!
//! [`History`] keeps what every pid looked like at every call, the number of processes each
//! call saw, and every full listing, so tests can say what a reader may have seen.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::{Call, Hook, Phase, SimKernel, SimTable};
use crate::libproc::{NODEV, PROC_ALL_PIDS, PROC_CALLNUM_LISTPIDS, Pid};

/// splitmix64: a ten-line generator that is enough for a test schedule, and deterministic.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }
}

/// Where a schedule's choices come from.
#[derive(Clone, Debug)]
pub enum Choices {
    /// A seeded generator: endless.
    Seeded(SplitMix),
    /// Given bytes (a fuzzer's input), two per choice. Once they run out every choice is 0,
    /// which the schedule takes as "no more changes", so every run ends.
    Bytes {
        /// The input.
        bytes: Vec<u8>,
        /// The next unread byte.
        at: usize,
    },
}

impl Choices {
    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        match self {
            Choices::Seeded(rng) => rng.below(n),
            Choices::Bytes { bytes, at } => {
                let pair = bytes.get(*at..*at + 2).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
                *at += 2;
                if n == 0 { 0 } else { usize::from(pair) % n }
            }
        }
    }
}

/// What a reader can see of one process at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Effective uid.
    pub euid: u32,
    /// Real uid.
    pub ruid: u32,
    /// Parent pid.
    pub ppid: Pid,
    /// `p_comm` as copied out.
    pub comm: [u8; 16],
    /// The terminal `PROC_TTY_ONLY` or full info would give (`P_CONTROLT` and a device).
    pub tty: Option<u32>,
}

/// What the table looked like at each call since churn began.
#[derive(Debug, Default)]
pub struct History {
    /// The call index the history starts at.
    first: u64,
    /// Per pid, from which call on it looked like this (`None`: no process had the pid).
    versions: HashMap<Pid, Vec<(u64, Option<Seen>)>>,
    /// Processes in the table (kernel_task included) as each call saw it, from `first` on.
    counts: Vec<usize>,
    /// Every `PROC_ALL_PIDS` call with a buffer: its index and the pids it listed, if the
    /// buffer held them all.
    listings: Vec<(u64, Vec<Pid>)>,
}

impl History {
    /// Everything `pid` looked like during calls `from..=to` (several: it changed, or its pid
    /// was reused); empty if no process had the pid then.
    pub fn seen(&self, pid: Pid, from: u64, to: u64) -> Vec<&Seen> {
        let Some(versions) = self.versions.get(&pid) else { return Vec::new() };
        let mut out = Vec::new();
        for (i, (since, seen)) in versions.iter().enumerate() {
            let until = versions.get(i + 1).map_or(u64::MAX, |(next, _)| next - 1);
            if *since <= to && until >= from {
                out.extend(seen.as_ref());
            }
        }
        out
    }

    /// Whether no process had `pid` at some call in `from..=to` (it was reaped, or not yet
    /// forked): a reader that asked then found nothing.
    pub fn gone_during(&self, pid: Pid, from: u64, to: u64) -> bool {
        let Some(versions) = self.versions.get(&pid) else { return true };
        let before = |at: u64| versions.iter().rev().find(|(since, _)| *since <= at);
        // Absent at `from`, or absent from some change inside the window.
        before(from).is_none_or(|(_, seen)| seen.is_none())
            || versions.iter().any(|(since, seen)| (from..=to).contains(since) && seen.is_none())
    }

    /// The fewest and the most processes any call in `from..=to` saw.
    pub fn count_range(&self, from: u64, to: u64) -> (usize, usize) {
        let lo = from.saturating_sub(self.first) as usize;
        let hi = (to.saturating_sub(self.first) as usize).min(self.counts.len().saturating_sub(1));
        let window = self.counts.get(lo..=hi).unwrap_or(&[]);
        (window.iter().copied().min().unwrap_or(0), window.iter().copied().max().unwrap_or(0))
    }

    /// The full listings made by calls `from..=to`, in order: index and the pids listed.
    pub fn listings(&self, from: u64, to: u64) -> impl Iterator<Item = &(u64, Vec<Pid>)> {
        self.listings.iter().filter(move |(i, _)| (from..=to).contains(i))
    }

    fn note(&mut self, pid: Pid, at: u64, now: Option<Seen>) {
        let versions = self.versions.entry(pid).or_default();
        // Changed twice before one call: that call saw only the last.
        if versions.last().is_some_and(|(since, _)| *since == at) {
            versions.pop();
        }
        if versions.last().map(|(_, s)| s) != Some(&now) {
            versions.push((at, now));
        }
    }
}

/// Processes the full listing holds: nprocs and kernel_task (§2.2).
fn listed(table: &SimTable) -> usize {
    table.nprocs() + usize::from(table.get(0).is_some())
}

fn seen_of(table: &SimTable, pid: Pid) -> Option<Seen> {
    let p = table.get(pid)?;
    let tty = (p.controlt && p.session_tty != NODEV).then_some(p.session_tty);
    Some(Seen { euid: p.euid, ruid: p.ruid, ppid: p.ppid, comm: p.comm, tty })
}

/// A churn schedule and what it did.
#[derive(Debug)]
pub struct Churn {
    rng: Choices,
    /// Terminal devices sessions may take.
    ttys: Vec<u32>,
    /// No forks while the table holds this many processes.
    max_procs: usize,
    /// Pids freed recently, for reuse.
    freed: Vec<Pid>,
    /// The last call was a NULL probe of the full listing.
    after_probe: bool,
    /// A fork storm that never ends: before every fill of the full listing, forks until
    /// the buffer cannot hold the table (what `set_storm` turns on).
    storm: bool,
    /// What the table looked like, call by call.
    pub history: History,
    /// How often each kind of change happened (a try that found nothing to change is not
    /// counted), so a test can show every rule ran.
    pub fired: BTreeMap<&'static str, u64>,
}

const COMMS: [&str; 8] = ["sh", "clang", "ld", "cargo", "rustc", "git", "xcrun", "mdworker"];
const UIDS: [u32; 4] = [0, 88, 501, 502];

impl Churn {
    /// A schedule for `seed` over `table` as it is now, about to be called for the
    /// `first_call`-th time; sessions may take the terminals `ttys`.
    pub fn new(seed: u64, table: &SimTable, first_call: u64, ttys: Vec<u32>) -> Churn {
        Churn::with_choices(Choices::Seeded(SplitMix::new(seed)), table, first_call, ttys)
    }

    /// [`Churn::new`] with the choices from `rng`.
    pub fn with_choices(rng: Choices, table: &SimTable, first_call: u64, ttys: Vec<u32>) -> Churn {
        let mut history = History { first: first_call, ..History::default() };
        for p in table.procs() {
            history.note(p.pid, first_call, seen_of(table, p.pid));
        }
        Churn {
            rng,
            ttys,
            max_procs: 160,
            freed: Vec::new(),
            after_probe: false,
            storm: false,
            history,
            fired: BTreeMap::new(),
        }
    }

    /// Turns churn on for `kernel`: from its next call on, the world may change before each
    /// call. The returned handle reads the history.
    pub fn install(kernel: &SimKernel, seed: u64, ttys: Vec<u32>) -> Arc<Mutex<Churn>> {
        Churn::install_with(kernel, Choices::Seeded(SplitMix::new(seed)), ttys)
    }

    /// [`Churn::install`] with the choices from `rng`.
    pub fn install_with(kernel: &SimKernel, rng: Choices, ttys: Vec<u32>) -> Arc<Mutex<Churn>> {
        let first_call = kernel.calls();
        let churn = Churn::with_choices(rng, &kernel.table(), first_call, ttys);
        let churn = Arc::new(Mutex::new(churn));
        let handle = churn.clone();
        let hook: Hook = Box::new(move |table, call| {
            // A test that panicked while holding the history must not wedge the kernel.
            let mut churn = handle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            churn.step(table, call);
        });
        kernel.set_hook(hook);
        churn
    }

    /// Turns on a fork storm that never ends: every fill of the full listing finds more
    /// processes than its buffer holds, however often the reader grows it (§2.3).
    pub fn set_storm(&mut self, on: bool) {
        self.storm = on;
    }

    /// The changes before `call`, then its record in the history.
    pub fn step(&mut self, table: &mut SimTable, call: &Call) {
        let full_listing =
            call.callnum == PROC_CALLNUM_LISTPIDS && call.pid as u32 == PROC_ALL_PIDS;
        let mut touched = Vec::new();
        // Choice 0 is always "nothing happens" (see `Choices::Bytes`).
        if std::mem::take(&mut self.after_probe) && self.rng.below(3) == 1 {
            // More than the probe's 20 spare slots and the reader's headroom (§2.2).
            for _ in 0..20 + self.rng.below(60) {
                self.fork(table, &mut touched);
            }
            *self.fired.entry("forks after the probe").or_default() += 1;
        }
        let events = [0, 0, 1, 1, 2, 4][self.rng.below(6)];
        for _ in 0..events {
            self.event(table, &mut touched);
        }
        // Last, so no exit this step makes room again.
        if let (true, true, Some(len)) = (self.storm, full_listing, call.buf_len) {
            while listed(table) * 4 <= len {
                touched.push(table.fork(1));
            }
            *self.fired.entry("storm").or_default() += 1;
        }
        for pid in touched {
            self.history.note(pid, call.index, seen_of(table, pid));
        }
        self.history.counts.push(listed(table));
        if full_listing {
            match call.buf_len {
                None => self.after_probe = true,
                Some(len) => {
                    let pids: Vec<Pid> = table.procs().map(|p| p.pid).collect();
                    if pids.len() * 4 <= len {
                        self.history.listings.push((call.index, pids));
                    }
                }
            }
        }
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> Option<T> {
        (!from.is_empty()).then(|| from[self.rng.below(from.len())])
    }

    fn pick_tty(&mut self) -> Option<u32> {
        (!self.ttys.is_empty()).then(|| self.ttys[self.rng.below(self.ttys.len())])
    }

    /// A live process other than kernel_task, or none (a try that hits an exiting one).
    fn pick_live(&mut self, table: &SimTable) -> Option<Pid> {
        self.pick_on_list(table).filter(|&pid| table.phase(pid) == Some(Phase::Live))
    }

    /// A process on the live list (exiting ones too) other than kernel_task.
    fn pick_on_list(&mut self, table: &SimTable) -> Option<Pid> {
        self.pick(&table.live).filter(|&pid| pid != 0)
    }

    fn event(&mut self, table: &mut SimTable, touched: &mut Vec<Pid>) {
        let before = (touched.len(), table.forks());
        let kind = match self.rng.below(100) {
            0..30 => {
                self.fork(table, touched);
                "fork"
            }
            30..42 => {
                self.exec(table, touched);
                "exec"
            }
            42..50 => {
                if let Some(pid) = self.pick_live(table).filter(|&p| p != 1) {
                    table.begin_exit(pid);
                    touched.push(pid);
                }
                "begin exit"
            }
            50..65 => {
                self.exit(table, touched);
                "exit"
            }
            65..78 => {
                if let Some(pid) = self.pick(&table.zombies.clone()) {
                    self.reap(table, pid, touched);
                }
                "reap"
            }
            78..84 => {
                if let Some(&pid) = self.freed.last() {
                    // A pid still naming a group or session is not handed out (§7 item 1).
                    if !table.procs().any(|p| p.pgid == pid || p.sid == pid) {
                        table.reuse_next(pid);
                        self.fork(table, touched);
                    }
                }
                "pid reused"
            }
            84..92 => {
                self.take_terminal(table, touched);
                "terminal taken"
            }
            92..97 => {
                self.lose_terminal(table, touched);
                "terminal lost"
            }
            _ => {
                table.fork_failed();
                "failed fork"
            }
        };
        if (touched.len(), table.forks()) != before {
            *self.fired.entry(kind).or_default() += 1;
        }
    }

    fn fork(&mut self, table: &mut SimTable, touched: &mut Vec<Pid>) {
        if table.nprocs() >= self.max_procs {
            return;
        }
        let Some(parent) = self.pick_live(table).or(Some(1)).filter(|&p| table.get(p).is_some())
        else {
            return;
        };
        let pid = table.fork(parent);
        self.freed.retain(|&p| p != pid);
        touched.push(pid);
        if self.rng.below(8) == 0 {
            // A login: its own session and group, its own user, maybe a terminal.
            let uid = UIDS[self.rng.below(UIDS.len())];
            let tty = self.pick_tty();
            let p = table.get_mut(pid).expect("just forked");
            *p = p.clone().with_uid(uid);
            (p.sid, p.pgid, p.controlt, p.session_tty) = (pid, pid, false, NODEV);
            if let Some(dev) = tty.filter(|_| self.rng.below(2) == 0) {
                *p = p.clone().with_tty(dev);
            }
        }
    }

    fn exec(&mut self, table: &mut SimTable, touched: &mut Vec<Pid>) {
        let Some(pid) = self.pick_live(table) else { return };
        let comm = COMMS[self.rng.below(COMMS.len())];
        table.exec(pid, comm);
        if self.rng.below(6) == 0 {
            // A setuid program: the effective uid changes, the real one stays.
            let euid = UIDS[self.rng.below(UIDS.len())];
            if let Some(p) = table.get_mut(pid) {
                p.euid = euid;
                p.svuid = euid;
            }
        }
        touched.push(pid);
    }

    fn exit(&mut self, table: &mut SimTable, touched: &mut Vec<Pid>) {
        let Some(pid) = self.pick_on_list(table).filter(|&p| p != 1) else { return };
        let children: Vec<Pid> = table.procs().filter(|p| p.ppid == pid).map(|p| p.pid).collect();
        for &child in &children {
            // Zombie children are reaped on the spot, never handed to launchd (§10.4).
            if table.phase(child) == Some(Phase::Dead) {
                self.reap(table, child, touched);
            }
        }
        let adopted = table.get(pid).is_some_and(|p| p.ppid == 1);
        table.exit(pid);
        touched.push(pid);
        touched.extend(children.iter().copied().filter(|&c| table.get(c).is_some()));
        if adopted {
            // launchd's children, adopted orphans among them, never linger as zombies (§10.4).
            self.reap(table, pid, touched);
        }
    }

    fn reap(&mut self, table: &mut SimTable, pid: Pid, touched: &mut Vec<Pid>) {
        table.reap(pid);
        if table.get(pid).is_none() {
            self.freed.push(pid);
            if self.freed.len() > 8 {
                self.freed.remove(0);
            }
            touched.push(pid);
        }
    }

    /// A session leader without a terminal opens one (TIOCSCTTY, §2.1 notes): it gets
    /// `P_CONTROLT`, and the session (every member) the device.
    fn take_terminal(&mut self, table: &mut SimTable, touched: &mut Vec<Pid>) {
        let Some(pid) = self.pick_live(table).filter(|&p| p != 1) else { return };
        let Some(dev) = self.pick_tty() else { return };
        let sid = match table.get(pid) {
            Some(p) if p.sid == pid && !p.controlt => pid,
            _ => return,
        };
        let members: Vec<Pid> = table.procs().filter(|p| p.sid == sid).map(|p| p.pid).collect();
        for &m in &members {
            let p = table.get_mut(m).expect("listed");
            p.session_tty = dev;
            if m == pid {
                p.controlt = true;
                p.tpgid = p.pgid;
            }
        }
        touched.extend(members);
    }

    /// A session loses its terminal (revoked: members keep `P_CONTROLT`), or one process
    /// leaves it with `setsid` (which clears the flag), §2.1 notes.
    fn lose_terminal(&mut self, table: &mut SimTable, touched: &mut Vec<Pid>) {
        let Some(pid) = self.pick_live(table).filter(|&p| p != 1) else { return };
        let Some(sid) = table.get(pid).filter(|p| p.controlt).map(|p| p.sid) else { return };
        if self.rng.below(2) == 0 {
            table.revoke_tty(sid);
            touched
                .extend(table.procs().filter(|p| p.sid == sid).map(|p| p.pid).collect::<Vec<_>>());
        } else if table.get(pid).is_some_and(|p| p.pgid != pid) {
            // setsid fails for a process group leader (EPERM), so only others.
            let p = table.get_mut(pid).expect("picked");
            (p.sid, p.pgid, p.controlt, p.session_tty) = (pid, pid, false, NODEV);
            touched.push(pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(index: u64) -> Call {
        Call { index, callnum: 0, pid: 0, flavor: 0, arg: 0, buf_len: None }
    }

    #[test]
    fn a_byte_schedule_changes_the_table_and_stops_when_the_bytes_run_out() {
        let mut table = SimTable::booted();
        let bytes: Vec<u8> = (0..=255).cycle().take(600).collect();
        let choices = Choices::Bytes { bytes, at: 0 };
        let mut churn = Churn::with_choices(choices, &table, 0, vec![0x1000_0000]);
        for index in 0..200 {
            churn.step(&mut table, &call(index));
        }
        assert!(
            churn.fired.values().sum::<u64>() > 10,
            "the bytes made changes: {:?}",
            churn.fired
        );
        let (forks, procs) = (table.forks(), table.nprocs());
        for index in 200..400 {
            churn.step(&mut table, &call(index));
        }
        assert_eq!((table.forks(), table.nprocs()), (forks, procs), "no bytes, no changes");
    }

    #[test]
    fn the_same_seed_makes_the_same_changes() {
        let run = |seed| {
            let mut table = SimTable::booted();
            let mut churn = Churn::new(seed, &table, 0, vec![0x1000_0000]);
            (0..300).for_each(|index| churn.step(&mut table, &call(index)));
            (churn.fired, table.procs().map(|p| (p.pid, p.ppid, p.comm)).collect::<Vec<_>>())
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7).1, run(8).1);
    }
}
