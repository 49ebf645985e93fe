//! Which signal makes a crash: the macOS workflow kills the LaunchDaemon to see launchd
//! restart it (`KeepAlive` with `Crashed`), so the signal must really end the process.
//!
//! Rust's runtime installs a SIGSEGV (and SIGBUS) handler to report stack overflows. For a
//! fault outside a guard page, such as a `kill -SEGV` from outside (si_addr 0), it restores
//! the default action and returns (std `sys/pal/unix/stack_overflow.rs`): a real fault then
//! repeats and kills, but a sent signal simply returns and the process runs on. SIGABRT has
//! no handler: it ends the process at once, as a panic under `panic = "abort"` would.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use crate::common::Exporter;

fn send(exporter: &Exporter, signal: libc::c_int) {
    let pid = exporter.child.id() as libc::pid_t;
    // SAFETY: kill takes a pid and a signal number; the child is ours and not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill({pid}, {signal})");
}

/// The exit status, if the process ends within `limit`.
fn exit_within(exporter: &mut Exporter, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = exporter.child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn a_sent_sigsegv_does_not_end_the_exporter_but_sigabrt_does() {
    let mut exporter = Exporter::start(&[]);
    send(&exporter, libc::SIGSEGV);
    assert_eq!(exit_within(&mut exporter, Duration::from_secs(2)), None, "SIGSEGV ended it");
    // Still serving, so a crash-restart check sending SIGSEGV could never see a restart.
    assert!(exporter.scrape().contains("libproc_processes"));

    send(&exporter, libc::SIGABRT);
    let status = exit_within(&mut exporter, Duration::from_secs(10)).expect("SIGABRT ends it");
    assert_eq!(status.signal(), Some(libc::SIGABRT), "{status}");
}
