//! Unit tests of the `resources` collector: its counters across scrapes, by identity.

use super::*;
use crate::collect::Settings;
use crate::table::{Snapshot, Usage};
use crate::users::UserNames;

const S: u64 = 1_000_000_000;

/// A process `pid` started at `born`, named `comm`, of uid `ruid`, having used `user` and
/// `system` ns of CPU and reaped children worth `child` ns of user CPU.
fn proc(pid: Pid, born: u64, comm: &str, ruid: u32, cpu: [u64; 3]) -> Process {
    let usage = Usage {
        user_ns: cpu[0],
        system_ns: cpu[1],
        child_user_ns: cpu[2],
        resident_bytes: 1 << 20,
        ..Usage::default()
    };
    Process {
        ruid,
        start: Some(StartTime { sec: born, usec: 0 }),
        usage: Some(usage),
        ..Process::sample(pid, 1, comm)
    }
}

fn snapshot(processes: Vec<Process>) -> Snapshot {
    Snapshot::sample(Os::Linux, processes)
}

/// The families of one scrape of `table` at `now`, as (name, labels) -> value.
fn scrape(
    r: &Resources,
    table: Vec<Process>,
    now: Instant,
) -> (HashMap<(String, Vec<String>), f64>, u64) {
    let snapshot = snapshot(table);
    let users = UserNames::new();
    let mut out = Output::default();
    r.collect_at(&Context { snapshot: &snapshot, users: &users }, &mut out, now);
    let mut values = HashMap::new();
    for f in out.families {
        for s in f.samples {
            let key = (f.name.to_string(), s.labels);
            assert!(values.insert(key, s.value).is_none(), "duplicate series in {}", f.name);
        }
    }
    (values, out.truncated)
}

fn comm_cpu(values: &HashMap<(String, Vec<String>), f64>, comm: &str, mode: &str) -> f64 {
    let key = ("libproc_comm_cpu_seconds_total".into(), vec![comm.into(), mode.into()]);
    values.get(&key).copied().unwrap_or(f64::NAN)
}

fn resources(top_k: usize, declared: &[&str]) -> Resources {
    let names: Vec<String> = declared.iter().map(|s| s.to_string()).collect();
    Resources::new(top_k, Duration::from_secs(3600), &names, false)
}

#[test]
fn an_exited_process_keeps_what_it_had_and_a_reused_pid_adds_without_subtracting() {
    let r = resources(10, &[]);
    let t = Instant::now();
    let (v, _) = scrape(&r, vec![proc(7, 100, "cc1", 0, [3 * S, S, 0])], t);
    assert_eq!((comm_cpu(&v, "cc1", "user"), comm_cpu(&v, "cc1", "system")), (3.0, 1.0));
    // pid 7 exited and was taken by a new cc1 that has used less so far.
    let (v, _) = scrape(&r, vec![proc(7, 200, "cc1", 0, [S, 0, 0])], t);
    assert_eq!(comm_cpu(&v, "cc1", "user"), 4.0, "3 s of the first, 1 s of the second");
    // Gone altogether: the counter stays.
    let (v, _) = scrape(&r, vec![], t);
    assert_eq!(comm_cpu(&v, "cc1", "user"), 4.0);
}

#[test]
fn exec_keeps_what_the_old_command_got_and_the_new_one_gets_only_what_follows() {
    let r = resources(10, &[]);
    let t = Instant::now();
    scrape(&r, vec![proc(9, 100, "sh", 0, [S, 0, 0])], t);
    let (v, _) = scrape(&r, vec![proc(9, 100, "make", 0, [3 * S, 0, 0])], t);
    assert_eq!((comm_cpu(&v, "sh", "user"), comm_cpu(&v, "make", "user")), (1.0, 2.0));
    let ruid = ("libproc_ruid_cpu_seconds_total".to_string(), vec!["0".into(), "root".into(), "user".into()]);
    assert_eq!(v.get(&ruid).copied(), Some(3.0), "the user got all of it");
}

#[test]
fn reaped_childrens_cpu_is_its_parents_and_survives_the_parents_pid_being_reused() {
    let r = resources(10, &[]);
    let t = Instant::now();
    let key = |mode: &str| {
        let labels = vec!["40".to_string(), "make".to_string(), mode.to_string()];
        ("libproc_ppid_children_cpu_seconds_total".to_string(), labels)
    };
    let (v, _) = scrape(&r, vec![proc(40, 100, "make", 0, [0, 0, 2 * S])], t);
    assert_eq!((v.get(&key("user")), v.get(&key("system"))), (Some(&2.0), Some(&0.0)));
    // A new make under the same pid has reaped less so far: it adds, never subtracts.
    let (v, _) = scrape(&r, vec![proc(40, 300, "make", 0, [0, 0, S / 2])], t);
    assert_eq!(v.get(&key("user")), Some(&2.5));
    // The same make execs (xnu >= 8792 restarts its children's times from 0, §9.4): what
    // it shows after is new, not a subtraction.
    let (v, _) = scrape(&r, vec![proc(40, 300, "make", 0, [0, 0, S / 10])], t);
    assert_eq!(v.get(&key("user")), Some(&2.6));
    // A process that reaped nothing is no parent series.
    assert!(!v.keys().any(|(name, l)| name.contains("children") && l[1] != "make"));
}

#[test]
fn one_new_process_burning_cpu_shows_above_older_bigger_totals() {
    let r = resources(2, &["sshd"]);
    let t = Instant::now();
    let old = |pid, comm: &str, cpu| proc(pid, 1, comm, 0, [cpu, 0, 0]);
    let first = vec![old(2, "a", 100 * S), old(3, "b", 90 * S), old(4, "c", 80 * S)];
    let (v, truncated) = scrape(&r, first.clone(), t);
    assert!(comm_cpu(&v, "c", "user").is_nan(), "third by CPU, cap 2");
    assert_eq!(comm_cpu(&v, "sshd", "user"), 0.0, "declared: shown at 0");
    // 3 command groups (cpu) + 3 (resident), one of each dropped; ruid groups: 1.
    assert_eq!(truncated, 2 + 1);
    let mut second = first;
    second.push(old(5, "burner", 4 * S));
    let (v, _) = scrape(&r, second, t);
    assert_eq!(comm_cpu(&v, "burner", "user"), 4.0, "used the most since the last scrape");
}

#[test]
fn idle_groups_are_forgotten_after_forget_after_but_declared_names_are_not() {
    let r = Resources::new(10, Duration::from_secs(60), &["sshd".to_string()], false);
    let t = Instant::now();
    scrape(&r, vec![proc(2, 1, "a", 0, [S, 0, 0]), proc(3, 1, "sshd", 0, [S, 0, 0])], t);
    let (v, _) = scrape(&r, vec![], t + Duration::from_secs(60));
    assert_eq!(comm_cpu(&v, "a", "user"), 1.0, "idle for exactly forget-after: kept");
    let (v, _) = scrape(&r, vec![], t + Duration::from_secs(61));
    assert!(comm_cpu(&v, "a", "user").is_nan(), "forgotten");
    assert_eq!(comm_cpu(&v, "sshd", "user"), 1.0, "declared: never restarts lower");
    let state = r.state.lock().unwrap();
    assert!(state.processes.is_empty() && state.ruid_cpu.is_empty());
}

#[test]
fn a_group_never_shown_is_dropped_with_its_last_process_a_shown_one_is_remembered() {
    let r = resources(1, &[]);
    let t = Instant::now();
    let table = vec![proc(2, 1, "big", 0, [9 * S, 0, 0]), proc(3, 1, "small", 0, [S, 0, 0])];
    scrape(&r, table, t);
    scrape(&r, vec![], t + Duration::from_secs(1));
    let state = r.state.lock().unwrap();
    let comms: Vec<String> = state.comm_cpu.keys().map(|c| c.to_string()).collect();
    assert_eq!(comms, ["big"], "small was never shown: nobody can see it restart");
}

#[test]
fn unreadable_processes_add_nothing_and_are_counted_by_reason() {
    let r = resources(10, &[]);
    let mut unread = Process::sample(8, 1, "secret");
    unread.usage = None;
    let mut table = snapshot(vec![proc(2, 1, "a", 0, [S, 0, 0]), unread]);
    table.unreadable.vanished = 2;
    table.usage_unreadable.permission = 1;
    let users = UserNames::new();
    let mut out = Output::default();
    r.collect_at(&Context { snapshot: &table, users: &users }, &mut out, Instant::now());
    let family = |name: &str| out.families.iter().find(|f| f.name == name).unwrap();
    let comms: Vec<&str> = family("libproc_comm_resident_bytes")
        .samples
        .iter()
        .map(|s| s.labels[0].as_str())
        .collect();
    assert_eq!(comms, ["a"], "no zero series for the unreadable one");
    assert_eq!(family("libproc_resource_readable_processes").samples[0].value, 1.0);
    let reasons: Vec<(&str, f64)> = family("libproc_resource_unreadable_processes")
        .samples
        .iter()
        .map(|s| (s.labels[0].as_str(), s.value))
        .collect();
    assert_eq!(reasons, [("permission", 1.0), ("vanished", 2.0), ("other", 0.0)]);
}

/// xorshift64*: deterministic, so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[test]
fn no_counter_ever_decreases_under_exits_pid_reuse_and_exec() {
    for seed in 1..=200u64 {
        let r = resources(3, &["c0"]);
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let t = Instant::now();
        // pid -> (birth, comm index, ruid, cpu so far)
        let mut live: HashMap<Pid, (u64, u64, u32, [u64; 3])> = HashMap::new();
        let mut last: HashMap<(String, Vec<String>), f64> = HashMap::new();
        let mut birth = 0;
        for step in 0..40 {
            for _ in 0..rng.below(6) {
                // Few pids, so they are reused often; a reused pid is a new birth.
                let pid = rng.below(8) as Pid + 2;
                birth += 1;
                let (comm, uid) = (rng.below(5), rng.below(3) as u32);
                live.insert(pid, (birth, comm, uid, [0; 3]));
            }
            let pids: Vec<Pid> = live.keys().copied().collect();
            for pid in pids {
                match rng.below(10) {
                    0 | 1 => {
                        live.remove(&pid);
                    }
                    2 => live.get_mut(&pid).unwrap().1 = rng.below(5),
                    _ => {}
                }
                if let Some(p) = live.get_mut(&pid) {
                    for figure in &mut p.3 {
                        *figure += rng.below(3 * S);
                    }
                }
            }
            let table = live
                .iter()
                .map(|(&pid, &(born, comm, uid, cpu))| {
                    proc(pid, born, &format!("c{comm}"), uid, cpu)
                })
                .collect();
            let (values, _) = scrape(&r, table, t + Duration::from_secs(step));
            for (key, value) in &values {
                let counter = key.0.ends_with("_total");
                if let Some(before) = last.get(key).filter(|_| counter) {
                    assert!(value >= before, "seed {seed} step {step}: {key:?} {before} -> {value}");
                }
            }
            // A series not shown this scrape must not come back lower either.
            for (key, value) in values {
                last.insert(key, value);
            }
        }
    }
}

#[test]
fn settings_reach_the_collector_and_comm_names_are_borrowed() {
    let settings = Settings::default().with(&TOP_K, 0).with_list(&comm::NAMES, vec!["x".into()]);
    let instance = DEFINITION.instance(&settings);
    let snapshot = snapshot(vec![proc(2, 1, "a", 0, [S, 0, 0])]);
    let users = UserNames::new();
    let mut out = Output::default();
    instance.collector.collect(&Context { snapshot: &snapshot, users: &users }, &mut out).unwrap();
    let cpu = out.families.iter().find(|f| f.name == "libproc_comm_cpu_seconds_total").unwrap();
    let comms: Vec<&str> = cpu.samples.iter().map(|s| s.labels[0].as_str()).collect();
    assert_eq!(comms, ["x", "x"], "top-k 0 shows only the declared name, both modes");
    assert!(out.families.iter().all(|f| !f.name.contains("disk")), "no disk without io on Linux");
}
