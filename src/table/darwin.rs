//! A snapshot from any libproc [`Kernel`]: the real one on macOS, `SimKernel` in tests and
//! replays.
//!
//! Unprivileged (the normal case), a snapshot costs N + T + 3 calls: the size probe and the
//! fill of `PROC_ALL_PIDS`, one privilege probe, `PROC_PIDT_SHORTBSDINFO` for each of the N
//! pids, and `PROC_TTY_ONLY` for each of the T terminal devices in /dev, because short info
//! has no tty and full info of another user's process needs root (reference §7 item 7).
//! Privileged, full BSD info gives the tty directly and the T listings are skipped.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Comm, Error, Os, Process, Snapshot, Source, StartTime, State, Tty, Unreadable};
use crate::libproc::{self, Kernel, ListFilter, NODEV, PidList};
use crate::limits::{self, Limits};

/// Where the terminal devices come from.
#[derive(Clone, Debug)]
pub enum TtyDevices {
    /// Character devices named `tty*` or `console` in this directory, listed once per
    /// snapshot.
    Scan(PathBuf),
    /// A fixed list (a replayed recording).
    Fixed(Vec<Tty>),
}

/// Whether to read full BSD info.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// Probe each snapshot: full BSD info of pid 0 (root's kernel_task) succeeds only for root
    /// or an entitled caller.
    Probe,
    /// Always short info plus `PROC_TTY_ONLY` listings.
    Unprivileged,
    /// Always full BSD info.
    Privileged,
}

/// Reads snapshots through a libproc kernel.
pub struct DarwinSource<K> {
    kernel: K,
    ttys: TtyDevices,
    limits: Option<Limits>,
    users: BTreeMap<u32, String>,
    caller_euid: u32,
    privilege: Privilege,
    pids: PidList,
    tty_pids: PidList,
}

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
            privilege: Privilege::Probe,
            pids: PidList::new(),
            tty_pids: PidList::new(),
        }
    }

    /// The source of the machine we run on: terminals from /dev, the host's limits.
    pub fn host(kernel: K) -> DarwinSource<K> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        DarwinSource::new(kernel, TtyDevices::Scan("/dev".into()), None, BTreeMap::new(), euid)
    }

    /// Forces a privilege mode instead of probing (tests compare the two readings).
    pub fn with_privilege(mut self, privilege: Privilege) -> DarwinSource<K> {
        self.privilege = privilege;
        self
    }

    /// The kernel, for tests that change a simulated table between snapshots.
    pub fn kernel_ref(&self) -> &K {
        &self.kernel
    }

    fn privileged(&self) -> bool {
        match self.privilege {
            // kernel_task is root's, so only root (or an entitled caller) reads its full
            // info. A table without pid 0 (a replayed Linux recording) cannot say: then the
            // caller's euid decides.
            Privilege::Probe => match libproc::pid_bsd_info(&self.kernel, 0, false) {
                Ok(_) => true,
                Err(libproc::Error::PermissionDenied(_)) => false,
                Err(_) => self.caller_euid == 0,
            },
            Privilege::Unprivileged => false,
            Privilege::Privileged => true,
        }
    }

    fn read_process(&self, pid: i32, privileged: bool) -> Result<Process, libproc::Error> {
        // arg = 1: zombies answer too (reference §3.1 step 5).
        if privileged {
            let info = libproc::pid_bsd_info(&self.kernel, pid, true)?;
            Ok(Process {
                pid,
                ppid: info.pbi_ppid as i32,
                pgid: info.pbi_pgid as i32,
                euid: info.pbi_uid,
                ruid: info.pbi_ruid,
                svuid: info.pbi_svuid,
                egid: info.pbi_gid,
                rgid: info.pbi_rgid,
                tty: (info.e_tdev != NODEV).then_some(info.e_tdev),
                state: State::from_bsd(info.pbi_status, info.pbi_flags),
                bsd_status: Some(info.pbi_status),
                comm: Comm::new(&info.pbi_comm),
                flags: Some(info.pbi_flags),
                start: Some(StartTime { sec: info.pbi_start_tvsec, usec: info.pbi_start_tvusec }),
            })
        } else {
            let info = libproc::pid_short_info(&self.kernel, pid, true)?;
            Ok(Process {
                pid,
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
            })
        }
    }

    /// Reads the table once.
    pub fn read(&mut self) -> Result<Snapshot, Error> {
        let ttys = match &self.ttys {
            TtyDevices::Scan(dir) => scan_tty_devices(dir)?,
            TtyDevices::Fixed(list) => list.clone(),
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
        self.pids = pids;
        result?;
        processes.sort_unstable_by_key(|p| p.pid);

        if !privileged {
            // No terminal has more processes than the whole table had a moment ago, so each
            // PROC_TTY_ONLY listing skips the size probe (N + T + 3 calls, not N + 2T + 3);
            // the slack covers forks since, and a full buffer still falls back to probing.
            let hint = processes.len() + processes.len() / 8 + 32;
            for tty in &ttys {
                let filter = ListFilter::Tty(tty.dev);
                for &pid in self.tty_pids.fill_hinted(&self.kernel, filter, hint)? {
                    // A pid forked after the full listing is not in the table: skip it.
                    if let Ok(i) = processes.binary_search_by_key(&pid, |p| p.pid) {
                        processes[i].tty = Some(tty.dev);
                    }
                }
            }
        }

        Ok(Snapshot {
            os: Os::Macos,
            origin: Os::Macos,
            processes,
            unreadable,
            privileged,
            caller_euid: self.caller_euid,
            ttys,
            users: self.users.clone(),
            limits: self.limits.unwrap_or_else(|| limits::host("/proc".as_ref())),
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

/// The terminal devices in `dir`: character devices named `console` or `tty*` other than
/// `tty` itself (the per-process alias for one's own terminal, never a session's device).
/// Sorted by device number, duplicates (hard links) dropped.
pub fn scan_tty_devices(dir: &std::path::Path) -> Result<Vec<Tty>, Error> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let io = |error| Error::Io { path: dir.to_path_buf(), error };
    let mut ttys = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name == "console" || (name.starts_with("tty") && name != "tty")) {
            continue;
        }
        // A device removed mid-scan (a pty closing) is simply not listed.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
        if meta.file_type().is_char_device() {
            ttys.push(Tty { dev: meta.rdev() as u32, name: name.to_string() });
        }
    }
    ttys.sort();
    ttys.dedup_by_key(|t| t.dev);
    Ok(ttys)
}
