# Setup shared by the benchmark wrappers (init-, control-, readiness-, supervisor-bench.sh):
# messages, --help, the common options, prerequisite checks, the tend binary, the scratch
# directory, the C helpers and the Python harness. Sourced right after `set -euo pipefail`;
# BENCH_NAME (for messages and temp dirs) is the sourcing script's file name without .sh.

BENCH_SCRIPT=${BASH_SOURCE[1]}
BENCH_NAME=$(basename "$BENCH_SCRIPT" .sh)
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$BENCH_DIR")

# Prints an error prefixed with the script's name and exits 1.
die() {
    echo "$BENCH_NAME: $*" >&2
    exit 1
}

# Prints the script's header comment (the text up to `set -euo`) and exits with $1 (0).
usage() {
    sed -n '2,/^set -euo/p' "$BENCH_SCRIPT" | sed '$d; s/^# \{0,1\}//'
    exit "${1:-0}"
}

# Parses the command line: the options in the script's BENCH_OPTIONS, and OUT_FILE.
parse_args() {
    # Of --tend PATH, --build, --idle-secs N and --quick (which calls quick_settings).
    OUT_FILE=""
    FORCE_BUILD=""
    while [ $# -gt 0 ]; do
        case "$1" in
            -h|--help) usage 0 ;;
            -*) case " $BENCH_OPTIONS " in
                    *" $1 "*) ;;
                    *) echo "unknown option $1" >&2; usage 2 ;;
                esac ;;
        esac
        case "$1" in
            --tend) TEND_BIN=${2:?--tend needs a path}; shift ;;
            --build) FORCE_BUILD=1 ;;
            --idle-secs) IDLE_SECS=${2:?--idle-secs needs a number}; shift ;;
            --quick) quick_settings ;;
            *) OUT_FILE=$1 ;;
        esac
        shift
    done
}

# Dies unless run as root; $1 says what root is needed for.
require_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root ($1)"
}

# Dies naming the first given tool not on PATH (with TEXT after it if `--hint TEXT` leads).
require_tools() {
    local hint="" tool
    if [ "${1:-}" = --hint ]; then
        hint=" $2"
        shift 2
    fi
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "missing required tool: $tool$hint"
    done
}

# Sets TEND_BIN to the tend binary, built when missing or with --build.
resolve_tend() {
    # An existing binary may be older than the source; its build time is in the table header.
    TEND_BIN=${TEND_BIN:-$REPO_ROOT/target/x86_64-unknown-linux-gnu/release/tend}
    if [ ! -x "$TEND_BIN" ] || [ -n "$FORCE_BUILD" ]; then
        echo "$BENCH_NAME: running cargo build --release" >&2
        (cd "$REPO_ROOT" && cargo build --release >&2) || die "cargo build --release failed"
    fi
    [ -x "$TEND_BIN" ] || die "tend binary not found at $TEND_BIN"
    TEND_BIN=$(realpath "$TEND_BIN")
}

# Makes WORK_DIR, a fresh /tmp/BENCH_NAME.XXXXXX: nothing is built inside the repository.
make_work_dir() {
    WORK_DIR=$(mktemp -d "/tmp/$BENCH_NAME.XXXXXX")
}

# The EXIT trap: removes the scratch directory, if there is one yet.
cleanup() {
    if [ -n "${WORK_DIR:-}" ]; then
        rm -rf "$WORK_DIR"
    fi
}

# Compiles bench/$1.c into WORK_DIR/$1; further arguments go to gcc.
compile_helper() {
    local name=$1
    shift
    gcc -O2 -Wall -Wextra "$@" -o "$WORK_DIR/$name" "$BENCH_DIR/$name.c" ||
        die "compiling $name.c failed"
}

# Copies tend into WORK_DIR, so that a rebuild of target/ cannot change what is measured.
snapshot_tend() {
    # cp -p keeps the build time; TEND_SOURCE names the original in the table header.
    cp -p "$TEND_BIN" "$WORK_DIR/tend"
    export TEND_SOURCE=$TEND_BIN
}

# Runs the Python harness bench/$1 and returns its exit status.
run_harness() {
    # Not exec: the EXIT trap must still run. In the background with a trap, so that a
    # SIGINT/SIGTERM sent to this script alone still reaches the harness, which then kills its
    # namespaces before the work directory is removed.
    local py rc=0
    python3 "$BENCH_DIR/$1" &
    py=$!
    trap 'kill -TERM "$py" 2>/dev/null' INT TERM
    wait "$py" || rc=$?
    # A trapped signal interrupts `wait`; keep waiting until the harness has cleaned up.
    while kill -0 "$py" 2>/dev/null; do
        wait "$py" || rc=$?
    done
    return "$rc"
}

# At exit: stops the harness ($HARNESS_PID) if it still runs, then SIGKILLs every namespace it
# made whose init (a pid listed in the file $1) still has the name $2; pids are reused, so a
# pid is killed only while it is one of ours. SIGKILL to a namespace's init takes all of it.
stop_harness() {
    if [ -n "${HARNESS_PID:-}" ] && kill -0 "$HARNESS_PID" 2>/dev/null; then
        kill -TERM "$HARNESS_PID" 2>/dev/null || true
        wait "$HARNESS_PID" 2>/dev/null || true
    fi
    [ -f "$1" ] || return 0
    local pid
    while read -r pid; do
        if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done <"$1"
}
