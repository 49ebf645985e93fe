//! Linux: `/proc` for the kernel's limits and the exporter's own figures.

use std::path::Path;

use super::{Binding, Limits, OwnProcess};
use crate::procfs;

pub const NATIVE_BINDING: Binding = Binding::Procfs;

pub fn kernel_limits() -> Limits {
    Limits::from(&procfs::sys::limits(Path::new("/proc")))
}

/// Linux lets the soft limit go up to the hard one.
pub fn open_files_ceiling() -> Option<u64> {
    None
}

/// rustls-native-certs: `SSL_CERT_FILE`/`SSL_CERT_DIR`, else the distribution's bundle.
pub fn trusted_roots() -> super::TrustedRoots {
    let found = rustls_native_certs::load_native_certs();
    super::TrustedRoots { certs: found.certs, error: found.errors.first().map(ToString::to_string) }
}

pub fn own_process() -> OwnProcess {
    let mut me = OwnProcess {
        max_fds: super::open_files_limit().map(|n| n as f64),
        open_fds: super::count_fds("/proc/self/fd"),
        ..Default::default()
    };
    let Ok(stat) = std::fs::read("/proc/self/stat") else { return me };
    let Some(stat) = procfs::stat::parse_stat(&stat) else { return me };
    let Some(ticks) = super::clock_ticks() else { return me };
    let ticks = ticks as f64;
    me.cpu_seconds = Some((stat.utime + stat.stime) as f64 / ticks);
    me.virtual_bytes = Some(stat.vsize as f64);
    me.resident_bytes = super::page_size().map(|page| (stat.rss_pages * page) as f64);
    let boot = procfs::sys::boot_time(Path::new("/proc")).ok().flatten();
    me.start_time_seconds = boot.map(|boot| boot as f64 + stat.start_ticks as f64 / ticks);
    me
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_figures_are_this_process() {
        let me = own_process();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        // Started before now, and not before this test binary could have been built.
        let start = me.start_time_seconds.unwrap();
        assert!(start <= now + 1.0 && start > now - 86_400.0, "start {start}, now {now}");
        // A Rust test binary maps megabytes and keeps at least a page resident.
        assert!(me.resident_bytes.unwrap() >= 4096.0);
        assert!(me.virtual_bytes.unwrap() > me.resident_bytes.unwrap());
        assert!(me.cpu_seconds.unwrap() >= 0.0);
        // stdin, stdout and stderr at the least.
        assert!(me.open_fds.unwrap() >= 3.0);
        assert_eq!(me.max_fds, super::super::open_files_limit().map(|n| n as f64));
    }
}
