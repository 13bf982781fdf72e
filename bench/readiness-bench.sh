#!/usr/bin/env bash
# Readiness and health-check benchmark: tend as PID 1 of a fresh pid namespace
# (`unshare --pid --fork --mount-proc`).
#
# 1. Latency from a dependency becoming ready to its dependent (`depends-on = { dep = "ready" }`)
#    being started, for `ready = { notify-fd = 3 }`, `{ sd-notify = true }` and
#    `{ tcp = "127.0.0.1:PORT", interval = "10ms" }`. The dependency (readiness-dep.c) reads
#    the clock just before it notifies (or just after listen()); the dependent
#    (readiness-stamp.c, static) reads it as its first action. A fresh tend per run. The exec
#    cost is measured without tend (readiness-spawn.c) and subtracted. For tcp, a packet
#    socket on lo timestamps the probe's SYN-ACK, which separates the wait for the next probe
#    from tend's reaction to its result.
# 2. tend's context switches while idle for IDLE_SECS (5 cases), supervising four small TCP
#    listeners (readiness-listen.c), with health checks (3 every 1 s, 1 every 500 ms) and
#    without. The listeners log each connection, so the checks tend really made are counted.
# Prints Markdown tables.
#
# Usage (as root):
#   bash bench/readiness-bench.sh [--tend PATH] [--build] [--quick] [OUT_FILE]
#
# Environment (flags win):
#   TEND_BIN           tend binary; default target/x86_64-unknown-linux-gnu/release/tend, built
#                      with `cargo build --release` if it does not exist (or always, --build)
#   RUNS               runs per readiness kind, CPU mode and baseline, default 100
#   ROUNDS             ... split into this many rounds interleaved across all of them, default 10
#   GAP_MS             the dependency waits this long (+ up to as much again, at random)
#                      before it becomes ready, so that tend is idle by then, default 30
#   PROBE_INTERVAL_MS  interval of the tcp readiness probe, default 10
#   IDLE_SECS          idle observation window per case (5 cases), default 20
#   SETTLE_SECS        wait after tend starts before the idle window, default 3
#   PIN_CPU            the CPU for the runs with everything on one CPU, default the last one
#   NICE               nice value for tend, its services and the baselines, default 0
#   FIFO               if not 0, run tend, its services and the baselines under SCHED_FIFO
#                      with this priority (1-99): shields them from other (SCHED_OTHER) load
#                      on a shared machine, leaving what the kernel and the hardware cost.
#                      Default 0 (normal scheduling)
#   QUIET_WAIT         wait up to this many seconds before each latency round for the CPUs
#                      to be idle (under QUIET_BUSY busy, default 0.15), default 0
#   STAGES             (development) run only some of: latency idle
#
# --quick sets RUNS=10, ROUNDS=2, IDLE_SECS=5 for a smoke test (under a minute).
# The default settings take about three minutes.
# The tables go to stdout (and to OUT_FILE if given); progress goes to stderr.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_OPTIONS="--tend --build --quick"

quick_settings() {
    RUNS=10 ROUNDS=2 IDLE_SECS=5
}

check_prerequisites() {
    require_root "pid namespaces, packet socket, /proc"
    require_tools unshare gcc python3
}

# The helpers are compiled fresh into a temp dir, and tend is copied there: nothing is built
# inside the repository, and a rebuild of target/ during the run cannot change the binary
# being measured. The dependent is static: exec then runs no dynamic loader.
prepare() {
    make_work_dir
    local h
    for h in dep spawn listen; do
        compile_helper "readiness-$h"
    done
    gcc -O2 -Wall -Wextra -static -o "$WORK_DIR/readiness-stamp" "$BENCH_DIR/readiness-stamp.c" ||
        die "compiling readiness-stamp.c (static; needs libc.a, Debian: libc6-dev) failed"
    snapshot_tend
    export WORK_DIR TEND_BIN=$WORK_DIR/tend \
        STAMP=$WORK_DIR/readiness-stamp DEP=$WORK_DIR/readiness-dep \
        SPAWN=$WORK_DIR/readiness-spawn LISTEN=$WORK_DIR/readiness-listen
}

main() {
    parse_args "$@"
    check_prerequisites
    resolve_tend
    trap cleanup EXIT
    prepare
    export RUNS ROUNDS GAP_MS PROBE_INTERVAL_MS IDLE_SECS SETTLE_SECS PIN_CPU NICE FIFO QUIET_WAIT \
        QUIET_BUSY STAGES OUT_FILE
    run_harness readiness-bench.py
}

main "$@"
