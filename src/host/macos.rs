//! macOS: sysctls for the kernel's limits, `__proc_info` on our own pid for the exporter's
//! figures.

use super::{Binding, Limits, OwnProcess};
use crate::libproc::{self, Kernel, sys::Darwin, sys::sysctl_u64};

pub const NATIVE_BINDING: Binding = Binding::Libproc;

pub fn kernel_limits() -> Limits {
    Limits {
        maxproc: sysctl_u64(c"kern.maxproc"),
        maxprocperuid: sysctl_u64(c"kern.maxprocperuid"),
        ptmx_max: sysctl_u64(c"kern.tty.ptmx_max"),
        // The file table (§11): readable by anyone, unless a sandbox denies the sysctl.
        open_files: sysctl_u64(c"kern.num_files"),
        open_files_max: sysctl_u64(c"kern.maxfiles"),
        open_files_per_process_max: open_files_ceiling(),
    }
}

/// `setrlimit(RLIMIT_NOFILE)` with a soft limit above `kern.maxfilesperproc` fails on macOS,
/// so the Go runtime caps it there (`adjustFileLimit` in
/// https://github.com/golang/go/blob/master/src/os/rlimit_darwin.go; docs/macos-road.md,
/// "Descriptors").
pub fn open_files_ceiling() -> Option<u64> {
    sysctl_u64(c"kern.maxfilesperproc")
}

/// `SSL_CERT_FILE` and `SSL_CERT_DIR` where set, else `/etc/ssl/cert.pem`, the system roots
/// as a PEM bundle (see [`super::trusted_roots`] for why not the keychain).
pub fn trusted_roots() -> super::TrustedRoots {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(Into::into);
    let (file, dir) = (var("SSL_CERT_FILE"), var("SSL_CERT_DIR"));
    let files = match (&file, &dir) {
        (None, None) => vec!["/etc/ssl/cert.pem".into()],
        _ => file.into_iter().collect(),
    };
    super::pem_roots(&files, &dir.into_iter().collect::<Vec<_>>())
}

pub fn own_process() -> OwnProcess {
    let mut me = OwnProcess {
        max_fds: super::open_files_limit().map(|n| n as f64),
        open_fds: super::count_fds("/dev/fd"),
        ..Default::default()
    };
    let pid = std::process::id() as i32;
    if let Ok(task) = libproc::pid_task_info(&Darwin, pid) {
        // pti_total_* are Mach absolute-time ticks (§3.7, §7 item 11): 1 ns on Intel,
        // 1/24 MHz on Apple Silicon. hw.tbfrequency gives the tick rate even under Rosetta,
        // where mach_timebase_info claims 1/1.
        let ns_per_tick = Darwin.timebase_hz().map_or(1.0, |hz| 1e9 / hz as f64);
        me.cpu_seconds =
            Some((task.pti_total_user + task.pti_total_system) as f64 * ns_per_tick / 1e9);
        me.resident_bytes = Some(task.pti_resident_size as f64);
        me.virtual_bytes = Some(task.pti_virtual_size as f64);
    }
    if let Ok(bsd) = libproc::pid_bsd_info(&Darwin, pid, false) {
        me.start_time_seconds =
            Some(bsd.pbi_start_tvsec as f64 + bsd.pbi_start_tvusec as f64 / 1e6);
    }
    me
}
