//! `ppid`: children of the top-K parents (`PROC_PPID_ONLY`), the largest family, and
//! unreaped zombies per parent.

use super::{CollectError, Collector, Context, Definition, Family, Output, Setting};

/// The `ppid` collector's declaration.
pub(super) const DEFINITION: Definition = Definition {
    name: "ppid",
    help: "children of the top-K parents, zombies per parent (PROC_PPID_ONLY)",
    default_enabled: true,
    settings: &[
        Setting {
            flag: "top-k",
            help: "Parents shown in libproc_ppid_processes and libproc_ppid_zombies.",
            default: 10,
            min: 1,
        },
        Setting {
            flag: "min-children",
            help: "Parents with fewer children are not shown in libproc_ppid_processes.",
            // A parent with a pipeline or two running comes and goes from scrape to scrape;
            // below 5 children a parent is noise, and a runaway has hundreds.
            default: 5,
            min: 0,
        },
    ],
    lists: &[],
    build: |s| Box::new(Ppid { top_k: s.get_usize("top-k"), min_children: s.get("min-children") }),
};

/// The `ppid` collector.
pub struct Ppid {
    /// `--collector.ppid.top-k`.
    top_k: usize,
    /// `--collector.ppid.min-children`.
    min_children: u64,
}

impl Collector for Ppid {
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        let snapshot = ctx.snapshot;
        // pid 0's "parent" 0 is itself, not a parent.
        let children = super::count_by(snapshot, |p| (p.pid != 0).then_some(p.ppid));
        let zombies = super::count_by(snapshot, |p| p.is_zombie().then_some(p.ppid));
        let max = children.values().copied().max().unwrap_or(0);

        let (kept, dropped) = super::top(children, self.top_k, self.min_children);
        let mut family = Family::gauge(
            "libproc_ppid_processes",
            "Children of each of the top-K parents (PROC_PPID_ONLY); parent is the parent's command name.",
            &["ppid", "parent"],
        );
        for (ppid, n) in kept {
            family.push(vec![ppid.to_string(), super::comm_of(snapshot, ppid)], n as f64);
        }
        out.families.push(family);
        out.families.push(Family::single(
            "libproc_ppid_processes_max",
            "Children of the parent with the most children.",
            max as f64,
        ));

        let (kept, dropped_zombies) = super::top(zombies, self.top_k, 1);
        let mut family = Family::gauge(
            "libproc_ppid_zombies",
            "Unreaped zombie children of each of the top-K parents holding zombies.",
            &["ppid", "parent"],
        );
        for (ppid, n) in kept {
            family.push(vec![ppid.to_string(), super::comm_of(snapshot, ppid)], n as f64);
        }
        out.families.push(family);
        out.truncated += dropped + dropped_zombies;
        Ok(())
    }
}
