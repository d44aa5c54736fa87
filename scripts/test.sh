#!/usr/bin/env bash
# The test entry point: installs what the tests need and a fresh Debian
# machine may lack, then runs the whole suite (cargo test --workspace).
#
#   scripts/test.sh                          # everything
#   scripts/test.sh -p ringway --test tls    # extra arguments go to cargo test
#   scripts/test.sh -- --nocapture
#
# Runs from any directory. Installs with apt-get as root, through sudo
# otherwise; installs nothing when nothing is missing, so a second run only
# runs the tests. .ci/run calls this after its format and lint checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# ---------------------------------------------------------------------------
# What the tests need. Add new needs here, and nowhere else.
#
# System tools: "command:debian-package". The package is installed when the
# command is not found on PATH.
SYSTEM_DEPS=(
    "cc:build-essential"      # C compiler and linker: aws-lc-rs, ring and mimalloc build C
    "curl:curl"               # TLS tests: a real HTTPS client against the gateway
    "openssl:openssl"         # TLS tests: openssl s_client (SNI, ALPN, verification)
    "taskset:util-linux"      # lifecycle test: CPU pinning from outside
    "kill:procps"             # the tests signal the gateway with kill(1)
    "python3:python3"         # Python clients and helpers
    "node:nodejs"             # a Node.js origin server
    "promtool:prometheus"     # metrics output checked with promtool check metrics
    "chromium:chromium"       # the status page rendered, and CORS judged, by a headless browser
)
# Python packages: "module:pip-requirement", installed with pip into a
# virtualenv at $TEST_VENV (Debian's own python3 refuses pip installs), whose
# bin/ then comes first on PATH, so the tests' `python3` sees them. The
# requirement is installed when the module does not import.
PYTHON_DEPS=(
    "openai:openai"           # AI gateway: the official OpenAI SDK (engine/tests/ai_sdk.py)
    "anthropic:anthropic"     # AI gateway: the official Anthropic SDK against /v1/messages
    # "websockets:websockets"
)
TEST_VENV="${TEST_VENV:-${CARGO_TARGET_DIR:-$PWD/target}/test-venv}"
# ---------------------------------------------------------------------------

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 1; }
# An executable on PATH (not a shell builtin: the tests run kill(1) itself).
have() { type -P "$1" >/dev/null 2>&1; }

# apt-get update once, then install the given Debian packages: directly as
# root, else through sudo. Without either, fails naming what is missing.
apt_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        have sudo || die "missing: $WHAT_FOR; not root and no sudo to install them with (as root: apt-get install $*)"
        sudo=(sudo)
    fi
    have apt-get || die "missing: $WHAT_FOR; no apt-get to install them with (Debian packages: $*)"
    log "installing $* (missing: $WHAT_FOR)"
    if [ -z "${APT_UPDATED:-}" ]; then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q \
            || log "apt-get update failed; installing from the package lists there are"
        APT_UPDATED=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

install_system_deps() {
    local entry cmd pkg missing_pkgs=() missing_cmds=()
    for entry in "${SYSTEM_DEPS[@]}"; do
        cmd="${entry%%:*}"
        pkg="${entry#*:}"
        have "$cmd" && continue
        if [ "$cmd" = "$pkg" ]; then missing_cmds+=("$cmd"); else missing_cmds+=("$cmd ($pkg)"); fi
        # One package may provide several commands.
        [[ " ${missing_pkgs[*]} " == *" $pkg "* ]] || missing_pkgs+=("$pkg")
    done
    [ "${#missing_pkgs[@]}" -eq 0 ] && return 0
    WHAT_FOR="$(printf '%s, ' "${missing_cmds[@]}")"
    WHAT_FOR="${WHAT_FOR%, }"
    apt_install "${missing_pkgs[@]}"
    for entry in "${SYSTEM_DEPS[@]}"; do
        have "${entry%%:*}" || die "still missing after installing ${entry#*:}: ${entry%%:*}"
    done
}

install_python_deps() {
    [ "${#PYTHON_DEPS[@]}" -eq 0 ] && return 0
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        WHAT_FOR="python3 -m venv (python3-venv)"
        apt_install python3-venv
    fi
    if [ ! -x "$TEST_VENV/bin/python3" ]; then
        log "creating a virtualenv for the tests' Python packages: $TEST_VENV"
        python3 -m venv "$TEST_VENV"
    fi
    local entry reqs=()
    for entry in "${PYTHON_DEPS[@]}"; do
        "$TEST_VENV/bin/python3" -c "import ${entry%%:*}" >/dev/null 2>&1 \
            || reqs+=("${entry#*:}")
    done
    if [ "${#reqs[@]}" -gt 0 ]; then
        log "pip install ${reqs[*]} (into $TEST_VENV)"
        "$TEST_VENV/bin/python3" -m pip install -q "${reqs[@]}"
    fi
    export PATH="$TEST_VENV/bin:$PATH"
}

have cargo || die "cargo not found: install Rust (https://rustup.rs), then run this again"
install_system_deps
install_python_deps

log "cargo test --workspace${*:+ $*}"
exec cargo test --workspace "$@"
