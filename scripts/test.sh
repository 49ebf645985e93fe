#!/usr/bin/env bash
# Every check, as CI runs it: formatting, lints for Linux and both macOS targets, docs, all
# tests (unit, integration against real processes, SimKernel, a real Prometheus server and
# promtool), the macOS link check, and a short fuzzing run.
# Missing tools are installed first by scripts/setup.sh (Debian, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (Linux)"
cargo clippy --quiet --locked --all-targets -- -D warnings
# rustls's ring compiles C for the target, so the macOS lints go through zig's C compiler.
for target in aarch64-apple-darwin x86_64-apple-darwin; do
    step "cargo clippy --target $target"
    cargo-zigbuild clippy --quiet --locked --all-targets --target "$target" -- -D warnings
done

# Nothing here runs the macOS workflow, so it is linted here: no zizmor finding above low
# (tests/workflows.rs checks its runner labels against .github/runner-labels.tsv).
step "zizmor .github/workflows"
zizmor --offline --min-severity medium .github/workflows/

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --locked --no-deps

step "macOS binaries link and import ___proc_info"
bash scripts/check-macos.sh

# The container image is one static binary on an empty base; tests/container.rs runs this
# build of it in an empty root (a debug build: the test checks behaviour, not speed).
step "static Linux binary for the container image"
cargo-zigbuild build --quiet --locked --target "$(uname -m)-unknown-linux-musl"

# Building the fuzz targets with sanitizers takes about 10 minutes on 2 cores, so a full
# fuzzing run (scripts/fuzz.sh, 60 s per target) is its own command; here the targets must
# compile, and FUZZ_SECONDS=N runs them for N seconds each as well.
step "fuzz targets compile"
cargo check --quiet --manifest-path fuzz/Cargo.toml --bins
if [ -n "${FUZZ_SECONDS:-}" ]; then
    step "fuzzing (${FUZZ_SECONDS} s per target)"
    bash scripts/fuzz.sh "$FUZZ_SECONDS"
fi

step "fast tier: cargo test with only Rust, a C compiler, ps and pgrep on PATH"
bash scripts/fast-tier.sh

step "cargo test, the ignored tests included (promtool, prometheus, wrk, openssl, root...)"
# --lib --bins --tests: there are no doctests, and the run should close on the integration
# tests' own summary rather than an empty doctest line.
cargo test --locked --lib --bins --tests -- --include-ignored
