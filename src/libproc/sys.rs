//! The real `__proc_info` on macOS: the only code in the binding that needs the OS.

use std::ffi::{c_int, c_void};

use super::{Errno, Kernel};

unsafe extern "C" {
    // The private stub libsyscall emits for syscall 336, exported by libsystem_kernel.dylib as
    // `___proc_info` and linked through libSystem, which Rust's std already links (§1.1).
    // Calling it directly, rather than through libproc's wrappers, gives an unambiguous
    // -1/errno result: the wrappers return 0 both for errors and for PROC_PIDPATHINFO's
    // success (§4, §7 item 5).
    fn __proc_info(
        callnum: c_int,
        pid: c_int,
        flavor: c_int,
        arg: u64,
        buffer: *mut c_void,
        buffersize: c_int,
    ) -> c_int;
}

/// The running macOS kernel.
#[derive(Clone, Copy, Debug, Default)]
pub struct Darwin;

impl Kernel for Darwin {
    fn proc_info(
        &self,
        callnum: i32,
        pid: i32,
        flavor: u32,
        arg: u64,
        buf: Option<&mut [u8]>,
    ) -> Result<usize, Errno> {
        let (ptr, len) = match buf {
            Some(buf) => (buf.as_mut_ptr().cast::<c_void>(), buf.len()),
            None => (std::ptr::null_mut(), 0),
        };
        // A buffer over 2 GiB cannot be described to the kernel; say so instead of wrapping.
        let len = c_int::try_from(len).map_err(|_| Errno(libc::EINVAL))?;
        // SAFETY: `ptr` is either NULL with length 0 (the size probe, §2.2) or points to a
        // live, exclusively borrowed buffer of exactly `len` bytes, and the kernel writes at
        // most `buffersize` bytes into it (§2.2 step 6, §3.1 step 10).
        let ret = unsafe { __proc_info(callnum, pid, flavor as c_int, arg, ptr, len) };
        if ret < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
            return Err(Errno(errno));
        }
        Ok(ret as usize)
    }

    fn getsid(&self, pid: i32) -> Result<i32, Errno> {
        // SAFETY: getsid takes a plain pid and has no memory arguments.
        let sid = unsafe { libc::getsid(pid) };
        if sid < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
            return Err(Errno(errno));
        }
        Ok(sid)
    }

    /// `hw.tbfrequency`: the tick rate even under Rosetta, where `mach_timebase_info` claims
    /// 1/1 (§9.6).
    fn timebase_hz(&self) -> Option<u64> {
        sysctl_u64(c"hw.tbfrequency").filter(|&hz| hz > 0)
    }
}

/// An integer sysctl by name (`int` or `int64`), `None` when it does not exist or is negative.
pub fn sysctl_u64(name: &std::ffi::CStr) -> Option<u64> {
    let mut value = [0u8; 8];
    let mut len = value.len();
    // SAFETY: `name` is NUL-terminated; `value` is a live 8-byte buffer and `len` holds its
    // size, so the kernel writes at most that many bytes; no new value is set (NULL, 0).
    let rc = unsafe {
        libc::sysctlbyname(
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        return None;
    }
    let v = match len {
        4 => i64::from(i32::from_ne_bytes([value[0], value[1], value[2], value[3]])),
        8 => i64::from_ne_bytes(value),
        _ => return None,
    };
    u64::try_from(v).ok()
}
