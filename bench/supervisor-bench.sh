#!/usr/bin/env bash
# Compares tend's supervisor mode (`tend run FILE.toml`) with supervisord, runit (runsvdir) and
# s6 (s6-svscan), each supervising the same services, in one run. Every supervisor runs under
# the same tiny init (supervisor-init.c) as PID 1 of a fresh pid namespace
# (`unshare --pid --fork --mount-proc`); every service is the same compiled program
# (supervisor-svc.c; for runit and s6 it *is* ./run, with no shell in between).
# Metrics: idle context switches and CPU time (20 services), RSS of the supervision tree
# (1, 20, 100 services), restart latency after SIGKILL, shutdown of 20 services that take
# 0.5 s to stop, time to start 100 services, log throughput against `writer | cat > /dev/null`
# (and, as a reference, against a minimal C line prefixer in cat's place: supervisor-prefix.c).
# Prints a Markdown table.
#
# Usage (as root):
#   bash bench/supervisor-bench.sh [--tend PATH] [--quick] [OUT_FILE]
#
# Environment:
#   TEND_BIN        tend binary; default target/x86_64-unknown-linux-gnu/release/tend, built
#                   with `cargo build --release` if it does not exist
#   SUPERVISORS     which to run (default: tend supervisord runit s6)
#   IDLE_SECS       idle observation window, default 20
#   LOG_BYTES       bytes the log writer writes, default 1073741824 (1 GiB)
#   LOG_LINE_BYTES  bytes for the one-write()-per-line log row, default 67108864 (64 MiB)
#   LOG_REPS        log runs per supervisor and row, interleaved (median reported), default 5
#   METRICS         which measurements (default: idle start restart shutdown log)
#   RESTART_KILLS   SIGKILLs per supervisor (median reported), default 15
#   RESTART_MIN_UP  seconds a service runs before each kill, default 1.2 (past the 1 s
#                   minimum runit and s6 keep between two starts)
#   START_REPS      rounds of the 100-service start (median reported), default 5
#   SETTLE_SECS     wait after all services started, before measuring, default 1.5
#   PIN_CPU         the CPU the log runs are pinned to, default the last one
#   WRITER_CPU      the writer's own CPU in the split log row, default 0
#   QUIET_WAIT      wait up to this many seconds for an idle machine before the run and
#                   before each measured round (CPUs under QUIET_BUSY busy, default 0.15),
#                   default 0; the header says how much CPU others used either way
#   BENCH_TIMEOUT   whole-run limit in seconds, QUIET_WAIT included, default 1800
#
# --quick sets IDLE_SECS=3, LOG_BYTES=64 MiB, LOG_LINE_BYTES=8 MiB, LOG_REPS=1, RESTART_KILLS=3,
# START_REPS=1 for a smoke test (about a minute and a half).
# The table goes to stdout (and to OUT_FILE if given); progress goes to stderr.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_OPTIONS="--tend --quick"

quick_settings() {
    export IDLE_SECS=3 LOG_BYTES=$((64 << 20)) LOG_LINE_BYTES=$((8 << 20)) \
        LOG_REPS=1 RESTART_KILLS=3 START_REPS=1
}

parse_args "$@"

require_root "pid namespaces, /proc of other users"
require_tools --hint "(Debian: supervisor, runit, s6)" \
    unshare taskset gcc python3 cat supervisord runsvdir runsv s6-svscan s6-supervise

# The work tree's own binary, which the table header flags when src/ has changed since.
DEFAULT_TEND=$REPO_ROOT/target/x86_64-unknown-linux-gnu/release/tend
resolve_tend

make_work_dir
WORK=$WORK_DIR
chmod 755 "$WORK"
HARNESS_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # Every namespace the harness made: SIGKILL to its init takes all of it down.
    stop_harness "$WORK/inits" supervisor-init
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for helper in init svc floor prefix; do
    gcc -O2 -Wall -Wextra -o "$WORK/supervisor-$helper" "$BENCH_DIR/supervisor-$helper.c"
done
# A private copy, so a rebuild during the run cannot change what is measured.
cp "$TEND_BIN" "$WORK/tend"

ver_tend=$("$WORK/tend" --version 2>/dev/null || echo "?")
if [ "$TEND_BIN" = "$(readlink -f "$DEFAULT_TEND")" ] &&
    ! git -C "$REPO_ROOT" diff --quiet HEAD -- src Cargo.toml 2>/dev/null; then
    ver_tend="$ver_tend (the work tree's binary; src/ has uncommitted changes)"
fi
ver_supervisord=$(supervisord --version 2>/dev/null || echo "?")
supervisord_python=$(head -n1 "$(command -v supervisord)" | sed 's/^#! *//; s/ .*//')
ver_python=$("$supervisord_python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo "?")
ver_runit=$(dpkg-query -W -f='${Version}' runit 2>/dev/null || echo "?")
ver_s6=$(dpkg-query -W -f='${Version}' s6 2>/dev/null || echo "?")

timeout --signal=TERM --kill-after=30 "${BENCH_TIMEOUT:-1800}" \
    python3 "$BENCH_DIR/supervisor-bench.py" \
    --tend "$WORK/tend" --svc "$WORK/supervisor-svc" --init "$WORK/supervisor-init" \
    --floor "$WORK/supervisor-floor" --prefix "$WORK/supervisor-prefix" --version "python=$ver_python" \
    --work "$WORK" ${OUT_FILE:+--out "$OUT_FILE"} \
    --version "tend=$ver_tend" --version "supervisord=$ver_supervisord" \
    --version "runit=$ver_runit" --version "s6=$ver_s6" &
HARNESS_PID=$!
wait "$HARNESS_PID"
