//! `libproc_exporter listpids` on Linux against procps' `pgrep`, filter by filter:
//! `--ppid` / `pgrep -P`, `--pgrp` / `-g`, `--uid` (effective) / `-u`, `--ruid` (real) / `-U`,
//! `--tty` / `-t`, zombies included; and bad values rejected with one clear line.
//!
//! For the test's own processes the answer is known and fixed, so listpids, pgrep and the tree
//! must agree exactly. For filters that match processes all over the machine, listpids runs
//! between two pgrep runs: whatever matched in both must be listed, and whatever listpids alone
//! saw must be listpids itself or a process born after the first pgrep and gone before the
//! second (pgrep leaves itself out, listpids does not).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{exporter_bin, require_tool};
use crate::linux_tree::{
    NOBODY, Tree, UidMix, assert_one_line_error, handed_out_between, my_pid, require_root,
    run_with_deadline,
};

/// Runs a command that prints one pid per line: its own pid and the pids it printed.
/// `no_match` is the exit code meaning "nothing matched" (pgrep's 1).
fn pids_of(mut cmd: Command, no_match: Option<i32>) -> (i32, BTreeSet<i32>) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id() as i32;
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == no_match && no_match.is_some() {
        return (pid, BTreeSet::new());
    }
    assert!(out.status.success(), "{cmd:?}: {}; stderr {stderr:?}", out.status);
    let pids = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap_or_else(|_| panic!("{cmd:?} printed {l:?}")))
        .collect();
    (pid, pids)
}

fn listpids(args: &[&str]) -> (i32, BTreeSet<i32>) {
    let mut cmd = Command::new(exporter_bin());
    cmd.arg("listpids").args(args);
    pids_of(cmd, None)
}

fn pgrep(args: &[&str]) -> (i32, BTreeSet<i32>) {
    let mut cmd = Command::new(require_tool("pgrep", "apt-get install procps"));
    cmd.args(args);
    pids_of(cmd, Some(1))
}

/// Exact agreement for filters that only the test's own processes match.
fn assert_exact(
    errors: &mut Vec<String>,
    listpids_args: &[&str],
    pgrep_args: &[&str],
    want: &[i32],
) {
    let want: BTreeSet<i32> = want.iter().copied().collect();
    let (_, listed) = listpids(listpids_args);
    let (_, grepped) = pgrep(pgrep_args);
    if listed != want || grepped != want {
        errors.push(format!(
            "listpids {listpids_args:?} = {listed:?}, pgrep {pgrep_args:?} = {grepped:?}, the tree says {want:?}"
        ));
    }
}

/// Agreement within what changed between two pgrep runs, for filters that match processes all
/// over the machine; `must` have to be listed and `must_not` must not.
fn assert_bracketed(
    errors: &mut Vec<String>,
    listpids_args: &[&str],
    pgrep_args: &[&str],
    must: &[i32],
    must_not: &[i32],
) {
    let (first, before) = pgrep(pgrep_args);
    let (me, listed) = listpids(listpids_args);
    let (last, after) = pgrep(pgrep_args);
    let what = format!("listpids {listpids_args:?} vs pgrep {pgrep_args:?}");
    let missing: Vec<i32> =
        before.intersection(&after).filter(|p| !listed.contains(p)).copied().collect();
    if !missing.is_empty() {
        errors
            .push(format!("{what}: matched by pgrep before and after but not listed: {missing:?}"));
    }
    let extra: Vec<i32> = listed
        .iter()
        .filter(|&&p| !before.contains(&p) && !after.contains(&p) && p != me)
        .filter(|&&p| {
            !handed_out_between(first, last, p) || Path::new(&format!("/proc/{p}")).exists()
        })
        .copied()
        .collect();
    if !extra.is_empty() {
        errors.push(format!(
            "{what}: listed, yet neither pgrep matched them nor were they transient: {extra:?}"
        ));
    }
    let unlisted: Vec<i32> = must.iter().filter(|p| !listed.contains(p)).copied().collect();
    if !unlisted.is_empty() {
        errors.push(format!("{what}: the test's {unlisted:?} must be listed"));
    }
    let wrong: Vec<i32> = must_not.iter().filter(|p| listed.contains(p)).copied().collect();
    if !wrong.is_empty() {
        errors.push(format!("{what}: the test's {wrong:?} must not be listed"));
    }
    println!(
        "{what}: {} listed, pgrep {} before and {} after, {} in both",
        listed.len(),
        before.len(),
        after.len(),
        before.intersection(&after).count()
    );
}

#[test]
fn listpids_ppid_and_pgrp_agree_with_pgrep_zombies_included() {
    let mut tree = Tree::new();
    let family = tree.family(25, 1, 1);
    let loner = tree.loner();
    let session = tree.pty_session(2, 1);
    let (p, leader) = (family.parent.to_string(), session.leader.to_string());
    let group: Vec<i32> = family.children.iter().copied().chain([family.parent]).collect();
    let mut errors = Vec::new();
    assert_exact(&mut errors, &["--ppid", &p], &["-P", &p], &family.children);
    assert_exact(&mut errors, &["--ppid", &leader], &["-P", &leader], &session.children);
    assert_exact(&mut errors, &["--pgrp", &p], &["-g", &p], &group);
    assert_exact(
        &mut errors,
        &["--pgrp", &loner.to_string()],
        &["-g", &loner.to_string()],
        &[loner],
    );
    assert_exact(&mut errors, &["--pgrp", &leader], &["-g", &leader], &session.members());
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn listpids_tty_agrees_with_pgrep_by_name_and_by_path() {
    let mut tree = Tree::new();
    let session = tree.pty_session(3, 1);
    let path = format!("/dev/{}", session.tty);
    let mut errors = Vec::new();
    assert_exact(&mut errors, &["--tty", &session.tty], &["-t", &session.tty], &session.members());
    assert_exact(&mut errors, &["--tty", &path], &["-t", &session.tty], &session.members());
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn listpids_uid_is_effective_and_ruid_is_real_as_in_pgrep() {
    require_root("listpids_uid_is_effective_and_ruid_is_real_as_in_pgrep");
    let mut tree = Tree::new();
    let UidMix { nobody, real_nobody: rn, effective_nobody: en } = tree.uid_mix();
    let n = NOBODY.to_string();
    let mut errors = Vec::new();
    let (e, r) = ([nobody, en], [nobody, rn]);
    assert_bracketed(&mut errors, &["--uid", &n], &["-u", &n], &e, &[rn]);
    assert_bracketed(&mut errors, &["--uid", "nobody"], &["-u", "nobody"], &e, &[rn]);
    assert_bracketed(&mut errors, &["--ruid", &n], &["-U", &n], &r, &[en]);
    assert_bracketed(&mut errors, &["--ruid", "nobody"], &["-U", "nobody"], &r, &[en]);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn listpids_root_agrees_with_pgrep_over_the_whole_machine() {
    require_root("listpids_root_agrees_with_pgrep_over_the_whole_machine");
    let mut tree = Tree::new();
    let UidMix { nobody, real_nobody: rn, effective_nobody: en } = tree.uid_mix();
    let family = tree.family(3, 1, 0);
    let (me, p, z) = (my_pid(), family.parent, family.zombies[0]);
    let mut errors = Vec::new();
    assert_bracketed(&mut errors, &["--uid", "0"], &["-u", "0"], &[me, rn, p, z], &[nobody, en]);
    assert_bracketed(&mut errors, &["--ruid", "0"], &["-U", "0"], &[me, en, p, z], &[nobody, rn]);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn listpids_rejects_bad_values_with_one_clear_line() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["--uid", "no-such-user"], &["--uid", "no-such-user"]),
        (&["--ruid", "no-such-user"], &["--ruid", "no-such-user"]),
        (&["--tty", "nonexistent"], &["--tty", "nonexistent"]),
        (&["--ppid", "-4"], &["--ppid", "-4"]),
        (&["--pgrp", "-4"], &["--pgrp", "-4"]),
        (&["--ppid", "twelve"], &["--ppid", "twelve"]),
    ];
    for (args, names) in cases {
        let mut cmd = Command::new(exporter_bin());
        cmd.arg("listpids").args(*args);
        let (code, stdout, stderr) = run_with_deadline(&mut cmd, Duration::from_secs(60));
        let what = format!("listpids {}", args.join(" "));
        assert_one_line_error(&what, code, &stderr, names);
        assert!(stdout.is_empty(), "{what}: printed {stdout:?} before failing");
    }
}
