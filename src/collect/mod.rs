//! Snapshot -> counts: pure functions, one file per collector, with the top-K selections and
//! series caps.
//!
//! # Adding a collector
//!
//! A collector declares itself in its own file, as node_exporter's do: `collect/NAME.rs`
//! exports one [`Definition`] (name, one line of help, on by default or not, its settings,
//! and a factory that builds it from their values). Each setting is a `static` [`Setting`]
//! or [`ListSetting`] in that file, its default written there once; the factory reads it
//! back with [`Settings::get`] / [`Settings::list`] through the same static, so a misspelt
//! setting does not compile. What adding one takes:
//!
//! 1. the file, and its name on one line of the `registry!` list in this file (the
//!    exposition order), which declares the module and adds its definition to [`ALL`]:
//!    `--collector.NAME`, `--no-collector.NAME` and `--collector.NAME.FLAG` are generated
//!    from the definition and validated by `config`;
//! 2. where it needs data the snapshot does not carry yet, one field of
//!    [`table::Process`](crate::table::Process) or [`Snapshot`], filled by each source;
//! 3. its rows in the README's flags and metrics tables and its lines in the golden file
//!    (`UPDATE_GOLDEN=1 cargo test golden`); `tests/docs.rs` fails until they are there.
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
    /// A kernel limit it reports could not be read (the sysctl, or /proc/sys, named).
    LimitUnreadable(&'static str),
    /// A kernel counter it reports could not be read (named).
    CounterUnreadable(&'static str),
}

impl fmt::Display for CollectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CollectError::DeadlinePassed => f.write_str("the scrape deadline passed before it ran"),
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

/// A numeric setting of one collector: `--collector.NAME.FLAG`. Declared once, as a `static`
/// in the collector's file, with its default; the factory reads the value back through that
/// same static ([`Settings::get`]), so a misspelt setting does not compile.
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
    /// How the value is written on the command line.
    pub unit: Unit,
}

/// How a [`Setting`]'s value is written on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A plain number: `--collector.NAME.FLAG=20`.
    Count,
    /// A duration as Prometheus writes them (`90s`, `1h`), held in whole seconds.
    Seconds,
    /// A bare flag: `--collector.NAME.FLAG` is 1, its absence 0.
    Switch,
}

/// A list setting of one collector: `--collector.NAME.FLAG=A,B`, repeatable, empty by
/// default. Declared as a `static`, like [`Setting`].
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
    pub settings: &'static [&'static Setting],
    /// Its own list flags.
    pub lists: &'static [&'static ListSetting],
    /// Other collectors' list flags it reads too (given once, on the owner's flag).
    pub borrows: &'static [&'static ListSetting],
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
        self.instance(&Settings::default())
    }
}

/// The values given to settings, each keyed by its declaration (the `static` itself, by
/// address: two settings with the same flag in two collectors are two settings). A setting
/// with no value given reads as its default.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    numbers: Vec<(&'static Setting, u64)>,
    lists: Vec<(&'static ListSetting, Vec<String>)>,
}

impl Settings {
    /// The same with `setting` set to `value`.
    pub fn with(mut self, setting: &'static Setting, value: u64) -> Settings {
        self.numbers.retain(|&(s, _)| !std::ptr::eq(s, setting));
        self.numbers.push((setting, value));
        self
    }

    /// The same with the list `setting` set to `values`.
    pub fn with_list(mut self, setting: &'static ListSetting, values: Vec<String>) -> Settings {
        self.lists.retain(|(s, _)| !std::ptr::eq(*s, setting));
        self.lists.push((setting, values));
        self
    }

    /// The value of `setting`: as given, else its default.
    pub fn get(&self, setting: &'static Setting) -> u64 {
        self.numbers
            .iter()
            .find(|&&(s, _)| std::ptr::eq(s, setting))
            .map_or(setting.default, |&(_, v)| v)
    }

    /// [`Settings::get`] as a count of series.
    pub fn count(&self, setting: &'static Setting) -> usize {
        usize::try_from(self.get(setting)).unwrap_or(usize::MAX)
    }

    /// The values of the list `setting`: as given, else none.
    pub fn list(&self, setting: &'static ListSetting) -> &[String] {
        self.lists.iter().find(|(s, _)| std::ptr::eq(*s, setting)).map_or(&[], |(_, v)| v)
    }

    /// Every numeric value given, with its declaration (for validation).
    pub fn numbers(&self) -> impl Iterator<Item = (&'static Setting, u64)> + '_ {
        self.numbers.iter().copied()
    }

    /// Every list given, with its declaration (for validation).
    pub fn lists(&self) -> impl Iterator<Item = (&'static ListSetting, &[String])> + '_ {
        self.lists.iter().map(|(s, v)| (*s, v.as_slice()))
    }
}

impl PartialEq for Settings {
    /// The same values for the same settings, whatever the order they were given in.
    fn eq(&self, other: &Settings) -> bool {
        let numbers = |a: &Settings, b: &Settings| a.numbers().all(|(s, v)| b.get(s) == v);
        let lists = |a: &Settings, b: &Settings| a.lists().all(|(s, v)| b.list(s) == v);
        numbers(self, other) && numbers(other, self) && lists(self, other) && lists(other, self)
    }
}

impl Eq for Settings {}

/// A built collector and its name.
pub struct Instance {
    /// The definition's name.
    pub name: &'static str,
    /// The collector.
    pub collector: Box<dyn Collector>,
}

/// Declares each collector's module and lists its definition in [`ALL`]: registering a
/// collector is its name on one line here.
macro_rules! registry {
    ($($name:ident),* $(,)?) => {
        $(pub mod $name;)*

        /// Every collector, in exposition order.
        pub const ALL: &[&Definition] = &[$(&$name::DEFINITION),*];
    };
}

registry! {
    processes,
    forks,
    uid,
    ruid,
    tty,
    ppid,
    comm,
    pgrp,
    tree,
    limits,
    threads,
    files,
    leftovers,
    resources,
}

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

/// Pushes `family` with one sample per (key, count), labelled by `labels`, and counts what a
/// cap dropped: the tail every labelled family shares.
pub(crate) fn push_counted<K>(
    out: &mut Output,
    mut family: Family,
    counts: impl IntoIterator<Item = (K, u64)>,
    dropped: u64,
    labels: impl Fn(K) -> Vec<String>,
) {
    for (key, n) in counts {
        family.push(labels(key), n as f64);
    }
    out.families.push(family);
    out.truncated += dropped;
}

/// The `cap` largest of `counts` (each at least `min`) as `family`: [`top`], then
/// [`push_counted`].
pub(crate) fn push_top<K: Ord>(
    out: &mut Output,
    family: Family,
    counts: HashMap<K, u64>,
    (cap, min): (usize, u64),
    labels: impl Fn(K) -> Vec<String>,
) {
    let (kept, dropped) = top(counts, cap, min);
    push_counted(out, family, kept, dropped, labels);
}

/// The shared body of the uid and ruid collectors.
pub(crate) fn per_user(
    ctx: &Context<'_>,
    out: &mut Output,
    family: Family,
    cap: usize,
    key: impl Fn(&crate::table::Process) -> u32,
) {
    let counts = count_by(ctx.snapshot, |p| Some(key(p)));
    push_top(out, family, counts, (cap, 1), |uid| vec![uid.to_string(), ctx.user_name(uid)]);
}

/// The name of the process `pid`, or "" when it is not in the table.
pub(crate) fn comm_of(snapshot: &Snapshot, pid: i32) -> String {
    snapshot.find(pid).map(|p| p.comm.to_string()).unwrap_or_default()
}
