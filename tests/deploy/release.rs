//! The release tarballs and the tap's formula that deploy/release.sh writes.

use super::*;

/// Stands in for `cargo zigbuild`: puts this test build's binary where the real build would
/// put each target's (a universal binary is a file starting with the Mach-O fat magic).
const STUB_CARGO: &str = r#"#!/bin/bash
set -euo pipefail
[[ "$1" == zigbuild ]] || { echo "stub cargo: only zigbuild, got $*" >&2; exit 1; }
while (($#)); do
    if [[ "$1" == --target ]]; then target=$2; fi
    shift
done
dir=$CARGO_TARGET_DIR/${target%.2.17}/release
mkdir -p "$dir"
if [[ "$target" == universal2-apple-darwin ]]; then
    printf '\xca\xfe\xba\xbe' >"$dir/libproc_exporter"
    for slice in aarch64-apple-darwin x86_64-apple-darwin; do
        mkdir -p "$CARGO_TARGET_DIR/$slice/release"
        echo "$slice" >"$CARGO_TARGET_DIR/$slice/release/libproc_exporter"
    done
else
    echo "$target" >"$dir/libproc_exporter"
fi
"#;

#[test]
#[ignore = "needs git (scripts/setup.sh installs it)"]
fn release_tarballs_are_named_like_prometheus_releases_and_carry_the_license() {
    let dir = TempDir::new("release");
    let search = stub_path(
        &dir.0,
        &[
            ("cargo", STUB_CARGO),
            ("cargo-zigbuild", "#!/bin/sh\nexit 0\n"),
            ("rustup", "#!/bin/sh\nexit 0\n"),
            ("llvm-nm", "#!/bin/sh\necho '                 U ___proc_info'\n"),
        ],
    );
    let dist = dir.0.join("dist");
    run_ok(
        Command::new("bash")
            .arg(path("deploy/release.sh"))
            .arg("--out")
            .arg(&dist)
            .env("PATH", search)
            .env("CARGO_TARGET_DIR", dir.0.join("target")),
    );

    let version = env!("CARGO_PKG_VERSION");
    let platforms =
        ["darwin-universal", "darwin-arm64", "darwin-amd64", "linux-amd64", "linux-arm64"];
    let mut expected: Vec<String> =
        platforms.iter().map(|p| format!("libproc_exporter-{version}.{p}.tar.gz")).collect();
    expected.push(format!("libproc_exporter-{version}.src.tar.gz"));
    let sums = std::fs::read_to_string(dist.join("sha256sums.txt")).unwrap();
    let mut summed: Vec<&str> = sums.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
    summed.sort_unstable();
    let mut want: Vec<&str> = expected.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(summed, want, "sha256sums.txt lists every tarball by its release name");
    run_ok(Command::new("sha256sum").arg("-c").arg("sha256sums.txt").current_dir(&dist));

    for platform in platforms {
        let name = format!("libproc_exporter-{version}.{platform}");
        let listing =
            run_ok(Command::new("tar").arg("-tzf").arg(dist.join(format!("{name}.tar.gz"))));
        let listing = String::from_utf8_lossy(&listing.stdout);
        for file in ["libproc_exporter", "LICENSE", "README.md", "dashboards/libproc_exporter.json"]
        {
            assert!(
                listing.lines().any(|l| l == format!("{name}/{file}")),
                "{name}: no {file} in\n{listing}"
            );
        }
    }
    let formula = std::fs::read_to_string(dist.join("libproc_exporter.rb")).unwrap();
    assert!(
        formula.contains(&format!("/v{version}/libproc_exporter-{version}.src.tar.gz\"")),
        "{formula}"
    );
}
