//! Replays a recorded snapshot file through `SimKernel` and the darwin reader, so a table
//! recorded on a Mac is read exactly as that Mac would be read.
//!
//! Parsing is strict: unknown keys, wrong types, duplicate pids, a parent or terminal that is
//! not in the file, and states the kernel cannot be in are errors naming the field and the
//! process.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::darwin::{DarwinSource, TtyDevices};
use super::{Error, Os, Snapshot, Source, Tty};
use crate::libproc::sim::{Phase, SimKernel, SimProc, SimTable};
use crate::libproc::{
    NODEV, PROC_FLAG_CONTROLT, PROC_FLAG_CTTY, PROC_FLAG_INEXIT, PROC_FLAG_SLEADER, SIDL, SRUN,
    SSTOP, SZOMB,
};
use crate::limits::Limits;

/// The `format` value this version reads and writes.
pub const FORMAT: &str = "libproc-exporter/snapshot-v1";

/// A snapshot file's top level (see the README, "Snapshot files").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHeader {
    format: String,
    os: String,
    privileged: bool,
    caller_euid: u32,
    limits: Limits,
    ttys: Vec<TtyEntry>,
    users: BTreeMap<String, String>,
    processes: Vec<serde_json::Value>,
}

/// One `ttys` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtyEntry {
    /// Name below /dev.
    pub name: String,
    /// Device number.
    pub dev: u32,
}

/// One `processes` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcEntry {
    /// Process id.
    pub pid: i32,
    /// Parent pid.
    pub ppid: i32,
    /// Process group.
    pub pgid: i32,
    /// Effective uid.
    pub euid: u32,
    /// Real uid.
    pub ruid: u32,
    /// Saved uid.
    pub svuid: u32,
    /// Effective gid.
    pub egid: u32,
    /// Real gid.
    pub rgid: u32,
    /// BSD `p_stat`: 1 SIDL, 2 SRUN, 4 SSTOP, 5 SZOMB.
    pub status: u32,
    /// `PROC_FLAG_*` bits, without the derived SLEADER and CTTY.
    pub flags: u32,
    /// Command name, at most 15 bytes.
    pub comm: String,
    /// Controlling terminal's device number, `null` for none.
    pub tdev: Option<u32>,
    /// On the zombie list.
    pub zombie: bool,
    /// Start time, seconds since the epoch (`null` when the recorder could not read it).
    pub start_sec: Option<u64>,
    /// Start time, microseconds.
    pub start_usec: Option<u64>,
}

/// A parsed and validated snapshot file.
#[derive(Clone, Debug)]
pub struct SnapshotFile {
    /// Where the table was recorded.
    pub os: Os,
    /// Whether the recorder read full information.
    pub privileged: bool,
    /// The recorder's euid; the replaying kernel's caller.
    pub caller_euid: u32,
    /// The recorded limits.
    pub limits: Limits,
    /// Terminal devices.
    pub ttys: Vec<Tty>,
    /// uid -> name.
    pub users: BTreeMap<u32, String>,
    /// The processes, in file order.
    pub processes: Vec<ProcEntry>,
}

/// Parses and validates a snapshot file's text. Errors name the field and, for a process,
/// its index and pid.
pub fn parse(text: &str) -> Result<SnapshotFile, String> {
    let header: FileHeader = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if header.format != FORMAT {
        return Err(format!("format: expected {FORMAT:?}, found {:?}", header.format));
    }
    let os = match header.os.as_str() {
        "macos" => Os::Macos,
        "linux" => Os::Linux,
        other => return Err(format!("os: expected \"macos\" or \"linux\", found {other:?}")),
    };

    if header.caller_euid == 0 && !header.privileged {
        return Err(
            "privileged: false, but caller_euid 0 (root) always reads full information".into()
        );
    }

    let mut ttys = Vec::with_capacity(header.ttys.len());
    let mut tty_devs = HashSet::new();
    let mut tty_names = HashSet::new();
    for (i, tty) in header.ttys.into_iter().enumerate() {
        let at = format!("ttys[{i}] ({})", tty.name);
        if tty.dev == NODEV {
            return Err(format!("{at}: dev: {NODEV:#x} is NODEV, not a terminal"));
        }
        if tty.name.is_empty() || tty.name.contains('\0') {
            return Err(format!("{at}: name: must be a non-empty device name"));
        }
        if !tty_devs.insert(tty.dev) {
            return Err(format!("{at}: dev: {} is listed twice", tty.dev));
        }
        if !tty_names.insert(tty.name.clone()) {
            return Err(format!("{at}: name: listed twice"));
        }
        ttys.push(Tty { dev: tty.dev, name: tty.name });
    }
    ttys.sort();

    let mut users = BTreeMap::new();
    for (uid, name) in header.users {
        let parsed = uid
            .parse::<u32>()
            .map_err(|_| format!("users: key {uid:?} is not a uid (a decimal number)"))?;
        users.insert(parsed, name);
    }

    let mut processes = Vec::with_capacity(header.processes.len());
    let mut index_of: HashMap<i32, usize> = HashMap::with_capacity(header.processes.len());
    for (i, value) in header.processes.into_iter().enumerate() {
        let pid_hint = value.get("pid").map_or_else(|| "?".to_string(), |p| p.to_string());
        let at = format!("processes[{i}] (pid {pid_hint})");
        let entry: ProcEntry = serde_json::from_value(value).map_err(|e| format!("{at}: {e}"))?;
        if let Some(first) = index_of.insert(entry.pid, i) {
            return Err(format!("{at}: pid: duplicate of processes[{first}]"));
        }
        processes.push(entry);
    }
    for (i, p) in processes.iter().enumerate() {
        validate(p, &index_of, &tty_devs)
            .map_err(|e| format!("processes[{i}] (pid {}): {e}", p.pid))?;
    }
    Ok(SnapshotFile {
        os,
        privileged: header.privileged,
        caller_euid: header.caller_euid,
        limits: header.limits,
        ttys,
        users,
        processes,
    })
}

fn validate(p: &ProcEntry, pids: &HashMap<i32, usize>, ttys: &HashSet<u32>) -> Result<(), String> {
    if p.pid < 0 {
        return Err("pid: must not be negative".into());
    }
    if p.pid == 0 && p.ppid != 0 {
        return Err(format!("ppid: kernel_task (pid 0) has parent 0, found {}", p.ppid));
    }
    if p.pid != 0 && p.ppid == p.pid {
        return Err("ppid: a process cannot be its own parent".into());
    }
    if p.ppid != 0 && !pids.contains_key(&p.ppid) {
        return Err(format!("ppid: {} is not a process in this file", p.ppid));
    }
    if p.pgid < 0 {
        return Err("pgid: must not be negative".into());
    }
    if ![SIDL, SRUN, SSTOP, SZOMB].contains(&p.status) {
        return Err(format!(
            "status: {} is not a state xnu assigns (1 SIDL, 2 SRUN, 4 SSTOP, 5 SZOMB)",
            p.status
        ));
    }
    if p.status == SZOMB && !p.zombie {
        return Err("zombie: status 5 (SZOMB) needs \"zombie\": true".into());
    }
    if p.zombie && p.status != SZOMB && p.flags & PROC_FLAG_INEXIT == 0 {
        return Err(
            "zombie: a zombie has status 5 (SZOMB), or 2 with PROC_FLAG_INEXIT (0x4)".into()
        );
    }
    if p.flags & (PROC_FLAG_SLEADER | PROC_FLAG_CTTY) != 0 {
        return Err(
            "flags: SLEADER (0x20) and CTTY (0x40) are derived by the kernel; leave them out"
                .into(),
        );
    }
    if let Some(dev) = p.tdev {
        if !ttys.contains(&dev) {
            return Err(format!("tdev: {dev} is not in \"ttys\""));
        }
        if p.flags & PROC_FLAG_CONTROLT == 0 {
            return Err(
                "tdev: a process with a terminal has PROC_FLAG_CONTROLT (0x80) in flags".into()
            );
        }
    }
    if p.comm.len() > 15 {
        return Err(format!("comm: {:?} is longer than the 15 bytes the kernel keeps", p.comm));
    }
    if p.start_usec.is_some_and(|u| u >= 1_000_000) {
        return Err("start_usec: must be below 1000000".into());
    }
    Ok(())
}

impl SnapshotFile {
    /// The simulated kernel holding this table: live processes in start order (so the
    /// listing is newest first, kernel_task last, as on a Mac), zombies on the zombie list.
    pub fn kernel(&self) -> SimKernel {
        let mut order: Vec<&ProcEntry> = self.processes.iter().collect();
        order.sort_by_key(|p| {
            (p.pid != 0, p.start_sec.unwrap_or(0), p.start_usec.unwrap_or(0), p.pid)
        });
        let mut table = SimTable::new();
        for p in order {
            let mut sim = SimProc::new(p.pid, p.ppid, &p.comm);
            sim.pgid = p.pgid;
            // The file has no session ids; the process group is the closest stand-in and
            // only decides SLEADER, which is never recorded.
            sim.sid = p.pgid;
            sim.euid = p.euid;
            sim.ruid = p.ruid;
            sim.svuid = p.svuid;
            sim.egid = p.egid;
            sim.rgid = p.rgid;
            sim.svgid = p.rgid;
            sim.status = p.status;
            sim.flags = p.flags & !PROC_FLAG_CONTROLT;
            sim.controlt = p.flags & PROC_FLAG_CONTROLT != 0;
            sim.session_tty = p.tdev.unwrap_or(NODEV);
            sim.start_sec = p.start_sec.unwrap_or(0);
            sim.start_usec = p.start_usec.unwrap_or(0);
            if p.pid == 0 {
                sim.text_path = None;
            }
            let phase = if p.zombie { Phase::Dead } else { Phase::Live };
            table.insert_with_phase(sim, phase).expect("pids were checked unique");
        }
        SimKernel::new(table, self.caller_euid).entitled(self.privileged && self.caller_euid != 0)
    }
}

/// A snapshot file being replayed.
pub struct ReplaySource {
    origin: Os,
    inner: DarwinSource<SimKernel>,
}

impl ReplaySource {
    /// The source for a parsed file.
    pub fn new(file: &SnapshotFile) -> ReplaySource {
        let inner = DarwinSource::new(
            file.kernel(),
            TtyDevices::Fixed(file.ttys.clone()),
            Some(file.limits),
            file.users.clone(),
            file.caller_euid,
        );
        ReplaySource { origin: file.os, inner }
    }

    /// The simulated kernel, to change the table between scrapes (tests).
    pub fn sim(&self) -> &SimKernel {
        self.inner.kernel_ref()
    }
}

impl Source for ReplaySource {
    fn name(&self) -> &'static str {
        "replay"
    }

    fn snapshot(&mut self) -> Result<Snapshot, Error> {
        let mut snapshot = self.inner.read()?;
        snapshot.origin = self.origin;
        Ok(snapshot)
    }

    fn kernel(&self) -> Option<&dyn crate::libproc::Kernel> {
        Some(self.inner.kernel_ref())
    }

    fn resolve_tty(&self, name: &str) -> Result<u32, crate::libproc::Error> {
        self.inner.resolve_tty(name)
    }

    fn user_id(&self, name: &str) -> Option<u32> {
        self.inner.user_id(name)
    }
}

/// Reads, validates and opens a snapshot file.
pub fn open(path: &Path) -> Result<ReplaySource, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Error::Io { path: path.to_path_buf(), error })?;
    let file =
        parse(&text).map_err(|message| Error::Replay { path: path.to_path_buf(), message })?;
    Ok(ReplaySource::new(&file))
}
