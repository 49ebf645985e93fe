//! The GitHub workflow, checked here because nothing here runs it: every `runs-on` label is
//! one GitHub still supports (`.github/runner-labels.tsv`), and the scripts the macOS jobs
//! run to bring real tables home (`live_check.py --record-to`, `replay_check.py`) work, and
//! fail when the replayed counts differ from the recorded ones.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{exporter_bin, repo_root};

/// A label older than this many days before its end of support is "soon retired".
const NOTICE_DAYS: i64 = 60;

/// One row of `.github/runner-labels.tsv`.
struct Label {
    status: String,
    until: String,
    source: String,
}

fn allow_list() -> BTreeMap<String, Label> {
    let text = std::fs::read_to_string(repo_root().join(".github/runner-labels.tsv")).unwrap();
    let mut labels = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.starts_with("label\t")) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 4, "runner-labels.tsv: 4 tab-separated columns in {line:?}");
        assert!(cols[3].starts_with("https://"), "runner-labels.tsv: {} needs a source", cols[0]);
        let label = Label { status: cols[1].into(), until: cols[2].into(), source: cols[3].into() };
        assert!(labels.insert(cols[0].to_string(), label).is_none(), "{} listed twice", cols[0]);
    }
    labels
}

/// Days since 1970-01-01 of a `YYYY-MM` (its first day) or `YYYY-MM-DD` date.
fn days(date: &str) -> Option<i64> {
    let mut parts = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m) = (parts.next()??, parts.next()??);
    let d = parts.next().flatten().unwrap_or(1);
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    Some(era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468)
}

fn today() -> i64 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    secs.as_secs() as i64 / 86_400
}

/// Every label a workflow's jobs run on: `runs-on` as written, or the values of the matrix
/// key it names (`${{ matrix.runner }}`), from `include` entries and plain lists alike.
fn runs_on_labels(workflow: &str) -> Vec<String> {
    let doc: Value = serde_saphyr::from_str(workflow).expect("the workflow parses as YAML");
    let mut labels = Vec::new();
    for (name, job) in doc["jobs"].as_object().expect("jobs") {
        let runs_on = job["runs-on"].as_str().unwrap_or_else(|| panic!("job {name}: runs-on"));
        let key = runs_on
            .strip_prefix("${{")
            .and_then(|r| r.strip_suffix("}}"))
            .map(|r| r.trim().strip_prefix("matrix.").expect("runs-on from the matrix"));
        let Some(key) = key else {
            labels.push(runs_on.to_string());
            continue;
        };
        let matrix = &job["strategy"]["matrix"];
        let mut found = 0;
        for entry in matrix["include"].as_array().into_iter().flatten() {
            labels.extend(entry[key].as_str().map(String::from));
            found += 1;
        }
        for value in matrix[key].as_array().into_iter().flatten() {
            labels.extend(value.as_str().map(String::from));
            found += 1;
        }
        assert!(found > 0, "job {name}: no matrix values for {key}");
    }
    labels
}

/// The problems with one workflow's labels, as of day `today`.
fn label_problems(workflow: &str, allowed: &BTreeMap<String, Label>, today: i64) -> Vec<String> {
    let mut problems = Vec::new();
    for label in runs_on_labels(workflow) {
        match allowed.get(&label) {
            None => problems.push(format!("{label}: not in .github/runner-labels.tsv")),
            Some(l) if l.status != "supported" => problems.push(format!(
                "{label}: {} since {} ({}); pick a supported label",
                l.status, l.until, l.source
            )),
            Some(l) => {
                if let Some(end) = days(&l.until) {
                    if end - today < NOTICE_DAYS {
                        problems.push(format!(
                            "{label}: support ends {} ({}), within {NOTICE_DAYS} days",
                            l.until, l.source
                        ));
                    }
                } else {
                    assert_eq!(
                        l.until, "none-announced",
                        "{label}: until is a date or none-announced"
                    );
                }
            }
        }
    }
    problems
}

fn workflows() -> Vec<(String, String)> {
    let dir = repo_root().join(".github/workflows");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no workflows in {}", dir.display());
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read_to_string(&p).unwrap()))
        .collect()
}

#[test]
fn every_workflow_runs_on_a_supported_runner_label() {
    let allowed = allow_list();
    for (path, text) in workflows() {
        let problems = label_problems(&text, &allowed, today());
        assert!(problems.is_empty(), "{path}:\n  {}", problems.join("\n  "));
    }
}

#[test]
fn no_document_names_a_retired_runner_label() {
    // The allow-list and docs/macos-road.md record retired labels on purpose; anything else
    // that names one (README's CI section once did) is telling readers something untrue.
    let allowed = allow_list();
    let retired: Vec<&String> =
        allowed.iter().filter(|(_, l)| l.status == "retired").map(|(name, _)| name).collect();
    assert!(!retired.is_empty());
    let mut found = Vec::new();
    for rel in ["README.md", "deploy/launchd/README.md", "dashboards/README.md", "BENCHMARKS.md"] {
        let Ok(text) = std::fs::read_to_string(repo_root().join(rel)) else { continue };
        for label in &retired {
            for (n, line) in text.lines().enumerate() {
                let hit = line.match_indices(label.as_str()).any(|(at, _)| {
                    !line[at + label.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
                });
                if hit {
                    found.push(format!("{rel}:{}: {label}", n + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "retired runner labels named: {found:?}");
}

#[test]
fn a_retired_runner_label_put_back_fails_the_check() {
    let allowed = allow_list();
    let (_, text) = &workflows()[0];
    for retired in ["macos-13", "macos-14"] {
        let old = text.replace("runner: macos-15-intel", &format!("runner: {retired}"));
        assert_ne!(&old, text, "the workflow has a macos-15-intel matrix entry to replace");
        let problems = label_problems(&old, &allowed, today());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with(&format!("{retired}: retired since")), "{problems:?}");
    }
    // An unknown label, and a supported one close to its end, fail too.
    let unknown = text.replace("runner: macos-26", "runner: macos-99");
    assert!(label_problems(&unknown, &allowed, today())[0].contains("not in"));
    let august_2027 = days("2027-08").unwrap();
    let late = label_problems(text, &allowed, august_2027 - 30);
    assert!(late.iter().any(|p| p.starts_with("macos-15-intel: support ends 2027-08")), "{late:?}");
}

/// The `with:` keys of every step that uses `action` (`uses: OWNER/NAME@...`), each as the
/// step's first line and its `with:` lines.
fn steps_using(workflow: &str, action: &str) -> Vec<(String, Vec<String>)> {
    let lines: Vec<&str> = workflow.lines().collect();
    let mut steps = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(uses) = trimmed.strip_prefix("- uses: ") else { continue };
        if !uses.starts_with(&format!("{action}@")) {
            continue;
        }
        // The step's keys are indented past its dash; the step ends where that stops.
        let indent = line.len() - trimmed.len() + 2;
        let body: Vec<String> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
            .map(|l| l.trim().to_string())
            .collect();
        steps.push((trimmed.to_string(), body));
    }
    steps
}

/// Artifact names belong to the workflow run, not the attempt: re-running a failed leg would
/// fail its upload with 409 Conflict. `overwrite: true` is upload-artifact's documented input
/// for this (actions/upload-artifact README, "Overwriting an Artifact"; v4 and later).
#[test]
fn every_artifact_upload_is_safe_to_rerun() {
    let mut uploads = 0;
    for (path, text) in workflows() {
        for (step, with) in steps_using(&text, "actions/upload-artifact") {
            uploads += 1;
            assert!(
                with.iter().any(|l| l.split('#').next().unwrap().trim() == "overwrite: true"),
                "{path}: `{step}` has no `overwrite: true`; a re-run attempt fails with 409"
            );
        }
    }
    assert!(uploads >= 3, "the macOS workflow uploads tables and the universal binary");
}

/// The LaunchDaemon check finds the daemon through launchd, never `pgrep -f` (the runner user
/// may not read another uid's arguments: docs/macos-road.md, launchd), and waits for the
/// crash restart by polling, bounded, not a fixed sleep (ThrottleInterval plus crash reporting
/// can exceed any fixed guess).
#[test]
fn the_launchd_check_asks_launchd_for_the_pid_and_polls_for_the_restart() {
    for (path, text) in workflows() {
        for (n, line) in text.lines().enumerate() {
            let code = line.split(" #").next().unwrap().trim_start();
            if code.starts_with('#') {
                continue;
            }
            assert!(
                !(code.contains("pgrep") && code.contains("libproc_exporter")),
                "{path}:{}: the daemon's pid from pgrep: {line}",
                n + 1
            );
            assert!(
                !code.starts_with("sleep "),
                "{path}:{}: a fixed sleep where a bounded poll belongs: {line}",
                n + 1
            );
        }
        if text.contains("kill -ABRT") {
            assert!(text.contains("wait_for_restart \"$label\" \"$old\" 60"), "{path}");
        }
    }
}

#[test]
fn civil_dates_count_days_like_the_unix_epoch() {
    assert_eq!(days("1970-01-01"), Some(0));
    assert_eq!(days("2000-03-01"), Some(11_017));
    assert_eq!(days("2026-12"), Some(20_788));
    assert_eq!(days("soon"), None);
}

fn python(script: &str, args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("python3")
        .arg(repo_root().join(".github/scripts").join(script))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run python3")
}

#[test]
#[ignore = "needs python3 (scripts/setup.sh installs it)"]
fn a_recorded_table_replays_to_exactly_the_counts_saved_beside_it() {
    let dir = std::env::temp_dir().join(format!("libproc-replay-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = exporter_bin();
    let bin = bin.to_str().unwrap();
    // What each macOS job does: check against ps, then record and save the counts.
    let out = python(
        "live_check.py",
        &[bin, "--record-to", "table.json", "--counts-to", "counts.json"],
        &dir,
    );
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "live check: {log}");
    assert!(log.contains("recorded"), "{log}");
    // What the Linux job does with them.
    let out = python("replay_check.py", &[bin, "table.json", "counts.json"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("every count as recorded"));

    // One count off: the check fails and names it.
    let counts = std::fs::read_to_string(dir.join("counts.json")).unwrap();
    let mut counts: Value = serde_json::from_str(&counts).unwrap();
    let total = counts["counts"]["total"][""].as_u64().unwrap();
    counts["counts"]["total"][""] = (total + 1).into();
    std::fs::write(dir.join("wrong.json"), counts.to_string()).unwrap();
    let out = python("replay_check.py", &[bin, "table.json", "wrong.json"], &dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("total='': replayed {total}, recorded {}", total + 1)), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[ignore = "needs python3 (scripts/setup.sh installs it)"]
fn a_table_recorded_while_a_process_exits_replays_to_the_counts_saved_beside_it() {
    // A process caught in exit: still SRUN, with PROC_FLAG_INEXIT (0x4), on the zombie list
    // (docs/xnu-proc-info.md §2.4). The exporter counts it as a zombie; so must the counts
    // the macOS job saves, or the replay job fails on a table recorded at that instant.
    let dir = std::env::temp_dir().join(format!("libproc-inexit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = repo_root().join("tests/fixtures/snapshots/mac.json");
    let mut table: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let exiting = table["processes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["status"] == 2 && p["pid"].as_i64() > Some(100))
        .expect("a live process in the fixture");
    exiting["flags"] = (exiting["flags"].as_u64().unwrap() | 0x4).into();
    exiting["zombie"] = true.into();
    std::fs::write(dir.join("table.json"), table.to_string()).unwrap();

    // The counts as the macOS job saves them: live_check.py's own file_counts.
    let save = "import json, sys\nsys.path.insert(0, sys.argv[1])\nimport live_check\n\
                table = json.load(open('table.json'))\n\
                c = live_check.file_counts(table)\n\
                json.dump({'counts': {k: dict(v) for k, v in c.items()}}, open('counts.json', 'w'))";
    let scripts = repo_root().join(".github/scripts");
    let out = Command::new("python3")
        .args(["-c", save])
        .arg(&scripts)
        .current_dir(&dir)
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let bin = exporter_bin();
    let out =
        python("replay_check.py", &[bin.to_str().unwrap(), "table.json", "counts.json"], &dir);
    assert!(
        out.status.success(),
        "the saved counts disagree with the exporter on an exiting process: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
