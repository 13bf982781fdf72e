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

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_OPTIONS="--tend --build --idle-secs --quick"

quick_settings() {
    IDLE_SECS=3 HOLD_SECS=8 REQUESTS=200 ROUNDS=4
}

check_prerequisites() {
    require_root "pid namespaces, /proc of other users"
    require_tools unshare gcc python3 sleep
}

# The client is compiled fresh into a temp dir, and tend is copied there: nothing is built
# inside the repository, and a rebuild of target/ during the run cannot change the binary
# being measured.
prepare() {
    make_work_dir
    compile_helper control-client
    snapshot_tend
    export WORK_DIR CLIENT=$WORK_DIR/control-client TEND_BIN=$WORK_DIR/tend
}

main() {
    parse_args "$@"
    check_prerequisites
    resolve_tend
    trap cleanup EXIT
    prepare
    export SERVICES REQUESTS ROUNDS IDLE_SECS HOLD_SECS PIN_CPU STAGES OUT_FILE
    run_harness control-bench.py
}

main "$@"
