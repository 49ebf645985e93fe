//! `leftovers`: processes a job left behind. A leftover is a live process whose process group
//! leader is not a live process any more and whose parent is in another session: its job's
//! shell or runner is gone and it was adopted (by launchd, init or a subreaper) across a
//! session boundary. A pipeline member whose leader exited while its shell lives is not one
//! (its parent, the shell, shares its session). Daemons that double-fork look the same, a
//! steady baseline; what matters is growth (`LibprocLeftoverProcessesGrowing`).
//!
//! Counted per real uid in fixed age buckets. The age comes from the start time where the
//! source has it (Linux `stat`; macOS full BSD info) and otherwise from when this collector
//! first saw the process's uniqueid: a lower bound, kept here for the live leftovers only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{CollectError, Collector, Context, Definition, Family, Output, Setting, top, Unit};
use crate::table::{Process, Snapshot};

/// `--collector.leftovers.max-users`.
pub static MAX_USERS: Setting = Setting {
    flag: "max-users",
    help: "Most users in libproc_leftover_processes (those with the most leftovers are kept).",
    default: 20,
    min: 1,
    unit: Unit::Count,
};

/// The `leftovers` collector's declaration.
pub const DEFINITION: Definition = Definition {
    name: "leftovers",
    help: "processes left behind by a gone job (group leader gone, parent in another session)",
    default_enabled: true,
    settings: &[&MAX_USERS],
    lists: &[],
    borrows: &[],
    build: |s| Box::new(Leftovers::new(s.count(&MAX_USERS), SystemTime::now)),
};

/// The age buckets: the `age` label and the age (seconds) it stays under; `older` has none.
pub const AGES: [(&str, Option<u64>); 4] =
    [("5m", Some(300)), ("1h", Some(3600)), ("1d", Some(86_400)), ("older", None)];

/// The `leftovers` collector.
pub struct Leftovers {
    /// `--collector.leftovers.max-users`.
    max_users: usize,
    /// Seconds since the epoch when each leftover without a start time was first seen, by
    /// uniqueid; only the leftovers of the last scrape are kept.
    first_seen: Mutex<HashMap<u64, u64>>,
    /// The clock (a fixed one in tests).
    now: fn() -> SystemTime,
}

impl Leftovers {
    /// The collector with a cap of `max_users` and the clock `now`.
    pub fn new(max_users: usize, now: fn() -> SystemTime) -> Leftovers {
        Leftovers { max_users, first_seen: Mutex::new(HashMap::new()), now }
    }
}

/// Whether `p` is a leftover in `snapshot` (see the module doc). A process whose session or
/// whose parent's session is unknown is not counted: zombies (getsid answers ESRCH for them
/// on macOS, and a zombie holds no resources but its slot, counted elsewhere), a parent
/// outside the table (Linux kernel threads under pid 0), a process gone since listing.
pub fn is_leftover(snapshot: &Snapshot, p: &Process) -> bool {
    let live = |pid| snapshot.find(pid).filter(|q| !q.is_zombie());
    if p.is_zombie() || live(p.pgid).is_some() {
        return false;
    }
    let parent_sid = live(p.ppid).and_then(|parent| parent.sid);
    matches!((p.sid, parent_sid), (Some(own), Some(parent)) if own != parent)
}

/// The bucket index of an age in seconds.
fn bucket(age: u64) -> usize {
    AGES.iter().position(|&(_, under)| under.is_some_and(|u| age < u)).unwrap_or(AGES.len() - 1)
}

impl Collector for Leftovers {
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        let now = (self.now)().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut first_seen = self.first_seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen_now = HashMap::new();
        let mut per_uid: HashMap<u32, [u64; AGES.len()]> = HashMap::new();
        for p in ctx.snapshot.processes.iter().filter(|p| is_leftover(ctx.snapshot, p)) {
            let started = match (p.start, p.uniqueid) {
                (Some(start), _) => start.sec,
                (None, Some(id)) => *seen_now.entry(id).or_insert(*first_seen.get(&id).unwrap_or(&now)),
                // Neither: it exited between the reads that would have dated it.
                (None, None) => continue,
            };
            per_uid.entry(p.ruid).or_default()[bucket(now.saturating_sub(started))] += 1;
        }
        *first_seen = seen_now;
        drop(first_seen);

        let totals = per_uid.iter().map(|(&uid, b)| (uid, b.iter().sum())).collect();
        let (kept, _) = top(totals, self.max_users, 1);
        let mut family = Family::gauge(
            "libproc_leftover_processes",
            "Processes whose group leader is gone and whose parent is in another session, per real uid and age bucket (5m: under 5 minutes, 1h: under an hour, 1d: under a day, older).",
            &["uid", "user", "age"],
        );
        let mut series = 0;
        for (uid, _) in &kept {
            let buckets = per_uid[uid];
            for ((age, _), n) in AGES.iter().zip(buckets).filter(|&(_, n)| n > 0) {
                family.push(vec![uid.to_string(), ctx.user_name(*uid), age.to_string()], n as f64);
                series += 1;
            }
        }
        let all: u64 = per_uid.values().map(|b| b.iter().filter(|&&n| n > 0).count() as u64).sum();
        out.truncated += all - series;
        out.families.push(family);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Os, StartTime};
    use crate::users::UserNames;

    const NOW: u64 = 1_800_000_000;

    fn clock() -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_secs(NOW)
    }

    /// A process of `uid` in group `pgid` and session `sid`, started `age` seconds ago.
    fn proc(pid: i32, ppid: i32, pgid: i32, sid: i32, uid: u32, age: Option<u64>) -> Process {
        Process {
            pgid,
            sid: Some(sid),
            ruid: uid,
            euid: uid,
            start: age.map(|a| StartTime { sec: NOW - a, usec: 0 }),
            uniqueid: Some(pid as u64 + 1000),
            ..Process::sample(pid, ppid, "p")
        }
    }

    fn run(c: &Leftovers, processes: Vec<Process>) -> (Vec<(String, String, f64)>, u64) {
        let mut processes = processes;
        processes.sort_by_key(|p| p.pid);
        let snapshot = Snapshot::sample(Os::Linux, processes);
        let users = UserNames::new();
        let mut out = Output::default();
        c.collect(&Context { snapshot: &snapshot, users: &users }, &mut out).unwrap();
        let f = &out.families[0];
        let got = f
            .samples
            .iter()
            .map(|s| (s.labels[0].clone(), s.labels[2].clone(), s.value))
            .collect();
        (got, out.truncated)
    }

    /// init (session 1); a live shell (session 100) with a child and a pipeline member whose
    /// leader 103 exited; a job (session 200, leader 200 gone) whose two sleeps init adopted.
    fn table() -> Vec<Process> {
        vec![
            proc(1, 0, 1, 1, 0, Some(90_000)),
            proc(100, 1, 100, 100, 501, Some(4000)),
            proc(101, 100, 101, 100, 501, Some(100)),
            proc(104, 100, 103, 100, 501, Some(100)),
            proc(201, 1, 200, 200, 502, Some(10)),
            proc(202, 1, 200, 200, 502, Some(7200)),
        ]
    }

    #[test]
    fn only_adopted_members_of_a_gone_group_count_by_age() {
        let c = Leftovers::new(50, clock);
        let (got, truncated) = run(&c, table());
        assert_eq!(got, [("502".into(), "5m".into(), 1.0), ("502".into(), "1d".into(), 1.0)]);
        assert_eq!(truncated, 0);
    }

    #[test]
    fn a_zombie_or_a_process_of_unknown_session_is_not_a_leftover() {
        let mut t = table();
        t[4].state = crate::table::State::Zombie;
        t[5].sid = None;
        let (got, _) = run(&Leftovers::new(50, clock), t);
        assert_eq!(got, []);
    }

    #[test]
    fn without_a_start_time_the_age_runs_from_first_sight() {
        // The clock moves on between scrapes: a static cell, since the clock is a fn.
        static NOW_CELL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(NOW);
        fn moving() -> SystemTime {
            UNIX_EPOCH
                + std::time::Duration::from_secs(NOW_CELL.load(std::sync::atomic::Ordering::SeqCst))
        }
        let c = Leftovers::new(50, moving);
        let mut t = table();
        t[4].start = None;
        t[5].start = None;
        assert_eq!(run(&c, t.clone()).0, [("502".into(), "5m".into(), 2.0)]);
        NOW_CELL.store(NOW + 600, std::sync::atomic::Ordering::SeqCst);
        // 202 exited, 203 is new: 201 is 10 minutes old, 203 just seen.
        t.remove(5);
        let mut fresh = proc(203, 1, 200, 200, 502, None);
        fresh.uniqueid = Some(5000);
        t.push(fresh);
        assert_eq!(
            run(&c, t).0,
            [("502".into(), "5m".into(), 1.0), ("502".into(), "1h".into(), 1.0)]
        );
        assert_eq!(c.first_seen.lock().unwrap().len(), 2, "only live leftovers are remembered");
    }

    #[test]
    fn users_past_the_cap_are_dropped_and_counted() {
        let mut t = table();
        t.push(proc(301, 1, 300, 300, 503, Some(10)));
        t.push(proc(302, 1, 300, 300, 503, Some(20)));
        t.push(proc(303, 1, 300, 300, 503, Some(30)));
        let (got, truncated) = run(&Leftovers::new(1, clock), t);
        assert_eq!(got, [("503".into(), "5m".into(), 3.0)]);
        // uid 502's two buckets.
        assert_eq!(truncated, 2);
    }

    #[test]
    fn buckets_are_under_5_minutes_an_hour_a_day_then_older() {
        let ages = [0, 299, 300, 3599, 3600, 86_399, 86_400, 10_000_000];
        let got: Vec<&str> = ages.iter().map(|&a| AGES[bucket(a)].0).collect();
        assert_eq!(got, ["5m", "5m", "1h", "1h", "1d", "1d", "older", "older"]);
    }
}
