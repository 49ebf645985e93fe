//! `processes`: every process (`PROC_ALL_PIDS`) by state.

use super::{CollectError, Collector, Context, Definition, Family, Output};

/// The `processes` collector's declaration.
pub const DEFINITION: Definition = Definition {
    name: "processes",
    help: "processes by state (PROC_ALL_PIDS)",
    default_enabled: true,
    settings: &[],
    lists: &[],
    borrows: &[],
    build: |_| Box::new(Processes),
};

/// The `processes` collector.
pub struct Processes;

impl Collector for Processes {
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        let counts = super::count_by(ctx.snapshot, |p| Some(p.state));
        let mut family = Family::gauge(
            "libproc_processes",
            "Processes by state (PROC_ALL_PIDS). macOS reports every live process as alive: xnu never records sleeping.",
            &["state"],
        );
        // Every state of the OS, zero or not, so a query for zombies always has a series.
        for &state in ctx.snapshot.os.states() {
            family.push(vec![state.label().to_string()], *counts.get(&state).unwrap_or(&0) as f64);
        }
        // A state outside the OS's vocabulary would be a reader bug; show it rather than lose it.
        let mut extra: Vec<_> =
            counts.iter().filter(|(s, _)| !ctx.snapshot.os.states().contains(s)).collect();
        extra.sort();
        for (state, &n) in extra {
            family.push(vec![state.label().to_string()], n as f64);
        }
        out.families.push(family);
        Ok(())
    }
}
