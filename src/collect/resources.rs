//! `resources`: who is using the machine. CPU, resident memory and disk per command name and
//! per real user, and the CPU of reaped children per parent, from each process's
//! [`Usage`](crate::table::Usage) (Linux: the `stat` line already read; macOS:
//! `proc_pid_rusage`, §9).
//!
//! The CPU and disk families are counters over processes that come and go, so unlike every
//! other collector this one keeps state between scrapes: a group's counter is the sum, over
//! every process ever seen in it, of what that process had used when last seen. Each live
//! process is remembered by identity (pid and start time on Linux, `p_uniqueid` on macOS,
//! §3.10) with the figures it had at the previous scrape, and only what it used since is
//! added, to the group it is in now: a pid reused by another process starts from zero instead
//! of subtracting, a process that execs keeps what it gave its old command and gives the new
//! one what it uses after, and a process that exits between two scrapes keeps what it had at
//! the last one (its parent's children counter gets the rest when it reaps). A group lives on
//! while it has a live process and for `--collector.resources.forget-after` after its last
//! one, so a series that leaves the top K and comes back continues where it was. The state
//! is one entry per live process and one per remembered group.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{
    CollectError, Collector, Context, Definition, Family, Kind, Output, Setting, Unit, comm,
};
use crate::libproc::Pid;
use crate::table::{Comm, Os, Process, StartTime};

/// `--collector.resources.top-k`.
pub static TOP_K: Setting = Setting {
    flag: "top-k",
    help: "Groups shown in each resources family (each by its own measure), besides the command names declared with --collector.comm.names.",
    default: 10,
    min: 0,
    unit: Unit::Count,
};

/// `--collector.resources.forget-after`.
pub static FORGET_AFTER: Setting = Setting {
    flag: "forget-after",
    help: "How long a command, user or parent with no live process keeps its CPU and disk counters (shown again, they continue where they were).",
    // Longer than any rate() window a dashboard uses, short enough that a host running a
    // new command name every minute keeps a few dozen of them.
    default: 3600,
    min: 1,
    unit: Unit::Seconds,
};

/// `--collector.resources.io`.
pub static IO: Setting = Setting {
    flag: "io",
    help: "Linux: read /proc/PID/io for the disk families (one more read per process; another user's process needs ptrace access).",
    default: 0,
    min: 0,
    unit: Unit::Switch,
};

/// The `resources` collector's declaration.
pub const DEFINITION: Definition = Definition {
    name: "resources",
    help: "CPU, memory and disk per command and per user, reaped children's CPU per parent",
    default_enabled: true,
    settings: &[&TOP_K, &FORGET_AFTER, &IO],
    lists: &[],
    borrows: &[&comm::NAMES],
    build: |s| {
        Box::new(Resources::new(
            s.count(&TOP_K),
            Duration::from_secs(s.get(&FORGET_AFTER)),
            s.list(&comm::NAMES),
            s.get(&IO) != 0,
        ))
    },
};

/// The `resources` collector.
pub struct Resources {
    /// `--collector.resources.top-k`.
    top_k: usize,
    /// `--collector.resources.forget-after`.
    forget_after: Duration,
    /// `--collector.comm.names`, as group keys.
    declared: Vec<Comm>,
    /// `--collector.resources.io`: the disk families are shown on Linux.
    io: bool,
    /// The counters' memory between scrapes.
    state: Mutex<State>,
}

/// Who a process is, beyond its pid: a pid reused by another process is another identity.
/// Sixteen bytes, as there is one per live process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Identity {
    pid: Pid,
    /// `p_uniqueid` where the source read it (macOS), else the start time in microseconds
    /// (Linux, full BSD info), else 0 (a recording with neither: the pid alone).
    born: u64,
}

impl Identity {
    fn of(p: &Process) -> Identity {
        let start = |t: StartTime| t.sec.wrapping_mul(1_000_000).wrapping_add(t.usec);
        Identity { pid: p.pid, born: p.uniqueid.or(p.start.map(start)).unwrap_or(0) }
    }
}

/// The figures a live process had at the previous scrape, in [`Figures`] order.
#[derive(Debug)]
struct Seen {
    last: Figures,
    /// The scrape that last saw it (its low 32 bits; only equality with the current one
    /// matters); older ones have exited.
    scrape: u32,
}

/// What a process has used, in the order the families read it: user and system CPU (ns),
/// reaped children's user and system CPU (ns), disk bytes read and written.
type Figures = [u64; 6];

/// One group's counters (two modes: user/system or read/written) and its recent use.
#[derive(Debug, Default)]
struct Group {
    /// Totals so far, nanoseconds or bytes.
    total: [u64; 2],
    /// Added this scrape: what ranks the group for the top K.
    recent: u64,
    /// When a live process was last in it.
    live: Option<Instant>,
    /// Whether it has been shown: only then must it continue where it was if shown again.
    shown: bool,
}

/// The counters kept between scrapes.
#[derive(Debug, Default)]
struct State {
    scrape: u64,
    processes: HashMap<Identity, Seen>,
    comm_cpu: HashMap<Comm, Group>,
    ruid_cpu: HashMap<u32, Group>,
    children_cpu: HashMap<(Pid, Comm), Group>,
    comm_disk: HashMap<Comm, Group>,
}

/// Adds `delta` (two modes) to the group `key`, which has a live process now. A group that
/// does not exist yet is made only when something is added (`always`: or when a live process
/// is in it at all, so it can be shown at 0), so most processes, which reap nothing and read
/// nothing from disk, leave no group behind.
fn credit<K: Eq + Hash>(
    groups: &mut HashMap<K, Group>,
    key: K,
    delta: [u64; 2],
    now: Instant,
    always: bool,
) {
    let group = match groups.get_mut(&key) {
        Some(group) => group,
        None if always || delta != [0, 0] => groups.entry(key).or_default(),
        None => return,
    };
    group.total[0] = group.total[0].saturating_add(delta[0]);
    group.total[1] = group.total[1].saturating_add(delta[1]);
    group.recent = group.recent.saturating_add(delta[0].saturating_add(delta[1]));
    group.live = Some(now);
}

/// The key a command name is grouped under: its label. A name that is not UTF-8 is grouped
/// under its lossy form, so two names that differ only in invalid bytes are one series.
fn comm_key(comm: Comm) -> Comm {
    match std::str::from_utf8(comm.as_bytes()) {
        Ok(_) => comm,
        Err(_) => Comm::new(String::from_utf8_lossy(comm.as_bytes()).as_bytes()),
    }
}

impl State {
    /// Adds what each readable process used since the previous scrape to its groups, forgets
    /// the processes that are gone and the groups idle for longer than `forget_after`.
    fn update(
        &mut self,
        processes: &[Process],
        now: Instant,
        forget_after: Duration,
        keep: &[Comm],
    ) {
        self.scrape += 1;
        let scrape = self.scrape as u32;
        for group in [&mut self.comm_cpu, &mut self.comm_disk] {
            group.values_mut().for_each(|g| g.recent = 0);
        }
        self.ruid_cpu.values_mut().for_each(|g| g.recent = 0);
        self.children_cpu.values_mut().for_each(|g| g.recent = 0);
        for p in processes {
            let Some(usage) = p.usage else { continue };
            let id = Identity::of(p);
            let seen = self.processes.entry(id).or_insert(Seen { last: [0; 6], scrape });
            let disk = usage.disk.map_or([seen.last[4], seen.last[5]], |d| [d.read, d.written]);
            let now_figures = [
                usage.user_ns,
                usage.system_ns,
                usage.child_user_ns,
                usage.child_system_ns,
                disk[0],
                disk[1],
            ];
            // A figure lower than last time started again from 0: xnu resets the reaped
            // children's times at exec (§9.4), and a source without identities (a replay
            // without start times or uniqueids) sees a reused pid as the same process. All of
            // it is new then; never a subtraction.
            let d: Figures = std::array::from_fn(|i| match now_figures[i].checked_sub(seen.last[i]) {
                Some(d) => d,
                None => now_figures[i],
            });
            seen.last = now_figures;
            seen.scrape = scrape;
            let comm = comm_key(p.comm);
            credit(&mut self.comm_cpu, comm, [d[0], d[1]], now, true);
            credit(&mut self.ruid_cpu, p.ruid, [d[0], d[1]], now, true);
            credit(&mut self.children_cpu, (p.pid, comm), [d[2], d[3]], now, false);
            credit(&mut self.comm_disk, comm, [d[4], d[5]], now, usage.disk.is_some());
        }
        self.processes.retain(|_, seen| seen.scrape == scrape);
        // A group with a live process stays. Without one, a group that was shown stays for
        // forget_after (a series that comes back continues where it was); one never shown is
        // dropped at once, as nobody saw its value: otherwise a build's thousands of
        // short-lived parents would each be remembered for an hour.
        let stays = |g: &Group| {
            g.live == Some(now)
                || (g.shown && g.live.is_some_and(|t| now.duration_since(t) <= forget_after))
        };
        self.comm_cpu.retain(|k, g| stays(g) || keep.contains(k));
        self.comm_disk.retain(|k, g| stays(g) || keep.contains(k));
        self.ruid_cpu.retain(|_, g| stays(g));
        self.children_cpu.retain(|_, g| stays(g));
    }
}

/// The `cap` keys with the largest `measure` (ties by key, so the choice is stable), plus
/// `declared` whatever their measure, sorted; and how many keys the cap left out.
fn choose<K: Ord + Copy, M: Ord>(
    candidates: impl Iterator<Item = (K, M)>,
    cap: usize,
    declared: &[K],
) -> (Vec<K>, u64) {
    let mut ranked: Vec<(K, M)> = candidates.filter(|(k, _)| !declared.contains(k)).collect();
    ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let dropped = ranked.len().saturating_sub(cap) as u64;
    let mut keys: Vec<K> = ranked.into_iter().take(cap).map(|(k, _)| k).collect();
    for &k in declared {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.sort_unstable();
    (keys, dropped)
}

/// A group ranked by what it used since the previous scrape, ties by its total.
fn recent<K: Copy>((key, g): (&K, &Group)) -> (K, (u64, u64)) {
    (*key, (g.recent, g.total[0].saturating_add(g.total[1])))
}

/// Column `i` of per-group sums as groups (for the gauges, which share the counters' tail).
fn as_group<K: Copy + Eq + Hash>(sums: &HashMap<K, [u64; 2]>, i: usize) -> HashMap<K, Group> {
    sums.iter().map(|(&k, v)| (k, Group { total: [v[i], 0], ..Group::default() })).collect()
}

/// [`choose`] over counter groups by [`recent`], marking the chosen ones shown.
fn choose_counters<K: Ord + Copy + Hash>(
    groups: &mut HashMap<K, Group>,
    cap: usize,
    declared: &[K],
) -> (Vec<K>, u64) {
    let chosen = choose(groups.iter().map(recent), cap, declared);
    for key in &chosen.0 {
        if let Some(g) = groups.get_mut(key) {
            g.shown = true;
        }
    }
    chosen
}

/// Nanoseconds as seconds.
fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// A counter family with a `mode` label last.
fn counter(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Family {
    Family { kind: Kind::Counter, ..Family::gauge(name, help, labels) }
}

/// Pushes `family` with the groups `chosen` from `groups`, two samples each (`modes`), 0 for a
/// declared group not remembered.
fn push_groups<K: Eq + Hash>(
    out: &mut Output,
    mut family: Family,
    groups: &HashMap<K, Group>,
    (chosen, dropped): (Vec<K>, u64),
    modes: Option<[&str; 2]>,
    scale: fn(u64) -> f64,
    labels: impl Fn(&K) -> Vec<String>,
) {
    let series = if modes.is_some() { 2 } else { 1 };
    for key in &chosen {
        let total = groups.get(key).map_or([0, 0], |g| g.total);
        match modes {
            Some(modes) => {
                for (mode, value) in modes.iter().zip(total) {
                    let mut l = labels(key);
                    l.push(mode.to_string());
                    family.push(l, scale(value));
                }
            }
            None => family.push(labels(key), scale(total[0])),
        }
    }
    out.families.push(family);
    out.truncated += dropped * series;
}

impl Resources {
    /// The collector with these settings and no memory yet.
    pub fn new(top_k: usize, forget_after: Duration, declared: &[String], io: bool) -> Resources {
        let mut keys: Vec<Comm> = declared.iter().map(|n| comm_key(Comm::new(n.as_bytes()))).collect();
        keys.sort_unstable();
        keys.dedup();
        Resources { top_k, forget_after, declared: keys, io, state: Mutex::default() }
    }

    /// [`Collector::collect`] at the time `now` (tests move the clock).
    pub fn collect_at(&self, ctx: &Context<'_>, out: &mut Output, now: Instant) {
        let snapshot = ctx.snapshot;
        // A scrape that panicked halfway left counters that are still each right (every
        // addition is whole), so a poisoned lock is taken over, not a failure forever.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.update(&snapshot.processes, now, self.forget_after, &self.declared);
        let k = self.top_k;
        let comm_cpu = choose_counters(&mut state.comm_cpu, k, &self.declared);
        let ruid_cpu = choose_counters(&mut state.ruid_cpu, k, &[]);
        let show_disk = self.io || snapshot.origin == Os::Macos;
        let comm_disk = match show_disk {
            true => choose_counters(&mut state.comm_disk, k, &self.declared),
            false => (Vec::new(), 0),
        };
        let children_cpu = choose_counters(&mut state.children_cpu, k, &[]);
        let state = &*state;
        let comm_label = |c: &Comm| vec![c.to_string()];
        let user_label = |uid: &u32| vec![uid.to_string(), ctx.user_name(*uid)];

        let family = counter(
            "libproc_comm_cpu_seconds_total",
            "CPU time used per command name by every process seen in it while it had the name (exited ones as of the last scrape that saw them): the top K by CPU used since the previous scrape, and the names declared with --collector.comm.names.",
            &["comm", "mode"],
        );
        let modes = Some(["user", "system"]);
        push_groups(out, family, &state.comm_cpu, comm_cpu, modes, seconds, comm_label);

        let family = counter(
            "libproc_ruid_cpu_seconds_total",
            "CPU time used per real uid by every process seen with it: the top K by CPU used since the previous scrape.",
            &["uid", "user", "mode"],
        );
        push_groups(out, family, &state.ruid_cpu, ruid_cpu, modes, seconds, user_label);

        let mut by_comm: HashMap<Comm, [u64; 2]> = HashMap::new();
        let mut by_ruid: HashMap<u32, [u64; 2]> = HashMap::new();
        let mut readable = 0u64;
        for p in &snapshot.processes {
            let Some(usage) = p.usage else { continue };
            readable += 1;
            let add = |sums: &mut [u64; 2]| {
                sums[0] = sums[0].saturating_add(usage.resident_bytes);
                sums[1] = sums[1].saturating_add(usage.footprint_bytes);
            };
            add(by_comm.entry(comm_key(p.comm)).or_default());
            add(by_ruid.entry(p.ruid).or_default());
        }
        let bytes = |b: u64| b as f64;
        let mut memory = vec![(
            0,
            "libproc_comm_resident_bytes",
            "Resident memory per command name, summed over its processes (shared pages count in each process mapping them): the top K by bytes, and the names declared with --collector.comm.names.",
            "libproc_ruid_resident_bytes",
            "Resident memory per real uid, summed over its processes (shared pages count in each process mapping them): the top K by bytes.",
        )];
        if snapshot.origin == Os::Macos {
            memory.push((
                1,
                "libproc_comm_footprint_bytes",
                "macOS physical footprint (ri_phys_footprint, what Activity Monitor shows as Memory) per command name: the top K by bytes, and the names declared with --collector.comm.names.",
                "libproc_ruid_footprint_bytes",
                "macOS physical footprint (ri_phys_footprint) per real uid: the top K by bytes.",
            ));
        }
        for (i, comm_name, comm_help, ruid_name, ruid_help) in memory {
            let groups = as_group(&by_comm, i);
            let chosen = choose(groups.iter().map(|(k, g)| (*k, g.total[0])), k, &self.declared);
            let family = Family::gauge(comm_name, comm_help, &["comm"]);
            push_groups(out, family, &groups, chosen, None, bytes, comm_label);
            let groups = as_group(&by_ruid, i);
            let chosen = choose(groups.iter().map(|(k, g)| (*k, g.total[0])), k, &[]);
            let family = Family::gauge(ruid_name, ruid_help, &["uid", "user"]);
            push_groups(out, family, &groups, chosen, None, bytes, user_label);
        }

        if show_disk {
            for (i, name, help) in [
                (0, "libproc_comm_disk_read_bytes_total", "Bytes read from storage per command name by every process seen in it (macOS ri_diskio_bytesread; Linux read_bytes of /proc/PID/io with --collector.resources.io): the top K by bytes moved since the previous scrape, and the declared names."),
                (1, "libproc_comm_disk_written_bytes_total", "Bytes written to storage per command name by every process seen in it (macOS ri_diskio_byteswritten; Linux write_bytes of /proc/PID/io): the top K by bytes moved since the previous scrape, and the declared names."),
            ] {
                let groups: HashMap<Comm, Group> = state
                    .comm_disk
                    .iter()
                    .map(|(&c, g)| (c, Group { total: [g.total[i], 0], ..Group::default() }))
                    .collect();
                let family = counter(name, help, &["comm"]);
                push_groups(out, family, &groups, comm_disk.clone(), None, bytes, comm_label);
            }
        }

        let family = counter(
            "libproc_ppid_children_cpu_seconds_total",
            "CPU time of the children each parent waited for after they exited (macOS ri_child_user_time/ri_child_system_time; Linux cutime/cstime), per parent pid and name: the top K by what was added since the previous scrape. Children a parent does not wait for (SIGCHLD ignored) are not counted.",
            &["ppid", "parent", "mode"],
        );
        let parent_label = |(pid, c): &(Pid, Comm)| vec![pid.to_string(), c.to_string()];
        push_groups(out, family, &state.children_cpu, children_cpu, modes, seconds, parent_label);

        out.families.push(Family::single(
            "libproc_resource_readable_processes",
            "Processes whose CPU, memory and disk use was read this scrape.",
            readable as f64,
        ));
        let mut family = Family::gauge(
            "libproc_resource_unreadable_processes",
            "Processes listed whose use could not be read this scrape and add nothing: permission (another user's process while unprivileged), vanished, other.",
            &["reason"],
        );
        let (listed, usage) = (snapshot.unreadable, snapshot.usage_unreadable);
        for (reason, n) in [
            ("permission", listed.permission + usage.permission),
            ("vanished", listed.vanished + usage.vanished),
            ("other", listed.other + usage.other),
        ] {
            family.push(vec![reason.to_string()], n as f64);
        }
        out.families.push(family);
    }
}

impl Collector for Resources {
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        self.collect_at(ctx, out, Instant::now());
        Ok(())
    }
}

#[cfg(test)]
#[path = "resources_tests.rs"]
mod tests;
