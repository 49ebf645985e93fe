//! System-wide figures of a procfs mount: the kernel's limits under `sys/kernel/`, and the
//! boot time and fork counter in `stat`. Plain file reads, so any OS can read a copied tree.

use std::path::Path;

use super::stat::parse_processes;

/// The limits the kernel enforces on processes and terminals, `None` where the file is
/// missing or not a number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelLimits {
    /// `sys/kernel/pid_max`: the highest pid plus one, so the most processes there can be.
    pub pid_max: Option<u64>,
    /// `sys/kernel/pty/max`: pseudo-terminals.
    pub pty_max: Option<u64>,
    /// `sys/kernel/threads-max`: threads (every process is at least one).
    pub threads_max: Option<u64>,
    /// `sys/fs/file-nr`: open file descriptions now and the most there may be
    /// ([`parse_file_nr`]).
    pub file_nr: Option<(u64, u64)>,
    /// `sys/fs/nr_open`: the most descriptors one process may have (the ceiling of its
    /// `RLIMIT_NOFILE`).
    pub nr_open: Option<u64>,
}

/// The limits as the procfs mounted at `procfs` shows them.
pub fn limits(procfs: &Path) -> KernelLimits {
    let read = |rel: &str| {
        std::fs::read_to_string(procfs.join(rel)).ok().and_then(|s| s.trim().parse().ok())
    };
    KernelLimits {
        pid_max: read("sys/kernel/pid_max"),
        pty_max: read("sys/kernel/pty/max"),
        threads_max: read("sys/kernel/threads-max"),
        file_nr: std::fs::read_to_string(procfs.join("sys/fs/file-nr"))
            .ok()
            .and_then(|s| parse_file_nr(&s)),
        nr_open: read("sys/fs/nr_open"),
    }
}

/// The first and third fields of `fs/file-nr`: allocated file descriptions and `file-max`
/// (docs/linux-pidfd.md, section 5). The second is always 0 since Linux 2.6 and is not
/// looked at. The first can exceed the third: `CAP_SYS_ADMIN` may go past the limit.
pub fn parse_file_nr(text: &str) -> Option<(u64, u64)> {
    let mut fields = text.split_ascii_whitespace().map(|f| f.parse::<u64>().ok());
    let open = fields.next()??;
    let _free = fields.next()??;
    let max = fields.next()??;
    fields.next().is_none().then_some((open, max))
}

/// Processes (and threads: every clone) created since boot, from the `processes` line of
/// `stat` in the procfs mounted at `procfs`; `None` when it cannot be read. The kernel's
/// counter only goes up, so no state is kept here.
pub fn forks(procfs: &Path) -> Option<u64> {
    let stat = std::fs::read(procfs.join("stat")).ok()?;
    parse_processes(&stat)
}

/// The boot time, seconds since the epoch, from the `btime` line of `stat` in the procfs
/// mounted at `procfs`: `Ok(None)` when the line is missing or not a number, an error when
/// the file cannot be read.
pub fn boot_time(procfs: &Path) -> std::io::Result<Option<u64>> {
    let stat = std::fs::read_to_string(procfs.join("stat"))?;
    Ok(stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::parse_file_nr;

    #[test]
    fn file_nr_is_open_then_max() {
        assert_eq!(parse_file_nr("2176\t0\t9223372036854775807\n"), Some((2176, i64::MAX as u64)));
        assert_eq!(parse_file_nr("2176\t0\n"), None);
        assert_eq!(parse_file_nr("2176\t0\tmany\n"), None);
        assert_eq!(parse_file_nr("1 0 2 3\n"), None);
        assert_eq!(parse_file_nr(""), None);
    }
}
