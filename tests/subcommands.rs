//! The `listpids` and `record` subcommands on a replayed Mac table: a bad flag value or an
//! output file that cannot be created stops them with exit 1 and one line naming what was
//! wrong; a good run writes what was asked.

use std::process::Command;

use crate::common::{exporter_bin, fixture};

/// Runs the binary on the replayed Mac table: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let replay = format!("--source.replay-file={}", fixture("snapshots/mac.json").display());
    let out = Command::new(exporter_bin())
        .args(["--source=replay", &replay])
        .args(args)
        .output()
        .expect("run libproc_exporter");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn subcommand_errors_are_one_line_naming_the_flag_and_value() {
    let missing_dir = std::env::temp_dir().join(format!("lpe-no-such-dir-{}", std::process::id()));
    let output = missing_dir.join("table.json");
    let output = output.to_str().unwrap();
    let cases: [(&[&str], &[&str]); 5] = [
        (&["listpids", "--uid", "no-such-user-x"], &["--uid", "no-such-user-x", "no such user"]),
        (&["listpids", "--ppid", "-3"], &["--ppid", "-3", "process id"]),
        (&["listpids", "--pgrp", "12x"], &["--pgrp", "12x", "process id"]),
        (&["listpids", "--tty", "ttys999"], &["--tty", "ttys999", "no such terminal"]),
        (&["record", "--output", output], &["--output", output, "No such file"]),
    ];
    for (args, names) in cases {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, Some(1), "{args:?}: exit {code:?}, stderr {stderr:?}");
        assert!(stdout.is_empty(), "{args:?} printed {stdout:?}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: want one line, got {stderr:?}");
        assert!(lines[0].starts_with("libproc_exporter: error: "), "{args:?}: {stderr:?}");
        for name in names {
            assert!(lines[0].contains(name), "{args:?}: {:?} does not name {name:?}", lines[0]);
        }
    }
}

#[test]
fn record_writes_the_table_to_the_output_file() {
    let path = std::env::temp_dir().join(format!("lpe-record-{}.json", std::process::id()));
    let (code, stdout, stderr) = run(&["record", "--output", path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.is_empty());
    let written = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let (_, to_stdout, _) = run(&["record"]);
    assert_eq!(written, to_stdout, "--output and standard output differ");
    assert!(written.contains("\"pid\""), "not a snapshot: {}", &written[..written.len().min(200)]);
}

#[test]
fn version_names_the_revision_build_date_compiler_and_target() {
    let (code, stdout, _) = run(&["--version"]);
    assert_eq!(code, Some(0));
    let mut lines = stdout.lines();
    let first = lines.next().unwrap_or_default();
    let revision = first
        .strip_prefix(&format!("libproc_exporter {} (revision: ", env!("CARGO_PKG_VERSION")))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("first line: {first:?}"));
    assert!(
        revision == "unknown"
            || revision.len() == 12 && revision.chars().all(|c| c.is_ascii_hexdigit()),
        "{revision:?}"
    );
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(name)?.trim().to_string().into())
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
    };
    let date = field("build date:");
    let parts: Vec<u32> = date.split('-').filter_map(|p| p.parse().ok()).collect();
    assert!(parts.len() == 3 && parts[0] >= 2025 && (1..=12).contains(&parts[1]), "{date}");
    assert!(field("rustc:").starts_with("1."));
    assert!(field("target:").contains('-'));
}
