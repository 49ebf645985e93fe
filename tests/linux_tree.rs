//! Known process trees on this machine, and `ps` readings to hold the exporter's view against:
//! the machinery of the Linux acceptance tests (`procfs_reads_real_processes`,
//! `listpids_agrees_with_pgrep`, `binary_serves_real_processes`).
//!
//! # Cleaning up
//! Every process a [`Tree`] starts is a direct child of the test process that leads its own
//! process group (or session), and whatever *it* starts stays in that group. Killing is
//! therefore `kill(-pgid, SIGKILL)` for each direct child, then `wait` on it: never by name, and
//! safe from pid reuse, because an unreaped child keeps its pid and so its group id. [`Drop`]
//! does this, so a failing assertion leaves nothing behind. For a test process killed outright
//! (SIGKILL, or Ctrl-C, which does not reach our process groups) every process also has
//! `PR_SET_PDEATHSIG` = SIGKILL: direct children from `pre_exec` (it fires when the test
//! thread that spawned them ends), grandchildren through `setpriv --pdeathsig`. The exception
//! is a process whose real and effective uids differ: the kernel clears the death signal when
//! it execs one (a secure exec), so such a process outlives a killed test process by at most
//! its sleep ([`SLEEP_SECS`]). Grandchildren
//! killed with their group are reaped by pid 1 (on this machine a second or two later;
//! [`Tree::wait_gone`] waits for that when a test needs it).
//!
//! # Forking from a multithreaded process
//! The tests run as threads of one process, so a fork here copies one thread of many. Between
//! fork and exec the child only makes raw system calls (`setsid`, `ioctl`, `setresuid`,
//! `prctl`) in `pre_exec` closures that capture plain integers and allocate nothing. Trees are
//! built from `sh` and `sleep`. A zombie is a `sleep` child killed after its parent `exec`ed
//! into `sleep`, which never waits: no race with a shell that reaps.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::require_tool;

/// How long every `sleep` of a tree sleeps: far longer than any test, short enough that an
/// orphan left by a test process killed with SIGKILL does not linger for long.
const SLEEP_SECS: &str = "300";
/// The command name of a family's parent, distinct from its `sleep` children so that a
/// `parent` label holding the wrong process's name shows.
pub const PARENT_COMM: &str = "lpe-parent";
/// How long to wait for processes to reach the state a test arranged.
const SETTLE: Duration = Duration::from_secs(20);

/// The uid of `nobody`, the other user the tests run processes as.
pub const NOBODY: u32 = 65534;

/// This process's pid, as the tables spell pids.
pub fn my_pid() -> i32 {
    std::process::id() as i32
}

/// Fails (never skips) unless the tests run as root, which processes under another uid need.
pub fn require_root(what: &str) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "{what} needs root (it starts processes under uid {NOBODY} and with real uid != effective uid); \
         run the tests as root, e.g. `sudo -E cargo test --test tests`"
    );
}

/// A parent with children, every one of them in the parent's process group.
#[derive(Clone, Debug)]
pub struct Family {
    /// The parent: a `sleep` under the name [`PARENT_COMM`], leader of its process group.
    pub parent: i32,
    /// Every child, zombies included, in the order they were started.
    pub children: Vec<i32>,
    /// The children that were killed and left unreaped (state Z).
    pub zombies: Vec<i32>,
    /// The children stopped with SIGSTOP (state T).
    pub stopped: Vec<i32>,
}

impl Family {
    /// Children that are neither zombies nor stopped (state S).
    pub fn sleeping(&self) -> Vec<i32> {
        self.children
            .iter()
            .copied()
            .filter(|c| !self.zombies.contains(c) && !self.stopped.contains(c))
            .collect()
    }
}

/// A new session whose controlling terminal is a fresh pseudo-terminal.
#[derive(Clone, Debug)]
pub struct Session {
    /// The session leader (a `sleep`), also its process group's leader.
    pub leader: i32,
    /// The leader's children (`sleep`s on the same terminal), zombies included.
    pub children: Vec<i32>,
    /// The children killed and left unreaped.
    pub zombies: Vec<i32>,
    /// The terminal's name as `ps` prints it: `pts/N`.
    pub tty: String,
    /// Its device number (`st_rdev`, as /proc/PID/stat's tty_nr encodes it).
    pub dev: u32,
}

impl Session {
    /// The leader and its children: every process on the terminal.
    pub fn members(&self) -> Vec<i32> {
        std::iter::once(self.leader).chain(self.children.iter().copied()).collect()
    }
}

/// Processes under `nobody`, by which of their uids it is.
#[derive(Clone, Copy, Debug)]
pub struct UidMix {
    /// Real and effective uid nobody.
    pub nobody: i32,
    /// Real uid nobody, effective uid root (like a set-user-ID-root program run by nobody).
    pub real_nobody: i32,
    /// Real uid root, effective uid nobody (like a root daemon that dropped privileges with
    /// `seteuid`).
    pub effective_nobody: i32,
}

/// The two ends of a pseudo-terminal, held open for the life of the tree so that the `pts`
/// number is not handed to someone else while a test still looks for it.
struct Pty {
    _master: OwnedFd,
    slave: OwnedFd,
}

/// Processes started by one test, killed (by process group) and reaped on drop.
pub struct Tree {
    /// Direct children of the test process, each leading its own process group.
    leaders: Vec<Child>,
    /// Every pid started, for [`Tree::wait_gone`].
    pids: Vec<i32>,
    ptys: Vec<Pty>,
    /// Scratch directory holding the [`PARENT_COMM`] link to `sleep`.
    dir: PathBuf,
    sleep: PathBuf,
    sh: PathBuf,
    setpriv: PathBuf,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Tree {
        let sleep = require_tool("sleep", "apt-get install coreutils");
        let sh = require_tool("sh", "apt-get install dash");
        let setpriv = require_tool("setpriv", "apt-get install util-linux");
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("lpe-tree-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // The kernel names a process after the file it executes, not the link's target.
        std::os::unix::fs::symlink(&sleep, dir.join(PARENT_COMM)).unwrap();
        Tree { leaders: Vec::new(), pids: Vec::new(), ptys: Vec::new(), dir, sleep, sh, setpriv }
    }

    /// Every pid this tree started.
    pub fn pids(&self) -> &[i32] {
        &self.pids
    }

    /// A parent (leading a new process group) with `children` children, of which the last
    /// `zombies` are left as zombies and the `stopped` before them are stopped; returns once
    /// every process is in that state.
    pub fn family(&mut self, children: usize, zombies: usize, stopped: usize) -> Family {
        assert!(zombies + stopped <= children, "more zombies and stopped than children");
        let exe = self.dir.join(PARENT_COMM);
        let (parent, kids) = self.spawn_parent(children, &exe, |cmd| {
            cmd.process_group(0);
            // SAFETY: the closure only makes the prctl system call (async-signal-safe).
            unsafe { cmd.pre_exec(die_with_parent) };
        });
        let zombie_pids = kids[children - zombies..].to_vec();
        let stopped_pids = kids[children - zombies - stopped..children - zombies].to_vec();
        for &pid in &zombie_pids {
            signal(pid, libc::SIGKILL);
        }
        for &pid in &stopped_pids {
            signal(pid, libc::SIGSTOP);
        }
        let family = Family { parent, children: kids, zombies: zombie_pids, stopped: stopped_pids };
        let mut expected: Vec<(i32, char)> = vec![(parent, 'S')];
        expected.extend(family.sleeping().into_iter().map(|pid| (pid, 'S')));
        expected.extend(family.zombies.iter().map(|&pid| (pid, 'Z')));
        expected.extend(family.stopped.iter().map(|&pid| (pid, 'T')));
        wait_states(&expected);
        family
    }

    /// A `sleep` alone in a new process group (in the test process's session).
    pub fn loner(&mut self) -> i32 {
        let mut cmd = Command::new(&self.sleep);
        cmd.arg(SLEEP_SECS).process_group(0);
        // SAFETY: as in `family`.
        unsafe { cmd.pre_exec(die_with_parent) };
        self.spawn_single(cmd)
    }

    /// A `sleep` in a new process group running with these real and effective uids (the
    /// saved uid is the effective one, as after exec).
    pub fn with_uids(&mut self, ruid: u32, euid: u32) -> i32 {
        let mut cmd = Command::new(&self.sleep);
        cmd.arg(SLEEP_SECS).process_group(0);
        let setuid = move || {
            // SAFETY: setresuid is a system call (async-signal-safe); no memory is touched.
            if unsafe { libc::setresuid(ruid, euid, euid) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            die_with_parent()
        };
        // SAFETY: the closure only makes system calls and captures two integers.
        unsafe { cmd.pre_exec(setuid) };
        self.spawn_single(cmd)
    }

    /// Three processes that tell effective from real uids apart, each in its own group.
    pub fn uid_mix(&mut self) -> UidMix {
        UidMix {
            nobody: self.with_uids(NOBODY, NOBODY),
            real_nobody: self.with_uids(NOBODY, 0),
            effective_nobody: self.with_uids(0, NOBODY),
        }
    }

    /// A new session with a fresh pseudo-terminal as its controlling terminal: a leader with
    /// `children` children on it, the last `zombies` of them left as zombies (a zombie keeps
    /// its terminal until it is reaped).
    pub fn pty_session(&mut self, children: usize, zombies: usize) -> Session {
        assert!(zombies <= children, "more zombies than children");
        let (pty, path) = open_pty();
        let slave = pty.slave.as_raw_fd();
        let dev = std::fs::metadata(&path).unwrap().rdev() as u32;
        let tty = path.strip_prefix("/dev/").unwrap().to_string();
        self.ptys.push(pty);
        let sleep = self.sleep.clone();
        let (leader, kids) = self.spawn_parent(children, &sleep, |cmd| {
            let session = move || {
                // SAFETY: setsid, ioctl and prctl are system calls (async-signal-safe); `slave`
                // is an open descriptor inherited from the parent (O_CLOEXEC closes it only
                // at exec). A fresh child is not a group leader, so setsid succeeds.
                unsafe {
                    if libc::setsid() < 0 || libc::ioctl(slave, libc::TIOCSCTTY, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                die_with_parent()
            };
            // SAFETY: see the closure.
            unsafe { cmd.pre_exec(session) };
        });
        let zombie_pids = kids[children - zombies..].to_vec();
        for &pid in &zombie_pids {
            signal(pid, libc::SIGKILL);
        }
        let mut expected = vec![(leader, 'S')];
        expected.extend(
            kids.iter().map(|&pid| (pid, if zombie_pids.contains(&pid) { 'Z' } else { 'S' })),
        );
        wait_states(&expected);
        Session { leader, children: kids, zombies: zombie_pids, tty, dev }
    }

    /// Starts `sh`, which starts `children` `sleep`s in the background, prints their pids and
    /// `exec`s `exe` (a `sleep`); returns once the exec happened. `setup` adds the process
    /// group or session arrangement.
    fn spawn_parent(
        &mut self,
        children: usize,
        exe: &Path,
        setup: impl FnOnce(&mut Command),
    ) -> (i32, Vec<i32>) {
        // setpriv gives each child PR_SET_PDEATHSIG too, so that nothing outlives a test
        // process killed outright (Ctrl-C does not reach our process groups).
        const SCRIPT: &str = r#"n=$1 setpriv=$2 sleep=$3 exe=$4 secs=$5
i=0
while [ "$i" -lt "$n" ]; do
  "$setpriv" --pdeathsig KILL -- "$sleep" "$secs" </dev/null >/dev/null 2>&1 &
  echo $!
  i=$((i + 1))
done
exec "$exe" "$secs" >/dev/null"#;
        let mut cmd = Command::new(&self.sh);
        cmd.arg("-c").arg(SCRIPT).arg("sh").arg(children.to_string()).arg(&self.setpriv);
        cmd.arg(&self.sleep).arg(exe).arg(SLEEP_SECS);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        setup(&mut cmd);
        let mut child =
            cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", self.sh.display()));
        let parent = child.id() as i32;
        let stdout = child.stdout.take().unwrap();
        self.pids.push(parent);
        self.leaders.push(child);
        // The pipe closes when the shell execs (stdout goes to /dev/null) or dies.
        let mut kids = Vec::with_capacity(children);
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let pid: i32 = line.trim().parse().unwrap_or_else(|_| panic!("sh printed {line:?}"));
            kids.push(pid);
            self.pids.push(pid);
        }
        assert_eq!(kids.len(), children, "sh started {} of {children} children", kids.len());
        wait_comm(&[parent], exe.file_name().unwrap().to_str().unwrap());
        wait_comm(&kids, "sleep");
        (parent, kids)
    }

    fn spawn_single(&mut self, mut cmd: Command) -> i32 {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).current_dir("/");
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {:?}: {e}", cmd));
        let pid = child.id() as i32;
        self.pids.push(pid);
        self.leaders.push(child);
        wait_comm(&[pid], "sleep");
        wait_states(&[(pid, 'S')]);
        pid
    }

    /// Kills every process group this tree leads and reaps the leaders. Orphaned members are
    /// left to pid 1; see [`Tree::wait_gone`].
    pub fn kill(&mut self) {
        for child in &self.leaders {
            // The leader is our unreaped child, so its pid (= the group id) is still ours.
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        }
        for mut child in self.leaders.drain(..) {
            let _ = child.wait();
        }
    }

    /// Waits until none of this tree's processes is in /proc any more (orphaned zombies are
    /// reaped by pid 1, which may take a moment).
    pub fn wait_gone(&self, timeout: Duration) {
        wait_for("processes were not gone after the kill (pid, state, ppid)", timeout, || {
            self.pids
                .iter()
                .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
                .map(|&pid| (pid, proc_state(pid), proc_ppid(pid)))
                .collect()
        });
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `PR_SET_PDEATHSIG`: SIGKILL when the thread that forked us dies.
fn die_with_parent() -> std::io::Result<()> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number; no memory is touched.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill has no memory preconditions; pid is a child of one of our processes.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
}

/// A new pseudo-terminal, both ends close-on-exec and neither our controlling terminal.
fn open_pty() -> (Pty, String) {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: posix_openpt takes flags and returns a new descriptor or -1.
    let fd = unsafe { libc::posix_openpt(flags) };
    assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
    // SAFETY: fd was just opened and is owned by nothing else.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: master is an open pty master; name is a writable buffer of name.len() bytes.
    unsafe {
        assert_eq!(libc::grantpt(master.as_raw_fd()), 0, "grantpt");
        assert_eq!(libc::unlockpt(master.as_raw_fd()), 0, "unlockpt");
        assert_eq!(libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()), 0);
    }
    // SAFETY: ptsname_r succeeded, so name holds a NUL-terminated path.
    let path = unsafe { CStr::from_ptr(name.as_ptr()) }.to_str().unwrap().to_string();
    let c_path = std::ffi::CString::new(path.clone()).unwrap();
    // SAFETY: c_path is NUL-terminated.
    let fd = unsafe { libc::open(c_path.as_ptr(), flags) };
    assert!(fd >= 0, "open {path}: {}", std::io::Error::last_os_error());
    // SAFETY: as above.
    let slave = unsafe { OwnedFd::from_raw_fd(fd) };
    (Pty { _master: master, slave }, path)
}

/// /proc/PID/stat, split after the command name (which may hold anything but ends at the
/// last `)`): the fields from the state on.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The state letter of `pid`, from /proc.
pub fn proc_state(pid: i32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

fn proc_ppid(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// The command name of `pid`, from /proc.
pub fn proc_comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim_end().to_string())
}

/// Polls `wrong` (what is not yet as wanted) until it returns nothing; fails after
/// `timeout`, saying what was still wrong.
fn wait_for<T: std::fmt::Debug>(what: &str, timeout: Duration, wrong: impl Fn() -> Vec<T>) {
    let deadline = Instant::now() + timeout;
    loop {
        let left = wrong();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{what} within {timeout:?}; still not: {left:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until every pid runs under `name`: exec has replaced what forked it.
fn wait_comm(pids: &[i32], name: &str) {
    wait_for(&format!("processes did not exec {name} (pid, name)"), SETTLE, || {
        pids.iter()
            .map(|&pid| (pid, proc_comm(pid)))
            .filter(|(_, comm)| comm.as_deref() != Some(name))
            .collect()
    });
}

/// Waits until every pid is in its state (letter as in /proc/PID/stat).
fn wait_states(expected: &[(i32, char)]) {
    wait_for("processes did not settle (pid, wanted, got)", SETTLE, || {
        expected
            .iter()
            .map(|&(pid, want)| (pid, want, proc_state(pid)))
            .filter(|&(_, want, got)| got != Some(want))
            .collect()
    });
}

/// One line of `ps -e -o pid=,ppid=,pgid=,uid=,ruid=,tty=,stat=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsRow {
    /// Parent pid.
    pub ppid: i32,
    /// Process group.
    pub pgid: i32,
    /// Effective uid.
    pub uid: u32,
    /// Real uid.
    pub ruid: u32,
    /// Controlling terminal as ps names it (`pts/3`), `?` for none.
    pub tty: String,
    /// The state letter (ps's STAT column without its modifiers).
    pub state: char,
}

/// A whole `ps -e` reading.
#[derive(Clone, Debug)]
pub struct Ps {
    /// The pid the `ps` process had: pids are handed out in cyclic order, so it marks when
    /// the reading was taken.
    pub pid: i32,
    /// Every process, by pid.
    pub rows: BTreeMap<i32, PsRow>,
}

/// Runs `ps -e -o pid=,ppid=,pgid=,uid=,ruid=,tty=,stat=`.
pub fn ps() -> Ps {
    let bin = require_tool("ps", "apt-get install procps");
    let child = Command::new(bin)
        .args(["-e", "-o", "pid=,ppid=,pgid=,uid=,ruid=,tty=,stat="])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ps");
    let pid = child.id() as i32;
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "ps failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows = text
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 7, "unexpected ps line {line:?}");
            let num = |i: usize| f[i].parse::<i64>().unwrap_or_else(|_| panic!("ps line {line:?}"));
            let row = PsRow {
                ppid: num(1) as i32,
                pgid: num(2) as i32,
                uid: num(3) as u32,
                ruid: num(4) as u32,
                tty: f[5].to_string(),
                state: f[6].chars().next().unwrap(),
            };
            (num(0) as i32, row)
        })
        .collect();
    Ps { pid, rows }
}

/// Whether `pid` was handed out after `first` and before `last`: the kernel hands pids out
/// cyclically upwards (`idr_alloc_cyclic`), wrapping at `kernel.pid_max`.
pub fn handed_out_between(first: i32, last: i32, pid: i32) -> bool {
    if first < last { first < pid && pid < last } else { pid > first || pid < last }
}

/// Two `ps` readings taken just before and just after something else read the process
/// table: what that reading may differ in is bounded by what changed between them.
///
/// A pid in both readings was alive throughout. A pid the other reading saw and neither `ps`
/// did was born after the first `ps` and gone before the second: pids are handed out
/// cyclically upwards (wrapping at `kernel.pid_max`), so its pid lies between the two `ps`
/// pids.
pub struct Bracket {
    /// The reading before.
    pub before: Ps,
    /// The reading after.
    pub after: Ps,
}

impl Bracket {
    /// Runs `ps`, then `f`, then `ps` again.
    pub fn around<T>(f: impl FnOnce() -> T) -> (T, Bracket) {
        let before = ps();
        let value = f();
        let after = ps();
        (value, Bracket { before, after })
    }

    /// Whether `pid` was handed out after the first `ps` started and before the second did.
    pub fn born_between(&self, pid: i32) -> bool {
        handed_out_between(self.before.pid, self.after.pid, pid)
    }

    /// Pids handed out between the two readings that neither saw (threads included, so this
    /// is an upper bound on the processes that came and went unseen).
    pub fn unseen_births(&self) -> usize {
        let (first, last) = (self.before.pid, self.after.pid);
        let range: Box<dyn Iterator<Item = i32>> = if first < last {
            Box::new(first + 1..last)
        } else {
            let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(4_194_304);
            Box::new((first + 1..pid_max).chain(1..last))
        };
        range
            .filter(|pid| !self.before.rows.contains_key(pid) && !self.after.rows.contains_key(pid))
            .count()
    }

    /// Pids present in both readings.
    pub fn stable_pids(&self) -> BTreeSet<i32> {
        self.before.rows.keys().filter(|pid| self.after.rows.contains_key(pid)).copied().collect()
    }

    /// The least and the most processes matching `pred` there can have been at any moment
    /// between the two readings: at least those matching in both, at most those matching in
    /// either, those that appeared or vanished (they may have matched in between), and those
    /// that came and went unseen.
    pub fn bounds(&self, pred: impl Fn(&PsRow) -> bool) -> (usize, usize) {
        let (b, a) = (&self.before.rows, &self.after.rows);
        let low = b.iter().filter(|(pid, row)| pred(row) && a.get(pid).is_some_and(&pred)).count();
        let pids: BTreeSet<&i32> = b.keys().chain(a.keys()).collect();
        let high = pids
            .into_iter()
            .filter(|pid| {
                let (rb, ra) = (b.get(pid), a.get(pid));
                rb.is_some_and(&pred) || ra.is_some_and(&pred) || rb.is_none() || ra.is_none()
            })
            .count();
        (low, high + self.unseen_births())
    }
}

/// Runs `cmd` to completion with a deadline (a command that should fail at once must not hang
/// the tests if it starts serving instead): exit code (None if killed by a signal), stdout,
/// stderr.
pub fn run_with_deadline(cmd: &mut Command, deadline: Duration) -> (Option<i32>, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let until = Instant::now() + deadline;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= until {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} still running after {deadline:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts that a rejected invocation exited non-zero with exactly one line on stderr that
/// contains every one of `names` (the flag and the value).
pub fn assert_one_line_error(what: &str, code: Option<i32>, stderr: &str, names: &[&str]) {
    assert!(
        code.is_some_and(|c| c != 0),
        "{what}: exit code {code:?}, want non-zero; stderr {stderr:?}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: want one line on stderr, got {stderr:?}");
    for name in names {
        assert!(lines[0].contains(name), "{what}: {:?} does not name {name:?}", lines[0]);
    }
}
