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

mod dashboard;
mod homebrew;
mod launchd;
mod launchd_account;
mod release;
mod rules;
mod systemd;

const RULES: &str = "deploy/prometheus/libproc_exporter.rules.yml";
const ALERTS: &str = "deploy/prometheus/libproc_exporter.alerts.yml";
const RULE_TESTS: &str = "deploy/prometheus/tests/libproc_exporter.test.yml";
const FLEET_RULES: &str = "deploy/prometheus/libproc_fleet.rules.yml";
const FLEET_RULE_TESTS: &str = "deploy/prometheus/tests/libproc_fleet.test.yml";
const SCRAPE_CONFIG: &str = "deploy/prometheus/prometheus.yml";
const RUNBOOK: &str = "deploy/prometheus/README.md";
const DASHBOARD: &str = "dashboards/libproc_exporter.json";
const FLEET_DASHBOARD: &str = "dashboards/libproc_fleet.json";
const PLIST: &str = "deploy/launchd/io.github.libproc-exporter.plist";
const INSTALL: &str = "deploy/launchd/install.sh";
const UNINSTALL: &str = "deploy/launchd/uninstall.sh";
const FORMULA: &str = "deploy/homebrew/libproc_exporter.rb";
const UNIT: &str = "deploy/systemd/libproc_exporter.service";
const GOLDEN: &str = "tests/fixtures/golden/mac.prom";

/// The service user the plist, the scripts and the docs agree on.
const SERVICE_USER: &str = "_libproc_exporter";

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

/// Writes each (name, script) as an executable in `dir/bin` and returns a PATH with that
/// folder first: stand-ins for macOS and packaging tools (dscl, launchctl, brew, cargo).
fn stub_path(dir: &Path, stubs: &[(&str, &str)]) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (tool, script) in stubs {
        std::fs::write(bin.join(tool), script).unwrap();
        std::fs::set_permissions(bin.join(tool), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
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
    rules.extend(rules_of(FLEET_RULES));
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
        // Grafana's model keeps a data source's annotation query in `target`; older exports
        // had `expr` beside it.
        if let Some(expr) = ann["target"]["expr"].as_str().or(ann["expr"].as_str()) {
            out.push((format!("annotation {}", ann["name"]), expr.to_string()));
        }
    }
    out
}

/// A dashboard's template variables by name.
pub(crate) fn variables(dashboard: &Value) -> BTreeMap<String, Value> {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .map(|v| (v["name"].as_str().expect("variable name").to_string(), v.clone()))
        .collect()
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
