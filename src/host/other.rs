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

pub fn own_process() -> OwnProcess {
    OwnProcess { max_fds: super::open_files_limit().map(|n| n as f64), ..Default::default() }
}
