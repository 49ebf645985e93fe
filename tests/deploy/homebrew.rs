//! The Homebrew formula and its service wrapper.

use super::*;

#[test]
#[ignore = "needs ruby (scripts/setup.sh installs it)"]
fn homebrew_formula_is_valid_ruby_for_a_tap() {
    let out = run_ok(Command::new(ruby()).arg("-c").arg(path(FORMULA)));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Syntax OK"));
    let formula = read(FORMULA);
    assert!(formula.contains("class LibprocExporter < Formula"));
    assert!(formula.contains(r#"depends_on "rust" => :build"#));
    assert!(formula.contains(r#"system "cargo", "install""#), "builds from source with cargo");
    assert!(formula.contains("\n  head \"https://"), "brew install --HEAD works before a release");
    // No made-up release: the stable url and its checksum come from deploy/release.sh.
    assert!(!formula.contains("\n  url "), "no stable url until a release exists");
    assert!(!formula.contains("\n  sha256 "), "no placeholder checksum");
    let flat: String = formula.split_whitespace().collect();
    assert!(flat.contains(r#"servicedorun[opt_bin/"libproc_exporter_brew_services"]"#));
    assert!(formula.contains(r#"touch etc/"libproc_exporter.args""#), "flags survive upgrades");
}

/// The wrapper `brew services` runs, as the formula writes it, with `opt_bin` and `etc`
/// pointing at `bin_dir` and `etc_dir`.
fn homebrew_wrapper(bin_dir: &Path, etc_dir: &Path) -> String {
    let formula = read(FORMULA);
    let start = formula.find("(bin/\"libproc_exporter_brew_services\").write <<~EOS\n").unwrap();
    let body = &formula[start..];
    let body = &body[body.find('\n').unwrap() + 1..body.find("\n    EOS").unwrap()];
    let script: String = body.lines().map(|l| format!("{}\n", l.trim_start())).collect();
    script
        .replace("#{opt_bin}", bin_dir.to_str().unwrap())
        .replace("#{etc}", etc_dir.to_str().unwrap())
}

#[test]
fn homebrew_service_command_line_reads_its_flags_from_the_args_file() {
    let dir = std::env::temp_dir().join(format!("libproc-brew-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = exporter_bin();
    let wrapper = dir.join("libproc_exporter_brew_services");
    std::fs::write(&wrapper, homebrew_wrapper(bin.parent().unwrap(), &dir)).unwrap();
    let args = dir.join("libproc_exporter.args");
    let run = |flags: &str| {
        std::fs::write(&args, flags).unwrap();
        Command::new("bash").arg(&wrapper).output().expect("run the wrapper")
    };

    // A sample args file, as a user would edit it, plus the dry run.
    let out = run(
        "--web.listen-address=127.0.0.1:10077\n--log.level=debug\n--collector.pgrp\n--check-config\n",
    );
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("configuration ok"), "{text}");
    // The file as `touch` leaves it: the defaults.
    assert!(run("--check-config").status.success());
    // A flag the binary does not know fails, so the wrapper really passes the file's flags.
    let out = run("--collector.nope\n--check-config\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("collector.nope"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A stand-in for Homebrew 6's `brew`, enough to run our install commands: tap trust as
/// https://docs.brew.sh/Tap-Trust describes it (docs/macos-road.md). A non-official tap's
/// formula loads only when the tap or that formula is trusted; `brew install OWNER/tap/NAME`
/// taps and trusts just that formula; `brew tap` of an untrusted tap is refused, as users
/// report. State lives in $STUB_BREW_DB (trusted, tapped, installed: one name a line).
const STUB_BREW: &str = r#"#!/bin/bash
db=$STUB_BREW_DB
touch "$db/trusted" "$db/tapped" "$db/installed"
echo "brew $*" >>"$db/calls"
has() { grep -qxF "$2" "$db/$1"; }
refuse() { echo "Error: Refusing to load formula $1 from untrusted tap ${1%/*}." >&2; exit 1; }
# A formula name as given -> its full name; an unknown short name fails.
resolve() {
    case "$1" in
        */*/*) echo "$1" ;;
        libproc_exporter)
            local tap
            tap=$(head -n 1 "$db/tapped")
            [ -n "$tap" ] || { echo "Error: No available formula with the name \"$1\"." >&2; exit 1; }
            echo "$tap/$1" ;;
        *) echo "Error: No available formula with the name \"$1\"." >&2; exit 1 ;;
    esac
}
trusted() { has trusted "$1" || has trusted "${1%/*}"; }
case "$1" in
    tap)
        has trusted "$2" || grep -q "^$2/" "$db/trusted" || refuse "$2/*"
        has tapped "$2" || echo "$2" >>"$db/tapped" ;;
    trust)
        shift
        [ "$1" = --formula ] || [ "$1" = --tap ] && shift
        echo "$1" >>"$db/trusted" ;;
    install)
        shift
        [ "$1" = --HEAD ] && shift
        case "$1" in
            */*/*)
                has tapped "${1%/*}" || echo "${1%/*}" >>"$db/tapped"
                has trusted "$1" || echo "$1" >>"$db/trusted" ;;
        esac
        full=$(resolve "$1") || exit 1
        trusted "$full" || refuse "$full"
        has installed "$full" || echo "$full" >>"$db/installed" ;;
    services)
        [ "$2" = start ] || exit 64
        full=$(resolve "$3") || exit 1
        trusted "$full" || refuse "$full"
        has installed "$full" || { echo "Error: Formula \`$3\` is not installed." >&2; exit 1; } ;;
    *) exit 64 ;;
esac
"#;

/// Runs `commands` (shell lines) with the stub `brew` and a `curl` that answers like a running
/// exporter first on PATH, in a fresh Homebrew state; returns (success, output).
fn with_stub_brew(commands: &str) -> (bool, String) {
    let dir = TempDir::new("stub_brew");
    let search = stub_path(
        &dir.0,
        &[
            ("brew", STUB_BREW),
            ("curl", "#!/bin/sh\necho 'libproc_processes{state=\"alive\"} 412'\n"),
        ],
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{commands}"))
        .env("PATH", search)
        .env("STUB_BREW_DB", &dir.0)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The README's Homebrew commands: the first `sh` block under "macOS with Homebrew".
fn readme_homebrew_commands() -> String {
    let readme = read("README.md");
    let section = &readme[readme.find("### macOS with Homebrew").expect("the Homebrew section")..];
    let block = &section[section.find("```sh\n").expect("a sh block") + 6..];
    block[..block.find("```").unwrap()].replace("OWNER", "acme")
}

/// The commands in the formula's header comment (`#   brew ...`).
fn formula_comment_commands() -> String {
    let commands: Vec<String> = read(FORMULA)
        .lines()
        .filter_map(|l| l.strip_prefix("#   brew "))
        .map(|l| format!("brew {}\n", l.replace("OWNER", "acme")))
        .collect();
    assert!(commands.len() >= 2, "the formula's comment shows how to install it");
    commands.concat()
}

#[test]
fn homebrew_install_commands_work_under_homebrew_6_tap_trust() {
    // The stub refuses what Homebrew 6 refuses: the commands these files gave before.
    let (ok, out) = with_stub_brew(
        "brew tap acme/tap\nbrew install --HEAD libproc_exporter\nbrew services start libproc_exporter\n",
    );
    assert!(!ok, "tap then short-name install must fail under tap trust:\n{out}");
    assert!(out.contains("untrusted tap"), "{out}");
    let (ok, out) = with_stub_brew("brew install --HEAD libproc_exporter\n");
    assert!(!ok, "{out}");

    // What the README and the formula say works, as given, on a fresh machine.
    let readme = readme_homebrew_commands();
    let (ok, out) = with_stub_brew(&readme);
    assert!(ok, "the README's Homebrew commands fail under tap trust:\n{readme}\n{out}");
    assert!(out.contains("libproc_processes"), "{out}");
    let comment = formula_comment_commands();
    let (ok, out) = with_stub_brew(&comment);
    assert!(ok, "the formula comment's commands fail under tap trust:\n{comment}\n{out}");
    // And the repair the README offers to someone who tapped first.
    let (ok, out) = with_stub_brew(
        "brew trust --formula acme/tap/libproc_exporter\nbrew tap acme/tap\n\
         brew install --HEAD libproc_exporter\nbrew services start libproc_exporter\n",
    );
    assert!(ok, "{out}");
}
