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
