//! The procfs source against real processes: a tree this test starts, read back
//! record by record, and the whole table against `ps` taken around the snapshot. Each test
//! runs twice: with the ids read as the source chooses (through pidfds on Linux 6.13 and
//! later) and with the ids forced to come from `status`.

use std::collections::BTreeSet;
use std::path::Path;

use libproc_exporter::table::procfs::{IdSource, ProcfsSource};
use libproc_exporter::table::{Process, Snapshot, State};

use crate::linux_tree::{Bracket, NOBODY, PARENT_COMM, PsRow, Tree, UidMix, my_pid, require_root};

fn snapshot() -> Snapshot {
    ProcfsSource::open(Path::new("/proc")).expect("open /proc").read().expect("read /proc")
}

fn status_snapshot() -> Snapshot {
    let mut source = ProcfsSource::open_reading_status(Path::new("/proc")).expect("open /proc");
    assert_eq!(source.ids(), IdSource::Status);
    source.read().expect("read /proc")
}

/// What one process must look like in the snapshot.
struct Want<'a> {
    what: &'a str,
    pid: i32,
    ppid: i32,
    pgid: i32,
    euid: u32,
    ruid: u32,
    tty: Option<u32>,
    state: State,
    comm: &'a str,
}

fn check(snapshot: &Snapshot, want: &Want<'_>, errors: &mut Vec<String>) {
    let Some(p) = snapshot.find(want.pid) else {
        errors.push(format!("{} (pid {}) is missing from the snapshot", want.what, want.pid));
        return;
    };
    let got = (p.ppid, p.pgid, p.euid, p.ruid, p.tty, p.state, p.comm.to_string());
    let expected =
        (want.ppid, want.pgid, want.euid, want.ruid, want.tty, want.state, want.comm.to_string());
    if got != expected {
        errors.push(format!(
            "{} (pid {}): (ppid, pgid, euid, ruid, tty, state, comm) is {got:?}, want {expected:?}",
            want.what, want.pid
        ));
    }
}

fn pids_where(snapshot: &Snapshot, pred: impl Fn(&Process) -> bool) -> BTreeSet<i32> {
    snapshot.processes.iter().filter(|p| pred(p)).map(|p| p.pid).collect()
}

#[test]
#[ignore = "needs root (starts processes under another uid)"]
fn procfs_reads_every_process_of_a_known_tree() {
    require_root("procfs_reads_every_process_of_a_known_tree");
    reads_every_process_of_a_known_tree(snapshot);
}

#[test]
#[ignore = "needs root (starts processes under another uid)"]
fn procfs_status_path_reads_every_process_of_a_known_tree() {
    require_root("procfs_status_path_reads_every_process_of_a_known_tree");
    reads_every_process_of_a_known_tree(status_snapshot);
}

fn reads_every_process_of_a_known_tree(snapshot: fn() -> Snapshot) {
    let mut tree = Tree::new();
    let family = tree.family(25, 1, 1);
    let loner = tree.loner();
    let session = tree.pty_session(2, 1);
    let UidMix { nobody, real_nobody, effective_nobody } = tree.uid_mix();
    let snap = snapshot();

    let me = my_pid();
    let (p, tty) = (family.parent, Some(session.dev));
    let mut wants = vec![
        Want {
            what: "family parent",
            pid: p,
            ppid: me,
            pgid: p,
            euid: 0,
            ruid: 0,
            tty: None,
            state: State::Sleeping,
            comm: PARENT_COMM,
        },
        Want {
            what: "process in its own group",
            pid: loner,
            ppid: me,
            pgid: loner,
            euid: 0,
            ruid: 0,
            tty: None,
            state: State::Sleeping,
            comm: "sleep",
        },
        Want {
            what: "session leader on the pty",
            pid: session.leader,
            ppid: me,
            pgid: session.leader,
            euid: 0,
            ruid: 0,
            tty,
            state: State::Sleeping,
            comm: "sleep",
        },
        Want {
            what: "process running as nobody",
            pid: nobody,
            ppid: me,
            pgid: nobody,
            euid: NOBODY,
            ruid: NOBODY,
            tty: None,
            state: State::Sleeping,
            comm: "sleep",
        },
        Want {
            what: "real uid nobody, effective root",
            pid: real_nobody,
            ppid: me,
            pgid: real_nobody,
            euid: 0,
            ruid: NOBODY,
            tty: None,
            state: State::Sleeping,
            comm: "sleep",
        },
        Want {
            what: "real uid root, effective nobody",
            pid: effective_nobody,
            ppid: me,
            pgid: effective_nobody,
            euid: NOBODY,
            ruid: 0,
            tty: None,
            state: State::Sleeping,
            comm: "sleep",
        },
    ];
    for &child in &family.children {
        let (what, state) = if family.zombies.contains(&child) {
            ("zombie child", State::Zombie)
        } else if family.stopped.contains(&child) {
            ("stopped child", State::Stopped)
        } else {
            ("sleeping child", State::Sleeping)
        };
        wants.push(Want {
            what,
            pid: child,
            ppid: p,
            pgid: p,
            euid: 0,
            ruid: 0,
            tty: None,
            state,
            comm: "sleep",
        });
    }
    for &child in &session.children {
        let zombie = session.zombies.contains(&child);
        wants.push(Want {
            what: if zombie { "zombie child on the pty" } else { "child on the pty" },
            pid: child,
            ppid: session.leader,
            pgid: session.leader,
            euid: 0,
            ruid: 0,
            tty,
            state: if zombie { State::Zombie } else { State::Sleeping },
            comm: "sleep",
        });
    }
    let mut errors = Vec::new();
    for want in &wants {
        check(&snap, want, &mut errors);
    }

    // The same facts from the other side: who has this parent, group or terminal.
    let children: BTreeSet<i32> = family.children.iter().copied().collect();
    let by_ppid = pids_where(&snap, |q| q.ppid == p);
    if by_ppid != children {
        errors.push(format!("children of {p}: {by_ppid:?}, want {children:?}"));
    }
    let group: BTreeSet<i32> = children.iter().copied().chain([p]).collect();
    let by_pgid = pids_where(&snap, |q| q.pgid == p);
    if by_pgid != group {
        errors.push(format!("group {p}: {by_pgid:?}, want {group:?}"));
    }
    let on_tty: BTreeSet<i32> = session.members().into_iter().collect();
    let by_tty = pids_where(&snap, |q| q.tty == tty);
    if by_tty != on_tty {
        errors.push(format!("processes on {}: {by_tty:?}, want {on_tty:?}", session.tty));
    }
    if snap.tty_name(session.dev) != Some(session.tty.as_str()) {
        errors.push(format!(
            "device {:#x} is named {:?}, want {:?}",
            session.dev,
            snap.tty_name(session.dev),
            session.tty
        ));
    }
    if snap.find(family.zombies[0]).is_some_and(|z| !z.is_zombie()) {
        errors.push("the zombie child is not is_zombie()".to_string());
    }
    if (snap.unreadable.permission, snap.unreadable.other) != (0, 0) || !snap.privileged {
        errors.push(format!(
            "as root nothing is unreadable and the snapshot is privileged: {:?}, privileged {}",
            snap.unreadable, snap.privileged
        ));
    }
    assert!(errors.is_empty(), "the snapshot disagrees with the tree:\n{}", errors.join("\n"));
}

/// A state letter's class. ps and the snapshot read the same letter, but a kernel thread
/// flips between I and R, and any busy process between R, S and D, faster than two `ps` runs
/// can pin down; zombie and stopped are the distinctions that stay put.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    Live,
    Stopped,
    Zombie,
    Other,
}

fn class_of_letter(letter: char) -> Class {
    match letter {
        'R' | 'S' | 'D' | 'I' => Class::Live,
        'T' | 't' => Class::Stopped,
        'Z' => Class::Zombie,
        _ => Class::Other,
    }
}

fn class_of_state(state: State) -> Class {
    match state {
        State::Running | State::Sleeping | State::DiskSleep | State::Idle => Class::Live,
        State::Stopped => Class::Stopped,
        State::Zombie => Class::Zombie,
        State::Created | State::Alive | State::Other => Class::Other,
    }
}

/// What the comparison looks at in a ps line: ids, terminal name and state class.
fn ps_view(row: &PsRow) -> (i32, i32, u32, u32, String, Class) {
    (row.ppid, row.pgid, row.uid, row.ruid, row.tty.clone(), class_of_letter(row.state))
}

/// The same view of a snapshot record, the terminal named through the snapshot (`?` for none,
/// as ps prints it).
fn snapshot_view(snap: &Snapshot, p: &Process) -> (i32, i32, u32, u32, String, Class) {
    let tty = match p.tty {
        None => "?".to_string(),
        Some(dev) => snap.tty_name(dev).map_or_else(|| format!("unnamed {dev:#x}"), str::to_string),
    };
    (p.ppid, p.pgid, p.euid, p.ruid, tty, class_of_state(p.state))
}

#[test]
#[ignore = "needs root (starts processes under another uid)"]
fn procfs_snapshot_agrees_with_ps_taken_around_it() {
    require_root("procfs_snapshot_agrees_with_ps_taken_around_it");
    agrees_with_ps_taken_around_it(snapshot);
}

#[test]
#[ignore = "needs root (starts processes under another uid)"]
fn procfs_status_path_agrees_with_ps_taken_around_it() {
    require_root("procfs_status_path_agrees_with_ps_taken_around_it");
    agrees_with_ps_taken_around_it(status_snapshot);
}

fn agrees_with_ps_taken_around_it(snapshot: fn() -> Snapshot) {
    // Something of every kind is on the table, whatever else this machine runs.
    let mut tree = Tree::new();
    let family = tree.family(5, 1, 1);
    let session = tree.pty_session(1, 1);
    tree.uid_mix();

    let (snap, bracket) = Bracket::around(snapshot);
    let (before, after) = (&bracket.before.rows, &bracket.after.rows);

    let mut errors = Vec::new();
    let mut compared = BTreeSet::new();
    for pid in bracket.stable_pids() {
        let Some(p) = snap.find(pid) else {
            errors.push(format!("pid {pid} was in ps before and after but not in the snapshot"));
            continue;
        };
        let (b, a) = (ps_view(&before[&pid]), ps_view(&after[&pid]));
        // A process that changed between the two readings (reparented, setsid, exited) may
        // have been read at either side of the change.
        if b != a {
            continue;
        }
        compared.insert(pid);
        let got = snapshot_view(&snap, p);
        if got != b {
            errors.push(format!(
                "pid {pid} ({}): (ppid, pgid, euid, ruid, tty, state) is {got:?}, ps says {b:?}",
                p.comm
            ));
        }
    }
    let mut unseen = 0;
    for p in &snap.processes {
        if before.contains_key(&p.pid) || after.contains_key(&p.pid) {
            continue;
        }
        // Neither ps saw it: it must have been born after the first and gone before the second.
        unseen += 1;
        if !bracket.born_between(p.pid) {
            errors.push(format!(
                "pid {} ({}) is in the snapshot, in neither ps, and its pid was not handed out between them ({} .. {})",
                p.pid, p.comm, bracket.before.pid, bracket.after.pid
            ));
        } else if Path::new(&format!("/proc/{}", p.pid)).exists() {
            errors.push(format!(
                "pid {} ({}) is in the snapshot and still alive, yet the second ps did not list it",
                p.pid, p.comm
            ));
        }
    }
    let ours: Vec<i32> =
        tree.pids().iter().copied().filter(|pid| !compared.contains(pid)).collect();
    if !ours.is_empty() {
        errors.push(format!("the test's own processes {ours:?} were not compared"));
    }
    println!(
        "procfs vs ps: {} in the snapshot, {} in ps before, {} after; {} compared field by field, \
         {} changed between the ps runs, {} seen by the snapshot only (born and gone between); \
         zombie child {:?}, pty {}",
        snap.processes.len(),
        before.len(),
        after.len(),
        compared.len(),
        bracket.stable_pids().len() - compared.len(),
        unseen,
        family.zombies,
        session.tty,
    );
    assert!(errors.is_empty(), "the snapshot disagrees with ps:\n{}", errors.join("\n"));
}
