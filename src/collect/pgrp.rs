//! `pgrp`: members of the top-K process groups (`PROC_PGRP_ONLY`). Off by default: most
//! groups have one member, and the interesting large ones also show up under `ppid`.

use super::{CollectError, Collector, Context, Definition, Family, Output, Setting, Unit};

/// `--collector.pgrp.top-k`.
pub static TOP_K: Setting = Setting {
    flag: "top-k",
    help: "Process groups shown in libproc_pgrp_processes.",
    default: 10,
    min: 1,
    unit: Unit::Count,
};

/// `--collector.pgrp.min-members`.
pub static MIN_MEMBERS: Setting = Setting {
    flag: "min-members",
    help: "Process groups with fewer members are not shown.",
    default: 2,
    min: 0,
    unit: Unit::Count,
};

/// The `pgrp` collector's declaration.
pub const DEFINITION: Definition = Definition {
    name: "pgrp",
    help: "members of the top-K process groups (PROC_PGRP_ONLY)",
    default_enabled: false,
    settings: &[&TOP_K, &MIN_MEMBERS],
    lists: &[],
    borrows: &[],
    build: |s| Box::new(Pgrp { top_k: s.count(&TOP_K), min_members: s.get(&MIN_MEMBERS) }),
};

/// The `pgrp` collector.
pub struct Pgrp {
    /// `--collector.pgrp.top-k`.
    top_k: usize,
    /// `--collector.pgrp.min-members`.
    min_members: u64,
}

impl Collector for Pgrp {
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        let members = super::count_by(ctx.snapshot, |p| Some(p.pgid));
        let family = Family::gauge(
            "libproc_pgrp_processes",
            "Members of each of the top-K process groups (PROC_PGRP_ONLY); leader is the group leader's command name, empty once it has exited.",
            &["pgid", "leader"],
        );
        super::push_top(out, family, members, (self.top_k, self.min_members), |pgid| {
            vec![pgid.to_string(), super::comm_of(ctx.snapshot, pgid)]
        });
        Ok(())
    }
}
