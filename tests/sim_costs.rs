//! What a snapshot of the macOS path costs in `__proc_info` calls, counted on SimKernel.
//!
//! Unprivileged, N + k + 4: the size probe and the fill of `PROC_ALL_PIDS`, the privilege
//! probe, short info for each of the N pids, the newest process's uniqueid for the fork
//! counter (reference §3.10) and `PROC_TTY_ONLY` for k of the T terminal
//! devices: none when no process has `PROC_FLAG_CONTROLT`, the terminals in use when the
//! devices are asked most-likely-first, all T when a session lost its terminal.
//! Privileged, the tty listings go (full info carries the tty): N + 4. The
//! calls are O(N) in the kernel under its process-list lock, so a per-pid filtered listing
//! (O(N^2)) sneaking into the reader is what these tests catch. A count, not a timing;
//! `benches/sim_costs.rs` reports the same counts with heap allocations beside them.

use std::collections::BTreeMap;
use std::sync::Arc;

use libproc_exporter::libproc::sim::{SimKernel, SimTable};
use libproc_exporter::table::darwin::{DarwinSource, TtyDevices};
use libproc_exporter::table::{Snapshot, Tty};

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
    let mut source = sim_table::source(kernel.clone(), ttys, caller_euid);
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
fn unprivileged_snapshot_makes_at_most_n_plus_t_plus_4_calls() {
    assert_calls_within(&SIZES, USER, |n, t| (n + t + 4) as u64);
}

#[test]
fn privileged_snapshot_makes_at_most_n_plus_4_calls() {
    assert_calls_within(&SIZES, 0, |n, _| (n + 4) as u64);
}

/// One warm unprivileged snapshot of `table` with the terminal devices `ttys` (in the order
/// given, as a scan might list them): its calls, and the snapshot.
fn warm_calls(table: SimTable, ttys: Vec<Tty>) -> (u64, Snapshot) {
    let kernel = Arc::new(SimKernel::new(table, USER));
    let mut source = sim_table::source(kernel.clone(), ttys, USER);
    source.read().expect("warm-up snapshot");
    let before = kernel.calls();
    let snapshot = source.read().expect("snapshot");
    (kernel.calls() - before, snapshot)
}

/// The same table read as root: full BSD info gives each process its terminal directly.
fn privileged_ttys(table: SimTable, ttys: Vec<Tty>) -> Vec<(i32, Option<u32>)> {
    let mut source = DarwinSource::new(
        SimKernel::new(table, 0),
        TtyDevices::Fixed(ttys),
        None,
        BTreeMap::new(),
        0,
    );
    let snapshot = source.read().expect("privileged snapshot");
    assert!(snapshot.privileged);
    snapshot.processes.iter().map(|p| (p.pid, p.tty)).collect()
}

fn ttys_of(snapshot: &Snapshot) -> Vec<(i32, Option<u32>)> {
    snapshot.processes.iter().map(|p| (p.pid, p.tty)).collect()
}

#[test]
fn a_headless_table_makes_no_terminal_listing_at_all() {
    for n in [2, 600, 5_000] {
        let (table, dev) = sim_table::laptop(n, 0);
        assert_eq!(dev.len(), 140, "a laptop's /dev");
        let (calls, snapshot) = warm_calls(table, dev);
        assert_eq!(calls, n as u64 + 4, "n={n}: N + 4");
        assert!(snapshot.processes.iter().all(|p| p.tty.is_none()));
    }
}

#[test]
fn three_terminals_in_use_cost_three_listings_whatever_the_device_order() {
    let n = 600;
    let (_, dev) = sim_table::laptop(n, 3);
    let expected = privileged_ttys(sim_table::laptop(n, 3).0, dev.clone());
    assert_eq!(expected.iter().filter(|(_, tty)| tty.is_some()).count(), 147);
    let mut orders = vec![dev.clone(), dev.iter().rev().cloned().collect()];
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..5 {
        let mut shuffled = dev.clone();
        for i in (1..shuffled.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            shuffled.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        orders.push(shuffled);
    }
    for (i, order) in orders.into_iter().enumerate() {
        let (calls, snapshot) = warm_calls(sim_table::laptop(n, 3).0, order);
        assert_eq!(calls, n as u64 + 3 + 4, "order {i}: N + 3 + 4");
        assert_eq!(ttys_of(&snapshot), expected, "order {i}: the privileged reading");
    }
}

#[test]
fn a_revoked_terminal_makes_the_scan_run_to_the_end_and_stay_correct() {
    let n = 600;
    let revoke = |table: &mut SimTable| {
        // The first child on ttys000 leads its own session: revoke that session's terminal.
        // It keeps P_CONTROLT but matches no device any more (reference §2.1 notes on TTY).
        let pid = table
            .procs()
            .find(|p| p.controlt && p.session_tty == sim_table::tty(0).dev)
            .map(|p| p.pid)
            .expect("a child on ttys000");
        table.revoke_tty(pid);
        pid
    };
    let (mut table, dev) = sim_table::laptop(n, 3);
    let revoked = revoke(&mut table);
    let mut privileged_table = sim_table::laptop(n, 3).0;
    revoke(&mut privileged_table);
    let expected = privileged_ttys(privileged_table, dev.clone());
    let t = dev.len() as u64;
    let (calls, snapshot) = warm_calls(table, dev);
    assert_eq!(calls, n as u64 + t + 4, "N + T + 4");
    assert_eq!(ttys_of(&snapshot), expected);
    let p = snapshot.find(revoked).expect("the revoked process is listed");
    assert_eq!(p.tty, None);
    assert!(p.flags.unwrap() & libproc_exporter::libproc::PROC_FLAG_CONTROLT != 0);
}
