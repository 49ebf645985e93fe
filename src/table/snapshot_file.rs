//! The snapshot file (`libproc-exporter/snapshot-v2`, see the README, "Snapshot files"): its
//! types, parsing and validation (for [`replay`](super::replay)), and writing (for
//! `libproc_exporter record`). Recording a replayed file gives the same file back.
//!
//! Parsing is strict: unknown keys, duplicate keys (in any object), wrong types, `users` keys
//! that are not canonical decimal uids, duplicate pids, a parent that is not in the file (unless
//! marked `parent_unread`: the recorder listed it and it was reaped before its read), a
//! terminal that is not in the file, and states the kernel cannot be in are errors naming the
//! field and the process.
//!
//! The `processes` array is read one element at a time, each straight into a [`ProcEntry`]:
//! no tree of `serde_json::Value`s (whose maps keep the last of two equal keys, and which cost
//! over a kilobyte per process) is ever built, so a file of a million processes is parsed in
//! about the memory its entries take.
//!
//! A Linux table is written in xnu's terms, so it replays as a Mac would be read: states
//! map to the nearest BSD `p_stat` ([`State::to_bsd`](super::State::to_bsd): running,
//! sleeping, disk sleep and idle become SRUN, stopped SSTOP, zombie SZOMB), and a process
//! with a terminal gets `PROC_FLAG_CONTROLT`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{self, Write};
use std::io::Read;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Os, Process, Snapshot, Tty, Usage};
use crate::host::Limits;
use crate::libproc::{
    NODEV, PROC_FLAG_CONTROLT, PROC_FLAG_CTTY, PROC_FLAG_INEXIT, PROC_FLAG_SLEADER, SIDL, SRUN,
    SSTOP, SZOMB,
};
use crate::users::UserNames;

/// Why a snapshot file was refused: the field and, for a process, its index and pid, then
/// what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// The `format` value this version writes: v1 and each readable process's `usage`.
pub const FORMAT: &str = "libproc-exporter/snapshot-v2";
/// The `format` of files written before `usage`, still read (they replay without it).
pub const FORMAT_V1: &str = "libproc-exporter/snapshot-v1";

/// A snapshot file's top level (see the README, "Snapshot files").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHeader {
    format: String,
    os: String,
    privileged: bool,
    caller_euid: u32,
    limits: Limits,
    /// Optional: the fork counter the recording run served.
    #[serde(default)]
    forks: Option<u64>,
    ttys: Vec<TtyEntry>,
    users: Users,
    processes: Processes,
}

/// The `users` object: uid -> name. A map type would keep the last of two equal keys and
/// read `"0501"` or `"+501"` as 501; this visitor refuses both.
#[derive(Debug)]
struct Users(BTreeMap<u32, String>);

impl<'de> Deserialize<'de> for Users {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Users, D::Error> {
        struct UsersVisitor;
        impl<'de> Visitor<'de> for UsersVisitor {
            type Value = Users;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of uid -> user name")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Users, A::Error> {
                let mut users = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let uid = canonical_u32(&key).ok_or_else(|| {
                        de::Error::custom(format!(
                            "users: key {key:?} is not a uid (a decimal number, no sign or \
                             leading zeros)"
                        ))
                    })?;
                    let name: String = map.next_value()?;
                    if users.insert(uid, name).is_some() {
                        return Err(de::Error::custom(format!("users: duplicate key {key:?}")));
                    }
                }
                Ok(Users(users))
            }
        }
        deserializer.deserialize_map(UsersVisitor)
    }
}

/// `s` as a u32 if it is the way Rust (and `record`) writes one: `0`, or digits without a
/// leading zero. `str::parse` also takes `+501` and `0501`.
fn canonical_u32(s: &str) -> Option<u32> {
    let canonical = s == "0" || (!s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()));
    canonical.then(|| s.parse().ok()).flatten()
}

/// The `processes` array, read element by element (see the module doc).
#[derive(Debug)]
struct Processes(Vec<ProcEntry>);

impl<'de> Deserialize<'de> for Processes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Processes, D::Error> {
        struct ProcessesVisitor;
        impl<'de> Visitor<'de> for ProcessesVisitor {
            type Value = Processes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of processes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Processes, A::Error> {
                let mut processes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                // Each element's text is held only while it is parsed: parsing it on its own
                // lets the error name the process, and serde_json then adds where in the file
                // the element ends.
                while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
                    let entry = serde_json::from_str::<ProcEntry>(raw.get()).map_err(|e| {
                        let at = format!("processes[{}] (pid {})", processes.len(), pid_hint(&raw));
                        de::Error::custom(format!("{at}: {}", without_position(&e)))
                    })?;
                    processes.push(entry);
                }
                processes.shrink_to_fit();
                Ok(Processes(processes))
            }
        }
        deserializer.deserialize_seq(ProcessesVisitor)
    }
}

/// The text of the first `pid` value of an element that did not parse, for the error message
/// (`?` when there is none): the first, because with `"pid":100,"pid":7` the duplicate is the
/// second.
fn pid_hint(raw: &RawValue) -> String {
    struct FirstPid(Option<Box<RawValue>>);
    impl<'de> Deserialize<'de> for FirstPid {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<FirstPid, D::Error> {
            struct FirstPidVisitor;
            impl<'de> Visitor<'de> for FirstPidVisitor {
                type Value = FirstPid;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FirstPid, A::Error> {
                    let mut first = None;
                    while let Some(key) = map.next_key::<String>()? {
                        if key == "pid" && first.is_none() {
                            first = Some(map.next_value::<Box<RawValue>>()?);
                        } else {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    Ok(FirstPid(first))
                }
            }
            deserializer.deserialize_map(FirstPidVisitor)
        }
    }
    match serde_json::from_str::<FirstPid>(raw.get()) {
        Ok(FirstPid(Some(pid))) => pid.get().to_string(),
        _ => "?".to_string(),
    }
}

/// serde_json's message without its " at line L column C", which for an element parsed on its
/// own counts from the element, not the file.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).map_or_else(|| text.clone(), str::to_string)
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
    /// xnu's `p_uniqueid` (§3.10); absent in files recorded without it (Linux, or before
    /// the fork counter), which replay without `libproc_forks_total`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniqueid: Option<u64>,
    /// Session id, where the recorder read it (every process on Linux; on macOS those the
    /// leftover test asked `getsid` about); absent elsewhere, and replayed as the process
    /// group (the closest stand-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<i32>,
    /// The parent was listed but not read: it exited and was reaped between the listing and
    /// its read (the listing is newest first, so a child is read before its parent, §2.5),
    /// or it was refused. Then `ppid` is not in the file, and only then; written only when
    /// true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parent_unread: bool,
    /// What the process had used when recorded (v2), where the recorder could read it; absent
    /// for another user's process read unprivileged on macOS, and in v1 files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
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
    /// The fork counter the recording run served (`libproc_forks_total`), where it had one;
    /// absent in files from before it was written.
    pub forks: Option<u64>,
    /// Terminal devices.
    pub ttys: Vec<Tty>,
    /// uid -> name.
    pub users: BTreeMap<u32, String>,
    /// The processes, in file order.
    pub processes: Vec<ProcEntry>,
}

/// Parses and validates a snapshot file's text. Errors name the field and, for a process,
/// its index and pid.
pub fn parse(text: &str) -> Result<SnapshotFile, ParseError> {
    let header = serde_json::from_str(text).map_err(|e| ParseError(e.to_string()))?;
    check(header).map_err(ParseError)
}

/// [`parse`], reading from `reader` as it goes: the file's text is never held whole. Pass a
/// buffered reader.
pub fn read(reader: impl Read) -> Result<SnapshotFile, ParseError> {
    let header = serde_json::from_reader(reader).map_err(|e| ParseError(e.to_string()))?;
    check(header).map_err(ParseError)
}

fn check(header: FileHeader) -> Result<SnapshotFile, String> {
    let v1 = header.format == FORMAT_V1;
    if header.format != FORMAT && !v1 {
        return Err(format!(
            "format: expected {FORMAT:?} (or {FORMAT_V1:?}), found {:?}",
            header.format
        ));
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

    let processes = header.processes.0;
    let mut index_of: HashMap<i32, usize> = HashMap::with_capacity(processes.len());
    for (i, p) in processes.iter().enumerate() {
        if let Some(first) = index_of.insert(p.pid, i) {
            return Err(format!(
                "processes[{i}] (pid {}): pid: duplicate of processes[{first}]",
                p.pid
            ));
        }
    }
    for (i, p) in processes.iter().enumerate() {
        let at = |e: String| format!("processes[{i}] (pid {}): {e}", p.pid);
        if v1 && p.usage.is_some() {
            return Err(at(format!("usage: only in {FORMAT:?} files")));
        }
        validate(p, &index_of, &tty_devs).map_err(at)?;
    }
    Ok(SnapshotFile {
        os,
        privileged: header.privileged,
        caller_euid: header.caller_euid,
        limits: header.limits,
        forks: header.forks,
        ttys,
        users: header.users.0,
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
    let parent_in_file = p.ppid == 0 || pids.contains_key(&p.ppid);
    if p.parent_unread && parent_in_file {
        return Err(format!(
            "parent_unread: ppid {} is in this file (or is 0), so it was read",
            p.ppid
        ));
    }
    if !parent_in_file && !p.parent_unread {
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
        uniqueid: p.uniqueid,
        // macOS cannot tell a zombie's session (getsid gives ESRCH, §10.1): a Linux zombie's
        // is left out too, so a recording replays and records again the same.
        sid: p.sid.filter(|_| !p.is_zombie()),
        parent_unread: false,
        usage: p.usage,
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
    // The counter is the head of the list's uniqueid at the scrape (§3.10), and the file does
    // not keep the list's order: the replay serves this instead.
    if let Some(forks) = snapshot.forks {
        let _ = writeln!(out, "  \"forks\": {forks},");
    }

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

    // A parent listed but not read (reaped since the listing, §2.5) is marked, so the strict
    // reader can tell it from a parent left out of the file.
    let marked = |p: &Process| ProcEntry {
        parent_unread: p.ppid != 0 && snapshot.find(p.ppid).is_none(),
        ..entry(p)
    };
    write_list(&mut out, "processes", snapshot.processes.iter().map(|p| json(&marked(p))));
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
