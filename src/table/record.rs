//! Writes a [`Snapshot`] as a snapshot file (`libproc_exporter record`), the inverse of
//! [`replay`](super::replay): recording a replayed file gives the same file back.
//!
//! A Linux table is written in xnu's terms, so it replays as a Mac would be read: states
//! map to the nearest BSD `p_stat` ([`State::to_bsd`](super::State::to_bsd): running,
//! sleeping, disk sleep and idle become SRUN, stopped SSTOP, zombie SZOMB), and a process
//! with a terminal gets `PROC_FLAG_CONTROLT`.

use std::fmt::Write;

use super::replay::{FORMAT, ProcEntry, TtyEntry};
use super::{Process, Snapshot};
use crate::libproc::{PROC_FLAG_CONTROLT, PROC_FLAG_CTTY, PROC_FLAG_SLEADER};
use crate::users::UserNames;

/// The file entry for one process.
pub fn entry(p: &Process) -> ProcEntry {
    let flags = match p.flags {
        // SLEADER and CTTY are derived by the kernel and only in full info: leave them out so
        // a privileged and an unprivileged reading record the same flags.
        Some(flags) => flags & !(PROC_FLAG_SLEADER | PROC_FLAG_CTTY),
        None if p.tty.is_some() => PROC_FLAG_CONTROLT,
        None => 0,
    };
    ProcEntry {
        pid: p.pid,
        ppid: p.ppid,
        pgid: p.pgid,
        euid: p.euid,
        ruid: p.ruid,
        svuid: p.svuid,
        egid: p.egid,
        rgid: p.rgid,
        status: p.bsd_status.unwrap_or_else(|| p.state.to_bsd()),
        flags,
        comm: comm15(&p.comm.to_string()),
        tdev: p.tty,
        zombie: p.is_zombie(),
        start_sec: p.start.map(|s| s.sec),
        start_usec: p.start.map(|s| s.usec),
    }
}

/// The first 15 bytes of a name, cut at a character boundary: all xnu keeps of `p_comm`
/// (Linux kernel threads can show longer names).
fn comm15(name: &str) -> String {
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// The snapshot file's text: the header fields one per line, and one line per terminal and
/// per process (readable, diffable, and small at 10,000 processes).
pub fn to_json(snapshot: &Snapshot, names: &UserNames) -> String {
    let mut out = String::with_capacity(256 + snapshot.processes.len() * 220);
    out.push_str("{\n");
    let _ = writeln!(out, "  \"format\": {},", json(FORMAT));
    let _ = writeln!(out, "  \"os\": {},", json(snapshot.origin.as_str()));
    let _ = writeln!(out, "  \"privileged\": {},", snapshot.privileged);
    let _ = writeln!(out, "  \"caller_euid\": {},", snapshot.caller_euid);
    let _ = writeln!(out, "  \"limits\": {},", json(&snapshot.limits));

    let ttys: Vec<TtyEntry> =
        snapshot.ttys.iter().map(|t| TtyEntry { name: t.name.clone(), dev: t.dev }).collect();
    write_list(&mut out, "ttys", ttys.iter().map(json));
    out.push_str(",\n");

    let mut uids: Vec<u32> = snapshot.processes.iter().flat_map(|p| [p.euid, p.ruid]).collect();
    uids.sort_unstable();
    uids.dedup();
    let users: std::collections::BTreeMap<String, String> = uids
        .into_iter()
        .filter_map(|uid| {
            let name = snapshot.users.get(&uid).cloned().or_else(|| names.name(uid))?;
            Some((uid.to_string(), name))
        })
        .collect();
    // Numeric order reads better than the string order a map of strings would give.
    let mut users: Vec<(String, String)> = users.into_iter().collect();
    users.sort_by_key(|(uid, _)| uid.parse::<u32>().unwrap_or(u32::MAX));
    out.push_str("  \"users\": {");
    for (i, (uid, name)) in users.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(out, "{sep}{}: {}", json(uid), json(name));
    }
    out.push_str("},\n");

    write_list(&mut out, "processes", snapshot.processes.iter().map(|p| json(&entry(p))));
    out.push_str("\n}\n");
    out
}

fn write_list(out: &mut String, key: &str, items: impl Iterator<Item = String>) {
    let _ = write!(out, "  \"{key}\": [");
    let mut first = true;
    for item in items {
        out.push_str(if first { "\n    " } else { ",\n    " });
        out.push_str(&item);
        first = false;
    }
    out.push_str(if first { "]" } else { "\n  ]" });
}

/// Compact JSON for a value serde writes; these plain structures cannot fail to serialise.
fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("\"<{e}>\""))
}
