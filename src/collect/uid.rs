//! `uid`: processes per effective uid (`PROC_UID_ONLY`).

use super::{CollectError, Collector, Context, Definition, Family, Output, Setting};

/// The `uid` collector's declaration.
pub(super) const DEFINITION: Definition = Definition {
    name: "uid",
    help: "processes per effective uid (PROC_UID_ONLY)",
    default_enabled: true,
    settings: &[Setting {
        flag: "max-series",
        help: "Most uid series in libproc_uid_processes (the largest are kept).",
        default: 500,
        min: 1,
    }],
    lists: &[],
    build: |s| Box::new(Uid { max_series: s.get_usize("max-series") }),
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
