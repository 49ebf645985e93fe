//! Every citation in the repository resolves inside it: a `§N.M` names a numbered heading of
//! docs/xnu-proc-info.md (the kernel reference), and a cited repository path (`src/...`,
//! `docs/...`, `../benches/...`) exists. A contributor who clones the repository can follow
//! every one of them; nothing points at a tree only the project's authors had.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::repo_root;

/// The kernel reference, where every `§` points.
const REFERENCE: &str = "docs/xnu-proc-info.md";

/// What is scanned for citations, relative to the repository root. (scripts/ is not: the paths
/// it names are ones it creates, such as fuzz/corpus/.)
const SCANNED: &[&str] =
    &["src", "tests", "benches", "docs", "deploy", "README.md", "BENCHMARKS.md"];

/// Top-level directories of the repository: a word starting with one of these and a `/` is a
/// cited path.
const REPO_DIRS: &[&str] =
    &["src", "tests", "benches", "docs", "deploy", "scripts", "dashboards", "fuzz", ".github"];

/// Trees that were never part of the repository but were cited from it once.
const OUTSIDE: &[&str] = &["reference/", "shared/", "/work/"];

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_./-".contains(c)
}

/// Every text file under the scanned roots, fixtures (recorded data, not prose) and build
/// output left out.
fn scanned_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack: Vec<PathBuf> = SCANNED.iter().map(|rel| root.join(rel)).collect();
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            let name = path.file_name().unwrap_or_default();
            if name == "fixtures" || name == "target" {
                continue;
            }
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The section numbers that are headings of the reference: `## 3. ...` gives `3`,
/// `### 3.1 ...` gives `3.1`.
fn reference_sections(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|line| line.trim_start_matches('#').trim_start())
        .filter_map(|title| title.split([' ', '\t']).next())
        .map(|number| number.trim_end_matches('.'))
        .filter(|number| {
            !number.is_empty() && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
        .map(str::to_string)
        .collect()
}

/// The section numbers cited in a line: `§3.1`, `§ 2`, `§3.3/3.4` gives `3.3` (the second is
/// read as its own citation only when it carries its own `§`).
fn sections_cited(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in line.match_indices('§') {
        let rest = line[at + '§'.len_utf8()..].trim_start();
        let number: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        let number = number.trim_end_matches('.');
        if !number.is_empty() {
            found.push(number.to_string());
        }
    }
    found
}

/// Words of a line that look like paths: maximal runs of path characters, trailing
/// punctuation removed.
fn path_words(line: &str) -> Vec<&str> {
    line.split(|c: char| !is_path_char(c))
        .map(|word| word.trim_end_matches(['.', ',', ':', '-']))
        .filter(|word| word.contains('/'))
        .collect()
}

/// The local targets of Markdown links in a line: `[text](BENCHMARKS.md#goals)` gives
/// `BENCHMARKS.md`; web addresses and same-page anchors are left out.
fn link_targets(line: &str) -> Vec<&str> {
    line.match_indices("](")
        .filter_map(|(at, _)| line[at + 2..].split(')').next())
        .map(|target| target.split('#').next().unwrap_or(""))
        .filter(|target| {
            !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:")
        })
        .collect()
}

/// Whether `word` cites a path of this repository: after any `../` and `./`, it starts with a
/// top-level directory and a slash.
fn repo_path(word: &str) -> Option<&str> {
    let mut rest = word;
    loop {
        if let Some(r) = rest.strip_prefix("../") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else {
            break;
        }
    }
    let top = rest.split('/').next()?;
    (REPO_DIRS.contains(&top) && rest.len() > top.len() + 1).then_some(word)
}

/// A path resolves when it exists relative to the repository root or to the citing file's own
/// directory (`#[path = "../benches/..."]`, `tests/x.yml` in deploy/prometheus/README.md).
fn resolves(root: &Path, file: &Path, cited: &str) -> bool {
    let from_root = root.join(cited.trim_start_matches("../").trim_start_matches("./"));
    let from_file = file.parent().map(|dir| dir.join(cited));
    from_root.exists() || from_file.is_some_and(|p| p.exists())
}

#[test]
fn every_section_and_path_cited_resolves_inside_the_repository() {
    let root = repo_root();
    let reference = std::fs::read_to_string(root.join(REFERENCE))
        .unwrap_or_else(|e| panic!("{REFERENCE}: {e} (the kernel reference every § cites)"));
    let sections = reference_sections(&reference);
    assert!(sections.contains("3.1") && sections.contains("8"), "no sections read: {sections:?}");
    let mut wrong = Vec::new();
    let mut cited = 0;
    for file in scanned_files(&root) {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        let rel = file.strip_prefix(&root).unwrap().display().to_string();
        // The reference cites other repositories' files (xnu `tests/proc_info.c`, libc
        // `src/unix/mod.rs`) by their own paths: only its § cross-references are ours.
        let cites_other_repos = rel == REFERENCE;
        // This file's own examples of wrong citations are not citations.
        if rel == "tests/citations.rs" {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let at = format!("{rel}:{}", n + 1);
            for section in sections_cited(line) {
                cited += 1;
                if !sections.contains(&section) {
                    wrong.push(format!(
                        "{at}: §{section} is not a numbered heading of {REFERENCE}; cite one of \
                         its sections, or add the fact there under a `### {section} ...` heading \
                         with the xnu file and line it comes from"
                    ));
                }
            }
            if rel.ends_with(".md") {
                for target in link_targets(line) {
                    cited += 1;
                    if !resolves(&root, &file, target) {
                        wrong.push(format!(
                            "{at}: the link to `{target}` leads to no file of the repository; \
                             fix the link, or add the file"
                        ));
                    }
                }
            }
            for word in path_words(line) {
                if OUTSIDE.iter().any(|outside| word.contains(outside)) {
                    wrong.push(format!(
                        "{at}: `{word}` points outside the repository; the kernel reference is \
                         {REFERENCE} (same § numbers), the baseline figures docs/bench-baseline.md"
                    ));
                    continue;
                }
                if cites_other_repos {
                    continue;
                }
                if let Some(path) = repo_path(word) {
                    cited += 1;
                    if !resolves(&root, &file, path) {
                        wrong.push(format!(
                            "{at}: `{path}` does not exist in the repository; fix the path, or \
                             add the file if the citation is right"
                        ));
                    }
                }
            }
        }
    }
    assert!(cited > 50, "only {cited} citations found: is the scan reading the tree?");
    assert!(wrong.is_empty(), "{} citations do not resolve:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn the_citation_scanner_reads_sections_and_paths() {
    let headings = "# Title\n## 0. Sources\n### 3.1 Order of checks\n## 9. Open\n#no\n";
    let sections = reference_sections(headings);
    assert_eq!(sections, BTreeSet::from(["0".into(), "3.1".into(), "9".into()]));
    assert_eq!(sections_cited("see §3.1, §7 and § 2.4."), ["3.1", "7", "2.4"]);
    assert!(sections_cited("by section (§).").is_empty());
    let words = path_words("(`src/lib.rs`, ../benches/common/x.rs: bsd/kern/proc_info.c.)");
    assert_eq!(words, ["src/lib.rs", "../benches/common/x.rs", "bsd/kern/proc_info.c"]);
    assert_eq!(repo_path("../benches/common/x.rs"), Some("../benches/common/x.rs"));
    assert_eq!(repo_path("bsd/kern/proc_info.c"), None);
    assert_eq!(repo_path("src/"), None);
    let links = link_targets("[b](BENCHMARKS.md#goals), [x](https://e.org/a.md), [y](#here)");
    assert_eq!(links, ["BENCHMARKS.md"]);
}
