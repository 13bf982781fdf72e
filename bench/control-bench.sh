#!/usr/bin/env bash
# Control-plane benchmark: tend as PID 1 of a fresh pid namespace supervising 100 idle
# services (`sleep 1000000`) with its control socket open. Measures the latency of a
# `status` request (a raw client that leaves process start out, and the `tend status --json`
# client binary, process spawn included) and tend's wake-ups while idle: with no client, and
# with one client that connects and never sends its request. Prints a Markdown table.
#
# Usage (as root):
#   bash bench/control-bench.sh [--tend PATH] [--build] [--idle-secs N] [--quick] [OUT_FILE]
#
# Environment (flags win):
#   TEND_BIN     tend binary; default target/x86_64-unknown-linux-gnu/release/tend, built
#                with `cargo build --release` if it does not exist (or always, with --build)
#   SERVICES     services tend supervises, default 100
#   REQUESTS     requests per client kind and CPU mode, default 1000
#   ROUNDS       ... split into this many rounds interleaved across kinds and modes, default 10
#   IDLE_SECS    idle observation window (twice: before and after the latency runs), default 20
#   HOLD_SECS    how long the silent client stays connected, default 20 (tend cuts it off at 5)
#   PIN_CPU      the CPU for the runs with client and tend on one CPU, default the last one
#   STAGES       (development) run only some of: idle latency hold
#
# --quick sets IDLE_SECS=3, HOLD_SECS=8, REQUESTS=200, ROUNDS=4 for a smoke test.
# The table goes to stdout (and to OUT_FILE if given); progress goes to stderr.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$BENCH_DIR")

die() {
    echo "control-bench: $*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit "${1:-0}"
}

parse_args() {
    OUT_FILE=""
    FORCE_BUILD=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --tend) TEND_BIN=${2:?--tend needs a path}; shift ;;
            --build) FORCE_BUILD=1 ;;
            --idle-secs) IDLE_SECS=${2:?--idle-secs needs a number}; shift ;;
            --quick) IDLE_SECS=3 HOLD_SECS=8 REQUESTS=200 ROUNDS=4 ;;
            -h|--help) usage 0 ;;
            -*) echo "unknown option $1" >&2; usage 2 ;;
            *) OUT_FILE=$1 ;;
        esac
        shift
    done
}

check_prerequisites() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (pid namespaces, /proc of other users)"
    local tool
    for tool in unshare gcc python3 sleep; do
        command -v "$tool" >/dev/null || die "missing required tool: $tool"
    done
}

resolve_tend() {
    TEND_BIN=${TEND_BIN:-$REPO_ROOT/target/x86_64-unknown-linux-gnu/release/tend}
    if [ ! -x "$TEND_BIN" ] || [ -n "$FORCE_BUILD" ]; then
        echo "control-bench: running cargo build --release" >&2
        (cd "$REPO_ROOT" && cargo build --release >&2) || die "cargo build --release failed"
    fi
    [ -x "$TEND_BIN" ] || die "tend binary not found at $TEND_BIN"
    TEND_BIN=$(realpath "$TEND_BIN")
}

# The client is compiled fresh into a temp dir, and tend is copied there: nothing is built
# inside the repository, and a rebuild of target/ during the run cannot change the binary
# being measured.
prepare() {
    WORK_DIR=$(mktemp -d /tmp/control-bench.XXXXXX)
    gcc -O2 -Wall -Wextra -o "$WORK_DIR/control-client" "$BENCH_DIR/control-client.c" ||
        die "compiling control-client.c failed"
    cp -p "$TEND_BIN" "$WORK_DIR/tend"
    export WORK_DIR CLIENT=$WORK_DIR/control-client TEND_SOURCE=$TEND_BIN TEND_BIN=$WORK_DIR/tend
}

cleanup() {
    if [ -n "${WORK_DIR:-}" ]; then
        rm -rf "$WORK_DIR"
    fi
}

# Not exec: the EXIT trap must still run. In the background with a trap, so that a
# SIGINT/SIGTERM sent to this script alone still reaches the harness, which then kills its
# namespace before the work directory is removed.
run_harness() {
    local py rc=0
    python3 "$BENCH_DIR/control-bench.py" &
    py=$!
    trap 'kill -TERM "$py" 2>/dev/null' INT TERM
    wait "$py" || rc=$?
    while kill -0 "$py" 2>/dev/null; do
        wait "$py" || rc=$?
    done
    return "$rc"
}

main() {
    parse_args "$@"
    check_prerequisites
    resolve_tend
    trap cleanup EXIT
    prepare
    export SERVICES REQUESTS ROUNDS IDLE_SECS HOLD_SECS PIN_CPU STAGES OUT_FILE
    run_harness
}

main "$@"
