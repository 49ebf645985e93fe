//! Snapshot -> counts: pure functions, one file per collector, with the top-K selections and
//! series caps.
//!
//! # Adding a collector
//!
//! A collector declares itself in its own file, as node_exporter's do: `collect/NAME.rs`
//! exports one [`Definition`] (name, one line of help, on by default or not, its own
//! `--collector.NAME.FLAG` settings with their defaults and minimums, its list settings
//! (repeatable, comma-separated, each value checked at start-up), and a factory that builds
//! it from those settings). Add that file, one `mod NAME;` and one entry in [`ALL`]
//! (the exposition order); `--collector.NAME`, `--no-collector.NAME` and the settings flags
//! are generated from the definition, validated by `config`, and the README's flags and
//! metrics tables and the golden file (`UPDATE_GOLDEN=1 cargo test golden`) say what it adds
//! (`tests/docs.rs` fails until they do).
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

mod comm;
mod forks;
mod limits;
mod pgrp;
mod ppid;
mod processes;
mod ruid;
mod threads;
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

/// What a collector sees.
pub struct Context<'a> {
    /// The table.
    pub snapshot: &'a Snapshot,
    /// Name lookups for uids the snapshot does not name.
    pub users: &'a UserNames,
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

/// A collector failed this scrape (its success is 0); the others still serve.
#[derive(Debug, PartialEq, Eq)]
pub enum CollectError {
    /// The scrape's deadline passed before the collector ran.
    DeadlinePassed,
    /// The snapshot it counts could not be taken.
    NoSnapshot(String),
    /// A kernel limit it reports could not be read (the sysctl, or /proc/sys, named).
    LimitUnreadable(&'static str),
    /// A kernel counter it reports could not be read (named).
    CounterUnreadable(&'static str),
}

impl fmt::Display for CollectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CollectError::DeadlinePassed => f.write_str("the scrape deadline passed before it ran"),
            CollectError::NoSnapshot(why) => write!(f, "no snapshot to count: {why}"),
            CollectError::LimitUnreadable(what) | CollectError::CounterUnreadable(what) => {
                write!(f, "{what} could not be read")
            }
        }
    }
}

impl std::error::Error for CollectError {}

/// One collector: the families it adds for a snapshot.
pub trait Collector: Send + Sync {
    /// Appends this scrape's families.
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError>;
}

/// A numeric setting of one collector: `--collector.NAME.FLAG`.
#[derive(Debug)]
pub struct Setting {
    /// The part after `--collector.NAME.`.
    pub flag: &'static str,
    /// One line for `--help`.
    pub help: &'static str,
    /// The value when the flag is not given.
    pub default: u64,
    /// The smallest value accepted (a start-up error below it).
    pub min: u64,
}

/// A list setting of one collector: `--collector.NAME.FLAG=A,B`, repeatable, empty by
/// default.
#[derive(Debug)]
pub struct ListSetting {
    /// The part after `--collector.NAME.`.
    pub flag: &'static str,
    /// One line for `--help`.
    pub help: &'static str,
    /// Checks one value; the error says why it is refused (a start-up error).
    pub check: fn(&str) -> Result<(), String>,
}

/// Everything about one collector, declared in its own file.
pub struct Definition {
    /// `--collector.NAME`, and the `collector` label of its duration and success.
    pub name: &'static str,
    /// One line for `--help`.
    pub help: &'static str,
    /// On unless `--no-collector.NAME` (or `--collector.disable-defaults`).
    pub default_enabled: bool,
    /// Its own numeric flags.
    pub settings: &'static [Setting],
    /// Its own list flags.
    pub lists: &'static [ListSetting],
    /// Builds it from its settings' values.
    pub build: fn(&Settings) -> Box<dyn Collector>,
}

impl fmt::Debug for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Definition").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Definition {
    /// The collector with these settings, named.
    pub fn instance(&'static self, settings: &Settings) -> Instance {
        Instance { name: self.name, collector: (self.build)(settings) }
    }

    /// The collector with its default settings.
    pub fn default_instance(&'static self) -> Instance {
        self.instance(&Settings::defaults(self))
    }
}

/// The values of one collector's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    numbers: Vec<(&'static str, u64)>,
    lists: Vec<(&'static str, Vec<String>)>,
}

impl Settings {
    /// Every setting of `definition` at its default (lists empty).
    pub fn defaults(definition: &Definition) -> Settings {
        Settings {
            numbers: definition.settings.iter().map(|s| (s.flag, s.default)).collect(),
            lists: definition.lists.iter().map(|l| (l.flag, Vec::new())).collect(),
        }
    }

    /// The same with `flag` set to `value` (`flag` must be one of the collector's).
    pub fn with(mut self, flag: &str, value: u64) -> Settings {
        let slot = self.numbers.iter_mut().find(|(f, _)| *f == flag);
        slot.unwrap_or_else(|| panic!("no setting {flag}")).1 = value;
        self
    }

    /// The same with the list `flag` set to `values` (`flag` must be one of the collector's).
    pub fn with_list(mut self, flag: &str, values: Vec<String>) -> Settings {
        let slot = self.lists.iter_mut().find(|(f, _)| *f == flag);
        slot.unwrap_or_else(|| panic!("no list setting {flag}")).1 = values;
        self
    }

    /// The value of `flag`. Factories ask only for their own flags, so a miss is a bug in
    /// the definition, found by the first test that builds the collector.
    pub fn get(&self, flag: &str) -> u64 {
        self.numbers.iter().find(|(f, _)| *f == flag).map(|&(_, v)| v).unwrap_or_else(|| {
            panic!("the collector reads --collector.*.{flag} without declaring it")
        })
    }

    /// The values of the list `flag` (a miss is a bug in the definition, as for [`get`]).
    ///
    /// [`get`]: Settings::get
    pub fn get_list(&self, flag: &str) -> &[String] {
        self.lists.iter().find(|(f, _)| *f == flag).map(|(_, v)| v.as_slice()).unwrap_or_else(
            || panic!("the collector reads --collector.*.{flag} without declaring it"),
        )
    }

    /// [`Settings::get`] as a count of series.
    pub fn get_usize(&self, flag: &str) -> usize {
        usize::try_from(self.get(flag)).unwrap_or(usize::MAX)
    }
}

/// A built collector and its name.
pub struct Instance {
    /// The definition's name.
    pub name: &'static str,
    /// The collector.
    pub collector: Box<dyn Collector>,
}

/// Every collector, in exposition order.
pub const ALL: &[&Definition] = &[
    &processes::DEFINITION,
    &forks::DEFINITION,
    &uid::DEFINITION,
    &ruid::DEFINITION,
    &tty::DEFINITION,
    &ppid::DEFINITION,
    &comm::DEFINITION,
    &pgrp::DEFINITION,
    &tree::DEFINITION,
    &limits::DEFINITION,
    &threads::DEFINITION,
];

/// The collectors on by default, with their default settings.
pub fn default_instances() -> Vec<Instance> {
    ALL.iter().filter(|d| d.default_enabled).map(|d| d.default_instance()).collect()
}

/// The collector called `name`.
pub fn find(name: &str) -> Option<&'static Definition> {
    ALL.iter().copied().find(|d| d.name == name)
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
