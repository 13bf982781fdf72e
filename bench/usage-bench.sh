#!/usr/bin/env bash
# What services cost, and what it costs tend to say: tend as PID 1 of a fresh pid namespace
# supervising 100 idle services (`sleep 1000000`) with its control socket and /metrics open.
# Measures the `status` round trip with the services' CPU and memory in it (a raw client,
# and the `tend status` client binary), a `/metrics` scrape, and tend's wake-ups while idle:
# without any memory-limit (none expected), and with a memory-limit on every service (one
# check every 5 s expected). Prints a Markdown table.
#
# Usage (as root):
#   bash bench/usage-bench.sh [--tend PATH] [--build] [--idle-secs N] [--quick] [OUT_FILE]
#
# Environment (flags win):
#   TEND_BIN     tend binary; default target/x86_64-unknown-linux-gnu/release/tend, built
#                with `cargo build --release` if it does not exist (or always, with --build)
#   BASELINE_BIN optional: a tend built without usage in status and /metrics, measured the
#                same way (status and scrape only) for comparison
#   SERVICES     services tend supervises, default 100
#   REQUESTS     requests per kind of client, default 1000 (spawned clients: a fifth of it)
#   IDLE_SECS    idle observation window, default 20
#
# --quick sets IDLE_SECS=6, REQUESTS=200 for a smoke test.
# The table goes to stdout (and to OUT_FILE if given); progress goes to stderr.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_OPTIONS="--tend --build --idle-secs --quick"

quick_settings() {
    IDLE_SECS=6 REQUESTS=200
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
    if [ -n "${BASELINE_BIN:-}" ]; then
        cp -p "$BASELINE_BIN" "$WORK_DIR/tend-baseline"
        export BASELINE_SOURCE=$BASELINE_BIN BASELINE_BIN=$WORK_DIR/tend-baseline
    fi
    export WORK_DIR CLIENT=$WORK_DIR/control-client TEND_BIN=$WORK_DIR/tend
}

main() {
    parse_args "$@"
    check_prerequisites
    resolve_tend
    trap cleanup EXIT
    prepare
    export SERVICES REQUESTS IDLE_SECS OUT_FILE
    run_harness usage-bench.py
}

main "$@"
