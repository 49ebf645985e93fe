//! The Linux binding, beside [`libproc`](crate::libproc): everything the exporter reads from a
//! procfs mount, and the only place its `unsafe` system calls are.
//!
//! - [`pidfd`]: a process's ids through `PIDFD_GET_INFO` instead of the `status` text, and
//!   whether this kernel and mount allow it.
//! - [`read`]: the raw reader: the mount opened once, its pids listed, `PID/NAME` read
//!   with `openat`/`read`/`close` into the caller's buffer, errnos sorted into
//!   [`ReadError`](read::ReadError).
//! - [`stat`]: the byte parsers of `/proc/PID/stat` and `/proc/PID/status`.
//! - [`tty`]: the names of Linux terminal device numbers.
//! - [`sys`]: the kernel's limits (`sys/kernel/pid_max` and friends), the boot time and the
//!   fork counter of `stat`.
//!
//! It depends on nothing else in the crate, so the host module (the exporter's own figures)
//! and the table (every process) can both use it. It compiles on every Unix: a procfs tree
//! copied elsewhere reads the same, and the fuzz targets reach the parsers on any OS.

pub mod pidfd;
pub mod read;
pub mod stat;
pub mod sys;
pub mod tty;
