#!/usr/bin/env python3
"""Runs the init benchmarks and prints a Markdown table. Started by init-bench.sh, which
checks the prerequisites, compiles the C helpers and passes everything in the environment:

  INITS        space-separated names, e.g. "tend tini tini-static dumb-init catatonit rust-floor"
  INIT_<name>  the binary for each name (name upper-cased, '-' -> '_')
  HELPER_DIR   where reap_workload, sig_child and sig_pinger were compiled
  IDLE_SECS, REAP_N, REAP_REPS, SIG_ITERS, SIG_ROUNDS, SIG_GAP_US, PIN_CPU   sizes
  OUT_FILE     optional: also write the table there
  STAGES       optional, for development: a subset of "idle reap signals"

Every init runs as PID 1 of its own pid namespace (`unshare --pid --fork --mount-proc`).
Killing that PID 1 makes the kernel SIGKILL everything else in the namespace, so tearing a
measurement down is one kill, and it happens in a `finally`. As a second line of defence
unshare gets PR_SET_PDEATHSIG and --kill-child, so even a SIGKILLed harness leaves nothing
behind.
"""

import contextlib
import datetime
import json
import math
import os
import platform
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

from benchlib import (LOAD_AT_START, UNSHARE, children_of, context_switches, die_with_parent,
                      emit, env_int, exe_of, kill_pid1, logger, mark, percentile, proc_status,
                      spawn_pid1, stderr_lines)

BASELINE = "no init"  # column for the runs without any init in the loop

# --------------------------------------------------------------------------------------------
# Configuration


INITS = os.environ.get("INITS", "tend tini tini-static dumb-init catatonit rust-floor").split()
HELPER_DIR = os.environ["HELPER_DIR"]
IDLE_SECS = env_int("IDLE_SECS", 20)
REAP_N = env_int("REAP_N", 10000)
REAP_REPS = env_int("REAP_REPS", 5)
SIG_ITERS = env_int("SIG_ITERS", 2000)
SIG_GAP_US = env_int("SIG_GAP_US", 1000)
SIG_ROUNDS = env_int("SIG_ROUNDS", 10)
# The CPU for the runs pinned to one CPU. The last one: CPU 0 tends to get more interrupts.
PIN_CPU = env_int("PIN_CPU", os.cpu_count() - 1)
MODES = (("free", None), ("pinned", PIN_CPU))  # unpinned first, then all on PIN_CPU
OUT_FILE = os.environ.get("OUT_FILE", "")
# For development: run only some stages, e.g. STAGES=signals.
STAGES = os.environ.get("STAGES", "idle reap signals").split()

# Targets from tend's spec.
TARGET_BINARY_BYTES = 1_500_000
TARGET_REAP_RATIO = 1.10


def init_binary(name):
    return os.environ["INIT_" + name.upper().replace("-", "_")]


def helper(name):
    return os.path.join(HELPER_DIR, name)


def command_under(name, argv):
    """argv run as the child of init `name`, or directly as PID 1 for the baseline."""
    if name == BASELINE:
        return list(argv)
    return [init_binary(name), "--", *argv]


log = logger("[init-bench] ")


# --------------------------------------------------------------------------------------------
# /proc helpers (all read from the host side, which never wakes the process being observed)


def kib(status, key):
    return int(status[key].split()[0])


def cpu_ns(pid):
    """CPU time consumed so far, in ns (schedstat is exact, unlike the clock ticks in stat)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def wait_for_child_exec(ppid, binary, timeout=10.0):
    """The pid of ppid's child once it has exec'd `binary` (before that it is still a copy
    of its parent, and measuring it would measure the wrong program)."""
    want = os.path.realpath(binary)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for kid in children_of(ppid):
            if exe_of(kid) == want:
                return kid
        time.sleep(0.005)
    raise RuntimeError(f"{binary} did not start under pid {ppid} within {timeout:.0f}s")


# --------------------------------------------------------------------------------------------
# One pid namespace per measurement


def _prepare_child(cpu):
    """Runs in the forked child before exec. If this harness dies, unshare dies, and
    --kill-child then takes the namespace's PID 1 (and so the whole namespace) with it. The
    CPU affinity, if any, is inherited by everything in the namespace."""
    die_with_parent()
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


class PidNamespace:
    """`argv` as PID 1 of a fresh pid namespace. Use as a context manager: leaving it, for
    any reason, SIGKILLs the namespace and waits for unshare."""

    def __init__(self, argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, cpu=None):
        self.argv = argv
        self.pid1 = None
        self.closed = False
        # stderr is collected and replayed on close, minus unshare's own noise. A session of
        # its own: no controlling terminal for any init (they behave differently with one).
        self.proc, self.stderr = spawn_pid1(argv, lambda: _prepare_child(cpu), stdin=stdin,
                                            stdout=stdout)

    def __enter__(self):
        try:
            self.pid1 = wait_for_child_exec(self.proc.pid, self.argv[0])
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.closed:
            return
        self.closed = True
        kill_pid1(self.proc, self.pid1)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                stream.close()
        for line in stderr_lines(self.stderr):
            log(f"stderr of {os.path.basename(self.argv[0])}: {line}")

    def read_line(self, timeout):
        """One line of the namespace's stdout, or an error after `timeout` seconds."""
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeError(f"no result within {timeout:.0f}s")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"exited early (status {self.proc.wait()})")
            buf += chunk
        return buf.decode()


# --------------------------------------------------------------------------------------------
# The measurements


def preflight(name):
    """Fail loudly and early if an init cannot even run `true` as PID 1."""
    argv = [*UNSHARE, *command_under(name, ["true"])]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"init-bench: {name} did not run `true` as PID 1 within 10s")
    if done.returncode != 0:
        raise SystemExit(
            f"init-bench: {name} failed to run `true` as PID 1 (exit {done.returncode}):\n"
            + done.stderr.decode(errors="replace")
        )


def measure_idle(names):
    """RSS and wake-ups of every init, each supervising `sleep`, all at the same time: an
    idle init is not disturbed by other idle inits, and this keeps the run short."""
    sleep_bin = os.path.realpath(shutil.which("sleep"))
    results = {}
    with contextlib.ExitStack() as stack:
        spaces = {
            name: stack.enter_context(PidNamespace(command_under(name, [sleep_bin, "3600"])))
            for name in names
        }
        for ns in spaces.values():
            wait_for_child_exec(ns.pid1, sleep_bin)
        # Let start-up work (spawning the child, its exec) finish before counting.
        time.sleep(1.0)
        before = {name: context_switches(ns.pid1) for name, ns in spaces.items()}
        log(f"idle: watching {len(spaces)} inits for {IDLE_SECS}s")
        time.sleep(IDLE_SECS)
        for name, ns in spaces.items():
            vol, invol = context_switches(ns.pid1)
            st = proc_status(ns.pid1)
            results[name] = {
                "voluntary": vol - before[name][0],
                "involuntary": invol - before[name][1],
                "vmrss": kib(st, "VmRSS"),
                "vmhwm": kib(st, "VmHWM"),
                "rssanon": kib(st, "RssAnon"),
            }
    return results


def reap_once(name, cpu=None):
    """One timed run of reap_workload: orphan mode under an init, selfreap mode without."""
    mode = "selfreap" if name == BASELINE else "orphan"
    argv = command_under(name, [helper("reap_workload"), mode, str(REAP_N), "--hold"])
    with PidNamespace(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cpu=cpu) as ns:
        result = json.loads(ns.read_line(timeout=120))
        if name != BASELINE:
            # Read while the workload holds the init alive (it waits for EOF on stdin).
            result["init_cpu_ms"] = cpu_ns(ns.pid1) / 1e6
            result["init_vmhwm"] = kib(proc_status(ns.pid1), "VmHWM")
        ns.proc.stdin.close()
        ns.proc.wait(timeout=10)
    if result["unreaped"] or result["zombies_left"]:
        raise RuntimeError(
            f"{result['unreaped']} orphans not reaped after 30s, "
            f"{result['zombies_left']} zombies left"
        )
    return result


def measure_reaping(names):
    """REAP_REPS interleaved rounds, rotating the order each round, so that drift in the
    machine (other load, frequency, page cache) is spread over all columns alike.

    Each round runs unpinned and then with everything on one CPU. Unpinned, the init can
    reap on an otherwise idle CPU while the workload forks on another, so its cost is
    partly hidden; on one CPU every microsecond the init spends adds to the wall time."""
    columns = [BASELINE, *names]
    runs = {mode: {c: [] for c in columns} for mode, _ in MODES}
    errors = {}
    log("reap: warm-up run (discarded)")
    try:
        reap_once(BASELINE)
    except Exception as e:  # noqa: BLE001
        # Without a baseline there is nothing to compare with; something is wrong here.
        raise RuntimeError(f"the no-init baseline itself failed: {e}") from e
    for rep in range(REAP_REPS):
        order = columns[rep % len(columns):] + columns[: rep % len(columns)]
        for mode, cpu in MODES:
            for col in order:
                if col in errors:
                    continue
                try:
                    r = reap_once(col, cpu)
                except Exception as e:  # noqa: BLE001 - reported in the table, run continues
                    errors[col] = f"{mode}: {e}"
                    log(f"reap ({mode}): {col}: ERROR {e}")
                    continue
                runs[mode][col].append(r)
                log(f"reap ({mode}): round {rep + 1}/{REAP_REPS} {col:12} "
                    f"{r['total_ms']:8.1f} ms (tail {r['tail_ms']:.1f} ms)")
    return runs, errors


class SignalTarget:
    """sig_child under one init (or alone, for the baseline) in its own namespace, kept
    alive for the whole stage so that the rounds can be interleaved."""

    def __init__(self, stack, col, fifo, cpu):
        os.mkfifo(fifo)
        # Held open by the harness for the target's lifetime: there is always a reader, so
        # sig_child's open() does not block and a late echo can never hit SIGPIPE between
        # two pinger runs.
        stack.callback(os.close, os.open(fifo, os.O_RDWR | os.O_NONBLOCK))
        argv = command_under(col, [helper("sig_child"), fifo])
        self.ns = stack.enter_context(PidNamespace(argv, cpu=cpu))
        self.fifo, self.cpu = fifo, cpu
        self.fresh = True
        self.samples_ns, self.lost, self.ctxt = [], 0, 0

    def ping(self, iterations):
        """One sig_pinger run; adds its round trips to this target's pool."""
        before = sum(context_switches(self.ns.pid1))
        budget = iterations * (SIG_GAP_US / 1e6 + 0.005) + 30
        cpu = self.cpu
        done = subprocess.run(
            [helper("sig_pinger"), str(self.ns.pid1), self.fifo, str(iterations),
             str(SIG_GAP_US), "1" if self.fresh else "0"],
            capture_output=True, timeout=budget,
            preexec_fn=None if cpu is None else lambda: os.sched_setaffinity(0, {cpu}),
        )
        self.ctxt += sum(context_switches(self.ns.pid1)) - before
        self.fresh = False
        lines = done.stdout.decode().split()
        if done.returncode != 0 or lines[:1] != ["lost"]:
            raise RuntimeError(done.stderr.decode().strip() or f"sig_pinger exit {done.returncode}")
        self.lost += int(lines[1])
        self.samples_ns += [int(x) for x in lines[4:]]
        if lines[3] == "1":
            raise RuntimeError(f"{self.lost} signals lost, 5 of them in a row: gave up")

    def summary(self):
        lat = sorted(self.samples_ns)
        if not lat:
            raise RuntimeError("no round trips completed")
        us = lambda ns: ns / 1000  # noqa: E731
        n = len(lat)
        return {"n": n, "lost": self.lost, "median_us": us(percentile(lat, 50)),
                "p99_us": us(percentile(lat, 99)), "max_us": us(lat[-1]),
                "ctxt_per_signal": self.ctxt / max(1, n + self.lost)}


def measure_signals(names, tmp):
    """Round trips host -> init -> child -> host (host -> child for the baseline), in two
    modes: unpinned, which is closest to real life but on a VM is dominated by where the
    scheduler happens to place the three processes (a wake-up that crosses to an idle vCPU
    costs tens of microseconds); and with pinger, init and child all on one CPU, which
    isolates the init's own code path.

    SIG_ITERS round trips per init and mode, split into SIG_ROUNDS chunks that are
    interleaved across all inits, so a burst of outside load lands on every column alike."""
    columns = [BASELINE, *names]
    results = {mode: {} for mode, _ in MODES}
    errors = {}
    per_round = max(1, math.ceil(SIG_ITERS / SIG_ROUNDS))
    with contextlib.ExitStack() as stack:
        targets = {}
        for mode, cpu in MODES:
            for col in columns:
                fifo = os.path.join(tmp, f"fifo-{mode}-{col.replace(' ', '-')}")
                targets[mode, col] = SignalTarget(stack, col, fifo, cpu)
        # Warm-up: the first round trips after start-up are slower for everyone.
        for mode, _ in MODES:
            targets[mode, BASELINE].ping(100)
            targets[mode, BASELINE].samples_ns.clear()
        log(f"signals: {SIG_ROUNDS} interleaved rounds of {per_round} round trips")
        for rnd in range(SIG_ROUNDS):
            order = columns[rnd % len(columns):] + columns[: rnd % len(columns)]
            for mode, _ in MODES:
                for col in order:
                    if col in errors:
                        continue
                    try:
                        targets[mode, col].ping(per_round)
                    except Exception as e:  # noqa: BLE001 - reported in the table
                        errors[col] = f"{mode}: {e}"
                        log(f"signals ({mode}): {col}: ERROR {e}")
        for (mode, col), target in targets.items():
            if col in errors:
                continue
            r = results[mode][col] = target.summary()
            log(f"signals ({mode}): {col:12} median {r['median_us']:.1f} us, "
                f"p99 {r['p99_us']:.1f} us, lost {r['lost']}")
    return results, errors


def is_static(path):
    """True if the ELF file has no PT_INTERP program header (no dynamic loader)."""
    with open(path, "rb") as f:
        ident = f.read(64)
        if ident[:4] != b"\x7fELF" or ident[4] != 2:
            return None  # not a 64-bit ELF; say nothing rather than guess
        order = "<" if ident[5] == 1 else ">"
        phoff, = struct.unpack(order + "Q", ident[32:40])
        phentsize, phnum = struct.unpack(order + "HH", ident[54:58])
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    PT_INTERP = 3
    return all(
        struct.unpack(order + "I", table[i * phentsize : i * phentsize + 4])[0] != PT_INTERP
        for i in range(phnum)
    )


# --------------------------------------------------------------------------------------------
# Reporting


def version_of(name):
    try:
        out = subprocess.run([init_binary(name), "--version"], capture_output=True, timeout=5)
        text = (out.stdout or out.stderr).decode(errors="replace").strip().splitlines()
        return text[0] if text else "?"
    except Exception:  # noqa: BLE001
        return "?"


def machine_facts():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{a:.2f}" for a in os.getloadavg())
    load_before = ", ".join(f"{a:.2f}" for a in LOAD_AT_START)
    tend = ""
    if "tend" in INITS:
        # init-bench.sh runs a copy (cp -p keeps the build time); name the original.
        built = datetime.datetime.fromtimestamp(os.path.getmtime(init_binary("tend")))
        source = os.environ.get("TEND_SOURCE", init_binary("tend"))
        tend = f"- tend binary: `{source}` (built {built:%Y-%m-%d %H:%M})"
    return [
        f"- Date: {now}",
        f"- Machine: {os.cpu_count()} CPUs ({cpu}), kernel {platform.release()}",
        f"- Load average (1, 5, 15 min) at start: {load_before}; at end: {load} "
        "(load from outside the benchmark adds noise)",
        f"- Settings: IDLE_SECS={IDLE_SECS}, REAP_N={REAP_N}, REAP_REPS={REAP_REPS}, "
        f"SIG_ITERS={SIG_ITERS}, SIG_ROUNDS={SIG_ROUNDS}, SIG_GAP_US={SIG_GAP_US}, "
        f"PIN_CPU={PIN_CPU}",
        *([tend] if tend else []),
    ]


def fmt_int(n):
    return f"{n:,}"


def reap_rows(row, names, runs, errors, label):
    """Wall time, ratio of medians (the target) and ratio of best runs for one mode."""
    totals = {c: [r["total_ms"] for r in runs.get(c, [])] for c in [*names, BASELINE]}
    base = totals[BASELINE]
    cells, ratio_cells, best_cells = {}, {}, {}
    for col, t in totals.items():
        if not t:
            if col in errors:
                cells[col] = ratio_cells[col] = "ERR"
            continue
        cells[col] = f"{statistics.median(t):,.0f} ms ({min(t):,.0f}–{max(t):,.0f})"
        if base:
            ratio = statistics.median(t) / statistics.median(base)
            ratio_cells[col] = f"{ratio:.2f}×"
            if col == "tend":
                ratio_cells[col] += " " + mark(ratio <= TARGET_REAP_RATIO)
            # Best against best is less sensitive to load from outside the benchmark.
            best_cells[col] = f"{min(t) / min(base):.2f}×"
    row(f"Reap {REAP_N:,} orphans, {label}: wall time, median (min–max) of {REAP_REPS}", "",
        cells)
    row("… ratio to no-init baseline (medians)", f"≤ {TARGET_REAP_RATIO:.2f}×", ratio_cells)
    row("… ratio of fastest runs", "", best_cells)


def build_rows(names, sizes, idle, reap_runs, reap_errors, sig, sig_errors):
    """(metric, target, {column: cell}) for every row of the table."""
    rows = []

    def row(metric, target, cells):
        rows.append((metric, target, cells))

    # 1. Binary size
    cells = {}
    for n in names:
        size, static = sizes[n]
        linkage = {True: "static", False: "dynamic", None: "?"}[static]
        cells[n] = f"{size / 1024:,.0f} KiB ({linkage})"
    if "tend" in names:
        cells["tend"] += " " + mark(sizes["tend"][0] < TARGET_BINARY_BYTES)
    row("Binary size", "< 1.5 MB", cells)

    # 2. Memory while idle
    def idle_row(metric, key, target="", judge=None):
        cells = {}
        for n in names:
            if n in idle:
                cells[n] = f"{fmt_int(idle[n][key])} KiB"
        if judge and "tend" in cells:
            verdict = judge()
            if verdict is not None:
                cells["tend"] += " " + mark(verdict)
        row(metric, target, cells)

    def rss_verdict():
        if "catatonit" not in idle or "tend" not in idle:
            return None
        return idle["tend"]["vmrss"] <= idle["catatonit"]["vmrss"]

    idle_row("RSS while idle (VmRSS)", "vmrss", "≤ catatonit", rss_verdict)
    idle_row("Peak RSS while idle (VmHWM)", "vmhwm")
    idle_row("Anonymous RSS while idle (RssAnon)", "rssanon")

    # 3. Wake-ups while idle
    cells = {}
    for n in names:
        if n in idle:
            total = idle[n]["voluntary"] + idle[n]["involuntary"]
            cells[n] = f"{total} ({idle[n]['voluntary']}+{idle[n]['involuntary']})"
    if "tend" in idle:
        cells["tend"] += " " + mark(idle["tend"]["voluntary"] + idle["tend"]["involuntary"] == 0)
    row(f"Context switches in {IDLE_SECS} s idle (vol+invol)", "0", cells)

    # 4. Reaping
    for mode, label in (("free", "unpinned"), ("pinned", "all on one CPU")):
        reap_rows(row, names, reap_runs.get(mode, {}), reap_errors, label)
    free = reap_runs.get("free", {})

    def med(col, key):
        return f"{statistics.median(r[key] for r in free[col]):,.1f} ms"

    live = [c for c in names if free.get(c)]
    # ~1 ms of it is the workload checking 10,000 pids with kill(pid, 0), even with no init.
    row("Reap tail: last fork until all orphans are gone, unpinned, median", "",
        {c: med(c, "tail_ms") for c in [*live, BASELINE] if free.get(c)})
    row("Init CPU time for one reap run (10,000 SIGCHLD/waitpid), unpinned, median", "",
        {c: f"{statistics.median(r['init_cpu_ms'] for r in free[c]):,.0f} ms" for c in live})
    row("Init peak RSS (VmHWM) after reaping, worst run", "",
        {c: f"{fmt_int(max(r['init_vmhwm'] for m in reap_runs.values() for r in m[c]))} KiB"
         for c in live})

    # 5. Signal forwarding
    def sig_cells(mode, fmt):
        cells = {}
        for col in [*names, BASELINE]:
            if col in sig.get(mode, {}):
                cells[col] = fmt(sig[mode][col])
            elif col in sig_errors:
                cells[col] = "ERR"
        return cells

    us = lambda key: lambda r: f"{r[key]:,.1f} µs"  # noqa: E731
    pinned_base = sig.get("pinned", {}).get(BASELINE)
    row("SIGUSR1 round trip host→init→child→host, all on one CPU: median", "",
        sig_cells("pinned", us("median_us")))
    row("… p99", "", sig_cells("pinned", us("p99_us")))
    if pinned_base:
        base_us = pinned_base["median_us"]
        added = sig_cells("pinned", lambda r: f"{r['median_us'] - base_us:,.1f} µs")
        added.pop(BASELINE, None)
        row("… added by the init (median minus no-init median)", "", added)
    row("… init context switches per forwarded signal", "",
        {c: f"{r['ctxt_per_signal']:.1f}" for c, r in sig.get("pinned", {}).items() if c in names})
    row("SIGUSR1 round trip, unpinned (scheduler's choice of CPUs): median", "",
        sig_cells("free", us("median_us")))
    row("… p99", "", sig_cells("free", us("p99_us")))
    lost = {}
    for col in [*names, BASELINE]:
        runs = [sig[m][col] for m in ("pinned", "free") if col in sig.get(m, {})]
        if runs:
            n_lost = sum(r["lost"] for r in runs)
            lost[col] = f"{n_lost} of {sum(r['n'] + r['lost'] for r in runs)}"
            if col == "tend":
                lost[col] += " " + mark(n_lost == 0)
        elif col in sig_errors:
            lost[col] = "ERR"
    row("Signals lost (both modes)", "0", lost)
    return rows


def markdown(names, rows, versions, notes):
    columns = [*names, BASELINE]
    out = ["### Init benchmark results", "", *machine_facts(), "- Versions: " + "; ".join(
        f"{n}: `{versions[n]}`" for n in names), ""]
    out.append("| Metric | tend target | " + " | ".join(columns) + " |")
    out.append("|---|---|" + "---|" * len(columns))
    for metric, target, cells in rows:
        out.append(f"| {metric} | {target} | "
                   + " | ".join(cells.get(c, "—") for c in columns) + " |")
    if notes:
        out += ["", "Errors:", *[f"- {n}" for n in notes]]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------


def main():
    if 2 * REAP_N + 100 > int(open("/proc/sys/kernel/pid_max").read()):
        raise SystemExit("init-bench: REAP_N too large for pid_max (pids would be reused)")
    for name in INITS:
        preflight(name)
    sizes = {n: (os.path.getsize(init_binary(n)), is_static(init_binary(n))) for n in INITS}
    versions = {n: version_of(n) for n in INITS}
    started = time.monotonic()
    # FIFOs go into HELPER_DIR, which init-bench.sh removes even if this process is killed.
    notes = []

    def stage(name, run, empty):
        """A stage that fails outright costs its rows, not the whole table."""
        if name not in STAGES:
            return empty
        try:
            return run()
        except Exception as e:  # noqa: BLE001
            log(f"{name}: STAGE FAILED: {e}")
            notes.append(f"{name} stage failed: {e}")
            return empty

    with tempfile.TemporaryDirectory(dir=HELPER_DIR) as tmp:
        idle = stage("idle", lambda: measure_idle(INITS), {})
        reap_runs, reap_errors = stage("reap", lambda: measure_reaping(INITS), ({}, {}))
        sig, sig_errors = stage("signals", lambda: measure_signals(INITS, tmp), ({}, {}))
    log(f"done in {time.monotonic() - started:.0f}s")
    notes += [f"reaping under {c}: {e}" for c, e in reap_errors.items()]
    notes += [f"signals under {c}: {e}" for c, e in sig_errors.items()]
    table = markdown(INITS, build_rows(INITS, sizes, idle, reap_runs, reap_errors, sig,
                                       sig_errors), versions, notes)
    emit(table, OUT_FILE)
    if OUT_FILE:
        log(f"table written to {OUT_FILE}")
    return 1 if notes else 0


def stop_on_signal(signum, _frame):
    """SIGINT/SIGTERM unwind through the `finally`s and context managers, which kill every
    namespace still running. A second signal must not interrupt that cleanup."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    # Set explicitly: a background job of a non-interactive shell starts with SIGINT ignored.
    signal.signal(signal.SIGINT, stop_on_signal)
    signal.signal(signal.SIGTERM, stop_on_signal)
    sys.exit(main())
