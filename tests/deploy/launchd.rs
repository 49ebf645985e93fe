//! The LaunchDaemon plist and its install and uninstall scripts.

use super::*;

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

/// A stand-in for `launchctl print system/LABEL` while launchd restarts a crashed job: the
/// service block as macOS prints it, `pid = $STUB_OLD_PID` for the first $STUB_UNTIL calls,
/// then no pid (`spawn scheduled`, the throttle), then `pid = $STUB_NEW_PID` from call
/// $STUB_UNTIL + 3 on. An unknown service answers as launchctl does, exit 113.
const STUB_LAUNCHCTL: &str = r#"#!/bin/bash
[ "$1" = print ] && [ "$2" = system/io.github.libproc-exporter ] || {
    echo "Could not find service \"${2#system/}\" in domain for system" >&2; exit 113; }
n=$(($(cat "$STUB_DB/n" 2>/dev/null || echo 0) + 1)); echo "$n" >"$STUB_DB/n"
if ((n <= STUB_UNTIL)); then state=running pid=$STUB_OLD_PID
elif ((n <= STUB_UNTIL + 2)) || [ -z "$STUB_NEW_PID" ]; then state="spawn scheduled" pid=
else state=running pid=$STUB_NEW_PID; fi
printf '%s = {\n\tactive count = 1\n\tpath = /Library/LaunchDaemons/%s.plist\n' "$2" "${2#system/}"
printf '\ttype = LaunchDaemon\n\tstate = %s\n\n\tprogram = /usr/local/bin/libproc_exporter\n' "$state"
printf '\targuments = {\n\t\t/usr/local/bin/libproc_exporter\n\t\t--web.listen-address=:10077\n\t}\n\n'
printf '\tdomain = system\n\tusername = _libproc_exporter\n\truns = %s\n' "$n"
[ -n "$pid" ] && printf '\tpid = %s\n' "$pid"
printf '\timmediate reason = speculative\n\tlast terminating signal = Abort trap: 6\n}\n'
"#;

/// Runs `snippet` after sourcing lib.sh with the stub launchctl first on PATH; returns
/// (success, stdout, stderr).
fn with_stub_launchctl(dir: &Path, snippet: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let search = stub_path(dir, &[("launchctl", STUB_LAUNCHCTL)]);
    let _ = std::fs::remove_file(dir.join("n"));
    let lib = path("deploy/launchd/lib.sh");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n. {}\n{snippet}\n", lib.display()))
        .env("PATH", search)
        .env("STUB_DB", dir)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn the_daemons_pid_comes_from_launchd_and_a_restart_is_polled_for_not_slept_on() {
    let dir = TempDir::new("stub_launchctl");
    let label = "io.github.libproc-exporter";
    let env = [("STUB_UNTIL", "2"), ("STUB_OLD_PID", "4242"), ("STUB_NEW_PID", "4377")];

    // The service's own `pid = N`, not a number from elsewhere in the block.
    let (ok, out, err) = with_stub_launchctl(&dir.0, &format!("service_pid {label}"), &env);
    assert!(ok, "{err}");
    assert_eq!(out, "4242");
    // Not loaded: nothing, and no failure (the caller decides).
    let (ok, out, _) = with_stub_launchctl(&dir.0, "service_pid no.such.label", &env);
    assert!(ok);
    assert_eq!(out, "");

    // Killed: the old pid twice, then no pid while launchd throttles, then the new one.
    let (ok, out, err) = with_stub_launchctl(
        &dir.0,
        &format!("old=$(service_pid {label}); wait_for_restart {label} \"$old\" 10"),
        &env,
    );
    assert!(ok, "{err}");
    assert_eq!(out, "4377");

    // Never restarted: a clear failure once the bound passes, naming the service.
    let never = [("STUB_UNTIL", "1000"), ("STUB_OLD_PID", "4242"), ("STUB_NEW_PID", "")];
    let (ok, _, err) =
        with_stub_launchctl(&dir.0, &format!("wait_for_restart {label} 4242 2"), &never);
    assert!(!ok);
    assert!(err.contains(&format!("system/{label} was not restarted within 2s")), "{err}");
}
