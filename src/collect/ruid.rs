//! `ruid`: processes per real uid (`PROC_RUID_ONLY`), the count fork() checks against the
//! per-user limit.

use super::{CollectError, Collector, Context, Family, Output};

/// The `ruid` collector.
pub struct Ruid;

impl Collector for Ruid {
    fn name(&self) -> &'static str {
        "ruid"
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        let family = Family::gauge(
            "libproc_ruid_processes",
            "Processes per real uid (PROC_RUID_ONLY); fork() fails with EAGAIN when this reaches libproc_processes_per_user_limit.",
            &["uid", "user"],
        );
        super::per_user(ctx, out, family, ctx.caps.ruid_max_series, |p| p.ruid);
        Ok(())
    }
}
