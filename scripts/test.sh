#!/usr/bin/env bash
# Haven's whole test suite: formatting, lints, the dependency policy and
# every test.
#
# This is the command the README names and .ci/run calls. It installs what
# the suite needs when it is missing: the Rust toolchain's components
# (rustfmt, clippy; the toolchain itself is the one rust-toolchain.toml
# names, through rustup), cargo-deny, Debian's redis-server for the event
# tests (each test starts its own on a free port), chromium and Node for
# the browser tests, and the browser tests' npm packages (playwright-core,
# axe-core).
#
# Usage: scripts/test.sh            # everything
#        HAVEN_TEST_QUICK=1 scripts/test.sh   # skip fmt, clippy and cargo deny
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

need() {
    # need COMMAND DEBIAN-PACKAGE: installs the package when the command is missing.
    if ! command -v "$1" >/dev/null 2>&1; then
        step "installing $2"
        if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$2"
    fi
}

# The toolchain rust-toolchain.toml pins, through rustup: never a
# distribution's older cargo.
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v rustup >/dev/null 2>&1; then
    echo "Haven builds with the Rust toolchain in rust-toolchain.toml, through rustup;" >&2
    echo "install rustup (https://rustup.rs) and run this again." >&2
    exit 1
fi
need redis-server redis-server
need chromium chromium
need node nodejs
need npm npm
if ! cargo fmt --version >/dev/null 2>&1; then rustup component add rustfmt; fi
if ! cargo clippy --version >/dev/null 2>&1; then rustup component add clippy; fi


# Read once and unset: the servers the tests start read every HAVEN_*
# variable as configuration and refuse unknown ones.
QUICK=${HAVEN_TEST_QUICK:-}
unset HAVEN_TEST_QUICK

started=$(date +%s)
if [ -z "$QUICK" ]; then
    step "cargo fmt --check"
    cargo fmt --all --check

    step "cargo clippy -D warnings"
    cargo clippy --workspace --all-targets --locked -- -D warnings

    # cargo-deny, built once into target/tools (deny.toml says what passes).
    DENY_VERSION=0.20.2
    DENY=target/tools/bin/cargo-deny
    if ! "$DENY" --version 2>/dev/null | grep -q "$DENY_VERSION"; then
        step "installing cargo-deny $DENY_VERSION"
        cargo install --quiet --locked --root target/tools cargo-deny --version "$DENY_VERSION"
    fi
    step "cargo deny (licences, duplicate versions, sources, advisories)"
    "$DENY" --log-level error check bans licenses sources
    # The advisory database comes from GitHub; without it, say so and go on.
    if timeout 120 "$DENY" --log-level error fetch db >/dev/null 2>&1; then
        "$DENY" --log-level error --offline check advisories
    else
        echo "advisories: SKIPPED, the RustSec advisory database could not be fetched (no route to github.com)"
    fi
fi

step "cargo test"
cargo test --workspace --locked

step "browser tests (headless chromium)"
cargo build --locked -p haven-server
(
    cd web-widget/tests
    if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        npm ci --no-audit --no-fund
    fi
    WEBTEST_HAVEN="$PWD/../../target/debug/haven" npm test
)

step "all passed in $(( $(date +%s) - started ))s"
