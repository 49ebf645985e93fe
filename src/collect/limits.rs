//! `limits`: the kernel's process and terminal limits, beside which the counts are read.

use super::{CollectError, Collector, Context, Definition, Family, Output};

/// The `limits` collector's declaration.
pub const DEFINITION: Definition = Definition {
    name: "limits",
    help: "kern.maxproc, kern.maxprocperuid, kern.tty.ptmx_max",
    default_enabled: true,
    settings: &[],
    lists: &[],
    borrows: &[],
    build: |_| Box::new(Limits),
};

/// The `limits` collector.
pub struct Limits;

impl Collector for Limits {
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        let limits = &ctx.snapshot.limits;
        if let Some(v) = limits.maxproc {
            out.families.push(Family::single(
                "libproc_processes_limit",
                "Most processes the kernel allows (kern.maxproc; Linux kernel.pid_max).",
                v as f64,
            ));
        }
        if let Some(v) = limits.maxprocperuid {
            out.families.push(Family::single(
                "libproc_processes_per_user_limit",
                "Most processes one real uid may have (kern.maxprocperuid; macOS only).",
                v as f64,
            ));
        }
        if let Some(v) = limits.ptmx_max {
            out.families.push(Family::single(
                "libproc_pty_limit",
                "Most pseudo-terminals (kern.tty.ptmx_max; Linux kernel.pty.max).",
                v as f64,
            ));
        }
        match limits.maxproc {
            Some(_) => Ok(()),
            None => Err(CollectError::LimitUnreadable(
                "the process limit (kern.maxproc / kernel.pid_max)",
            )),
        }
    }
}
