//! A snapshot from any libproc [`Kernel`]: the real one on macOS, `SimKernel` in tests and
//! replays.
//!
//! Unprivileged (the normal case), a snapshot costs N + k + 4 calls: the size probe and the
//! fill of `PROC_ALL_PIDS`, one privilege probe, `PROC_PIDT_SHORTBSDINFO` for each of the N
//! pids, and `PROC_TTY_ONLY` for k of the T terminal devices in /dev, because short info has
//! no tty and full info of another user's process needs root (reference §7 item 7). Short
//! info does carry `PROC_FLAG_CONTROLT` (xnu `proc_pidshortbsdinfo`, reference §3.6), so
//! the reader knows how many processes have a terminal before it lists any: none on a
//! headless runner (k = 0), and otherwise it asks the devices most-likely-first and stops
//! once every flagged process has its terminal (k = the terminals in use, in the common
//! case). A process whose session lost its terminal keeps the flag but matches no device
//! (reference §2.1 notes on TTY); then the scan runs to the end (k = T), still correct.
//! Privileged, full BSD info gives the tty directly and the listings are skipped.
//!
//! The fourth fixed call reads the fork counter ([`Snapshot::forks`]): the `p_uniqueid` of
//! the newest listed process (§3.10); a few more only when the newest processes were reaped
//! between the listing and the question.
//!
//! Leftovers (the `leftovers` collector) need session ids, which only `getsid` gives (§10.1),
//! one call a pid. They are asked only for the live processes whose process group leader is
//! not a live process, and for their parents: a table whose groups all have leaders (the
//! common case) costs nothing more, and each such process at most 2 calls, plus 1 or 2 for
//! its age where its start time is unknown (full BSD info for one's own processes, else its
//! uniqueid, §3.10). Every other process keeps `sid: None`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{
    Comm, DiskBytes, Error, Os, Process, Snapshot, Source, StartTime, State, Tty, Unreadable, Usage,
};
use crate::host::terminals;
use crate::host::{self, Limits};
use crate::libproc::{
    self, Errno, Kernel, ListFilter, NODEV, PROC_FLAG_CONTROLT, PidList, ProcBsdInfo,
    ProcBsdShortInfo, RusageInfoV2,
};

/// Where the terminal devices come from.
#[derive(Clone, Debug)]
pub enum TtyDevices {
    /// The terminal devices in this directory ([`terminals::scan`]), listed once per
    /// snapshot.
    Scan(PathBuf),
    /// A fixed list (a replayed recording), in any order.
    Fixed(Vec<Tty>),
}

/// Reads snapshots through a libproc kernel.
pub struct DarwinSource<K> {
    kernel: K,
    ttys: TtyDevices,
    limits: Option<Limits>,
    users: BTreeMap<u32, String>,
    caller_euid: u32,
    pids: PidList,
    tty_pids: PidList,
    /// Whether to read the fork counter (a replayed file without uniqueids has none).
    read_forks: bool,
    /// The highest fork count reported, so the counter never goes back (§3.10).
    forks_seen: Option<u64>,
    /// Whether and how each readable process's usage is read (`proc_pid_rusage`, §9).
    usage: UsageRead,
}

/// Whether a [`DarwinSource`] reads usage: decided when it is built, and once more if the
/// kernel refuses the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UsageRead {
    /// Not asked for (the `resources` collector is off): no calls, nothing counted.
    Off,
    /// Read, the CPU times converted at this Mach tick rate (§9.6).
    On {
        /// `hw.tbfrequency` as the kernel answered it.
        hz: u64,
    },
    /// Asked for but impossible (no tick rate to convert with, or EINVAL from the kernel):
    /// every process counted `other`, no calls.
    Refused,
}

/// How many of the newest listed pids are asked for their uniqueid before giving up for this
/// scrape. Each miss is a process reaped since the listing; more than a handful in a row is a
/// storm, and the last value still stands. Without a last value (the first scrape) the reader
/// asks on down the list: any process's uniqueid is a lower bound of the counter (§3.10).
const UNIQUEID_TRIES: usize = 4;

impl<K: Kernel> DarwinSource<K> {
    /// A source over `kernel` with everything else given: terminals, limits (`None` reads
    /// the host's), user names, the caller's euid.
    pub fn new(
        kernel: K,
        ttys: TtyDevices,
        limits: Option<Limits>,
        users: BTreeMap<u32, String>,
        caller_euid: u32,
    ) -> DarwinSource<K> {
        DarwinSource {
            kernel,
            ttys,
            limits,
            users,
            caller_euid,
            pids: PidList::new(),
            tty_pids: PidList::new(),
            read_forks: true,
            forks_seen: None,
            usage: UsageRead::Off,
        }
    }

    /// The same source reading every readable process's usage too (the `resources`
    /// collector): R more calls a scrape for R readable processes, the caller's own (its
    /// effective uid's) unprivileged, every one as root (§9.1).
    pub fn reading_usage(mut self, read_usage: bool) -> DarwinSource<K> {
        self.usage = match (read_usage, self.kernel.timebase_hz().filter(|&hz| hz > 0)) {
            (false, _) => UsageRead::Off,
            (true, Some(hz)) => UsageRead::On { hz },
            // No tick rate: no CPU time could be converted (§9.6), so none is guessed.
            (true, None) => UsageRead::Refused,
        };
        self
    }

    /// The same source without the fork counter (its snapshots' `forks` is `None`).
    pub fn without_forks(mut self) -> DarwinSource<K> {
        self.read_forks = false;
        self
    }

    /// The fork counter as of the newest live process: the `p_uniqueid` of the first pid of
    /// `listed` (newest first, §2.5) that was read and still answers, kept monotonic.
    ///
    /// What it cannot see (§3.10): forks whose children have all exited when no newer
    /// process lives; an exec moves an older process to the head of the list, and then its
    /// smaller uniqueid is read and the last value stands. Both are caught up by the next
    /// fork that is still alive at a scrape.
    fn read_forks(&mut self, listed: &[i32], processes: &[Process]) -> Option<u64> {
        let read = |pid: &&i32| processes.binary_search_by_key(*pid, |p| p.pid).is_ok();
        let mut newest = None;
        // kernel_task's uniqueid is 0 (it was never forked): it says nothing.
        let tries = if self.forks_seen.is_some() { UNIQUEID_TRIES } else { listed.len() };
        for &pid in listed.iter().filter(|&&pid| pid != 0).filter(read).take(tries) {
            // arg = 1: a process that exited since is still a zombie and answers (§3.1 step 5).
            match libproc::pid_uniqid_info(&self.kernel, pid, true) {
                Ok(info) => {
                    newest = Some(info.p_uniqueid);
                    break;
                }
                Err(libproc::Error::Vanished(_)) => continue,
                // A sandbox refusing flavor 17 refuses it for every pid.
                Err(_) => break,
            }
        }
        self.forks_seen = match (self.forks_seen, newest) {
            (Some(seen), Some(now)) => Some(seen.max(now)),
            (seen, now) => seen.or(now),
        };
        self.forks_seen
    }

    /// The source of the machine we run on: terminals from /dev, the host's limits.
    pub fn host(kernel: K) -> DarwinSource<K> {
        let ttys = TtyDevices::Scan("/dev".into());
        DarwinSource::new(kernel, ttys, None, BTreeMap::new(), crate::host::euid())
    }

    /// The kernel, for tests that change a simulated table between snapshots.
    pub fn kernel_ref(&self) -> &K {
        &self.kernel
    }

    fn privileged(&self) -> bool {
        // kernel_task is root's, so only root (or an entitled caller) reads its full info.
        // A table without pid 0 (a replayed Linux recording) cannot say: then the caller's
        // euid decides.
        match libproc::pid_bsd_info(&self.kernel, 0, false) {
            Ok(_) => true,
            Err(libproc::Error::PermissionDenied(_)) => false,
            Err(_) => self.caller_euid == 0,
        }
    }

    fn read_process(&self, pid: i32, privileged: bool) -> Result<Process, libproc::Error> {
        // arg = 1: zombies answer too (reference §3.1 step 5).
        Ok(if privileged {
            Process::from(&libproc::pid_bsd_info(&self.kernel, pid, true)?)
        } else {
            Process::from(&libproc::pid_short_info(&self.kernel, pid, true)?)
        })
    }

    /// Fills in the usage of every process the kernel will answer for: the caller's own
    /// (same effective uid, §1.5) unprivileged, all as root. Another user's process while
    /// unprivileged is counted `permission` without a call: the kernel would refuse it.
    fn read_usage(&mut self, processes: &mut [Process], privileged: bool) -> Unreadable {
        let mut unreadable = Unreadable::default();
        for process in processes {
            let hz = match self.usage {
                UsageRead::Off => return unreadable,
                UsageRead::Refused => {
                    unreadable.other += 1;
                    continue;
                }
                UsageRead::On { hz } => hz,
            };
            if !privileged && process.euid != self.caller_euid {
                unreadable.permission += 1;
                continue;
            }
            match libproc::pid_rusage(&self.kernel, process.pid) {
                Ok(ri) => process.usage = Some(usage_of(&ri, hz)),
                // EINVAL comes after the pid and permission checks (§9.1): this kernel has no
                // callnum 9 or no RUSAGE_INFO_V2 (older than macOS 10.9, §9.2), for any pid.
                Err(e @ libproc::Error::Os(_, Errno::EINVAL)) => {
                    crate::log::warn(
                        "CPU, memory and disk per process cannot be read",
                        &[("err", &e.to_string())],
                    );
                    self.usage = UsageRead::Refused;
                    unreadable.other += 1;
                }
                Err(e) => unreadable.count(&e),
            }
        }
        unreadable
    }

    /// Gives each process that has a controlling terminal (`PROC_FLAG_CONTROLT`) its device,
    /// from `PROC_TTY_ONLY` listings of `ttys` (in [`terminals::scan_order`]), stopping as
    /// soon as every flagged process has one.
    fn find_terminals(&mut self, processes: &mut [Process], ttys: &[Tty]) -> Result<(), Error> {
        let has_flag = |p: &Process| p.flags.is_some_and(|f| f & PROC_FLAG_CONTROLT != 0);
        let mut missing = processes.iter().filter(|p| has_flag(p)).count();
        // No terminal has more processes than the whole table had a moment ago, so each
        // listing skips the size probe; the slack covers forks since, and a full buffer
        // still falls back to probing.
        let hint = processes.len() + processes.len() / 8 + 32;
        for tty in ttys {
            if missing == 0 {
                break;
            }
            let filter = ListFilter::Tty(tty.dev);
            for &pid in self.tty_pids.fill_hinted(&self.kernel, filter, hint)? {
                // A pid forked after the full listing is not in the table: skip it. One that
                // gained the flag since its short info was read still gets its terminal.
                if let Ok(i) = processes.binary_search_by_key(&pid, |p| p.pid) {
                    let process = &mut processes[i];
                    if process.tty.is_none() {
                        missing = missing.saturating_sub(usize::from(has_flag(process)));
                        process.tty = Some(tty.dev);
                        // It matched, so it has P_CONTROLT now (§2.1), even if it took the
                        // terminal after its short info was read: no kernel reports a
                        // terminal without the flag (§3.6).
                        process.flags = process.flags.map(|f| f | PROC_FLAG_CONTROLT);
                    }
                }
            }
        }
        Ok(())
    }

    /// Session ids for the processes whose group leader is not a live process and for their
    /// parents, and an age (start time, else uniqueid) for the former: what
    /// [`crate::collect::leftovers`] needs and nothing more (see the module doc).
    fn read_sessions(&self, processes: &mut [Process]) {
        let live = |pid: i32| {
            processes
                .binary_search_by_key(&pid, |p| p.pid)
                .ok()
                .filter(|&i| !processes[i].is_zombie())
        };
        // (index, whether it is a candidate rather than only a parent of one)
        let mut wanted: Vec<(usize, bool)> = Vec::new();
        for (i, p) in processes.iter().enumerate() {
            if !p.is_zombie() && live(p.pgid).is_none() {
                wanted.push((i, true));
                wanted.extend(live(p.ppid).map(|j| (j, false)));
            }
        }
        // Candidates first among equal indices, so dedup keeps the flag that asks the most.
        wanted.sort_unstable_by_key(|&(i, candidate)| (i, !candidate));
        wanted.dedup_by_key(|&mut (i, _)| i);
        for (i, candidate) in wanted {
            let p = &mut processes[i];
            // getsid(0) answers the caller's own session, not kernel_task's (§10.1).
            if p.pid == 0 {
                continue;
            }
            // ESRCH: exited since it was read; its sid stays unknown and it is not counted.
            p.sid = self.kernel.getsid(p.pid).ok();
            if !candidate || p.sid.is_none() || p.start.is_some() {
                continue;
            }
            // Full BSD info answers for one's own processes (§10.3); otherwise the uniqueid
            // (no uid check) lets the collector date it from when it was first seen.
            let info = libproc::pid_bsd_info(&self.kernel, p.pid, false);
            p.start = info.ok().and_then(|info| start_of(&info, p));
            if p.start.is_none() {
                p.uniqueid = libproc::pid_uniqid_info(&self.kernel, p.pid, false)
                    .ok()
                    .map(|u| u.p_uniqueid)
                    .or(p.uniqueid);
            }
        }
    }

    /// Reads the table once.
    pub fn read(&mut self) -> Result<Snapshot, Error> {
        let mut ttys = match &self.ttys {
            TtyDevices::Scan(dir) => {
                terminals::scan(dir).map_err(|error| Error::Io { path: dir.clone(), error })?
            }
            TtyDevices::Fixed(list) => terminals::scan_order(list.clone()),
        };
        let privileged = self.privileged();
        let mut pids = std::mem::take(&mut self.pids);
        let listed = pids.fill(&self.kernel, ListFilter::All);
        let mut processes = Vec::with_capacity(listed.as_ref().map_or(0, |l| l.len()));
        let mut unreadable = Unreadable::default();
        let result = listed.map(|listed| {
            for &pid in listed {
                match self.read_process(pid, privileged) {
                    Ok(process) => processes.push(process),
                    Err(e) => unreadable.count(&e),
                }
            }
        });
        processes.sort_unstable_by_key(|p| p.pid);
        let forks = match result {
            Ok(()) if self.read_forks => self.read_forks(pids.as_slice(), &processes),
            _ => None,
        };
        // The buffer goes back before `?`, so a failed listing keeps it for the next scrape.
        self.pids = pids;
        result?;
        if !privileged {
            self.find_terminals(&mut processes, &ttys)?;
        }
        self.read_sessions(&mut processes);
        // Scan order served the listings; the snapshot looks names up by device number.
        ttys.sort_unstable();
        let usage_unreadable = self.read_usage(&mut processes, privileged);

        Ok(Snapshot {
            os: Os::Macos,
            origin: Os::Macos,
            processes,
            unreadable,
            privileged,
            caller_euid: self.caller_euid,
            ttys,
            users: self.users.clone(),
            limits: self.limits.unwrap_or_else(host::kernel_limits),
            forks,
            threads_max: None,
            usage_unreadable,
        })
    }
}

impl<K: Kernel> Source for DarwinSource<K> {
    fn name(&self) -> &'static str {
        "libproc"
    }

    fn snapshot(&mut self) -> Result<Snapshot, Error> {
        self.read()
    }

    fn kernel(&self) -> Option<&dyn Kernel> {
        Some(&self.kernel)
    }

    fn user_id(&self, name: &str) -> Option<u32> {
        let known = self.users.iter().find(|(_, n)| n.as_str() == name).map(|(&uid, _)| uid);
        known.or_else(|| crate::users::lookup_name(name))
    }

    fn resolve_tty(&self, name: &str) -> Result<u32, libproc::Error> {
        match &self.ttys {
            TtyDevices::Scan(dir) => libproc::tty_device_in(dir, name),
            TtyDevices::Fixed(list) => {
                let bare = name.strip_prefix("/dev/").unwrap_or(name);
                let alt = format!("tty{bare}");
                list.iter().find(|t| t.name == bare || t.name == alt).map(|t| t.dev).ok_or_else(
                    || libproc::Error::Tty {
                        name: name.to_string(),
                        path: "the replayed file's ttys".to_string(),
                        reason: "no such terminal".to_string(),
                    },
                )
            }
        }
    }
}

/// A process's usage from its `rusage_info_v2`, the CPU times converted from Mach ticks at
/// `hz` (§9.6).
pub fn usage_of(ri: &RusageInfoV2, hz: u64) -> Usage {
    Usage {
        user_ns: libproc::ticks_to_ns(ri.ri_user_time, hz),
        system_ns: libproc::ticks_to_ns(ri.ri_system_time, hz),
        child_user_ns: libproc::ticks_to_ns(ri.ri_child_user_time, hz),
        child_system_ns: libproc::ticks_to_ns(ri.ri_child_system_time, hz),
        resident_bytes: ri.ri_resident_size,
        footprint_bytes: ri.ri_phys_footprint,
        disk: Some(DiskBytes { read: ri.ri_diskio_bytesread, written: ri.ri_diskio_byteswritten }),
    }
}

/// The start time in `info`, if `info` is the process `p` that short info read: same uids,
/// parent and group. On a busy Mac the pid may have been reused, or the process may have
/// exec'd a setuid program, between the two calls (§2.4), and then it is not.
pub(crate) fn start_of(info: &ProcBsdInfo, p: &Process) -> Option<StartTime> {
    let read = (info.pbi_uid, info.pbi_ruid, info.pbi_ppid as i32, info.pbi_pgid as i32);
    (read == (p.euid, p.ruid, p.ppid, p.pgid))
        .then_some(StartTime { sec: info.pbi_start_tvsec, usec: info.pbi_start_tvusec })
}

impl From<&ProcBsdInfo> for Process {
    /// A process from full BSD info: the short info's fields, plus the terminal and the
    /// start time.
    fn from(info: &ProcBsdInfo) -> Process {
        Process {
            tty: (info.e_tdev != NODEV).then_some(info.e_tdev),
            start: Some(StartTime { sec: info.pbi_start_tvsec, usec: info.pbi_start_tvusec }),
            ..Process::from(&info.short())
        }
    }
}

impl From<&ProcBsdShortInfo> for Process {
    /// A process from short BSD info: no terminal (the `PROC_TTY_ONLY` listings add it) and
    /// no start time.
    fn from(info: &ProcBsdShortInfo) -> Process {
        Process {
            pid: info.pbsi_pid as i32,
            ppid: info.pbsi_ppid as i32,
            pgid: info.pbsi_pgid as i32,
            euid: info.pbsi_uid,
            ruid: info.pbsi_ruid,
            svuid: info.pbsi_svuid,
            egid: info.pbsi_gid,
            rgid: info.pbsi_rgid,
            tty: None,
            state: State::from_bsd(info.pbsi_status, info.pbsi_flags),
            bsd_status: Some(info.pbsi_status),
            comm: Comm::new(&info.pbsi_comm),
            flags: Some(info.pbsi_flags),
            start: None,
            uniqueid: None,
            threads: None,
            sid: None,
            usage: None,
        }
    }
}
