#!/usr/bin/env bash
# Bootstrap the local toolchain; idempotent and quick when everything is there.
#
#   source scripts/bootstrap.sh [--dev]   # sets up and exports the environment
#   scripts/bootstrap.sh [--dev]          # only sets up
#
# - .venv (python3) with requirements.txt, or requirements-dev.txt with --dev;
#   pip runs only when the requirements changed since the last install
#   (a hash is kept in .stamps/).
# - bun for Reflex from the npm registry into .tools/bun (Reflex cannot download it here),
#   by scripts/install-bun.sh, which the Dockerfile runs too.
# - with --dev: Debian's Chromium at /usr/bin/chromium for the browser tests, zbarimg
#   (zbar-tools) to read the profile's QR code back from a screenshot, nginx and
#   PgBouncer for the scale-out tests, checkov (in .tools/checkov) for the manifests, and
#   newman (the Postman collection runner) from the npm registry into .tools/newman.
# Exports: VIRTUAL_ENV, PATH, REFLEX_BUN_PATH, NPM_CONFIG_REGISTRY,
# REFLEX_TELEMETRY_ENABLED=false; with --dev also CHROMIUM_PATH, NEWMAN_BIN and CHECKOV_BIN.
# Quiet unless something fails.

_bs_say() { printf 'bootstrap: %s\n' "$*" >&2; }

# Run a command quietly; on failure show its output and return its exit code.
_bs_quiet() {
    local log rc=0
    log="$(mktemp "${TMPDIR:-/tmp}/bootstrap.XXXXXX")"
    "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$log" >&2
        _bs_say "FAILED ($rc): $*"
    fi
    rm -f "$log"
    return "$rc"
}

_bs_hash() { cat "$@" | sha256sum | cut -d' ' -f1; }

# Install Debian packages with apt-get: as root, or through sudo; otherwise say what to run.
_bs_apt() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
            _bs_say "missing: $*; run as root: apt-get install -y $*"
            return 1
        fi
    fi
    _bs_say "installing $* with apt-get..."
    _bs_quiet $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
    _bs_quiet $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

_bs_main() {
    local dev=0 arg
    for arg in "$@"; do
        case "$arg" in
            --dev) dev=1 ;;
            *) _bs_say "unknown argument: $arg (usage: bootstrap.sh [--dev])"; return 2 ;;
        esac
    done

    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1
    local venv="$root/.venv" stamps="$root/.stamps"
    mkdir -p "$stamps" || return 1

    # One bootstrap at a time (e.g. `make run` and `make test` started together);
    # the lock's file descriptor exists only while _bs_setup runs.
    _bs_setup "$root" "$dev" 9>"$stamps/bootstrap.lock" || return 1

    # Environment for reflex, pytest and Playwright.
    export VIRTUAL_ENV="$venv"
    case ":$PATH:" in
        *":$venv/bin:"*) ;;
        *) export PATH="$venv/bin:$PATH" ;;
    esac
    export REFLEX_BUN_PATH="$_BS_BUN"
    export REFLEX_TELEMETRY_ENABLED=false
    export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
    if [ "$dev" -eq 1 ]; then
        export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
        export NEWMAN_BIN="$root/.tools/newman/node_modules/.bin/newman"
        export CHECKOV_BIN="$root/.tools/checkov/bin/checkov"
    fi
    unset _BS_BUN
    return 0
}

_bs_setup() {
    local root="$1" dev="$2"
    local venv="$root/.venv" stamps="$root/.stamps"
    if command -v flock >/dev/null 2>&1; then
        flock 9 || return 1
    fi

    # 1. Virtualenv. A bare Debian lacks python3-venv (ensurepip): installed with apt-get.
    if ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
        _bs_say "creating .venv with $(command -v python3)"
        rm -rf "$venv"
        if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
            _bs_apt "python3-venv" || return 1
        fi
        _bs_quiet python3 -m venv "$venv" || return 1
        rm -f "$stamps"/pip-*.sha256
    fi

    # 2. Python packages, only when the requirements (or the interpreter) changed.
    #    requirements-dev.txt includes requirements.txt, so a dev install also
    #    satisfies the runtime stamp.
    local pyver runtime_hash dev_hash
    pyver="$("$venv/bin/python" -c 'import sys; print(sys.version)')" || return 1
    runtime_hash="$(_bs_hash "$root/requirements.txt" <(echo "$pyver"))" || return 1
    if [ "$dev" -eq 1 ]; then
        dev_hash="$(_bs_hash "$root/requirements-dev.txt" "$root/requirements.txt" <(echo "$pyver"))" || return 1
        if [ "$(cat "$stamps/pip-dev.sha256" 2>/dev/null)" != "$dev_hash" ]; then
            _bs_say "installing Python packages (requirements-dev.txt)..."
            _bs_quiet "$venv/bin/python" -m pip install --disable-pip-version-check \
                -r "$root/requirements-dev.txt" || return 1
            echo "$dev_hash" >"$stamps/pip-dev.sha256"
            echo "$runtime_hash" >"$stamps/pip-runtime.sha256"
        fi
    elif [ "$(cat "$stamps/pip-runtime.sha256" 2>/dev/null)" != "$runtime_hash" ]; then
        _bs_say "installing Python packages (requirements.txt)..."
        _bs_quiet "$venv/bin/python" -m pip install --disable-pip-version-check \
            -r "$root/requirements.txt" || return 1
        echo "$runtime_hash" >"$stamps/pip-runtime.sha256"
        rm -f "$stamps/pip-dev.sha256"
    fi

    # 3. bun, from the npm registry: the same script as the Dockerfile's build stage.
    #    npm (with the Node.js it runs on) comes from Debian when it is missing.
    if ! command -v npm >/dev/null 2>&1; then
        _bs_apt npm || return 1
    fi
    if [ -z "${NPM_CONFIG_REGISTRY:-}" ]; then
        NPM_CONFIG_REGISTRY="$(npm config get registry 2>/dev/null)" || NPM_CONFIG_REGISTRY=""
        [ -n "$NPM_CONFIG_REGISTRY" ] || NPM_CONFIG_REGISTRY="https://registry.npmjs.org/"
    fi
    export NPM_CONFIG_REGISTRY
    local bun
    bun="$(bash "$root/scripts/install-bun.sh" "$root/.tools/bun")" || return 1

    # 4. Debian packages for the tests: Chromium for the browser tests (never `playwright
    #    install`), zbarimg (zbar-tools) for the QR code test, nginx and PgBouncer for the
    #    scale-out tests (tests/e2e/test_scale_out.py).
    #    Only their programs are used; the tests start private instances (no service is
    #    enabled or started here).
    local missing=() package binary
    for package in chromium:/usr/bin/chromium zbar-tools:/usr/bin/zbarimg nginx:/usr/sbin/nginx pgbouncer:/usr/sbin/pgbouncer; do
        binary="${package#*:}"
        [ "$dev" -eq 1 ] && [ ! -x "$binary" ] && missing+=("${package%%:*}")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        _bs_apt "${missing[@]}" || return 1
    fi

    # 5. newman for the Postman collection test, from the npm registry.
    local newman_version="6.2.2" newman="$root/.tools/newman/node_modules/.bin/newman"
    if [ "$dev" -eq 1 ] && [ "$("$newman" --version 2>/dev/null)" != "$newman_version" ]; then
        _bs_say "installing newman $newman_version from $NPM_CONFIG_REGISTRY..."
        command -v npm >/dev/null 2>&1 || { _bs_say "npm is required to install newman"; return 1; }
        mkdir -p "$root/.tools/newman" || return 1
        _bs_quiet npm install --no-save --no-audit --no-fund --loglevel=error \
            --prefix "$root/.tools/newman" "newman@$newman_version" || return 1
        if [ "$("$newman" --version 2>/dev/null)" != "$newman_version" ]; then
            _bs_say "newman at $newman does not run"
            return 1
        fi
    fi

    # 6. checkov (the manifest scanner of tests/deploy/test_kubernetes.py) in a virtualenv
    #    of its own: it pins packaging<24, which Reflex and pytest cannot live with.
    local checkov_venv="$root/.tools/checkov" checkov_hash
    if [ "$dev" -eq 1 ]; then
        checkov_hash="$(_bs_hash "$root/requirements-checkov.txt" <(echo "$pyver"))" || return 1
        if [ "$(cat "$stamps/pip-checkov.sha256" 2>/dev/null)" != "$checkov_hash" ] \
            || [ ! -x "$checkov_venv/bin/checkov" ]; then
            _bs_say "installing checkov (requirements-checkov.txt) into .tools/checkov..."
            rm -rf "$checkov_venv"
            _bs_quiet python3 -m venv "$checkov_venv" || return 1
            _bs_quiet "$checkov_venv/bin/python" -m pip install --disable-pip-version-check \
                -r "$root/requirements-checkov.txt" || return 1
            echo "$checkov_hash" >"$stamps/pip-checkov.sha256"
        fi
    fi

    _BS_BUN="$bun"
    return 0
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    # Sourced: return the status to the caller instead of exiting its shell.
    _bs_main "$@"
    return $?
else
    set -uo pipefail
    _bs_main "$@"
    exit $?
fi
