//! The process we are and the host we run on: everything the exporter asks of the operating
//! system outside the process-table bindings ([`crate::libproc`], [`crate::procfs`], which
//! this module uses for its own figures). The OS is chosen once, here: `linux.rs`,
//! `macos.rs` or `other.rs` becomes `os`, each names the [`NATIVE_BINDING`], and the rest of
//! the crate asks this module rather than `cfg` itself.
//!
//! - [`terminals`]: the terminal devices a process can have as its controlling terminal,
//!   found once per scrape in `/dev` and ordered for the `PROC_TTY_ONLY` scan (Linux names
//!   the numbers it fixes in `procfs::tty`; the rest are looked up here).
//! - [`passwd`]: uid <-> login name in the password database.
//! - [`systemd`]: the listening sockets of systemd socket activation.
//! - [`kernel_limits`]: `kern.maxproc` and friends (macOS sysctls, Linux `/proc/sys`).
//! - [`own_process`]: the exporter's own CPU time, memory, start time and descriptors, for
//!   the `process_*` metrics.
//! - [`trusted_roots`]: the system's trusted CA certificates, for client certificates
//!   verified without a `client_ca_file`.
//! - [`euid`], [`clock_ticks`], [`page_size`], [`raise_open_files_limit`]: POSIX, the same on
//!   every Unix.

use serde::{Deserialize, Serialize};

use crate::procfs::sys::KernelLimits;

pub mod passwd;
pub mod systemd;
pub mod terminals;

#[cfg_attr(target_os = "linux", path = "linux.rs")]
#[cfg_attr(target_os = "macos", path = "macos.rs")]
#[cfg_attr(not(any(target_os = "linux", target_os = "macos")), path = "other.rs")]
mod os;

/// The binding that reads a system's process table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// `__proc_info` ([`crate::libproc`]).
    Libproc,
    /// A procfs mount ([`crate::procfs`]).
    Procfs,
}

/// The system's trusted root certificates, and the first error met reading them (for the
/// message when none were found). `SSL_CERT_FILE` and `SSL_CERT_DIR` override the system's
/// store, as OpenSSL and Go read them.
///
/// # Platform-specific behavior
/// Linux and other Unix systems read the distribution's bundle (rustls-native-certs). macOS
/// reads `/etc/ssl/cert.pem`, the PEM bundle of the system roots that macOS ships for
/// LibreSSL and curl, not the keychain: reading the keychain needs Security.framework,
/// which a binary linked without Apple's SDK (`cargo zigbuild`, how releases are built
/// here) cannot link. A root added to the keychain by an administrator or MDM is therefore
/// not trusted unless it is in a bundle named by `SSL_CERT_FILE` (README, Web
/// configuration).
pub fn trusted_roots() -> TrustedRoots {
    os::trusted_roots()
}

/// What [`trusted_roots`] found.
#[derive(Debug, Default)]
pub struct TrustedRoots {
    /// The certificates, DER; any that do not parse as X.509 are the caller's to skip.
    pub certs: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// The first error met reading a file, if any.
    pub error: Option<String>,
}

/// The certificates of PEM `files`, and of every file in `dirs` (OpenSSL's hashed
/// directories hold one PEM each); files that cannot be read are reported in `error`, the
/// rest still read.
pub fn pem_roots(files: &[std::path::PathBuf], dirs: &[std::path::PathBuf]) -> TrustedRoots {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = TrustedRoots::default();
    let mut paths = files.to_vec();
    for dir in dirs {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut found: Vec<_> = entries.flatten().map(|e| e.path()).collect();
                found.sort();
                paths.extend(found.into_iter().filter(|p| p.is_file()));
            }
            Err(e) => {
                roots.error.get_or_insert_with(|| format!("{}: {e}", dir.display()));
            }
        }
    }
    for path in paths {
        match CertificateDer::pem_file_iter(&path).and_then(|i| i.collect::<Result<Vec<_>, _>>()) {
            Ok(certs) => roots.certs.extend(certs),
            Err(e) => {
                roots.error.get_or_insert_with(|| format!("{}: {e}", path.display()));
            }
        }
    }
    roots
}

/// The binding of the OS this was built for: what `--source=auto` reads.
///
/// # Platform-specific behavior
/// macOS has `__proc_info`; Linux has `/proc`. Other systems get `procfs` too, so `auto`
/// reads the `--path.procfs` mount or fails to open it, rather than count nothing.
pub const NATIVE_BINDING: Binding = os::NATIVE_BINDING;

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
    /// Open file descriptions system-wide now (`kern.num_files`; Linux the first field of
    /// `fs/file-nr`): not a limit, but read with the two below and compared with them.
    /// Optional in a snapshot file, as are the two below (recordings from before had none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_files: Option<u64>,
    /// Most open files system-wide (`kern.maxfiles`; Linux the third field of `fs/file-nr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_files_max: Option<u64>,
    /// Most open files one process may have (`kern.maxfilesperproc`; Linux `fs/nr_open`, the
    /// ceiling of its `RLIMIT_NOFILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_files_per_process_max: Option<u64>,
}

/// The running kernel's limits.
///
/// # Platform-specific behavior
/// macOS reads the sysctls `kern.maxproc`, `kern.maxprocperuid`, `kern.tty.ptmx_max`,
/// `kern.num_files`, `kern.maxfiles` and `kern.maxfilesperproc`; Linux reads theirs from `/proc` ([`crate::procfs::sys::limits`]); other systems have none.
pub fn kernel_limits() -> Limits {
    os::kernel_limits()
}

impl From<&KernelLimits> for Limits {
    /// Linux's limits in the vocabulary of the metrics: `pid_max` is the system-wide process
    /// limit, `pty/max` the terminal one; Linux has no per-user process count to compare.
    fn from(linux: &KernelLimits) -> Limits {
        Limits {
            maxproc: linux.pid_max,
            maxprocperuid: None,
            ptmx_max: linux.pty_max,
            open_files: linux.file_nr.map(|(open, _)| open),
            open_files_max: linux.file_nr.map(|(_, max)| max),
            open_files_per_process_max: linux.nr_open,
        }
    }
}

/// What the exporter knows about its own process; `None` where the OS does not say.
#[derive(Debug, Default)]
pub struct OwnProcess {
    /// User and system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set, bytes.
    pub resident_bytes: Option<f64>,
    /// Virtual size, bytes.
    pub virtual_bytes: Option<f64>,
    /// Start time, seconds since the epoch.
    pub start_time_seconds: Option<f64>,
    /// Open descriptors.
    pub open_fds: Option<f64>,
    /// The soft `RLIMIT_NOFILE`.
    pub max_fds: Option<f64>,
}

/// The exporter's own process figures.
///
/// # Platform-specific behavior
/// Linux reads `/proc/self/stat` and `/proc/self/fd`. macOS asks `__proc_info` about its own
/// pid (task info for CPU time and memory, BSD info for the start time) and counts `/dev/fd`.
/// Other systems give only the descriptor limit.
pub fn own_process() -> OwnProcess {
    os::own_process()
}

/// The effective uid of this process: decides whether a snapshot may be privileged and is
/// recorded in snapshot files.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of Linux's process times;
/// `None` if the system does not say (sysconf returns -1).
pub fn clock_ticks() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|&t| t > 0)
}

/// The page size in bytes (`sysconf(_SC_PAGESIZE)`), the unit of Linux's `rss`; `None` if
/// sysconf fails.
pub fn page_size() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok().filter(|&p| p > 0)
}

/// The soft `RLIMIT_NOFILE`: how many descriptors this process may hold.
pub fn open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: limit is a live rlimit that getrlimit fills.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0).then_some(limit.rlim_cur)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (as the Go runtime does for every Go
/// exporter since Go 1.19), so a unit's `LimitNOFILE=1024:524288` or a shell's `ulimit -n 256`
/// does not cap the exporter below what the system allows. Returns the soft limit now in
/// force.
///
/// # Platform-specific behavior
/// macOS refuses a soft limit above `kern.maxfilesperproc`, so the request is capped
/// there (docs/macos-road.md, "Descriptors").
pub fn raise_open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: limit is a live rlimit that getrlimit fills.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    let mut wanted = limit.rlim_max;
    if let Some(ceiling) = os::open_files_ceiling() {
        wanted = wanted.min(ceiling);
    }
    if wanted > limit.rlim_cur {
        let raised = libc::rlimit { rlim_cur: wanted, rlim_max: limit.rlim_max };
        // SAFETY: raised is a valid rlimit; setrlimit only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = wanted;
        }
    }
    Some(limit.rlim_cur)
}

/// Entries in a descriptor directory (`/proc/self/fd`, `/dev/fd`), less the one open to
/// read it.
fn count_fds(dir: &str) -> Option<f64> {
    std::fs::read_dir(dir).ok().map(|d| d.count().saturating_sub(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn certs() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/web/certs")
    }

    #[test]
    fn pem_roots_reads_bundles_and_directories_and_names_what_it_could_not_read() {
        // The way macOS reads its roots: one bundle, plus an OpenSSL-style directory.
        let dir = std::env::temp_dir().join(format!("libproc-pem-roots-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(certs().join("server.crt"), dir.join("a1b2c3d4.0")).unwrap();
        let roots = pem_roots(&[certs().join("ca.crt")], std::slice::from_ref(&dir));
        assert_eq!(roots.certs.len(), 2);
        assert_eq!(roots.error, None);
        let ca = std::fs::read(certs().join("ca.crt")).unwrap();
        assert!(String::from_utf8_lossy(&ca).contains("BEGIN CERTIFICATE"));

        // A missing bundle is named; what could be read still is.
        let missing = dir.join("no-such-bundle.pem");
        let roots = pem_roots(&[missing.clone(), certs().join("ca.crt")], &[]);
        assert_eq!(roots.certs.len(), 1);
        assert!(roots.error.unwrap().contains("no-such-bundle.pem"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
