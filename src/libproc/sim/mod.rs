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
//! locking [`SimKernel::table`] between calls. [`churn`] is such a hook: a seeded schedule
//! that changes the table as a busy Mac's changes, and remembers what each pid looked like.
//!
//! The process model (processes, their lists, fork, exec, exit, reap) is `table.rs`; this
//! file is the syscall emulator that reads it.
//!
//! Not modelled: callnums 3 to 6 beyond their argument checks (no file descriptors or
//! fileports exist here), flavors other than 2, 3, 4, 11, 13 and 17 (EINVAL, as an unknown flavor
//! is), shadow processes of an exec in flight (they are never visible, §2.4).
//!
//! Flavor 17 (`PROC_PIDUNIQIDENTIFIERINFO`, §3.10) is modelled with the kernel's fork
//! counter: every process inserted without a `uniqueid` (every [`SimTable::fork`]) takes the
//! next one, as `forkproc` does, and exec keeps it.
//! A replayed process recorded without one
//! ([`SimProc::uniqueid_unknown`]) answers ESRCH, as it did to the recorder.
//!
//! Callnum 9 (`proc_pid_rusage`, §9.8) is `rusage.rs`: each process's [`SimRusage`], which
//! a reap adds to the reaper's children's times and an exec clears, the same-euid rule, and
//! a kernel tick rate (24 MHz by default, as on Apple Silicon) that a reader must convert.

pub mod churn;
mod rusage;
mod table;

pub use rusage::SimRusage;
pub use table::{Phase, PidTaken, SimProc, SimTable, mac_dev};

use std::sync::{Mutex, MutexGuard};

use super::pidinfo::{Pod, ProcBsdInfo, ProcBsdShortInfo, ProcTaskInfo, ProcUniqIdentifierInfo};
use super::{
    Errno, Kernel, NODEV, PROC_CALLNUM_KERNMSGBUF, PROC_CALLNUM_LISTPIDS, PROC_CALLNUM_PIDFDINFO,
    PROC_CALLNUM_PIDFILEPORTINFO, PROC_CALLNUM_PIDINFO, PROC_CALLNUM_PIDRUSAGE,
    PROC_CALLNUM_SETCONTROL, PROC_FLAG_CTTY, PROC_FLAG_SLEADER, PROC_PIDPATHINFO,
    PROC_PIDPATHINFO_MAXSIZE, PROC_PIDT_SHORTBSDINFO, PROC_PIDTASKINFO, PROC_PIDTBSDINFO,
    PROC_PIDUNIQIDENTIFIERINFO, PROC_TTY_ONLY, Pid,
};

/// `PROC_PIDTASKALLINFO`: bsd info followed by task info.
const PROC_PIDTASKALLINFO: u32 = 2;
/// `PROC_PIDWORKQUEUEINFO`: EINVAL for pid 0 before anything else (§3.1).
const PROC_PIDWORKQUEUEINFO: u32 = 12;

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

/// The callnum slot of the [`Call`] a hook sees for `getsid(2)` (syscall 310, §10.1), which is
/// not a `proc_info` call: no callnum of `__proc_info` is negative.
pub const GETSID: i32 = -310;

/// A MACF policy (a sandbox): given the call and the target (if any), an errno to deny with.
pub type MacPolicy = Box<dyn Fn(&Call, Option<&SimProc>) -> Option<Errno> + Send + Sync>;
/// A hook run at the start of every call, with the table to change.
pub type Hook = Box<dyn FnMut(&mut SimTable, &Call) + Send>;

struct State {
    table: SimTable,
    hook: Option<Hook>,
    calls: u64,
}

impl State {
    /// The start of every system call here: number it, count it, and let the hook (a test,
    /// or a churning world) change the table first.
    fn enter(&mut self, call: Call) -> Call {
        let call = Call { index: self.calls, ..call };
        self.calls += 1;
        if let Some(hook) = self.hook.as_mut() {
            hook(&mut self.table, &call);
        }
        call
    }
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

    /// The newest `proc_pid_rusage` flavor this kernel knows (§9.2: 2 from macOS 10.9, 6
    /// from macOS 13); `None` models a kernel without callnum 9, older than 10.9.
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
        let target = match table.lookup(pid) {
            Some((p, phase)) if phase != Phase::Dead => p,
            Some((p, _)) if findzomb => p,
            _ => return Err(Errno::ESRCH),
        };
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
        if flavor == PROC_PIDUNIQIDENTIFIERINFO && target.uniqueid_unknown {
            return Err(Errno::ESRCH);
        }
        if matches!(flavor, PROC_PIDTBSDINFO | PROC_PIDTASKALLINFO) && target.start_unknown {
            return Err(Errno::ESRCH);
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
    let mut short = bsd_info(p).short();
    // SLEADER and CTTY are computed only for full BSD info (§3.4).
    short.pbsi_flags &= !(PROC_FLAG_SLEADER | PROC_FLAG_CTTY);
    short
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
        let buf_len = buf.as_ref().map(|b| b.len());
        let call = state.enter(Call { index: 0, callnum, pid, flavor, arg, buf_len });
        let table = &mut state.table;
        match callnum {
            PROC_CALLNUM_LISTPIDS => self.listpids(table, &call, buf),
            PROC_CALLNUM_PIDINFO => self.pidinfo(table, &call, buf),
            PROC_CALLNUM_PIDRUSAGE => self.pid_rusage(table, &call, buf),
            PROC_CALLNUM_PIDFDINFO | PROC_CALLNUM_PIDFILEPORTINFO => {
                // No live process: ESRCH (no zombie lookup); otherwise the same-user check,
                // then EINVAL, since no descriptor or fileport exists here.
                let target = table.lookup(pid).filter(|&(_, phase)| phase != Phase::Dead);
                let (target, _) = target.ok_or(Errno::ESRCH)?;
                self.deny(&call, Some(target))?;
                if self.caller_euid != target.euid && self.caller_euid != 0 && !self.entitled {
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

    /// §10.5: a live or exiting process's sid, whoever asks; ESRCH for a zombie or a pid
    /// not in the table. A call like any other: counted in [`SimKernel::calls`], and the
    /// hook (a churning world) runs first, with [`GETSID`] in the callnum slot. Pid 0
    /// would mean the caller's own session, but the caller is not a process of the simulated
    /// table, so it gets ESRCH too (nothing here asks about pid 0).
    fn getsid(&self, pid: i32) -> Result<i32, Errno> {
        let mut state = self.lock();
        state.enter(Call { index: 0, callnum: GETSID, pid, flavor: 0, arg: 0, buf_len: None });
        match state.table.lookup(pid) {
            Some((proc, phase)) if pid != 0 && phase != Phase::Dead && !proc.sid_unknown => {
                Ok(proc.sid)
            }
            _ => Err(Errno::ESRCH),
        }
    }

    fn timebase_hz(&self) -> Option<u64> {
        Some(self.timebase_hz)
    }
}
