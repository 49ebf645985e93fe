//! `uid`: processes per effective uid (`PROC_UID_ONLY`).

use super::{CollectError, Collector, Context, Family, Output};

/// The `uid` collector.
pub struct Uid;

impl Collector for Uid {
    fn name(&self) -> &'static str {
        "uid"
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        let family = Family::gauge(
            "libproc_uid_processes",
            "Processes per effective uid (PROC_UID_ONLY).",
            &["uid", "user"],
        );
        super::per_user(ctx, out, family, ctx.caps.uid_max_series, |p| p.euid);
        Ok(())
    }
}
