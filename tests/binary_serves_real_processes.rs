//! The real binary serving this machine's /proc, end to end: a known tree is
//! counted in `/metrics` as `ps` sees it at the same moment, and its series are gone once it
//! is killed; bad flags stop the binary with one line naming the flag.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use crate::common::{Exporter, exporter_bin, sample};
use crate::linux_tree::{Bracket, PARENT_COMM, Tree, assert_one_line_error, run_with_deadline};

/// Sum of every sample of the family `name` (all label sets).
fn family_sum(body: &str, name: &str) -> f64 {
    let prefix = format!("{name}{{");
    body.lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().expect("numeric sample"))
        .sum()
}

#[test]
fn e2e_scrape_counts_a_known_tree_as_ps_does_and_forgets_it_once_killed() {
    // This machine is shared: other parents may have more than 40 children, and the default
    // top-10 would rightly leave ours out.
    let exporter = Exporter::start(&["--collector.ppid.top-k=100000"]);
    let mut tree = Tree::new();
    let family = tree.family(40, 3, 0);
    let session = tree.pty_session(1, 0);
    let (body, bracket) = Bracket::around(|| exporter.scrape());

    let mut errors = Vec::new();
    let parent = format!("ppid=\"{}\",parent=\"{PARENT_COMM}\"", family.parent);
    let tty = format!("tty=\"{}\"", session.tty);
    let tree_series = [
        ("libproc_ppid_processes", &parent, 40.0),
        ("libproc_ppid_zombies", &parent, 3.0),
        ("libproc_tty_processes", &tty, 2.0),
    ];
    for (name, labels, want) in tree_series {
        let got = sample(&body, name, labels);
        if got != Some(want) {
            errors.push(format!("{name}{{{labels}}} is {got:?}, want {want}"));
        }
    }
    // ps at the same moment agrees with the tree, so with the exporter.
    for (when, ps) in [("before", &bracket.before), ("after", &bracket.after)] {
        let rows = ps.rows.values();
        let children = rows.clone().filter(|r| r.ppid == family.parent).count();
        let zombies = rows.clone().filter(|r| r.ppid == family.parent && r.state == 'Z').count();
        let on_tty = rows.filter(|r| r.tty == session.tty).count();
        if (children, zombies, on_tty) != (40, 3, 2) {
            errors.push(format!(
                "ps {when}: {children} children, {zombies} zombies, {on_tty} on {}; want 40, 3, 2",
                session.tty
            ));
        }
    }
    // Machine-wide counts: within what changed between the two ps runs.
    let machine = [
        (
            "sum of libproc_processes",
            Some(family_sum(&body, "libproc_processes")),
            bracket.bounds(|_| true),
        ),
        (
            "libproc_processes{state=\"zombie\"}",
            sample(&body, "libproc_processes", "state=\"zombie\""),
            bracket.bounds(|r| r.state == 'Z'),
        ),
        (
            "libproc_uid_processes{uid=\"0\"}",
            sample(&body, "libproc_uid_processes", "uid=\"0\",user=\"root\""),
            bracket.bounds(|r| r.uid == 0),
        ),
        (
            "libproc_ruid_processes{uid=\"0\"}",
            sample(&body, "libproc_ruid_processes", "uid=\"0\",user=\"root\""),
            bracket.bounds(|r| r.ruid == 0),
        ),
    ];
    for (what, got, (low, high)) in machine {
        println!("{what}: {got:?}, ps bounds {low}..={high}");
        if !got.is_some_and(|v| low as f64 <= v && v <= high as f64) {
            errors.push(format!("{what} is {got:?}, ps says between {low} and {high}"));
        }
    }
    assert!(errors.is_empty(), "the scrape disagrees with the tree and ps:\n{}", errors.join("\n"));

    // Kill the tree and wait until pid 1 has reaped the orphans; the pty stays allocated (the
    // tree holds it) so its name cannot be reused by someone else meanwhile.
    tree.kill();
    tree.wait_gone(Duration::from_secs(30));
    let body = exporter.scrape();
    let ppid_label = format!("ppid=\"{}\"", family.parent);
    let stale: Vec<&str> =
        body.lines().filter(|l| l.contains(&ppid_label) || l.contains(&tty)).collect();
    assert!(stale.is_empty(), "series of the killed tree survive: {stale:#?}");
}

#[test]
fn bad_flags_exit_nonzero_with_one_line_naming_the_flag() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    // Flags that must be rejected; a binary that wrongly starts listens on an ephemeral port
    // (not :10077) and is killed after the deadline.
    let ephemeral = "--web.listen-address=127.0.0.1:0";
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec![ephemeral, "--collector.nope"], vec!["--collector.nope"]),
        (vec![ephemeral, "--no-collector.nope"], vec!["--no-collector.nope"]),
        (vec![ephemeral, "--collector.ppid.top-k", "0"], vec!["--collector.ppid.top-k", "0"]),
        (
            vec!["--web.listen-address", "not-an-address"],
            vec!["--web.listen-address", "not-an-address"],
        ),
        (
            vec!["--web.listen-address", "127.0.0.1:port"],
            vec!["--web.listen-address", "127.0.0.1:port"],
        ),
        (vec!["--web.listen-address", ":99999"], vec!["--web.listen-address", ":99999"]),
        (vec!["--web.listen-address", &busy_addr], vec!["--web.listen-address", &busy_addr]),
    ];
    for (args, names) in cases {
        let mut cmd = Command::new(exporter_bin());
        cmd.args(&args);
        let (code, _, stderr) = run_with_deadline(&mut cmd, Duration::from_secs(20));
        assert_one_line_error(
            &format!("libproc_exporter {}", args.join(" ")),
            code,
            &stderr,
            &names,
        );
    }
    drop(busy);
}

/// The kernel release from /proc, as (major, minor).
fn kernel_release() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release.trim().split(['.', '-']).map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[test]
fn the_source_info_names_the_path_the_ids_are_read_by() {
    // Our own /proc on Linux 6.13 or later: PIDFD_GET_INFO answers (include/uapi/linux/pidfd.h),
    // so the ids come through pidfds; on an older kernel, from status.
    let exporter = Exporter::start(&[]);
    let body = exporter.scrape();
    let want = if kernel_release() >= (6, 13) { "procfs/pidfd" } else { "procfs/status" };
    assert_eq!(sample(&body, "libproc_source_info", &format!("source=\"{want}\"")), Some(1.0));
    assert_eq!(body.lines().filter(|l| l.starts_with("libproc_source_info{")).count(), 1);

    // A /proc that is not our pid namespace's (here a copied tree): its pids are not ours to
    // open, so status, and the metric says so.
    let root = std::env::temp_dir().join(format!("libproc-source-info-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("1")).unwrap();
    std::fs::write(root.join("stat"), "btime 1700000000\n").unwrap();
    let stat = "1 (init) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0\n";
    std::fs::write(root.join("1/stat"), stat).unwrap();
    std::fs::write(root.join("1/status"), "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nThreads:\t1\n")
        .unwrap();
    let fake = Exporter::start(&[&format!("--path.procfs={}", root.display())]);
    let body = fake.scrape();
    std::fs::remove_dir_all(&root).unwrap();
    assert_eq!(sample(&body, "libproc_source_info", "source=\"procfs/status\""), Some(1.0));
}
