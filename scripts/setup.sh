#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine, skipping whatever is already there,
# so a second run costs a few seconds. Run as root (CI and the dev machines are root).
#
#   rustup targets   aarch64-apple-darwin, x86_64-apple-darwin   (clippy + zigbuild for macOS)
#                    ARCH-unknown-linux-musl                      (the container's static binary)
#   zig              from the `ziglang` PyPI package              (cargo-zigbuild's linker)
#   cargo-zigbuild   from crates.io                               (links real Mach-O binaries)
#   llvm-nm          Debian's llvm                                 (checks the ___proc_info import)
#   prometheus       Debian's package: promtool + a real server   (golden file, rules, e2e)
#   ruby, shellcheck, wrk, curl, openssl, procps                  (deploy scripts, load, TLS)
#   git, tar                                                      (deploy/release.sh's test)
#   zizmor           from PyPI, pinned                            (lints .github/workflows)
#   node, npm        Debian's; then dashboards/schema's packages   (the dashboards against
#                    (@grafana/schema, typescript; npm ci)          Grafana's published model)
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
have promtool || need_apt+=(prometheus)
have prometheus || need_apt+=(prometheus)
have shellcheck || need_apt+=(shellcheck)
have ruby || need_apt+=(ruby)
have wrk || need_apt+=(wrk)
have curl || need_apt+=(curl)
have openssl || need_apt+=(openssl)
have pgrep || need_apt+=(procps)
have llvm-nm || need_apt+=(llvm)
have systemd-analyze || need_apt+=(systemd)
have git || need_apt+=(git)
have tar || need_apt+=(tar)
have node || need_apt+=(nodejs)
have npm || need_apt+=(npm)
if ((${#need_apt[@]})); then
    echo "setup: apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # --no-install-recommends: prometheus recommends a web stack we do not need.
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The macOS targets for clippy and the link check; musl for the container image's static binary.
for target in aarch64-apple-darwin x86_64-apple-darwin "$(uname -m)-unknown-linux-musl"; do
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
done

python3 -m ziglang version >/dev/null 2>&1 || python3 -m pip install --quiet ziglang
have cargo-zigbuild || cargo install --quiet --locked cargo-zigbuild
# Pinned: a new zizmor release may add audits, which should arrive as a deliberate change.
ZIZMOR_VERSION=1.32.0
[[ "$(zizmor --version 2>/dev/null)" == "zizmor $ZIZMOR_VERSION" ]] ||
    python3 -m pip install --quiet "zizmor==$ZIZMOR_VERSION"
# Grafana's published dashboard model and the compiler that checks dashboards/*.json against
# it (tests/deploy/dashboard.rs), pinned by dashboards/schema/package-lock.json. `npm ls`
# fails when what is installed does not match it.
schema="$(cd "$(dirname "$0")/.." && pwd)/dashboards/schema"
npm ls --prefix "$schema" >/dev/null 2>&1 ||
    npm ci --prefix "$schema" --no-audit --no-fund --silent
echo "setup: all test tools present"
