#!/usr/bin/env bash
# Compares tend with tini, tini-static, dumb-init and catatonit, each running as PID 1 of a
# fresh pid namespace with the same workload: memory and wake-ups while idle, time to reap
# 10,000 orphans, signal-forwarding latency, binary size. Prints a Markdown table.
#
# One more column, rust-floor, is a reference, not a peer: bench/rust-floor.rs, the smallest
# init Rust's standard library allows, built with tend's release settings. It shows what size
# and memory any Rust std program on tend's target starts from.
#
# Usage (as root):
#   bash bench/init-bench.sh [--tend PATH] [--build] [--idle-secs N] [--quick] [OUT_FILE]
#
# Environment (flags win):
#   TEND_BIN     tend binary; default target/x86_64-unknown-linux-gnu/release/tend, built
#                with `cargo build --release` if it does not exist (or always, with --build)
#   INITS        which inits to compare (default: tend tini tini-static dumb-init catatonit
#                rust-floor); tend-before is a second build of tend, from TEND_BEFORE_BIN
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

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_OPTIONS="--tend --build --idle-secs --quick"

quick_settings() {
    IDLE_SECS=3 REAP_REPS=2 SIG_ITERS=300
}

check_prerequisites() {
    require_root "pid namespaces, /proc of other users"
    require_tools unshare gcc python3 sleep
    case " ${INITS:-rust-floor} " in *" rust-floor "*) require_tools rustc ;; esac
}

# Exports INIT_<NAME>=path for every init in $INITS; a missing one is an error, not a skip,
# so a table can never quietly lose a column.
resolve_inits() {
    INITS=${INITS:-tend tini tini-static dumb-init catatonit rust-floor}
    local name path var
    for name in $INITS; do
        case "$name" in
            tend) path=$TEND_BIN ;;
            # Another build of tend, side by side with the one under test (say, before and
            # after a change): TEND_BEFORE_BIN=PATH INITS="tend tend-before ..."
            tend-before) path=${TEND_BEFORE_BIN:?tend-before needs TEND_BEFORE_BIN} ;;
            tini|tini-static|dumb-init|catatonit) path=$(command -v "$name" || true) ;;
            rust-floor) path=$HELPER_DIR/rust-floor ;;
            *) die "unknown init '$name' (known: tend tini tini-static dumb-init catatonit rust-floor)" ;;
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
    make_work_dir
    HELPER_DIR=$WORK_DIR
    local prog
    for prog in reap_workload sig_child sig_pinger; do
        compile_helper "$prog"
    done
    export HELPER_DIR
    case " ${INITS:-rust-floor} " in *" rust-floor "*) build_rust_floor ;; esac
}

# bench/rust-floor.rs with the settings of tend's release profile and .cargo/config.toml.
build_rust_floor() {
    rustc --edition 2024 --target x86_64-unknown-linux-gnu \
        -C opt-level=z -C lto=fat -C codegen-units=1 -C panic=abort -C strip=symbols \
        -C target-feature=+crt-static -C relocation-model=static \
        -o "$HELPER_DIR/rust-floor" "$BENCH_DIR/rust-floor.rs" ||
        die "compiling rust-floor.rs failed"
}

# Benchmark a private copy of tend: target/ may be rebuilt (or cleaned) by someone else in
# the middle of a run, and every stage must measure the same binary.
snapshot_init_tend() {
    case " $INITS " in *" tend "*) ;; *) return 0 ;; esac
    snapshot_tend
    export INIT_TEND=$HELPER_DIR/tend
}

main() {
    parse_args "$@"
    check_prerequisites
    resolve_tend
    trap cleanup EXIT
    build_helpers
    resolve_inits
    snapshot_init_tend
    export IDLE_SECS REAP_N REAP_REPS SIG_ITERS SIG_ROUNDS SIG_GAP_US PIN_CPU STAGES OUT_FILE
    run_harness initbench.py
}

main "$@"
