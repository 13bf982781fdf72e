#!/usr/bin/env python3
"""What services cost, and what it costs tend to say: `status` and `/metrics` with the
services' CPU time and memory in them, and tend's wake-ups with and without memory-limit.
Started by usage-bench.sh, which checks the prerequisites, compiles control-client.c and
passes everything in the environment:

  TEND_BIN      the tend binary (a private copy)     TEND_SOURCE  where it was copied from
  BASELINE_BIN  optional: a tend without usage       BASELINE_SOURCE  where it came from
  CLIENT        the compiled control-client          WORK_DIR     a scratch directory
  SERVICES, REQUESTS, IDLE_SECS                      sizes (see the .sh)
  OUT_FILE      optional: also write the table there

tend runs `tend run CONFIG` as PID 1 of a fresh pid namespace (`unshare --pid --fork
--mount-proc`) supervising SERVICES copies of `sleep 1000000`, with its control socket in
WORK_DIR and `http` on a free port of 127.0.0.1. Its /proc is the namespace's: tend and
its SERVICES services. Everything about tend is observed from outside through /proc, which
never wakes it. Killing that PID 1 makes the kernel SIGKILL every service, so teardown is
one kill, in a `finally`.
"""

import json
import os
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
BASELINE = os.environ.get("BASELINE_BIN", "")
BASELINE_SOURCE = os.environ.get("BASELINE_SOURCE", BASELINE)
CLIENT = os.environ["CLIENT"]
WORK_DIR = os.environ["WORK_DIR"]
SERVICES = env_int("SERVICES", 100)
REQUESTS = env_int("REQUESTS", 1000)
IDLE_SECS = env_int("IDLE_SECS", 20)
OUT_FILE = os.environ.get("OUT_FILE", "")
WARM_UP = 20
CHECK_EVERY = 5  # src/core/spec.rs MEMORY_CHECK_EVERY

log = logger("[usage-bench] ")


class Tend:
    """`tend run CONFIG` as PID 1 of a fresh pid namespace; close() SIGKILLs it."""

    def __init__(self, binary, config):
        self.binary = binary
        self.proc, self.stderr = spawn_pid1([binary, "run", config], die_with_parent)
        self.pid1 = find_pid1(self.proc, binary, 0.005)
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

    def switches(self):
        return sum(context_switches(self.pid1))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(name, sock, port, limit=None):
    path = os.path.join(WORK_DIR, name)
    sleep_bin = os.path.realpath(shutil.which("sleep"))
    with open(path, "w") as f:
        f.write(f'[tend]\nsocket = "{sock}"\nhttp = "127.0.0.1:{port}"\n')
        for i in range(SERVICES):
            f.write(f'\n[services.svc{i:03d}]\ncommand = ["{sleep_bin}", "1000000"]\n')
            if limit:
                f.write(f'memory-limit = "{limit}"\n')
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


def measure_idle(tend, label):
    time.sleep(2.0)  # let anything the previous stage set off finish
    v0, i0 = context_switches(tend.pid1)
    c0 = cpu_ns(tend.pid1)
    log(f"idle ({label}): watching tend for {IDLE_SECS}s")
    time.sleep(IDLE_SECS)
    v1, i1 = context_switches(tend.pid1)
    return {"voluntary": v1 - v0, "involuntary": i1 - i0,
            "cpu_us": (cpu_ns(tend.pid1) - c0) / 1e3}


def timed(tend, argv, n):
    """Runs control-client with `argv` for n requests (after WARM_UP discarded ones);
    returns the latencies in µs, sorted, and tend's CPU time and switches per request."""
    subprocess.run([CLIENT, *argv(WARM_UP)], check=True, capture_output=True)
    s0, c0 = tend.switches(), cpu_ns(tend.pid1)
    done = subprocess.run([CLIENT, *argv(n)], capture_output=True, timeout=120 + n)
    s1, c1 = tend.switches(), cpu_ns(tend.pid1)
    if done.returncode != 0:
        raise RuntimeError(f"control-client {argv(n)[0]}: {done.stderr.decode().strip()}")
    lat = sorted(int(x) / 1e3 for x in done.stdout.split())
    return {
        "n": len(lat),
        "median": percentile(lat, 50),
        "p99": percentile(lat, 99),
        "max": lat[-1],
        "cpu_us": (c1 - c0) / 1e3 / len(lat),
        "switches": (s1 - s0) / len(lat),
    }


def measure_answers(binary, name):
    """status (raw and through the client binary) and /metrics against `binary`."""
    sock = os.path.join(WORK_DIR, f"ctl-{name}", "control.sock")
    port = free_port()
    tend = Tend(binary, write_config(f"{name}.toml", sock, port))
    try:
        log(f"{name}: tend is pid {tend.pid1}; waiting for {SERVICES} services to run")
        wait_all_running(sock)
        out = {}
        if name == "tend":
            out["idle_before"] = measure_idle(tend, "no memory-limit, before the requests")
        log(f"{name}: {REQUESTS} status requests")
        out["raw"] = timed(tend, lambda n: ["raw", sock, str(n)], REQUESTS)
        spawned = max(1, REQUESTS // 5)
        log(f"{name}: {spawned} runs of `tend status --json`")
        out["cli"] = timed(tend, lambda n: ["spawn", str(n), binary, "status", "--json",
                                            "--socket", sock], spawned)
        log(f"{name}: {REQUESTS} scrapes of /metrics")
        out["scrape"] = timed(tend, lambda n: ["http", str(port), str(n)], REQUESTS)
        status_file = os.path.join(WORK_DIR, f"{name}-status.json")
        metrics_file = os.path.join(WORK_DIR, f"{name}-metrics.txt")
        subprocess.run([CLIENT, "raw", sock, "1", status_file], check=True, capture_output=True)
        subprocess.run([CLIENT, "http", str(port), "1", metrics_file], check=True,
                       capture_output=True)
        out["status_bytes"] = os.path.getsize(status_file)
        out["metrics_bytes"] = os.path.getsize(metrics_file)
        with open(status_file) as f:
            services = json.load(f)["services"]
        out["with_usage"] = sum(1 for s in services if s.get("memory_bytes"))
        out["memory_mib"] = sum(s.get("memory_bytes") or 0 for s in services) / (1 << 20)
        if name == "tend":
            out["idle_after"] = measure_idle(tend, "no memory-limit, after the requests")
        return out
    finally:
        tend.close()


def measure_limited():
    """tend's wake-ups with a memory-limit on every service: one check every 5 s."""
    sock = os.path.join(WORK_DIR, "ctl-limited", "control.sock")
    tend = Tend(TEND, write_config("limited.toml", sock, free_port(), limit="1GiB"))
    try:
        wait_all_running(sock)
        idle = measure_idle(tend, f"memory-limit on all {SERVICES} services")
        last = status_once(sock)
        idle["restarts"] = sum(s["restarts"] for s in last["services"])
        return idle
    finally:
        tend.close()


def fmt_us(x):
    return f"{x:,.0f} µs" if x >= 100 else f"{x:.1f} µs"


def lat_cell(r):
    return (f"{fmt_us(r['median'])} / {fmt_us(r['p99'])} ({fmt_us(r['max'])}); "
            f"tend {fmt_us(r['cpu_us'])} CPU, {r['switches']:.2f} switches per request")


def idle_cell(r):
    n = r["voluntary"] + r["involuntary"]
    return n, f"{n} ({r['voluntary']}+{r['involuntary']}), tend CPU {fmt_us(r['cpu_us'])}"


def build_table(new, base, limited):
    rows = []
    kinds = [
        ("raw", "`status` round trip, raw client (connect, send, read to EOF; no process "
                "start), usage included", 5000, "under 5 ms"),
        ("cli", "`tend status --json --socket S` (process spawn, connect, request, print, "
                "exit), usage included", 5000, "under 5 ms"),
        ("scrape", "`/metrics` scrape (connect, GET, read to EOF)", 10000, "under 10 ms"),
    ]
    for key, label, limit_us, target in kinds:
        r = new[key]
        ok = r["median"] < limit_us
        rows.append((f"{label}: median / p99 (max) of {r['n']:,}",
                     f"{lat_cell(r)} {mark(ok)}", f"{target} (median)"))
        if base:
            b = base[key]
            rows.append((f"… the same without usage (baseline binary)", lat_cell(b), ""))
    rows.append((f"`status` answer / `/metrics` body ({SERVICES} services)",
                 f"{new['status_bytes']:,} / {new['metrics_bytes']:,} bytes"
                 + (f" (baseline: {base['status_bytes']:,} / {base['metrics_bytes']:,})"
                    if base else ""), ""))
    rows.append(("Services with usage in the answer; their memory added up",
                 f"{new['with_usage']} of {SERVICES}; {new['memory_mib']:.1f} MiB", ""))
    for key, label in (("idle_before", "before the requests"), ("idle_after", "after them")):
        n, cell = idle_cell(new[key])
        rows.append((f"Idle wake-ups in {IDLE_SECS} s, no memory-limit, {label}: context "
                     "switches (vol+invol)", f"{cell} {mark(n == 0)}", "0"))
    n, cell = idle_cell(limited)
    expected = IDLE_SECS // CHECK_EVERY
    rows.append((f"Idle wake-ups in {IDLE_SECS} s, memory-limit on all {SERVICES} services "
                 f"(one check every {CHECK_EVERY} s): context switches (vol+invol)",
                 f"{cell}; {limited['restarts']} restarts", f"about {expected}, no more"))
    return rows


def markdown(rows, facts):
    lines = [
        *facts_lines(facts),
        f"- Settings: SERVICES={SERVICES}, REQUESTS={REQUESTS} (spawned clients: "
        f"{max(1, REQUESTS // 5)}), IDLE_SECS={IDLE_SECS}",
        f"- tend binary: `{TEND_SOURCE}` ({facts['size']:,} bytes, modified {facts['built']}), "
        f"`{facts['version']}`",
    ]
    if BASELINE:
        lines.append(f"- Baseline binary: `{BASELINE_SOURCE}` ({os.path.getsize(BASELINE):,} "
                     "bytes)")
    lines += ["", "| Metric | Result | Target |", "|---|---|---|"]
    lines += [f"| {m} | {v} | {t} |" for m, v, t in rows]
    return "\n".join(lines) + "\n"


def main():
    os.makedirs(WORK_DIR, exist_ok=True)
    new = measure_answers(TEND, "tend")
    base = measure_answers(BASELINE, "baseline") if BASELINE else None
    limited = measure_limited()
    facts = benchlib.machine_facts(TEND, TEND_SOURCE)
    facts["size"] = os.path.getsize(TEND)
    emit(markdown(build_table(new, base, limited), facts), OUT_FILE)
    log(json.dumps({"tend": new, "baseline": base, "limited": limited}, default=str))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    main()
