//! `tty`: processes per controlling terminal (`PROC_TTY_ONLY`).

use super::{CollectError, Collector, Context, Family, Output};

/// The `tty` collector.
pub struct Tty;

impl Collector for Tty {
    fn name(&self) -> &'static str {
        "tty"
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        let counts = super::count_by(ctx.snapshot, |p| p.tty);
        let in_use = counts.len();
        let (kept, dropped) = super::top(counts, ctx.caps.tty_max_series, 1);
        let mut family = Family::gauge(
            "libproc_tty_processes",
            "Processes per controlling terminal (PROC_TTY_ONLY); only terminals with processes.",
            &["tty"],
        );
        for (dev, n) in kept {
            let name = match ctx.snapshot.tty_name(dev) {
                Some(name) => name.to_string(),
                None => format!("dev:{dev:#x}"),
            };
            family.push(vec![name], n as f64);
        }
        out.families.push(family);
        out.families.push(Family::single(
            "libproc_ttys",
            "Terminals that are the controlling terminal of at least one process.",
            in_use as f64,
        ));
        out.truncated += dropped;
        Ok(())
    }
}
