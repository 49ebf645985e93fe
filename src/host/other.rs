//! Other Unix systems: no process-table reader, so no kernel limits or own figures beyond
//! the descriptor limit; the metrics are left out rather than reported as 0.

use super::{Binding, Limits, OwnProcess};

pub const NATIVE_BINDING: Binding = Binding::Procfs;

pub fn kernel_limits() -> Limits {
    Limits::default()
}

pub fn open_files_ceiling() -> Option<u64> {
    None
}

/// rustls-native-certs: `SSL_CERT_FILE`/`SSL_CERT_DIR`, else the distribution's bundle.
pub fn trusted_roots() -> super::TrustedRoots {
    let found = rustls_native_certs::load_native_certs();
    super::TrustedRoots { certs: found.certs, error: found.errors.first().map(ToString::to_string) }
}

pub fn own_process() -> OwnProcess {
    OwnProcess { max_fds: super::open_files_limit().map(|n| n as f64), ..Default::default() }
}
