//! The ids of a process without the `status` text: `pidfd_open(pid, 0)` and
//! `ioctl(pidfd, PIDFD_GET_INFO)` asking `PIDFD_INFO_CREDS` (Linux 6.13 and later; see
//! `docs/linux-pidfd.md`, sections 1 and 2).
//!
//! A pidfd also pins the process for the reader: the pid number is freed only when the
//! process is reaped, and a reaped process's pidfd answers ESRCH and polls as hung up
//! (`docs/linux-pidfd.md`, section 3). So a caller opens the pidfd first, reads `PID/stat`,
//! then asks the pidfd; an answer means the stat line was of the same process.
//!
//! # Platform-specific behavior
//! Linux only. Elsewhere [`available`] says so and [`Pidfd::open`] fails with ENOSYS.

use std::path::Path;

/// The ids `PIDFD_GET_INFO` gives, each in the caller's user namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Creds {
    /// Real uid.
    pub ruid: u32,
    /// Effective uid.
    pub euid: u32,
    /// Saved uid.
    pub suid: u32,
    /// Real gid.
    pub rgid: u32,
    /// Effective gid.
    pub egid: u32,
}

/// Why `PIDFD_GET_INFO` gave no ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredsError {
    /// The call failed with this errno. ESRCH is a reaped process, or on 6.13-6.15.2 a live
    /// one whose parent is outside our pid namespace (`docs/linux-pidfd.md`, section 2.5).
    Errno(i32),
    /// The call succeeded but the returned mask lacks `PIDFD_INFO_CREDS`.
    NoCreds {
        /// The mask the kernel returned.
        mask: u64,
    },
}

/// Why the pidfd path is not taken; the table reads the ids from `status` instead.
#[derive(Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// Not Linux.
    NotLinux,
    /// The procfs mount is not of our pid namespace (another namespace's `/proc`, or a fake
    /// tree): its pids are not the ones `pidfd_open` would look up.
    OtherNamespace(String),
    /// `pidfd_open` on ourselves failed: the kernel (before 5.3) or a seccomp filter refuses.
    Open(i32),
    /// `PIDFD_GET_INFO` on ourselves failed or gave no ids: ENOTTY or EINVAL before 6.13,
    /// ENOSYS or EPERM under a seccomp filter.
    Info(CredsError),
    /// `PIDFD_GET_INFO` on ourselves gave ids other than `getuid`/`geteuid`: not to be
    /// trusted for anyone else's.
    WrongIds {
        /// The real and effective uid it gave.
        got: (u32, u32),
        /// Ours.
        ours: (u32, u32),
    },
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let errno = |e: i32| std::io::Error::from_raw_os_error(e);
        match self {
            Unavailable::NotLinux => f.write_str("pidfds are Linux's"),
            Unavailable::OtherNamespace(why) => write!(f, "not our pid namespace: {why}"),
            Unavailable::Open(e) => write!(f, "pidfd_open on ourselves: {}", errno(*e)),
            Unavailable::Info(CredsError::Errno(e)) => {
                write!(f, "PIDFD_GET_INFO on ourselves: {}", errno(*e))
            }
            Unavailable::Info(CredsError::NoCreds { mask }) => {
                write!(f, "PIDFD_GET_INFO on ourselves: mask {mask:#x} lacks PIDFD_INFO_CREDS")
            }
            Unavailable::WrongIds { got, ours } => {
                write!(f, "PIDFD_GET_INFO on ourselves gave uids {got:?}, ours are {ours:?}")
            }
        }
    }
}

/// Whether the pidfd path can read the processes of the procfs mounted at `procfs`: the
/// mount must be of our own pid namespace, and the kernel must answer `PIDFD_GET_INFO` with
/// our own ids. Decided once, at start.
pub fn available(procfs: &Path) -> Result<(), Unavailable> {
    if !cfg!(target_os = "linux") {
        return Err(Unavailable::NotLinux);
    }
    own_namespace(procfs).map_err(Unavailable::OtherNamespace)?;
    let me = Pidfd::open(std::process::id() as libc::pid_t).map_err(Unavailable::Open)?;
    let creds = me.creds().map_err(Unavailable::Info)?;
    // SAFETY: getuid and geteuid have no preconditions and cannot fail.
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    if (creds.ruid, creds.euid) != (uid, euid) {
        return Err(Unavailable::WrongIds { got: (creds.ruid, creds.euid), ours: (uid, euid) });
    }
    Ok(())
}

/// Whether the procfs at `procfs` numbers processes as our pid namespace does
/// (`docs/linux-pidfd.md`, section 4): `self` names our pid, and our `NStgid` line there has
/// one entry (more would make the mount an ancestor namespace's whose number for us happens
/// to match). Without `CONFIG_PID_NS` there is no `NStgid` line and one namespace.
fn own_namespace(procfs: &Path) -> Result<(), String> {
    let link = procfs.join("self");
    let target = std::fs::read_link(&link).map_err(|e| format!("{}: {e}", link.display()))?;
    let me = std::process::id().to_string();
    if target.as_os_str() != me.as_str() {
        return Err(format!("{} names {}, we are {me}", link.display(), target.display()));
    }
    let status_path = procfs.join("self/status");
    let status = std::fs::read_to_string(&status_path)
        .map_err(|e| format!("{}: {e}", status_path.display()))?;
    match status.lines().find_map(|l| l.strip_prefix("NStgid:")) {
        Some(ids) if ids.split_whitespace().count() != 1 => {
            Err(format!("{} has NStgid:{ids}: an ancestor namespace", status_path.display()))
        }
        _ => Ok(()),
    }
}

/// A pidfd: a descriptor for one process, valid whatever later takes its number.
#[derive(Debug)]
pub struct Pidfd(std::os::fd::OwnedFd);

impl Pidfd {
    /// `pidfd_open(pid, 0)`; the errno on failure (ESRCH: no such process in our
    /// namespace; EINVAL before 6.16 or ENOENT after: reaped meanwhile, or not a process).
    pub fn open(pid: libc::pid_t) -> Result<Pidfd, i32> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::FromRawFd;
            // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
            if fd < 0 {
                return Err(last_errno());
            }
            // SAFETY: fd is a descriptor the kernel just gave us and nobody else owns.
            Ok(Pidfd(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) }))
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = pid;
            Err(libc::ENOSYS)
        }
    }

    /// `PIDFD_GET_INFO` asking `PIDFD_INFO_CREDS`: the process's ids, if it has not been
    /// reaped. The mask the kernel returns is checked, not only the return code.
    pub fn creds(&self) -> Result<Creds, CredsError> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: pidfd_info is plain integers; all zeroes is a valid value (and the
            // request mask is set below).
            let mut info: libc::pidfd_info = unsafe { std::mem::zeroed() };
            info.mask = u64::from(libc::PIDFD_INFO_CREDS);
            // SAFETY: info is a live 64-byte pidfd_info, the size PIDFD_GET_INFO encodes
            // (PIDFD_INFO_SIZE_VER0); the kernel writes at most that much into it.
            let rc = unsafe { libc::ioctl(self.0.as_raw_fd(), libc::PIDFD_GET_INFO, &mut info) };
            if rc < 0 {
                return Err(CredsError::Errno(last_errno()));
            }
            if info.mask & u64::from(libc::PIDFD_INFO_CREDS) == 0 {
                return Err(CredsError::NoCreds { mask: info.mask });
            }
            Ok(Creds {
                ruid: info.ruid,
                euid: info.euid,
                suid: info.suid,
                rgid: info.rgid,
                egid: info.egid,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err(CredsError::Errno(libc::ENOSYS))
        }
    }

    /// Whether the process has been reaped: `poll` reports POLLHUP exactly then, and not for
    /// a zombie (`docs/linux-pidfd.md`, section 3). Unknown (a failed poll) counts as reaped,
    /// so a caller discards rather than trusts what it read.
    pub fn reaped(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut poll = libc::pollfd { fd: self.0.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: poll is one live pollfd; a zero timeout returns at once.
        let rc = unsafe { libc::poll(&mut poll, 1, 0) };
        rc < 0 || poll.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
    }
}

#[cfg(target_os = "linux")]
fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

#[cfg(all(test, target_os = "linux"))]
pub(crate) mod tests {
    use super::*;

    /// Whether the running kernel is 6.13 or later, the first with `PIDFD_GET_INFO`: where it
    /// is, the pidfd path must be taken (no seccomp filter refuses it on the test machines).
    pub(crate) fn kernel_has_pidfd_info() -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut numbers = release.trim().split(['.', '-']).map(|n| n.parse::<u32>().unwrap_or(0));
        let (major, minor) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
        (major, minor) >= (6, 13)
    }

    #[test]
    fn our_own_proc_takes_the_pidfd_path_where_the_kernel_has_it() {
        assert_eq!(available(Path::new("/proc")).is_ok(), kernel_has_pidfd_info());
    }

    #[test]
    fn a_fake_tree_is_not_our_namespace() {
        let fake = std::env::temp_dir().join(format!("libproc-pidfd-fake-{}", std::process::id()));
        std::fs::create_dir_all(&fake).unwrap();
        let result = available(&fake);
        std::fs::remove_dir_all(&fake).unwrap();
        assert!(matches!(result, Err(Unavailable::OtherNamespace(_))), "{result:?}");
    }

    #[test]
    fn a_self_link_naming_another_pid_is_not_our_namespace() {
        let fake = std::env::temp_dir().join(format!("libproc-pidfd-self-{}", std::process::id()));
        std::fs::create_dir_all(&fake).unwrap();
        let _ = std::fs::remove_file(fake.join("self"));
        std::os::unix::fs::symlink("1", fake.join("self")).unwrap();
        let result = own_namespace(&fake);
        std::fs::remove_dir_all(&fake).unwrap();
        assert!(result.unwrap_err().contains("names 1"));
    }

    #[test]
    fn a_reaped_child_answers_esrch_and_polls_hung_up_a_zombie_does_not() {
        let mut child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        let pidfd = Pidfd::open(child.id() as libc::pid_t).unwrap();
        assert!(!pidfd.reaped());
        child.kill().unwrap();
        // Killed, not yet waited for: a zombie still answers, with its ids.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let info = kernel_has_pidfd_info();
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        assert_eq!(pidfd.creds().map(|c| c.ruid).ok(), info.then_some(uid));
        assert!(!pidfd.reaped(), "a zombie is not reaped");
        child.wait().unwrap();
        assert!(pidfd.reaped());
        // Reaped: ESRCH; a kernel without the ioctl says ENOTTY or EINVAL whatever the state.
        let expected: &[i32] = if info { &[libc::ESRCH] } else { &[libc::ENOTTY, libc::EINVAL] };
        match pidfd.creds() {
            Err(CredsError::Errno(e)) => assert!(expected.contains(&e), "errno {e}"),
            other => panic!("a reaped process answered {other:?}"),
        }
    }
}
