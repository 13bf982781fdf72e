"""Scheduled-task benchmark harness, run by bench/schedule-bench.sh (which documents it and
its settings): how late runs start (tend's @every 1s and per-second cron rule; Debian's cron
and busybox crond at minute boundaries), and tend's wake-ups per run and while idle.
"""

import json
import os
import signal
import subprocess
import sys
import time

from benchlib import (
    children,
    context_switches,
    emit,
    env_int,
    facts_lines,
    find_pid1,
    kill_pid1,
    logger,
    machine_facts,
    percentile,
    mark,
    spawn_pid1,
    stderr_lines,
    stop_on_signal,
    die_with_parent,
)

WORK = os.environ["WORK_DIR"]
TEND = os.environ["TEND_BIN"]
STAMP = os.environ["STAMP"]
FLOOR = os.environ["FLOOR"]
CRON = os.environ.get("CRON_BIN", "none")
RUN_SECS = env_int("RUN_SECS", 300)
WAKE_RUNS = env_int("WAKE_RUNS", 30)
IDLE_SECS = env_int("IDLE_SECS", 20)
MINUTES = env_int("MINUTES", 3)
STAGES = (os.environ.get("STAGES") or "tend wake peers").split()
OUT_FILE = os.environ.get("OUT_FILE", "")

log = logger("schedule-bench: ")
SECOND = 1_000_000_000


def stamps(path):
    """(mono_ns, real_ns) of each run the task made."""
    try:
        with open(path) as f:
            return [tuple(int(x) for x in line.split()) for line in f if line.strip()]
    except OSError:
        return []


def start_tend(name, toml):
    """tend run on `toml` as PID 1 of a fresh namespace: (Popen, stderr file, host pid)."""
    config = os.path.join(WORK, f"{name}.toml")
    with open(config, "w") as f:
        f.write(f'[tend]\nsocket = "{WORK}/{name}.sock"\n{toml}')
    proc, err = spawn_pid1([TEND, "run", config], die_with_parent)
    pid1 = find_pid1(proc, TEND, 0.01)
    if pid1 is None:
        kill_pid1(proc, None)
        sys.exit("tend did not start:\n" + "\n".join(stderr_lines(err)))
    return proc, err, pid1


def status(name):
    out = subprocess.run(
        [TEND, "status", "--json", "--socket", f"{WORK}/{name}.sock"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        return None
    return {s["name"]: s for s in json.loads(out.stdout)["services"]}


def wait_status(name):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        s = status(name)
        if s is not None:
            return s
        time.sleep(0.05)
    sys.exit("tend does not answer on its socket")


def summary(lateness_ms):
    v = sorted(lateness_ms)
    return {
        "n": len(v),
        "median": percentile(v, 50),
        "p90": percentile(v, 90),
        "p99": percentile(v, 99),
        "max": v[-1],
    }


def tend_lateness():
    """Both of tend's tasks for RUN_SECS: lateness of each run, in ms."""
    every_log, cron_log = f"{WORK}/every.log", f"{WORK}/cron.log"
    proc, err, pid1 = start_tend(
        "lateness",
        f'[services.every]\ncommand = ["{STAMP}", "{every_log}"]\nschedule = "@every 1s"\n'
        f'[services.cron]\ncommand = ["{STAMP}", "{cron_log}"]\nschedule = "* * * * * *"\n',
    )
    try:
        s = wait_status("lateness")
        # The first due time of @every, on the wall clock, turned into the monotonic clock
        # with a pair of readings taken here back to back.
        first_due_wall_ns = s["every"]["next_run_ms"] * 1_000_000
        wall, mono = time.time_ns(), time.monotonic_ns()
        first_due = mono + (first_due_wall_ns - wall)
        log(f"tend: two tasks for {RUN_SECS} s, and the floor alongside")
        floors = [
            subprocess.Popen(
                [FLOOR, str(RUN_SECS), offset, STAMP, f"{WORK}/floor-{offset}.log", *extra],
                preexec_fn=die_with_parent,
            )
            for offset, extra in [("500", []), ("250", ["setsid"])]
        ]
        time.sleep(RUN_SECS + 1.5)
        for floor in floors:
            floor.wait(timeout=10)
    finally:
        kill_pid1(proc, pid1)
        stderr_lines(err)
    floor_ms = [
        [((r - int(offset) * 1_000_000) % SECOND) / 1e6 for _, r in stamps(f"{WORK}/floor-{offset}.log")]
        for offset in ["500", "250"]
    ]
    every = []
    for m, _ in stamps(every_log):
        k = round((m - first_due) / SECOND)
        every.append((m - (first_due + k * SECOND)) / 1e6)
    cron = [(r % SECOND) / 1e6 for _, r in stamps(cron_log)]
    return (
        summary(every[:RUN_SECS]),
        summary(cron[:RUN_SECS]),
        summary(floor_ms[0]),
        summary(floor_ms[1]),
    )


def tend_wakeups():
    """Voluntary context switches of tend: per run of an @every 2s task, and while only
    far-off schedules are planned."""
    wake_log = f"{WORK}/wake.log"
    proc, err, pid1 = start_tend(
        "wake",
        f'[services.tick]\ncommand = ["{STAMP}", "{wake_log}"]\nschedule = "@every 2s"\n',
    )
    try:
        wait_status("wake")
        # From just after a run to just after the run WAKE_RUNS later.
        while len(stamps(wake_log)) < 1:
            time.sleep(0.05)
        time.sleep(0.5)
        runs0, (vol0, _) = len(stamps(wake_log)), context_switches(pid1)
        log(f"tend: wake-ups over {WAKE_RUNS} runs of @every 2s")
        time.sleep(2 * WAKE_RUNS)
        runs1, (vol1, _) = len(stamps(wake_log)), context_switches(pid1)
    finally:
        kill_pid1(proc, pid1)
        stderr_lines(err)
    proc, err, pid1 = start_tend(
        "idle",
        f'[services.nightly]\ncommand = ["{STAMP}", "{WORK}/never.log"]\n'
        'schedule = "0 3 * * *"\n'
        f'[services.hourly]\ncommand = ["{STAMP}", "{WORK}/never.log"]\n'
        'schedule = "@every 1h"\n',
    )
    try:
        wait_status("idle")
        time.sleep(1)
        v0, _ = context_switches(pid1)
        log(f"tend: idle {IDLE_SECS} s with far-off schedules")
        time.sleep(IDLE_SECS)
        v1, _ = context_switches(pid1)
    finally:
        kill_pid1(proc, pid1)
        stderr_lines(err)
    return {"runs": runs1 - runs0, "switches": vol1 - vol0, "idle": v1 - v0}


def peer_lateness(name, argv, log_path):
    """A minute-resolution cron daemon in a fresh namespace for MINUTES full minutes: the
    lateness of each run after its minute, in ms."""
    proc, err = spawn_pid1(argv, die_with_parent)
    try:
        # Start a little after a minute begins, so that MINUTES whole minutes follow.
        now = time.time()
        time.sleep(60 * MINUTES + (60 - now % 60) + 5)
    finally:
        # SIGKILL to the namespace's init takes it all down.
        for kid in children(proc.pid):
            try:
                os.kill(kid, signal.SIGKILL)
            except OSError:
                pass
        kill_pid1(proc, None)
        lines = stderr_lines(err)
    runs = stamps(log_path)
    if not runs:
        log(f"{name}: no run; its stderr:\n" + "\n".join(lines))
        return None
    return summary([(r % (60 * SECOND)) / 1e6 for _, r in runs])


def peers():
    results = {}
    bb_dir = f"{WORK}/busybox-crontabs"
    os.makedirs(bb_dir, exist_ok=True)
    with open(f"{bb_dir}/root", "w") as f:
        f.write(f"* * * * * {STAMP} {WORK}/busybox.log\n")
    log(f"busybox crond: {MINUTES} min")
    results["busybox crond"] = peer_lateness(
        "busybox crond",
        ["busybox", "crond", "-f", "-c", bb_dir, "-L", "/dev/null"],
        f"{WORK}/busybox.log",
    )
    if CRON != "none" and os.access(CRON, os.X_OK):
        d = f"{WORK}/cron.d"
        os.makedirs(d, exist_ok=True)
        with open(f"{d}/bench", "w") as f:
            f.write(f"* * * * * root {STAMP} {WORK}/debian-cron.log\n")
        open(f"{WORK}/empty-crontab", "w").close()
        # The group the package would have made, for cron's check of its spool.
        with open("/etc/group") as f, open(f"{WORK}/group", "w") as g:
            g.write(f.read().rstrip("\n") + "\ncrontab:x:64999:\n")
        # A mount namespace where cron sees only this task: its own /etc/cron.d, an empty
        # /etc/crontab and spool (a tmpfs over /var/spool), a crontab group, and a /run for
        # its pid file. Nothing of this reaches the machine's own mounts or files.
        script = (
            f"mount --bind {d} /etc/cron.d || exit 1; "
            f"if [ -e /etc/crontab ]; then mount --bind {WORK}/empty-crontab /etc/crontab; fi; "
            f"mount --bind {WORK}/group /etc/group || exit 1; "
            "mount -t tmpfs none /var/spool || exit 1; mkdir -p /var/spool/cron/crontabs; "
            "chgrp crontab /var/spool/cron/crontabs; chmod 1730 /var/spool/cron/crontabs; "
            f"mount -t tmpfs none /run && exec {CRON} -f"
        )
        log(f"Debian cron: {MINUTES} min")
        results["Debian cron"] = peer_lateness(
            "Debian cron",
            ["unshare", "--mount", "--", "sh", "-c", script],
            f"{WORK}/debian-cron.log",
        )
    else:
        log("Debian cron: not available, skipped")
    return results


def row(name, rule, s, target=None):
    if s is None:
        return f"| {name} | {rule} | no run | | | | | |"
    ok = "" if target is None else mark(s["median"] <= target)
    return (
        f"| {name} | {rule} | {s['n']} | {s['median']:.2f} | {s['p90']:.2f} | {s['p99']:.2f} "
        f"| {s['max']:.2f} | {ok} |"
    )


def main():
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    facts = machine_facts(TEND, os.environ.get("TEND_SOURCE", TEND))
    lateness = tend_lateness() if "tend" in STAGES else None
    wake = tend_wakeups() if "wake" in STAGES else None
    others = peers() if "peers" in STAGES else {}
    out = ["### Scheduled tasks", ""]
    out += facts_lines(facts)
    out += [f"- tend: {facts['version']}, built {facts['built']}", ""]
    out += [
        "| Scheduler | Rule | Runs | Median ms late | p90 | p99 | Max | Median within 10 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    if lateness:
        out.append(row("tend", "`@every 1s`", lateness[0], 10))
        out.append(row("tend", "`* * * * * *`", lateness[1], 10))
        out.append(row("floor: C loop, clock_nanosleep + fork/exec", "every second", lateness[2]))
        out.append(row("floor, with setsid() in the child as tend's services", "every second", lateness[3]))
    for name, s in others.items():
        out.append(row(name, "`* * * * *`", s))
    out.append("")
    if wake:
        per_run = wake["switches"] / max(1, wake["runs"])
        out += [
            "| tend's wake-ups | Value |",
            "|---|---|",
            f"| Voluntary context switches over {wake['runs']} runs of `@every 2s` "
            f"| {wake['switches']} ({per_run:.2f} per run) |",
            f"| ... in {IDLE_SECS} s with only `0 3 * * *` and `@every 1h` planned "
            f"| {wake['idle']} |",
            "",
        ]
    emit("\n".join(out) + "\n", OUT_FILE)


if __name__ == "__main__":
    main()
