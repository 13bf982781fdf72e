#!/usr/bin/env python3
"""Readiness and health-check benchmark of tend. Started by readiness-bench.sh, which checks
the prerequisites, compiles the C helpers and passes everything in the environment:

  TEND_BIN      the tend binary (a private copy)     TEND_SOURCE  where it was copied from
  STAMP, DEP, SPAWN, LISTEN   the compiled readiness-*.c helpers
  WORK_DIR      a scratch directory
  RUNS, ROUNDS, GAP_MS, PROBE_INTERVAL_MS, IDLE_SECS, SETTLE_SECS, PIN_CPU, NICE, FIFO,
  QUIET_WAIT, QUIET_BUSY                                          (see the .sh)
  OUT_FILE      optional: also write the table there
  STAGES        optional: a subset of "latency idle"

Part 1, latency: for every run a fresh `tend run CONFIG` is PID 1 of a new pid namespace
(`unshare --pid --fork --mount-proc`) with two services: `dep` (readiness-dep), which becomes
ready after GAP_MS (+ up to as much again) by notify-fd, sd-notify or by listening on a
TCP port that tend probes every PROBE_INTERVAL_MS, and `app` (readiness-stamp) with
`depends-on = { dep = "ready" }`, whose first action is to read the clock. For tcp, a packet
socket on `lo` timestamps tend's probe SYNs and the listener's answers, so the wait for the
next probe can be told apart from tend's reaction to the probe's result. Baselines without
tend: the exec cost (readiness-spawn exec) and a minimal C supervisor (readiness-spawn floor).
Every kind runs unpinned ("free") and with everything on one CPU ("pinned"), in ROUNDS rounds
interleaved across kinds and modes.

Part 2, idle wake-ups: tend supervising four readiness-listen services, with and without
health checks, observed from outside through /proc for IDLE_SECS; the listeners log every
connection, which says how many checks tend really made in the window.
"""

import ctypes
import math
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import time

import benchlib
from benchlib import (context_switches, cpu_times, die_with_parent, emit, env_int, facts_lines,
                      find_pid1, kill_pid1, logger, mark, percentile, spawn_pid1, stderr_lines,
                      stop_on_signal)
from benchlib import threads_cpu_ns as cpu_ns

TEND = os.environ["TEND_BIN"]
TEND_SOURCE = os.environ.get("TEND_SOURCE", TEND)
STAMP = os.environ["STAMP"]
DEP = os.environ["DEP"]
SPAWN = os.environ["SPAWN"]
LISTEN = os.environ["LISTEN"]
WORK_DIR = os.environ["WORK_DIR"]
RUNS = env_int("RUNS", 100)
ROUNDS = env_int("ROUNDS", 10)
GAP_MS = env_int("GAP_MS", 30)
PROBE_INTERVAL_MS = env_int("PROBE_INTERVAL_MS", 10)
IDLE_SECS = env_int("IDLE_SECS", 20)
SETTLE_SECS = env_int("SETTLE_SECS", 3)
PIN_CPU = env_int("PIN_CPU", os.cpu_count() - 1)
NICE = env_int("NICE", 0)
FIFO = env_int("FIFO", 0)
QUIET_WAIT = float(os.environ.get("QUIET_WAIT", "") or 0)
QUIET_BUSY = float(os.environ.get("QUIET_BUSY", "") or 0.15)
OUT_FILE = os.environ.get("OUT_FILE", "")
BUSY = {}  # stage -> fraction of all CPUs' time busy (everyone's, this benchmark's included)
STAGES = os.environ.get("STAGES", "latency idle").split()

ALL_CPUS = set(range(os.cpu_count()))
MODES = (("free", None), ("pinned", PIN_CPU))
KINDS = ("notify-fd", "sd-notify", "tcp")
BASELINES = ("exec", "floor")


log = logger("[readiness-bench] ")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# /proc helpers


def children_of(ppid):
    """From the kernel's children file where it has one (cheap), else by a scan of /proc."""
    try:
        with open(f"/proc/{ppid}/task/{ppid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        pass
    return benchlib.children_of(ppid)


# --------------------------------------------------------------------------------------------
# tend as PID 1


def shield():
    """In a child before exec: the priority asked for with NICE or FIFO, which the child's own
    children inherit (tend's services, the baselines' stamp program)."""
    if FIFO:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(FIFO))
    if NICE:
        os.nice(NICE)



class Tend:
    """`tend run CONFIG` as PID 1 of a fresh pid namespace, optionally with the whole tree on
    one CPU; close() SIGKILLs it, which takes every service with it."""

    def __init__(self, config, cpu=None):
        def setup():
            die_with_parent()
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})
            shield()

        self.proc, self.stderr = spawn_pid1([TEND, "run", config], setup)
        self.pid1 = find_pid1(self.proc, TEND, 0.001, children_of)
        if self.pid1 is None:
            self.close()
            raise RuntimeError("tend did not start as PID 1 of the namespace")

    def alive(self):
        return self.proc.poll() is None

    def close(self):
        """Kills the namespace; returns tend's stderr lines that are not routine."""
        kill_pid1(self.proc, self.pid1)
        return [line for line in stderr_lines(self.stderr)
                if not line.startswith("tend: info: ")]

    def switches(self):
        return context_switches(self.pid1)


# --------------------------------------------------------------------------------------------
# Packet timestamps on lo, for the tcp probe

SO_TIMESTAMPNS = 35
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
PACKET_OUTGOING = 4
TCP_SYN, TCP_RST, TCP_ACK = 0x02, 0x04, 0x10


class Sniffer:
    """IPv4 TCP packets to or from one port on lo, with the kernel's receive timestamps
    (CLOCK_REALTIME). Nothing reads the socket while a run is going on: the filter keeps
    everything else out, the packets wait in the socket's queue, and drain() collects them."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
        # classic BPF, offsets from the IP header: tcp, not a fragment, sport or dport == port
        prog = [
            (0x30, 0, 0, 9),          # ldb [9]            protocol
            (0x15, 0, 8, 6),          # jeq #6 else drop
            (0x28, 0, 0, 6),          # ldh [6]            flags + fragment offset
            (0x45, 6, 0, 0x1FFF),     # jset #0x1fff drop
            (0xB1, 0, 0, 0),          # ldxb 4*([0]&0xf)   IP header length
            (0x48, 0, 0, 0),          # ldh [x+0]          source port
            (0x15, 2, 0, port),       # jeq #port accept
            (0x48, 0, 0, 2),          # ldh [x+2]          destination port
            (0x15, 0, 1, port),       # jeq #port accept else drop
            (0x06, 0, 0, 0x40000),    # accept
            (0x06, 0, 0, 0),          # drop
        ]
        self._filter = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in prog))
        fprog = struct.pack("HL", len(prog), ctypes.addressof(self._filter))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        except OSError:
            pass
        self.sock.bind(("lo", 0x0800))
        self.sock.setblocking(False)

    def drain(self):
        """[(realtime_ns, flags, to_port)] of the packets queued since the last drain, each
        counted once (lo shows every packet twice: outgoing and incoming; the incoming copy
        is kept, stamped when it enters the receive path)."""
        out = []
        while True:
            try:
                data, anc, _flags, addr = self.sock.recvmsg(256, socket.CMSG_SPACE(16))
            except BlockingIOError:
                return out
            if addr[2] == PACKET_OUTGOING:
                continue
            ts = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", payload[:16])
                    ts = sec * 1_000_000_000 + nsec
            ihl = (data[0] & 0x0F) * 4
            if ts is None or len(data) < ihl + 14:
                continue
            sport, dport = struct.unpack("!HH", data[ihl:ihl + 4])
            out.append((ts, data[ihl + 13], dport == self.port))

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------------------------------
# Part 1: dependency ready -> dependent started


def read_dep(path, deadline):
    """(mono_ns, real_ns) from readiness-dep's mapped file, once it has written them."""
    while True:
        with open(path, "rb") as f:
            raw = f.read(24)
        if len(raw) == 24:
            mono, real, done = struct.unpack("<qqq", raw)
            if done == 1:
                return mono, real
        if time.monotonic() > deadline:
            raise RuntimeError("the dependency never recorded its timestamp")
        time.sleep(0.002)


def read_stamp(path, tend, deadline):
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError("the dependent was not started within 10 s")
        if not tend.alive():
            raise RuntimeError("tend exited")
        time.sleep(0.002)
    with open(path) as f:
        mono, real = f.read().split()
    return int(mono), int(real)


ODD_SEEN = set()


def latency_run(kind, cpu, port, sniffer, seq):
    run_dir = os.path.join(WORK_DIR, f"run{seq}")
    os.makedirs(run_dir)
    dep_file = os.path.join(run_dir, "dep")
    app_file = os.path.join(run_dir, "app")
    delay_us = GAP_MS * 1000 + random.randrange(GAP_MS * 1000 + 1)
    ready = {
        "notify-fd": "{ notify-fd = 3 }",
        "sd-notify": "{ sd-notify = true }",
        "tcp": f'{{ tcp = "127.0.0.1:{port}", interval = "{PROBE_INTERVAL_MS}ms" }}',
    }[kind]
    dep_argv = [DEP, kind, dep_file, str(delay_us)] + ([str(port)] if kind == "tcp" else [])
    config = os.path.join(run_dir, "tend.toml")
    with open(config, "w") as f:
        f.write(f'[tend]\nsocket = "{run_dir}/ctl/control.sock"\n\n'
                f"[services.dep]\ncommand = {toml_list(dep_argv)}\nready = {ready}\n"
                'stop-timeout = "1s"\n\n'
                f"[services.app]\ncommand = {toml_list([STAMP, app_file, 'hold'])}\n"
                'depends-on = { dep = "ready" }\nstop-timeout = "1s"\n')
    if sniffer:
        sniffer.drain()
    tend = Tend(config, cpu)
    try:
        deadline = time.monotonic() + 10
        app_mono, app_real = read_stamp(app_file, tend, deadline)
        dep_mono, dep_real = read_dep(dep_file, deadline)
    finally:
        odd = tend.close()
    for line in odd:
        if line not in ODD_SEEN:
            ODD_SEEN.add(line)
            log(f"stderr of tend ({kind}): {line}")
    res = {"total": app_mono - dep_mono}
    if sniffer:
        packets = sniffer.drain()
        syns = [ts for ts, fl, to_port in packets if to_port and fl & TCP_SYN and not fl & TCP_ACK]
        synacks = [ts for ts, fl, to_port in packets
                   if not to_port and fl & TCP_SYN and fl & TCP_ACK]
        if not synacks:
            raise RuntimeError("tcp: no SYN-ACK seen on lo for the probe")
        ok = synacks[0]
        if not dep_real - 5_000_000 < ok < app_real:
            raise RuntimeError("tcp: packet timestamps are not on CLOCK_REALTIME")
        res["wait"] = ok - dep_real          # listen() -> the probe that succeeds
        res["past"] = app_real - ok          # probe's answer -> dependent started
        res["attempts"] = len([t for t in syns if t <= ok])
        res["gaps"] = [b - a for a, b in zip(syns, syns[1:]) if b <= ok]
    shutil.rmtree(run_dir, ignore_errors=True)
    return res


def toml_list(items):
    return "[" + ", ".join('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
                           for s in items) + "]"


def wait_quiet():
    """With QUIET_WAIT > 0, wait up to that many seconds for the CPUs to be idle (under
    QUIET_BUSY busy over half a second)."""
    if QUIET_WAIT <= 0:
        return
    deadline = time.monotonic() + QUIET_WAIT
    while time.monotonic() < deadline:
        t0, i0 = cpu_times()
        time.sleep(0.5)
        t1, i1 = cpu_times()
        if 1 - (i1 - i0) / max(1, t1 - t0) < QUIET_BUSY:
            return
    log(f"the machine did not quieten within {QUIET_WAIT:.0f}s; going on")


def baseline_runs(which, cpu, n):
    out_dir = os.path.join(WORK_DIR, "baseline")
    os.makedirs(out_dir, exist_ok=True)
    done = subprocess.run(
        [SPAWN, which, str(n), STAMP, out_dir, str(GAP_MS * 1000)],
        capture_output=True, timeout=60 + n,
        preexec_fn=lambda: (os.sched_setaffinity(0, ALL_CPUS if cpu is None else {cpu}),
                            shield()),
    )
    if done.returncode != 0:
        raise RuntimeError(f"readiness-spawn {which}: {done.stderr.decode().strip()}")
    return [{"total": int(x)} for x in done.stdout.split()]


def measure_latency():
    port = free_port()
    sniffer = Sniffer(port)
    cells = [(k, m) for k in KINDS + BASELINES for m, _ in MODES]
    cpu_of = dict(MODES)
    res = {c: [] for c in cells}
    per_round = max(1, math.ceil(RUNS / ROUNDS))
    seq = 0
    try:
        log("latency: warm-up (discarded)")
        for kind in KINDS:
            latency_run(kind, None, port, sniffer if kind == "tcp" else None, seq)
            seq += 1
        t0, i0 = cpu_times()
        for r in range(ROUNDS):
            wait_quiet()
            order = cells[r % len(cells):] + cells[: r % len(cells)]
            for kind, mode in order:
                if kind in BASELINES:
                    res[(kind, mode)] += baseline_runs(kind, cpu_of[mode], per_round)
                    continue
                for _ in range(per_round):
                    res[(kind, mode)].append(latency_run(
                        kind, cpu_of[mode], port, sniffer if kind == "tcp" else None, seq))
                    seq += 1
            log(f"latency: round {r + 1}/{ROUNDS}: medians " + ", ".join(
                f"{k}/{m} {percentile(sorted(x['total'] for x in res[(k, m)]), 50) / 1e3:.0f}µs"
                for k, m in cells))
        t1, i1 = cpu_times()
        BUSY["latency"] = 1 - (i1 - i0) / max(1, t1 - t0)
    finally:
        sniffer.close()
    return res


# --------------------------------------------------------------------------------------------
# Part 2: idle wake-ups

# (health interval, start-secs, listener delay): staggered so that no two checks fall due
# at the same moment (one wake-up could then serve two checks).
IDLE_SERVICES = (("1s", "1s", 0), ("1s", "1.3s", 300), ("1s", "1.6s", 600), ("500ms", "1.15s", 150))


def idle_config(case, ports, logs, path):
    with open(path, "w") as f:
        f.write(f'[tend]\nsocket = "{os.path.dirname(path)}/ctl/control.sock"\n')
        for i, ((interval, start_secs, delay), port, lg) in enumerate(
                zip(IDLE_SERVICES, ports, logs)):
            f.write(f"\n[services.svc{i}]\n"
                    f"command = {toml_list([LISTEN, str(port), lg, str(delay)])}\n")
            if case in ("health", "health-split"):
                # Ready by a probe of the same port; the listener starts listening after
                # `delay`, so the services become ready (and their checks fall due) apart.
                f.write(f'ready = {{ tcp = "127.0.0.1:{port}", interval = "10ms" }}\n')
                f.write(f'health = {{ tcp = "127.0.0.1:{port}", interval = "{interval}", '
                        'timeout = "250ms" }\n')
            elif case == "health-no-ready":
                f.write(f'start-secs = "{start_secs}"\n')
                f.write(f'health = {{ tcp = "127.0.0.1:{port}", interval = "{interval}", '
                        'timeout = "250ms" }\n')
            elif case == "ready-only":
                f.write(f'ready = {{ tcp = "127.0.0.1:{port}", interval = "10ms" }}\n')
            elif case != "none":
                raise ValueError(case)


def count_lines_between(path, lo, hi):
    try:
        with open(path) as f:
            return sum(1 for line in f if line.strip() and lo <= int(line) < hi)
    except FileNotFoundError:
        return 0


IDLE_CPU = [0, 0]  # (total, idle) jiffies over all idle windows


def measure_idle(case):
    run_dir = os.path.join(WORK_DIR, f"idle-{case}")
    os.makedirs(run_dir)
    ports = [free_port() for _ in IDLE_SERVICES]
    logs = [os.path.join(run_dir, f"svc{i}.log") for i in range(len(IDLE_SERVICES))]
    config = os.path.join(run_dir, "tend.toml")
    idle_config(case, ports, logs, config)
    tend = Tend(config)
    try:
        time.sleep(SETTLE_SECS)
        if case == "health-split":
            # tend on PIN_CPU, its services on the other CPUs: a check's connection then
            # wakes the listener elsewhere, and it cannot preempt tend.
            others = ALL_CPUS - {PIN_CPU} or ALL_CPUS
            for svc in children_of(tend.pid1):
                os.sched_setaffinity(svc, others)
            for tid in os.listdir(f"/proc/{tend.pid1}/task"):
                os.sched_setaffinity(int(tid), {PIN_CPU})
            time.sleep(0.5)
        log(f"idle ({case}): watching tend for {IDLE_SECS}s")
        t0 = time.monotonic_ns()
        v0, i0 = tend.switches()
        c0 = cpu_ns(tend.pid1)
        s0 = cpu_times()
        time.sleep(IDLE_SECS)
        v1, i1 = tend.switches()
        c1 = cpu_ns(tend.pid1)
        t1 = time.monotonic_ns()
        s1 = cpu_times()
        IDLE_CPU[0] += s1[0] - s0[0]
        IDLE_CPU[1] += s1[1] - s0[1]
        BUSY["idle"] = 1 - IDLE_CPU[1] / max(1, IDLE_CPU[0])
        if not tend.alive():
            raise RuntimeError("tend exited during the idle window")
    finally:
        odd = tend.close()
    for line in odd:
        log(f"stderr of tend (idle {case}): {line}")
    per_svc = [count_lines_between(lg, t0, t1) for lg in logs]
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"voluntary": v1 - v0, "involuntary": i1 - i0, "cpu_us": (c1 - c0) / 1e3,
            "checks": sum(per_svc), "per_svc": per_svc, "secs": (t1 - t0) / 1e9}


# --------------------------------------------------------------------------------------------
# Report


def machine_facts():
    return benchlib.machine_facts(TEND, TEND_SOURCE)


def us(ns):
    x = ns / 1e3
    return f"{x:,.0f} µs" if abs(x) >= 100 else f"{x:.1f} µs"


def stats(values):
    v = sorted(values)
    return {"n": len(v), "median": percentile(v, 50), "p99": percentile(v, 99), "max": v[-1],
            "min": v[0]}


def latency_rows(res):
    rows = []
    where = {"free": "unpinned", "pinned": f"all on CPU {PIN_CPU}"}
    base = {m: stats([x["total"] for x in res[("exec", m)]]) for m, _ in MODES}
    floor = {m: stats([x["total"] for x in res[("floor", m)]]) for m, _ in MODES}
    for m, _ in MODES:
        b = base[m]
        rows.append((f"Baseline, exec cost: C parent reads the clock, fork + exec of the stamp "
                     f"program, its first clock read; {where[m]}",
                     f"{b['n']}", f"{us(b['median'])} / {us(b['p99'])}", "—", ""))
    for m, _ in MODES:
        f = floor[m]
        ok = f["p99"] - base[m]["median"] < 1_000_000
        rows.append((f"Baseline, minimal C supervisor: writer's newline → epoll_wait wakes → "
                     f"read → fork + exec; {where[m]}",
                     f"{f['n']}", f"{us(f['median'])} / {us(f['p99'])}",
                     f"{us(f['median'] - base[m]['median'])} / "
                     f"{us(f['p99'] - base[m]['median'])} {mark(ok)}", "(< 1 ms)"))
    labels = {
        "notify-fd": "`notify-fd = 3`: newline written → dependent's first instruction",
        "sd-notify": "`sd-notify = true`: `READY=1` sent → dependent's first instruction",
    }
    verdict = {}
    for kind in ("notify-fd", "sd-notify"):
        for m, _ in MODES:
            s = stats([x["total"] for x in res[(kind, m)]])
            net_med = s["median"] - base[m]["median"]
            net_p99 = s["p99"] - base[m]["median"]
            ok = net_p99 < 1_000_000
            verdict[(kind, m)] = ok
            rows.append((f"{labels[kind]}; {where[m]}", f"{s['n']}",
                         f"{us(s['median'])} / {us(s['p99'])}",
                         f"{us(net_med)} / {us(net_p99)} {mark(ok)}", "< 1 ms"))
    for m, _ in MODES:
        runs = res[("tcp", m)]
        s = stats([x["total"] for x in runs])
        rows.append((f"`tcp`, interval {PROBE_INTERVAL_MS} ms: listen() → dependent's first "
                     f"instruction (includes the wait for the next probe); {where[m]}",
                     f"{s['n']}", f"{us(s['median'])} / {us(s['p99'])}",
                     f"{us(s['median'] - base[m]['median'])} / "
                     f"{us(s['p99'] - base[m]['median'])}",
                     f"≤ {PROBE_INTERVAL_MS} ms + 1 ms"))
        w = stats([x["wait"] for x in runs])
        rows.append((f"… of which the wait for the probe: listen() → SYN-ACK of the first "
                     f"probe that succeeds (max {us(w['max'])})", f"{w['n']}",
                     f"{us(w['median'])} / {us(w['p99'])}", "—", f"≤ {PROBE_INTERVAL_MS} ms"))
        p = stats([x["past"] for x in runs])
        ok = p["p99"] - base[m]["median"] < 1_000_000
        verdict[("tcp", m)] = ok
        rows.append(("… and the rest: probe's SYN-ACK → dependent's first instruction", f"{p['n']}",
                     f"{us(p['median'])} / {us(p['p99'])}",
                     f"{us(p['median'] - base[m]['median'])} / "
                     f"{us(p['p99'] - base[m]['median'])} {mark(ok)}", "< 1 ms"))
    gaps = sorted(g for m, _ in MODES for x in res[("tcp", m)] for g in x["gaps"])
    attempts = sorted(x["attempts"] for m, _ in MODES for x in res[("tcp", m)])
    if gaps:
        rows.append((f"`tcp` probe attempts seen on lo before and including the successful "
                     f"one, median (min–max); spacing of attempts median / p99",
                     f"{len(attempts)}",
                     f"{percentile(attempts, 50)} ({attempts[0]}–{attempts[-1]}); "
                     f"{us(percentile(gaps, 50))} / {us(percentile(gaps, 99))}",
                     "—", f"{PROBE_INTERVAL_MS} ms"))
    return rows, verdict


IDLE_LABELS = {
    "health": "3 × `health.tcp` every 1 s + 1 × every 500 ms (services also have a `ready` "
              "tcp probe, long done)",
    "health-split": "the same, with tend on one CPU and the services on the other(s)",
    "health-no-ready": "the same health checks, services without `ready` (ready after "
                       "`start-secs` 1–1.6 s)",
    "ready-only": "no health checks; `ready` tcp probes every 10 ms, all succeeded before the "
                  "window",
    "none": "no health checks, no `ready` (control)",
}


def idle_rows(idle):
    rows = []
    nominal = IDLE_SECS * (3 * 1 + 1 * 2)
    for case, r in idle.items():
        vol, invol = r["voluntary"], r["involuntary"]
        if case.startswith("health"):
            checks_ok = r["checks"] >= 0.9 * nominal
            # one wake-up per check made: the timer. The answer (EPOLLOUT of the probe's
            # connect) is already there when tend goes back to epoll_wait, see the notes.
            ok = checks_ok and r["checks"] <= vol <= r["checks"] + 2
            expected = f"{nominal} checks, 1 wake-up each"
            made = f"{r['checks']} ({' + '.join(str(c) for c in r['per_svc'])}) {mark(checks_ok)}"
            wanted = (f"{r['checks']} (1 per check made)" if checks_ok
                      else f"{nominal} (1 per check due)")
        else:
            ok = vol + invol == 0
            expected = "no checks, 0 wake-ups"
            made = f"{r['checks']}"
            wanted = "0"
        per = f"{vol / r['checks']:.2f}" if r["checks"] else "—"
        rows.append((IDLE_LABELS[case], expected, made, wanted,
                     f"{vol} + {invol} {mark(ok)}", per, f"{r['cpu_us'] / 1e3:.2f} ms"))
    return rows


def markdown(lat_rows, idle, facts, notes):
    lines = [
        *facts_lines(facts),
        f"- Settings: RUNS={RUNS}, ROUNDS={ROUNDS}, GAP_MS={GAP_MS}, "
        f"PROBE_INTERVAL_MS={PROBE_INTERVAL_MS}, IDLE_SECS={IDLE_SECS}, "
        f"SETTLE_SECS={SETTLE_SECS}, PIN_CPU={PIN_CPU}, NICE={NICE}, FIFO={FIFO}, "
        f"QUIET_WAIT={QUIET_WAIT:g}",
        "- CPU busy (all processes on the machine, this benchmark's included, which mostly "
        "sleeps): " + ", ".join(f"{k} {v * 100:.0f} %" for k, v in BUSY.items()),
        f"- tend binary: `{TEND_SOURCE}` (modified {facts['built']}), `{facts['version']}`",
    ]
    if lat_rows:
        lines += [
            "",
            "| Dependency ready → dependent started | runs | median / p99 | minus the exec "
            "baseline's median: median / p99 | target |",
            "|---|---|---|---|---|",
        ]
        lines += [f"| {' | '.join(r)} |" for r in lat_rows]
    if idle:
        lines += [
            "",
            f"| tend idle for {IDLE_SECS} s, supervising 4 TCP listeners | expected | checks "
            "made in the window (per service) | expected voluntary switches | tend's context "
            "switches, voluntary + involuntary | voluntary per check | tend CPU time |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [f"| {' | '.join(r)} |" for r in idle_rows(idle)]
    lines += [f"\n{n}" for n in notes]
    return "\n".join(lines) + "\n"


def main():
    os.makedirs(WORK_DIR, exist_ok=True)
    lat_rows, idle, notes = None, {}, []
    raw = {}
    if "latency" in STAGES:
        res = measure_latency()
        lat_rows, verdict = latency_rows(res)
        raw["latency"] = {f"{k}/{m}": stats([x["total"] for x in v]) for (k, m), v in res.items()}
    if "idle" in STAGES:
        for case in ("health", "health-split", "health-no-ready", "ready-only", "none"):
            idle[case] = measure_idle(case)
        raw["idle"] = idle
    table = markdown(lat_rows, idle, machine_facts(), notes)
    emit(table, OUT_FILE)
    log(f"raw: {raw}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    main()
