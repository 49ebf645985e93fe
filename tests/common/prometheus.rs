//! A real Prometheus server for the end-to-end tests (Debian's `prometheus`): started in a
//! scratch directory on a port the kernel picks, queried through its HTTP API, killed and
//! cleaned up on drop. tests/prometheus_e2e.rs scrapes exporters with it; tests/fleet.rs runs
//! two, an agent remote-writing into a receiver.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{http_get, logfmt_value, repo_root, require_tool};

/// The job name of the shipped scrape config (the alerts select on it).
pub const JOB: &str = "libproc_exporter";

/// A Prometheus server in a scratch directory, killed (and the directory removed) on drop.
pub struct Prometheus {
    child: Child,
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    dir: PathBuf,
}

/// A fresh scratch directory for one Prometheus (its config, data and log).
pub fn scratch_dir(tag: &str) -> PathBuf {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir()
        .join(format!("libproc_prometheus_{tag}_{}_{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (address, `source` label) every second, with the
    /// shipped rule files loaded, and waits until it is ready.
    pub fn start(targets: &[(SocketAddr, &str)]) -> Prometheus {
        Prometheus::start_with(targets, "")
    }

    /// [`Prometheus::start`] with `scrape_extra` (YAML at the job's indentation, e.g.
    /// `relabel_configs: [...]`) added to the job.
    pub fn start_with(targets: &[(SocketAddr, &str)], scrape_extra: &str) -> Prometheus {
        let dir = scratch_dir("e2e");
        std::fs::create_dir_all(dir.join("targets")).unwrap();

        let groups: Vec<Value> = targets
            .iter()
            .map(|(addr, source)| {
                serde_json::json!({"targets": [addr.to_string()], "labels": {"source": source}})
            })
            .collect();
        std::fs::write(
            dir.join("targets/exporters.json"),
            serde_json::to_string_pretty(&groups).unwrap(),
        )
        .unwrap();

        let rules = repo_root().join("deploy/prometheus/libproc_exporter.rules.yml");
        let fleet = repo_root().join("deploy/prometheus/libproc_fleet.rules.yml");
        let alerts = repo_root().join("deploy/prometheus/libproc_exporter.alerts.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n  - {}\n  - {}\n\
             scrape_configs:\n  - job_name: {JOB}\n    file_sd_configs:\n      - files:\n          - {}\n{scrape_extra}",
            rules.display(),
            fleet.display(),
            alerts.display(),
            dir.join("targets/*.json").display()
        );
        let data = format!("--storage.tsdb.path={}", dir.join("data").display());
        Prometheus::launch(dir, &config, &[&data, "--web.enable-lifecycle"])
    }

    /// Writes `config` as `dir/prometheus.yml` and starts Prometheus on it with `args` (the
    /// storage flags are the caller's: agent mode refuses `--storage.tsdb.path`), on
    /// 127.0.0.1 port 0; returns once it is ready. `dir` is removed on drop.
    pub fn launch(dir: PathBuf, config: &str, args: &[&str]) -> Prometheus {
        let bin = require_tool("prometheus", "apt-get install prometheus");
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .args(args)
            // Port 0: the kernel picks a free port and Prometheus logs it (below), so no other
            // process can take it between choosing and binding.
            .arg("--web.listen-address=127.0.0.1:0")
            .arg("--log.level=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        let unbound: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut prometheus = Prometheus { child, addr: unbound, dir };
        prometheus.wait_ready();
        prometheus
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("prometheus exited with {status}:\n{}", self.log());
            }
            if self.addr.port() == 0 {
                // exporter-toolkit's line once the listener is bound:
                // `msg="Listening on" address=127.0.0.1:PORT`.
                let log =
                    std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
                let bound =
                    log.lines().filter(|l| l.contains("msg=\"Listening on\"")).find_map(|l| {
                        logfmt_value(l, "address").and_then(|a| a.parse::<SocketAddr>().ok())
                    });
                match bound {
                    Some(addr) => self.addr = addr,
                    None => {
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                }
            }
            if http_get(self.addr, "/-/ready").is_ok_and(|r| r.status == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus not ready within 30 s:\n{}", self.log());
    }

    /// The scratch directory (config, data, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last 40 lines of its log.
    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// GET an API path: its `data`, or the API's error.
    pub fn api(&self, path: &str) -> Result<Value, String> {
        let response = http_get(self.addr, path).map_err(|e| format!("GET {path}: {e}"))?;
        let body: Value = serde_json::from_str(&response.body)
            .map_err(|e| format!("GET {path}: {e}: {}", response.body))?;
        if body["status"] != "success" {
            return Err(format!("{} ({})", body["error"], body["errorType"]));
        }
        Ok(body["data"].clone())
    }

    /// An instant query: the result vector, or the API's error.
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", urlencode(expr)))?;
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => Ok(data["result"].as_array().unwrap().clone()),
            // A scalar or string is one value.
            _ => Ok(vec![data["result"].clone()]),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A shipped dashboard (`rel` from the repository root) as JSON.
pub fn dashboard(rel: &str) -> Value {
    let text =
        std::fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Runs `check` once a second until it finds nothing wrong, and returns how many rounds that
/// took; scrapes, remote writes, rule evaluations and rate() windows fill within seconds.
/// After `limit`, panics with what was still wrong and `logs()`.
pub fn until_right(
    limit: Duration,
    mut check: impl FnMut() -> Vec<String>,
    logs: impl Fn() -> String,
) -> u32 {
    let deadline = Instant::now() + limit;
    let mut rounds = 0;
    loop {
        rounds += 1;
        let failures = check();
        if failures.is_empty() {
            return rounds;
        }
        if Instant::now() > deadline {
            panic!(
                "after {rounds} rounds, {} checks still fail:\n{}\n{}",
                failures.len(),
                failures.join("\n"),
                logs()
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Percent-encodes everything but the unreserved characters (RFC 3986).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A value as Grafana puts a selected value of a multi-value variable into a PromQL regex:
/// regex metacharacters escaped, and the backslash doubled for the PromQL string.
pub fn grafana_regex(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if r"\^$*+?.()|{}[]".contains(c) {
            out.push_str(r"\\");
        }
        out.push(c);
    }
    out
}

/// Substitutes dashboard variables (`$name` and `${name}`) and Grafana's built-in intervals.
pub fn substitute(expr: &str, vars: &[(&str, String)]) -> String {
    let mut all: Vec<(String, String)> = vec![
        ("__rate_interval".into(), "1m".into()),
        ("__interval".into(), "15s".into()),
        ("__range".into(), "5m".into()),
        ("__range_s".into(), "300".into()),
        ("__range_ms".into(), "300000".into()),
        ("__interval_ms".into(), "15000".into()),
    ];
    all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.clone())));
    // Longest names first, so `$__range_s` is not read as `$__range` + "_s".
    all.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    let mut out = expr.to_string();
    for (name, value) in &all {
        out = out.replace(&format!("${{{name}}}"), value).replace(&format!("${name}"), value);
    }
    assert!(!out.contains('$'), "a variable was left unsubstituted in {out}");
    out
}

/// Every rule of a shipped rule file as (name, is_alert, expr), read through promtool-free
/// Ruby YAML (as tests/deploy/mod.rs does).
pub fn rules(rel: &str) -> Vec<(String, bool, String)> {
    let ruby = require_tool("ruby", "apt-get install ruby");
    let out = Command::new(ruby)
        .args(["-ryaml", "-rjson", "-e", "puts JSON.generate(YAML.load_file(ARGV[0]))"])
        .arg(repo_root().join(rel))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut rules = Vec::new();
    for group in doc["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let expr = rule["expr"].as_str().unwrap().to_string();
            match (rule["record"].as_str(), rule["alert"].as_str()) {
                (Some(name), _) => rules.push((name.to_string(), false, expr)),
                (_, Some(name)) => rules.push((name.to_string(), true, expr)),
                _ => panic!("{rel}: a rule without record or alert"),
            }
        }
    }
    rules
}
