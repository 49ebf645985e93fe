//! The host we run on: what the exporter asks of the operating system outside the
//! `__proc_info` binding.
//!
//! - [`terminals`]: the terminal devices a process can have as its controlling terminal,
//!   found once per scrape in `/dev`, ordered for the `PROC_TTY_ONLY` scan, and named as
//!   `ps` names them (Linux numbers too, with a bounded cache for the rest).
//! - [`euid`]: the effective uid of this process.

pub mod terminals;

/// The effective uid of this process: decides whether a snapshot may be privileged and is
/// recorded in snapshot files.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
