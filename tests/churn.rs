//! Churn: SimKernel's table changes between any two calls, as a busy Mac's does
//! (`libproc::sim::churn`), and over thousands of seeds the reader, `record`, replay and
//! `listpids` keep their promises. Every assertion names its seed; run one seed again with
//! `CHURN_SEED=n cargo test churn`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use libproc_exporter::host::Limits;
use libproc_exporter::libproc::sim::churn::{Churn, History};
use libproc_exporter::libproc::sim::{Call, SimKernel, SimTable};
use libproc_exporter::libproc::{self, ListFilter};
use libproc_exporter::table::darwin::{DarwinSource, TtyDevices};
use libproc_exporter::table::replay::ReplaySource;
use libproc_exporter::table::{Comm, Snapshot, Source, Tty, snapshot_file};

/// Seeds per property: enough to meet every rule many times, few enough for the fast tier.
const SEEDS: u64 = 1500;

/// The seeds to run: all of them, or the one in `CHURN_SEED`.
fn seeds() -> Vec<u64> {
    match std::env::var("CHURN_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => (0..SEEDS).collect(),
    }
}

fn ttys() -> Vec<Tty> {
    (0..4).map(|i| Tty { dev: 0x1000_0000 + i, name: format!("ttys{i:03}") }).collect()
}

/// A machine that has been churning for a while (20 to 80 changes from boot), then a kernel
/// over it that churns on every call, read by `caller` (root on odd seeds).
fn busy_mac(seed: u64) -> (Arc<SimKernel>, Arc<Mutex<Churn>>, u32) {
    let devs: Vec<u32> = ttys().iter().map(|t| t.dev).collect();
    let mut table = SimTable::booted();
    let mut boot = Churn::new(seed ^ 0xB007, &table, 0, devs.clone());
    for index in 0..20 + seed % 61 {
        let call = Call { index, callnum: 0, pid: 0, flavor: 0, arg: 0, buf_len: None };
        boot.step(&mut table, &call);
    }
    let caller = if seed % 2 == 1 { 0 } else { 501 };
    let kernel = Arc::new(SimKernel::new(table, caller));
    let churn = Churn::install(&kernel, seed, devs);
    (kernel, churn, caller)
}

fn source(kernel: &Arc<SimKernel>, caller: u32) -> DarwinSource<Arc<SimKernel>> {
    let limits = Limits::default();
    DarwinSource::new(
        kernel.clone(),
        TtyDevices::Fixed(ttys()),
        Some(limits),
        Default::default(),
        caller,
    )
}

/// Checks one successful snapshot taken during calls `from..=to` against the history.
fn check_snapshot(seed: u64, history: &History, snap: &Snapshot, from: u64, to: u64) {
    let (at, listed) = history
        .listings(from, to)
        .last()
        .unwrap_or_else(|| panic!("seed {seed}: a snapshot without a complete listing"));
    let (fewest, most) = history.count_range(from, *at);
    assert!(
        (fewest..=most).contains(&listed.len()),
        "seed {seed}: listed {} while {fewest}..={most} were alive",
        listed.len()
    );
    let vanished = snap.unreadable.vanished as usize;
    assert_eq!(
        snap.processes.len() + vanished,
        listed.len(),
        "seed {seed}: counted {} + vanished {vanished} is not the {} listed ({:?})",
        snap.processes.len(),
        listed.len(),
        snap.unreadable
    );
    for p in &snap.processes {
        assert!(listed.contains(&p.pid), "seed {seed}: pid {} counted but not listed", p.pid);
        let seen = history.seen(p.pid, from, to);
        let field = |name: &str, ok: &dyn Fn(&&libproc::sim::churn::Seen) -> bool| {
            assert!(
                seen.iter().any(ok),
                "seed {seed}: pid {} counted with {name} it never had during calls \
                 {from}..={to}: {p:?}, history {seen:?}",
                p.pid
            );
        };
        field("euid", &|s| s.euid == p.euid);
        field("ruid", &|s| s.ruid == p.ruid);
        field("ppid", &|s| s.ppid == p.ppid);
        field("comm", &|s| Comm::new(&s.comm) == p.comm);
        // Short info says whether it has a terminal, the PROC_TTY_ONLY listings after it
        // which one; a process reaped in between is in none of them.
        if p.tty.is_some() || !history.gone_during(p.pid, from, to) {
            field("tty", &|s| s.tty == p.tty);
        }
    }
}

#[test]
fn churn_scrapes_count_what_was_listed_as_it_was_at_some_instant() {
    let started = Instant::now();
    let (mut ok, mut failed) = (0, 0);
    for seed in seeds() {
        let (kernel, churn, caller) = busy_mac(seed);
        let mut reader = source(&kernel, caller);
        let mut forks = 0;
        for _scrape in 0..3 {
            let from = kernel.calls();
            let result = reader.read();
            let to = kernel.calls() - 1;
            let Ok(snap) = result else {
                failed += 1;
                continue;
            };
            ok += 1;
            check_snapshot(seed, &churn.lock().unwrap().history, &snap, from, to);
            let now = snap.forks.unwrap_or_else(|| panic!("seed {seed}: no fork count"));
            assert!(now >= forks, "seed {seed}: libproc_forks_total went from {forks} to {now}");
            forks = now;
        }
    }
    eprintln!(
        "churn: {} seeds, {ok} snapshots read, {failed} failed, in {:?}",
        seeds().len(),
        started.elapsed()
    );
}

#[test]
fn churn_listings_never_hold_a_pid_twice() {
    for seed in seeds() {
        let (kernel, _churn, _) = busy_mac(seed);
        let filters = [ListFilter::All, ListFilter::Uid(501), ListFilter::Tty(0x1000_0000)];
        for filter in filters.iter().cycle().take(6) {
            let Ok(mut pids) = libproc::list_pids(&*kernel, *filter) else { continue };
            let n = pids.len();
            pids.sort_unstable();
            pids.dedup();
            assert_eq!(pids.len(), n, "seed {seed}: {filter:?} listed a pid twice");
        }
    }
}

#[test]
fn churn_recordings_replay_strictly_with_the_same_counts_and_record_back_identical() {
    let started = Instant::now();
    let mut recorded = 0;
    for seed in seeds() {
        let (kernel, _churn, caller) = busy_mac(seed);
        let Ok(snap) = libproc_exporter::commands::recording(&mut source(&kernel, caller)) else {
            continue;
        };
        recorded += 1;
        let text = snapshot_file::to_json(&snap, &Default::default());
        let file = snapshot_file::parse(&text)
            .unwrap_or_else(|e| panic!("seed {seed}: the strict reader refused a recording: {e}"));
        let mut replay = ReplaySource::new(&file);
        let replayed = replay.snapshot().unwrap_or_else(|e| panic!("seed {seed}: replay: {e}"));
        let key = |s: &Snapshot| -> Vec<String> {
            s.processes
                .iter()
                .map(|p| {
                    format!(
                        "{} {} {} {} {} {:?} {:?} {}",
                        p.pid, p.ppid, p.pgid, p.euid, p.ruid, p.tty, p.state, p.comm
                    )
                })
                .collect()
        };
        assert_eq!(key(&replayed), key(&snap), "seed {seed}: the replay counts differently");
        assert_eq!(replayed.forks, snap.forks, "seed {seed}: the replay's fork count differs");
        let again = libproc_exporter::commands::recording(&mut replay)
            .unwrap_or_else(|e| panic!("seed {seed}: recording the replay: {e}"));
        let again = snapshot_file::to_json(&again, &Default::default());
        if again != text {
            let diff: Vec<_> =
                text.lines().zip(again.lines()).filter(|(a, b)| a != b).take(4).collect();
            if std::env::var("CHURN_DUMP").is_ok() {
                eprintln!("{text}\n----\n{again}");
            }
            panic!("seed {seed}: the replay records back differently: {diff:#?}");
        }
    }
    eprintln!(
        "churn: {} seeds, {recorded} recordings replayed, in {:?}",
        seeds().len(),
        started.elapsed()
    );
}
