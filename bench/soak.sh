#!/usr/bin/env bash
# Soak: tend as PID 1 of a fresh pid namespace (`unshare --pid --fork --mount-proc`) supervising
# 100 services that write numbered lines, for 30 minutes of chaos: at least 10,000 random
# SIGKILLs of the services and of their children, random `tend restart|stop|start`, a reload
# with a change every 10 s, a `tend logs -f` follower attached and detached. tend's RSS, open
# descriptors and the zombies in its namespace are sampled every 10 s. At the end every line of
# tend's output is checked against what each writer says it wrote: none lost, cut or
# duplicated; and RSS growth after the first minute under 5%, descriptors back to their
# starting count, no zombie child of tend older than 100 ms. Prints a summary with PASS or FAIL
# per criterion and exits 1 on any FAIL. The rules are in docs/benchmarks.md ("Soak").
#
# Usage (as root):
#   bash bench/soak.sh [--minutes N] [--services N] [--kill-rate R] [--seed N]
#                      [--tend PATH] [--build] [--out DIR]
#
#   --minutes N     how long the chaos lasts, default 30 (`--minutes 2`: the short version)
#   --services N    services, default 100
#   --kill-rate R   SIGKILLs per second, default 7 (30 minutes give 12,600)
#   --seed N        seed of the random choices, default a random one (the summary says which)
#   --tend PATH     tend binary; default $TEND_BIN or target/x86_64-unknown-linux-gnu/release/tend,
#                   built with `cargo build --release` if it does not exist
#   --build         build it in any case
#   --out DIR       keep summary.md, samples.csv (t, rss_kib, rss_anon_kib, fds, zombies, ...)
#                   and soak.png (RSS and descriptors over time; needs gnuplot, Debian package
#                   gnuplot-nox, and is skipped with a message without it) in DIR
#
# Environment: SOAK_INTERVAL_MS (pause between a writer's lines, default 50), SOAK_BURST (every
# this many pauses a writer writes this many lines at once, default 50; 0: never), SOAK_RELOAD_SECS
# (default 10), SOAK_SAMPLE_SECS (default 10), SOAK_CHAOS (which chaos to make, default
# "kill control reload follow": to tell apart what a failing criterion comes from), SOAK_KEEP=1 (keep the scratch directory with
# tend's whole output, the writers' records and the configuration).
# The summary goes to stdout; progress goes to stderr.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MINUTES=30 SERVICES=100 KILL_RATE=7 SEED="" OUT_DIR="" FORCE_BUILD=""
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage 0 ;;
        --minutes) MINUTES=${2:?--minutes needs a number}; shift ;;
        --services) SERVICES=${2:?--services needs a number}; shift ;;
        --kill-rate) KILL_RATE=${2:?--kill-rate needs a number}; shift ;;
        --seed) SEED=${2:?--seed needs a number}; shift ;;
        --tend) TEND_BIN=${2:?--tend needs a path}; shift ;;
        --build) FORCE_BUILD=1 ;;
        --out) OUT_DIR=${2:?--out needs a directory}; shift ;;
        *) echo "unknown argument $1" >&2; usage 2 ;;
    esac
    shift
done

require_root "pid namespaces, /proc of the namespace's processes"
require_tools unshare gcc python3
python3 -c 'import os, signal; os.pidfd_open; signal.pidfd_send_signal' 2>/dev/null ||
    die "python3 3.9 or newer is needed (os.pidfd_open)"

resolve_tend
[ -z "$OUT_DIR" ] || OUT_DIR=$(mkdir -p "$OUT_DIR" && realpath "$OUT_DIR")

make_work_dir
HARNESS_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # The namespace, should the harness have left it: SIGKILL to unshare takes its PID 1
    # (--kill-child), and so every process of the namespace, with it.
    stop_harness "$WORK_DIR/inits" unshare
    if [ -n "${SOAK_KEEP:-}" ]; then
        echo "$BENCH_NAME: kept $WORK_DIR" >&2
    else
        rm -rf "$WORK_DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

compile_helper soak-writer
snapshot_tend

# The whole run is bounded: the chaos, then up to a few minutes to settle, shut down and check.
LIMIT=$(python3 -c "print(int(float('$MINUTES') * 60 + 600))")
timeout --signal=TERM --kill-after=30 "$LIMIT" \
    python3 "$BENCH_DIR/soak.py" \
    --tend "$WORK_DIR/tend" --tend-source "$TEND_SOURCE" --writer "$WORK_DIR/soak-writer" \
    --work "$WORK_DIR" --minutes "$MINUTES" --services "$SERVICES" --kill-rate "$KILL_RATE" \
    --interval-ms "${SOAK_INTERVAL_MS:-50}" --burst "${SOAK_BURST:-50}" \
    --reload-secs "${SOAK_RELOAD_SECS:-10}" --sample-secs "${SOAK_SAMPLE_SECS:-10}" \
    --chaos "${SOAK_CHAOS-kill control reload follow}" \
    ${SEED:+--seed "$SEED"} ${OUT_DIR:+--out "$OUT_DIR"} &
HARNESS_PID=$!
wait "$HARNESS_PID"
