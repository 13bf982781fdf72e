#!/usr/bin/env bash
# Scheduled-task benchmark: tend as PID 1 of a fresh pid namespace.
#
# 1. Lateness: how long after its due time a run starts. The task (schedule-stamp.c, static)
#    reads the clocks as its first action. One tend runs two tasks for RUN_SECS: `@every 1s`
#    (due on the monotonic clock; the first due time is taken from `tend status --json`,
#    whose millisecond rounding can add up to 1 ms) and the per-second cron rule
#    `* * * * * *` (due at each whole second of the wall clock). Meanwhile, for the floor,
#    schedule-floor.c runs the same task from a plain C loop (clock_nanosleep to an absolute
#    wall-clock time, then fork and exec), half a second off tend's per-second times, and a
#    second one whose child first calls setsid(), as every service tend starts does.
# 2. Wake-ups: tend's voluntary context switches (each time it blocks and is woken), from
#    /proc, over WAKE_RUNS runs of an `@every 2s` task, and over IDLE_SECS with only far-off
#    schedules (`0 3 * * *`, `@every 1h`).
# 3. The same lateness for Debian's cron (package `cron`, its binary taken from the .deb with
#    `apt-get download`, run in a mount namespace whose /etc/cron.d holds only the task) and
#    busybox's crond, `* * * * *` for MINUTES minutes each: they have minute resolution.
# Prints Markdown tables.
#
# Usage (as root):
#   bash bench/schedule-bench.sh [--tend PATH] [--build] [--quick] [OUT_FILE]
#
# Environment (flags win):
#   TEND_BIN    tend binary; default target/x86_64-unknown-linux-gnu/release/tend, built with
#               `cargo build --release` if it does not exist (or always, --build)
#   RUN_SECS    how long tend's two tasks run, default 300 (300 runs each)
#   WAKE_RUNS   runs of the @every 2s task counted for wake-ups, default 30
#   IDLE_SECS   idle window with far-off schedules only, default 20
#   MINUTES     minutes each of cron and busybox crond run, default 3
#   CRON_BIN    Debian's cron binary; default: downloaded (apt-get download cron) into the
#               work directory; `none` skips cron
#   STAGES      (development) run only some of: tend wake peers
#
# --quick sets RUN_SECS=20, WAKE_RUNS=5, IDLE_SECS=5, MINUTES=1.
# The default settings take about 14 minutes.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_OPTIONS="--tend --build --quick"

quick_settings() {
    RUN_SECS=20 WAKE_RUNS=5 IDLE_SECS=5 MINUTES=1
}

check_prerequisites() {
    require_root "pid and mount namespaces, /proc"
    require_tools unshare gcc python3 busybox
}

prepare() {
    make_work_dir
    gcc -O2 -Wall -Wextra -static -o "$WORK_DIR/schedule-stamp" "$BENCH_DIR/schedule-stamp.c" ||
        die "compiling schedule-stamp.c (static; needs libc.a, Debian: libc6-dev) failed"
    compile_helper schedule-floor
    snapshot_tend
    if [ -z "${CRON_BIN:-}" ]; then
        # The package's binary, not the package: installing it would start a cron daemon.
        (cd "$WORK_DIR" && apt-get download cron >/dev/null 2>&1 &&
            dpkg-deb -x cron_*.deb cron-pkg) && CRON_BIN=$WORK_DIR/cron-pkg/usr/sbin/cron ||
            CRON_BIN=none
    fi
    export WORK_DIR TEND_BIN=$WORK_DIR/tend STAMP=$WORK_DIR/schedule-stamp CRON_BIN \
        FLOOR=$WORK_DIR/schedule-floor
}

main() {
    parse_args "$@"
    check_prerequisites
    resolve_tend
    trap cleanup EXIT
    prepare
    export RUN_SECS WAKE_RUNS IDLE_SECS MINUTES STAGES OUT_FILE
    run_harness schedule-bench.py
}

main "$@"
