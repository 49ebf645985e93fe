//! `files`: the system's open file table beside its limits, so a table that fills
//! ("insufficient system resources", ENFILE) shows before it refuses the next open.

use super::{CollectError, Collector, Context, Definition, Family, Output};

/// The `files` collector's declaration.
pub const DEFINITION: Definition = Definition {
    name: "files",
    help: "kern.num_files, kern.maxfiles, kern.maxfilesperproc (Linux fs/file-nr, fs/nr_open)",
    default_enabled: true,
    settings: &[],
    lists: &[],
    borrows: &[],
    build: |_| Box::new(Files),
};

/// The `files` collector.
pub struct Files;

impl Collector for Files {
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        let limits = &ctx.snapshot.limits;
        let figures = [
            (
                limits.open_files,
                "libproc_open_files",
                "Open file descriptions system-wide (kern.num_files; Linux fs/file-nr, first field).",
                "the open file count (kern.num_files / fs/file-nr)",
            ),
            (
                limits.open_files_max,
                "libproc_open_files_limit",
                "Most open files system-wide (kern.maxfiles; Linux fs/file-nr, third field).",
                "the file table limit (kern.maxfiles / fs/file-nr)",
            ),
            (
                limits.open_files_per_process_max,
                "libproc_open_files_per_process_limit",
                "Most open files one process may have (kern.maxfilesperproc; Linux fs/nr_open).",
                "the per-process file limit (kern.maxfilesperproc / fs/nr_open)",
            ),
        ];
        // Each figure present is served; a missing one is left out (never 0) and fails the
        // collector, naming the first one missing.
        let mut missing = None;
        for (value, name, help, what) in figures {
            match value {
                Some(v) => out.families.push(Family::single(name, help, v as f64)),
                None => missing = missing.or(Some(what)),
            }
        }
        match missing {
            None => Ok(()),
            Some(what) => Err(CollectError::LimitUnreadable(what)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Limits;
    use crate::table::{Os, Snapshot};
    use crate::users::UserNames;

    fn run(limits: Limits) -> (Vec<(&'static str, f64)>, Result<(), CollectError>) {
        let snapshot = Snapshot { limits, ..Snapshot::sample(Os::Macos, Vec::new()) };
        let users = UserNames::default();
        let mut out = Output::default();
        let result = Files.collect(&Context { snapshot: &snapshot, users: &users }, &mut out);
        let got = out.families.iter().map(|f| (f.name, f.samples[0].value)).collect();
        (got, result)
    }

    #[test]
    fn every_figure_is_served() {
        let limits = Limits {
            open_files: Some(4520),
            open_files_max: Some(122_880),
            open_files_per_process_max: Some(61_440),
            ..Limits::default()
        };
        let (got, result) = run(limits);
        assert_eq!(
            got,
            [
                ("libproc_open_files", 4520.0),
                ("libproc_open_files_limit", 122_880.0),
                ("libproc_open_files_per_process_limit", 61_440.0),
            ]
        );
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn a_missing_figure_is_absent_not_0_and_the_collector_says_so() {
        let limits = Limits { open_files_max: Some(122_880), ..Limits::default() };
        let (got, result) = run(limits);
        assert_eq!(got, [("libproc_open_files_limit", 122_880.0)]);
        assert_eq!(
            result,
            Err(CollectError::LimitUnreadable("the open file count (kern.num_files / fs/file-nr)"))
        );
    }
}
