//! The fleet view: what one host costs a central store (the series budget), whether the shipped
//! scrape limits hold the worst case, and a real fleet: 20 exporters, each replaying its own
//! table, scraped by a Prometheus agent that remote-writes to a central Prometheus, where the
//! per-host and fleet recording rules run and the fleet dashboard reads.
//!
//! The tables are generated here from the recorded Mac (tests/fixtures/snapshots/mac.json):
//! each host gets its own CI user, terminals, job size, zombies and limits, and the expected
//! values are counted from the generated tables themselves, not from the exporter.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::common::prometheus::{JOB, Prometheus, dashboard, scratch_dir, until_right};
use crate::common::{Exporter, TempDir, fixture, repo_root, require_tool};

/// Series Prometheus adds for every target beside what it scrapes: `up`,
/// `scrape_duration_seconds`, `scrape_samples_scraped`,
/// `scrape_samples_post_metric_relabeling` and `scrape_series_added`.
const SERIES_PROMETHEUS_ADDS: usize = 5;

/// The budget a recorded Mac at the default flags must stay within (issue 21).
const MAC_SERIES_BUDGET: usize = 400;

const SCRAPE_CONFIG: &str = "deploy/prometheus/prometheus.yml";

/// `PROC_FLAG_LP64`, and `PROC_FLAG_CONTROLT` (set whenever `tdev` is).
const LP64: u64 = 0x10;
const CONTROLT: u64 = 0x80;

/// The samples of a text exposition: every line that is neither a comment nor blank.
fn samples(body: &str) -> Vec<&str> {
    body.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
}

/// Samples of one family (`name{...}` or `name value`).
fn family_samples(body: &str, family: &str) -> usize {
    samples(body)
        .into_iter()
        .filter(|l| l.strip_prefix(family).is_some_and(|rest| rest.starts_with(['{', ' '])))
        .count()
}

/// An exporter replaying `table` with the default flags plus `extra`.
fn replay(table: &Path, extra: &[&str]) -> Exporter {
    let file = format!("--source.replay-file={}", table.display());
    let mut args = vec!["--source=replay", file.as_str()];
    args.extend_from_slice(extra);
    Exporter::start(&args)
}

/// `n` as the README writes numbers: 1,595.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).expect("README.md")
}

/// The collectors the README's Metrics section says are on by default.
fn readme_default_collectors() -> BTreeSet<String> {
    let readme = readme();
    let line = readme
        .lines()
        .find(|l| l.starts_with("Collectors on by default:"))
        .expect("README: a `Collectors on by default:` line");
    line.split('`').skip(1).step_by(2).map(String::from).collect()
}

/// The collectors that reported success on this scrape.
fn collectors_that_succeeded(body: &str) -> BTreeSet<String> {
    samples(body)
        .into_iter()
        .filter_map(|l| l.strip_prefix("libproc_scrape_collector_success{collector=\""))
        .filter_map(|rest| rest.strip_suffix("\"} 1"))
        .map(String::from)
        .collect()
}

#[test]
fn a_recorded_mac_at_the_defaults_stays_within_400_series() {
    let mac = replay(&fixture("snapshots/mac.json"), &[]);
    let body = mac.scrape();
    assert_eq!(
        collectors_that_succeeded(&body),
        readme_default_collectors(),
        "every default collector on (and only those), each one succeeding"
    );
    let series = samples(&body).len() + SERIES_PROMETHEUS_ADDS;
    assert!(
        series <= MAC_SERIES_BUDGET,
        "the recorded Mac costs {series} series at the defaults, over the budget of \
         {MAC_SERIES_BUDGET}:\n{body}"
    );
    let stated = format!("recorded Mac: {} series", thousands(series));
    assert!(readme().contains(&stated), "README's series budget should say `{stated}`");
}

/// A `limit: N` of the shipped scrape job, read from the file's one job (promtool checks the
/// file in tests/deploy; this only needs the numbers).
fn shipped_limit(key: &str) -> usize {
    let text = std::fs::read_to_string(repo_root().join(SCRAPE_CONFIG)).unwrap();
    let values: Vec<usize> = text
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().parse().unwrap_or_else(|e| panic!("{SCRAPE_CONFIG}: {key}: {v}: {e}")))
        .collect();
    assert_eq!(values.len(), 1, "{SCRAPE_CONFIG} should set {key} once: {values:?}");
    values[0]
}

/// One process of a generated table: running, no terminal, its own process group.
fn process(pid: u64, ppid: u64, uid: u64, comm: &str, uniqueid: u64) -> Value {
    let gid = if uid == 0 { 0 } else { 20 };
    // Its own session (recorded since the leftovers collector: without one, a replay's getsid
    // says ESRCH, as it did to the recorder), and what it used (recorded since resources),
    // different for every process so that every resources family fills its top K.
    let usage = json!({
        "user_ns": pid * 1_000_000, "system_ns": pid * 1_000, "child_user_ns": pid * 100,
        "child_system_ns": pid, "resident_bytes": pid * 4096, "footprint_bytes": pid * 2048,
        "disk": {"read": pid * 512, "written": pid * 256}
    });
    let mut p = json!({
        "pid": pid, "ppid": ppid, "pgid": pid, "euid": uid, "ruid": uid, "svuid": uid,
        "egid": gid, "rgid": gid, "status": 2, "flags": LP64, "comm": comm, "tdev": null,
        "zombie": false, "start_sec": 1_732_700_000 + pid, "start_usec": 0, "uniqueid": uniqueid,
        "sid": pid, "usage": usage
    });
    // getsid cannot ask about kernel_task (pid 0 means the caller, §10.1).
    if pid == 0 {
        p.as_object_mut().unwrap().remove("sid");
    }
    p
}

/// `process` on the terminal with device number `dev`.
fn on_tty(mut p: Value, dev: u64) -> Value {
    p["tdev"] = json!(dev);
    p["flags"] = json!(LP64 | CONTROLT);
    p
}

/// `process` exited and not yet reaped (as the recorded Mac's zombies: SZOMB, P_LP64 and
/// P_WEXIT set, no terminal).
fn zombie(mut p: Value) -> Value {
    p["status"] = json!(5);
    p["flags"] = json!(LP64 | 0x4);
    p["zombie"] = json!(true);
    // getsid gives ESRCH for a zombie (§10.1): none recorded.
    p.as_object_mut().unwrap().remove("sid");
    p
}

/// The device number of terminal `k` (ttys000 is 0x1000_0000, as on the recorded Mac).
fn tty_dev(k: u64) -> u64 {
    0x1000_0000 + k
}

/// A table that fills every cap at the defaults: 600 users (caps 500 in `uid` and `ruid`),
/// 600 terminals (cap 500), 12 parents with 50 children and 2 zombies each (top 10 in
/// `ppid`, twice), 30 command names (top 20 in `comm`), 25 users with a leftover in each
/// of the 4 age buckets (20 users in `leftovers`), and every process's usage (top 10 in each
/// `resources` family).
fn worst_case_table() -> Value {
    let mut uniqueid = 0;
    let mut next = || {
        uniqueid += 1;
        uniqueid
    };
    let mut procs = vec![process(0, 0, 0, "kernel_task", 0), process(1, 0, 0, "launchd", 1)];
    let parents: Vec<u64> = (100..112).collect();
    for &p in &parents {
        procs.push(process(p, 1, 0, &format!("parent{p}"), next()));
    }
    let mut ttys = Vec::new();
    let mut users = serde_json::Map::new();
    users.insert("0".into(), json!("root"));
    for j in 0..600u64 {
        let uid = 10_000 + j;
        users.insert(uid.to_string(), json!(format!("user{j}")));
        ttys.push(json!({"name": format!("ttys{j:03}"), "dev": tty_dev(j)}));
        let ppid = parents[(j % 12) as usize];
        let comm = format!("cmd{}", j % 30);
        procs.push(on_tty(process(1_000 + j, ppid, uid, &comm, next()), tty_dev(j)));
    }
    for z in 0..24u64 {
        procs.push(zombie(process(5_000 + z, parents[(z % 12) as usize], 0, "defunct", next())));
    }
    // Leftovers: adopted by launchd, group (and, replayed, session) 9_999, which is gone.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    for j in 0..25u64 {
        for (k, age) in [60, 1_000, 10_000, 1_000_000].into_iter().enumerate() {
            let mut p = process(6_000 + 4 * j + k as u64, 1, 10_000 + j, "leftover", next());
            p["pgid"] = json!(9_999);
            p["sid"] = json!(9_999);
            p["start_sec"] = json!(now - age);
            procs.push(p);
        }
    }
    json!({
        // Read as root: the leftovers' start times are readable, so they fill every age bucket.
        "format": "libproc-exporter/snapshot-v2", "os": "macos", "privileged": true,
        "caller_euid": 0,
        "limits": {
            "maxproc": 100_000, "maxprocperuid": 50_000, "ptmx_max": 999,
            "open_files": 20_000, "open_files_max": 122_880, "open_files_per_process_max": 61_440
        },
        "ttys": ttys, "users": users, "processes": procs
    })
}

#[test]
fn the_worst_case_at_the_default_caps_fits_the_shipped_scrape_limits() {
    let dir = TempDir::new("worst-case");
    let table = dir.write("worst.json", &worst_case_table().to_string());
    let exporter = replay(&table, &[]);
    let body = exporter.scrape();
    // The table reaches every cap, so this is the most a host serves at the defaults.
    for (family, cap) in [
        ("libproc_uid_processes", 500),
        ("libproc_ruid_processes", 500),
        ("libproc_tty_processes", 500),
        ("libproc_ppid_processes", 10),
        ("libproc_ppid_zombies", 10),
        ("libproc_comm_processes", 20),
        ("libproc_leftover_processes", 80),
        ("libproc_comm_cpu_seconds_total", 20),
        ("libproc_ruid_cpu_seconds_total", 20),
        ("libproc_ppid_children_cpu_seconds_total", 20),
        ("libproc_comm_resident_bytes", 10),
        ("libproc_ruid_footprint_bytes", 10),
        ("libproc_comm_disk_written_bytes_total", 10),
    ] {
        assert_eq!(family_samples(&body, family), cap, "{family} at its default cap");
    }
    let lines = samples(&body);
    let worst = lines.len();
    let stated = format!("a Mac at the default caps serves at most {} samples", thousands(worst));
    assert!(readme().contains(&stated), "README's series budget should say `{stated}`");

    // The shipped job accepts it, with room for declared command names and pgrp.
    let sample_limit = shipped_limit("sample_limit");
    assert!(
        worst + 100 <= sample_limit,
        "{SCRAPE_CONFIG}: sample_limit {sample_limit} leaves under 100 samples above the \
         worst case {worst}: a host at its caps would fail its scrapes whole"
    );
    // The labels a target adds in the shipped job: job, instance and host.
    let target_labels = 3;
    let mut most_labels = 0;
    let mut longest_name = 0;
    let mut longest_value = 0;
    for line in &lines {
        let Some((_, labels)) = line.split_once('{') else { continue };
        let labels = labels.rsplit_once('}').unwrap().0;
        // Values here never hold `",` (user names, commands and ttys of the table do not).
        let pairs: Vec<&str> = labels.split("\",").collect();
        // The metric name counts as a label (__name__) in Prometheus's label_limit.
        most_labels = most_labels.max(pairs.len() + 1 + target_labels);
        for pair in pairs {
            let (name, value) = pair.split_once("=\"").unwrap();
            longest_name = longest_name.max(name.len());
            longest_value = longest_value.max(value.trim_end_matches('"').len());
        }
    }
    // Room for service discovery's labels (site, role, team...), and for what a real host has
    // that this table does not: host names up to 253 bytes in `instance`, long user names.
    assert!(most_labels + 10 <= shipped_limit("label_limit"), "{most_labels} labels");
    assert!(longest_name * 2 <= shipped_limit("label_name_length_limit"), "{longest_name}");
    assert!(253 + ":10077".len() <= shipped_limit("label_value_length_limit"), "{longest_value}");
}

/// Host `i` of the test fleet: the recorded Mac itself (i = 0), or the recorded Mac with a CI
/// runner: its own user (even hosts share the `_gitlab` account, uid 300, for the runner),
/// `i % 5` extra terminals with a shell and a child each, a job of `16 i` compilers (so no two hosts have tables of one size), unreaped
/// zombies on every fourth host, a table at 90% of `kern.maxproc` on host 19, a user at
/// 90% of `kern.maxprocperuid` on host 18, 64 more open files a host, a file table at 85%
/// of `kern.maxfiles` on host 17, and `i % 3` leftovers besides the recorded Mac's one.
fn fleet_host(base: &Value, i: u64) -> Value {
    let mut table = base.clone();
    if i == 0 {
        return table;
    }
    let mut uniqueid = table["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["uniqueid"].as_u64())
        .max()
        .unwrap_or(0);
    let mut next = || {
        uniqueid += 1;
        uniqueid
    };
    let ci = 600 + i;
    table["users"][ci.to_string()] = json!(format!("ci{i:02}"));
    let runner_uid = if i % 2 == 0 { 300 } else { ci };
    table["users"]["300"] = json!("_gitlab");
    let mut added = vec![process(30_000, 1, runner_uid, "gitlab-runner", next())];
    for k in 0..i % 5 {
        // ttys000..ttys004 are the recorded Mac's; these follow them.
        let dev = tty_dev(5 + k);
        table["ttys"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": format!("ttys{:03}", 5 + k), "dev": dev}));
        let shell = 31_000 + 10 * k;
        added.push(on_tty(process(shell, 30_000, ci, "zsh", next()), dev));
        added.push(on_tty(process(shell + 1, shell, ci, "ssh", next()), dev));
    }
    for c in 0..16 * i {
        added.push(process(32_000 + c, 30_000, ci, "swift-frontend", next()));
    }
    // Each job leaves i % 3 simulators behind: adopted by launchd, their group (39_999) gone.
    for k in 0..i % 3 {
        let mut left = process(34_000 + k, 1, ci, "simctl", next());
        left["pgid"] = json!(39_999);
        added.push(left);
    }
    if i % 4 == 1 {
        for z in 0..i / 4 + 1 {
            added.push(zombie(process(33_000 + z, 30_000, ci, "swift-frontend", next())));
        }
    }
    table["processes"].as_array_mut().unwrap().extend(added);
    let expected = Expected::of(&table);
    if i == 19 {
        table["limits"]["maxproc"] = json!(expected.processes * 10 / 9);
    }
    if i == 18 {
        table["limits"]["maxprocperuid"] = json!(expected.busiest_limited_user() * 10 / 9);
    }
    let open_files =
        if i == 17 { expected.maxfiles * 17 / 20 } else { expected.open_files + 64 * i };
    table["limits"]["open_files"] = json!(open_files);
    table
}

/// What a host's exporter must report, counted from its table.
struct Expected {
    processes: u64,
    zombies: u64,
    /// Processes per real uid.
    ruid: BTreeMap<String, u64>,
    /// Processes per terminal name.
    tty: BTreeMap<String, u64>,
    maxproc: u64,
    maxprocperuid: u64,
    /// Processes named gitlab-runner (declared with --collector.comm.names, so always shown).
    runners: u64,
    /// Leftover processes: adopted by launchd (session 1) with their group gone; every such
    /// process of these tables is in a session of its own.
    leftovers: u64,
    /// Open files and `kern.maxfiles`.
    open_files: u64,
    maxfiles: u64,
}

impl Expected {
    fn of(table: &Value) -> Expected {
        let names: BTreeMap<u64, String> = table["ttys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["dev"].as_u64().unwrap(), t["name"].as_str().unwrap().to_string()))
            .collect();
        let procs = table["processes"].as_array().unwrap();
        let mut ruid = BTreeMap::new();
        let mut tty = BTreeMap::new();
        for p in procs {
            *ruid.entry(p["ruid"].to_string()).or_default() += 1;
            if let Some(dev) = p["tdev"].as_u64() {
                *tty.entry(names[&dev].clone()).or_default() += 1;
            }
        }
        Expected {
            processes: procs.len() as u64,
            zombies: procs.iter().filter(|p| p["zombie"] == true).count() as u64,
            ruid,
            tty,
            maxproc: table["limits"]["maxproc"].as_u64().unwrap(),
            maxprocperuid: table["limits"]["maxprocperuid"].as_u64().unwrap(),
            runners: procs.iter().filter(|p| p["comm"] == "gitlab-runner").count() as u64,
            leftovers: procs
                .iter()
                .filter(|p| p["ppid"] == 1 && p["zombie"] == false)
                .filter(|p| !procs.iter().any(|q| q["pid"] == p["pgid"] && q["zombie"] == false))
                .count() as u64,
            open_files: table["limits"]["open_files"].as_u64().unwrap(),
            maxfiles: table["limits"]["open_files_max"].as_u64().unwrap(),
        }
    }

    /// The most processes of one real uid other than root (xnu exempts root from the
    /// per-user limit).
    fn busiest_limited_user(&self) -> u64 {
        self.ruid.iter().filter(|(uid, _)| *uid != "0").map(|(_, n)| *n).max().unwrap_or(0)
    }

    fn table_ratio(&self) -> f64 {
        self.processes as f64 / self.maxproc as f64
    }

    fn user_ratio(&self) -> f64 {
        self.busiest_limited_user() as f64 / self.maxprocperuid as f64
    }

    fn files_ratio(&self) -> f64 {
        self.open_files as f64 / self.maxfiles as f64
    }
}

/// The site a host is in: two sites of ten, so the fleet sums are per site.
fn site(i: usize) -> &'static str {
    if i < 10 { "ber" } else { "ams" }
}

/// An instant query as a map from the values of `labels` to the sample value.
fn vector(
    prom: &Prometheus,
    expr: &str,
    labels: &[&str],
) -> Result<BTreeMap<Vec<String>, f64>, String> {
    let mut out = BTreeMap::new();
    for sample in prom.query(expr)? {
        let key = labels
            .iter()
            .map(|l| sample["metric"][*l].as_str().unwrap_or_default().to_string())
            .collect();
        let value: f64 =
            sample["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
        out.insert(key, value);
    }
    Ok(out)
}

/// Compares a query with what the tables say, to a relative 1e-9 (ratios are divisions).
fn expect_vector(
    failures: &mut Vec<String>,
    prom: &Prometheus,
    expr: &str,
    labels: &[&str],
    want: BTreeMap<Vec<String>, f64>,
) {
    match vector(prom, expr, labels) {
        Err(e) => failures.push(format!("{expr}: {e}")),
        Ok(got) => {
            let same = got.len() == want.len()
                && got.iter().zip(&want).all(|((gk, gv), (wk, wv))| {
                    gk == wk && (gv - wv).abs() <= 1e-9 * wv.abs().max(1.0)
                });
            if !same {
                failures.push(format!("{expr}:\n    got  {got:?}\n    want {want:?}"));
            }
        }
    }
}

/// One round of checks against the central store; what is not (yet) right.
fn check_store(prom: &Prometheus, hosts: &[(String, Expected)], fleet: &Value) -> Vec<String> {
    let mut failures = Vec::new();
    let per_host = |f: &dyn Fn(&Expected) -> f64| -> BTreeMap<Vec<String>, f64> {
        hosts.iter().map(|(instance, e)| (vec![instance.clone()], f(e))).collect()
    };
    let per_site = |f: &dyn Fn(&[&Expected]) -> f64| -> BTreeMap<Vec<String>, f64> {
        ["ber", "ams"]
            .iter()
            .map(|s| {
                let members: Vec<&Expected> = hosts
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| site(*i) == *s)
                    .map(|(_, (_, e))| e)
                    .collect();
                (vec![s.to_string()], f(&members))
            })
            .collect()
    };

    // Every host, exactly.
    let i = &["instance"];
    expect_vector(
        &mut failures,
        prom,
        "instance:libproc_processes:sum",
        i,
        per_host(&|e| e.processes as f64),
    );
    expect_vector(
        &mut failures,
        prom,
        "instance:libproc_zombies:sum",
        i,
        per_host(&|e| e.zombies as f64),
    );
    expect_vector(&mut failures, prom, "libproc_ttys", i, per_host(&|e| e.tty.len() as f64));
    expect_vector(
        &mut failures,
        prom,
        "instance:libproc_processes_limit:headroom",
        i,
        per_host(&|e| (e.maxproc - e.processes) as f64),
    );
    expect_vector(
        &mut failures,
        prom,
        "instance:libproc_processes_per_user_limit:headroom",
        i,
        per_host(&|e| (e.maxprocperuid - e.busiest_limited_user()) as f64),
    );
    expect_vector(&mut failures, prom, "libproc_open_files", i, per_host(&|e| e.open_files as f64));
    expect_vector(
        &mut failures,
        prom,
        "instance:libproc_leftover_processes:sum",
        i,
        per_host(&|e| e.leftovers as f64),
    );
    let mut ruid = BTreeMap::new();
    let mut tty = BTreeMap::new();
    for (instance, e) in hosts {
        for (uid, n) in &e.ruid {
            ruid.insert(vec![instance.clone(), uid.clone()], *n as f64);
        }
        for (name, n) in &e.tty {
            tty.insert(vec![instance.clone(), name.clone()], *n as f64);
        }
    }
    expect_vector(&mut failures, prom, "libproc_ruid_processes", &["instance", "uid"], ruid);
    expect_vector(&mut failures, prom, "libproc_tty_processes", &["instance", "tty"], tty);

    // The fleet sums, per site (the shipped job keeps the discovery label `site`).
    let s = &["site"];
    let sum =
        |f: fn(&Expected) -> u64| move |m: &[&Expected]| m.iter().map(|e| f(e)).sum::<u64>() as f64;
    let count =
        |f: fn(&Expected) -> bool| move |m: &[&Expected]| m.iter().filter(|e| f(e)).count() as f64;
    expect_vector(
        &mut failures,
        prom,
        "job:libproc_processes:sum",
        s,
        per_site(&sum(|e| e.processes)),
    );
    expect_vector(&mut failures, prom, "job:libproc_zombies:sum", s, per_site(&sum(|e| e.zombies)));
    expect_vector(
        &mut failures,
        prom,
        "job:libproc_ttys:sum",
        s,
        per_site(&sum(|e| e.tty.len() as u64)),
    );
    expect_vector(&mut failures, prom, "job:libproc_hosts:count", s, per_site(&|m| m.len() as f64));
    expect_vector(
        &mut failures,
        prom,
        "job:libproc_hosts_up:sum",
        s,
        per_site(&|m| m.len() as f64),
    );
    expect_vector(
        &mut failures,
        prom,
        r#"job_comm:libproc_comm_processes:sum{comm="gitlab-runner"}"#,
        s,
        per_site(&sum(|e| e.runners)),
    );
    expect_vector(
        &mut failures,
        prom,
        "job:libproc_processes_limit_headroom:min",
        s,
        per_site(&|m| m.iter().map(|e| e.maxproc - e.processes).min().unwrap() as f64),
    );
    expect_vector(
        &mut failures,
        prom,
        "job:libproc_processes_limit_headroom:max",
        s,
        per_site(&|m| m.iter().map(|e| e.maxproc - e.processes).max().unwrap() as f64),
    );
    expect_vector(
        &mut failures,
        prom,
        "job:libproc_processes_limit:ratio_max",
        s,
        per_site(&|m| m.iter().map(|e| e.table_ratio()).fold(0.0, f64::max)),
    );
    expect_vector(
        &mut failures,
        prom,
        "job:libproc_processes_limit:ratio_min",
        s,
        per_site(&|m| m.iter().map(|e| e.table_ratio()).fold(f64::INFINITY, f64::min)),
    );
    expect_vector(
        &mut failures,
        prom,
        "job:libproc_ruid_processes_per_user_limit:ratio_max",
        s,
        per_site(&|m| m.iter().map(|e| e.user_ratio()).fold(0.0, f64::max)),
    );
    expect_vector(
        &mut failures,
        prom,
        "job:libproc_hosts_near_process_limit:count",
        s,
        per_site(&count(|e| e.table_ratio() > 0.8)),
    );
    expect_vector(
        &mut failures,
        prom,
        "job:libproc_hosts_near_per_user_limit:count",
        s,
        per_site(&count(|e| e.user_ratio() > 0.8)),
    );
    expect_vector(
        &mut failures,
        prom,
        "job:libproc_leftover_processes:sum",
        s,
        per_site(&sum(|e| e.leftovers)),
    );
    expect_vector(
        &mut failures,
        prom,
        "job:libproc_open_files_limit:ratio_max",
        s,
        per_site(&|m| m.iter().map(|e| e.files_ratio()).fold(0.0, f64::max)),
    );
    expect_vector(
        &mut failures,
        prom,
        "job:libproc_hosts_near_open_files_limit:count",
        s,
        per_site(&count(|e| e.files_ratio() > 0.8)),
    );
    let mut users: BTreeMap<Vec<String>, f64> = BTreeMap::new();
    for (n, (_, e)) in hosts.iter().enumerate() {
        for (uid, count) in &e.ruid {
            *users.entry(vec![site(n).to_string(), uid.clone()]).or_default() += *count as f64;
        }
    }
    expect_vector(
        &mut failures,
        prom,
        "job_uid:libproc_ruid_processes:sum",
        &["site", "uid"],
        users,
    );

    failures.extend(crate::prometheus_e2e::fleet_dashboard_failures(prom, fleet));
    failures
}

/// The flag that starts Prometheus as an agent: `--enable-feature=agent` on 2.x (Debian's),
/// `--agent` from 3.0.
fn agent_flag(prometheus: &Path) -> &'static str {
    let out = std::process::Command::new(prometheus).arg("--version").output().unwrap();
    let version =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if version.contains("version 2.") { "--enable-feature=agent" } else { "--agent" }
}

#[test]
#[ignore = "needs prometheus and ruby (scripts/setup.sh installs them)"]
fn twenty_hosts_through_an_agent_into_a_central_store_add_up_exactly() {
    let _quiet = crate::common::machine_exclusive();
    let started = Instant::now();
    let base: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("snapshots/mac.json")).expect("the recorded Mac"),
    )
    .unwrap();
    let dir = TempDir::new("fleet");
    let tables: Vec<Value> = (0..20).map(|i| fleet_host(&base, i)).collect();
    let exporters: Vec<Exporter> = tables
        .iter()
        .enumerate()
        .map(|(i, table)| {
            let file = dir.write(&format!("host{i:02}.json"), &table.to_string());
            replay(&file, &["--collector.comm.names=gitlab-runner"])
        })
        .collect();
    let hosts: Vec<(String, Expected)> =
        exporters.iter().zip(&tables).map(|(e, t)| (e.addr.to_string(), Expected::of(t))).collect();
    assert_eq!(
        hosts.iter().map(|(_, e)| e.processes).collect::<BTreeSet<_>>().len(),
        20,
        "every host has a table of its own size"
    );

    // The central store: remote-write receiver, evaluating the shipped rules.
    let rules =
        ["libproc_exporter.rules.yml", "libproc_fleet.rules.yml", "libproc_exporter.alerts.yml"]
            .map(|f| format!("  - {}\n", repo_root().join("deploy/prometheus").join(f).display()))
            .concat();
    let store_dir = scratch_dir("fleet_store");
    let store_data = format!("--storage.tsdb.path={}", store_dir.join("data").display());
    let store = Prometheus::launch(
        store_dir,
        &format!("global:\n  evaluation_interval: 1s\nrule_files:\n{rules}"),
        &[&store_data, "--web.enable-remote-write-receiver"],
    );

    // The agent: the shipped job (limits, relabeling) with a 1 s interval and the targets in
    // two sites, remote-writing to the store.
    let agent_dir = scratch_dir("fleet_agent");
    let groups: Vec<Value> = exporters
        .iter()
        .enumerate()
        .map(|(i, e)| json!({"targets": [e.addr.to_string()], "labels": {"site": site(i)}}))
        .collect();
    std::fs::write(agent_dir.join("targets.json"), Value::Array(groups).to_string()).unwrap();
    let mut job = crate::deploy::yaml(SCRAPE_CONFIG)["scrape_configs"][0].clone();
    assert_eq!(job["job_name"], JOB);
    job["scrape_interval"] = json!("1s");
    job["scrape_timeout"] = json!("1s");
    job["file_sd_configs"] = json!([{"files": [agent_dir.join("targets.json")]}]);
    // JSON is YAML: the config goes in as JSON.
    let agent_config = json!({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [job],
        "remote_write": [{
            "url": format!("http://{}/api/v1/write", store.addr),
            "queue_config": {"batch_send_deadline": "1s", "min_backoff": "100ms", "max_backoff": "1s"}
        }]
    });
    let prometheus = require_tool("prometheus", "apt-get install prometheus");
    let agent_data = format!("--storage.agent.path={}", agent_dir.join("data").display());
    let agent = Prometheus::launch(
        agent_dir,
        &agent_config.to_string(),
        &[agent_flag(&prometheus), &agent_data],
    );

    let fleet = dashboard("dashboards/libproc_fleet.json");
    let rounds = until_right(
        Duration::from_secs(60),
        || check_store(&store, &hosts, &fleet),
        || format!("--- agent log:\n{}\n--- store log:\n{}", agent.log(), store.log()),
    );
    let took = started.elapsed();
    eprintln!("fleet of 20: exact after {rounds} rounds, {:.1} s in all", took.as_secs_f64());
    assert!(took < Duration::from_secs(120), "the fleet test took {took:?}, over 2 minutes");
}

#[test]
fn thousands_groups_digits_as_the_readme_does() {
    assert_eq!(thousands(7), "7");
    assert_eq!(thousands(107), "107");
    assert_eq!(thousands(1595), "1,595");
    assert_eq!(thousands(150_000), "150,000");
}
