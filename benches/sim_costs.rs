//! What a scrape costs in calls and heap allocations, counted rather than timed.
//!
//! `cargo bench --bench sim_costs` sweeps the macOS path on SimKernel over N processes and T
//! terminal devices and prints, per (N, T): `__proc_info` calls per snapshot (unprivileged
//! and as root), heap allocations per snapshot and per whole scrape (collectors and text
//! included). It exits 1 when a goal is missed: more than N + T + 4 calls, or allocations that
//! grow with N (a per-pid allocation) instead of staying a constant number of buffer growths.
//!
//! `cargo bench --bench sim_costs -- procfs [ROOT]` counts the allocations of one warm
//! snapshot of this machine's `/proc` (one JSON line; `benches/run.sh` calls it at every N).
//!
//! Allocations are counted by a global allocator wrapped around the system one. Calls into
//! SimKernel are not counted: the simulator's bookkeeping is not what a Mac's kernel would
//! cost the exporter.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use libproc_exporter::collect;
use libproc_exporter::libproc::sim::SimKernel;
use libproc_exporter::libproc::{Errno, Kernel};
use libproc_exporter::metrics::Exporter;
use libproc_exporter::table::darwin::DarwinSource;
use libproc_exporter::table::procfs::ProcfsSource;

#[path = "common/sim_table.rs"]
mod sim_table;

/// Counts every allocation and reallocation (a `Vec` growing is one) while not paused.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static PAUSED: AtomicBool = AtomicBool::new(false);

fn count(size: usize) {
    if !PAUSED.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(size as u64, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to System with the caller's arguments unchanged; counting
// touches only atomics and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and bytes requested while `f` ran.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64, u64) {
    let (a, b) = (ALLOCATIONS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed));
    let value = f();
    let (a1, b1) = (ALLOCATIONS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed));
    (value, a1 - a, b1 - b)
}

/// The simulated kernel with allocation counting paused inside it. The bench is
/// single-threaded, so one global flag is enough.
struct Uncounted(Arc<SimKernel>);

impl Kernel for Uncounted {
    fn proc_info(
        &self,
        callnum: i32,
        pid: i32,
        flavor: u32,
        arg: u64,
        buf: Option<&mut [u8]>,
    ) -> Result<usize, Errno> {
        PAUSED.store(true, Ordering::Relaxed);
        let result = self.0.proc_info(callnum, pid, flavor, arg, buf);
        PAUSED.store(false, Ordering::Relaxed);
        result
    }

    fn getsid(&self, pid: i32) -> Result<i32, Errno> {
        PAUSED.store(true, Ordering::Relaxed);
        let result = self.0.getsid(pid);
        PAUSED.store(false, Ordering::Relaxed);
        result
    }

    fn timebase_hz(&self) -> Option<u64> {
        self.0.timebase_hz()
    }
}

/// A non-root caller: the privilege probe fails and short info + tty listings are used.
const USER: u32 = 501;
const NS: [usize; 4] = [100, 1_000, 5_000, 10_000];
const TS: [usize; 4] = [0, 4, 16, 64];
/// Allocation growth from N = 1,000 to N = 10,000 that still counts as "a constant number of
/// Vec growths" (a per-pid allocation would add 9,000).
const GROWTH_ALLOWED: u64 = 16;

/// One (N, T) point.
struct Row {
    n: usize,
    t: usize,
    calls: u64,
    calls_root: u64,
    snapshot_allocs: u64,
    snapshot_allocs_root: u64,
    scrape_allocs: u64,
    scrape_bytes: u64,
    snapshot_us: f64,
}

fn source(n: usize, t: usize, euid: u32) -> (DarwinSource<Uncounted>, Arc<SimKernel>) {
    let (table, ttys) = sim_table::table(n, t);
    let kernel = Arc::new(SimKernel::new(table, euid));
    let source = sim_table::source(Uncounted(kernel.clone()), ttys, euid);
    (source, kernel)
}

/// Calls and allocations of one warm snapshot (the first one grows the pid buffers).
fn snapshot_costs(n: usize, t: usize, euid: u32) -> (u64, u64, f64) {
    let (mut source, kernel) = source(n, t, euid);
    source.read().expect("warm-up snapshot");
    let before = kernel.calls();
    let started = Instant::now();
    let (snapshot, allocs, _) = allocations(|| source.read().expect("snapshot"));
    let us = started.elapsed().as_secs_f64() * 1e6;
    assert_eq!(snapshot.processes.len(), n);
    (kernel.calls() - before, allocs, us)
}

/// Allocations of one warm scrape: snapshot, default collectors, text. The exporter's own
/// `process_*` metrics are off: they read this process's /proc entries, which is not the
/// macOS path.
fn scrape_costs(n: usize, t: usize) -> (u64, u64) {
    let (source, _) = source(n, t, USER);
    let exporter = Exporter::new(Box::new(source), collect::default_instances(), false);
    // Two warm-ups: buffers grow, user names are looked up and cached.
    exporter.scrape(None);
    exporter.scrape(None);
    let (body, allocs, bytes) = allocations(|| exporter.scrape(None));
    assert!(body.contains("libproc_processes{"));
    (allocs, bytes)
}

fn sweep() -> bool {
    let mut rows = Vec::new();
    for &t in &TS {
        for &n in &NS {
            let (calls, snapshot_allocs, snapshot_us) = snapshot_costs(n, t, USER);
            let (calls_root, snapshot_allocs_root, _) = snapshot_costs(n, t, 0);
            let (scrape_allocs, scrape_bytes) = scrape_costs(n, t);
            rows.push(Row {
                n,
                t,
                calls,
                calls_root,
                snapshot_allocs,
                snapshot_allocs_root,
                scrape_allocs,
                scrape_bytes,
                snapshot_us,
            });
        }
    }
    println!("macOS path on SimKernel: cost of one warm scrape (N processes, T terminal devices)");
    println!();
    println!(
        "| N | T | calls | N+T+3 | calls as root | N+3 | within bound | allocs/snapshot | allocs/snapshot as root | allocs/scrape | KiB allocated/scrape | snapshot µs (sim) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---:|---:|");
    let mut ok = true;
    for r in &rows {
        let within = r.calls <= (r.n + r.t + 4) as u64 && r.calls_root <= (r.n + 4) as u64;
        ok &= within;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.0} |",
            r.n,
            r.t,
            r.calls,
            r.n + r.t + 4,
            r.calls_root,
            r.n + 4,
            if within { "yes" } else { "NO" },
            r.snapshot_allocs,
            r.snapshot_allocs_root,
            r.scrape_allocs,
            r.scrape_bytes as f64 / 1024.0,
            r.snapshot_us
        );
    }
    println!();
    // From the second N on, every terminal and parent has processes, so the series are the
    // same and only the pids differ.
    let (from, to) = (NS[1], NS[NS.len() - 1]);
    println!(
        "Allocation growth from N={from} to N={to} (goal: at most {GROWTH_ALLOWED}, no allocation per pid):"
    );
    for &t in &TS {
        let at = |n: usize| rows.iter().find(|r| r.n == n && r.t == t).expect("swept");
        let (small, large) = (at(from), at(to));
        let growth = [
            ("snapshot", small.snapshot_allocs, large.snapshot_allocs),
            ("snapshot as root", small.snapshot_allocs_root, large.snapshot_allocs_root),
            ("scrape", small.scrape_allocs, large.scrape_allocs),
        ];
        let text: Vec<String> = growth
            .iter()
            .map(|&(what, a, b)| format!("{what} {a} -> {b} ({:+})", b as i64 - a as i64))
            .collect();
        let grew = growth.iter().any(|&(_, a, b)| b > a + GROWTH_ALLOWED);
        println!("- T={t}: {}{}", text.join(", "), if grew { "  FAIL" } else { "" });
        ok &= !grew;
    }
    println!();
    ok &= laptop_sweep();
    ok &= usage_sweep();
    println!("{}", if ok { "sim goals: met" } else { "sim goals: NOT met" });
    ok
}

/// A laptop's /dev (T = 140: console, 128 legacy ptys, 9 open ptys, Bluetooth serial): the
/// calls of one warm unprivileged snapshot with `k` terminals in use, against N + k + 4.
fn laptop_sweep() -> bool {
    println!("Laptop /dev (T = 140), unprivileged, k terminals in use:");
    println!();
    println!("| N | T | k | calls | N+k+3 | N+T+3 |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut ok = true;
    for n in [600, 5_000] {
        for k in [0, 3] {
            let (table, ttys) = sim_table::laptop(n, k);
            let t = ttys.len();
            let kernel = Arc::new(SimKernel::new(table, USER));
            let mut source = sim_table::source(Uncounted(kernel.clone()), ttys, USER);
            source.read().expect("warm-up snapshot");
            let before = kernel.calls();
            source.read().expect("snapshot");
            let calls = kernel.calls() - before;
            ok &= calls <= (n + k + 4) as u64;
            println!("| {n} | {t} | {k} | {calls} | {} | {} |", n + k + 4, n + t + 4);
        }
    }
    println!();
    ok
}

/// With the `resources` collector on, each readable process costs one `proc_pid_rusage` more:
/// N + R + k + 4 calls unprivileged (R: the caller's own processes; another user's is known
/// refused without a call), N + N + 4 as root.
fn usage_sweep() -> bool {
    println!("Reading usage too (resources collector), T = 16 terminals in use:");
    println!();
    println!("| N | R (readable) | calls | N+R+T+4 | calls as root | 2N+4 | within bound |");
    println!("|---:|---:|---:|---:|---:|---:|:---:|");
    let mut ok = true;
    let t = 16;
    for &n in &NS {
        let calls = |euid: u32| {
            let (table, ttys) = sim_table::table(n, t);
            let readable = table.procs().filter(|p| euid == 0 || p.euid == euid).count();
            let kernel = Arc::new(SimKernel::new(table, euid));
            let mut source =
                sim_table::source(Uncounted(kernel.clone()), ttys, euid).reading_usage(true);
            source.read().expect("warm-up snapshot");
            let before = kernel.calls();
            let snapshot = source.read().expect("snapshot");
            let read = snapshot.processes.iter().filter(|p| p.usage.is_some()).count();
            assert_eq!(read, readable, "every readable process's usage is read");
            (kernel.calls() - before, readable)
        };
        let ((user, r), (root, _)) = (calls(USER), calls(0));
        let within = user <= (n + r + t + 4) as u64 && root <= (2 * n + 4) as u64;
        ok &= within;
        let yes = if within { "yes" } else { "NO" };
        println!("| {n} | {r} | {user} | {} | {root} | {} | {yes} |", n + r + t + 4, 2 * n + 4);
    }
    println!();
    ok
}

/// One warm procfs snapshot of this machine: pids read and allocations, as JSON.
fn procfs(root: &str) -> bool {
    let mut source = match ProcfsSource::open(root.as_ref()) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("procfs {root}: {e}");
            return false;
        }
    };
    let warm = source.read().is_ok() && source.read().is_ok();
    let (snapshot, allocs, bytes) = allocations(|| source.read());
    match snapshot {
        Ok(snapshot) if warm => {
            println!(
                "{{\"pids\": {}, \"allocs\": {allocs}, \"bytes\": {bytes}}}",
                snapshot.processes.len()
            );
            true
        }
        Ok(_) => false,
        Err(e) => {
            eprintln!("procfs {root}: {e}");
            false
        }
    }
}

fn main() {
    // `cargo bench` adds `--bench`; anything else that starts with `-` is cargo's too.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let ok = match args.first().map(String::as_str) {
        None => sweep(),
        Some("procfs") => procfs(args.get(1).map_or("/proc", String::as_str)),
        Some(other) => {
            eprintln!("usage: sim_costs [procfs [ROOT]] (unknown argument {other:?})");
            false
        }
    };
    std::process::exit(if ok { 0 } else { 1 });
}
