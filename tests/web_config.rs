//! `--web.config.file` fixtures (tests/fixtures/web/*.good.yml, *.bad.yml) against our
//! start-up validation and against `promtool check web-config`.
//!
//! A fixture says its outcome in its name. Its leading comments may add:
//! - `# expect: TEXT`: our one-line error must contain TEXT (the key at fault);
//! - `# promtool accepts: WHY` / `# promtool rejects: WHY`: a deliberate difference from
//!   promtool, with the reason; the test checks promtool still differs, so a stale note fails.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{fixture, require_tool};
use crate::web_support::check_config;

struct Fixture {
    path: PathBuf,
    good: bool,
    expect: Option<String>,
    promtool_differs: Option<String>,
}

fn fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixture("web")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let good = if name.ends_with(".good.yml") {
            true
        } else if name.ends_with(".bad.yml") {
            false
        } else {
            assert!(!name.ends_with(".yml"), "{name}: a fixture must end in .good.yml or .bad.yml");
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let header = |tag: &str| {
            text.lines()
                .take_while(|l| l.starts_with('#'))
                .find_map(|l| l.strip_prefix(tag).map(|v| v.trim().to_string()))
        };
        let promtool_differs =
            header("# promtool accepts:").or_else(|| header("# promtool rejects:"));
        if let Some(why) = &promtool_differs {
            let stated = if text.contains("# promtool accepts:") { !good } else { good };
            assert!(
                stated,
                "{name}: a 'promtool accepts' note belongs on a .bad.yml, 'rejects' on a .good.yml ({why})"
            );
        }
        out.push(Fixture { path, good, expect: header("# expect:"), promtool_differs });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// One table test: every fixture, our verdict (by the real binary's start-up validation)
/// and promtool's. Run from another folder, so relative paths must resolve against the
/// config file, not the working directory.
#[test]
#[ignore = "needs promtool (scripts/setup.sh installs it)"]
fn web_config_fixtures_match_promtool() {
    let promtool = require_tool("promtool", "apt-get install prometheus");
    let all = fixtures();
    assert!(all.len() >= 30, "only {} fixtures", all.len());
    let mut failures = Vec::new();
    let mut differences = 0;
    for f in &all {
        let name = f.path.file_name().unwrap().to_string_lossy().into_owned();
        let (code, stderr) = check_config(&["--web.config.file", f.path.to_str().unwrap()]);
        let ours = code == 0;
        if ours != f.good {
            failures.push(format!(
                "{name}: we said {} (exit {code}): {stderr}",
                if ours { "good" } else { "bad" }
            ));
            continue;
        }
        if !f.good {
            let line = stderr.trim();
            if code != 2 || line.lines().count() != 1 {
                failures.push(format!(
                    "{name}: expected one error line and exit 2, got exit {code}: {line}"
                ));
            }
            match &f.expect {
                Some(text) if !line.contains(text.as_str()) => {
                    failures.push(format!("{name}: the error should name {text:?}: {line}"))
                }
                None => failures.push(format!("{name}: a .bad.yml needs a '# expect:' line")),
                _ => {}
            }
        }
        let out = Command::new(&promtool)
            .args(["check", "web-config"])
            .arg(&f.path)
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap();
        let theirs = out.status.success();
        match &f.promtool_differs {
            None if theirs != ours => failures.push(format!(
                "{name}: promtool says {}, we say {}: {}",
                if theirs { "good" } else { "bad" },
                if ours { "good" } else { "bad" },
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Some(why) if theirs == ours => failures.push(format!(
                "{name}: noted as differing from promtool ({why}), but promtool now agrees: drop the note"
            )),
            Some(_) => differences += 1,
            None => {}
        }
    }
    println!("{} fixtures, {differences} deliberate differences from promtool", all.len());
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Warnings for legal but risky settings reach the log at start-up.
#[test]
fn web_config_warnings_are_logged() {
    let (code, stderr) =
        check_config(&["--web.config.file", fixture("web/users.good.yml").to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("level=warn") && stderr.contains("clear text"), "{stderr}");
    let (code, stderr) = check_config(&[
        "--web.config.file",
        fixture("web/mtls-optional.good.yml").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("level=warn") && stderr.contains("VerifyClientCertIfGiven"),
        "{stderr}"
    );
    // Issue 24: an unverified client-certificate mode is warned about once, loudly.
    let (code, stderr) = check_config(&[
        "--web.config.file",
        fixture("web/require-any-client-cert.good.yml").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let loud: Vec<&str> = stderr.lines().filter(|l| l.contains("UNAUTHENTICATED")).collect();
    assert_eq!(loud.len(), 1, "{stderr}");
    assert!(loud[0].contains("level=warn") && loud[0].contains("RequireAnyClientCert"), "{stderr}");
    let (code, stderr) =
        check_config(&["--web.config.file", fixture("web/tls-users.good.yml").to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("level=warn msg=\"--web.config.file"),
        "no warning with TLS: {stderr}"
    );
}

#[test]
fn rate_limit_answers_429_beyond_the_burst_for_every_client_alike() {
    // One request a minute in the long run, three at once: the fourth within the minute is
    // refused at once, whatever the path, as the toolkit's limiter does.
    let dir = crate::web_support::TempDir::new("rate_limit");
    let config = dir.write("web.yml", "rate_limit:\n  interval: 1m\n  burst: 3\n");
    let exporter = crate::common::Exporter::start(&["--web.config.file", config.to_str().unwrap()]);
    let statuses: Vec<u16> = ["/metrics", "/", "/metrics", "/metrics", "/nope"]
        .iter()
        .map(|path| crate::common::http_get(exporter.addr, path).unwrap().status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let refused = crate::common::http_get(exporter.addr, "/metrics").unwrap();
    assert_eq!(refused.body, "Too Many Requests\n");
}
