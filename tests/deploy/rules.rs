//! Prometheus recording and alerting rules, their promtool unit tests and the scrape config example.

use super::*;

#[test]
#[ignore = "needs promtool (scripts/setup.sh installs it)"]
fn rules_pass_promtool_check() {
    run_ok(
        Command::new(promtool())
            .args(["check", "rules"])
            .arg(path(RULES))
            .arg(path(FLEET_RULES))
            .arg(path(ALERTS)),
    );
}

#[test]
#[ignore = "needs promtool (scripts/setup.sh installs it)"]
fn rules_pass_their_promtool_unit_tests() {
    for tests in [RULE_TESTS, FLEET_RULE_TESTS] {
        let out = run_ok(Command::new(promtool()).args(["test", "rules"]).arg(path(tests)));
        assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"), "{tests}");
    }
}

#[test]
#[ignore = "needs ruby to read YAML (scripts/setup.sh installs it)"]
fn every_fleet_rule_has_a_unit_test_and_drops_only_the_host_labels() {
    let tested: BTreeSet<String> = yaml(FLEET_RULE_TESTS)["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .flat_map(|group| group["promql_expr_test"].as_array().into_iter().flatten())
        .filter_map(|case| case["expr"].as_str().map(String::from))
        .collect();
    let rules = rules_of(FLEET_RULES);
    assert!(rules.len() >= 15, "{FLEET_RULES}: {} rules", rules.len());
    for (name, is_alert, rule) in rules {
        assert!(!is_alert, "{FLEET_RULES} holds recording rules only: {name}");
        assert!(tested.contains(&name), "{FLEET_RULE_TESTS} does not test {name}");
        let expr = rule["expr"].as_str().unwrap();
        // A fleet aggregation keeps job and the discovery labels (site, role): `by (job)`
        // would merge the sites, and leaving `host` in would keep one series per host.
        if name.starts_with("job") {
            assert!(expr.contains("without (instance, host)"), "{name}: {expr}");
            assert!(!expr.contains(" by ("), "{name}: {expr}");
        }
    }
    let loaded = str_array(&yaml(SCRAPE_CONFIG)["rule_files"]);
    assert!(
        loaded.iter().any(|f| FLEET_RULES.ends_with(f.as_str())),
        "{SCRAPE_CONFIG} does not load {FLEET_RULES}: {loaded:?}"
    );
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
