//! Callnum 9, `proc_pid_rusage` (§9): a process's CPU times, memory, disk traffic and the
//! CPU of the children it reaped, in one `struct rusage_info_v2`.
//!
//! The call differs from callnum 2 in ways that matter to a reader (§9.1): zombies answer
//! without any flag, the buffer size is not passed (the kernel copies exactly the flavor's
//! size, so the buffer must be that large), a success returns 0 rather than a length, and
//! the order of checks is ESRCH, then EPERM (same effective uid or root, §1.5), then EINVAL
//! for a flavor the kernel does not know. The CPU times are Mach absolute-time ticks, not
//! nanoseconds (§9.6).

use super::pidinfo::Pod;
use super::{Error, Kernel, Op, Pid};

/// `PROC_INFO_CALL_PIDRUSAGE`: `proc_pid_rusage` (§9.1).
pub const PROC_CALLNUM_PIDRUSAGE: i32 = 9;

/// `RUSAGE_INFO_V0`: CPU times, memory, wakeups (96 bytes, §9.2).
pub const RUSAGE_INFO_V0: u32 = 0;
/// `RUSAGE_INFO_V1`: adds the reaped children's figures (144 bytes).
pub const RUSAGE_INFO_V1: u32 = 1;
/// `RUSAGE_INFO_V2`: adds disk I/O (160 bytes). The oldest flavor with every field the
/// exporter reads, and every kernel since macOS 10.9 (xnu-2422) has it (§9.2).
pub const RUSAGE_INFO_V2: u32 = 2;

/// `struct rusage_info_v2` (§9.3), 160 bytes, align 8. Times are Mach absolute-time ticks,
/// sizes bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // the kernel's field names; §9.3 documents each
pub struct RusageInfoV2 {
    pub ri_uuid: [u8; 16],
    pub ri_user_time: u64,
    pub ri_system_time: u64,
    pub ri_pkg_idle_wkups: u64,
    pub ri_interrupt_wkups: u64,
    pub ri_pageins: u64,
    pub ri_wired_size: u64,
    pub ri_resident_size: u64,
    pub ri_phys_footprint: u64,
    pub ri_proc_start_abstime: u64,
    pub ri_proc_exit_abstime: u64,
    pub ri_child_user_time: u64,
    pub ri_child_system_time: u64,
    pub ri_child_pkg_idle_wkups: u64,
    pub ri_child_interrupt_wkups: u64,
    pub ri_child_pageins: u64,
    pub ri_child_elapsed_abstime: u64,
    pub ri_diskio_bytesread: u64,
    pub ri_diskio_byteswritten: u64,
}

// The offsets of §9.3's table.
const _: () = assert!(size_of::<RusageInfoV2>() == 160);
const _: () = assert!(std::mem::offset_of!(RusageInfoV2, ri_user_time) == 16);
const _: () = assert!(std::mem::offset_of!(RusageInfoV2, ri_resident_size) == 64);
const _: () = assert!(std::mem::offset_of!(RusageInfoV2, ri_phys_footprint) == 72);
const _: () = assert!(std::mem::offset_of!(RusageInfoV2, ri_child_user_time) == 96);
const _: () = assert!(std::mem::offset_of!(RusageInfoV2, ri_diskio_bytesread) == 144);

// On macOS, prove the layout against libc's `rusage_info_v2` (libc 0.2.103 and later, §9.7).
#[cfg(target_os = "macos")]
mod abi {
    use super::*;
    use core::mem::offset_of;
    const _: () = assert!(size_of::<RusageInfoV2>() == size_of::<libc::rusage_info_v2>());
    const _: () = assert!(
        offset_of!(RusageInfoV2, ri_system_time)
            == offset_of!(libc::rusage_info_v2, ri_system_time)
    );
    const _: () = assert!(
        offset_of!(RusageInfoV2, ri_resident_size)
            == offset_of!(libc::rusage_info_v2, ri_resident_size)
    );
    const _: () = assert!(
        offset_of!(RusageInfoV2, ri_phys_footprint)
            == offset_of!(libc::rusage_info_v2, ri_phys_footprint)
    );
    const _: () = assert!(
        offset_of!(RusageInfoV2, ri_child_user_time)
            == offset_of!(libc::rusage_info_v2, ri_child_user_time)
    );
    const _: () = assert!(
        offset_of!(RusageInfoV2, ri_child_system_time)
            == offset_of!(libc::rusage_info_v2, ri_child_system_time)
    );
    const _: () = assert!(
        offset_of!(RusageInfoV2, ri_diskio_byteswritten)
            == offset_of!(libc::rusage_info_v2, ri_diskio_byteswritten)
    );
    const _: () = assert!(libc::RUSAGE_INFO_V2 as u32 == RUSAGE_INFO_V2);
}

// SAFETY: #[repr(C)], a u8 array and u64s, 160 bytes = 16 + 18 * 8: no padding.
unsafe impl Pod for RusageInfoV2 {}

/// `proc_pid_rusage(pid, RUSAGE_INFO_V2)`: a live process's figures, or a zombie's frozen at
/// its exit (footprint 0, §9.5). Another user's process is [`Error::PermissionDenied`]
/// unless we are root; a kernel without callnum 9 or the flavor answers EINVAL
/// ([`Error::Os`]).
pub fn pid_rusage(kernel: &dyn Kernel, pid: Pid) -> Result<RusageInfoV2, Error> {
    let mut info = RusageInfoV2::default();
    kernel
        .proc_info(PROC_CALLNUM_PIDRUSAGE, pid, RUSAGE_INFO_V2, 0, Some(info.as_bytes_mut()))
        .map_err(|e| Error::from_errno(Op::PidRusage { pid, flavor: RUSAGE_INFO_V2 }, e))?;
    Ok(info)
}

/// Mach absolute-time ticks as nanoseconds at `hz` ticks a second (`hw.tbfrequency`, §9.6:
/// 10^9 on Intel, 24 MHz on Apple Silicon, whatever `mach_timebase_info` claims under
/// Rosetta). In u128: `ticks * 10^9` overflows u64 after 12.8 minutes of CPU at 24 MHz.
pub fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(hz.max(1));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_silicon_ticks_are_125_over_3_ns_without_overflow() {
        // 24 MHz: 24,000,000 ticks are one second; an hour of CPU does not overflow.
        assert_eq!(ticks_to_ns(24_000_000, 24_000_000), 1_000_000_000);
        assert_eq!(ticks_to_ns(3, 24_000_000), 125);
        let hour = 3600 * 24_000_000u64;
        assert_eq!(ticks_to_ns(hour, 24_000_000), 3600 * 1_000_000_000);
        // Intel: one tick is one nanosecond.
        assert_eq!(ticks_to_ns(12_345, 1_000_000_000), 12_345);
    }
}
