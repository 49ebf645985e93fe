//! The `leftovers` collector on the simulated Mac (§10.5): the same three cases as on Linux
//! against real processes, read as root (start times from full BSD info) and as a user
//! (another user's leftovers dated from first sight), with `getsid` asked only about the
//! processes whose group leader is gone and their parents.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use libproc_exporter::collect;
use libproc_exporter::host::Limits;
use libproc_exporter::libproc::sim::{SimKernel, SimProc, SimTable};
use libproc_exporter::metrics::Exporter;
use libproc_exporter::table::darwin::{DarwinSource, TtyDevices};

use crate::common::sample;

/// A process of `uid` in group `pgid` and session `sid`, started `age` seconds ago.
fn proc(pid: i32, ppid: i32, pgid: i32, sid: i32, uid: u32, age: u64) -> SimProc {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut p = SimProc::new(pid, ppid, "p").with_uid(uid);
    p.pgid = pgid;
    p.sid = sid;
    p.start_sec = now - age;
    p
}

/// A Mac with alice's terminal (login shell 100, its child 101, a pipeline whose leader 102
/// exited and was reaped, leaving 103) and bob's job (session 200) gone, its two children
/// adopted by launchd.
fn table() -> SimTable {
    let mut t = SimTable::booted();
    for p in [
        proc(100, 1, 100, 100, 501, 4000),
        proc(101, 100, 101, 100, 501, 100),
        proc(102, 100, 102, 100, 501, 100),
        proc(103, 100, 102, 100, 501, 100),
        proc(200, 1, 200, 200, 502, 7200),
        proc(201, 200, 200, 200, 502, 30),
        proc(202, 200, 200, 200, 502, 7100),
    ] {
        t.insert(p).unwrap();
    }
    t.kill(102);
    t.kill(200);
    t
}

fn scrape(caller_euid: u32) -> (String, u64) {
    let kernel = Arc::new(SimKernel::new(table(), caller_euid));
    let source = DarwinSource::new(
        kernel.clone(),
        TtyDevices::Fixed(vec![]),
        Some(Limits::default()),
        BTreeMap::new(),
        caller_euid,
    );
    let leftovers = collect::find("leftovers").unwrap().default_instance();
    let exporter = Exporter::new(Box::new(source), vec![leftovers], false);
    let before = kernel.calls();
    let body = exporter.scrape(None);
    (body, kernel.calls() - before)
}

fn leftovers(body: &str, uid: u32, age: &str) -> Option<f64> {
    sample(
        body,
        "libproc_leftover_processes",
        &format!("uid=\"{uid}\",user=\"{uid}\",age=\"{age}\""),
    )
}

#[test]
fn root_reads_start_times_and_counts_only_the_adopted_job() {
    let (body, _) = scrape(0);
    assert_eq!(leftovers(&body, 502, "5m"), Some(1.0), "{body}");
    assert_eq!(leftovers(&body, 502, "1d"), Some(1.0), "{body}");
    assert_eq!(body.matches("libproc_leftover_processes{").count(), 2, "{body}");
}

#[test]
fn a_user_dates_other_users_leftovers_from_first_sight_at_a_few_calls_each() {
    let (body, calls) = scrape(501);
    // bob's processes cannot be read in full by alice: both are dated from now.
    assert_eq!(leftovers(&body, 502, "5m"), Some(2.0), "{body}");
    assert_eq!(body.matches("libproc_leftover_processes{").count(), 1, "{body}");
    // Against the same table with every group led: getsid for 103, 201, 202 and the parents
    // 100 and 1; full BSD info for each candidate (103 answers, alice's own), then the
    // uniqueid for 201 and 202.
    let mut led = table();
    for pid in [103, 201, 202] {
        led.get_mut(pid).unwrap().pgid = pid;
    }
    let kernel = Arc::new(SimKernel::new(led, 501));
    let source = DarwinSource::new(
        kernel.clone(),
        TtyDevices::Fixed(vec![]),
        Some(Limits::default()),
        BTreeMap::new(),
        501,
    );
    let exporter = Exporter::new(Box::new(source), vec![], false);
    let before = kernel.calls();
    exporter.scrape(None);
    assert_eq!(calls - (kernel.calls() - before), 5 + 3 + 2);
}
