//! The Grafana dashboard: importable, and querying only what the exporter serves.

use super::*;

#[test]
fn dashboard_is_an_importable_grafana_dashboard() {
    let dash: Value = serde_json::from_str(&read(DASHBOARD)).expect("dashboard JSON");
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 36, "current dashboard schema");
    assert!(dash["id"].is_null(), "an exported dashboard carries no database id");
    assert!(dash["uid"].as_str().is_some_and(|u| !u.is_empty() && u.len() <= 40));
    let vars = variables(&dash);
    assert_eq!(vars["datasource"]["type"], "datasource");
    assert_eq!(vars["datasource"]["query"], "prometheus");
    for name in ["instance", "user"] {
        assert_eq!(vars.get(name).unwrap_or_else(|| panic!("no {name} variable"))["type"], "query");
    }

    let (rows, panels) = check_panels(&dash);
    for panel in dash["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap();
        for target in panel["targets"].as_array().unwrap() {
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
    // The firing alerts as annotations (their query in `target`, where Grafana's model has it).
    assert!(
        dashboard_exprs(&dash)
            .iter()
            .any(|(what, expr)| what.starts_with("annotation") && expr.contains("ALERTS{")),
        "no annotation showing the alerts"
    );
    let all: String = dashboard_exprs(&dash).into_iter().map(|(_, e)| e + "\n").collect();
    for limit in
        ["libproc_processes_limit", "libproc_processes_per_user_limit", "libproc_pty_limit"]
    {
        assert!(all.contains(limit), "the dashboard does not draw {limit}");
    }
}

/// The checks every shipped dashboard passes, panel by panel: unique ids, on the grid, a
/// description, the datasource variable on the panel and on each target. Returns the row
/// titles and the number of panels that are not rows.
fn check_panels(dash: &Value) -> (Vec<String>, usize) {
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
        }
    }
    (rows, panels)
}

#[test]
fn fleet_dashboard_is_importable_and_links_into_the_host_dashboard() {
    let dash: Value = serde_json::from_str(&read(FLEET_DASHBOARD)).expect("fleet dashboard JSON");
    let host: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 36, "current dashboard schema");
    assert!(dash["id"].is_null(), "an exported dashboard carries no database id");
    let uid = dash["uid"].as_str().expect("uid");
    assert!(!uid.is_empty() && uid.len() <= 40 && uid != host["uid"]);
    let vars = variables(&dash);
    assert_eq!(vars["datasource"]["type"], "datasource");
    assert_eq!(vars["job"]["type"], "query");
    assert!(!vars.contains_key("instance"), "the fleet view shows every host of the jobs");

    let (rows, panels) = check_panels(&dash);
    assert!(panels >= 10, "only {panels} panels");
    for wanted in ["glance", "Headroom", "Creation and commands", "Exporters"] {
        assert!(rows.iter().any(|r| r.contains(wanted)), "no row about {wanted:?} in {rows:?}");
    }
    let exprs = dashboard_exprs(&dash);
    for (what, expr) in &exprs {
        if what.starts_with("panel") {
            assert!(expr.contains(r#"job=~"$job""#), "{what} ignores $job: {expr}");
        }
    }

    let drawn: BTreeSet<String> = exprs.iter().flat_map(|(_, e)| metric_names(e)).collect();
    for wanted in ["libproc_comm_processes", "forks", "headroom"] {
        assert!(drawn.iter().any(|n| n.contains(wanted)), "nothing about {wanted} in {drawn:?}");
    }

    // Into the host dashboard: a dashboard link, and the hosts table's instance cells, which
    // carry the job and the instance as the host dashboard's variables.
    let target = format!("/d/{}", host["uid"].as_str().unwrap());
    assert!(
        dash["links"].as_array().unwrap().iter().any(|l| l["url"] == target.as_str()),
        "no dashboard link to {target}"
    );
    let host_vars: BTreeSet<&str> = host["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    let mut cell_links = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for over in panel["fieldConfig"]["overrides"].as_array().into_iter().flatten() {
            for prop in over["properties"].as_array().unwrap() {
                if prop["id"] == "links" {
                    cell_links.extend(prop["value"].as_array().unwrap().iter().cloned());
                }
            }
        }
    }
    assert!(!cell_links.is_empty(), "no data link into the host dashboard");
    for link in cell_links {
        let url = link["url"].as_str().unwrap();
        assert!(url.starts_with(&format!("{target}?")), "{url}");
        for param in url.split_once('?').unwrap().1.split('&') {
            if let Some(var) = param.strip_prefix("var-") {
                let name = var.split('=').next().unwrap();
                assert!(host_vars.contains(name), "{url}: the host dashboard has no {name}");
            }
        }
        assert!(url.contains("var-instance="), "{url}");
    }
    // And back.
    assert!(
        host["links"].as_array().unwrap().iter().any(|l| l["url"] == format!("/d/{uid}")),
        "the host dashboard does not link to the fleet view"
    );
}

#[test]
#[ignore = "needs ruby to read YAML (scripts/setup.sh installs it)"]
fn fleet_dashboard_draws_every_fleet_series() {
    let dash: Value = serde_json::from_str(&read(FLEET_DASHBOARD)).unwrap();
    let drawn: BTreeSet<String> =
        dashboard_exprs(&dash).into_iter().flat_map(|(_, e)| metric_names(&e)).collect();
    // The per-host headroom too: the hosts table sorts by it.
    for (name, _, _) in rules_of(FLEET_RULES) {
        assert!(drawn.contains(&name), "{FLEET_DASHBOARD} does not draw {name}");
    }
}

#[test]
#[ignore = "needs ruby to read YAML (scripts/setup.sh installs it)"]
fn dashboard_and_rules_use_only_metrics_the_exporter_serves() {
    let golden = golden_names();
    let rules = all_rules();
    let recorded: BTreeSet<String> = rules.iter().filter(|r| !r.1).map(|r| r.0.clone()).collect();
    let dash: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();

    let fleet: Value = serde_json::from_str(&read(FLEET_DASHBOARD)).unwrap();

    let mut used: Vec<(String, String)> = Vec::new();
    for (file, dash) in [(DASHBOARD, &dash), (FLEET_DASHBOARD, &fleet)] {
        for (what, expr) in dashboard_exprs(dash) {
            used.extend(metric_names(&expr).into_iter().map(|n| (format!("{file} {what}"), n)));
        }
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

/// Grafana's published dashboard model (`@grafana/schema`) and the TypeScript compiler,
/// installed here by scripts/setup.sh (`npm ci`); model.ts says how a file is checked.
const SCHEMA_DIR: &str = "dashboards/schema";

/// Runs `tsc --strict` over each dashboard JSON written as an object literal of the model's
/// type, all in one program; the compiler's output when it rejects them.
fn check_against_grafanas_model(dashboards: &[(&str, String)]) -> Result<(), String> {
    let node = require_tool("node", "apt-get install nodejs npm");
    let schema = path(SCHEMA_DIR);
    let tsc = schema.join("node_modules/typescript/bin/tsc");
    assert!(
        tsc.is_file() && schema.join("node_modules/@grafana/schema/package.json").is_file(),
        "{SCHEMA_DIR}'s packages are not installed: npm ci --prefix {SCHEMA_DIR} (or run scripts/setup.sh)"
    );
    // Inside dashboards/schema, so `@grafana/schema` and ../model resolve; removed on drop.
    struct Out(PathBuf);
    impl Drop for Out {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = Out(schema.join(format!("out-{}-{n}", std::process::id())));
    std::fs::create_dir_all(&out.0).unwrap();
    let mut files = Vec::new();
    for (name, json) in dashboards {
        let file = out.0.join(format!("{name}.ts"));
        let source = format!(
            "import type {{ DashboardFile }} from '../model';\n\
             export const dashboard: DashboardFile = {json};\n"
        );
        std::fs::write(&file, source).unwrap();
        files.push(file);
    }
    let result = Command::new(node)
        .arg(tsc)
        .args(["--noEmit", "--strict", "--module", "esnext", "--moduleResolution", "bundler"])
        .args(["--target", "es2022"])
        .args(&files)
        .output()
        .expect("run tsc");
    if result.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&result.stdout).into_owned())
    }
}

#[test]
#[ignore = "needs node and dashboards/schema's npm packages (scripts/setup.sh installs them)"]
fn both_dashboards_match_grafanas_published_dashboard_model() {
    let shipped = [("host", read(DASHBOARD)), ("fleet", read(FLEET_DASHBOARD))];
    if let Err(errors) = check_against_grafanas_model(&shipped) {
        panic!("{DASHBOARD} or {FLEET_DASHBOARD} is not a dashboard of Grafana's model:\n{errors}");
    }

    // And the check sees what Grafana would not load as written: a misspelled panel field, an
    // enum value Grafana does not have, a number given as a string.
    let fleet: Value = serde_json::from_str(&read(FLEET_DASHBOARD)).unwrap();
    type Breaks = fn(&mut Value);
    let broken: [(&str, Breaks); 3] = [
        ("misspelled_field", |d| d["panels"][1]["titel"] = "Hosts".into()),
        ("unknown_enum", |d| {
            d["panels"][1]["fieldConfig"]["defaults"]["thresholds"]["mode"] = "absolut".into()
        }),
        ("string_for_number", |d| d["panels"][1]["gridPos"]["h"] = "5".into()),
    ];
    for (name, breaks) in broken {
        let mut dash = fleet.clone();
        breaks(&mut dash);
        let errors = check_against_grafanas_model(&[(name, dash.to_string())])
            .expect_err(&format!("the {name} dashboard passed the model check"));
        assert!(errors.contains("error TS"), "{name}: {errors}");
    }
}
