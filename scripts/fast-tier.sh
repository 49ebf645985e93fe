#!/usr/bin/env bash
# The fast tier: `cargo test` on a machine that has only the Rust toolchain, a C compiler, `ps`,
# `pgrep` and the base system (a shell and the POSIX utilities). Tests that need anything else
# (promtool, prometheus, wrk, ruby, python3, shellcheck, systemd-analyze, openssl, root) or that
# run for a minute are `#[ignore = "needs ..."]`; scripts/test.sh runs them too with
# `--include-ignored`. This script proves the tier holds: PATH is a scratch directory of links
# to exactly those tools, so a test that reaches for another one fails here (require_tool
# panics) instead of passing on a developer's well-stocked machine.
#
# Usage: scripts/fast-tier.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(mktemp -d "${TMPDIR:-/tmp}/fast-tier.XXXXXX")
# Readable by all: with --include-ignored as root, tests run tools under uid nobody.
chmod 755 "$bin"
trap 'rm -rf "$bin"' EXIT

# The real toolchain binaries, not rustup's proxies: a proxy puts ~/.cargo/bin (cargo-installed
# tools) back on the children's PATH.
toolchain() {
    if command -v rustup >/dev/null; then rustup which "$1"; else command -v "$1"; fi
}
for tool in cargo rustc; do
    ln -s "$(toolchain "$tool")" "$bin/$tool"
done

link() {
    local tool path
    for tool in "$@"; do
        # type -P, not command -v: for a shell builtin (true, echo, kill...) command -v prints
        # the bare name, which made a dangling link, and a test spawning `true` failed here.
        path=$(type -P "$tool") || { echo "fast-tier: $tool is not installed" >&2; exit 1; }
        ln -s "$path" "$bin/$tool"
    done
}
# The C compiler and what it drives.
link cc ld as ar
# The two tools the tests compare the exporter against.
link ps pgrep
# The base system: a shell and POSIX utilities, on every Linux and macOS.
link sh bash env sleep cat cp mv rm mkdir rmdir ln ls chmod id uname date head tail tr sed \
    awk grep find sort uniq wc cut dirname basename mktemp touch true false kill printf echo \
    xargs tee readlink install
if [ "$(uname -s)" = Linux ]; then
    # util-linux, essential on every Linux distribution: the process-tree tests use it to give
    # grandchildren a parent-death signal.
    link setpriv
else
    # macOS has no /proc: the tests count another process's descriptors with lsof.
    link lsof
fi

start=$SECONDS
PATH="$bin" cargo test --locked --lib --bins --tests "$@"
echo "fast tier: $((SECONDS - start)) s (the goal is under 120 s with the target built)"
