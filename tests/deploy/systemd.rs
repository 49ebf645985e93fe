//! The systemd unit.

use super::*;

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
