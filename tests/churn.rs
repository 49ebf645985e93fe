//! Churn: SimKernel's table changes between any two calls, as a busy Mac's does
//! (`libproc::sim::churn`), and over thousands of seeds the reader, `record`, replay and
//! `listpids` keep their promises. Every assertion names its seed; run one seed again with
//! `CHURN_SEED=n cargo test churn`, or more seeds with `CHURN_SEEDS=n`.

use std::collections::BTreeMap;
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
/// Seeds `n` with `n % 250 == STORM` meet, in the scrape tests, a fork storm that never
/// ends; after it the table is too big to read again in the fast tier.
const STORM: u64 = 125;

/// [`busy_mac`], in a fork storm on the storm seeds.
fn stormy_mac(seed: u64) -> (Arc<SimKernel>, Arc<Mutex<Churn>>, u32, bool) {
    let (kernel, churn, caller) = busy_mac(seed);
    let storm = seed % 250 == STORM;
    churn.lock().unwrap().set_storm(storm);
    (kernel, churn, caller, storm)
}

/// The seeds to run: the one in `CHURN_SEED`, else the first `CHURN_SEEDS` (a deeper run
/// by hand), else the first [`SEEDS`].
fn seeds() -> Vec<u64> {
    let var = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    match (var("CHURN_SEED"), var("CHURN_SEEDS")) {
        (Some(seed), _) => vec![seed],
        (None, Some(n)) => (0..n).collect(),
        (None, None) => (0..SEEDS).collect(),
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
    // A 16 GiB Mac's limits (§11 for the file table).
    let limits = Limits {
        maxproc: Some(4176),
        maxprocperuid: Some(2784),
        ptmx_max: Some(511),
        open_files: Some(9_000),
        open_files_max: Some(122_880),
        open_files_per_process_max: Some(61_440),
    };
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
        // Ids, parent and comm come from one short (or full) info call: one instant.
        field("ids, parent and comm together", &|s| {
            (s.euid, s.ruid, s.ppid) == (p.euid, p.ruid, p.ppid) && Comm::new(&s.comm) == p.comm
        });
        // Short info says whether it has a terminal, the PROC_TTY_ONLY listings after it
        // which one; a process reaped in between is in none of them.
        if p.tty.is_some() || !history.gone_during(p.pid, from, to) {
            field("tty", &|s| s.tty == p.tty);
        }
    }
}

/// Every kind of change the schedule makes.
const KINDS: [&str; 11] = [
    "fork",
    "exec",
    "begin exit",
    "exit",
    "reap",
    "pid reused",
    "terminal taken",
    "terminal lost",
    "failed fork",
    "forks after the probe",
    "storm",
];

#[test]
fn churn_scrapes_count_what_was_listed_as_it_was_at_some_instant() {
    let started = Instant::now();
    let (mut ok, mut failed, mut vanished) = (0, 0, 0);
    let mut fired = BTreeMap::new();
    for seed in seeds() {
        let (kernel, churn, caller, storm) = stormy_mac(seed);
        let mut reader = source(&kernel, caller);
        let mut forks = 0;
        for _scrape in 0..3 {
            let from = kernel.calls();
            let result = reader.read();
            let to = kernel.calls() - 1;
            let Ok(snap) = result else {
                assert!(storm, "seed {seed}: the snapshot failed without a storm");
                failed += 1;
                break;
            };
            ok += 1;
            vanished += snap.unreadable.vanished;
            check_snapshot(seed, &churn.lock().unwrap().history, &snap, from, to);
            let now = snap.forks.unwrap_or_else(|| panic!("seed {seed}: no fork count"));
            assert!(now >= forks, "seed {seed}: libproc_forks_total went from {forks} to {now}");
            forks = now;
        }
        for (kind, n) in &churn.lock().unwrap().fired {
            *fired.entry(*kind).or_insert(0) += n;
        }
    }
    eprintln!(
        "churn: {} seeds, {ok} snapshots read ({vanished} pids vanished mid-read), {failed} \
         failed, in {:?}; changes made: {fired:?}",
        seeds().len(),
        started.elapsed()
    );
    if seeds().len() > 1 {
        assert!(failed > 0, "no scrape met a storm it could not read");
        for kind in KINDS {
            assert!(fired.get(kind).is_some_and(|&n| n > 0), "no seed made a {kind:?}: {fired:?}");
        }
    }
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

#[test]
fn churn_exporter_scrapes_succeed_or_say_success_0_and_add_up_to_the_listing() {
    use libproc_exporter::collect::{self, Settings};
    use libproc_exporter::metrics::Exporter;
    // The whole scrape below HTTP, every collector on: a scrape whose snapshot failed says
    // success 0 for every collector; one that succeeded counts, in `libproc_processes` and
    // the vanished pids, exactly the listing it took.
    let collectors = || {
        let instance = |d: &'static collect::Definition| d.instance(&Settings::default());
        collect::ALL.iter().copied().map(instance).collect::<Vec<_>>()
    };
    let (mut forks_seen, mut failed) = (0.0, 0);
    for seed in seeds().into_iter().step_by(5) {
        let (kernel, churn, caller, storm) = stormy_mac(seed);
        let exporter = Exporter::new(Box::new(source(&kernel, caller)), collectors(), false);
        let mut forks = 0.0;
        for _scrape in 0..2 {
            let from = kernel.calls();
            let text = exporter.scrape(None);
            let to = kernel.calls() - 1;
            let success: Vec<f64> = text
                .lines()
                .filter(|l| l.starts_with("libproc_scrape_collector_success{"))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse().ok())
                .collect();
            assert!(!success.is_empty(), "seed {seed}: no success samples:\n{text}");
            if success.contains(&0.0) {
                assert!(storm, "seed {seed}: the scrape failed without a storm:\n{text}");
                failed += 1;
                assert!(
                    success.iter().all(|&v| v == 0.0),
                    "seed {seed}: a partial scrape:\n{text}"
                );
                break;
            }
            let history = &churn.lock().unwrap().history;
            let (_, listed) = history.listings(from, to).last().expect("a complete listing");
            let states = ["created", "alive", "stopped", "zombie"];
            let counted: f64 = states
                .iter()
                .map(|s| {
                    crate::common::sample(&text, "libproc_processes", &format!("state=\"{s}\""))
                })
                .map(|v| v.unwrap_or(0.0))
                .sum();
            let vanished =
                crate::common::sample(&text, "libproc_pids_unreadable", "reason=\"vanished\"")
                    .unwrap_or_else(|| panic!("seed {seed}: no vanished count"));
            assert_eq!(counted + vanished, listed.len() as f64, "seed {seed}: {text}");
            let now = crate::common::sample(&text, "libproc_forks_total", "")
                .unwrap_or_else(|| panic!("seed {seed}: no libproc_forks_total"));
            assert!(now >= forks, "seed {seed}: libproc_forks_total went from {forks} to {now}");
            forks = now;
        }
        forks_seen += forks;
    }
    assert!(forks_seen > 0.0, "the scrapes counted forks");
    if seeds().len() > 1 {
        assert!(failed > 0, "no scrape met a storm: the success 0 path never ran");
    }
}
