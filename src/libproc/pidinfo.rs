//! Per-pid information: our own `#[repr(C)]` copies of the kernel's structures and the calls
//! that fill them.
//!
//! The structures are ours rather than `libc`'s so that the binding builds on every OS (the
//! simulated kernel fills them on Linux) and works with any libc 0.2 (its
//! `proc_bsdshortinfo` has a private field). On macOS targets, compile-time assertions prove
//! that size and field offsets match `libc`'s definitions of the kernel ABI.

use super::{
    Error, Kernel, Op, PROC_CALLNUM_PIDINFO, PROC_PIDPATHINFO, PROC_PIDPATHINFO_MAXSIZE,
    PROC_PIDT_SHORTBSDINFO, PROC_PIDTASKINFO, PROC_PIDTBSDINFO, PROC_PIDUNIQIDENTIFIERINFO, Pid,
};

/// `struct proc_bsdinfo` (§3.3), 136 bytes. `PROC_PIDTBSDINFO`; needs the same euid or root
/// for another user's process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // the kernel's field names; §3.3 documents each
pub struct ProcBsdInfo {
    pub pbi_flags: u32,
    pub pbi_status: u32,
    pub pbi_xstatus: u32,
    pub pbi_pid: u32,
    pub pbi_ppid: u32,
    pub pbi_uid: u32,
    pub pbi_gid: u32,
    pub pbi_ruid: u32,
    pub pbi_rgid: u32,
    pub pbi_svuid: u32,
    pub pbi_svgid: u32,
    pub rfu_1: u32,
    pub pbi_comm: [u8; 16],
    pub pbi_name: [u8; 32],
    pub pbi_nfiles: u32,
    pub pbi_pgid: u32,
    pub pbi_pjobc: u32,
    pub e_tdev: u32,
    pub e_tpgid: u32,
    pub pbi_nice: i32,
    pub pbi_start_tvsec: u64,
    pub pbi_start_tvusec: u64,
}

/// `struct proc_bsdshortinfo` (§3.4), 64 bytes. `PROC_PIDT_SHORTBSDINFO`; readable for every
/// process by every user, but without tty, nice or start time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // the kernel's field names; §3.4 documents each
pub struct ProcBsdShortInfo {
    pub pbsi_pid: u32,
    pub pbsi_ppid: u32,
    pub pbsi_pgid: u32,
    pub pbsi_status: u32,
    pub pbsi_comm: [u8; 16],
    pub pbsi_flags: u32,
    pub pbsi_uid: u32,
    pub pbsi_gid: u32,
    pub pbsi_ruid: u32,
    pub pbsi_rgid: u32,
    pub pbsi_svuid: u32,
    pub pbsi_svgid: u32,
    pub pbsi_rfu: u32,
}

impl ProcBsdInfo {
    /// The short info of the same process: the fields `proc_pidshortbsdinfo` copies from the
    /// proc xnu fills both from (§3.3, §3.4), so one conversion serves both flavors.
    pub fn short(&self) -> ProcBsdShortInfo {
        ProcBsdShortInfo {
            pbsi_pid: self.pbi_pid,
            pbsi_ppid: self.pbi_ppid,
            pbsi_pgid: self.pbi_pgid,
            pbsi_status: self.pbi_status,
            pbsi_comm: self.pbi_comm,
            pbsi_flags: self.pbi_flags,
            pbsi_uid: self.pbi_uid,
            pbsi_gid: self.pbi_gid,
            pbsi_ruid: self.pbi_ruid,
            pbsi_rgid: self.pbi_rgid,
            pbsi_svuid: self.pbi_svuid,
            pbsi_svgid: self.pbi_svgid,
            pbsi_rfu: 0,
        }
    }
}

/// `struct proc_taskinfo` (§3.7), 96 bytes. `PROC_PIDTASKINFO`; same-euid check. The four
/// time fields are Mach absolute-time units, not nanoseconds.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // the kernel's field names; §3.7 documents each
pub struct ProcTaskInfo {
    pub pti_virtual_size: u64,
    pub pti_resident_size: u64,
    pub pti_total_user: u64,
    pub pti_total_system: u64,
    pub pti_threads_user: u64,
    pub pti_threads_system: u64,
    pub pti_policy: i32,
    pub pti_faults: i32,
    pub pti_pageins: i32,
    pub pti_cow_faults: i32,
    pub pti_messages_sent: i32,
    pub pti_messages_received: i32,
    pub pti_syscalls_mach: i32,
    pub pti_syscalls_unix: i32,
    pub pti_csw: i32,
    pub pti_threadnum: i32,
    pub pti_numrunning: i32,
    pub pti_priority: i32,
}

/// `struct proc_uniqidentifierinfo` (§3.10), 56 bytes. `PROC_PIDUNIQIDENTIFIERINFO`;
/// readable for every process by every user. libc does not have it: the header is private.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // the kernel's field names; §3.10 documents each
pub struct ProcUniqIdentifierInfo {
    pub p_uuid: [u8; 16],
    pub p_uniqueid: u64,
    pub p_puniqueid: u64,
    pub p_idversion: i32,
    pub p_orig_ppidversion: i32,
    pub p_reserve2: u64,
    pub p_reserve3: u64,
}

const _: () = assert!(size_of::<ProcBsdInfo>() == 136);
const _: () = assert!(size_of::<ProcUniqIdentifierInfo>() == 56);
const _: () = assert!(std::mem::offset_of!(ProcUniqIdentifierInfo, p_uniqueid) == 16);
const _: () = assert!(size_of::<ProcBsdShortInfo>() == 64);
const _: () = assert!(size_of::<ProcTaskInfo>() == 96);

// On macOS, prove the layout against libc's definitions of the same kernel structures.
#[cfg(target_os = "macos")]
mod abi {
    use super::*;
    use core::mem::offset_of;
    const _: () = assert!(size_of::<ProcBsdInfo>() == size_of::<libc::proc_bsdinfo>());
    const _: () = assert!(size_of::<ProcBsdShortInfo>() == size_of::<libc::proc_bsdshortinfo>());
    const _: () = assert!(size_of::<ProcTaskInfo>() == size_of::<libc::proc_taskinfo>());
    const _: () =
        assert!(offset_of!(ProcBsdInfo, pbi_pgid) == offset_of!(libc::proc_bsdinfo, pbi_pgid));
    const _: () =
        assert!(offset_of!(ProcBsdInfo, e_tdev) == offset_of!(libc::proc_bsdinfo, e_tdev));
    const _: () = assert!(
        offset_of!(ProcBsdInfo, pbi_start_tvsec) == offset_of!(libc::proc_bsdinfo, pbi_start_tvsec)
    );
    const _: () = assert!(
        offset_of!(ProcBsdShortInfo, pbsi_ruid) == offset_of!(libc::proc_bsdshortinfo, pbsi_ruid)
    );
    const _: () = assert!(
        offset_of!(ProcBsdShortInfo, pbsi_flags) == offset_of!(libc::proc_bsdshortinfo, pbsi_flags)
    );
    const _: () = assert!(
        offset_of!(ProcTaskInfo, pti_threadnum) == offset_of!(libc::proc_taskinfo, pti_threadnum)
    );
    const _: () = assert!(libc::PROC_PIDTBSDINFO as u32 == PROC_PIDTBSDINFO);
    const _: () = assert!(libc::PROC_PIDTASKINFO as u32 == PROC_PIDTASKINFO);
    const _: () = assert!(libc::PROC_PIDT_SHORTBSDINFO as u32 == PROC_PIDT_SHORTBSDINFO);
}

/// Plain old data the kernel may fill byte by byte.
///
/// # Safety
/// Implementors are `#[repr(C)]`, contain only integer fields and arrays of them (every bit
/// pattern is valid), and have no padding the kernel could leave uninitialised.
pub(crate) unsafe trait Pod: Copy + Default {
    /// The structure as a mutable byte slice.
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: by the trait's contract the value is size_of::<Self>() bytes of plain
        // integers, valid for any bytes written through this view.
        unsafe {
            std::slice::from_raw_parts_mut((self as *mut Self).cast::<u8>(), size_of::<Self>())
        }
    }
}

// SAFETY: all three are #[repr(C)] with u32/i32/u64/u8 fields laid out without padding (the
// size assertions above equal the sum of the field sizes).
unsafe impl Pod for ProcBsdInfo {}
// SAFETY: as above.
unsafe impl Pod for ProcBsdShortInfo {}
// SAFETY: as above.
unsafe impl Pod for ProcTaskInfo {}
// SAFETY: as above (56 bytes: 16 + 8 + 8 + 4 + 4 + 8 + 8, the u64s at 8-aligned offsets).
unsafe impl Pod for ProcUniqIdentifierInfo {}

/// Reads one fixed-size flavor. Fixed-size flavors return exactly `sizeof(struct)` (§3.1 #10).
fn read_struct<T: Pod>(kernel: &dyn Kernel, pid: Pid, flavor: u32, arg: u64) -> Result<T, Error> {
    let mut value = T::default();
    let op = || Op::PidInfo { pid, flavor };
    let got = kernel
        .proc_info(PROC_CALLNUM_PIDINFO, pid, flavor, arg, Some(value.as_bytes_mut()))
        .map_err(|e| Error::from_errno(op(), e))?;
    if got != size_of::<T>() {
        return Err(Error::ShortRead { op: op(), got, want: size_of::<T>() });
    }
    Ok(value)
}

/// Any flavor into the caller's buffer: the raw `proc_pidinfo` with typed errors, for flavors
/// this module has no structure for. Returns the byte count the kernel reports.
pub fn pid_info_raw(
    kernel: &dyn Kernel,
    pid: Pid,
    flavor: u32,
    arg: u64,
    buf: &mut [u8],
) -> Result<usize, Error> {
    kernel
        .proc_info(PROC_CALLNUM_PIDINFO, pid, flavor, arg, Some(buf))
        .map_err(|e| Error::from_errno(Op::PidInfo { pid, flavor }, e))
}

/// `PROC_PIDT_SHORTBSDINFO` for `pid`: readable for any process without privilege. With
/// `zombies`, a zombie answers too (the kernel's `arg != 0`, §3.1 #5); without, it is
/// [`Error::Vanished`].
pub fn pid_short_info(
    kernel: &dyn Kernel,
    pid: Pid,
    zombies: bool,
) -> Result<ProcBsdShortInfo, Error> {
    read_struct(kernel, pid, PROC_PIDT_SHORTBSDINFO, zombies as u64)
}

/// `PROC_PIDTBSDINFO` for `pid`: adds the controlling tty, nice and start time, but another
/// user's process gives [`Error::PermissionDenied`] unless we are root (§1.5).
pub fn pid_bsd_info(kernel: &dyn Kernel, pid: Pid, zombies: bool) -> Result<ProcBsdInfo, Error> {
    read_struct(kernel, pid, PROC_PIDTBSDINFO, zombies as u64)
}

/// `PROC_PIDUNIQIDENTIFIERINFO` for `pid`: its `p_uniqueid`, the fork counter's value when it
/// was forked (§3.10). No same-euid check; with `zombies`, a zombie answers too.
pub fn pid_uniqid_info(
    kernel: &dyn Kernel,
    pid: Pid,
    zombies: bool,
) -> Result<ProcUniqIdentifierInfo, Error> {
    read_struct(kernel, pid, PROC_PIDUNIQIDENTIFIERINFO, zombies as u64)
}

/// `PROC_PIDTASKINFO` for `pid`: memory, CPU time (Mach units) and thread counts. Same-euid
/// check; zombies never answer.
pub fn pid_task_info(kernel: &dyn Kernel, pid: Pid) -> Result<ProcTaskInfo, Error> {
    read_struct(kernel, pid, PROC_PIDTASKINFO, 0)
}

/// `PROC_PIDPATHINFO`: the executable's path. Unlike every other flavor a success returns 0,
/// not a length (§1.2), so the path's end is its first NUL.
pub fn pid_path(kernel: &dyn Kernel, pid: Pid) -> Result<String, Error> {
    let mut buf = vec![0u8; PROC_PIDPATHINFO_MAXSIZE];
    kernel
        .proc_info(PROC_CALLNUM_PIDINFO, pid, PROC_PIDPATHINFO, 0, Some(&mut buf))
        .map_err(|e| Error::from_errno(Op::PidInfo { pid, flavor: PROC_PIDPATHINFO }, e))?;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}
