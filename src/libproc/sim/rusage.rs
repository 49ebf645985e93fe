//! Callnum 9 on the simulated kernel (§9.8): each process's resource usage, the reaped
//! children's sums the reaper gains, and `proc_pid_rusage`'s checks in xnu's order.

use super::super::pidinfo::Pod;
use super::super::{Errno, RusageInfoV2};
use super::{Call, Phase, SimKernel, SimProc, SimTable};

/// What `proc_pid_rusage` reports for a simulated process: Mach ticks and bytes (§9.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimRusage {
    /// `ri_user_time`, ticks.
    pub user_ticks: u64,
    /// `ri_system_time`, ticks.
    pub system_ticks: u64,
    /// `ri_child_user_time`: the reaped children's user time (their own and their reaped
    /// children's), ticks.
    pub child_user_ticks: u64,
    /// `ri_child_system_time`, ticks.
    pub child_system_ticks: u64,
    /// `ri_resident_size`, bytes.
    pub resident_bytes: u64,
    /// `ri_phys_footprint`, bytes (0 once the process is a zombie, §9.5).
    pub footprint_bytes: u64,
    /// `ri_diskio_bytesread`.
    pub disk_read_bytes: u64,
    /// `ri_diskio_byteswritten`.
    pub disk_written_bytes: u64,
}

/// The size of each `rusage_info_vN`, by flavor (§9.2).
const SIZES: [usize; 7] = [96, 144, 160, 232, 296, 304, 464];

impl SimRusage {
    /// The `rusage_info_v2` the kernel copies out; a zombie's is its exit snapshot, with the
    /// footprint 0 (§9.5).
    fn info(&self, zombie: bool) -> RusageInfoV2 {
        RusageInfoV2 {
            ri_user_time: self.user_ticks,
            ri_system_time: self.system_ticks,
            ri_resident_size: self.resident_bytes,
            ri_phys_footprint: if zombie { 0 } else { self.footprint_bytes },
            ri_child_user_time: self.child_user_ticks,
            ri_child_system_time: self.child_system_ticks,
            ri_diskio_bytesread: self.disk_read_bytes,
            ri_diskio_byteswritten: self.disk_written_bytes,
            ..RusageInfoV2::default()
        }
    }

    /// What reaping `child` adds to its reaper: the child's own times plus those of the
    /// children it reaped (`update_rusage_info_child`, §9.4).
    pub(super) fn add_reaped(&mut self, child: &SimRusage) {
        self.child_user_ticks = self
            .child_user_ticks
            .saturating_add(child.user_ticks.saturating_add(child.child_user_ticks));
        self.child_system_ticks = self
            .child_system_ticks
            .saturating_add(child.system_ticks.saturating_add(child.child_system_ticks));
    }
}

impl SimKernel {
    /// `proc_pid_rusage(pid, flavor, buf)`, §9.1 and §9.8: no callnum 9 (a kernel older than
    /// macOS 10.9) is EINVAL from the multiplexer; then ESRCH (zombies answer without any
    /// flag), MACF, the same-euid rule (EPERM), EINVAL for a flavor this kernel lacks, EFAULT
    /// for a buffer smaller than the flavor's structure (no size is passed). Success is 0.
    pub(super) fn pid_rusage(
        &self,
        table: &SimTable,
        call: &Call,
        buf: Option<&mut [u8]>,
    ) -> Result<usize, Errno> {
        let Some(max_flavor) = self.rusage_max_flavor else { return Err(Errno::EINVAL) };
        // Zombies answer without any flag (§9.1): every process in the table does.
        let target: &SimProc = table.get(call.pid).ok_or(Errno::ESRCH)?;
        let zombie = table.phase(call.pid) == Some(Phase::Dead);
        self.deny(call, Some(target))?;
        if self.caller_euid != target.euid && self.caller_euid != 0 && !self.entitled {
            return Err(Errno::EPERM);
        }
        let size = match SIZES.get(call.flavor as usize) {
            Some(&size) if call.flavor <= max_flavor => size,
            _ => return Err(Errno::EINVAL),
        };
        // A replayed process the recorder could not read answers as it did then: gone.
        let rusage = target.rusage.as_ref().ok_or(Errno::ESRCH)?;
        let buf = buf.filter(|b| b.len() >= size).ok_or(Errno::EFAULT)?;
        let mut info = rusage.info(zombie);
        let bytes = info.as_bytes_mut();
        let n = bytes.len().min(size);
        buf[..n].copy_from_slice(&bytes[..n]);
        // Later flavors only append fields (§9.3); the simulator has nothing to say in them.
        buf[n..size].fill(0);
        Ok(0)
    }
}
