//! The exporter's output on a recorded Mac: the golden file, promtool's opinion of it, no
//! stale series between scrapes, and series caps that count what they drop.

use std::collections::BTreeMap;
use std::sync::Arc;

use libproc_exporter::collect::{self, Instance, Settings};
use libproc_exporter::host::Limits;
use libproc_exporter::libproc::sim::{SimKernel, SimProc, SimTable};
use libproc_exporter::metrics::Exporter;
use libproc_exporter::table::darwin::{DarwinSource, TtyDevices};
use libproc_exporter::table::replay;

use crate::common::{fixture, promtool_check_metrics, sample};

/// Every collector, `pgrp` included, in registry order, with their default settings but
/// for `changes` (setting, value).
fn collectors_with(changes: &[(&'static collect::Setting, u64)]) -> Vec<Instance> {
    let settings =
        changes.iter().fold(Settings::default(), |settings, &(s, value)| settings.with(s, value));
    collect::ALL.iter().map(|definition| definition.instance(&settings)).collect()
}

fn all_collectors() -> Vec<Instance> {
    collectors_with(&[])
}

/// An exporter over the recorded Mac, with the simulated kernel kept for changing the table.
fn mac_exporter(collectors: Vec<Instance>) -> (Exporter, Arc<SimKernel>) {
    let text = std::fs::read_to_string(fixture("snapshots/mac.json")).unwrap();
    let file = replay::parse(&text).unwrap();
    let kernel = Arc::new(file.kernel());
    let source = DarwinSource::new(
        kernel.clone(),
        TtyDevices::Fixed(file.ttys.clone()),
        Some(file.limits),
        file.users.clone(),
        file.caller_euid,
    )
    .reading_usage(true);
    (Exporter::new(Box::new(source), collectors, true), kernel)
}

/// Replaces what differs between runs and machines: durations, the exporter's own process
/// figures, and the build's revision, compiler and target.
fn normalize(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with("libproc_build_info{") {
                return "libproc_build_info{version=\"VERSION\",revision=\"REVISION\",rustc_version=\"RUSTC\",target=\"TARGET\"} 1".to_string();
            }
            let volatile = !line.starts_with('#')
                && (line.starts_with("process_") || line.contains("_duration_seconds"));
            match line.rsplit_once(' ') {
                Some((series, _)) if volatile => format!("{series} 0"),
                _ => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn golden_metrics_of_a_recorded_mac() {
    let (exporter, _) = mac_exporter(all_collectors());
    let got = normalize(&exporter.scrape(None));
    let path = fixture("golden/mac.prom");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display())
    });
    if got != want {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .filter(|(w, g)| w != g)
            .take(10)
            .map(|(w, g)| format!("- {w}\n+ {g}"))
            .collect();
        panic!(
            "/metrics differs from {} (UPDATE_GOLDEN=1 rewrites it after review):\n{}\n(lines: want {}, got {})",
            path.display(),
            diff.join("\n"),
            want.lines().count(),
            got.lines().count()
        );
    }
}

#[test]
#[ignore = "needs promtool (scripts/setup.sh installs it)"]
fn golden_file_passes_promtool_check_metrics() {
    let text = std::fs::read(fixture("golden/mac.prom")).unwrap();
    promtool_check_metrics(&text);
}

#[test]
fn golden_values_are_what_the_recorded_mac_holds() {
    // Independent of the golden file: the fixture's story (see make_mac.py) in numbers.
    let (exporter, _) = mac_exporter(all_collectors());
    let body = exporter.scrape(None);
    let v = |name: &str, labels: &str| {
        sample(&body, name, labels).unwrap_or_else(|| panic!("no {name}{{{labels}}}"))
    };
    assert_eq!(v("libproc_processes", "state=\"zombie\""), 4.0);
    assert_eq!(v("libproc_processes", "state=\"stopped\""), 1.0);
    assert_eq!(v("libproc_ppid_processes", "ppid=\"600\",parent=\"xcodebuild\""), 60.0);
    assert_eq!(v("libproc_ppid_zombies", "ppid=\"600\",parent=\"xcodebuild\""), 3.0);
    assert_eq!(v("libproc_tty_processes", "tty=\"ttys002\""), 16.0);
    assert_eq!(v("libproc_ttys", ""), 5.0);
    assert_eq!(v("libproc_ruid_processes", "uid=\"502\",user=\"bob\""), 3.0);
    // sudo: euid 0, ruid alice.
    assert_eq!(
        v("libproc_uid_processes", "uid=\"0\",user=\"root\"") + 1.0,
        v("libproc_ruid_processes", "uid=\"0\",user=\"root\"") + 5.0
    );
    assert_eq!(v("libproc_process_tree_depth_max", ""), 18.0);
    assert_eq!(v("libproc_process_descendants_max", ""), 61.0);
    assert_eq!(v("libproc_processes_per_user_limit", ""), 2784.0);
    assert_eq!(v("libproc_privileged", ""), 0.0);
    let total: f64 = ["created", "alive", "stopped", "zombie"]
        .iter()
        .map(|s| v("libproc_processes", &format!("state=\"{s}\"")))
        .sum();
    assert_eq!(total, 117.0);
    // alice's node, adopted by launchd when its build job's session ended, in 2024.
    assert_eq!(v("libproc_leftover_processes", "uid=\"501\",user=\"alice\",age=\"older\""), 1.0);
}

#[test]
fn series_of_a_gone_uid_tty_and_parent_disappear_on_the_next_scrape() {
    let (exporter, kernel) = mac_exporter(all_collectors());
    let a = exporter.scrape(None);
    for series in ["uid=\"502\"", "tty=\"ttys003\"", "ppid=\"600\""] {
        assert!(a.contains(series), "table A should have {series}");
    }
    {
        // bob logs out (his session on ttys003 ends) and the Xcode build finishes.
        let mut t = kernel.table();
        for pid in [503, 502, 501] {
            t.kill(pid);
        }
        for pid in 601..661 {
            t.kill(pid);
        }
        t.kill(600);
    }
    let b = exporter.scrape(None);
    // The resources counters are the exception, by design: a parent's reaped children's CPU
    // stays (for --collector.resources.forget-after) so a rate() over it stays right.
    let children = "libproc_ppid_children_cpu_seconds_total";
    let kept = |body: &str| {
        let labels = "ppid=\"600\",parent=\"xcodebuild\",mode=\"user\"";
        sample(body, children, labels)
    };
    assert_eq!(kept(&b), kept(&a), "xcodebuild's reaped clangs' CPU, as it was");
    let gauges: String =
        b.lines().filter(|l| !l.starts_with(children)).map(|l| format!("{l}\n")).collect();
    for series in ["uid=\"502\"", "tty=\"ttys003\"", "ppid=\"600\"", "user=\"bob\""] {
        assert!(!gauges.contains(series), "table B still has a series with {series}:\n{b}");
    }
    assert_eq!(sample(&b, "libproc_ttys", ""), Some(4.0));
    assert_eq!(sample(&b, "libproc_processes", "state=\"zombie\""), Some(1.0));
}

#[test]
fn caps_keep_the_largest_and_count_what_they_drop() {
    // 30 users with 1..=30 processes each, every process a child of its own parent with
    // that many children: 465 processes under 30 parents, 30 uids.
    let mut t = SimTable::booted();
    let mut pid = 100;
    for user in 0..30u32 {
        let parent = pid;
        t.insert(SimProc::new(parent, 1, &format!("parent{user}")).with_uid(1000 + user)).unwrap();
        pid += 1;
        for _ in 0..user {
            t.insert(SimProc::new(pid, parent, "child").with_uid(1000 + user)).unwrap();
            pid += 1;
        }
    }
    let total = (pid - 100 + 2) as f64;
    let kernel = SimKernel::new(t, 0);
    let limits = Limits { maxproc: Some(4176), ..Limits::default() };
    let source =
        DarwinSource::new(kernel, TtyDevices::Fixed(vec![]), Some(limits), BTreeMap::new(), 0);
    let capped = collectors_with(&[
        (&collect::uid::MAX_SERIES, 5),
        (&collect::ruid::MAX_SERIES, 7),
        (&collect::ppid::TOP_K, 3),
    ]);
    let exporter = Exporter::new(Box::new(source), capped, false);
    let body = exporter.scrape(None);
    let series = |name: &str| body.lines().filter(|l| l.starts_with(&format!("{name}{{"))).count();
    assert_eq!(series("libproc_uid_processes"), 5);
    assert_eq!(series("libproc_ruid_processes"), 7);
    assert_eq!(series("libproc_ppid_processes"), 3);
    // 31 uids (root has kernel_task and launchd), 5 kept; 31 - 7 for ruid.
    assert_eq!(sample(&body, "libproc_series_truncated", "collector=\"uid\""), Some(26.0));
    assert_eq!(sample(&body, "libproc_series_truncated", "collector=\"ruid\""), Some(24.0));
    // The largest are the ones kept: uid 1029 has 30 processes.
    assert_eq!(sample(&body, "libproc_uid_processes", "uid=\"1029\",user=\"1029\""), Some(30.0));
    assert_eq!(
        sample(&body, "libproc_ppid_processes", "ppid=\"1\",parent=\"launchd\""),
        Some(30.0)
    );
    // Totals stay exact whatever the caps dropped.
    let alive = sample(&body, "libproc_processes", "state=\"alive\"").unwrap();
    assert_eq!(alive, total);
    assert_eq!(sample(&body, "libproc_ppid_processes_max", ""), Some(30.0));
}

#[test]
fn a_failing_collector_reports_success_0_and_the_rest_still_serve() {
    // A kernel whose limits cannot be read: the limits collector fails, nothing else does.
    let mut t = SimTable::booted();
    t.insert(SimProc::new(100, 1, "worker")).unwrap();
    let source = DarwinSource::new(
        SimKernel::new(t, 0),
        TtyDevices::Fixed(vec![]),
        Some(Limits::default()),
        BTreeMap::new(),
        0,
    );
    let exporter = Exporter::new(Box::new(source), all_collectors(), false);
    let body = exporter.scrape(None);
    assert_eq!(
        sample(&body, "libproc_scrape_collector_success", "collector=\"limits\""),
        Some(0.0)
    );
    for ok in ["processes", "uid", "ruid", "tty", "ppid", "pgrp", "tree"] {
        assert_eq!(
            sample(&body, "libproc_scrape_collector_success", &format!("collector=\"{ok}\"")),
            Some(1.0),
            "{ok}"
        );
    }
    assert_eq!(sample(&body, "libproc_processes", "state=\"alive\""), Some(3.0));
    assert_eq!(sample(&body, "libproc_processes_limit", ""), None);
}

#[test]
fn collectors_that_miss_the_scrape_deadline_report_success_0() {
    let (exporter, _) = mac_exporter(all_collectors());
    let past = std::time::Instant::now() - std::time::Duration::from_secs(1);
    let body = exporter.scrape(Some(past));
    for info in collect::ALL {
        let labels = format!("collector=\"{}\"", info.name);
        assert_eq!(
            sample(&body, "libproc_scrape_collector_success", &labels),
            Some(0.0),
            "{}",
            info.name
        );
    }
    // What does not depend on a collector is still served.
    assert_eq!(sample(&body, "libproc_pids_unreadable", "reason=\"vanished\""), Some(0.0));
    assert!(sample(&body, "libproc_processes", "state=\"alive\"").is_none());
    // With time to spare, everything runs.
    let later = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let body = exporter.scrape(Some(later));
    assert_eq!(sample(&body, "libproc_scrape_collector_success", "collector=\"tree\""), Some(1.0));
}

#[test]
fn a_failed_snapshot_fails_every_collector_but_still_answers() {
    use libproc_exporter::libproc::{Errno, PROC_CALLNUM_LISTPIDS, sim::Call};
    let deny = |call: &Call, _: Option<&SimProc>| {
        (call.callnum == PROC_CALLNUM_LISTPIDS).then_some(Errno::EPERM)
    };
    let kernel = SimKernel::new(SimTable::booted(), 501).with_policy(Box::new(deny));
    let source = DarwinSource::new(
        kernel,
        TtyDevices::Fixed(vec![]),
        Some(Limits::default()),
        BTreeMap::new(),
        501,
    );
    let exporter = Exporter::new(Box::new(source), all_collectors(), true);
    let body = exporter.scrape(None);
    assert_eq!(
        sample(&body, "libproc_scrape_collector_success", "collector=\"processes\""),
        Some(0.0)
    );
    assert_eq!(sample(&body, "libproc_collections_total", ""), Some(1.0));
    assert!(
        sample(&body, "process_open_fds", "").is_some(),
        "the exporter's own metrics still serve"
    );
}
