//! A table read that never returns (a hung FUSE or NFS-backed /proc in a container; here a
//! FIFO where a `stat` file should be) must not hang the scrapes: each is answered by its
//! deadline with every collector failed, the stuck read is not started again behind
//! itself, and SIGTERM still stops the exporter.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use crate::common::{Exporter, TempDir, http_request, sample};
use crate::web_support::signal;

/// A /proc with one process whose `stat` is a FIFO nobody writes: opening it blocks.
fn hung_procfs() -> TempDir {
    let dir = TempDir::new("hung_procfs");
    crate::common::fake_proc_root(&dir.0);
    std::fs::create_dir(dir.0.join("1")).unwrap();
    let fifo = CString::new(dir.0.join("1/stat").as_os_str().as_bytes()).unwrap();
    // SAFETY: `fifo` is a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0, "mkfifo");
    dir
}

#[test]
fn a_hung_proc_is_answered_by_the_deadline_and_sigterm_still_stops_the_exporter() {
    let procfs = hung_procfs();
    let mut exporter =
        Exporter::start(&["--source=procfs", &format!("--path.procfs={}", procfs.0.display())]);
    let request = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Prometheus-Scrape-Timeout-Seconds: 2\r\nConnection: close\r\n\r\n";
    for _ in 0..2 {
        // Before the fix the read never returned and neither did the scrape (the client's
        // 30 s read timeout ended it with an error).
        let r = http_request(exporter.addr, request).expect("an answer by the deadline");
        assert_eq!(r.status, 200);
        assert_eq!(
            sample(&r.body, "libproc_scrape_collector_success", "collector=\"processes\""),
            Some(0.0)
        );
        assert_eq!(sample(&r.body, "libproc_processes", "state=\"running\""), None);
        assert_eq!(
            sample(&r.body, "libproc_collections_total", ""),
            Some(1.0),
            "the stuck read is joined, not started again"
        );
    }

    signal(exporter.child.id(), libc::SIGTERM);
    let stop_by = Instant::now() + Duration::from_secs(20);
    while exporter.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < stop_by, "still running 20 s after SIGTERM with a read stuck");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = exporter.log_after_exit();
    assert!(log.contains("msg=stopped"), "{log}");
    assert_eq!(
        log.matches("has not finished by the scrape deadline").count(),
        1,
        "logged once: {log}"
    );
}
