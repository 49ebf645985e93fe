//! The dashboard and the rules against a real Prometheus scraping the real exporter.
//!
//! Two exporters run: one replaying the recorded Mac snapshot (so the macOS-only series such
//! as the per-user limit exist) and one reading this machine's live process table (/proc on
//! Linux, `__proc_info` on macOS). A Debian `prometheus`
//! on loopback discovers both through file-based service discovery (as the shipped scrape
//! config does), scrapes them every second and evaluates the shipped rule files. Then every
//! dashboard query (template variables substituted the way Grafana does) and every rule
//! expression goes through the HTTP API: each must succeed, and each panel, variable and
//! recording rule must return data.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::prometheus::{
    JOB, Prometheus, dashboard, grafana_regex, rules, substitute, until_right, urlencode,
};
use crate::common::{Exporter, fixture};
use crate::deploy::dashboard_exprs;

/// One round of checks; returns what is not (yet) right.
fn check_round(
    prom: &Prometheus,
    dashboards: (&Value, &Value),
    mac: &str,
    live: &str,
) -> Vec<String> {
    let (dashboard, fleet) = dashboards;
    let mut failures = Vec::new();
    let expect = |failures: &mut Vec<String>, what: String, expr: &str, need_data: bool| match prom
        .query(expr)
    {
        Err(e) => failures.push(format!("{what}: error {e}\n    {expr}")),
        Ok(result) if need_data && result.is_empty() => {
            failures.push(format!("{what}: no data\n    {expr}"))
        }
        Ok(_) => {}
    };

    // Both targets up.
    match prom.query(&format!("up{{job=\"{JOB}\"}} == 1")) {
        Ok(up) if up.len() == 2 => {}
        other => return vec![format!("both exporters should be up: {other:?}\n{}", prom.log())],
    }

    let exprs = dashboard_exprs(dashboard);
    let mac_vars =
        [("job", JOB.to_string()), ("instance", grafana_regex(mac)), ("user", ".*".to_string())];
    let live_vars =
        [("job", JOB.to_string()), ("instance", grafana_regex(live)), ("user", ".*".to_string())];

    // A concrete user, as picked from the `user` variable's list.
    let user_var = &crate::deploy::variables(dashboard)["user"];
    let user_query = user_var["query"]["query"].as_str().unwrap();
    let (user_expr, user_label) = crate::deploy::label_values(user_query).unwrap();
    let users: Vec<String> = prom
        .query(&substitute(&user_expr, &mac_vars))
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s["metric"][user_label.as_str()].as_str().map(String::from))
        .collect();
    let Some(user) = users.iter().find(|u| *u != "root").or(users.first()).cloned() else {
        return vec![format!("the user variable lists no users: {user_query}")];
    };
    let one_user_vars = [
        ("job", JOB.to_string()),
        ("instance", grafana_regex(mac)),
        ("user", grafana_regex(&user)),
    ];

    for (what, expr) in &exprs {
        // Annotations show firing alerts: none fire here, so only errors count.
        let panel = !what.starts_with("annotation");
        // Threads are a Linux series: the Mac has none, this Linux machine must.
        let linux_only = expr.contains("libproc_threads");
        let mac_needs_data = panel && !linux_only;
        let mac = substitute(expr, &mac_vars);
        expect(&mut failures, format!("{what} (Mac replay)"), &mac, mac_needs_data);
        if expr.contains("$user") {
            expect(
                &mut failures,
                format!("{what} (user {user})"),
                &substitute(expr, &one_user_vars),
                panel,
            );
        }
        // Linux has no per-user limit, and this machine may have no zombies or terminals:
        // the queries must run, and the process table must show.
        let live_needs_data =
            expr.contains("libproc_processes_limit{") || (linux_only && cfg!(target_os = "linux"));
        expect(
            &mut failures,
            format!("{what} (live table)"),
            &substitute(expr, &live_vars),
            live_needs_data,
        );
    }

    failures.extend(fleet_dashboard_failures(prom, fleet));

    // Variable queries return the label they list.
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        if var["type"] != "query" {
            continue;
        }
        let query = var["query"]["query"].as_str().unwrap();
        let (expr, label) = crate::deploy::label_values(query).unwrap();
        let result = prom.query(&substitute(&expr, &mac_vars)).unwrap_or_default();
        if !result.iter().any(|s| s["metric"][label.as_str()].is_string()) {
            failures.push(format!("variable {}: no {label} values from {query}", var["name"]));
        }
    }

    for rel in [
        "deploy/prometheus/libproc_exporter.rules.yml",
        "deploy/prometheus/libproc_fleet.rules.yml",
        "deploy/prometheus/libproc_exporter.alerts.yml",
    ] {
        for (name, is_alert, expr) in rules(rel) {
            if is_alert {
                expect(&mut failures, format!("alert {name}"), &expr, false);
            } else {
                expect(&mut failures, format!("recording rule {name}"), &expr, true);
                // And Prometheus itself evaluated it and stored the result.
                expect(&mut failures, format!("recorded series {name}"), &name, true);
            }
        }
    }

    // Every rule evaluated without error.
    match prom.api("/api/v1/rules") {
        Err(e) => failures.push(format!("/api/v1/rules: {e}")),
        Ok(data) => {
            for group in data["groups"].as_array().unwrap() {
                for rule in group["rules"].as_array().unwrap() {
                    if rule["health"] != "ok" {
                        failures.push(format!(
                            "rule {} health {} {}",
                            rule["name"], rule["health"], rule["lastError"]
                        ));
                    }
                }
            }
        }
    }
    failures
}

/// Every query of the fleet dashboard (`dashboards/libproc_fleet.json`), `$job` set to the
/// shipped job: what fails or returns no data. Its panels are built on the fleet recording
/// rules, so each must have data wherever the rules run. tests/fleet.rs runs this against
/// the central store of an agent-and-receiver pair.
pub(crate) fn fleet_dashboard_failures(prom: &Prometheus, fleet: &Value) -> Vec<String> {
    let vars = [("job", JOB.to_string())];
    let mut failures = Vec::new();
    for (what, expr) in dashboard_exprs(fleet) {
        let expr = substitute(&expr, &vars);
        match prom.query(&expr) {
            Err(e) => failures.push(format!("fleet {what}: error {e}\n    {expr}")),
            Ok(result) if result.is_empty() => {
                failures.push(format!("fleet {what}: no data\n    {expr}"))
            }
            Ok(_) => {}
        }
    }
    let job_var = &crate::deploy::variables(fleet)["job"];
    let query = job_var["query"]["query"].as_str().unwrap();
    let (expr, label) = crate::deploy::label_values(query).unwrap();
    let jobs = prom.query(&expr).unwrap_or_default();
    if !jobs.iter().any(|s| s["metric"][label.as_str()] == JOB) {
        failures.push(format!("fleet variable job: {JOB} not among {jobs:?} from {query}"));
    }
    failures
}

#[test]
#[ignore = "needs prometheus and ruby (scripts/setup.sh installs them)"]
fn dashboard_and_rules_return_data_from_a_real_prometheus() {
    let _quiet = crate::common::machine_exclusive();
    let replay = fixture("snapshots/mac.json");
    assert!(Path::new(&replay).is_file(), "missing fixture {}", replay.display());
    let mac = Exporter::start(&[
        "--source=replay",
        &format!("--source.replay-file={}", replay.display()),
        "--collector.pgrp",
        // A declared command that never runs, so the "not running" panel has a row.
        "--collector.comm.names=no-such-daemon",
    ]);
    // The live table of the machine running the tests: /proc here, the real __proc_info on
    // the macOS CI runners.
    let live_source =
        if cfg!(target_os = "macos") { "--source=libproc" } else { "--source=procfs" };
    let live = Exporter::start(&[
        live_source,
        "--collector.pgrp",
        "--collector.comm.names=no-such-daemon",
    ]);
    let prom = Prometheus::start(&[(mac.addr, "replay-mac"), (live.addr, "live")]);

    let fleet = dashboard("dashboards/libproc_fleet.json");
    let dashboard = dashboard("dashboards/libproc_exporter.json");

    // Scrapes, rule evaluations and rate() windows fill within seconds; retry until they
    // have, and report what was still wrong if they never do.
    until_right(
        Duration::from_secs(60),
        || check_round(&prom, (&dashboard, &fleet), &mac.addr.to_string(), &live.addr.to_string()),
        || format!("--- prometheus log:\n{}", prom.log()),
    );
}

#[test]
#[ignore = "needs prometheus and ruby (scripts/setup.sh installs them)"]
fn the_shipped_relabeling_keeps_two_hosts_apart() {
    // Two exporters on two loopback addresses, scraped with the shipped job's
    // relabel_configs. The relabeling once cut `instance` to the first dot-separated word:
    // both became instance="127" and their samples interleaved in one series.
    let mut command = Command::new(crate::common::exporter_bin());
    command.args(["--web.listen-address=127.0.0.2:0"]);
    let second = Exporter::start_command(command);
    assert_eq!(second.addr.ip().to_string(), "127.0.0.2");
    let first = Exporter::start(&[]);
    let relabel = crate::deploy::yaml("deploy/prometheus/prometheus.yml")["scrape_configs"][0]
        ["relabel_configs"]
        .clone();
    assert!(relabel.is_array(), "the shipped job has relabel_configs");
    // JSON is YAML's flow style, so the shipped rules go in verbatim.
    let extra = format!("    relabel_configs: {relabel}\n");
    let prom = Prometheus::start_with(&[(first.addr, "first"), (second.addr, "second")], &extra);

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let series = prom.query("libproc_build_info").unwrap_or_default();
        let instances: std::collections::BTreeSet<String> = series
            .iter()
            .filter_map(|s| s["metric"]["instance"].as_str().map(String::from))
            .collect();
        if series.len() == 2 {
            assert_eq!(instances.len(), 2, "two targets, one instance: {series:?}");
            assert_eq!(
                instances,
                [first.addr.to_string(), second.addr.to_string()].into_iter().collect(),
                "instance is the scraped address"
            );
            break;
        }
        assert!(series.len() < 2, "{series:?}");
        assert!(Instant::now() < deadline, "two series never appeared: {series:?}\n{}", prom.log());
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn urlencode_escapes_promql() {
    assert_eq!(urlencode(r#"up{job="x"} > 0"#), "up%7Bjob%3D%22x%22%7D%20%3E%200");
    assert_eq!(grafana_regex("127.0.0.1:80"), r"127\\.0\\.0\\.1:80");
    assert_eq!(
        substitute(
            "rate(x{instance=~\"$instance\"}[$__rate_interval])",
            &[("instance", "a".into())]
        ),
        "rate(x{instance=~\"a\"}[1m])"
    );
}
