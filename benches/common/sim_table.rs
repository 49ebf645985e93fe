//! A synthetic Mac for the SimKernel cost benchmark (`benches/sim_costs.rs`) and the call-count
//! test (`tests/sim_costs.rs`), which include this file with `#[path]` so that both measure the
//! same table.
//!
//! The table has exactly `n` processes, shaped like the Linux suite's (`benches/run.sh`
//! spawns ten parents, each leading its own process group, that hold the extra processes
//! under six uids): kernel_task, launchd, ten parents, their children. Every fourth child has
//! one of the terminals in use as its controlling terminal, and every fiftieth is a zombie,
//! so that every branch of the reader (short info of a zombie, `PROC_TTY_ONLY` matches) runs.

#![allow(dead_code)]

use std::collections::BTreeMap;

use libproc_exporter::host::Limits;
use libproc_exporter::libproc::sim::{self, SimProc, SimTable};
use libproc_exporter::libproc::{Kernel, Pid, SZOMB};
use libproc_exporter::table::Tty;
use libproc_exporter::table::darwin::{DarwinSource, TtyDevices};

/// Parents holding the children.
const PARENTS: usize = 10;
/// The uids handed out in turn (root, daemon, bin, www-data, nobody, a user).
const UIDS: [u32; 6] = [0, 1, 2, 33, 65534, 501];
/// The first parent's pid; children follow from [`FIRST_CHILD`].
const FIRST_PARENT: Pid = 100;
const FIRST_CHILD: Pid = 1000;

/// The terminal `ttysNNN`: major 16, minor NNN, as `makedev` packs them on macOS (8 bits of
/// major above 24 bits of minor).
pub fn tty(i: usize) -> Tty {
    Tty { dev: (16 << 24) | i as u32, name: format!("ttys{i:03}") }
}

/// The darwin reader over `kernel`, with the terminal devices `ttys` and a Mac's limits, as
/// the user `euid` reads it.
pub fn source<K: Kernel>(kernel: K, ttys: Vec<Tty>, euid: u32) -> DarwinSource<K> {
    let limits = Limits {
        maxproc: Some(4176),
        maxprocperuid: Some(2784),
        ptmx_max: Some(511),
        ..Limits::default()
    };
    DarwinSource::new(kernel, TtyDevices::Fixed(ttys), Some(limits), BTreeMap::new(), euid)
}

/// A table of exactly `n` processes and the `t` terminal devices `ttys000`.. a scan of /dev
/// would find, all of them in use.
pub fn table(n: usize, t: usize) -> (SimTable, Vec<Tty>) {
    let ttys: Vec<Tty> = (0..t).map(tty).collect();
    (table_on(n, &ttys[..]), ttys)
}

/// A laptop's /dev ([`sim::mac_dev`]: 140 devices with 9 ptys open) and a table of exactly
/// `n` processes, `in_use` of whose terminals (`ttys000`..) are some process's controlling
/// terminal.
pub fn laptop(n: usize, in_use: usize) -> (SimTable, Vec<Tty>) {
    let dev: Vec<Tty> = sim::mac_dev(9).into_iter().map(|(name, dev)| Tty { dev, name }).collect();
    let used: Vec<Tty> = (0..in_use).map(tty).collect();
    (table_on(n, &used), dev)
}

/// A table of exactly `n` processes (at least kernel_task and launchd) in which every fourth
/// child has one of `used` as its controlling terminal.
pub fn table_on(n: usize, used: &[Tty]) -> SimTable {
    assert!(n >= 2, "kernel_task and launchd are always there");
    let mut table = SimTable::booted();
    let parents = PARENTS.min(n - 2);
    for i in 0..parents {
        let pid = FIRST_PARENT + i as Pid;
        let parent = SimProc::new(pid, 1, "parent").with_uid(UIDS[i % UIDS.len()]);
        table.insert(parent).expect("parent pids are distinct");
    }
    for k in 0..n - 2 - parents {
        let parent = FIRST_PARENT + (k % parents) as Pid;
        let mut child = SimProc::new(FIRST_CHILD + k as Pid, parent, "sleep");
        child = child.with_uid(UIDS[k % UIDS.len()]);
        child.pgid = parent;
        if !used.is_empty() && k % 4 == 0 {
            child = child.with_tty(used[(k / 4) % used.len()].dev);
        }
        if k % 50 == 49 {
            child.status = SZOMB;
        }
        table.insert(child).expect("child pids are distinct");
    }
    table
}
