//! The LaunchDaemon's service account, created through a stub `dscl`.

use super::*;

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
    let search = stub_path(db, &[("dscl", STUB_DSCL)]);
    let _ = std::fs::remove_file(db.join("calls"));
    let script = format!(
        "set -euo pipefail\n. {lib}\n{snippet}\n",
        lib = path("deploy/launchd/lib.sh").display()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("PATH", search)
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
