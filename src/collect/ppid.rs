//! `ppid`: children of the top-K parents (`PROC_PPID_ONLY`), the largest family, and
//! unreaped zombies per parent.

use super::{CollectError, Collector, Context, Definition, Family, Output, Setting, Unit};
use crate::libproc::Pid;
use crate::table::{Process, Snapshot};

/// `--collector.ppid.top-k`.
pub static TOP_K: Setting = Setting {
    flag: "top-k",
    help: "Parents shown in libproc_ppid_processes and libproc_ppid_zombies.",
    default: 10,
    min: 1,
    unit: Unit::Count,
};

/// `--collector.ppid.min-children`.
pub static MIN_CHILDREN: Setting = Setting {
    flag: "min-children",
    help: "Parents with fewer children are not shown in libproc_ppid_processes.",
    // A parent with a pipeline or two running comes and goes from scrape to scrape;
    // below 5 children a parent is noise, and a runaway has hundreds.
    default: 5,
    min: 0,
    unit: Unit::Count,
};

/// The `ppid` collector's declaration.
pub const DEFINITION: Definition = Definition {
    name: "ppid",
    help: "children of the top-K parents, zombies per parent (PROC_PPID_ONLY)",
    default_enabled: true,
    settings: &[&TOP_K, &MIN_CHILDREN],
    lists: &[],
    borrows: &[],
    build: |s| Box::new(Ppid { top_k: s.count(&TOP_K), min_children: s.get(&MIN_CHILDREN) }),
};

/// The parent a process is counted under, if any. pid 0's "parent" 0 is itself, not a parent.
/// pid 0 is a parent only where it is a process of the table: xnu's kernel_task (launchd's
/// parent). Linux's pid 0 is the idle task (`swapper`), which `/proc` does not list, so its
/// children (init and kthreadd, or a container's init) are left out rather than shown under
/// a parent with no name.
fn parent_in(snapshot: &Snapshot) -> impl Fn(&Process) -> Option<Pid> {
    let pid0_listed = snapshot.find(0).is_some();
    move |p| (p.pid != 0 && (p.ppid != 0 || pid0_listed)).then_some(p.ppid)
}

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
        let parent = parent_in(snapshot);
        let children = super::count_by(snapshot, &parent);
        let zombies = super::count_by(snapshot, |p| p.is_zombie().then(|| parent(p)).flatten());
        let max = children.values().copied().max().unwrap_or(0);

        let labels = |ppid: Pid| vec![ppid.to_string(), super::comm_of(snapshot, ppid)];
        let family = Family::gauge(
            "libproc_ppid_processes",
            "Children of each of the top-K parents (PROC_PPID_ONLY); parent is the parent's command name.",
            &["ppid", "parent"],
        );
        super::push_top(out, family, children, (self.top_k, self.min_children), labels);
        out.families.push(Family::single(
            "libproc_ppid_processes_max",
            "Children of the parent with the most children.",
            max as f64,
        ));
        let family = Family::gauge(
            "libproc_ppid_zombies",
            "Unreaped zombie children of each of the top-K parents holding zombies.",
            &["ppid", "parent"],
        );
        super::push_top(out, family, zombies, (self.top_k, 1), labels);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Os;
    use crate::users::UserNames;

    fn process(pid: Pid, ppid: Pid, comm: &str) -> Process {
        Process::sample(pid, ppid, comm)
    }

    /// The `(ppid, parent)` label pairs of `libproc_ppid_processes` for this table.
    fn parents(os: Os, processes: Vec<Process>) -> Vec<(String, String)> {
        let snapshot = Snapshot::sample(os, processes);
        let users = UserNames::new();
        let mut out = Output::default();
        let ctx = Context { snapshot: &snapshot, users: &users };
        // Every parent, however few its children: these tests are about who the parent is.
        let settings = super::super::Settings::default().with(&MIN_CHILDREN, 1);
        DEFINITION.instance(&settings).collector.collect(&ctx, &mut out).unwrap();
        let mut pairs: Vec<_> = out.families[0]
            .samples
            .iter()
            .map(|s| (s.labels[0].clone(), s.labels[1].clone()))
            .collect();
        pairs.sort();
        pairs
    }

    #[test]
    fn linux_idle_task_is_not_a_nameless_parent() {
        // /proc has no pid 0: init and kthreadd used to show as children of ppid="0",
        // parent="" on every Linux host.
        let linux = vec![
            process(1, 0, "systemd"),
            process(2, 0, "kthreadd"),
            process(3, 2, "rcu_gp"),
            process(400, 1, "sshd"),
        ];
        let want = [("1", "systemd"), ("2", "kthreadd")].map(|(a, b)| (a.into(), b.into()));
        assert_eq!(parents(Os::Linux, linux), want);
    }

    #[test]
    fn kernel_task_stays_launchds_named_parent() {
        let mac = vec![process(0, 0, "kernel_task"), process(1, 0, "launchd")];
        assert_eq!(parents(Os::Macos, mac), [("0".into(), "kernel_task".into())]);
    }
}
