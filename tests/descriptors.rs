//! Descriptor exhaustion: idle connections held against an exporter with a small
//! `RLIMIT_NOFILE`. Its scrapes either count the whole table or say they failed
//! (`success 0`); a partial count marked successful is the one wrong answer.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use crate::common::{Exporter, TempDir, exporter_bin, http_request, sample};
use crate::web_support::{open_fds, signal};

/// Processes in the fake table.
const PROCESSES: usize = 200;
/// The exporter's descriptor limit, soft and hard (so it cannot raise it).
const OPEN_FILES: u64 = 64;

/// A /proc of [`PROCESSES`] sleeping processes of uid 1000, and the kernel's limits.
fn fake_procfs() -> TempDir {
    fake_procfs_of(PROCESSES)
}

fn fake_procfs_of(processes: usize) -> TempDir {
    let dir = TempDir::new("fd_procfs");
    crate::common::fake_proc_root(&dir.0);
    for pid in 1..=processes {
        let p = dir.0.join(pid.to_string());
        std::fs::create_dir(&p).unwrap();
        let stat = format!(
            "{pid} (worker) S 1 {pid} {pid} 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n"
        );
        std::fs::write(p.join("stat"), stat).unwrap();
        std::fs::write(
            p.join("status"),
            "Name:\tworker\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n",
        )
        .unwrap();
    }
    dir
}

/// The exporter over `procfs` with [`OPEN_FILES`] descriptors and `flags`.
fn start(procfs: &TempDir, flags: &[&str]) -> Exporter {
    let mut command = Command::new(exporter_bin());
    command.arg("--source=procfs").arg(format!("--path.procfs={}", procfs.0.display())).args(flags);
    // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: OPEN_FILES, rlim_max: OPEN_FILES };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Exporter::start_command(command)
}

/// A whole scrape's verdict: the processes it counted and whether every collector succeeded.
fn verdict(body: &str) -> (f64, bool) {
    let counted: f64 = body
        .lines()
        .filter(|l| l.starts_with("libproc_processes{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let all_ok = body
        .lines()
        .filter(|l| l.starts_with("libproc_scrape_collector_success{"))
        .all(|l| l.ends_with(" 1"));
    (counted, all_ok)
}

fn scrape(exporter: &Exporter) -> crate::common::Response {
    http_request(
        exporter.addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Prometheus-Scrape-Timeout-Seconds: 25\r\nConnection: close\r\n\r\n",
    )
    .expect("an answer")
}

#[test]
fn idle_connections_beyond_the_descriptor_limit_do_not_falsify_a_scrape() {
    let procfs = fake_procfs();
    // Idle connections that never send a byte are dropped after 2 s; the scrape waits in
    // the listen backlog behind them meanwhile.
    let mut exporter = start(&procfs, &["--web.header-read-timeout=2s"]);
    let idle: Vec<TcpStream> =
        (0..100).map(|_| TcpStream::connect(exporter.addr).expect("connect")).collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(open_fds(exporter.child.id()) < OPEN_FILES as usize, "the cap keeps descriptors free");

    let r = scrape(&exporter);
    assert_eq!(r.status, 200);
    assert_eq!(verdict(&r.body), (PROCESSES as f64, true), "the whole table, successfully");
    assert_eq!(sample(&r.body, "libproc_pids_unreadable", "reason=\"other\""), Some(0.0));
    drop(idle);

    signal(exporter.child.id(), libc::SIGTERM);
    let log = exporter.log_after_exit();
    assert!(log.contains("--web.max-connections lowered"), "{log}");
    assert!(log.matches("accept failed").count() <= 1, "accept failures logged once: {log}");
    // At most once a minute, though the cap was left and reached again with every batch of
    // idle connections timing out.
    assert_eq!(log.matches("at --web.max-connections").count(), 1, "{log}");
}

#[test]
fn a_read_that_runs_out_of_descriptors_fails_instead_of_counting_part_of_the_table() {
    // 2,000 processes, read by up to two worker threads at once (one descriptor each), with
    // 0 to 5 descriptors left when the read starts: whatever the count, the table is whole
    // or the read fails naming EMFILE, never a partial table written out as a success.
    let procfs = fake_procfs_of(2_000);
    let mut failed = 0;
    for free in 0..=5 {
        let mut command = Command::new(exporter_bin());
        command
            .args(["record", "--source=procfs"])
            .arg(format!("--path.procfs={}", procfs.0.display()));
        // SAFETY: open, dup2, fcntl and setrlimit are async-signal-safe; only the child's own
        // descriptor table and limits change, and the path is NUL-terminated.
        unsafe {
            command.pre_exec(move || {
                // Fill every descriptor below 32 but the last `free + 1` (one is the procfs
                // directory the reader holds) with /dev/null, inherited across exec. The
                // rest of this test process's descriptors are close-on-exec.
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                if null < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for fd in 3..(32 - free - 1) {
                    // (dup2 onto `null` itself keeps its close-on-exec: clear it on every one.)
                    if libc::dup2(null, fd) < 0 || libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                let limit = libc::rlimit { rlim_cur: 32, rlim_max: 32 };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            let recorded = String::from_utf8_lossy(&out.stdout).matches("\"pid\":").count();
            assert_eq!(recorded, 2_000, "{free} free: a partial table recorded as a success");
        } else {
            assert!(stderr.contains("Too many open files"), "{free} free: {stderr}");
            failed += 1;
        }
    }
    // With none left even opening the table fails: the sweep reaches exhaustion.
    assert!(failed > 0, "no run ran out of descriptors: the test did not test anything");
}
