#!/bin/bash
# Builds the release artifacts into dist/, named as every Prometheus exporter names them
# (promu's NAME-VERSION.OS-ARCH.tar.gz, Go's arch names):
#
#   libproc_exporter-<version>.darwin-universal.tar.gz   one binary for arm64 and x86_64 Macs
#   libproc_exporter-<version>.darwin-arm64.tar.gz       Apple silicon
#   libproc_exporter-<version>.darwin-amd64.tar.gz       Intel Macs
#   libproc_exporter-<version>.linux-<amd64|arm64>.tar.gz  Linux (glibc 2.17 and later)
#   libproc_exporter-<version>.src.tar.gz                the source, for the Homebrew formula
#   sha256sums.txt                                       checksums of all of them
#   libproc_exporter.rb                                  the formula with url and sha256 filled in
#
# Each binary tarball holds the binary, LICENSE, README.md, the dashboard and deploy/
# (launchd, Homebrew, systemd, Prometheus rules), under libproc_exporter-<version>.<os>-<arch>/.
#
# Cross-links from Linux or macOS with cargo-zigbuild (cargo install cargo-zigbuild; zig from
# `pip install ziglang` or a package manager). scripts/setup.sh installs both.
#
#   deploy/release.sh [--out DIR] [--linux "x86_64 aarch64"] [--no-macos]
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/dist"
linux_arches="x86_64 aarch64"
macos=1
# The GitHub repository the formula downloads the source tarball from.
release_base=${RELEASE_BASE_URL:-https://github.com/libproc-exporter/libproc_exporter/releases/download}

die() {
    echo "release.sh: $*" >&2
    exit 1
}

while (($#)); do
    case "$1" in
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --linux) linux_arches=${2-}; shift 2 ;;
        --no-macos) macos=0; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1" ;;
    esac
done

cd "$repo"
target_dir=${CARGO_TARGET_DIR:-target}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[[ -n "$version" ]] || die "no version in Cargo.toml"
command -v cargo-zigbuild >/dev/null || die "cargo-zigbuild is missing: cargo install --locked cargo-zigbuild"

sha256() {
    if command -v sha256sum >/dev/null; then
        sha256sum "$@"
    else
        shasum -a 256 "$@"
    fi
}

# Mach-O universal ("fat") files start with 0xcafebabe.
is_universal() {
    [[ "$(od -An -tx1 -N4 "$1" | tr -d ' \n')" == cafebabe ]]
}

# package BINARY PLATFORM: the tarball and its checksum.
package() {
    local binary=$1 platform=$2
    local name="libproc_exporter-$version.$platform"
    local stage="$out/.stage/$name"
    rm -rf "$stage"
    mkdir -p "$stage/dashboards" "$stage/deploy"
    install -m 0755 "$binary" "$stage/libproc_exporter"
    cp README.md LICENSE "$stage/"
    cp dashboards/libproc_exporter.json dashboards/README.md "$stage/dashboards/"
    cp -R deploy/launchd deploy/homebrew deploy/systemd deploy/prometheus "$stage/deploy/"
    tar -C "$out/.stage" -czf "$out/$name.tar.gz" "$name"
    echo "built $out/$name.tar.gz"
}

mkdir -p "$out"
out=$(cd "$out" && pwd)
# Only what this script writes: --out may name a folder that holds other things.
rm -rf "$out/.stage"
rm -f "$out"/libproc_exporter-* "$out/libproc_exporter.rb" "$out/sha256sums.txt"
[[ -f LICENSE ]] || die "no LICENSE in $repo"

if ((macos)); then
    rustup target add aarch64-apple-darwin x86_64-apple-darwin
    # universal2-apple-darwin builds both slices and joins them with a lipo written in Rust.
    cargo zigbuild --release --locked --target universal2-apple-darwin
    bin=$target_dir/universal2-apple-darwin/release/libproc_exporter
    is_universal "$bin" || die "$bin is not a universal binary"
    if command -v llvm-nm >/dev/null; then
        for arch in arm64 x86_64; do
            llvm-nm -u --arch="$arch" "$bin" | grep -q '___proc_info' ||
                die "the $arch slice does not import ___proc_info"
        done
    fi
    package "$bin" darwin-universal
    # The two slices the universal binary was joined from.
    package "$target_dir/aarch64-apple-darwin/release/libproc_exporter" darwin-arm64
    package "$target_dir/x86_64-apple-darwin/release/libproc_exporter" darwin-amd64
fi

# Go's names for the architectures, which every Prometheus release uses.
goarch() {
    case "$1" in
        x86_64) echo amd64 ;;
        aarch64) echo arm64 ;;
        *) die "no release name for architecture $1" ;;
    esac
}

for arch in $linux_arches; do
    target="$arch-unknown-linux-gnu"
    rustup target add "$target"
    # The .2.17 suffix makes zig link against glibc 2.17 (CentOS 7 and every distribution since).
    cargo zigbuild --release --locked --target "$target.2.17"
    package "$target_dir/$target/release/libproc_exporter" "linux-$(goarch "$arch")"
done

# The source tarball the formula builds from: git archive of HEAD, so it is reproducible.
src="libproc_exporter-$version.src.tar.gz"
git archive --format=tar.gz --prefix="libproc_exporter-$version/" -o "$out/$src" HEAD
src_sha=$(cd "$out" && sha256 "$src" | cut -d ' ' -f 1)

# The formula in the repository has no stable url (no release existed to point at); the
# tap's copy gets this release's source tarball and checksum after the homepage line.
awk -v url="$release_base/v$version/$src" -v sha="$src_sha" '
    { print }
    /^  homepage / { print "  url \"" url "\""; print "  sha256 \"" sha "\"" }
' deploy/homebrew/libproc_exporter.rb >"$out/libproc_exporter.rb"
grep -q "$src_sha" "$out/libproc_exporter.rb" || die "could not fill in the formula"

rm -rf "$out/.stage"
(cd "$out" && sha256 ./*.tar.gz | sed 's# \./# #' >sha256sums.txt && sha256 -c sha256sums.txt)
echo "release $version in $out:"
ls -l "$out"
