//! `uid`: processes per effective uid (`PROC_UID_ONLY`).

use super::{CollectError, Collector, Context, Definition, Family, Output, Setting, Unit};

/// `--collector.uid.max-series`.
pub static MAX_SERIES: Setting = Setting {
    flag: "max-series",
    help: "Most uid series in libproc_uid_processes (the largest are kept).",
    default: 500,
    min: 1,
    unit: Unit::Count,
};

/// The `uid` collector's declaration.
pub const DEFINITION: Definition = Definition {
    name: "uid",
    help: "processes per effective uid (PROC_UID_ONLY)",
    default_enabled: true,
    settings: &[&MAX_SERIES],
    lists: &[],
    borrows: &[],
    build: |s| Box::new(Uid { max_series: s.count(&MAX_SERIES) }),
};

/// The `uid` collector.
pub struct Uid {
    /// `--collector.uid.max-series`.
    max_series: usize,
}

impl Collector for Uid {
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        let family = Family::gauge(
            "libproc_uid_processes",
            "Processes per effective uid (PROC_UID_ONLY).",
            &["uid", "user"],
        );
        super::per_user(ctx, out, family, self.max_series, |p| p.euid);
        Ok(())
    }
}
