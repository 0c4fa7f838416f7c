#!/usr/bin/env bash
# Install bun, the JavaScript runtime Reflex builds its frontend with, from the npm
# registry; print the path of the bun binary on stdout.
#
#   scripts/install-bun.sh DIR      e.g. scripts/install-bun.sh .tools/bun
#
# One install step for every place that needs bun: scripts/bootstrap.sh (make run,
# make test) and the Dockerfile's build stage. Reflex cannot download bun itself
# where only package registries are reachable, so bun comes as the npm package
# @oven/bun-linux-<cpu> (a prebuilt binary), installed with `npm --prefix DIR`.
# Nothing is downloaded when DIR already holds the pinned version.
#
# Needs npm (Debian's `npm` package is enough). The registry is npm's own setting:
# NPM_CONFIG_REGISTRY, or .npmrc, or the public registry. Quiet unless it fails.
set -euo pipefail

BUN_VERSION="1.4.4"

say() { printf 'install-bun: %s\n' "$*" >&2; }

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
    say "usage: install-bun.sh DIR"
    exit 2
fi
mkdir -p "$1"
prefix="$(cd "$1" && pwd)"

# The CPU decides the build; "baseline" x64 builds run on CPUs without AVX2.
case "$(uname -m)" in
    x86_64 | amd64)
        if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
            package="@oven/bun-linux-x64"
        else
            package="@oven/bun-linux-x64-baseline"
        fi ;;
    aarch64 | arm64) package="@oven/bun-linux-aarch64" ;;
    *) say "unsupported CPU $(uname -m) for bun"; exit 1 ;;
esac
bun="$prefix/node_modules/$package/bin/bun"

if [ "$("$bun" --version 2>/dev/null)" != "$BUN_VERSION" ]; then
    command -v npm >/dev/null 2>&1 || { say "npm is required to install bun"; exit 1; }
    say "installing bun $BUN_VERSION ($package) from ${NPM_CONFIG_REGISTRY:-the npm registry}..."
    log="$(mktemp "${TMPDIR:-/tmp}/install-bun.XXXXXX")"
    if ! npm install --no-save --no-audit --no-fund --loglevel=error \
        --prefix "$prefix" "$package@$BUN_VERSION" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        say "FAILED: npm install $package@$BUN_VERSION"
        exit 1
    fi
    rm -f "$log"
    if [ "$("$bun" --version 2>/dev/null)" != "$BUN_VERSION" ]; then
        say "bun at $bun does not run"
        exit 1
    fi
fi

printf '%s\n' "$bun"
