//! The README's flags and metrics tables agree with the binary and the golden file, so the
//! documentation cannot drift from the code.

use std::collections::BTreeSet;
use std::process::Command;

use crate::common::{exporter_bin, fixture, repo_root};

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).unwrap()
}

/// `--flag` names in a text.
fn flags_in(text: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("--") {
        let start = i + at + 2;
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_alphanumeric() || b".-".contains(&bytes[end]))
        {
            end += 1;
        }
        let name = text[start..end].trim_end_matches(['.', '-']);
        if name.starts_with(|c: char| c.is_ascii_lowercase()) {
            flags.insert(format!("--{name}"));
        }
        i = end.max(start);
    }
    flags
}

fn help(args: &[&str]) -> String {
    let out = Command::new(exporter_bin()).args(args).arg("--help").output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_flag_of_the_binary_is_in_the_readme_and_no_other() {
    let readme = readme();
    let documented = flags_in(&readme);
    let mut actual = BTreeSet::new();
    for args in [&[][..], &["listpids"], &["record"]] {
        actual.extend(flags_in(&help(args)));
    }
    // Per-collector flags are documented once as --collector.NAME / --no-collector.NAME.
    let collectors: Vec<&str> = libproc_exporter::collect::ALL.iter().map(|c| c.name).collect();
    let generic = |f: &String| {
        collectors
            .iter()
            .any(|c| *f == format!("--collector.{c}") || *f == format!("--no-collector.{c}"))
    };
    let missing: Vec<_> =
        actual.iter().filter(|f| !generic(f) && !documented.contains(*f)).collect();
    assert!(missing.is_empty(), "flags missing from README.md: {missing:?}");
    assert!(readme.contains("`--collector.NAME`, `--no-collector.NAME`"));
    for name in &collectors {
        assert!(readme.contains(&format!("`{name}`")), "collector {name} not named in README.md");
    }
    // And the flags section names no flag the binary lacks.
    let section = readme.split("\n## Flags\n").nth(1).unwrap().split("\n## ").next().unwrap();
    let stale: Vec<_> = flags_in(section)
        .into_iter()
        .filter(|f| !actual.contains(f) && !f.starts_with("--collector.NAME"))
        .filter(|f| !f.starts_with("--no-collector.NAME"))
        .collect();
    assert!(stale.is_empty(), "README.md documents flags the binary does not have: {stale:?}");
}

/// One scrape of this machine's /proc with every collector, for the families only Linux
/// serves (the golden file is a Mac's); empty elsewhere.
fn linux_scrape() -> String {
    #[cfg(target_os = "linux")]
    {
        use libproc_exporter::collect;
        use libproc_exporter::metrics::Exporter;
        use libproc_exporter::table::procfs::ProcfsSource;
        let source = ProcfsSource::open(std::path::Path::new("/proc")).unwrap();
        let collectors = collect::ALL.iter().map(|d| d.default_instance()).collect();
        Exporter::new(Box::new(source), collectors, true).scrape(None)
    }
    #[cfg(not(target_os = "linux"))]
    String::new()
}

#[test]
fn every_metric_family_is_in_the_readme_metrics_table() {
    let golden = std::fs::read_to_string(fixture("golden/mac.prom")).unwrap();
    let linux = linux_scrape();
    let families: BTreeSet<&str> = golden
        .lines()
        .chain(linux.lines())
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let readme = readme();
    let table: BTreeSet<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        // Families only Linux serves are checked where a Linux scrape can show them.
        .filter(|l| cfg!(target_os = "linux") || !l.contains("Linux only"))
        .filter_map(|l| l.split('`').next())
        .filter(|name| name.starts_with("libproc_") || name.starts_with("process_"))
        .collect();
    let undocumented: Vec<_> = families.difference(&table).collect();
    assert!(
        undocumented.is_empty(),
        "metric families missing from the README table: {undocumented:?}"
    );
    let unknown: Vec<_> = table.difference(&families).collect();
    assert!(
        unknown.is_empty(),
        "README documents metrics the exporter does not serve: {unknown:?}"
    );
}

#[test]
fn the_readme_starts_with_the_run_and_test_commands() {
    let readme = readme();
    let block = readme.split("```").nth(1).unwrap();
    assert!(block.contains("cargo run --release"), "{block}");
    assert!(block.contains("scripts/test.sh"), "{block}");
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == "exec scripts/test.sh"),
        ".ci/run must call the README's test command"
    );
}
