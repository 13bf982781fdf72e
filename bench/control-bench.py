#!/usr/bin/env python3
"""Control-plane benchmark of tend: `status` round-trip latency with many services, and
tend's wake-ups while its control socket is open. Started by control-bench.sh, which checks
the prerequisites, compiles control-client.c and passes everything in the environment:

  TEND_BIN      the tend binary (a private copy)     TEND_SOURCE  where it was copied from
  CLIENT        the compiled control-client          WORK_DIR     a scratch directory
  SERVICES, REQUESTS, ROUNDS, IDLE_SECS, HOLD_SECS, PIN_CPU       sizes (see the .sh)
  OUT_FILE      optional: also write the table there
  STAGES        optional, for development: a subset of "idle latency hold"

tend runs `tend run CONFIG` as PID 1 of a fresh pid namespace (`unshare --pid --fork
--mount-proc`) supervising SERVICES copies of `sleep 1000000`, with its control socket in
WORK_DIR. Everything is observed from outside through /proc, which never wakes tend.
Killing that PID 1 makes the kernel SIGKILL every service, so teardown is one kill, in a
`finally`; unshare also gets PR_SET_PDEATHSIG and --kill-child, so even a SIGKILLed harness
leaves nothing behind.
"""

import json
import math
import os
import select
import shutil
import signal
import socket
import subprocess
import time

import benchlib
from benchlib import (context_switches, die_with_parent, emit, env_int, facts_lines,
                      find_pid1, kill_pid1, logger, mark, percentile, spawn_pid1, stderr_lines,
                      stop_on_signal)
from benchlib import threads_cpu_ns as cpu_ns

TEND = os.environ["TEND_BIN"]
TEND_SOURCE = os.environ.get("TEND_SOURCE", TEND)
CLIENT = os.environ["CLIENT"]
WORK_DIR = os.environ["WORK_DIR"]
SERVICES = env_int("SERVICES", 100)
REQUESTS = env_int("REQUESTS", 1000)
ROUNDS = env_int("ROUNDS", 10)
IDLE_SECS = env_int("IDLE_SECS", 20)
HOLD_SECS = env_int("HOLD_SECS", 20)
PIN_CPU = env_int("PIN_CPU", os.cpu_count() - 1)
OUT_FILE = os.environ.get("OUT_FILE", "")
STAGES = os.environ.get("STAGES", "idle latency hold").split()

REQUEST_DEADLINE = 5.0  # src/shell/control.rs REQUEST_DEADLINE
SAMPLE_EVERY = 0.02  # seconds between /proc samples in the held-client test
ALL_CPUS = set(range(os.cpu_count()))
MODES = (("free", None), ("pinned", PIN_CPU))


log = logger("[control-bench] ")


# --------------------------------------------------------------------------------------------
# tend as PID 1


class Tend:
    """`tend run CONFIG` as PID 1 of a fresh pid namespace; close() SIGKILLs it."""

    def __init__(self, config):
        self.proc, self.stderr = spawn_pid1([TEND, "run", config], die_with_parent)
        self.pid1 = find_pid1(self.proc, TEND, 0.005)
        if self.pid1 is None:
            self.close()
            raise RuntimeError("tend did not start as PID 1 of the namespace")

    def close(self):
        kill_pid1(self.proc, self.pid1)
        info = 0
        for line in stderr_lines(self.stderr):
            if line.startswith("tend: info: "):
                info += 1  # "spawned 'svc042' with pid 44", one per service
            else:
                log(f"stderr of tend: {line}")
        if info:
            log(f"tend wrote {info} info lines on stderr (not shown)")

    def pin(self, cpu):
        """tend itself (not its idle services) onto one CPU, or back onto all of them."""
        for tid in os.listdir(f"/proc/{self.pid1}/task"):
            os.sched_setaffinity(int(tid), ALL_CPUS if cpu is None else {cpu})

    def switches(self):
        return sum(context_switches(self.pid1))


def write_config(sock):
    path = os.path.join(WORK_DIR, "tend.toml")
    sleep_bin = os.path.realpath(shutil.which("sleep"))
    with open(path, "w") as f:
        f.write(f'[tend]\nsocket = "{sock}"\n')
        for i in range(SERVICES):
            f.write(f'\n[services.svc{i:03d}]\ncommand = ["{sleep_bin}", "1000000"]\n')
    return path


def status_once(sock, timeout=5.0):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock)
        s.sendall(b'{"v":1,"cmd":"status"}\n')
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data)


def wait_all_running(sock, timeout=30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = status_once(sock)
            states = [s["state"] for s in last.get("services", [])]
            if len(states) == SERVICES and all(s == "running" for s in states):
                return last
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"services not all running after {timeout:.0f}s: {str(last)[:300]}")


# --------------------------------------------------------------------------------------------
# Measurements


def measure_idle(tend, label):
    time.sleep(2.0)  # let anything the previous stage set off finish
    v0, i0 = context_switches(tend.pid1)
    c0 = cpu_ns(tend.pid1)
    log(f"idle ({label}): watching tend for {IDLE_SECS}s")
    time.sleep(IDLE_SECS)
    v1, i1 = context_switches(tend.pid1)
    return {"voluntary": v1 - v0, "involuntary": i1 - i0, "cpu_us": (cpu_ns(tend.pid1) - c0) / 1e3}


def client_argv(kind, sock, n):
    if kind == "raw":
        return [CLIENT, "raw", sock, str(n)]
    if kind == "cli":
        return [CLIENT, "spawn", str(n), TEND, "status", "--json", "--socket", sock]
    return [CLIENT, "spawn", str(n), TEND, "--version"]  # "floor": process start alone


def run_client(tend, kind, sock, n, cpu):
    tend.pin(cpu)
    s0, c0 = tend.switches(), cpu_ns(tend.pid1)
    done = subprocess.run(
        client_argv(kind, sock, n),
        capture_output=True,
        timeout=60 + n,
        preexec_fn=lambda: os.sched_setaffinity(0, ALL_CPUS if cpu is None else {cpu}),
    )
    s1, c1 = tend.switches(), cpu_ns(tend.pid1)
    if done.returncode != 0:
        raise RuntimeError(f"control-client {kind}: {done.stderr.decode().strip()}")
    return [int(x) for x in done.stdout.split()], s1 - s0, c1 - c0


def measure_latency(tend, sock):
    """REQUESTS per client kind and CPU mode, in ROUNDS chunks interleaved across all of
    them (rotating the order), so that outside load lands on every cell alike."""
    cells = [(kind, mode) for kind in ("raw", "cli", "floor") for mode, _ in MODES]
    cpu_of = dict(MODES)
    res = {c: {"lat": [], "switches": 0, "cpu_ns": 0} for c in cells}
    per_round = max(1, math.ceil(REQUESTS / ROUNDS))
    log("latency: warm-up (discarded)")
    for kind, mode in cells:
        run_client(tend, kind, sock, 20, cpu_of[mode])
    for r in range(ROUNDS):
        order = cells[r % len(cells):] + cells[: r % len(cells)]
        for cell in order:
            lat, sw, cpu = run_client(tend, cell[0], sock, per_round, cpu_of[cell[1]])
            res[cell]["lat"] += lat
            res[cell]["switches"] += sw
            res[cell]["cpu_ns"] += cpu
        log(f"latency: round {r + 1}/{ROUNDS}: " + ", ".join(
            f"{k}/{m} {percentile(sorted(res[(k, m)]['lat']), 50) / 1e3:.0f}µs"
            for k, m in cells))
    tend.pin(None)
    out = {}
    for cell, d in res.items():
        lat = sorted(d["lat"])
        out[cell] = {
            "n": len(lat),
            "median_us": percentile(lat, 50) / 1e3,
            "p99_us": percentile(lat, 99) / 1e3,
            "max_us": lat[-1] / 1e3,
            "switches_per_req": d["switches"] / len(lat),
            "tend_cpu_us_per_req": d["cpu_ns"] / len(lat) / 1e3,
        }
    save = os.path.join(WORK_DIR, "answer.json")
    subprocess.run([CLIENT, "raw", sock, "1", save], check=True, capture_output=True)
    out["answer_bytes"] = os.path.getsize(save)
    return out


def measure_hold(tend, sock):
    """One client connects and sends nothing for HOLD_SECS. tend should wake to accept it,
    once more at the 5 s request deadline to answer an error and close, and never else.
    tend's context-switch count is sampled every SAMPLE_EVERY s to see *when* it woke."""
    time.sleep(2.0)
    cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    before = time.monotonic()
    base = tend.switches()
    t0 = time.monotonic()
    cli.connect(sock)
    samples = [(before - t0, 0)]  # (seconds since connect, switches since just before it)
    log(f"hold: a silent client stays connected for {HOLD_SECS}s")
    answer, answer_at, eof_at = b"", None, None
    end = t0 + HOLD_SECS
    next_sample = t0
    while True:
        now = time.monotonic()
        if now >= next_sample:
            samples.append((now - t0, tend.switches() - base))
            next_sample += SAMPLE_EVERY
            if now >= end:
                break
        if eof_at is None:
            ready = select.select([cli], [], [], max(0.0, next_sample - time.monotonic()))[0]
            if ready:
                chunk = cli.recv(65536)
                if chunk:
                    answer += chunk
                    answer_at = answer_at or time.monotonic() - t0
                else:
                    eof_at = time.monotonic() - t0
        else:
            time.sleep(max(0.0, next_sample - time.monotonic()))
    cli.close()
    # Wake-ups by phase: the accept, the wait, the cut-off (from 0.2 s before the deadline
    # to 0.5 s after the answer), and after it.
    cut = answer_at if answer_at is not None else REQUEST_DEADLINE

    def count(lo, hi):
        inside = [n for t, n in samples if lo <= t < hi]
        before = [n for t, n in samples if t < lo]
        return (inside[-1] if inside else 0) - (before[-1] if before else 0)

    # The first sample is taken right after connect(): tend may or may not have run yet.
    phases = {
        "accept": count(-1, 0.5),
        "wait": count(0.5, REQUEST_DEADLINE - 0.2),
        "cutoff": count(REQUEST_DEADLINE - 0.2, cut + 0.5),
        "after": count(cut + 0.5, HOLD_SECS + 1),
    }
    wake_times = [round(t, 3) for (t, n), (_, p) in zip(samples[1:], samples) if n != p]
    return {
        "phases": phases,
        "total": samples[-1][1] if samples else 0,
        "answer": answer.decode(errors="replace").strip(),
        "answer_at": answer_at,
        "eof_at": eof_at,
        "wake_times": wake_times,
    }


# --------------------------------------------------------------------------------------------
# Report


def machine_facts():
    facts = benchlib.machine_facts(TEND, TEND_SOURCE)
    facts["size"] = os.path.getsize(TEND)
    return facts


def fmt_us(x):
    return f"{x:,.0f} µs" if x >= 100 else f"{x:.1f} µs"


def build_table(lat, idle, hold):
    rows = []
    if lat:
        kinds = {
            "raw": "`status` round trip, raw client (connect, send, read to EOF; no process start)",
            "cli": "`tend status --json --socket S` (process spawn, connect, request, print, exit)",
            "floor": "Process start alone: spawn and wait for `tend --version`",
        }
        where = {"free": "unpinned", "pinned": f"client and tend on CPU {PIN_CPU}"}
        for kind, label in kinds.items():
            for mode, _ in MODES:
                r = lat[(kind, mode)]
                rows.append((f"{label}, {where[mode]}: median / p99 (max) of {r['n']:,}",
                             f"{fmt_us(r['median_us'])} / {fmt_us(r['p99_us'])} "
                             f"({fmt_us(r['max_us'])})", ""))
        for mode, _ in MODES:
            r = lat[("raw", mode)]
            rows.append((f"tend per raw `status` request, {where[mode]}: CPU time / context switches",
                         f"{fmt_us(r['tend_cpu_us_per_req'])} / {r['switches_per_req']:.2f}", ""))
        rows.append((f"`status` answer size ({SERVICES} services)", f"{lat['answer_bytes']:,} bytes", ""))
    for label, key in (("socket open, no client, before the latency runs", "fresh"),
                       ("same, after the latency runs", "after")):
        if key in idle:
            r = idle[key]
            n = r["voluntary"] + r["involuntary"]
            rows.append((f"Idle wake-ups in {IDLE_SECS} s ({SERVICES} services idle, {label}): "
                         "context switches (vol+invol)",
                         f"{n} ({r['voluntary']}+{r['involuntary']}) {mark(n == 0)}", "0"))
    if hold:
        p = hold["phases"]
        at = f"{hold['answer_at']:.3f} s" if hold["answer_at"] is not None else "never"
        eof = f"{hold['eof_at']:.3f} s" if hold["eof_at"] is not None else "never"
        ok = p["wait"] == 0 and p["after"] == 0 and hold["answer_at"] is not None
        rows.append((f"Silent client held {HOLD_SECS} s: tend's context switches in total",
                     f"{hold['total']} {mark(ok)}", "accept + cut-off only"))
        rows.append(("… at connect (accept) / while waiting / at the 5 s deadline / after the cut-off",
                     f"{p['accept']} / {p['wait']} / {p['cutoff']} / {p['after']}",
                     "— / 0 / — / 0"))
        rows.append(("… tend's answer to the silent client, and when (after connect)",
                     f"`{hold['answer']}` at {at}, EOF at {eof}", "error at 5 s"))
        rows.append(("… seconds after connect at which tend was seen to switch",
                     ", ".join(f"{t:.2f}" for t in hold["wake_times"]) or "none", ""))
    return rows


def markdown(rows, facts, notes):
    lines = [
        *facts_lines(facts),
        f"- Settings: SERVICES={SERVICES}, REQUESTS={REQUESTS}, ROUNDS={ROUNDS}, "
        f"IDLE_SECS={IDLE_SECS}, HOLD_SECS={HOLD_SECS}, PIN_CPU={PIN_CPU}",
        f"- tend binary: `{TEND_SOURCE}` ({facts['size']:,} bytes, modified {facts['built']}), "
        f"`{facts['version']}`",
        "",
        "| Metric | Result | Target |",
        "|---|---|---|",
    ]
    lines += [f"| {m} | {v} | {t} |" for m, v, t in rows]
    lines += [f"\n{n}" for n in notes]
    return "\n".join(lines) + "\n"


def main():
    os.makedirs(WORK_DIR, exist_ok=True)
    sock = os.path.join(WORK_DIR, "ctl", "control.sock")
    config = write_config(sock)
    notes = []
    lat, idle, hold = None, {}, None
    tend = Tend(config)
    try:
        log(f"tend is pid {tend.pid1}; waiting for {SERVICES} services to run")
        first = wait_all_running(sock)
        log(f"all {len(first['services'])} services running")
        if "idle" in STAGES:
            idle["fresh"] = measure_idle(tend, "fresh")
        if "latency" in STAGES:
            lat = measure_latency(tend, sock)
            if "idle" in STAGES:
                idle["after"] = measure_idle(tend, "after the latency runs")
        if "hold" in STAGES:
            hold = measure_hold(tend, sock)
        last = status_once(sock)
        if any(s["state"] != "running" or s["restarts"] for s in last["services"]):
            notes.append("Warning: some services were not running at the end, or restarted.")
    finally:
        tend.close()
    table = markdown(build_table(lat, idle, hold), machine_facts(), notes)
    emit(table, OUT_FILE)
    log(json.dumps({"latency": {"/".join(k) if isinstance(k, tuple) else k: v
                                for k, v in lat.items()} if lat else None,
                    "idle": idle, "hold": hold}, default=str))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    main()
