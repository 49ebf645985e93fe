//! Label sets stay put on a quiet host. A parent with one child is noise: under a bounded
//! fork loop (a shell starting short commands, terminals running a command now and then) it
//! came and went as a `libproc_ppid_processes` series from scrape to scrape. The defaults
//! keep the series of a quiet host stable and still show a runaway parent.

use std::collections::BTreeSet;

use libproc_exporter::collect::{self, Settings};
use libproc_exporter::metrics::Exporter;
use libproc_exporter::table::{self, Comm, Snapshot, Source};

use crate::common::{fixture, sample};

/// The recorded Mac, plus what a bounded fork loop leaves in the table at scrape `n`: a shell
/// with 0-3 short-lived `sh -c` children, each running a three-command pipeline for a moment,
/// and eight terminal shells each running a two-command pipeline on some scrapes. A `runaway` parent with 150
/// children joins from scrape 10 when asked.
struct ForkLoop {
    base: Snapshot,
    n: i32,
    runaway: bool,
}

impl ForkLoop {
    fn new(runaway: bool) -> ForkLoop {
        let mut replay = table::replay::open(&fixture("snapshots/mac.json")).unwrap();
        ForkLoop { base: replay.snapshot().unwrap(), n: 0, runaway }
    }
}

impl Source for ForkLoop {
    fn name(&self) -> &'static str {
        "fork-loop"
    }

    fn snapshot(&mut self) -> Result<Snapshot, table::Error> {
        self.n += 1;
        let n = self.n;
        let mut snapshot = self.base.clone();
        let template = snapshot.processes.iter().find(|p| p.pid > 1).unwrap().clone();
        let mut add = |pid: i32, ppid: i32, comm: &str| {
            let mut p = template.clone();
            (p.pid, p.ppid, p.pgid, p.comm) = (pid, ppid, pid, Comm::new(comm.as_bytes()));
            snapshot.processes.push(p);
        };
        add(50_000, 1, "bash");
        for child in 0..n % 4 {
            let pid = 60_000 + n * 10 + child;
            add(pid, 50_000, "sh");
            for stage in 0..3 {
                add(pid * 10 + stage, pid, "grep");
            }
        }
        for term in 0..8 {
            let shell = 51_000 + term;
            add(shell, 1, "zsh");
            if (n + term) % 3 == 0 {
                add(70_000 + n * 10 + term, shell, "git");
                add(75_000 + n * 10 + term, shell, "less");
            }
        }
        if self.runaway && n >= 10 {
            add(55_555, 1, "runaway");
            for child in 0..150 {
                add(80_000 + child, 55_555, "worker");
            }
        }
        snapshot.processes.sort_by_key(|p| p.pid);
        Ok(snapshot)
    }
}

/// The distinct `libproc_ppid_processes` label sets over 20 scrapes, and the last scrape.
fn label_sets(settings: Settings, runaway: bool) -> (usize, String) {
    let ppid = collect::find("ppid").unwrap();
    let exporter =
        Exporter::new(Box::new(ForkLoop::new(runaway)), vec![ppid.instance(&settings)], false);
    let mut seen = BTreeSet::new();
    let mut last = String::new();
    for _ in 0..20 {
        last = exporter.scrape(None);
        seen.extend(
            last.lines()
                .filter(|l| l.starts_with("libproc_ppid_processes{"))
                .map(|l| l.split(' ').next().unwrap().to_string()),
        );
    }
    (seen.len(), last)
}

#[test]
fn a_quiet_host_under_a_fork_loop_keeps_its_command_series() {
    // The comm collector's top K: the loop's commands come and go, ties are broken by name,
    // so the series are the names that ever made the top 20.
    let comm = collect::find("comm").unwrap();
    let exporter = Exporter::new(
        Box::new(ForkLoop::new(false)),
        vec![comm.instance(&Settings::default())],
        false,
    );
    let mut seen = BTreeSet::new();
    let mut per_scrape = BTreeSet::new();
    for _ in 0..20 {
        let body = exporter.scrape(None);
        let sets: BTreeSet<String> = body
            .lines()
            .filter(|l| l.starts_with("libproc_comm_processes{"))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect();
        per_scrape.insert(sets.len());
        seen.extend(sets);
    }
    eprintln!(
        "distinct libproc_comm_processes label sets in 20 scrapes: {} (per scrape {per_scrape:?})",
        seen.len()
    );
    assert!(seen.len() <= 24, "{} distinct command series in 20 scrapes", seen.len());
}

#[test]
fn a_quiet_host_under_a_fork_loop_keeps_its_parent_series() {
    let (before, _) = label_sets(Settings::default().with(&collect::ppid::MIN_CHILDREN, 1), false);
    let (after, _) = label_sets(Settings::default(), false);
    eprintln!(
        "distinct libproc_ppid_processes label sets in 20 scrapes: min-children 1: {before}, defaults: {after}"
    );
    // The recorded Mac's parents with several children are the stable series; every
    // short-lived shell of the loop was one more with min-children 1.
    assert!(before > 20, "the loop churned fewer series than expected: {before}");
    assert!(after <= 8, "{after} distinct parent series with the defaults");

    // A runaway parent still shows, with its children counted.
    let (_, last) = label_sets(Settings::default(), true);
    assert_eq!(
        sample(&last, "libproc_ppid_processes", "ppid=\"55555\",parent=\"runaway\""),
        Some(150.0)
    );
}
