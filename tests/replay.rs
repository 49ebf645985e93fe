//! Snapshot files: `record` -> replay -> `record` gives the same file, and every malformed
//! file is refused with a message naming the field and the process.

use std::process::Command;

use libproc_exporter::collect;
use libproc_exporter::metrics::Exporter;
use libproc_exporter::table::{replay, snapshot_file};
use serde_json::{Value, json};

use crate::common::{exporter_bin, fixture, sample};

fn tmpdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("libproc-exporter-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(exporter_bin()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn record_replay_record_of_this_machine_is_identical() {
    let dir = tmpdir("roundtrip");
    let first = dir.join("first.json");
    let second = dir.join("second.json");
    let (ok, _, err) = run(&["record", "-o", first.to_str().unwrap()]);
    assert!(ok, "record failed: {err}");
    let (ok, _, err) = run(&[
        "--source=replay",
        &format!("--source.replay-file={}", first.display()),
        "record",
        "-o",
        second.to_str().unwrap(),
    ]);
    assert!(ok, "record of the replay failed: {err}");
    let a = std::fs::read_to_string(&first).unwrap();
    let b = std::fs::read_to_string(&second).unwrap();
    let os = if cfg!(target_os = "macos") { "macos" } else { "linux" };
    assert!(
        a.contains(&format!("\"os\": \"{os}\"")),
        "recorded on {os}: {}",
        &a[..200.min(a.len())]
    );
    assert!(a.lines().count() > 10, "a real table has processes");
    if a != b {
        let diff: Vec<_> = a.lines().zip(b.lines()).filter(|(x, y)| x != y).take(5).collect();
        panic!("the replayed recording differs:\n{diff:#?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn recording_the_mac_fixture_keeps_everything_an_unprivileged_reader_sees() {
    // The fixture was recorded as alice (uid 501, not root): replaying it reads short info,
    // which has no start time, and full BSD info only of her own processes (§10.3), which
    // `record` asks for their start times. Everything else must come back exactly, and the
    // result is a fixed point.
    let dir = tmpdir("mac");
    let once = dir.join("once.json");
    let twice = dir.join("twice.json");
    let mac = fixture("snapshots/mac.json");
    for (input, output) in [(&mac, &once), (&once, &twice)] {
        let (ok, _, err) = run(&[
            "--source=replay",
            &format!("--source.replay-file={}", input.display()),
            "record",
            "-o",
            output.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
    }
    let mut want: Value = serde_json::from_str(&std::fs::read_to_string(&mac).unwrap()).unwrap();
    for p in want["processes"].as_array_mut().unwrap().iter_mut().filter(|p| p["euid"] != 501) {
        p["start_sec"] = Value::Null;
        p["start_usec"] = Value::Null;
    }
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&once).unwrap()).unwrap();
    for key in want.as_object().unwrap().keys().filter(|k| *k != "processes") {
        assert_eq!(got[key], want[key], "{key}");
    }
    let (got, want) = (got["processes"].as_array().unwrap(), want["processes"].as_array().unwrap());
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, w, "process {}", w["pid"]);
    }
    assert_eq!(std::fs::read(&once).unwrap(), std::fs::read(&twice).unwrap());
    std::fs::remove_dir_all(dir).unwrap();
}

/// A small valid file: kernel_task, launchd, a shell on ttys000 and its child.
fn base() -> Value {
    json!({
        "format": "libproc-exporter/snapshot-v1",
        "os": "macos",
        "privileged": false,
        "caller_euid": 501,
        "limits": {"maxproc": 4176, "maxprocperuid": 2784, "ptmx_max": 511},
        "ttys": [{"name": "ttys000", "dev": 268435456}],
        "users": {"0": "root", "501": "alice"},
        "processes": [
            {"pid": 0, "ppid": 0, "pgid": 0, "euid": 0, "ruid": 0, "svuid": 0, "egid": 0, "rgid": 0,
             "status": 2, "flags": 1, "comm": "kernel_task", "tdev": null, "zombie": false,
             "start_sec": 1732700000, "start_usec": 0},
            {"pid": 1, "ppid": 0, "pgid": 1, "euid": 0, "ruid": 0, "svuid": 0, "egid": 0, "rgid": 0,
             "status": 2, "flags": 16, "comm": "launchd", "tdev": null, "zombie": false,
             "start_sec": 1732700001, "start_usec": 0},
            {"pid": 50, "ppid": 1, "pgid": 50, "euid": 501, "ruid": 501, "svuid": 501, "egid": 20, "rgid": 20,
             "status": 2, "flags": 144, "comm": "zsh", "tdev": 268435456, "zombie": false,
             "start_sec": 1732700100, "start_usec": 5},
            {"pid": 51, "ppid": 50, "pgid": 51, "euid": 501, "ruid": 501, "svuid": 501, "egid": 20, "rgid": 20,
             "status": 5, "flags": 148, "comm": "make", "tdev": 268435456, "zombie": true,
             "start_sec": null, "start_usec": null}
        ]
    })
}

/// A process's `usage` (snapshot v2): 2 s of CPU, 64 MiB, some disk traffic.
fn usage() -> Value {
    json!({"user_ns": 1_500_000_000u64, "system_ns": 500_000_000u64, "child_user_ns": 0,
           "child_system_ns": 0, "resident_bytes": 67108864, "footprint_bytes": 33554432,
           "disk": {"read": 4096, "written": 8192}})
}

#[test]
fn a_v1_file_replays_without_usage_and_a_v2_file_with_it() {
    let scrape = |doc: &Value| {
        let source = replay::ReplaySource::new(&parse(doc).unwrap());
        let resources = collect::find("resources").unwrap().default_instance();
        Exporter::new(Box::new(source), vec![resources], false).scrape(None)
    };
    let v1 = scrape(&base());
    assert_eq!(sample(&v1, "libproc_resource_readable_processes", ""), Some(0.0));
    assert_eq!(
        sample(&v1, "libproc_resource_unreadable_processes", "reason=\"permission\""),
        Some(0.0)
    );
    let mut v2 = base();
    v2["format"] = json!("libproc-exporter/snapshot-v2");
    v2["processes"][2]["usage"] = usage();
    let v2 = scrape(&v2);
    assert_eq!(
        sample(&v2, "libproc_comm_cpu_seconds_total", "comm=\"zsh\",mode=\"user\""),
        Some(1.5)
    );
    assert_eq!(sample(&v2, "libproc_comm_resident_bytes", "comm=\"zsh\""), Some(67108864.0));
    // kernel_task and launchd are root's: refused to alice; make, recorded without usage,
    // answers as it did to the recorder.
    assert_eq!(
        sample(&v2, "libproc_resource_unreadable_processes", "reason=\"permission\""),
        Some(2.0)
    );
    assert_eq!(
        sample(&v2, "libproc_resource_unreadable_processes", "reason=\"vanished\""),
        Some(1.0)
    );
}

fn parse(doc: &Value) -> Result<snapshot_file::SnapshotFile, String> {
    snapshot_file::parse(&doc.to_string()).map_err(|e| e.to_string())
}

#[test]
fn the_base_file_is_valid_and_replays() {
    let file = parse(&base()).unwrap();
    assert_eq!(file.processes.len(), 4);
    assert_eq!(file.users[&501], "alice");
}

/// A malformed case: what it is, how it spoils the base file, and the message it must give.
type Case = (&'static str, Box<dyn Fn(&mut Value)>, &'static str);

#[test]
fn malformed_files_are_refused_naming_the_field_and_process() {
    let cases: Vec<Case> = vec![
        ("unknown top-level key", Box::new(|d| d["extra"] = json!(1)), "unknown field `extra`"),
        (
            "unknown process key",
            Box::new(|d| d["processes"][2]["color"] = json!("red")),
            "processes[2] (pid 50): unknown field `color`",
        ),
        (
            "missing key",
            Box::new(|d| {
                d["processes"][1].as_object_mut().unwrap().remove("ruid");
            }),
            "processes[1] (pid 1): missing field `ruid`",
        ),
        (
            "pid of the wrong type",
            Box::new(|d| d["processes"][2]["pid"] = json!("50")),
            "processes[2] (pid \"50\"): invalid type: string \"50\", expected i32",
        ),
        (
            "negative uid",
            Box::new(|d| d["processes"][2]["euid"] = json!(-1)),
            "processes[2] (pid 50): invalid value: integer `-1`, expected u32",
        ),
        (
            "duplicate pid",
            Box::new(|d| d["processes"][3]["pid"] = json!(50)),
            "processes[3] (pid 50): pid: duplicate of processes[2]",
        ),
        (
            "parent not in the table",
            Box::new(|d| d["processes"][2]["ppid"] = json!(999)),
            "processes[2] (pid 50): ppid: 999 is not a process in this file",
        ),
        (
            "own parent",
            Box::new(|d| d["processes"][2]["ppid"] = json!(50)),
            "processes[2] (pid 50): ppid: a process cannot be its own parent",
        ),
        (
            "kernel_task with a parent",
            Box::new(|d| d["processes"][0]["ppid"] = json!(1)),
            "processes[0] (pid 0): ppid: kernel_task (pid 0) has parent 0, found 1",
        ),
        (
            "terminal not listed",
            Box::new(|d| d["processes"][2]["tdev"] = json!(7)),
            "processes[2] (pid 50): tdev: 7 is not in \"ttys\"",
        ),
        (
            "terminal without P_CONTROLT",
            Box::new(|d| d["processes"][2]["flags"] = json!(16)),
            "processes[2] (pid 50): tdev: a process with a terminal has PROC_FLAG_CONTROLT (0x80) in flags",
        ),
        (
            "sleeping status",
            Box::new(|d| d["processes"][2]["status"] = json!(3)),
            "processes[2] (pid 50): status: 3 is not a state xnu assigns (1 SIDL, 2 SRUN, 4 SSTOP, 5 SZOMB)",
        ),
        (
            "SZOMB off the zombie list",
            Box::new(|d| d["processes"][3]["zombie"] = json!(false)),
            "processes[3] (pid 51): zombie: status 5 (SZOMB) needs \"zombie\": true",
        ),
        (
            "zombie still running",
            Box::new(|d| {
                d["processes"][2]["zombie"] = json!(true);
            }),
            "processes[2] (pid 50): zombie: a zombie has status 5 (SZOMB), or 2 with PROC_FLAG_INEXIT (0x4)",
        ),
        (
            "derived flags",
            Box::new(|d| d["processes"][2]["flags"] = json!(144 | 0x20)),
            "processes[2] (pid 50): flags: SLEADER (0x20) and CTTY (0x40) are derived by the kernel; leave them out",
        ),
        (
            "comm too long",
            Box::new(|d| d["processes"][1]["comm"] = json!("launchd_is_long_")),
            "processes[1] (pid 1): comm: \"launchd_is_long_\" is longer than the 15 bytes the kernel keeps",
        ),
        (
            "start_usec out of range",
            Box::new(|d| d["processes"][1]["start_usec"] = json!(1_000_000)),
            "processes[1] (pid 1): start_usec: must be below 1000000",
        ),
        (
            "wrong format",
            Box::new(|d| d["format"] = json!("libproc-exporter/snapshot-v3")),
            "format: expected \"libproc-exporter/snapshot-v2\" (or \"libproc-exporter/snapshot-v1\"), found \"libproc-exporter/snapshot-v3\"",
        ),
        (
            "usage in a v1 file",
            Box::new(|d| d["processes"][2]["usage"] = usage()),
            "processes[2] (pid 50): usage: only in \"libproc-exporter/snapshot-v2\" files",
        ),
        (
            "disk with one figure",
            Box::new(|d| {
                d["format"] = json!("libproc-exporter/snapshot-v2");
                d["processes"][2]["usage"] = usage();
                d["processes"][2]["usage"]["disk"] = json!({"read": 1});
            }),
            "processes[2] (pid 50): missing field `written`",
        ),
        (
            "usage with a typo",
            Box::new(|d| {
                d["format"] = json!("libproc-exporter/snapshot-v2");
                d["processes"][2]["usage"] = usage();
                d["processes"][2]["usage"]["user_sec"] = json!(1);
            }),
            "unknown field `user_sec`",
        ),
        (
            "unknown os",
            Box::new(|d| d["os"] = json!("freebsd")),
            "os: expected \"macos\" or \"linux\", found \"freebsd\"",
        ),
        (
            "user key not a uid",
            Box::new(|d| d["users"]["alice"] = json!("alice")),
            "users: key \"alice\" is not a uid (a decimal number, no sign or leading zeros)",
        ),
        (
            "terminal listed twice",
            Box::new(|d| {
                d["ttys"].as_array_mut().unwrap().push(json!({"name": "ttys001", "dev": 268435456}))
            }),
            "ttys[1] (ttys001): dev: 268435456 is listed twice",
        ),
        (
            "NODEV as a terminal",
            Box::new(|d| d["ttys"][0]["dev"] = json!(4294967295u32)),
            "ttys[0] (ttys000): dev: 0xffffffff is NODEV, not a terminal",
        ),
        (
            "root reading unprivileged",
            Box::new(|d| d["caller_euid"] = json!(0)),
            "privileged: false, but caller_euid 0 (root) always reads full information",
        ),
        (
            "limits with a typo",
            Box::new(|d| d["limits"]["max_proc"] = json!(1)),
            "unknown field `max_proc`",
        ),
    ];
    for (what, mutate, want) in cases {
        let mut doc = base();
        mutate(&mut doc);
        let err = parse(&doc).map(|_| ()).expect_err(what);
        assert!(err.contains(want), "{what}: expected {want:?}\n  got {err:?}");
    }
    // Not JSON at all: serde's position.
    let err = snapshot_file::parse("{\"format\": ").map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("line 1 column"), "{err}");
}

#[test]
fn duplicate_keys_are_refused_not_last_one_wins() {
    // serde_json's Value (and any map type) keeps the last of two equal keys, so these files
    // used to replay pid 7 as pid 51, bash as zsh, mallory as alice.
    let text = base().to_string();
    let cases = [
        (
            "a process's pid twice",
            "\"pid\":51,",
            "\"pid\":51,\"pid\":7,",
            "processes[3] (pid 51): duplicate field `pid`",
        ),
        (
            "a process's comm twice",
            "\"comm\":\"zsh\"",
            "\"comm\":\"zsh\",\"comm\":\"bash\"",
            "processes[2] (pid 50): duplicate field `comm`",
        ),
        (
            "a uid twice",
            "\"501\":\"alice\"",
            "\"501\":\"alice\",\"501\":\"mallory\"",
            "users: duplicate key \"501\"",
        ),
        ("a uid with a leading zero", "\"501\":", "\"0501\":", "users: key \"0501\" is not a uid"),
        ("a uid with a sign", "\"501\":", "\"+501\":", "users: key \"+501\" is not a uid"),
        (
            "a uid beyond u32",
            "\"501\":",
            "\"4294967296\":",
            "users: key \"4294967296\" is not a uid",
        ),
        (
            "a top-level key twice",
            "\"os\":\"macos\"",
            "\"os\":\"macos\",\"os\":\"linux\"",
            "duplicate field `os`",
        ),
        (
            "a terminal's key twice",
            "\"dev\":268435456",
            "\"dev\":268435456,\"dev\":1",
            "duplicate field `dev`",
        ),
        (
            "a limit twice",
            "\"maxproc\":4176",
            "\"maxproc\":4176,\"maxproc\":1",
            "duplicate field `maxproc`",
        ),
    ];
    for (what, from, to, want) in cases {
        assert_eq!(text.matches(from).count(), 1, "{what}: {from} must occur once in {text}");
        let err = snapshot_file::parse(&text.replacen(from, to, 1)).map(|_| ()).expect_err(what);
        let err = err.to_string();
        assert!(err.contains(want), "{what}: expected {want:?}\n  got {err:?}");
        // serde_json says where the offending element ends in the file.
        assert!(err.contains("at line 1 column"), "{what}: no position in {err:?}");
    }
    // "0" is the one canonical uid with a zero in front.
    assert_eq!(parse(&base()).unwrap().users[&0], "root");
}

#[test]
fn a_bad_file_stops_the_exporter_with_one_line_naming_it() {
    let dir = tmpdir("bad");
    let path = dir.join("bad.json");
    let mut doc = base();
    doc["processes"][2]["ppid"] = json!(999);
    std::fs::write(&path, doc.to_string()).unwrap();
    let (ok, _, err) = run(&[
        "--source=replay",
        &format!("--source.replay-file={}", path.display()),
        "--check-config",
    ]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_eq!(
        err.trim(),
        format!(
            "libproc_exporter: error: {}: processes[2] (pid 50): ppid: 999 is not a process in this file",
            path.display()
        )
    );
    let (ok, _, err) = run(&["--source=replay", "--source.replay-file=/nonexistent/snap.json"]);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "libproc_exporter: error: /nonexistent/snap.json: No such file or directory (os error 2)"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn listpids_on_a_replay_uses_the_files_users_and_terminals() {
    let mac = fixture("snapshots/mac.json");
    let replay = format!("--source.replay-file={}", mac.display());
    let list = |filter: &[&str]| {
        let mut args = vec!["--source=replay", replay.as_str(), "listpids"];
        args.extend_from_slice(filter);
        let (ok, out, err) = run(&args);
        assert!(ok, "{filter:?}: {err}");
        out.lines().map(|l| l.parse::<i32>().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(list(&["--uid", "bob"]), [501, 502, 503]);
    assert_eq!(list(&["--ruid", "502"]), [501, 502, 503]);
    assert_eq!(list(&["--tty", "ttys000"]), [400, 401, 402, 403, 404]);
    assert_eq!(list(&["--tty", "/dev/ttys003"]), [502, 503]);
    assert_eq!(list(&["--tty", "s003"]), [502, 503]);
    assert_eq!(list(&["--pgrp", "403"]), [403, 404]);
    assert_eq!(list(&["--ppid", "600"]).len(), 60);
    assert_eq!(list(&["--all"]).len(), 117);
    assert_eq!(list(&[]).len(), 117);
    let (ok, _, err) = run(&["--source=replay", &replay, "listpids", "--tty", "ttys009"]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--tty \"ttys009\"") && err.contains("no such terminal"), "{err}");
}

/// Runs `record` over a replay file and returns its exit status and peak resident memory in
/// KiB: the `VmHWM` of the exporter's own address space, read while it is still writing its
/// output into a FIFO, so after the snapshot and its JSON text were both built.
///
/// Not `ru_maxrss` from `wait4`: Linux carries the high-water mark of the address space an
/// `exec` replaces into the new program's `ru_maxrss` (`exec_mmap` in fs/exec.c), and a child
/// that `posix_spawn` starts replaces its parent's address space (`CLONE_VM`), so `ru_maxrss`
/// reported this test process's own peak whenever it was larger: 146 MB under a parallel test
/// run, for a recording that peaks at 70 MB.
#[cfg(target_os = "linux")]
fn record_peak_rss_kib(file: &std::path::Path) -> (bool, i64) {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = crate::common::TempDir::new("record_fifo");
    let fifo = dir.join("out");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: c_path is a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    // Opened first, without waiting for a writer: the exporter's open then does not block.
    let mut reader =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
    let mut child = Command::new(exporter_bin())
        .args(["record", "--source=replay", "-o"])
        .arg(&fifo)
        .arg(format!("--source.replay-file={}", file.display()))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut peak_kib = None;
    // Bounded: 6,000 polls of 10 ms. The first bytes mean the text is built; the output is far
    // larger than a pipe holds, so the exporter is still alive, blocked writing the rest.
    for _ in 0..6_000 {
        match reader.read(&mut buf) {
            Ok(n) if n > 0 => {
                let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()));
                peak_kib = status.unwrap().lines().find_map(|l| {
                    l.strip_prefix("VmHWM:")?.trim().strip_suffix(" kB")?.parse::<i64>().ok()
                });
                break;
            }
            _ if child.try_wait().unwrap().is_some() => break,
            _ => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    // Drain the rest so the exporter can finish.
    let _ = std::io::copy(&mut BlockingReads(&mut reader), &mut std::io::sink());
    let ok = child.wait().unwrap().success();
    (ok, peak_kib.expect("the exporter wrote nothing into the FIFO"))
}

/// Reads a non-blocking FIFO to its end (every writer gone), waiting out `WouldBlock`.
#[cfg(target_os = "linux")]
struct BlockingReads<'a>(&'a mut std::fs::File);

#[cfg(target_os = "linux")]
impl std::io::Read for BlockingReads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                other => return other,
            }
        }
    }
}

// Linux only: the peak is read from /proc (macOS runs the same code; Linux measures it).
#[cfg(target_os = "linux")]
#[test]
fn a_hundred_thousand_process_replay_stays_under_a_kilobyte_per_process() {
    // Before, a replay held every process as a JSON value tree and a sparse map of whole
    // entries: about 3 KB per process (3.04 GB for 1,000,000); now well under 1 KB.
    let dir = crate::common::TempDir::new("replay_rss");
    let file = dir.0.join("big.json");
    crate::web_support::write_table(&file, 100_000, 2_000);
    let size = std::fs::metadata(&file).unwrap().len();
    let (ok, kib) = record_peak_rss_kib(&file);
    assert!(ok, "record failed on {}", file.display());
    eprintln!("100,000 processes ({size} bytes of JSON): record peaked at {kib} KiB");
    assert!(kib < 100 * 1024, "{kib} KiB for 100,000 processes");
}

#[test]
fn a_file_without_uniqueids_replays_without_a_fork_count_and_one_with_them_serves_it() {
    use libproc_exporter::table::Source;
    use libproc_exporter::table::replay::ReplaySource;
    // Files from before the fork counter (and every Linux recording) still load.
    let old = parse(&base()).unwrap();
    assert_eq!(ReplaySource::new(&old).snapshot().unwrap().forks, None);
    let mut doc = base();
    for (p, id) in doc["processes"].as_array_mut().unwrap().iter_mut().zip([0, 1, 900, 950]) {
        p["uniqueid"] = json!(id);
    }
    let file = parse(&doc).unwrap();
    assert_eq!(file.processes[2].uniqueid, Some(900));
    // zsh is the newest live process; make (950) is a zombie, listed after it (§3.10).
    assert_eq!(ReplaySource::new(&file).snapshot().unwrap().forks, Some(900));
}

/// Records `file` through its replay, with `record` as the binary runs it, and parses what it
/// wrote.
fn record_replay_of(file: &snapshot_file::SnapshotFile) -> (String, snapshot_file::SnapshotFile) {
    use libproc_exporter::table::replay::ReplaySource;
    let dir = crate::common::TempDir::new("record_replay");
    let out = dir.join("recorded.json");
    libproc_exporter::commands::record(&mut ReplaySource::new(file), Some(&out)).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let parsed = snapshot_file::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (text, parsed)
}

#[test]
fn a_missing_uniqueid_stays_missing_through_replay() {
    // Issue 19, defect 2: `record` asks every process's uniqueid after the snapshot, and one
    // reaped in between has none. Replay numbered such processes itself, so a file with 232
    // of 464 uniqueids recorded back with 464.
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("snapshots/mac.json")).unwrap())
            .unwrap();
    let processes = doc["processes"].as_array_mut().unwrap();
    for p in processes.iter_mut().skip(1).step_by(2) {
        p.as_object_mut().unwrap().remove("uniqueid");
    }
    let file = parse(&doc).unwrap();
    let with: Vec<(i32, Option<u64>)> =
        file.processes.iter().map(|p| (p.pid, p.uniqueid)).collect();
    let missing = with.iter().filter(|(_, id)| id.is_none()).count();
    assert!(missing > 50, "the fixture has {missing} processes without a uniqueid");
    let (once, recorded) = record_replay_of(&file);
    let mut got: Vec<(i32, Option<u64>)> =
        recorded.processes.iter().map(|p| (p.pid, p.uniqueid)).collect();
    let mut want = with;
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "every uniqueid as recorded, and none invented");
    let (twice, _) = record_replay_of(&recorded);
    assert_eq!(once, twice, "recording the replay again gives the same file");
}

/// A small unprivileged Mac: launchd, alice's shell on ttys000, and `children` of the shell
/// without a terminal (each in its own session), read as alice through SimKernel.
fn busy_mac(children: usize) -> (libproc_exporter::libproc::sim::SimTable, i32, Vec<i32>) {
    use libproc_exporter::libproc::sim::SimTable;
    let mut t = SimTable::booted();
    let shell = t.fork(1);
    let login = t.get(shell).unwrap().clone();
    let p = t.get_mut(shell).unwrap();
    *p = login.with_uid(501);
    (p.sid, p.pgid) = (shell, shell);
    *p = p.clone().with_tty(TTYS000);
    let kids = (0..children)
        .map(|_| {
            let kid = t.fork(shell);
            let p = t.get_mut(kid).unwrap();
            (p.sid, p.pgid, p.controlt, p.session_tty) = (kid, kid, false, libproc::NODEV);
            kid
        })
        .collect();
    (t, shell, kids)
}

const TTYS000: u32 = 0x1000_0000;
use libproc_exporter::libproc;

fn darwin_source(
    kernel: libproc::sim::SimKernel,
) -> libproc_exporter::table::darwin::DarwinSource<libproc::sim::SimKernel> {
    use libproc_exporter::table::darwin::{DarwinSource, TtyDevices};
    let ttys = vec![libproc_exporter::table::Tty { dev: TTYS000, name: "ttys000".into() }];
    let limits = libproc_exporter::host::Limits::default();
    DarwinSource::new(kernel, TtyDevices::Fixed(ttys), Some(limits), Default::default(), 501)
}

/// Runs `hook` once, at the call after the short-info read of `pid`: the world changes
/// between that read and the next call, as on a busy Mac.
fn after_short_info_of(
    pid: i32,
    mut change: impl FnMut(&mut libproc::sim::SimTable) + Send + 'static,
) -> libproc::sim::Hook {
    let mut armed = false;
    let mut done = false;
    Box::new(move |t, call| {
        if armed && !done {
            change(t);
            done = true;
        }
        armed |= call.callnum == libproc::PROC_CALLNUM_PIDINFO
            && call.pid == pid
            && call.flavor == libproc::PROC_PIDT_SHORTBSDINFO;
    })
}

#[test]
fn a_recording_whose_parent_was_reaped_mid_read_replays_counting_the_orphan_under_it() {
    use libproc_exporter::table::Source;
    use libproc_exporter::table::replay::ReplaySource;
    // Issue 19, defect 5: the listing is newest first (§2.5), so a child is read before its
    // parent; the parent exits and is reaped in between (its children go to launchd, §2.4,
    // but the child was already read). The recording has the child under a ppid that is not
    // in the file, and the strict reader refused the whole table.
    let (table, shell, kids) = busy_mac(2);
    let kernel = libproc::sim::SimKernel::new(table, 501);
    kernel.set_hook(after_short_info_of(kids[0], move |t| t.kill(shell)));
    let mut source = darwin_source(kernel);
    let recorded = libproc_exporter::commands::recording(&mut source).unwrap();
    assert!(recorded.find(shell).is_none(), "the shell vanished before its read");
    assert_eq!(recorded.find(kids[0]).unwrap().ppid, shell, "read before its parent exited");
    assert_eq!(recorded.find(kids[1]).unwrap().ppid, shell, "read before its parent exited");
    let text = snapshot_file::to_json(&recorded, &Default::default());
    let file = snapshot_file::parse(&text).unwrap_or_else(|e| panic!("refused: {e}\n{text}"));
    let replayed = ReplaySource::new(&file).snapshot().unwrap();
    let parents = |s: &libproc_exporter::table::Snapshot| {
        let mut v: Vec<(i32, i32)> = s.processes.iter().map(|p| (p.pid, p.ppid)).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(parents(&replayed), parents(&recorded), "the orphans counted under the shell");
    let (again, _) = record_replay_of(&file);
    assert_eq!(again, text, "recording the replay gives the same file");
}

#[test]
fn a_process_given_a_terminal_after_its_short_info_was_read_is_recorded_consistently() {
    use libproc_exporter::libproc::PROC_FLAG_CONTROLT;
    // Issue 19, defect 5: short info said no terminal (no PROC_FLAG_CONTROLT); before the
    // PROC_TTY_ONLY listings the process took ttys000 as its controlling terminal
    // (TIOCSCTTY sets P_CONTROLT, §2.1). The listing gives it the terminal, and the file
    // must not hold a terminal without the flag, which no kernel reports (§3.6).
    let (table, _shell, kids) = busy_mac(1);
    let kid = kids[0];
    let kernel = libproc::sim::SimKernel::new(table, 501);
    kernel.set_hook(after_short_info_of(kid, move |t| {
        let p = t.get_mut(kid).unwrap();
        (p.controlt, p.session_tty) = (true, TTYS000);
    }));
    let recorded = libproc_exporter::commands::recording(&mut darwin_source(kernel)).unwrap();
    let p = recorded.find(kid).unwrap();
    assert_eq!(p.tty, Some(TTYS000), "the listing after its read found it on the terminal");
    assert_ne!(p.flags.unwrap() & PROC_FLAG_CONTROLT, 0, "a terminal and the flag: {p:?}");
    let text = snapshot_file::to_json(&recorded, &Default::default());
    snapshot_file::parse(&text).unwrap_or_else(|e| panic!("refused: {e}\n{text}"));
}

#[test]
fn a_missing_parent_is_refused_unless_the_recorder_saw_it_vanish() {
    // What no kernel can produce stays refused: a parent simply left out, or one said to
    // have vanished that is in the file (or is kernel_task's 0).
    let mut dropped = base();
    dropped["processes"].as_array_mut().unwrap().remove(2);
    let err = parse(&dropped).unwrap_err();
    assert!(err.contains("processes[2] (pid 51): ppid: 50 is not a process in this file"), "{err}");
    let mut vanished = dropped.clone();
    vanished["processes"][2]["parent_unread"] = json!(true);
    assert_eq!(parse(&vanished).unwrap().processes[2].ppid, 50);
    let mut present = base();
    present["processes"][3]["parent_unread"] = json!(true);
    let err = parse(&present).unwrap_err();
    assert!(err.contains("parent_unread: ppid 50 is in this file"), "{err}");
    let mut root = base();
    root["processes"][1]["parent_unread"] = json!(true);
    let err = parse(&root).unwrap_err();
    assert!(err.contains("processes[1] (pid 1): parent_unread"), "{err}");
}

#[test]
fn record_keeps_every_uniqueid_when_the_newest_processes_have_none() {
    // Found by churn (seed 653): the four newest processes were reaped before `record` asked
    // their uniqueids, so their replay answers ESRCH, the replay's scrape finds no fork
    // count, and `record` then skipped every uniqueid: the file recorded back without any.
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("snapshots/mac.json")).unwrap())
            .unwrap();
    let processes = doc["processes"].as_array_mut().unwrap();
    processes.sort_by_key(|p| std::cmp::Reverse(p["start_sec"].as_u64()));
    for p in processes.iter_mut().take(6) {
        p.as_object_mut().unwrap().remove("uniqueid");
    }
    let file = parse(&doc).unwrap();
    let want = file.processes.iter().filter(|p| p.uniqueid.is_some()).count();
    let (_, recorded) = record_replay_of(&file);
    let got = recorded.processes.iter().filter(|p| p.uniqueid.is_some()).count();
    assert_eq!(got, want, "every uniqueid the file has is recorded back");
}

#[test]
fn a_replay_serves_the_fork_count_the_recording_run_served() {
    use libproc_exporter::table::Source;
    use libproc_exporter::table::replay::ReplaySource;
    // Found by churn (seed 2): the scrape reads the uniqueid of the process at the head of
    // the list (§3.10); after an exec the head is an old process with a small uniqueid
    // (§2.4), so the recording run served 2 here. The replay's list is in start order, its
    // head the newest fork: it served 4, a count the recording never saw.
    let (mut table, shell, kids) = busy_mac(2);
    table.exec(shell, "zsh");
    let kernel = libproc::sim::SimKernel::new(table, 501);
    let recorded = libproc_exporter::commands::recording(&mut darwin_source(kernel)).unwrap();
    assert_eq!(recorded.forks, Some(2), "the shell (uniqueid 2) heads the list after its exec");
    assert_eq!(recorded.find(kids[1]).unwrap().uniqueid, Some(4), "the newest fork");
    let text = snapshot_file::to_json(&recorded, &Default::default());
    let file = snapshot_file::parse(&text).unwrap();
    assert_eq!(ReplaySource::new(&file).snapshot().unwrap().forks, Some(2));
    let (again, _) = record_replay_of(&file);
    assert_eq!(again, text, "recording the replay gives the same file");
}
