//! The `listpids` and `record` subcommands.
//!
//! `listpids` is the libproc binding's demonstration tool: on a libproc source (macOS, or a
//! replay through `SimKernel`) each filter is one `__proc_info` listing with its `PROC_*`
//! type; on procfs, which has no such call, the same filter runs over a snapshot. The
//! semantics are the same on every source: effective vs real uid, the session's controlling
//! terminal, zombies included.

use std::io::Write;

use crate::cli::{FilterArgs, ListpidsArgs};
use crate::libproc::{self, ListFilter, Pid};
use crate::table::{Process, Snapshot, Source};
use crate::users::UserNames;

/// A `listpids` filter, resolved and validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The libproc filter.
    pub filter: ListFilter,
    /// The terminal's name as given, for the table.
    pub tty_name: Option<String>,
}

fn parse_user(flag: &str, value: &str, source: &dyn Source) -> Result<u32, String> {
    if let Ok(uid) = value.parse::<u32>() {
        return Ok(uid);
    }
    source.user_id(value).ok_or_else(|| format!("{flag} {value:?}: no such user"))
}

fn parse_pid(flag: &str, value: &str) -> Result<Pid, String> {
    value.parse::<Pid>().ok().filter(|&pid| pid >= 0).ok_or_else(|| {
        format!("{flag} {value:?}: must be a process id (a whole number, 0 or more)")
    })
}

impl Filter {
    /// Resolves the flags: user names through the password database, terminals through the
    /// source (/dev, or a replayed file's list).
    pub fn from_args(args: &FilterArgs, source: &dyn Source) -> Result<Filter, String> {
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
            let dev = source.resolve_tty(t).map_err(|e| format!("--tty {t:?}: {e}"))?;
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
) -> Result<(), String> {
    let filter = Filter::from_args(&args.filter, source)?;
    let pids = match source.kernel() {
        Some(kernel) => listpids_kernel(kernel, filter.filter)?,
        None => {
            let snapshot = source.snapshot().map_err(|e| e.to_string())?;
            let mut pids: Vec<Pid> =
                snapshot.processes.iter().filter(|p| filter.matches(p)).map(|p| p.pid).collect();
            pids.sort_unstable();
            pids
        }
    };
    let write = |out: &mut dyn Write, text: String| {
        out.write_all(text.as_bytes()).map_err(|e| e.to_string())
    };
    if !args.long {
        let mut text = String::with_capacity(pids.len() * 7);
        for pid in pids {
            text.push_str(&pid.to_string());
            text.push('\n');
        }
        return write(out, text);
    }
    let snapshot = source.snapshot().map_err(|e| e.to_string())?;
    write(out, table(&snapshot, &pids))
}

/// Lists with a libproc kernel directly: the `PROC_*` call itself. This is what `listpids`
/// shows on macOS, and what the consistency tests compare the snapshot against.
pub fn listpids_kernel(
    kernel: &dyn libproc::Kernel,
    filter: ListFilter,
) -> Result<Vec<Pid>, String> {
    let mut pids = libproc::list_pids(kernel, filter).map_err(|e| e.to_string())?;
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

/// Runs `record`: the current table as a snapshot file.
pub fn record(source: &mut dyn Source, out: &mut dyn Write) -> Result<(), String> {
    let snapshot = source.snapshot().map_err(|e| e.to_string())?;
    let text = crate::table::record::to_json(&snapshot, &UserNames::new());
    out.write_all(text.as_bytes()).map_err(|e| e.to_string())
}
