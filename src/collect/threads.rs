//! `threads`: Linux's threads and their limit. On Linux every thread spends a pid, so the
//! process table's true load against `kernel.pid_max` is its tasks, not its processes.

use super::{CollectError, Collector, Context, Definition, Family, Output};

/// The `threads` collector's declaration.
pub const DEFINITION: Definition = Definition {
    name: "threads",
    help: "threads and kernel.threads-max (Linux only; macOS reports nothing)",
    default_enabled: true,
    settings: &[],
    lists: &[],
    borrows: &[],
    build: |_| Box::new(Threads),
};

/// The `threads` collector.
pub struct Threads;

impl Collector for Threads {
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        // A source that reads no thread counts (libproc: they are in task info only, one more
        // call per process and refused for other users) has none for any process: then there
        // is no series rather than a false 0.
        let counts = ctx.snapshot.processes.iter().filter_map(|p| p.threads);
        let total = counts.fold(None, |sum: Option<u64>, n| Some(sum.unwrap_or(0) + u64::from(n)));
        if let Some(total) = total {
            out.families.push(Family::single(
                "libproc_threads",
                "Threads of every process read (Linux: the Threads: line of /proc/PID/status).",
                total as f64,
            ));
        }
        if let Some(max) = ctx.snapshot.threads_max {
            out.families.push(Family::single(
                "libproc_threads_limit",
                "Most threads the kernel allows (Linux kernel.threads-max).",
                max as f64,
            ));
        }
        Ok(())
    }
}
