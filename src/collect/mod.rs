//! Snapshot -> counts: pure functions, one file per collector, with the top-K selections and
//! series caps.
//!
//! A collector reads a [`Snapshot`] and appends [`Family`] values: metric name, help, label
//! names and samples. It knows nothing of the OS or of HTTP, and `metrics` turns its output
//! into Prometheus text. Everything is built fresh for each scrape, so a uid, tty or parent
//! that has gone simply is not in the next output: there are no stale series.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

use crate::table::Snapshot;
use crate::users::UserNames;

mod limits;
mod pgrp;
mod ppid;
mod processes;
mod ruid;
mod tree;
mod tty;
mod uid;

/// Gauge or counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A value that only goes up.
    Counter,
}

/// One sample: label values (in the family's label-name order) and a value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Label values.
    pub labels: Vec<String>,
    /// The value.
    pub value: f64,
}

/// One metric family, ready to render.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// Metric name.
    pub name: &'static str,
    /// HELP text.
    pub help: &'static str,
    /// TYPE.
    pub kind: Kind,
    /// Label names, in the order of [`Sample::labels`].
    pub label_names: &'static [&'static str],
    /// Samples.
    pub samples: Vec<Sample>,
}

impl Family {
    /// A gauge with labels and no samples yet.
    pub fn gauge(
        name: &'static str,
        help: &'static str,
        label_names: &'static [&'static str],
    ) -> Family {
        Family { name, help, kind: Kind::Gauge, label_names, samples: Vec::new() }
    }

    /// An unlabelled gauge with one value.
    pub fn single(name: &'static str, help: &'static str, value: f64) -> Family {
        let mut family = Family::gauge(name, help, &[]);
        family.push(Vec::new(), value);
        family
    }

    /// Adds a sample.
    pub fn push(&mut self, labels: Vec<String>, value: f64) {
        self.samples.push(Sample { labels, value });
    }
}

/// What collectors append to.
#[derive(Debug, Default)]
pub struct Output {
    /// The families produced.
    pub families: Vec<Family>,
    /// Label sets dropped by caps, per collector (reported as `libproc_series_truncated`).
    pub truncated: u64,
}

/// Limits on labelled families, from the `--collector.*` flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caps {
    /// `--collector.uid.max-series`.
    pub uid_max_series: usize,
    /// `--collector.ruid.max-series`.
    pub ruid_max_series: usize,
    /// `--collector.tty.max-series`.
    pub tty_max_series: usize,
    /// `--collector.ppid.top-k`: parents shown in `libproc_ppid_processes` and `_zombies`.
    pub ppid_top_k: usize,
    /// `--collector.ppid.min-children`: smaller families are not shown.
    pub ppid_min_children: u64,
    /// `--collector.pgrp.top-k`.
    pub pgrp_top_k: usize,
    /// `--collector.pgrp.min-members`.
    pub pgrp_min_members: u64,
}

impl Default for Caps {
    fn default() -> Caps {
        Caps {
            uid_max_series: 500,
            ruid_max_series: 500,
            tty_max_series: 500,
            ppid_top_k: 10,
            ppid_min_children: 1,
            pgrp_top_k: 10,
            pgrp_min_members: 2,
        }
    }
}

/// What a collector sees.
pub struct Context<'a> {
    /// The table.
    pub snapshot: &'a Snapshot,
    /// Name lookups for uids the snapshot does not name.
    pub users: &'a UserNames,
    /// Caps and top-K.
    pub caps: &'a Caps,
}

impl Context<'_> {
    /// The `user` label for `uid`: the snapshot's name, the password database's, or the
    /// number itself.
    pub fn user_name(&self, uid: u32) -> String {
        self.snapshot
            .users
            .get(&uid)
            .cloned()
            .or_else(|| self.users.name(uid))
            .unwrap_or_else(|| uid.to_string())
    }
}

/// A collector failed; the others still serve.
#[derive(Debug, PartialEq, Eq)]
pub struct CollectError(pub String);

impl fmt::Display for CollectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One collector: a name (its `--collector.NAME` flag) and the families it adds.
pub trait Collector: Send + Sync {
    /// The flag name.
    fn name(&self) -> &'static str;
    /// Appends this scrape's families.
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError>;
}

/// A collector's registry entry.
#[derive(Clone, Copy, Debug)]
pub struct Info {
    /// `--collector.NAME`.
    pub name: &'static str,
    /// On unless `--no-collector.NAME`.
    pub default_enabled: bool,
    /// One line for `--help`.
    pub help: &'static str,
}

/// Every collector, in exposition order.
pub const ALL: &[Info] = &[
    Info { name: "processes", default_enabled: true, help: "processes by state (PROC_ALL_PIDS)" },
    Info {
        name: "uid",
        default_enabled: true,
        help: "processes per effective uid (PROC_UID_ONLY)",
    },
    Info { name: "ruid", default_enabled: true, help: "processes per real uid (PROC_RUID_ONLY)" },
    Info {
        name: "tty",
        default_enabled: true,
        help: "processes per controlling terminal (PROC_TTY_ONLY)",
    },
    Info {
        name: "ppid",
        default_enabled: true,
        help: "children of the top-K parents, zombies per parent (PROC_PPID_ONLY)",
    },
    Info {
        name: "pgrp",
        default_enabled: false,
        help: "members of the top-K process groups (PROC_PGRP_ONLY)",
    },
    Info { name: "tree", default_enabled: true, help: "deepest parent chain and largest subtree" },
    Info {
        name: "limits",
        default_enabled: true,
        help: "kern.maxproc, kern.maxprocperuid, kern.tty.ptmx_max",
    },
];

/// The collector called `name`.
pub fn build(name: &str) -> Option<Box<dyn Collector>> {
    Some(match name {
        "processes" => Box::new(processes::Processes),
        "uid" => Box::new(uid::Uid),
        "ruid" => Box::new(ruid::Ruid),
        "tty" => Box::new(tty::Tty),
        "ppid" => Box::new(ppid::Ppid),
        "pgrp" => Box::new(pgrp::Pgrp),
        "tree" => Box::new(tree::Tree),
        "limits" => Box::new(limits::Limits),
        _ => return None,
    })
}

/// Counts processes by a key, one pass.
pub(crate) fn count_by<K: Eq + Hash>(
    snapshot: &Snapshot,
    key: impl Fn(&crate::table::Process) -> Option<K>,
) -> HashMap<K, u64> {
    let mut counts = HashMap::new();
    for process in &snapshot.processes {
        if let Some(k) = key(process) {
            *counts.entry(k).or_insert(0) += 1;
        }
    }
    counts
}

/// Keeps the `cap` largest counts (ties by key, so the choice is stable between scrapes) and
/// returns them sorted by key, with how many were dropped.
pub(crate) fn top<K: Ord>(counts: HashMap<K, u64>, cap: usize, min: u64) -> (Vec<(K, u64)>, u64) {
    let mut all: Vec<(K, u64)> = counts.into_iter().filter(|&(_, n)| n >= min).collect();
    let mut dropped = 0;
    if all.len() > cap {
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        dropped = (all.len() - cap) as u64;
        all.truncate(cap);
    }
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    (all, dropped)
}

/// The shared body of the uid and ruid collectors.
pub(crate) fn per_user(
    ctx: &Context<'_>,
    out: &mut Output,
    family: Family,
    cap: usize,
    key: impl Fn(&crate::table::Process) -> u32,
) {
    let (kept, dropped) = top(count_by(ctx.snapshot, |p| Some(key(p))), cap, 1);
    let mut family = family;
    for (uid, n) in kept {
        family.push(vec![uid.to_string(), ctx.user_name(uid)], n as f64);
    }
    out.families.push(family);
    out.truncated += dropped;
}

/// The name of the process `pid`, or "" when it is not in the table.
pub(crate) fn comm_of(snapshot: &Snapshot, pid: i32) -> String {
    snapshot.find(pid).map(|p| p.comm.to_string()).unwrap_or_default()
}
