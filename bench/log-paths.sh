#!/usr/bin/env bash
# tend's log path in its variants, side by side in one run with `writer | cat > /dev/null` and
# the prefix floor (bench/supervisor-prefix.c), all on one CPU. supervisor-bench.sh compares
# the plain prefixed format with the peers; this one covers what only tend has, so that a
# slow path there (the JSON format once ran at a thirtieth of the prefixed one) shows up:
#
#   prefixed      `name | line` on stdout, as in supervisor-bench.sh
#   timestamps    the same with log-timestamps = true
#   json          log-format = "json"
#   log-file      logs.file (rotated at 64 MiB, on /dev/shm when there is one) and stdout
#   hundred       the writer next to 99 idle services
#   followed      one `tend logs -f` attached to the writer (it may be cut off when it
#                 falls 4 MiB behind; the row measures what the follower costs the writer)
#
# The writer (bench/supervisor-svc.c) writes LOG_BYTES of 100-byte lines in 64 KiB writes;
# MB/s from its first to its last write. tend's stdout is /dev/null, and tend exits when the
# writer does (it is a critical service). Rounds are interleaved; medians reported.
#
# Usage:
#   bash bench/log-paths.sh [--tend PATH] [--build] [--quick] [OUT_FILE]
#
# Environment (flags win):
#   TEND_BIN   tend binary; default target/x86_64-unknown-linux-gnu/release/tend, built with
#              `cargo build --release` if it does not exist (or always, with --build)
#   LOG_BYTES  bytes per run, default 1073741824 (1 GiB)
#   REPS       rounds, default 5
#   PIN_CPU    the CPU every run is pinned to, default the last one
#   PATHS      which variants (default: all of the above)
#
# --quick sets LOG_BYTES to 256 MiB and REPS to 2.
# The table goes to stdout (and to OUT_FILE if given); progress goes to stderr.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BENCH_OPTIONS="--tend --build --quick"
quick_settings() {
    LOG_BYTES=$((256 << 20))
    REPS=2
}
LOG_BYTES=${LOG_BYTES:-1073741824}
REPS=${REPS:-5}
PIN_CPU=${PIN_CPU:-$(($(nproc) - 1))}
PATHS=${PATHS:-prefixed timestamps json log-file hundred followed}
parse_args "$@"
require_tools --hint "(util-linux)" taskset
require_tools gcc awk
resolve_tend
make_work_dir
trap cleanup EXIT
compile_helper supervisor-svc
compile_helper supervisor-prefix
snapshot_tend
TEND=$WORK_DIR/tend
SVC=$WORK_DIR/supervisor-svc
FILE_DIR=$WORK_DIR
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    FILE_DIR=$(mktemp -d /dev/shm/log-paths.XXXXXX)
    trap 'cleanup; rm -rf "$FILE_DIR"' EXIT
fi

# The writer's settings, for every run.
export BENCH_MODE=writer BENCH_EXIT=1 BENCH_LOG_BYTES=$LOG_BYTES BENCH_WRITE_DELAY_MS=300

# Writes the tend configuration of variant $1 to $2.
write_config() {
    local variant=$1 path=$2
    {
        echo '[tend]'
        echo "socket = \"$WORK_DIR/$variant.sock\""
        case $variant in
            timestamps) echo 'log-timestamps = true' ;;
            json) echo 'log-format = "json"' ;;
        esac
        echo
        echo '[services.w000]'
        echo "command = [\"$SVC\", \"w000\"]"
        echo 'restart = "never"'
        echo 'critical = true'
        if [ "$variant" = log-file ]; then
            echo "logs = { file = \"$FILE_DIR/w000.log\", max-size = \"64MiB\", keep = 1 }"
        fi
        if [ "$variant" = hundred ]; then
            for i in $(seq -w 1 99); do
                printf '\n[services.idle%s]\ncommand = ["sleep", "100000"]\n' "$i"
            done
        fi
    } > "$path"
}

# MB/s of the writer's run recorded in marker file $1.
writer_mbps() {
    awk '$1 == "wdone" { printf "%.0f\n", $6 / (($5 - $4) / 1e9) / 1e6 }' "$1"
}

# One run of variant $1; prints its MB/s.
run_once() {
    local variant=$1 markers=$WORK_DIR/markers
    rm -f "$markers"
    export BENCH_MARKERS=$markers
    case $variant in
        cat)
            taskset -c "$PIN_CPU" sh -c "'$SVC' w000 | cat > /dev/null" ;;
        prefix-floor)
            taskset -c "$PIN_CPU" sh -c "'$SVC' w000 | '$WORK_DIR/supervisor-prefix' w000 > /dev/null" ;;
        followed)
            local config=$WORK_DIR/$variant.toml sock=$WORK_DIR/$variant.sock tend_pid
            rm -f "$sock"
            taskset -c "$PIN_CPU" "$TEND" run "$config" > /dev/null 2> "$WORK_DIR/tend.err" &
            tend_pid=$!
            for _ in $(seq 500); do
                [ -S "$sock" ] && break
                sleep 0.01
            done
            [ -S "$sock" ] || die "tend did not open its socket: $(cat "$WORK_DIR/tend.err")"
            # The writer waits BENCH_WRITE_DELAY_MS before its first line: time to attach.
            taskset -c "$PIN_CPU" "$TEND" logs -f -n 0 w000 --socket "$sock" \
                > /dev/null 2> "$WORK_DIR/follower.err" &
            wait "$tend_pid" || die "tend failed: $(cat "$WORK_DIR/tend.err")"
            wait || true ;;
        *)
            taskset -c "$PIN_CPU" "$TEND" run "$WORK_DIR/$variant.toml" \
                > /dev/null 2> "$WORK_DIR/tend.err" ||
                die "tend failed on $variant: $(cat "$WORK_DIR/tend.err")" ;;
    esac
    local mbps
    mbps=$(writer_mbps "$markers")
    [ -n "$mbps" ] || die "no writer record for $variant"
    echo "$mbps"
}

for variant in $PATHS; do
    case " prefixed timestamps json log-file hundred followed " in
        *" $variant "*) write_config "$variant" "$WORK_DIR/$variant.toml" ;;
        *) die "unknown variant in PATHS: $variant" ;;
    esac
done

KINDS="cat prefix-floor $PATHS"
declare -A RESULTS
for rep in $(seq "$REPS"); do
    for kind in $KINDS; do
        mbps=$(run_once "$kind")
        echo "$BENCH_NAME: round $rep/$REPS $kind: $mbps MB/s" >&2
        RESULTS[$kind]="${RESULTS[$kind]:-} $mbps"
    done
done

# "median (min-max)" of the numbers in $1.
summary() {
    echo "$1" | tr ' ' '\n' | sed '/^$/d' | sort -n | awk '
        { v[NR] = $1 }
        END {
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%.0f %.0f %.0f\n", m, v[1], v[NR]
        }'
}

{
    echo "### tend's log paths, one CPU"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) CPUs, kernel $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
    echo "- tend: $("$TEND" --version) ($TEND_SOURCE)"
    echo "- settings: LOG_BYTES=$LOG_BYTES REPS=$REPS PIN_CPU=$PIN_CPU; 100-byte lines in 64 KiB writes; MB = 10^6 bytes"
    echo
    echo "| variant | MB/s, median (min–max) of $REPS | of \`cat\` |"
    echo "|---|---|---|"
    read -r base _ _ <<< "$(summary "${RESULTS[cat]}")"
    for kind in $KINDS; do
        read -r med lo hi <<< "$(summary "${RESULTS[$kind]}")"
        echo "| $kind | $med ($lo–$hi) | $((100 * med / base))% |"
    done
} | tee ${OUT_FILE:+"$OUT_FILE"}
