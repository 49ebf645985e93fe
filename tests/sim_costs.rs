//! What a snapshot of the macOS path costs in `__proc_info` calls, counted on SimKernel.
//!
//! Unprivileged, at most N + T + 3: the size probe and the fill of `PROC_ALL_PIDS`, the
//! privilege probe, short info for each of the N pids and `PROC_TTY_ONLY` for each of the T
//! terminal devices. Privileged, the tty listings go (full info carries the tty): N + 3. The
//! calls are O(N) in the kernel under its process-list lock, so a per-pid filtered listing
//! (O(N^2)) sneaking into the reader is what these tests catch. A count, not a timing;
//! `benches/sim_costs.rs` reports the same counts with heap allocations beside them.

use std::collections::BTreeMap;
use std::sync::Arc;

use libproc_exporter::libproc::sim::SimKernel;
use libproc_exporter::limits::Limits;
use libproc_exporter::table::Snapshot;
use libproc_exporter::table::darwin::{DarwinSource, TtyDevices};

#[path = "../benches/common/sim_table.rs"]
mod sim_table;

/// A user who is not root: full BSD info of root's kernel_task is refused, so the privilege
/// probe fails and the reader takes the short-info path.
const USER: u32 = 501;

/// Two snapshots of a table of `n` processes and `t` terminals read as `caller_euid`: the
/// calls each one made, and the second snapshot (the first warms the pid buffers).
fn calls_per_snapshot(n: usize, t: usize, caller_euid: u32) -> ([u64; 2], Snapshot) {
    let (table, ttys) = sim_table::table(n, t);
    let kernel = Arc::new(SimKernel::new(table, caller_euid));
    let mut source = DarwinSource::new(
        kernel.clone(),
        TtyDevices::Fixed(ttys),
        Some(Limits::default()),
        BTreeMap::new(),
        caller_euid,
    );
    let mut calls = [0; 2];
    let mut snapshot = None;
    for count in &mut calls {
        let before = kernel.calls();
        snapshot = Some(source.read().expect("snapshot"));
        *count = kernel.calls() - before;
    }
    (calls, snapshot.expect("two snapshots were read"))
}

const SIZES: [(usize, usize); 6] = [(2, 0), (12, 1), (100, 0), (100, 8), (1000, 16), (3000, 64)];

/// Asserts that every snapshot of every size stays within `bound(n, t)` calls.
fn assert_calls_within(sizes: &[(usize, usize)], caller_euid: u32, bound: fn(usize, usize) -> u64) {
    for &(n, t) in sizes {
        let (calls, snapshot) = calls_per_snapshot(n, t, caller_euid);
        assert_eq!(snapshot.privileged, caller_euid == 0, "n={n} t={t}: privilege probe");
        assert_eq!(snapshot.processes.len(), n, "n={n} t={t}: every process read");
        for (i, calls) in calls.into_iter().enumerate() {
            let bound = bound(n, t);
            assert!(
                calls <= bound,
                "n={n} t={t} euid={caller_euid}: snapshot {i} made {calls} __proc_info calls, more than {bound}"
            );
        }
    }
}

#[test]
fn unprivileged_snapshot_makes_at_most_n_plus_t_plus_3_calls() {
    assert_calls_within(&SIZES, USER, |n, t| (n + t + 3) as u64);
}

#[test]
fn privileged_snapshot_makes_at_most_n_plus_3_calls() {
    assert_calls_within(&SIZES, 0, |n, _| (n + 3) as u64);
}
