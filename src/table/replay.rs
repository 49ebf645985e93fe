//! Replays a recorded snapshot file through `SimKernel` and the darwin reader, so a table
//! recorded on a Mac is read exactly as that Mac would be read. The file itself (types,
//! parsing, validation) is [`snapshot_file`](super::snapshot_file).

use std::collections::HashSet;
use std::path::Path;

use super::darwin::{DarwinSource, TtyDevices};
use super::snapshot_file::{ProcEntry, SnapshotFile};
pub use super::snapshot_file::{parse, read};
use super::{Error, Os, Snapshot, Source};
use crate::libproc::sim::{Phase, SimKernel, SimProc, SimRusage, SimTable};
use crate::libproc::{NODEV, PROC_FLAG_CONTROLT, Pid};

impl SnapshotFile {
    /// The simulated kernel holding this table: live processes in start order (so the
    /// listing is newest first, kernel_task last, as on a Mac), zombies on the zombie list.
    pub fn kernel(&self) -> SimKernel {
        let mut order: Vec<&ProcEntry> = self.processes.iter().collect();
        order.sort_by_key(|p| {
            (p.pid != 0, p.start_sec.unwrap_or(0), p.start_usec.unwrap_or(0), p.pid)
        });
        let mut table = SimTable::with_capacity(order.len());
        for p in order {
            let mut sim = SimProc::new(p.pid, p.ppid, &p.comm);
            sim.pgid = p.pgid;
            // Where the file has no session id, getsid says ESRCH again, as it did to the
            // recorder (the process was gone by then), so a replay records back the same; the
            // process group stands in for the session in the terminal model.
            sim.sid = p.sid.unwrap_or(p.pgid);
            sim.sid_unknown = p.sid.is_none();
            sim.start_unknown = p.start_sec.is_none();
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
            // One recorded without a uniqueid stays without (issue 19): numbering it would
            // invent a fork the recording never saw.
            sim.uniqueid = p.uniqueid.unwrap_or(0);
            sim.uniqueid_unknown = p.uniqueid.is_none();
            // The file holds nanoseconds: this kernel's ticks are nanoseconds (below). One
            // the recorder could not read answers ESRCH.
            sim.rusage = p.usage.map(|u| SimRusage {
                user_ticks: u.user_ns,
                system_ticks: u.system_ns,
                child_user_ticks: u.child_user_ns,
                child_system_ticks: u.child_system_ns,
                resident_bytes: u.resident_bytes,
                footprint_bytes: u.footprint_bytes,
                disk_read_bytes: u.disk.map_or(0, |d| d.read),
                disk_written_bytes: u.disk.map_or(0, |d| d.written),
            });
            if p.pid == 0 {
                sim.text_path = None;
            }
            let phase = if p.zombie { Phase::Dead } else { Phase::Live };
            table.insert_with_phase(sim, phase).expect("pids were checked unique");
        }
        SimKernel::new(table, self.caller_euid)
            .entitled(self.privileged && self.caller_euid != 0)
            .with_timebase_hz(1_000_000_000)
    }
}

/// A snapshot file being replayed.
pub struct ReplaySource {
    origin: Os,
    inner: DarwinSource<SimKernel>,
    /// Processes recorded with usage but no disk figures (Linux without
    /// `--collector.resources.io`): a Mac always has them, the replayed kernel reads them as
    /// 0, and they are taken out again so the replay is the recording.
    without_disk: HashSet<Pid>,
    /// The fork counter the recording run served, if the file has it.
    forks: Option<u64>,
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
        // The recorded counter is served as recorded. Files from before it was written serve
        // the newest uniqueid read through the model; without recorded uniqueids, none.
        let from_uniqueids =
            file.forks.is_none() && file.processes.iter().any(|p| p.uniqueid.is_some());
        let inner = if from_uniqueids { inner } else { inner.without_forks() };
        // A file without usage (v1, or a recording without the resources collector) replays
        // without it, rather than every process unreadable.
        let inner = inner.reading_usage(file.processes.iter().any(|p| p.usage.is_some()));
        let without_disk = file
            .processes
            .iter()
            .filter(|p| p.usage.is_some_and(|u| u.disk.is_none()))
            .map(|p| p.pid)
            .collect();
        ReplaySource { origin: file.os, inner, forks: file.forks, without_disk }
    }
}

impl Source for ReplaySource {
    fn name(&self) -> &'static str {
        "replay"
    }

    fn snapshot(&mut self) -> Result<Snapshot, Error> {
        let mut snapshot = self.inner.read()?;
        snapshot.origin = self.origin;
        if self.forks.is_some() {
            snapshot.forks = self.forks;
        }
        if !self.without_disk.is_empty() {
            for p in &mut snapshot.processes {
                if let Some(usage) = p.usage.as_mut().filter(|_| self.without_disk.contains(&p.pid))
                {
                    usage.disk = None;
                }
            }
        }
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

/// Reads, validates and opens a snapshot file. The file is parsed as it is read (its text,
/// about 225 bytes a process, is never held whole) and the parsed entries are dropped once the
/// simulated kernel holds the table.
pub fn open(path: &Path) -> Result<ReplaySource, Error> {
    let file =
        std::fs::File::open(path).map_err(|error| Error::Io { path: path.to_path_buf(), error })?;
    let file = read(std::io::BufReader::with_capacity(1 << 16, file)).map_err(|e| {
        // A read error surfaces through serde_json; name the file either way.
        Error::Replay { path: path.to_path_buf(), message: e.to_string() }
    })?;
    Ok(ReplaySource::new(&file))
}
