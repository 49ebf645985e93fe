#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time each (default 60 s; the first
# argument or FUZZ_SECONDS overrides it) and fails on the first crash. Installs cargo-fuzz
# when it is missing.
#
#   scripts/fuzz.sh            # every target, 60 s each
#   scripts/fuzz.sh 10         # every target, 10 s each
#   scripts/fuzz.sh 300 web_config authorization
#
# Targets are built the cargo-fuzz default way: optimised, with debug assertions and
# overflow checks (which --release would turn off) and AddressSanitizer.
# Only stable Rust is installed here; cargo fuzz needs nightly flags (-Zsanitizer), which
# RUSTC_BOOTSTRAP=1 unlocks on a stable compiler. Seeds: fuzz/seeds/<target>/, or the test
# fixtures for snapshot files and web configs; what the fuzzer finds goes to fuzz/corpus/
# (ignored by git), a crash to fuzz/artifacts/<target>/. The first build of the fuzz
# workspace (sanitizer flags, every dependency) takes about 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-${FUZZ_SECONDS:-60}}"
shift || true
case "$seconds" in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;; esac

command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1

if (($#)); then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi

cargo fuzz build
summary=()
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    # Seeds: fuzz/seeds/<target>/, and the test fixtures for the file formats. New inputs
    # are written to the first folder only.
    seeds=("fuzz/seeds/$target")
    case "$target" in
        snapshot) seeds=(tests/fixtures/snapshots) ;;
        web_config) seeds=(tests/fixtures/web) ;;
    esac
    echo "==> fuzzing $target for ${seconds}s"
    log="fuzz/corpus/$target.log"
    if ! cargo fuzz run "$target" "fuzz/corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1)
    summary+=("$target: ${runs:-?}")
    echo "    $target: ${runs:-finished}"
done
echo "fuzz: no crash"
printf '  %s\n' "${summary[@]}"
