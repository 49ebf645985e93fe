//! `libproc_comm_processes`: the top K command names by count, what the cap drops counted in
//! `libproc_series_truncated`, and declared names that always have a series.

use std::collections::BTreeMap;

use libproc_exporter::collect::{self, Settings};
use libproc_exporter::libproc::sim::{SimKernel, SimProc, SimTable};
use libproc_exporter::metrics::Exporter;
use libproc_exporter::table::darwin::{DarwinSource, TtyDevices};

use crate::common::sample;

/// kernel_task, launchd, 30 clang, 20 node, 5 zsh, 2 cron and 1 of each of 10 one-off names.
fn table() -> SimTable {
    let mut t = SimTable::booted();
    let mut pid = 100;
    let mut add = |comm: &str, n: usize, t: &mut SimTable| {
        for _ in 0..n {
            t.insert(SimProc::new(pid, 1, comm)).unwrap();
            pid += 1;
        }
    };
    for (comm, n) in [("clang", 30), ("node", 20), ("zsh", 5), ("cron", 2)] {
        add(comm, n, &mut t);
    }
    for i in 0..10 {
        add(&format!("oneoff{i}"), 1, &mut t);
    }
    t
}

fn scrape(top_k: u64, names: &[&str]) -> String {
    let definition = collect::find("comm").unwrap();
    let settings = Settings::default()
        .with(&collect::comm::TOP_K, top_k)
        .with_list(&collect::comm::NAMES, names.iter().map(|n| n.to_string()).collect());
    let source = DarwinSource::new(
        SimKernel::new(table(), 0),
        TtyDevices::Fixed(vec![]),
        None,
        BTreeMap::new(),
        0,
    );
    Exporter::new(Box::new(source), vec![definition.instance(&settings)], false).scrape(None)
}

fn comm_series(body: &str) -> Vec<String> {
    body.lines()
        .filter(|l| l.starts_with("libproc_comm_processes{"))
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn the_top_k_names_are_shown_and_the_rest_counted_as_truncated() {
    let body = scrape(3, &[]);
    assert_eq!(
        comm_series(&body),
        [
            "libproc_comm_processes{comm=\"clang\"} 30",
            "libproc_comm_processes{comm=\"node\"} 20",
            "libproc_comm_processes{comm=\"zsh\"} 5",
        ]
    );
    // cron, kernel_task, launchd and the ten one-offs: 13 names dropped.
    assert_eq!(sample(&body, "libproc_series_truncated", "collector=\"comm\""), Some(13.0));
}

#[test]
fn a_declared_name_that_no_process_has_is_0_and_declared_names_take_no_top_k_place() {
    let body = scrape(2, &["sshd", "cron", "oneoff7"]);
    assert_eq!(
        comm_series(&body),
        [
            "libproc_comm_processes{comm=\"clang\"} 30",
            "libproc_comm_processes{comm=\"cron\"} 2",
            "libproc_comm_processes{comm=\"node\"} 20",
            "libproc_comm_processes{comm=\"oneoff7\"} 1",
            "libproc_comm_processes{comm=\"sshd\"} 0",
        ]
    );
    // zsh, kernel_task, launchd and nine one-offs: the declared ones are not truncation.
    assert_eq!(sample(&body, "libproc_series_truncated", "collector=\"comm\""), Some(12.0));
}
