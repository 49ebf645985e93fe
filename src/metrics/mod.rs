//! Counts -> Prometheus text, built fresh for every scrape.
//!
//! [`Exporter::scrape`] is the whole of a scrape below the HTTP layer: one snapshot, every
//! enabled collector over it (timed, with its success), the exporter's own metrics, and the
//! text exposition. Nothing is kept between scrapes except the source's buffers, the user
//! name cache and the collection counter, so nothing can go stale.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use prometheus::proto::{self, MetricType};

use crate::collect::{self, Context, Family, Instance, Kind, Output};
use crate::log;
use crate::table::{Snapshot, Source};
use crate::users::UserNames;

mod process;

/// The build, for `libproc_build_info` and the landing page.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What `--version` prints after the name, as Prometheus exporters do: the version, git
/// revision, build date, compiler and target.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision: ",
    env!("LIBPROC_EXPORTER_REVISION"),
    ")\n  build date:  ",
    env!("LIBPROC_EXPORTER_BUILD_DATE"),
    "\n  rustc:       ",
    env!("LIBPROC_EXPORTER_RUSTC"),
    "\n  target:      ",
    env!("LIBPROC_EXPORTER_TARGET"),
);

/// Everything a scrape needs, shared by all requests.
pub struct Exporter {
    source: Mutex<Box<dyn Source>>,
    source_name: &'static str,
    collectors: Vec<Instance>,
    users: UserNames,
    exporter_metrics: bool,
    collections: AtomicU64,
}

impl Exporter {
    /// An exporter reading `source` with these collectors.
    pub fn new(
        source: Box<dyn Source>,
        collectors: Vec<Instance>,
        exporter_metrics: bool,
    ) -> Exporter {
        Exporter {
            source_name: source.name(),
            source: Mutex::new(source),
            collectors,
            users: UserNames::new(),
            exporter_metrics,
            collections: AtomicU64::new(0),
        }
    }

    /// How many process-table collections have run (single flight keeps this at one per
    /// burst of concurrent scrapes).
    pub fn collections(&self) -> u64 {
        self.collections.load(Ordering::Relaxed)
    }

    /// The source's name.
    pub fn source_name(&self) -> &'static str {
        self.source_name
    }

    /// Takes one snapshot (blocking: call it off the async threads).
    pub fn snapshot(&self) -> Result<Snapshot, crate::table::Error> {
        let mut source = self.source.lock().unwrap_or_else(|p| p.into_inner());
        self.collections.fetch_add(1, Ordering::Relaxed);
        source.snapshot()
    }

    /// One whole scrape, rendered. Collectors still to run after `deadline` report success 0
    /// instead of running; a failed snapshot fails every collector but the scrape still
    /// answers with what it has.
    pub fn scrape(&self, deadline: Option<Instant>) -> String {
        self.scrape_until(&|| deadline).text
    }

    /// [`Exporter::scrape`] with a deadline that may move while the scrape runs: `deadline`
    /// is asked again before each collector, so a later scrape that joins this collection
    /// can extend it (see `server::collect_shared`). The result says whether the deadline
    /// cut any collector short.
    pub fn scrape_until(&self, deadline: &dyn Fn() -> Option<Instant>) -> Scraped {
        let started = Instant::now();
        let snapshot = self.snapshot();
        let snapshot_seconds = started.elapsed().as_secs_f64();
        if let Err(e) = &snapshot {
            log::error(
                "reading the process table failed",
                &[("source", self.source_name), ("err", &e.to_string())],
            );
        }
        self.render(snapshot.as_ref().ok(), snapshot_seconds, deadline)
    }

    /// What a scrape answers when its deadline passed before the table was read: every
    /// collector failed (success 0), no counts, the exporter's own metrics as usual.
    pub fn missed_deadline(&self) -> Scraped {
        self.render(None, 0.0, &|| None)
    }

    /// The names of the collectors this exporter runs, in exposition order.
    pub fn collector_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.collectors.iter().map(|instance| instance.name)
    }

    /// Runs the collectors over `snapshot` (all fail without one) and renders everything.
    fn render(
        &self,
        snapshot: Option<&Snapshot>,
        snapshot_seconds: f64,
        deadline: &dyn Fn() -> Option<Instant>,
    ) -> Scraped {
        let mut cut = false;
        let mut families: Vec<(Owner, Family)> = Vec::new();
        let mut duration = Family::gauge(
            "libproc_scrape_collector_duration_seconds",
            "Time each collector took to count this scrape's snapshot.",
            &["collector"],
        );
        let mut success = Family::gauge(
            "libproc_scrape_collector_success",
            "1 when the collector succeeded this scrape, 0 when it failed or missed the scrape deadline.",
            &["collector"],
        );
        let mut truncated = Family::gauge(
            "libproc_series_truncated",
            "Label sets dropped this scrape by a collector's series cap or top-K (the totals stay exact).",
            &["collector"],
        );
        match snapshot {
            Some(snapshot) => {
                let ctx = Context { snapshot, users: &self.users };
                for Instance { name, collector } in &self.collectors {
                    let name_of = *name;
                    let name = name.to_string();
                    let t = Instant::now();
                    let mut out = Output::default();
                    let result = if deadline().is_some_and(|d| t >= d) {
                        cut = true;
                        Err(collect::CollectError::DeadlinePassed)
                    } else {
                        collector.collect(&ctx, &mut out)
                    };
                    if let Err(e) = &result {
                        log::warn(
                            "collector failed",
                            &[("collector", &name), ("err", &e.to_string())],
                        );
                    }
                    families
                        .extend(out.families.into_iter().map(|f| (Owner::Collector(name_of), f)));
                    duration.push(vec![name.clone()], t.elapsed().as_secs_f64());
                    success.push(vec![name.clone()], f64::from(u8::from(result.is_ok())));
                    truncated.push(vec![name], out.truncated as f64);
                }
                families.extend(snapshot_families(snapshot).map(|f| (Owner::Exporter, f)));
            }
            None => {
                for Instance { name, .. } in &self.collectors {
                    let name = name.to_string();
                    duration.push(vec![name.clone()], 0.0);
                    success.push(vec![name], 0.0);
                }
            }
        }
        families.extend([duration, success, truncated].map(|f| (Owner::PerCollector, f)));
        families.extend(self.exporter_families(snapshot_seconds).map(|f| (Owner::Exporter, f)));
        let text = encode(families.iter().map(|(_, f)| f));
        Scraped { text, cut, families }
    }
}

/// Whose a family is, for choosing collectors per request (`collect[]`, `exclude[]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A collector's own family.
    Collector(&'static str),
    /// One sample per collector, labelled `collector` (success, duration, truncation).
    PerCollector,
    /// The exporter's own: always answered.
    Exporter,
}

/// A rendered scrape.
#[derive(Debug)]
pub struct Scraped {
    /// The text exposition.
    pub text: String,
    /// The families the text was encoded from, with their owners.
    pub families: Vec<(Owner, Family)>,
    /// Whether the deadline passed before every collector ran (those report success 0).
    pub cut: bool,
}

impl Exporter {
    /// The exporter's own families: the snapshot's duration, the collection counter, the
    /// build, and (unless disabled) the `process_*` figures.
    fn exporter_families(&self, snapshot_seconds: f64) -> impl Iterator<Item = Family> {
        let mut exporter_wide = vec![
            Family::single(
                "libproc_snapshot_duration_seconds",
                "Time to read the process table this scrape.",
                snapshot_seconds,
            ),
            Family {
                name: "libproc_collections_total",
                help: "Process-table collections since start; concurrent scrapes share one.",
                kind: Kind::Counter,
                label_names: &[],
                samples: vec![collect::Sample {
                    labels: Vec::new(),
                    value: self.collections() as f64,
                }],
            },
            build_info(),
            source_info(self.source_name),
        ];
        if self.exporter_metrics {
            exporter_wide.extend(process::families());
        }
        exporter_wide.into_iter()
    }
}

/// What the snapshot says about itself: pids it could not read, and whether it was
/// privileged.
fn snapshot_families(snapshot: &Snapshot) -> [Family; 2] {
    let mut unreadable = Family::gauge(
        "libproc_pids_unreadable",
        "Pids listed but not read this scrape, by reason: vanished (exited meanwhile), permission (EPERM, a sandbox), other.",
        &["reason"],
    );
    let u = snapshot.unreadable;
    for (reason, n) in [("vanished", u.vanished), ("permission", u.permission), ("other", u.other)]
    {
        unreadable.push(vec![reason.into()], n as f64);
    }
    let privileged = Family::single(
        "libproc_privileged",
        "1 when full information about other users' processes is readable (root).",
        f64::from(u8::from(snapshot.privileged)),
    );
    [unreadable, privileged]
}

/// `libproc_source_info`: constant 1 naming where the table is read from, and on Linux how:
/// `procfs/pidfd` (ids through `PIDFD_GET_INFO`) or `procfs/status` (the text file), decided
/// once at start, so a fleet can see which hosts take the slower path.
fn source_info(source: &str) -> Family {
    let mut family = Family::gauge(
        "libproc_source_info",
        "A constant 1 labelled with the process-table source: libproc, procfs/pidfd, procfs/status or replay.",
        &["source"],
    );
    family.push(vec![source.to_string()], 1.0);
    family
}

/// `libproc_build_info`: constant 1 with the version, git revision, compiler and target.
fn build_info() -> Family {
    let mut family = Family::gauge(
        "libproc_build_info",
        "A constant 1 labelled with the version, git revision, rustc version and target it was built from.",
        &["version", "revision", "rustc_version", "target"],
    );
    family.push(
        vec![
            VERSION.to_string(),
            env!("LIBPROC_EXPORTER_REVISION").to_string(),
            env!("LIBPROC_EXPORTER_RUSTC").to_string(),
            env!("LIBPROC_EXPORTER_TARGET").to_string(),
        ],
        1.0,
    );
    family
}

/// Encodes families in the Prometheus text format (0.0.4).
pub fn encode<'a>(families: impl IntoIterator<Item = &'a Family>) -> String {
    let mut mfs = Vec::new();
    // A family without samples (no process has a terminal, say) is left out: the text format
    // has nothing to say about it, and the encoder refuses it.
    for family in families.into_iter().filter(|f| !f.samples.is_empty()) {
        let mut mf = proto::MetricFamily::default();
        mf.set_name(family.name.to_string());
        mf.set_help(family.help.to_string());
        mf.set_field_type(match family.kind {
            Kind::Gauge => MetricType::GAUGE,
            Kind::Counter => MetricType::COUNTER,
        });
        let metrics = family
            .samples
            .iter()
            .map(|sample| {
                let labels = family
                    .label_names
                    .iter()
                    .zip(&sample.labels)
                    .map(|(name, value)| {
                        let mut pair = proto::LabelPair::default();
                        pair.set_name(name.to_string());
                        pair.set_value(value.clone());
                        pair
                    })
                    .collect();
                let mut metric = proto::Metric::from_label(labels);
                match family.kind {
                    Kind::Gauge => {
                        let mut g = proto::Gauge::default();
                        g.set_value(sample.value);
                        metric.set_gauge(g);
                    }
                    Kind::Counter => {
                        let mut c = proto::Counter::default();
                        c.set_value(sample.value);
                        metric.set_counter(c);
                    }
                }
                metric
            })
            .collect();
        mf.set_metric(metrics);
        mfs.push(mf);
    }
    let mut out = String::with_capacity(16 * 1024);
    // Encoding into a String cannot fail for these families (no histograms, valid names).
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&mfs, &mut out) {
        log::error("encoding metrics failed", &[("err", &e.to_string())]);
    }
    out
}

impl Scraped {
    /// The exposition with only the collectors `keep` accepts (their families and their
    /// success, duration and truncation samples), and every exporter-wide family.
    pub fn select(&self, keep: &dyn Fn(&str) -> bool) -> String {
        let kept: Vec<Family> = self
            .families
            .iter()
            .filter_map(|(owner, family)| match owner {
                Owner::Collector(name) => keep(name).then(|| family.clone()),
                Owner::PerCollector => {
                    let mut family = family.clone();
                    family.samples.retain(|s| s.labels.first().is_some_and(|c| keep(c)));
                    Some(family)
                }
                Owner::Exporter => Some(family.clone()),
            })
            .collect();
        encode(&kept)
    }
}
