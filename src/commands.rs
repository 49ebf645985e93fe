//! The `listpids` and `record` subcommands.
//!
//! `listpids` is the libproc binding's demonstration tool: on a libproc source (macOS, or a
//! replay through `SimKernel`) each filter is one `__proc_info` listing with its `PROC_*`
//! type; on procfs, which has no such call, the same filter runs over a snapshot. The
//! semantics are the same on every source: effective vs real uid, the session's controlling
//! terminal, zombies included.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{FilterArgs, ListpidsArgs};
use crate::libproc::{self, ListFilter, Pid};
use crate::table::{self, Process, Snapshot, Source};
use crate::users::UserNames;

/// Why a subcommand failed. Each variant names what the user gave (the flag and its value,
/// the output file) or the step that failed, and keeps the underlying error as its source;
/// `main` prints it once, as one line.
#[derive(Debug)]
pub enum CommandError {
    /// `--uid` / `--ruid` named a user the password database does not know.
    NoSuchUser {
        /// The flag.
        flag: &'static str,
        /// The name as given.
        value: String,
    },
    /// `--ppid` / `--pgrp` is not a process id.
    NotAPid {
        /// The flag.
        flag: &'static str,
        /// The value as given.
        value: String,
    },
    /// `--tty` names no terminal.
    Tty {
        /// The terminal as given.
        value: String,
        /// Why it did not resolve.
        source: libproc::Error,
    },
    /// The `__proc_info` listing failed (its error names the call and the list type).
    List(libproc::Error),
    /// Reading the process table failed (its error names the source and the step).
    Snapshot(table::Error),
    /// `record --output FILE` could not be created.
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing the result failed (a closed pipe, a full disk).
    Write {
        /// Where it went: `standard output` or the file.
        to: String,
        /// Why.
        source: std::io::Error,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::NoSuchUser { flag, value } => write!(f, "{flag} {value:?}: no such user"),
            CommandError::NotAPid { flag, value } => {
                write!(f, "{flag} {value:?}: must be a process id (a whole number, 0 or more)")
            }
            CommandError::Tty { value, source } => write!(f, "--tty {value:?}: {source}"),
            CommandError::List(e) => e.fmt(f),
            CommandError::Snapshot(e) => e.fmt(f),
            CommandError::Create { path, source } => {
                write!(f, "--output {}: {source}", path.display())
            }
            CommandError::Write { to, source } => write!(f, "writing to {to}: {source}"),
        }
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CommandError::NoSuchUser { .. } | CommandError::NotAPid { .. } => None,
            CommandError::Tty { source, .. } | CommandError::List(source) => Some(source),
            CommandError::Snapshot(e) => Some(e),
            CommandError::Create { source, .. } | CommandError::Write { source, .. } => {
                Some(source)
            }
        }
    }
}

/// A `listpids` filter, resolved and validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The libproc filter.
    pub filter: ListFilter,
    /// The terminal's name as given, for the table.
    pub tty_name: Option<String>,
}

fn parse_user(flag: &'static str, value: &str, source: &dyn Source) -> Result<u32, CommandError> {
    if let Ok(uid) = value.parse::<u32>() {
        return Ok(uid);
    }
    source.user_id(value).ok_or_else(|| CommandError::NoSuchUser { flag, value: value.into() })
}

fn parse_pid(flag: &'static str, value: &str) -> Result<Pid, CommandError> {
    value
        .parse::<Pid>()
        .ok()
        .filter(|&pid| pid >= 0)
        .ok_or_else(|| CommandError::NotAPid { flag, value: value.into() })
}

impl Filter {
    /// Resolves the flags: user names through the password database, terminals through the
    /// source (/dev, or a replayed file's list).
    pub fn from_args(args: &FilterArgs, source: &dyn Source) -> Result<Filter, CommandError> {
        let mut tty_name = None;
        let filter = if let Some(u) = &args.uid {
            ListFilter::Uid(parse_user("--uid", u, source)?)
        } else if let Some(u) = &args.ruid {
            ListFilter::Ruid(parse_user("--ruid", u, source)?)
        } else if let Some(p) = &args.ppid {
            ListFilter::Ppid(parse_pid("--ppid", p)?)
        } else if let Some(p) = &args.pgrp {
            ListFilter::Pgrp(parse_pid("--pgrp", p)?)
        } else if let Some(t) = &args.tty {
            let dev = source
                .resolve_tty(t)
                .map_err(|source| CommandError::Tty { value: t.clone(), source })?;
            tty_name = Some(t.trim_start_matches("/dev/").to_string());
            ListFilter::Tty(dev)
        } else {
            ListFilter::All
        };
        Ok(Filter { filter, tty_name })
    }

    /// Whether a snapshot record matches, with the kernel's semantics (§2.1).
    pub fn matches(&self, p: &Process) -> bool {
        match self.filter {
            ListFilter::All => true,
            ListFilter::Uid(uid) => p.euid == uid,
            ListFilter::Ruid(uid) => p.ruid == uid,
            ListFilter::Ppid(ppid) => p.ppid == ppid && p.pid != 0,
            ListFilter::Pgrp(pgid) => p.pgid == pgid,
            ListFilter::Tty(dev) => p.tty == Some(dev),
            ListFilter::Kdebug => false,
        }
    }
}

/// Runs `listpids` against `source`, writing pids (ascending) or, with `-l`, a table.
pub fn listpids(
    source: &mut dyn Source,
    args: &ListpidsArgs,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let filter = Filter::from_args(&args.filter, source)?;
    let pids = match source.kernel() {
        Some(kernel) => listpids_kernel(kernel, filter.filter)?,
        None => {
            let snapshot = source.snapshot().map_err(CommandError::Snapshot)?;
            let mut pids: Vec<Pid> =
                snapshot.processes.iter().filter(|p| filter.matches(p)).map(|p| p.pid).collect();
            pids.sort_unstable();
            pids
        }
    };
    if !args.long {
        let mut text = String::with_capacity(pids.len() * 7);
        for pid in pids {
            text.push_str(&pid.to_string());
            text.push('\n');
        }
        return write(out, &text, "standard output");
    }
    let snapshot = source.snapshot().map_err(CommandError::Snapshot)?;
    write(out, &table(&snapshot, &pids), "standard output")
}

fn write(out: &mut dyn Write, text: &str, to: &str) -> Result<(), CommandError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| CommandError::Write { to: to.to_string(), source })
}

/// Lists with a libproc kernel directly: the `PROC_*` call itself. This is what `listpids`
/// shows on macOS, and what the consistency tests compare the snapshot against.
pub fn listpids_kernel(
    kernel: &dyn libproc::Kernel,
    filter: ListFilter,
) -> Result<Vec<Pid>, CommandError> {
    let mut pids = libproc::list_pids(kernel, filter).map_err(CommandError::List)?;
    pids.sort_unstable();
    Ok(pids)
}

/// The `-l` table: pid, ppid, pgid, uid, ruid, tty, state, comm.
pub fn table(snapshot: &Snapshot, pids: &[Pid]) -> String {
    let mut text = format!(
        "{:>7} {:>7} {:>7} {:>6} {:>6} {:<10} {:<10} {}\n",
        "PID", "PPID", "PGID", "UID", "RUID", "TTY", "STATE", "COMM"
    );
    for &pid in pids {
        let Some(p) = snapshot.find(pid) else { continue };
        let tty = match p.tty {
            Some(dev) => snapshot.tty_name(dev).map_or_else(|| format!("{dev:#x}"), str::to_string),
            None => "?".to_string(),
        };
        text.push_str(&format!(
            "{:>7} {:>7} {:>7} {:>6} {:>6} {:<10} {:<10} {}\n",
            p.pid,
            p.ppid,
            p.pgid,
            p.euid,
            p.ruid,
            tty,
            p.state.label(),
            p.comm
        ));
    }
    text
}

/// The snapshot `record` writes: the source's, and every process's uniqueid where the source
/// has them.
pub fn recording(source: &mut dyn Source) -> Result<Snapshot, CommandError> {
    let mut snapshot = source.snapshot().map_err(CommandError::Snapshot)?;
    // A scrape reads one uniqueid (the newest process's); a recording keeps every process's,
    // one more call each, where the source has them (§3.10). Not only when the scrape found a
    // fork count: its few tries all miss when the newest processes were reaped meanwhile.
    if let Some(kernel) = source.kernel() {
        for p in &mut snapshot.processes {
            let info = crate::libproc::pid_uniqid_info(kernel, p.pid, true);
            p.uniqueid = info.ok().map(|info| info.p_uniqueid);
        }
    } else {
        // The leftover reads date some processes by uniqueid; a file has all or none.
        snapshot.processes.iter_mut().for_each(|p| p.uniqueid = None);
    }
    // A scrape asks getsid only where the leftover test needs it; a recording keeps every
    // live process's session (zombies have none to give, §10.1), one more call each.
    if let Some(kernel) = source.kernel() {
        // getsid(0) would answer the caller's own session, not kernel_task's (§10.1).
        for p in snapshot.processes.iter_mut().filter(|p| p.sid.is_none() && p.pid != 0) {
            p.sid = kernel.getsid(p.pid).ok();
        }
        // Likewise the start time, where full BSD info answers (one's own processes, or all
        // as root, §10.3): a scrape reads it only for leftovers, and which processes are
        // leftovers can differ between the recording run and a replay of a table that
        // changed while it was read. So the file has it for every readable process.
        for p in snapshot.processes.iter_mut().filter(|p| p.start.is_none()) {
            if let Ok(info) = crate::libproc::pid_bsd_info(kernel, p.pid, true) {
                // Only from the process the snapshot read (a reused pid, a setuid exec).
                p.start = crate::table::darwin::start_of(&info, p);
            }
        }
    }
    Ok(snapshot)
}

/// Runs `record`: the current table as a snapshot file, written to `output` (created or
/// truncated) or to standard output.
pub fn record(source: &mut dyn Source, output: Option<&Path>) -> Result<(), CommandError> {
    let snapshot = recording(source)?;
    let text = crate::table::snapshot_file::to_json(&snapshot, &UserNames::new());
    match output {
        Some(path) => {
            let mut file = std::fs::File::create(path)
                .map_err(|source| CommandError::Create { path: path.to_path_buf(), source })?;
            write(&mut file, &text, &path.display().to_string())
        }
        None => write(&mut std::io::stdout().lock(), &text, "standard output"),
    }
}
