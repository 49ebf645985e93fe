//! The kernel's process and terminal limits: `kern.maxproc`, `kern.maxprocperuid` and
//! `kern.tty.ptmx_max` on macOS; `kernel.pid_max` and `kernel.pty.max` on Linux.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Limits the kernel enforces. `None` where the system has no such limit or it could not be
/// read; the metric is then left out rather than reported as 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Processes system-wide (`kern.maxproc`; Linux `kernel.pid_max`).
    pub maxproc: Option<u64>,
    /// Processes per real uid (`kern.maxprocperuid`; macOS only, Linux's is per-process
    /// RLIMIT_NPROC).
    pub maxprocperuid: Option<u64>,
    /// Pseudo-terminals (`kern.tty.ptmx_max`; Linux `kernel.pty.max`).
    pub ptmx_max: Option<u64>,
}

/// Reads the running kernel's limits.
///
/// # Platform-specific behavior
/// macOS reads the three sysctls; Linux reads `sys/kernel/pid_max` and `sys/kernel/pty/max`
/// below `procfs`; other systems get no limits.
pub fn host(procfs: &Path) -> Limits {
    #[cfg(target_os = "macos")]
    {
        use crate::libproc::sys::sysctl_u64;
        let _ = procfs;
        Limits {
            maxproc: sysctl_u64(c"kern.maxproc"),
            maxprocperuid: sysctl_u64(c"kern.maxprocperuid"),
            ptmx_max: sysctl_u64(c"kern.tty.ptmx_max"),
        }
    }
    #[cfg(not(target_os = "macos"))]
    {
        let read = |rel: &str| {
            std::fs::read_to_string(procfs.join(rel)).ok().and_then(|s| s.trim().parse().ok())
        };
        Limits {
            maxproc: read("sys/kernel/pid_max"),
            maxprocperuid: None,
            ptmx_max: read("sys/kernel/pty/max"),
        }
    }
}
