"""Helpers shared by the benchmark harnesses (initbench.py, control-bench.py,
readiness-bench.py, supervisor-bench.py): settings from the environment, logging, /proc
readings from the host side, running a program as PID 1 of a fresh pid namespace, and the
report's common parts. Imported from the harness's own directory, which Python puts first on
sys.path when it runs a script by path (as the bench/*.sh wrappers do).
"""

import ctypes
import datetime
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time

# The load average when the harness started (it imports this module first thing).
LOAD_AT_START = os.getloadavg()

# unshare's command line for a fresh pid namespace with its own /proc; --kill-child takes the
# namespace's PID 1 (and so the whole namespace) down should unshare itself die.
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL", "--"]

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


# An integer setting from the environment; unset or blank gives the default.
def env_int(name, default):
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


# A log function printing each message as PREFIX + message on stderr.
def logger(prefix):
    def log(msg):
        print(f"{prefix}{msg}", file=sys.stderr, flush=True)

    return log


# --------------------------------------------------------------------------------------------
# /proc helpers (read from the host side, which never wakes the process being observed)


# /proc/PID/status as a dict of its fields (PID may also be "PID/task/TID").
def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


# (voluntary, involuntary) context switches summed over all threads of pid.
def context_switches(pid):
    vol = invol = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        st = proc_status(f"{pid}/task/{tid}")
        vol += int(st["voluntary_ctxt_switches"])
        invol += int(st["nonvoluntary_ctxt_switches"])
    return vol, invol


# CPU time consumed so far by all threads of pid, in ns (schedstat is exact).
def threads_cpu_ns(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


# The parent pid of pid, from /proc/PID/stat.
def parent_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


# The children of pid as its main thread's /proc entry lists them ([] once it is gone): the
# quick way, where CONFIG_PROC_CHILDREN is there (children_of scans instead).
def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


# The children of ppid, found by a scan of /proc.
def children_of(ppid):
    # /proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN, so scan instead.
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if parent_of(entry) == ppid:
                    kids.append(int(entry))
            except (OSError, ValueError):
                pass  # exited while we looked
    return kids


# The binary pid runs (/proc/PID/exe), or None if it is gone.
def exe_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


# (total, idle + iowait) jiffies of all CPUs so far, from /proc/stat.
def cpu_times():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]  # total, idle + iowait


# --------------------------------------------------------------------------------------------
# A program as PID 1 of a fresh pid namespace


# In a child before exec: have it SIGKILLed when the harness dies.
def die_with_parent():
    # unshare's --kill-child then takes the namespace's PID 1, and so the namespace, with it.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# Starts `argv` as PID 1 of a fresh pid namespace; returns unshare's Popen and its stderr file.
def spawn_pid1(argv, preexec_fn, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL):
    stderr = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [*UNSHARE, *argv],
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        # A session of its own: no controlling terminal for the namespace, and a Ctrl-C
        # reaches only the harness, whose cleanup then runs in order.
        start_new_session=True,
        preexec_fn=preexec_fn,
    )
    return proc, stderr


# The namespace's PID 1 once it runs `binary`, polled every `pause` s; None after 10 s.
def find_pid1(proc, binary, pause, children=children_of):
    deadline = time.monotonic() + 10
    want = os.path.realpath(binary)
    while True:
        if time.monotonic() > deadline or proc.poll() is not None:
            return None
        pid1 = next((k for k in children(proc.pid) if exe_of(k) == want), None)
        if pid1 is not None:
            return pid1
        time.sleep(pause)


# Kills the namespace by SIGKILL to its PID 1 and waits for unshare.
def kill_pid1(proc, pid1):
    if pid1 is not None and proc.poll() is None:
        try:
            # Only while unshare still owns it: the pid cannot have been reused then.
            if parent_of(pid1) == proc.pid:
                os.kill(pid1, signal.SIGKILL)
        except (OSError, ValueError):
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# The lines of a spawn_pid1 stderr file, which it then closes, minus unshare's own noise.
def stderr_lines(stderr):
    stderr.seek(0)
    lines = [line for line in stderr.read().decode(errors="replace").splitlines()
             # util-linux 2.38 unshare complains when its child died of SIGKILL (it tries
             # signal(SIGKILL, SIG_DFL) to re-raise it): that is our teardown, not an error.
             if "sigprocmask unblock failed" not in line]
    stderr.close()
    return lines


# --------------------------------------------------------------------------------------------
# Statistics and the report


# Nearest-rank percentile of an already sorted list.
def percentile(sorted_values, p):
    rank = max(1, min(len(sorted_values), math.ceil(p / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


# The table's verdict mark.
def mark(ok):
    return "✅" if ok else "❌"


# Machine, date and tend's version and build time (of `source`) for a table's header.
def machine_facts(tend, source):
    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    version = subprocess.run([tend, "--version"], capture_output=True).stdout.decode().strip()
    built = datetime.datetime.fromtimestamp(os.path.getmtime(source), datetime.timezone.utc)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": f"{os.cpu_count()} CPUs ({cpu_model})" if cpu_model else f"{os.cpu_count()} CPUs",
        "kernel": platform.release(),
        "version": version,
        "built": built.strftime("%Y-%m-%d %H:%M UTC"),
    }


# The header's first lines from machine_facts: date, machine, load average at start and end.
def facts_lines(facts):
    return [
        f"- Date: {facts['date']}",
        f"- Machine: {facts['cpus']}, kernel {facts['kernel']}",
        "- Load average (1, 5, 15 min) at start: "
        + ", ".join(f"{x:.2f}" for x in LOAD_AT_START)
        + "; at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    ]


# Writes the finished table to stdout, and to out_file too if one is given.
def emit(table, out_file):
    sys.stdout.write(table)
    if out_file:
        with open(out_file, "w") as f:
            f.write(table)


# SIGINT/SIGTERM handler: unwind through the `finally`s, which kill the namespaces.
def stop_on_signal(signum, _frame):
    raise SystemExit(128 + signum)
