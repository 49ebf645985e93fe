//! `tty`: processes per controlling terminal (`PROC_TTY_ONLY`).

use super::{CollectError, Collector, Context, Definition, Family, Output, Setting, Unit};

/// `--collector.tty.max-series`.
pub static MAX_SERIES: Setting = Setting {
    flag: "max-series",
    help: "Most terminal series in libproc_tty_processes (the largest are kept).",
    default: 500,
    min: 1,
    unit: Unit::Count,
};

/// The `tty` collector's declaration.
pub const DEFINITION: Definition = Definition {
    name: "tty",
    help: "processes per controlling terminal (PROC_TTY_ONLY)",
    default_enabled: true,
    settings: &[&MAX_SERIES],
    lists: &[],
    borrows: &[],
    build: |s| Box::new(Tty { max_series: s.count(&MAX_SERIES) }),
};

/// The `tty` collector.
pub struct Tty {
    /// `--collector.tty.max-series`.
    max_series: usize,
}

impl Collector for Tty {
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        // Counted per name, not per device number: Linux gives one pty two numbers (the
        // new and the legacy encoding both name pts/300), and two series with one label set
        // would be a duplicate that Prometheus takes silently.
        let snapshot = ctx.snapshot;
        let counts = super::count_by(snapshot, |p| {
            p.tty.map(|dev| match snapshot.tty_name(dev) {
                Some(name) => name.to_string(),
                None => format!("dev:{dev:#x}"),
            })
        });
        let in_use = counts.len();
        let family = Family::gauge(
            "libproc_tty_processes",
            "Processes per controlling terminal (PROC_TTY_ONLY); only terminals with processes.",
            &["tty"],
        );
        super::push_top(out, family, counts, (self.max_series, 1), |name| vec![name]);
        out.families.push(Family::single(
            "libproc_ttys",
            "Terminals that are the controlling terminal of at least one process.",
            in_use as f64,
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Os, Process, Snapshot, Tty as Device};
    use crate::users::UserNames;

    fn on_tty(pid: i32, tty: u32) -> Process {
        Process { tty: Some(tty), ..Process::sample(pid, 1, "bash") }
    }

    #[test]
    fn two_device_numbers_of_one_terminal_give_one_summed_series() {
        // pts 300 in the kernel's new_encode_dev form (136:300) and in the legacy one
        // (137:44): both are /dev/pts/300.
        let (new, legacy) = ((136 << 8) | 0x2c | (1 << 20), (137 << 8) | 44);
        let processes = vec![on_tty(10, new), on_tty(11, new), on_tty(12, legacy)];
        let snapshot = Snapshot {
            ttys: vec![
                Device { dev: legacy, name: "pts/300".into() },
                Device { dev: new, name: "pts/300".into() },
            ],
            ..Snapshot::sample(Os::Linux, processes)
        };
        let users = UserNames::new();
        let ctx = Context { snapshot: &snapshot, users: &users };
        let mut out = Output::default();
        DEFINITION.default_instance().collector.collect(&ctx, &mut out).unwrap();
        let series = &out.families[0].samples;
        assert_eq!(series.len(), 1, "{series:?}");
        assert_eq!((series[0].labels[0].as_str(), series[0].value), ("pts/300", 3.0));
        assert_eq!(out.families[1].samples[0].value, 1.0, "one terminal in use");
    }
}
