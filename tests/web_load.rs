//! Load: wrk, 64 connections for 60 seconds against /metrics on a replayed table of 3000
//! processes. No socket errors, no non-2xx answers, and resident memory at the end within
//! 20% of what it was after a warm-up. The figures are printed (`--nocapture` shows them).

use std::process::Command;
use std::time::Duration;

use crate::common::{Exporter, require_tool};
use crate::web_support::{TempDir, rss_kib, write_table};

const CONNECTIONS: &str = "64";

struct WrkRun {
    requests: u64,
    per_second: f64,
    socket_errors: Option<String>,
    non_2xx: u64,
    text: String,
}

fn wrk(url: &str, seconds: u64) -> WrkRun {
    let wrk = require_tool("wrk", "apt-get install wrk");
    let out = Command::new(wrk)
        .args(["-t2", "-c", CONNECTIONS, "-d", &format!("{seconds}s"), "--timeout", "10s", url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output: {text}"));
    let per_second = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let socket_errors =
        text.lines().find(|l| l.contains("Socket errors")).map(|l| l.trim().to_string());
    let non_2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    WrkRun { requests, per_second, socket_errors, non_2xx, text }
}

#[test]
#[ignore = "needs wrk (scripts/setup.sh installs it) and runs for 60 s"]
fn web_load_60s_at_64_connections() {
    let _quiet = crate::common::machine_exclusive();
    let dir = TempDir::new("load");
    let table = dir.join("table.json");
    write_table(&table, 3000, 20);
    // 64 connections each with one request outstanding: a limit of 64 never refuses one,
    // so any 503 would be a bug, not the limit doing its job.
    let exporter = Exporter::start(&[
        "--source=replay",
        &format!("--source.replay-file={}", table.display()),
        "--web.max-requests=64",
    ]);
    let pid = exporter.child.id();
    let url = format!("http://{}/metrics", exporter.addr);
    let body = exporter.scrape();
    assert!(body.contains("libproc_processes"), "the table did not load");

    let warm = wrk(&url, 5);
    std::thread::sleep(Duration::from_millis(500));
    let rss_warm = rss_kib(pid);
    let run = wrk(&url, 60);
    std::thread::sleep(Duration::from_millis(500));
    let rss_end = rss_kib(pid);
    let growth = rss_end as f64 / rss_warm as f64 - 1.0;
    println!(
        "load: warm-up {} requests; 60 s at {CONNECTIONS} connections: {} requests, {:.0} req/s, \
         RSS after warm-up {rss_warm} KiB, at the end {rss_end} KiB ({:+.1}%)",
        warm.requests,
        run.requests,
        run.per_second,
        growth * 100.0
    );
    println!("{}", run.text);
    for r in [&warm, &run] {
        assert!(r.socket_errors.is_none(), "{:?}\n{}", r.socket_errors, r.text);
        assert_eq!(r.non_2xx, 0, "non-2xx answers\n{}", r.text);
    }
    assert!(run.requests > 1000, "suspiciously few requests\n{}", run.text);
    assert!(growth <= 0.20, "RSS grew {rss_warm} -> {rss_end} KiB ({:+.1}%)", growth * 100.0);
    // And it still answers normally.
    assert!(exporter.scrape().contains("libproc_build_info"));
}
