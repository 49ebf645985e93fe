//! `forks`: processes created since boot, so a storm of short-lived processes between two
//! scrapes shows as a rate even when the counts at each scrape are flat.

use super::{CollectError, Collector, Context, Definition, Family, Kind, Output};

/// The `forks` collector's declaration.
pub const DEFINITION: Definition = Definition {
    name: "forks",
    help: "processes created since boot (newest p_uniqueid; Linux /proc/stat processes)",
    default_enabled: true,
    settings: &[],
    lists: &[],
    borrows: &[],
    build: |_| Box::new(Forks),
};

/// The `forks` collector.
pub struct Forks;

impl Collector for Forks {
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        // The source keeps the value monotonic (table::darwin; the Linux counter is the
        // kernel's own), so this only reports it.
        let forks = ctx.snapshot.forks.ok_or(CollectError::CounterUnreadable(
            "the fork counter (p_uniqueid of the newest process / processes in /proc/stat)",
        ))?;
        let mut family = Family::single(
            "libproc_forks_total",
            "Processes created since boot. macOS: p_uniqueid of the newest live process, so forks whose processes all exited before a newer one lives are counted late; Linux: every clone, threads included (/proc/stat processes).",
            forks as f64,
        );
        family.kind = Kind::Counter;
        out.families.push(family);
        Ok(())
    }
}
