#!/usr/bin/env bash
# Links real Mach-O binaries for both macOS architectures with cargo-zigbuild (zig as the
# linker, from the `ziglang` PyPI package) and checks that each one imports `___proc_info`
# from libSystem: the proof, short of a Mac, that the binding links against the real call.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-zigbuild >/dev/null || { echo "cargo-zigbuild missing: cargo install --locked cargo-zigbuild (or scripts/setup.sh)" >&2; exit 1; }
command -v llvm-nm >/dev/null || { echo "llvm-nm missing: apt-get install llvm (or scripts/setup.sh)" >&2; exit 1; }

for target in aarch64-apple-darwin x86_64-apple-darwin; do
    echo "==> cargo zigbuild --release --target $target"
    cargo zigbuild --quiet --release --locked --target "$target"
    bin="target/$target/release/libproc_exporter"
    # Mach-O 64-bit magic, little-endian: cf fa ed fe.
    magic=$(od -An -tx1 -N4 "$bin" | tr -d ' \n')
    if [ "$magic" != "cffaedfe" ]; then
        echo "$bin is not a 64-bit Mach-O binary (magic $magic)" >&2
        exit 1
    fi
    if ! llvm-nm -u "$bin" | grep -qx '___proc_info'; then
        echo "$bin does not import ___proc_info; undefined symbols were:" >&2
        llvm-nm -u "$bin" | head -50 >&2
        exit 1
    fi
    echo "    $bin: Mach-O, imports ___proc_info"
done
