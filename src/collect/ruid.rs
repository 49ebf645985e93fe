//! `ruid`: processes per real uid (`PROC_RUID_ONLY`), the count fork() checks against the
//! per-user limit.

use super::{CollectError, Collector, Context, Definition, Family, Output, Setting, Unit};

/// `--collector.ruid.max-series`.
pub static MAX_SERIES: Setting = Setting {
    flag: "max-series",
    help: "Most uid series in libproc_ruid_processes (the largest are kept).",
    default: 500,
    min: 1,
    unit: Unit::Count,
};

/// The `ruid` collector's declaration.
pub const DEFINITION: Definition = Definition {
    name: "ruid",
    help: "processes per real uid (PROC_RUID_ONLY)",
    default_enabled: true,
    settings: &[&MAX_SERIES],
    lists: &[],
    borrows: &[],
    build: |s| Box::new(Ruid { max_series: s.count(&MAX_SERIES) }),
};

/// The `ruid` collector.
pub struct Ruid {
    /// `--collector.ruid.max-series`.
    max_series: usize,
}

impl Collector for Ruid {
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        let family = Family::gauge(
            "libproc_ruid_processes",
            "Processes per real uid (PROC_RUID_ONLY); fork() fails with EAGAIN when this reaches libproc_processes_per_user_limit.",
            &["uid", "user"],
        );
        super::per_user(ctx, out, family, self.max_series, |p| p.ruid);
        Ok(())
    }
}
