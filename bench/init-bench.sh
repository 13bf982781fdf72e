#!/usr/bin/env bash
# Compares tend with tini, tini-static, dumb-init and catatonit, each running as PID 1 of a
# fresh pid namespace with the same workload: memory and wake-ups while idle, time to reap
# 10,000 orphans, signal-forwarding latency, binary size. Prints a Markdown table.
#
# Usage (as root):
#   bash bench/init-bench.sh [--tend PATH] [--build] [--idle-secs N] [--quick] [OUT_FILE]
#
# Environment (flags win):
#   TEND_BIN     tend binary; default target/x86_64-unknown-linux-gnu/release/tend, built
#                with `cargo build --release` if it does not exist (or always, with --build)
#   INITS        which inits to compare (default: tend tini tini-static dumb-init catatonit)
#   IDLE_SECS    idle observation window, default 20
#   REAP_N       orphans per reaping run, default 10000
#   REAP_REPS    reaping rounds, unpinned and pinned each (median reported), default 5
#   SIG_ITERS    signal round trips per init and mode, default 2000
#   SIG_ROUNDS   ... split into this many interleaved rounds, default 10
#   SIG_GAP_US   pause between round trips, default 1000
#   PIN_CPU      the CPU for the runs pinned to one CPU, default the last one
#   STAGES       (development) run only some of: idle reap signals
#
# --quick sets IDLE_SECS=3, REAP_REPS=2, SIG_ITERS=300 for a smoke test.
# The table goes to stdout (and to OUT_FILE if given); progress goes to stderr.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$BENCH_DIR")

die() {
    echo "init-bench: $*" >&2
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
            --quick) IDLE_SECS=3 REAP_REPS=2 SIG_ITERS=300 ;;
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

# The tend binary: built when missing, or always with --build (an existing binary may be
# older than the source; its build time is printed in the table header).
resolve_tend() {
    TEND_BIN=${TEND_BIN:-$REPO_ROOT/target/x86_64-unknown-linux-gnu/release/tend}
    if [ ! -x "$TEND_BIN" ] || [ -n "$FORCE_BUILD" ]; then
        echo "init-bench: running cargo build --release" >&2
        (cd "$REPO_ROOT" && cargo build --release >&2) || die "cargo build --release failed"
    fi
    [ -x "$TEND_BIN" ] || die "tend binary not found at $TEND_BIN"
    TEND_BIN=$(realpath "$TEND_BIN")
}

# Exports INIT_<NAME>=path for every init in $INITS; a missing one is an error, not a skip,
# so a table can never quietly lose a column.
resolve_inits() {
    INITS=${INITS:-tend tini tini-static dumb-init catatonit}
    local name path var
    for name in $INITS; do
        case "$name" in
            tend) path=$TEND_BIN ;;
            tini|tini-static|dumb-init|catatonit) path=$(command -v "$name" || true) ;;
            *) die "unknown init '$name' (known: tend tini tini-static dumb-init catatonit)" ;;
        esac
        [ -n "$path" ] && [ -x "$path" ] ||
            die "init '$name' not installed (Debian: apt-get install ${name%-static})"
        var=INIT_$(echo "$name" | tr 'a-z-' 'A-Z_')
        export "$var=$(realpath "$path")"
    done
    export INITS
}

# The C helpers are compiled fresh into a temp dir on every run: nothing is built inside
# the repository.
build_helpers() {
    HELPER_DIR=$(mktemp -d /tmp/init-bench.XXXXXX)
    local prog
    for prog in reap_workload sig_child sig_pinger; do
        gcc -O2 -Wall -Wextra -o "$HELPER_DIR/$prog" "$BENCH_DIR/$prog.c" ||
            die "compiling $prog.c failed"
    done
    export HELPER_DIR
}

# Benchmark a private copy of tend: target/ may be rebuilt (or cleaned) by someone else in
# the middle of a run, and every stage must measure the same binary.
snapshot_tend() {
    case " $INITS " in *" tend "*) ;; *) return 0 ;; esac
    cp -p "$TEND_BIN" "$HELPER_DIR/tend"
    export INIT_TEND=$HELPER_DIR/tend TEND_SOURCE=$TEND_BIN
}

cleanup() {
    if [ -n "${HELPER_DIR:-}" ]; then
        rm -rf "$HELPER_DIR"
    fi
}

main() {
    parse_args "$@"
    check_prerequisites
    resolve_tend
    resolve_inits
    trap cleanup EXIT
    build_helpers
    snapshot_tend
    export IDLE_SECS REAP_N REAP_REPS SIG_ITERS SIG_ROUNDS SIG_GAP_US PIN_CPU STAGES OUT_FILE
    run_harness
}

# Not exec: the EXIT trap must still remove the helpers afterwards. In the background with
# a trap, so that a SIGINT/SIGTERM sent to this script alone still reaches the harness,
# which then tears its namespaces down before we remove the helpers it is running.
run_harness() {
    local py rc=0
    python3 "$BENCH_DIR/initbench.py" &
    py=$!
    trap 'kill -TERM "$py" 2>/dev/null' INT TERM
    wait "$py" || rc=$?
    # A trapped signal interrupts `wait`; keep waiting until the harness has cleaned up.
    while kill -0 "$py" 2>/dev/null; do
        wait "$py" || rc=$?
    done
    return "$rc"
}

main "$@"
