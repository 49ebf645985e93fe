//! The `leftovers` collector against real processes: two sleeps a job left behind in its own
//! session count; the child of a live shell does not, nor a pipeline member whose group
//! leader exited while its shell (this test) lives.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libproc_exporter::collect::leftovers::{Leftovers, is_leftover};
use libproc_exporter::collect::{Collector, Context, Output};
use libproc_exporter::table::Snapshot;
use libproc_exporter::table::procfs::ProcfsSource;
use libproc_exporter::users::UserNames;

fn snapshot() -> Snapshot {
    ProcfsSource::open(Path::new("/proc")).expect("open /proc").read().expect("read /proc")
}

/// Kills a pid on drop (the sleeps outlive the shells that started them).
struct Reaper(Vec<i32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: kill takes plain integers; a pid already gone gives ESRCH.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// The pids `child` prints, one a line, `n` of them.
fn read_pids(child: &mut Child, n: usize) -> Vec<i32> {
    let out = BufReader::new(child.stdout.take().expect("piped stdout"));
    out.lines().take(n).map(|l| l.expect("a line").trim().parse().expect("a pid")).collect()
}

fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
}

#[test]
fn leftovers_of_a_gone_job_count_and_live_jobs_do_not() {
    let spawned_at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    // A job in its own session that leaves two sleeps behind: `setsid sh -c '...'`, with the
    // setsid(2) done in the child here rather than by util-linux's setsid(1), so the fast
    // tier needs no tool beyond sh.
    let mut job = Command::new("sh");
    job.args(["-c", "sleep 600 & echo $!; sleep 600 & echo $!; exit"]).stdout(Stdio::piped());
    // SAFETY: setsid is async-signal-safe and touches no memory of ours; it runs in the
    // child between fork and exec, as pre_exec requires.
    unsafe {
        job.pre_exec(|| {
            if libc::setsid() == -1 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
        });
    }
    let mut job = job.spawn().expect("setsid sh");
    let left = read_pids(&mut job, 2);
    let mut reaper = Reaper(left.clone());
    job.wait().expect("the job's shell exits");
    // A live shell in its own group with a child.
    let mut shell = Command::new("sh")
        .args(["-c", "sleep 600 & echo $!; wait"])
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("sh");
    let shell_child = read_pids(&mut shell, 1)[0];
    reaper.0.extend([shell.id() as i32, shell_child]);
    // A pipeline of this test (the shell): a leader and a member in the leader's group; the
    // leader exits and is reaped, the member lives on with this process as its parent.
    let mut leader = Command::new("sleep").arg("600").process_group(0).spawn().expect("sleep");
    let mut member_child = Command::new("sleep")
        .arg("600")
        .process_group(leader.id() as i32)
        .spawn()
        .expect("sleep in the leader's group");
    let member = member_child.id() as i32;
    leader.kill().expect("kill the leader");
    leader.wait().expect("reap the leader");

    // The sleeps are adopted once their shell has exited; wait for that, not for a time.
    let deadline = Instant::now() + Duration::from_secs(10);
    while left.iter().any(|&pid| ppid(pid) == Some(job.id() as i32)) {
        assert!(Instant::now() < deadline, "the sleeps were never adopted");
        std::thread::sleep(Duration::from_millis(10));
    }

    let snap = snapshot();
    let leftover = |pid: i32| {
        let p = snap.find(pid).unwrap_or_else(|| panic!("pid {pid} not in the snapshot"));
        is_leftover(&snap, p)
    };
    for &pid in &left {
        assert!(leftover(pid), "a sleep left by the job ({pid}) is a leftover");
        let start = snap.find(pid).unwrap().start.expect("a start time").sec;
        assert!(
            start.abs_diff(spawned_at) <= 2,
            "{pid} started at {start}, spawned at {spawned_at}: the age is off"
        );
    }
    assert!(!leftover(shell_child), "the child of a live shell is not a leftover");
    assert!(!leftover(shell.id() as i32), "a live shell is not a leftover");
    assert!(!leftover(member), "a pipeline member whose leader exited, shell alive, is not one");

    // The collector over the same table: every leftover of this uid under 5 minutes old,
    // the two sleeps among them.
    // SAFETY: getuid has no preconditions and cannot fail.
    let me = unsafe { libc::getuid() };
    let fresh = snap
        .processes
        .iter()
        .filter(|p| p.ruid == me && is_leftover(&snap, p))
        .filter(|p| p.start.is_some_and(|s| s.sec + 300 > spawned_at + 1))
        .count();
    assert!(fresh >= 2);
    let users = UserNames::new();
    let mut out = Output::default();
    Leftovers::new(50, SystemTime::now)
        .collect(&Context { snapshot: &snap, users: &users }, &mut out)
        .unwrap();
    let samples = &out.families[0].samples;
    let mine = samples.iter().find(|s| s.labels[0] == me.to_string() && s.labels[2] == "5m");
    assert_eq!(mine.map(|s| s.value), Some(fresh as f64), "{samples:?}");
    drop(reaper);
    let _ = shell.wait();
    let _ = member_child.kill();
    let _ = member_child.wait();
}
