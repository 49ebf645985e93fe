//! What ships beside the binary: Prometheus rules and their unit tests, the scrape config
//! example, the Grafana dashboard, the launchd plist and its scripts, the Homebrew formula and
//! the systemd unit. Each is checked with the tool that consumes it (promtool, plistlib,
//! shellcheck, ruby, systemd-analyze) and against the binary's own flag parser and the golden
//! `/metrics` file. A missing tool fails the test with the command that installs it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::{TempDir, exporter_bin, repo_root, require_tool};

const RULES: &str = "deploy/prometheus/libproc_exporter.rules.yml";
const ALERTS: &str = "deploy/prometheus/libproc_exporter.alerts.yml";
const RULE_TESTS: &str = "deploy/prometheus/tests/libproc_exporter.test.yml";
const SCRAPE_CONFIG: &str = "deploy/prometheus/prometheus.yml";
const RUNBOOK: &str = "deploy/prometheus/README.md";
const DASHBOARD: &str = "dashboards/libproc_exporter.json";
const PLIST: &str = "deploy/launchd/io.github.libproc-exporter.plist";
const INSTALL: &str = "deploy/launchd/install.sh";
const UNINSTALL: &str = "deploy/launchd/uninstall.sh";
const FORMULA: &str = "deploy/homebrew/libproc_exporter.rb";
const UNIT: &str = "deploy/systemd/libproc_exporter.service";
const GOLDEN: &str = "tests/fixtures/golden/mac.prom";

/// The service user the plist, the scripts and the docs agree on.
const SERVICE_USER: &str = "_libproc_exporter";

// ------------------------------------------------------------------ helpers

fn path(rel: &str) -> PathBuf {
    repo_root().join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

fn promtool() -> PathBuf {
    require_tool("promtool", "apt-get install prometheus")
}

fn ruby() -> PathBuf {
    require_tool("ruby", "apt-get install ruby")
}

fn python3() -> PathBuf {
    require_tool("python3", "apt-get install python3")
}

/// Runs `cmd`, panicking with its output unless it exits 0.
fn run_ok(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("running {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A YAML file as JSON, converted by Ruby's standard library (no YAML crate in the tree).
pub fn yaml(rel: &str) -> Value {
    let out = run_ok(
        Command::new(ruby())
            .args(["-ryaml", "-rjson", "-e", "puts JSON.generate(YAML.load_file(ARGV[0]))"])
            .arg(path(rel)),
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{rel} as JSON: {e}"))
}

/// The plist as JSON, parsed by Python's plistlib (what macOS tools agree with).
fn plist() -> Value {
    let out = run_ok(
        Command::new(python3())
            .args([
                "-c",
                "import json, plistlib, sys\n\
                 with open(sys.argv[1], 'rb') as f:\n    print(json.dumps(plistlib.load(f)))",
            ])
            .arg(path(PLIST)),
    );
    serde_json::from_slice(&out.stdout).expect("plist as JSON")
}

fn str_array(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

/// Every rule of a rule file: (record or alert name, whether it is an alert, the rule object).
fn rules_of(rel: &str) -> Vec<(String, bool, Value)> {
    let doc = yaml(rel);
    let mut out = Vec::new();
    for group in doc["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            if let Some(name) = rule["record"].as_str() {
                out.push((name.to_string(), false, rule.clone()));
            } else {
                let name = rule["alert"].as_str().expect("record or alert").to_string();
                out.push((name, true, rule.clone()));
            }
        }
    }
    out
}

fn all_rules() -> Vec<(String, bool, Value)> {
    let mut rules = rules_of(RULES);
    rules.extend(rules_of(ALERTS));
    rules
}

/// Every PromQL expression of the dashboard: panel targets (rows included), variable queries
/// (`label_values(expr, label)` gives `expr`) and annotation queries.
pub(crate) fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &[Value], out: &mut Vec<(String, String)>) {
        for panel in panels {
            let title = panel["title"].as_str().unwrap_or("?").to_string();
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().expect("every target has an expr");
                out.push((format!("panel {title:?} {}", target["refId"]), expr.to_string()));
            }
            walk(panel["panels"].as_array().map(Vec::as_slice).unwrap_or(&[]), out);
        }
    }
    let mut out = Vec::new();
    walk(dashboard["panels"].as_array().expect("panels"), &mut out);
    for var in dashboard["templating"]["list"].as_array().expect("templating") {
        if var["type"] == "query" {
            let query = var["query"]["query"].as_str().or(var["query"].as_str()).expect("query");
            let (expr, _) =
                label_values(query).expect("variable queries are label_values(expr, label)");
            out.push((format!("variable {}", var["name"]), expr));
        }
    }
    for ann in dashboard["annotations"]["list"].as_array().expect("annotations") {
        if let Some(expr) = ann["expr"].as_str() {
            out.push((format!("annotation {}", ann["name"]), expr.to_string()));
        }
    }
    out
}

/// `label_values(expr, label)` as (expr, label).
pub(crate) fn label_values(query: &str) -> Option<(String, String)> {
    let inner = query.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    let (expr, label) = inner.rsplit_once(',')?;
    Some((expr.trim().to_string(), label.trim().to_string()))
}

/// Keywords, binary operators written as words, and aggregation operators (which may be
/// followed by `by (...)` instead of their parenthesis, so they do not always look like calls).
const PROMQL_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
    "nan",
    "atan2",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// The metric names a PromQL expression selects: identifiers outside strings, label
/// matchers, grouping clauses and ranges, that are not functions, keywords or numbers.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // Depth of {...} and [...]; the identifiers inside are label names and durations.
    let (mut braces, mut brackets) = (0, 0);
    // Set after by/without/on/ignoring/group_left/group_right: the next (...) holds labels.
    let mut label_list_next = false;
    let mut in_label_list = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                // Skip a string literal (with backslash escapes, except in raw strings).
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' && c != '`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            '{' => braces += 1,
            '}' => braces -= 1,
            '[' => brackets += 1,
            ']' => brackets -= 1,
            '(' if label_list_next => {
                in_label_list = true;
                label_list_next = false;
            }
            ')' if in_label_list => in_label_list = false,
            '$' => {
                // A dashboard variable: skip its name.
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                continue;
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let is_call = j < chars.len() && chars[j] == '(';
                let lower = word.to_ascii_lowercase();
                if ["by", "without", "on", "ignoring", "group_left", "group_right"]
                    .contains(&lower.as_str())
                {
                    label_list_next = true;
                } else if braces == 0
                    && brackets == 0
                    && !in_label_list
                    && !is_call
                    && !PROMQL_KEYWORDS.contains(&lower.as_str())
                {
                    names.insert(word);
                }
                // A group_left without a label list leaves nothing pending.
                if !["by", "without", "on", "ignoring", "group_left", "group_right"]
                    .contains(&lower.as_str())
                {
                    label_list_next = false;
                }
                continue;
            }
            c if c.is_ascii_digit() => {
                // Numbers, including 1e3 and 0x1f: skip the whole token.
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        if !c.is_whitespace() && c != '(' {
            label_list_next = false;
        }
        i += 1;
    }
    names
}

/// The metric names in the golden exposition: the sample names and the families of `# TYPE`.
fn golden_names() -> BTreeSet<String> {
    let text = std::fs::read_to_string(path(GOLDEN)).unwrap_or_else(|e| {
        panic!("{GOLDEN} is missing ({e}): it is written by the golden-file test (UPDATE_GOLDEN=1)")
    });
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            names.insert(rest.split_whitespace().next().unwrap().to_string());
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    // The golden file is a Mac's; what only Linux serves is listed in README's metrics table
    // as "Linux only" (tests/docs.rs checks that table against a live /proc scrape).
    for line in read("README.md").lines().filter(|l| l.contains("| Linux only")) {
        if let Some(name) = line.split('`').nth(1) {
            names.insert(name.to_string());
        }
    }
    names
}

/// Series Prometheus itself creates: not the exporter's to serve.
const SYNTHETIC: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "ALERTS",
    "ALERTS_FOR_STATE",
];

/// `printf "NAME{...}"` in alert annotations: the series the descriptions quote.
fn template_query_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for piece in text.split("printf \"").skip(1) {
        let end = piece.find(['{', '"']).unwrap_or(piece.len());
        let name = &piece[..end];
        // `printf "%.0f"` formats a value; only `printf "name{..."` builds a query.
        if name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            names.insert(name.to_string());
        }
    }
    names
}

// ------------------------------------------------------------------ Prometheus rules

#[test]
#[ignore = "needs promtool (scripts/setup.sh installs it)"]
fn rules_pass_promtool_check() {
    run_ok(Command::new(promtool()).args(["check", "rules"]).arg(path(RULES)).arg(path(ALERTS)));
}

#[test]
#[ignore = "needs promtool (scripts/setup.sh installs it)"]
fn rules_pass_their_promtool_unit_tests() {
    let out = run_ok(Command::new(promtool()).args(["test", "rules"]).arg(path(RULE_TESTS)));
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"));
}

#[test]
#[ignore = "needs ruby to read YAML (scripts/setup.sh installs it)"]
fn every_alert_has_a_firing_and_a_quiet_unit_test() {
    let tests = yaml(RULE_TESTS);
    let mut fires: BTreeMap<String, usize> = BTreeMap::new();
    let mut quiet: BTreeMap<String, usize> = BTreeMap::new();
    for group in tests["tests"].as_array().expect("tests") {
        for case in group["alert_rule_test"].as_array().into_iter().flatten() {
            let name = case["alertname"].as_str().expect("alertname").to_string();
            let expected = case["exp_alerts"].as_array().map(Vec::len).unwrap_or(0);
            *if expected > 0 { &mut fires } else { &mut quiet }.entry(name).or_default() += 1;
        }
    }
    let alerts: Vec<String> = rules_of(ALERTS).into_iter().map(|(name, _, _)| name).collect();
    assert!(alerts.len() >= 10, "expected the ten documented alerts, found {alerts:?}");
    let mut missing = Vec::new();
    for alert in &alerts {
        if !fires.contains_key(alert) {
            missing.push(format!("{alert}: no case where it fires"));
        }
        if !quiet.contains_key(alert) {
            missing.push(format!("{alert}: no case where it stays quiet"));
        }
    }
    assert!(missing.is_empty(), "{RULE_TESTS}:\n{}", missing.join("\n"));
    for name in fires.keys().chain(quiet.keys()) {
        assert!(alerts.contains(name), "{RULE_TESTS} tests {name}, which is not an alert");
    }
}

#[test]
#[ignore = "needs ruby to read YAML (scripts/setup.sh installs it)"]
fn every_alert_has_summary_description_severity_and_a_runbook_section() {
    let runbook = read(RUNBOOK);
    let headings: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| h.trim().to_string())
        .collect();
    for (name, _, rule) in rules_of(ALERTS) {
        let ann = &rule["annotations"];
        let summary = ann["summary"].as_str().unwrap_or_else(|| panic!("{name}: no summary"));
        let description =
            ann["description"].as_str().unwrap_or_else(|| panic!("{name}: no description"));
        assert!(
            summary.contains("$labels.instance"),
            "{name}: the summary should name the instance"
        );
        // A failure flag (`== 0`) has no value worth quoting; every threshold alert does.
        let is_flag = rule["expr"].as_str().unwrap().trim_end().ends_with("== 0");
        assert!(
            is_flag || description.contains("$value") || description.contains("| query"),
            "{name}: the description should quote the values"
        );
        assert!(description.contains("$labels.instance"), "{name}: the description names the host");
        assert!(
            ["warning", "critical"].contains(&rule["labels"]["severity"].as_str().unwrap_or("")),
            "{name}: severity must be warning or critical"
        );
        assert!(headings.contains(&name), "{RUNBOOK} has no \"### {name}\" runbook section");
        let url = ann["runbook_url"].as_str().unwrap_or_else(|| panic!("{name}: no runbook_url"));
        assert!(
            url.ends_with(&format!("{RUNBOOK}#{}", name.to_ascii_lowercase())),
            "{name}: runbook_url {url} should point at its section of {RUNBOOK}"
        );
    }
}

#[test]
#[ignore = "needs ruby to read YAML (scripts/setup.sh installs it)"]
fn alerts_cover_headroom_rates_children_depth_zombies_ptys_commands_and_the_exporter() {
    let alerts: BTreeMap<String, Value> =
        rules_of(ALERTS).into_iter().map(|(name, _, rule)| (name, rule)).collect();
    let expr = |name: &str| -> String {
        alerts.get(name).unwrap_or_else(|| panic!("no alert {name}"))["expr"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(expr("LibprocProcessTableFilling").contains("0.85"));
    assert!(expr("LibprocProcessTableNearlyFull").contains("0.95"));
    assert!(expr("LibprocUserNearProcessLimit").contains("ruid"), "per-user means per real uid");
    assert!(
        expr("LibprocUserNearProcessLimit").contains(r#"uid!="0""#),
        "root is exempt from the limit"
    );
    // Headroom by trend and creation rate, not a jump in the count (which paged CI builds).
    assert!(!alerts.contains_key("LibprocProcessCountSpike"));
    assert!(expr("LibprocProcessTableFillsWithin15m").contains("predict_linear"));
    assert!(expr("LibprocUserFillsLimitWithin15m").contains("predict_linear"));
    let storm = expr("LibprocForkStorm");
    assert!(storm.contains("libproc_forks") && storm.contains("median"), "{storm}");
    assert!(expr("LibprocDeclaredCommandAbsent").contains("libproc_comm_processes == 0"));
    // Critical only where fork() is about to be refused.
    let critical: BTreeSet<&str> = alerts
        .iter()
        .filter(|(_, rule)| rule["labels"]["severity"] == "critical")
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        critical,
        BTreeSet::from(["LibprocProcessTableNearlyFull", "LibprocUserAtProcessLimit"])
    );
    let runaway = expr("LibprocRunawayChildren");
    assert!(runaway.contains("libproc_ppid_processes") && runaway.contains(r#"ppid!~"0|1""#));
    assert!(expr("LibprocDeepProcessChain").contains("libproc_process_tree_depth_max"));
    assert!(expr("LibprocZombiesAccumulating").contains("zombies"));
    assert!(expr("LibprocPtyExhaustion").contains("pty"));
    assert!(expr("LibprocCollectorFailing").contains("libproc_scrape_collector_success"));
    assert!(expr("LibprocExporterDown").contains("up{"));
}

#[test]
#[ignore = "needs promtool and ruby (scripts/setup.sh installs them)"]
fn scrape_config_example_is_valid_and_uses_file_discovery() {
    run_ok(Command::new(promtool()).args(["check", "config"]).arg(path(SCRAPE_CONFIG)));
    let config = yaml(SCRAPE_CONFIG);
    let job = config["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_name"] == "libproc_exporter")
        .expect("a libproc_exporter job (LibprocExporterDown selects on it)");
    let files = str_array(&job["file_sd_configs"][0]["files"]);
    let mut found = 0;
    for pattern in files {
        let dir = path("deploy/prometheus").join(Path::new(&pattern).parent().unwrap());
        let suffix = Path::new(&pattern).extension().unwrap().to_str().unwrap().to_string();
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let file = entry.unwrap().path();
            if file.extension().and_then(|e| e.to_str()) != Some(&suffix) {
                continue;
            }
            let rel = file.strip_prefix(repo_root()).unwrap().to_str().unwrap().to_string();
            for group in yaml(&rel).as_array().expect("a file_sd file is a list of target groups") {
                for target in str_array(&group["targets"]) {
                    assert!(
                        target.ends_with(":10077"),
                        "{rel}: {target} is not on the exporter's port"
                    );
                    found += 1;
                }
            }
        }
    }
    assert!(found > 0, "the file_sd example lists no targets");
}

// ------------------------------------------------------------------ dashboard

#[test]
fn dashboard_is_an_importable_grafana_dashboard() {
    let dash: Value = serde_json::from_str(&read(DASHBOARD)).expect("dashboard JSON");
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 36, "current dashboard schema");
    assert!(dash["id"].is_null(), "an exported dashboard carries no database id");
    assert!(dash["uid"].as_str().is_some_and(|u| !u.is_empty() && u.len() <= 40));
    let vars: BTreeMap<String, Value> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap().to_string(), v.clone()))
        .collect();
    assert_eq!(vars["datasource"]["type"], "datasource");
    assert_eq!(vars["datasource"]["query"], "prometheus");
    for name in ["instance", "user"] {
        assert_eq!(vars.get(name).unwrap_or_else(|| panic!("no {name} variable"))["type"], "query");
    }

    let mut ids = BTreeSet::new();
    let mut rows = Vec::new();
    let mut panels = 0;
    for panel in dash["panels"].as_array().unwrap() {
        let id = panel["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "duplicate panel id {id}");
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(x + w <= 24 && grid["h"].as_u64().unwrap() > 0, "panel {id} does not fit the grid");
        if panel["type"] == "row" {
            rows.push(panel["title"].as_str().unwrap().to_string());
            continue;
        }
        panels += 1;
        let title = panel["title"].as_str().unwrap();
        assert!(
            panel["description"].as_str().is_some_and(|d| d.len() > 20),
            "panel {title:?} should say what it answers"
        );
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "panel {title:?} must use the variable"
        );
        let targets =
            panel["targets"].as_array().unwrap_or_else(|| panic!("panel {title:?} has no targets"));
        assert!(!targets.is_empty());
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title:?}");
            let expr = target["expr"].as_str().unwrap();
            if !title.contains("fleet") {
                assert!(
                    expr.contains(r#"instance=~"$instance""#),
                    "{title:?} ignores $instance: {expr}"
                );
            }
        }
    }
    assert!(panels >= 20, "only {panels} panels");
    // One row per question the dashboard answers.
    for wanted in
        ["Process table", "state", "Users", "Terminals", "Parents", "tree", "Exporter health"]
    {
        assert!(rows.iter().any(|r| r.contains(wanted)), "no row about {wanted:?} in {rows:?}");
    }
    let all: String = dashboard_exprs(&dash).into_iter().map(|(_, e)| e + "\n").collect();
    for limit in
        ["libproc_processes_limit", "libproc_processes_per_user_limit", "libproc_pty_limit"]
    {
        assert!(all.contains(limit), "the dashboard does not draw {limit}");
    }
}

#[test]
#[ignore = "needs ruby to read YAML (scripts/setup.sh installs it)"]
fn dashboard_and_rules_use_only_metrics_the_exporter_serves() {
    let golden = golden_names();
    let rules = all_rules();
    let recorded: BTreeSet<String> = rules.iter().filter(|r| !r.1).map(|r| r.0.clone()).collect();
    let dash: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();

    let mut used: Vec<(String, String)> = Vec::new();
    for (what, expr) in dashboard_exprs(&dash) {
        used.extend(metric_names(&expr).into_iter().map(|n| (format!("{DASHBOARD} {what}"), n)));
    }
    for (name, _, rule) in &rules {
        let expr = rule["expr"].as_str().unwrap();
        used.extend(metric_names(expr).into_iter().map(|n| (format!("rule {name}"), n)));
        for text in rule["annotations"].as_object().into_iter().flat_map(|a| a.values()) {
            used.extend(
                template_query_names(text.as_str().unwrap())
                    .into_iter()
                    .map(|n| (format!("annotation of {name}"), n)),
            );
        }
    }
    let distinct: BTreeSet<&String> = used.iter().map(|(_, n)| n).collect();
    assert!(distinct.len() >= 20, "the name extraction found too little: {distinct:?}");

    let mut unknown = Vec::new();
    for (where_, name) in &used {
        let ok = if name.contains(':') {
            recorded.contains(name)
        } else {
            golden.contains(name) || SYNTHETIC.contains(&name.as_str())
        };
        if !ok {
            unknown.push(format!("{where_}: {name}"));
        }
    }
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "names that are neither in {GOLDEN}, nor recording rules, nor Prometheus's own:\n{}",
        unknown.join("\n")
    );

    // And the other way round: every libproc_ family the exporter serves is on the dashboard.
    let dash_names: BTreeSet<String> =
        dashboard_exprs(&dash).into_iter().flat_map(|(_, e)| metric_names(&e)).collect();
    let not_shown: Vec<&String> =
        golden.iter().filter(|n| n.starts_with("libproc_") && !dash_names.contains(*n)).collect();
    assert!(not_shown.is_empty(), "families served but not on the dashboard: {not_shown:?}");
}

#[test]
fn metric_name_extraction_skips_functions_labels_and_keywords() {
    let names = metric_names(
        r#"topk(10, sum without (state) (libproc_processes{job=~"$job", state!="zombie"}) / ignoring (uid, user) group_left libproc_processes_limit) > bool 0.5 and on(instance) rate(libproc_collections_total[$__rate_interval] offset 5m) or instance:libproc_zombies:sum or max by (instance) (libproc_ttys) or count(ALERTS)"#,
    );
    let want: BTreeSet<String> = [
        "libproc_processes",
        "libproc_processes_limit",
        "libproc_collections_total",
        "instance:libproc_zombies:sum",
        "libproc_ttys",
        "ALERTS",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(names, want);
    let quoted = template_query_names(
        r#"{{ $value | printf "%.0f" }} of {{ with printf "libproc_pty_limit{instance=%q}" $labels.instance | query }}"#,
    );
    assert_eq!(quoted, BTreeSet::from(["libproc_pty_limit".to_string()]));
}

// ------------------------------------------------------------------ launchd

#[test]
#[ignore = "needs python3 to read the plist (scripts/setup.sh installs it)"]
fn plist_parses_and_follows_launchd_conventions() {
    let plist = plist();
    let label = plist["Label"].as_str().expect("Label");
    assert!(
        label.split('.').count() >= 3
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
        "Label {label} is not reverse-DNS"
    );
    assert_eq!(
        path(PLIST).file_name().unwrap().to_str().unwrap(),
        format!("{label}.plist"),
        "launchd convention: the file is named after the label"
    );
    assert!(plist.get("Program").is_none(), "use ProgramArguments only");
    let args = str_array(&plist["ProgramArguments"]);
    assert!(
        args[0].starts_with('/') && args[0].ends_with("/libproc_exporter"),
        "binary called directly: {args:?}"
    );
    for arg in &args {
        assert!(
            !["sh", "/bin/sh", "/bin/bash", "-c"].contains(&arg.as_str()),
            "no shell in ProgramArguments"
        );
    }
    assert!(args.iter().any(|a| a.starts_with("--web.listen-address=")));
    assert_eq!(plist["RunAtLoad"], true);
    assert_eq!(
        plist["KeepAlive"]["SuccessfulExit"], false,
        "restart on crash / failure, not after a clean exit"
    );
    assert_eq!(plist["KeepAlive"]["Crashed"], true, "restart after a crash");
    assert!(plist["ThrottleInterval"].as_u64().is_some_and(|t| t >= 5), "a restart throttle");
    assert_eq!(plist["UserName"], SERVICE_USER);
    assert_eq!(plist["GroupName"], SERVICE_USER);
    for key in ["StandardOutPath", "StandardErrorPath"] {
        let log = plist[key].as_str().unwrap_or_else(|| panic!("{key}"));
        assert!(
            log.starts_with("/var/log/")
                || log.starts_with("/usr/local/var/log/")
                || log.starts_with("/Library/Logs/"),
            "{key} {log} is not in a system log folder"
        );
    }
    // The dedicated user and its trade-off against root are documented.
    let readme = read("deploy/launchd/README.md");
    assert!(readme.contains(SERVICE_USER) && readme.contains("root"));
}

#[test]
#[ignore = "needs python3 to read the plist (scripts/setup.sh installs it)"]
fn plist_program_arguments_pass_the_flag_parser() {
    let args = str_array(&plist()["ProgramArguments"]);
    let out = run_ok(Command::new(exporter_bin()).args(&args[1..]).arg("--check-config"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration ok"));
    // And the dry run does reject what it should, so the check above means something.
    let bad = Command::new(exporter_bin())
        .args(&args[1..])
        .args(["--log.level=loud", "--check-config"])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "--check-config accepted --log.level=loud");
}

#[test]
#[ignore = "needs python3 to read the plist (scripts/setup.sh installs it)"]
fn install_sh_creates_what_the_plist_names_and_is_idempotent() {
    let plist = plist();
    let label = plist["Label"].as_str().unwrap();
    let bin = str_array(&plist["ProgramArguments"])[0].clone();
    let log = plist["StandardErrorPath"].as_str().unwrap().to_string();
    let log_dir = Path::new(&log).parent().unwrap().to_str().unwrap().to_string();
    let installed_plist = format!("/Library/LaunchDaemons/{label}.plist");
    let stage = TempDir::new("launchd_stage");
    let under = |p: &str| stage.0.join(p.trim_start_matches('/'));

    let install = |extra: &[&str]| {
        run_ok(
            Command::new("bash")
                .arg(path(INSTALL))
                .arg("--root")
                .arg(&stage.0)
                .arg("--binary")
                .arg(exporter_bin())
                .args(extra),
        )
    };
    for round in 0..2 {
        install(&[]);
        let staged_bin = under(&bin);
        assert!(staged_bin.is_file(), "round {round}: {bin} not installed");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&staged_bin).unwrap().permissions().mode() & 0o777, 0o755);
        assert_eq!(std::fs::read(&staged_bin).unwrap(), std::fs::read(exporter_bin()).unwrap());
        assert!(under(&log_dir).is_dir(), "round {round}: log folder {log_dir} not created");
        assert_eq!(
            std::fs::read_to_string(under(&installed_plist)).unwrap(),
            read(PLIST),
            "round {round}: {installed_plist} differs from the shipped plist"
        );
    }

    // --as-root drops the user; everything else stays.
    install(&["--as-root"]);
    let as_root = std::fs::read_to_string(under(&installed_plist)).unwrap();
    assert!(!as_root.contains("UserName") && !as_root.contains("GroupName"));
    assert!(as_root.contains("<key>KeepAlive</key>") && as_root.contains(&bin));

    let uninstall = |extra: &[&str]| {
        run_ok(Command::new("bash").arg(path(UNINSTALL)).arg("--root").arg(&stage.0).args(extra))
    };
    uninstall(&[]);
    assert!(!under(&bin).exists() && !under(&installed_plist).exists());
    assert!(under(&log_dir).is_dir(), "logs are kept unless asked");
    uninstall(&[]); // idempotent
    uninstall(&["--remove-logs"]);
    assert!(!under(&log_dir).exists());
}

#[test]
fn install_sh_refuses_flags_the_binary_rejects() {
    let stage = TempDir::new("launchd_badflag");
    let bad_plist = stage.0.join("bad.plist");
    std::fs::write(&bad_plist, read(PLIST).replace("--log.level=info", "--log.level=loud"))
        .unwrap();
    let out = Command::new("bash")
        .arg(path(INSTALL))
        .arg("--root")
        .arg(stage.0.join("root"))
        .arg("--binary")
        .arg(exporter_bin())
        .arg("--plist")
        .arg(&bad_plist)
        .output()
        .unwrap();
    assert!(!out.status.success(), "install.sh accepted a plist with a bad flag");
}

#[test]
#[ignore = "needs shellcheck (scripts/setup.sh installs it)"]
fn shell_scripts_pass_shellcheck() {
    let shellcheck = require_tool("shellcheck", "apt-get install shellcheck");
    let mut scripts = Vec::new();
    fn find(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                find(&p, out);
            } else if p.extension().is_some_and(|e| e == "sh") {
                out.push(p);
            }
        }
    }
    find(&path("deploy"), &mut scripts);
    assert!(scripts.len() >= 2, "expected install.sh and uninstall.sh, found {scripts:?}");
    run_ok(
        Command::new(shellcheck).args(["--severity=style", "--external-sources"]).args(&scripts),
    );
}

// ------------------------------------------------------------------ Homebrew and systemd

#[test]
#[ignore = "needs ruby (scripts/setup.sh installs it)"]
fn homebrew_formula_is_valid_ruby_for_a_tap() {
    let out = run_ok(Command::new(ruby()).arg("-c").arg(path(FORMULA)));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Syntax OK"));
    let formula = read(FORMULA);
    assert!(formula.contains("class LibprocExporter < Formula"));
    assert!(formula.contains(r#"depends_on "rust" => :build"#));
    assert!(formula.contains(r#"system "cargo", "install""#), "builds from source with cargo");
    assert!(formula.contains("\n  head \"https://"), "brew install --HEAD works before a release");
    // No made-up release: the stable url and its checksum come from deploy/release.sh.
    assert!(!formula.contains("\n  url "), "no stable url until a release exists");
    assert!(!formula.contains("\n  sha256 "), "no placeholder checksum");
    let flat: String = formula.split_whitespace().collect();
    assert!(flat.contains(r#"servicedorun[opt_bin/"libproc_exporter_brew_services"]"#));
    assert!(formula.contains(r#"touch etc/"libproc_exporter.args""#), "flags survive upgrades");
}

/// The wrapper `brew services` runs, as the formula writes it, with `opt_bin` and `etc`
/// pointing at `bin_dir` and `etc_dir`.
fn homebrew_wrapper(bin_dir: &Path, etc_dir: &Path) -> String {
    let formula = read(FORMULA);
    let start = formula.find("(bin/\"libproc_exporter_brew_services\").write <<~EOS\n").unwrap();
    let body = &formula[start..];
    let body = &body[body.find('\n').unwrap() + 1..body.find("\n    EOS").unwrap()];
    let script: String = body.lines().map(|l| format!("{}\n", l.trim_start())).collect();
    script
        .replace("#{opt_bin}", bin_dir.to_str().unwrap())
        .replace("#{etc}", etc_dir.to_str().unwrap())
}

#[test]
fn homebrew_service_command_line_reads_its_flags_from_the_args_file() {
    let dir = std::env::temp_dir().join(format!("libproc-brew-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = exporter_bin();
    let wrapper = dir.join("libproc_exporter_brew_services");
    std::fs::write(&wrapper, homebrew_wrapper(bin.parent().unwrap(), &dir)).unwrap();
    let args = dir.join("libproc_exporter.args");
    let run = |flags: &str| {
        std::fs::write(&args, flags).unwrap();
        Command::new("bash").arg(&wrapper).output().expect("run the wrapper")
    };

    // A sample args file, as a user would edit it, plus the dry run.
    let out = run(
        "--web.listen-address=127.0.0.1:10077\n--log.level=debug\n--collector.pgrp\n--check-config\n",
    );
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("configuration ok"), "{text}");
    // The file as `touch` leaves it: the defaults.
    assert!(run("--check-config").status.success());
    // A flag the binary does not know fails, so the wrapper really passes the file's flags.
    let out = run("--collector.nope\n--check-config\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("collector.nope"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[ignore = "needs systemd-analyze (scripts/setup.sh installs it)"]
fn systemd_unit_verifies_and_is_hardened() {
    let analyze = require_tool("systemd-analyze", "apt-get install systemd");
    let unit = read(UNIT);
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
    let mut words = exec.split_whitespace();
    let bin = words.next().unwrap();
    let flags: Vec<&str> = words.collect();
    assert_eq!(bin, "/usr/local/bin/libproc_exporter");
    run_ok(Command::new(exporter_bin()).args(&flags).arg("--check-config"));

    // systemd-analyze checks that ExecStart exists: point it at the built binary.
    let dir = TempDir::new("systemd_verify");
    let copy = dir.0.join("libproc_exporter.service");
    std::fs::write(
        &copy,
        unit.replace(
            &format!("ExecStart={bin}"),
            &format!("ExecStart={}", exporter_bin().display()),
        ),
    )
    .unwrap();
    let out = run_ok(Command::new(&analyze).arg("verify").arg(&copy));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "systemd-analyze verify warned:\n{stderr}");

    // Socket activation: the socket unit, and the service with its drop-in, verify together,
    // and the drop-in's flags are the binary's.
    let socket = dir.0.join("libproc_exporter.socket");
    std::fs::copy(path("deploy/systemd/libproc_exporter.socket"), &socket).unwrap();
    let drop_in = read("deploy/systemd/libproc_exporter.service.d/socket.conf");
    let exec = drop_in.lines().filter_map(|l| l.strip_prefix("ExecStart=")).next_back().unwrap();
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some(bin));
    let flags: Vec<&str> = words.collect();
    assert!(flags.contains(&"--web.systemd-socket"), "{flags:?}");
    run_ok(Command::new(exporter_bin()).args(&flags).arg("--check-config"));
    let dropins = dir.0.join("libproc_exporter.service.d");
    std::fs::create_dir_all(&dropins).unwrap();
    std::fs::write(
        dropins.join("socket.conf"),
        drop_in.replace(
            &format!("ExecStart={bin}"),
            &format!("ExecStart={}", exporter_bin().display()),
        ),
    )
    .unwrap();
    let out = run_ok(Command::new(&analyze).arg("verify").arg(&socket).arg(&copy));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "systemd-analyze verify (socket) warned:\n{stderr}");

    let directives: BTreeMap<&str, Vec<&str>> = unit
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .fold(BTreeMap::new(), |mut m, (k, v)| {
            m.entry(k.trim()).or_insert_with(Vec::new).push(v.trim());
            m
        });
    let has = |k: &str, v: &str| directives.get(k).is_some_and(|vs| vs.contains(&v));
    assert!(has("DynamicUser", "yes") || directives.contains_key("User"), "not root");
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("Restart", "on-failure"),
    ] {
        assert!(has(k, v), "{UNIT}: expected {k}={v}");
    }
    // The exporter reads every process's /proc entry and /proc/sys: these would blind it.
    assert!(!has("ProtectProc", "invisible") && !has("ProtectProc", "noaccess"));
    assert!(!has("ProcSubset", "pid"));
    assert!(
        !directives.contains_key("PrivateUsers"),
        "a user namespace maps every other uid to nobody"
    );
}

// ------------------------------------------------------------------ launchd service account

/// A stand-in for macOS's `dscl`, enough for deploy/launchd/lib.sh: `-list`, `-read`,
/// `-create` and `-delete` of /Users and /Groups records, kept as `name id` lines in
/// $STUB_DSCL_DB/Users and .../Groups, every call logged to .../calls.
const STUB_DSCL: &str = r#"#!/bin/bash
db=$STUB_DSCL_DB
echo "dscl $*" >>"$db/calls"
[ "$1" = . ] || exit 64
op=$2 path=$3 key=${4:-} val=${5:-}
kind=${path#/}; kind=${kind%%/*}
name=${path#/*/}
rewrite() { awk "$1" n="$name" v="$val" "$db/$kind" >"$db/$kind.new" && mv "$db/$kind.new" "$db/$kind"; }
case "$op" in
    -list) cat "$db/$kind" ;;
    -read)
        line=$(awk -v n="$name" '$1 == n' "$db/$kind")
        [ -n "$line" ] || { echo "<main> attribute status: eDSRecordNotFound" >&2; exit 56; }
        echo "$key: ${line##* }" ;;
    -create)
        if [ -z "$key" ]; then
            awk -v n="$name" '$1 == n { f = 1 } END { exit !f }' "$db/$kind" || echo "$name -" >>"$db/$kind"
        elif [ "$key" = UniqueID ] || { [ "$key" = PrimaryGroupID ] && [ "$kind" = Groups ]; }; then
            rewrite '$1 == n { $2 = v } { print }'
        fi ;;
    -delete) rewrite '$1 != n' ;;
    *) exit 64 ;;
esac
"#;

/// The local accounts of a macOS 15 machine as `dscl . -list /Users UniqueID` prints them,
/// abridged: Apple's daemons from 0 up to 300, the four ids the macOS 15 update took
/// (301-304, which it took from Nix's build users: NixOS/nix#11075), Rosetta's _oahd at 441,
/// the first login user at 501.
fn macos15_accounts() -> String {
    let mut lines: Vec<String> =
        ["root 0", "daemon 1", "_uucp 4", "_taskgated 13", "_networkd 24", "_installassistant 25"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    for id in 200..=304 {
        lines.push(format!("_system{id} {id}"));
    }
    lines.extend(["_oahd 441", "alice 501", "nobody -2"].map(String::from));
    lines.join("\n") + "\n"
}

/// Runs `snippet` after sourcing deploy/launchd/lib.sh, with the stub dscl first on PATH
/// over `users` and `groups`; returns (success, output, the dscl calls made).
fn with_stub_dscl(db: &Path, snippet: &str) -> (bool, String, String) {
    let stub = db.join("bin");
    std::fs::create_dir_all(&stub).unwrap();
    std::fs::write(stub.join("dscl"), STUB_DSCL).unwrap();
    Command::new("chmod").arg("755").arg(stub.join("dscl")).status().unwrap();
    let _ = std::fs::remove_file(db.join("calls"));
    let script = format!(
        "set -euo pipefail\n. {lib}\n{snippet}\n",
        lib = path("deploy/launchd/lib.sh").display()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("PATH", format!("{}:{}", stub.display(), std::env::var("PATH").unwrap()))
        .env("STUB_DSCL_DB", db)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let calls = std::fs::read_to_string(db.join("calls")).unwrap_or_default();
    (out.status.success(), text, calls)
}

#[test]
fn launchd_service_account_gets_an_id_clear_of_apples_and_nixs_and_keeps_it() {
    let dir = TempDir::new("stub_dscl");
    let db = dir.0.as_path();
    std::fs::write(db.join("Users"), macos15_accounts()).unwrap();
    std::fs::write(db.join("Groups"), "wheel 0\ndaemon 1\nstaff 20\n_oahd 441\n").unwrap();

    let (ok, out, calls) = with_stub_dscl(db, "ensure_service_user _libproc_exporter");
    assert!(ok, "{out}");
    assert!(calls.contains("-create /Users/_libproc_exporter UniqueID 499"), "{calls}");
    assert!(calls.contains("-create /Groups/_libproc_exporter PrimaryGroupID 499"), "{calls}");
    assert!(calls.contains("-create /Users/_libproc_exporter IsHidden 1"), "{calls}");

    // Installed already (a second run, an upgrade): the account and its id stay.
    let (ok, out, calls) = with_stub_dscl(db, "ensure_service_user _libproc_exporter");
    assert!(ok, "{out}");
    assert!(out.contains("user _libproc_exporter exists (uid 499)"), "{out}");
    assert!(!calls.contains("-create"), "a second run created records: {calls}");

    // An id free as a uid but taken as a gid is skipped: the next one down.
    std::fs::write(db.join("Users"), macos15_accounts()).unwrap();
    std::fs::write(db.join("Groups"), "wheel 0\nnixbld 350\n_someapp 499\n").unwrap();
    let (ok, out, _) = with_stub_dscl(db, "free_system_id _libproc_exporter");
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "498");

    // Nothing free in 350..=499: a clear refusal, never an id in Apple's range.
    let full: String = (350..=499).map(|id| format!("_taken{id} {id}\n")).collect();
    std::fs::write(db.join("Users"), macos15_accounts() + &full).unwrap();
    let (ok, out, _) = with_stub_dscl(db, "free_system_id _libproc_exporter");
    assert!(!ok);
    assert!(out.contains(": no free id from 499 down to 350 for _libproc_exporter"), "{out}");
}

/// Stands in for `cargo zigbuild`: puts this test build's binary where the real build would
/// put each target's (a universal binary is a file starting with the Mach-O fat magic).
const STUB_CARGO: &str = r#"#!/bin/bash
set -euo pipefail
[[ "$1" == zigbuild ]] || { echo "stub cargo: only zigbuild, got $*" >&2; exit 1; }
while (($#)); do
    if [[ "$1" == --target ]]; then target=$2; fi
    shift
done
dir=$CARGO_TARGET_DIR/${target%.2.17}/release
mkdir -p "$dir"
if [[ "$target" == universal2-apple-darwin ]]; then
    printf '\xca\xfe\xba\xbe' >"$dir/libproc_exporter"
    for slice in aarch64-apple-darwin x86_64-apple-darwin; do
        mkdir -p "$CARGO_TARGET_DIR/$slice/release"
        echo "$slice" >"$CARGO_TARGET_DIR/$slice/release/libproc_exporter"
    done
else
    echo "$target" >"$dir/libproc_exporter"
fi
"#;

#[test]
#[ignore = "needs git (scripts/setup.sh installs it)"]
fn release_tarballs_are_named_like_prometheus_releases_and_carry_the_license() {
    let dir = TempDir::new("release");
    let bin = dir.0.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (tool, script) in [
        ("cargo", STUB_CARGO),
        ("cargo-zigbuild", "#!/bin/sh\nexit 0\n"),
        ("rustup", "#!/bin/sh\nexit 0\n"),
        ("llvm-nm", "#!/bin/sh\necho '                 U ___proc_info'\n"),
    ] {
        std::fs::write(bin.join(tool), script).unwrap();
        Command::new("chmod").arg("755").arg(bin.join(tool)).status().unwrap();
    }
    let dist = dir.0.join("dist");
    let search = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    run_ok(
        Command::new("bash")
            .arg(path("deploy/release.sh"))
            .arg("--out")
            .arg(&dist)
            .env("PATH", search)
            .env("CARGO_TARGET_DIR", dir.0.join("target")),
    );

    let version = env!("CARGO_PKG_VERSION");
    let platforms =
        ["darwin-universal", "darwin-arm64", "darwin-amd64", "linux-amd64", "linux-arm64"];
    let mut expected: Vec<String> =
        platforms.iter().map(|p| format!("libproc_exporter-{version}.{p}.tar.gz")).collect();
    expected.push(format!("libproc_exporter-{version}.src.tar.gz"));
    let sums = std::fs::read_to_string(dist.join("sha256sums.txt")).unwrap();
    let mut summed: Vec<&str> = sums.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
    summed.sort_unstable();
    let mut want: Vec<&str> = expected.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(summed, want, "sha256sums.txt lists every tarball by its release name");
    run_ok(Command::new("sha256sum").arg("-c").arg("sha256sums.txt").current_dir(&dist));

    for platform in platforms {
        let name = format!("libproc_exporter-{version}.{platform}");
        let listing =
            run_ok(Command::new("tar").arg("-tzf").arg(dist.join(format!("{name}.tar.gz"))));
        let listing = String::from_utf8_lossy(&listing.stdout);
        for file in ["libproc_exporter", "LICENSE", "README.md", "dashboards/libproc_exporter.json"]
        {
            assert!(
                listing.lines().any(|l| l == format!("{name}/{file}")),
                "{name}: no {file} in\n{listing}"
            );
        }
    }
    let formula = std::fs::read_to_string(dist.join("libproc_exporter.rb")).unwrap();
    assert!(
        formula.contains(&format!("/v{version}/libproc_exporter-{version}.src.tar.gz\"")),
        "{formula}"
    );
}
