//! `pgrp`: members of the top-K process groups (`PROC_PGRP_ONLY`). Off by default: most
//! groups have one member, and the interesting large ones also show up under `ppid`.

use super::{CollectError, Collector, Context, Family, Output};

/// The `pgrp` collector.
pub struct Pgrp;

impl Collector for Pgrp {
    fn name(&self) -> &'static str {
        "pgrp"
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        let members = super::count_by(ctx.snapshot, |p| Some(p.pgid));
        let (kept, dropped) = super::top(members, ctx.caps.pgrp_top_k, ctx.caps.pgrp_min_members);
        let mut family = Family::gauge(
            "libproc_pgrp_processes",
            "Members of each of the top-K process groups (PROC_PGRP_ONLY); leader is the group leader's command name, empty once it has exited.",
            &["pgid", "leader"],
        );
        for (pgid, n) in kept {
            family.push(vec![pgid.to_string(), super::comm_of(ctx.snapshot, pgid)], n as f64);
        }
        out.families.push(family);
        out.truncated += dropped;
        Ok(())
    }
}
