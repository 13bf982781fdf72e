#!/usr/bin/env python3
"""Harness of bench/supervisor-bench.sh: tend's supervisor mode side by side with supervisord,
runit (runsvdir) and s6 (s6-svscan). Run it through the shell script, which compiles the C
helpers and cleans up; see the script's header for the settings.

Every run puts one supervisor under supervisor-init (PID 1 of a fresh pid namespace made by
`unshare --pid --fork --mount-proc`), with services that are all the same compiled program
(supervisor-svc), and ends with SIGKILL to that init, which takes the whole namespace down.
"""

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import time

from benchlib import children, cpu_times, emit, logger

SUPERVISORS = ("tend", "supervisord", "runit", "s6")
POLL = 0.002


log = logger("supervisor-bench: ")


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# /proc helpers


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def pid_ns(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def status_fields(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        return None
    return out


def cpu_ns(pid):
    """Time on CPU (sum_exec_runtime, ns) from /proc/PID/schedstat: far finer than utime+stime."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def ctx_switches(pid):
    st = status_fields(pid)
    if not st:
        return None
    return int(st["voluntary_ctxt_switches"]) + int(st["nonvoluntary_ctxt_switches"])


def rss_pss_kib(pid):
    rss = pss = None
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def cpu_busy(secs):
    """Fraction of all CPUs' time spent busy over the next `secs` seconds."""
    t0, i0 = cpu_times()
    time.sleep(secs)
    t1, i1 = cpu_times()
    return 1 - (i1 - i0) / max(1, t1 - t0)


def own_cpu():
    """CPU seconds of this harness and everything it waited for (each namespace's init
    reaps its processes, unshare waits for the init, the harness for unshare)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL)


# ---------------------------------------------------------------------------------------------
# Supervisor configurations


def svc_names(prefix, n):
    return [f"{prefix}{i:03d}" for i in range(n)]


class Run:
    """One supervisor with its services in a fresh pid namespace."""

    def __init__(self, bench, kind, label, names, mode, logging=False, extra_env=None):
        self.b = bench
        self.kind = kind
        self.names = names
        self.mode = mode
        self.logging = logging
        self.dir = os.path.join(bench.work, f"{kind}-{label}")
        os.makedirs(self.dir)
        self.markers_path = os.path.join(self.dir, "markers")
        self.status = os.path.join(self.dir, "status")
        self.env = dict(os.environ)
        self.env.update(BENCH_MARKERS=self.markers_path, BENCH_MODE=mode)
        self.env.update(extra_env or {})
        self.proc = None
        self.init_pid = None
        self.sup = None
        self.ns = None
        self._markers_off = 0
        self._markers = []
        self.argv = getattr(self, f"_setup_{kind}")()

    # -- per-supervisor setup: returns the supervisor's command line ----------------------

    def _setup_tend(self):
        path = os.path.join(self.dir, "tend.toml")
        with open(path, "w") as f:
            f.write('[tend]\nshutdown-timeout = "30s"\n')
            for n in self.names:
                f.write(
                    f"\n[services.{n}]\n"
                    f'command = ["{self.b.svc}", "{n}"]\n'
                    'restart = "always"\n'
                    # The fastest restart the config accepts: no delay, every run counts as
                    # a good start, never give up.
                    'backoff = { initial = "0s", max = "0s", factor = 1.0 }\n'
                    'start-secs = "0s"\n'
                    "max-restarts = 0\n"
                    'stop-timeout = "10s"\n'
                )
        return [self.b.tend, "run", path]

    def _setup_supervisord(self):
        path = os.path.join(self.dir, "supervisord.conf")
        with open(path, "w") as f:
            f.write(
                "[supervisord]\nnodaemon=true\n"
                f"logfile={self.dir}/supervisord.log\npidfile={self.dir}/supervisord.pid\n"
                f"childlogdir={self.dir}\n\n"
                # One group: supervisord stops groups one after another but the processes of
                # a group in parallel, so this is its fastest whole shutdown.
                f"[group:bench]\nprograms={','.join(self.names)}\n"
            )
            for n in self.names:
                f.write(
                    f"\n[program:{n}]\ncommand={self.b.svc} {n}\n"
                    "autostart=true\nautorestart=true\n"
                    # The fastest restart: RUNNING at once, so an exit restarts immediately
                    # instead of going through BACKOFF.
                    "startsecs=0\nstartretries=1000000\n"
                    "stopsignal=TERM\nstopwaitsecs=10\n"
                    "stdout_logfile=/dev/null\nstdout_logfile_maxbytes=0\n"
                    "stderr_logfile=/dev/null\nstderr_logfile_maxbytes=0\n"
                )
        return ["supervisord", "-n", "-c", path]

    def _servicedirs(self, root):
        os.makedirs(root)
        for n in self.names:
            d = os.path.join(root, n)
            os.makedirs(d)
            # No shell in between: the service binary is ./run itself and takes its name from
            # the directory.
            os.symlink(self.b.svc, os.path.join(d, "run"))
            if self.logging:
                os.makedirs(os.path.join(d, "log"))
                lr = os.path.join(d, "log", "run")
                with open(lr, "w") as f:
                    f.write("#!/bin/sh\nexec cat > /dev/null\n")
                os.chmod(lr, 0o755)

    def _setup_floor(self):
        return [self.b.floor] + [self.b.svc, self.names[0]]

    def _setup_baseline(self):
        return ["sh", "-c", f"'{self.b.svc}' {self.names[0]} | cat > /dev/null"]

    def _setup_prefix(self):
        n = self.names[0]
        return ["sh", "-c", f"'{self.b.svc}' {n} | '{self.b.prefix}' {n} > /dev/null"]

    def _setup_runit(self):
        root = os.path.join(self.dir, "service")
        self._servicedirs(root)
        return ["runsvdir", root]

    def _setup_s6(self):
        root = os.path.join(self.dir, "scan")
        self._servicedirs(root)
        return ["s6-svscan", root]

    # per-service supervisor processes (children of the supervisor) counted in its tree
    HELPERS = {"tend": (), "supervisord": (), "runit": ("runsv",), "s6": ("s6-supervise",),
               "floor": (), "baseline": (), "prefix": ()}

    # the documented way to stop the whole tree (a signal to the supervisor)
    STOP_SIGNAL = {
        "tend": signal.SIGTERM,  # graceful shutdown of every service
        "supervisord": signal.SIGTERM,  # stop all processes, then exit
        "runit": signal.SIGHUP,  # runsvdir: TERM to each runsv (= `sv x`: stop, then exit)
        "s6": signal.SIGTERM,  # s6-svscan: same as `s6-svscanctl -t`
    }

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, stdout_null=False, cpu=None):
        out = open(os.path.join(self.dir, "supervisor.out"), "wb")
        stdout = subprocess.DEVNULL if stdout_null else out
        # --kill-child: should unshare itself be killed, the namespace goes with it.
        argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", self.b.init,
                self.status] + self.argv
        if cpu is not None:
            # Everything in the namespace inherits the affinity.
            argv = ["taskset", "-c", str(cpu)] + argv
        self.proc = subprocess.Popen(
            argv, env=self.env, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=stdout,
            stderr=out, start_new_session=True,
        )
        out.close()
        self.init_pid = wait_for(
            lambda: (children(self.proc.pid) or [None])[0], 5, "the namespace's init"
        )
        with open(self.b.inits_file, "a") as f:
            f.write(f"{self.init_pid}\n")
        self.ns = wait_for(lambda: pid_ns(self.init_pid), 5, "the init's pid namespace")
        self.sup = wait_for(lambda: (children(self.init_pid) or [None])[0], 5, "the supervisor")
        wait_for(lambda: self.status_value("exec"), 5, "the supervisor's exec")
        return self

    def kill(self):
        """SIGKILL to the namespace's init: the kernel kills everything in the namespace."""
        if self.init_pid:
            try:
                os.kill(self.init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False

    def alive(self):
        return self.proc.poll() is None

    def fail_if_dead(self):
        if not self.alive():
            tail = ""
            try:
                with open(os.path.join(self.dir, "supervisor.out"), "rb") as f:
                    tail = f.read()[-400:].decode(errors="replace").strip()
            except OSError:
                pass
            raise BenchError(f"{self.kind} ended early: {tail}")

    # -- observations ----------------------------------------------------------------------

    def status_value(self, key):
        try:
            with open(self.status) as f:
                for line in f:
                    parts = line.split()
                    if parts and parts[0] == key:
                        return int(parts[1])
        except OSError:
            pass
        return None

    def markers(self, kind=None):
        try:
            with open(self.markers_path, "rb") as f:
                f.seek(self._markers_off)
                data = f.read()
        except OSError:
            data = b""
        cut = data.rfind(b"\n") + 1
        for line in data[:cut].decode().splitlines():
            self._markers.append(line.split())
        self._markers_off += cut
        return [m for m in self._markers if kind is None or m[0] == kind]

    def wait_started(self, timeout=60):
        want = set(self.names)

        def all_started():
            self.fail_if_dead()
            seen = {m[1] for m in self.markers("start")}
            return want <= seen

        wait_for(all_started, timeout, f"{len(want)} services to start under {self.kind}")

    def ns_procs(self):
        """(host pid, ns pid, comm, ppid) of every process in the namespace."""
        out = []
        for e in os.listdir("/proc"):
            if not e.isdigit() or pid_ns(e) != self.ns:
                continue
            st = status_fields(e)
            if not st:
                continue
            out.append((int(e), int(st["NSpid"].split()[-1]), st["Name"], int(st["PPid"])))
        return out

    def host_pid(self, ns_pid):
        for host, nsp, _, _ in self.ns_procs():
            if nsp == ns_pid:
                return host
        return None

    def tree(self):
        """The supervision tree: the supervisor and its per-service supervisor processes."""
        pids = [self.sup]
        helpers = self.HELPERS[self.kind]
        if helpers:
            pids += [c for c in children(self.sup) if comm(c) in helpers]
        return pids


# ---------------------------------------------------------------------------------------------
# The measurements


class Bench:
    def __init__(self, args):
        self.tend = args.tend
        self.svc = args.svc
        self.init = args.init
        self.floor = args.floor
        self.prefix = args.prefix
        self.work = args.work
        self.inits_file = os.path.join(self.work, "inits")
        self.idle_secs = float(os.environ.get("IDLE_SECS", "20"))
        self.log_bytes = int(float(os.environ.get("LOG_BYTES", str(1 << 30))))
        self.log_line_bytes = int(float(os.environ.get("LOG_LINE_BYTES", str(64 << 20))))
        self.log_reps = int(os.environ.get("LOG_REPS", "5"))
        self.kills = int(os.environ.get("RESTART_KILLS", "15"))
        self.start_reps = int(os.environ.get("START_REPS", "5"))
        self.pin_cpu = int(os.environ.get("PIN_CPU", str((os.cpu_count() or 1) - 1)))
        self.writer_cpu = int(os.environ.get("WRITER_CPU", "0"))
        self.min_up = float(os.environ.get("RESTART_MIN_UP", "1.2"))
        self.settle = float(os.environ.get("SETTLE_SECS", "1.5"))
        self.stop_ms = int(os.environ.get("STOP_MS", "500"))
        self.kinds = os.environ.get("SUPERVISORS", " ".join(SUPERVISORS)).split()
        for k in self.kinds:
            if k not in SUPERVISORS:
                raise SystemExit(f"unknown supervisor {k!r} in SUPERVISORS")
        self.metrics = os.environ.get("METRICS", "idle start restart shutdown log").split()
        self.results = {}  # (row, kind) -> (value, text)
        self.runs = 0

    def run(self, kind, label, names, mode, **kw):
        self.runs += 1
        return Run(self, kind, f"{self.runs:02d}-{label}", names, mode, **kw)

    def put(self, row, kind, value, text):
        self.results[(row, kind)] = (value, text)

    def fail(self, row, kind, err):
        msg = str(err).replace("|", "/").replace("\n", " ")[:120]
        self.results[(row, kind)] = (None, f"error: {msg}")
        log(f"{kind}: {row}: {msg}")

    def tree_rss(self, r):
        rss = pss = 0
        for p in r.tree():
            a, b = rss_pss_kib(p)
            rss += a or 0
            pss += b or 0
        return rss, pss, len(r.tree())

    def put_rss(self, row, kind, r):
        rss, pss, n = self.tree_rss(r)
        self.put(row, kind, rss / 1024, f"{rss / 1024:.1f} MiB (PSS {pss / 1024:.1f}; {n} proc)")

    # 1 + 2: idle wake-ups and CPU with 20 services, RSS with 1 and 20
    def idle_and_rss(self, kind):
        try:
            with self.run(kind, "rss1", svc_names("s", 1), "idle") as r:
                r.start()
                r.wait_started()
                time.sleep(self.settle)
                self.put_rss("rss1", kind, r)
        except Exception as e:  # noqa: BLE001 - a failed cell must not stop the others
            self.fail("rss1", kind, e)
        try:
            with self.run(kind, "idle20", svc_names("s", 20), "idle") as r:
                r.start()
                r.wait_started()
                time.sleep(self.settle)
                self.wait_quiet()
                tree = r.tree()
                cs0 = {p: ctx_switches(p) for p in tree}
                cpu0 = {p: cpu_ns(p) for p in tree}
                time.sleep(self.idle_secs)
                r.fail_if_dead()
                cs = sum(ctx_switches(p) - cs0[p] for p in tree)
                cpu = sum(cpu_ns(p) - cpu0[p] for p in tree) / 1e6
                rate = cs / self.idle_secs
                self.put("idle_cs", kind, cs, f"{cs} ({rate:.1f}/s)")
                self.put("idle_cpu", kind, cpu, f"{cpu:.2f} ms")
                self.put_rss("rss20", kind, r)
        except Exception as e:  # noqa: BLE001
            for row in ("idle_cs", "idle_cpu", "rss20"):
                self.fail(row, kind, e)

    # 5 + 2: time to start 100 services (in interleaved rounds), RSS with 100
    def start100_all(self):
        took = {k: [] for k in self.kinds}
        failed = set()
        for rep in range(self.start_reps):
            for kind in self.kinds:
                if kind in failed:
                    continue
                try:
                    self.wait_quiet()
                    took[kind].append(self.start100(kind, rep, measure_rss=(rep == 0)))
                except Exception as e:  # noqa: BLE001
                    failed.add(kind)
                    self.fail("start100", kind, e)
                    if rep == 0:
                        self.fail("rss100", kind, e)
        for kind in self.kinds:
            if kind not in failed:
                t = took[kind]
                self.put("start100", kind, statistics.median(t),
                         f"{statistics.median(t):.0f} ms (min {min(t):.0f}, max {max(t):.0f})")

    def start100(self, kind, rep, measure_rss):
        with self.run(kind, f"start100-{rep}", svc_names("s", 100), "idle") as r:
            r.start()
            r.wait_started(timeout=120)
            t_exec = r.status_value("exec")
            first = {}
            for m in r.markers("start"):
                first.setdefault(m[1], int(m[3]))
            took = (max(first.values()) - t_exec) / 1e6
            log(f"  {kind} start100 run {rep + 1}: {took:.0f} ms")
            if measure_rss:
                time.sleep(self.settle)
                self.put_rss("rss100", kind, r)
            return took

    # 3: restart latency
    def restarts(self, kinds):
        """One service under each supervisor (and under the floor loop), all running at once,
        killed in turns: every supervisor sees the same machine state, kill after kill."""
        runs, lat = {}, {}
        with contextlib.ExitStack() as stack:
            for k in kinds:
                try:
                    r = stack.enter_context(self.run(k, "restart", ["r000"], "idle"))
                    r.start()
                    r.wait_started()
                    runs[k], lat[k] = r, []
                except Exception as e:  # noqa: BLE001
                    self.fail("restart", k, e)
            for i in range(self.kills):
                self.wait_quiet()
                for k, r in list(runs.items()):
                    try:
                        lat[k].append(self.kill_and_wait(r, i))
                    except Exception as e:  # noqa: BLE001
                        self.fail("restart", k, e)
                        del runs[k]
        for k in runs:
            med = statistics.median(lat[k])
            self.put("restart", k, med,
                     f"{fmt_ms(med)} (min {fmt_ms(min(lat[k]))}, max {fmt_ms(max(lat[k]))})")
        if "floor" in runs:
            # The same kill round, same machine state: what each supervisor adds on its own.
            for k in runs:
                if k != "floor":
                    d = statistics.median(a - f for a, f in zip(lat[k], lat["floor"]))
                    self.put("restart_over", k, d, f"{'+' if d >= 0 else '−'}{fmt_ms(abs(d))}")

    def kill_and_wait(self, r, i):
        """SIGKILL the running instance; ms until the next one wrote its start marker."""
        cur = r.markers("start")[-1]
        ns_pid, started = int(cur[2]), int(cur[3])
        # Past runit's and s6's one-second minimum between two starts, so each kill is a
        # crash of a service that had been running, not a crash loop.
        wait = started / 1e9 + self.min_up - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        host = r.host_pid(ns_pid)
        if host is None:
            raise BenchError(f"service pid {ns_pid} not found")
        n_before = len(r.markers("start"))
        t0 = time.monotonic_ns()
        os.kill(host, signal.SIGKILL)

        def restarted():
            r.fail_if_dead()
            ms = r.markers("start")
            return ms[n_before] if len(ms) > n_before else None

        new = wait_for(restarted, 10, f"restart #{i + 1}")
        return (int(new[3]) - t0) / 1e6

    # 4: shutdown of 20 services that take 0.5 s each to stop
    def shutdown(self, kind):
        try:
            with self.run(kind, "shutdown", svc_names("s", 20), "slowstop",
                          extra_env={"BENCH_STOP_MS": str(self.stop_ms)}) as r:
                r.start()
                r.wait_started()
                time.sleep(self.settle)
                self.wait_quiet()
                t0 = time.monotonic_ns()
                os.kill(r.sup, Run.STOP_SIGNAL[kind])
                gone = wait_for(lambda: r.status_value("gone"), 60, "every process to exit")
                took = (gone - t0) / 1e9
                graceful = len({m[1] for m in r.markers("stopped")})
                self.put("shutdown", kind, took, f"{took:.3f} s ({graceful}/20 graceful)")
        except Exception as e:  # noqa: BLE001
            self.fail("shutdown", kind, e)

    # 6: log throughput
    LOGS = {
        # row: (bytes attribute, bytes per write (None: whole lines filling 64 KiB), split):
        # everything on PIN_CPU, and with split the writer alone on WRITER_CPU.
        "log": ("log_bytes", None, False),
        "log_split": ("log_bytes", None, True),
        "log_lines": ("log_line_bytes", 100, False),
    }

    def writer_env(self, row):
        attr, chunk, split = self.LOGS[row]
        env = {"BENCH_LOG_BYTES": str(getattr(self, attr))}
        if chunk:
            env["BENCH_CHUNK"] = str(chunk)
        if split:
            env["BENCH_WRITER_CPU"] = str(self.writer_cpu)
        return env

    def one_log_run(self, kind, row, rep):
        """MB/s of one writer run; `baseline` is `writer | cat > /dev/null` in the same setup."""
        with self.run(kind, f"{row}{rep}", ["w000"], "writer", logging=True,
                      extra_env=self.writer_env(row)) as r:
            # tend: its stdout (where the service lines go) is /dev/null.
            r.start(stdout_null=(kind == "tend"), cpu=self.pin_cpu)
            timeout = 60 + getattr(self, self.LOGS[row][0]) / 2e6  # even at 2 MB/s
            done = wait_for(lambda: (r.fail_if_dead(), r.markers("wdone"))[1],
                            timeout, "the writer to finish")[0]
            want = getattr(self, self.LOGS[row][0])
            if int(done[5]) != want:
                raise BenchError(f"the writer wrote {done[5]} of {want} bytes")
            mbps = int(done[5]) / ((int(done[4]) - int(done[3])) / 1e9) / 1e6
            log(f"  {kind} {row} run {rep + 1}: {mbps:.0f} MB/s")
            return mbps

    def logs(self):
        """Every row, in rounds: one run of the baseline and of each supervisor per round, so
        that a slow phase of the machine (this benchmark is memory-bound and the machine's
        pipe throughput drifts by 2x from minute to minute) hits all of them alike."""
        self.base = {}
        self.prefix_floor = {}
        kinds = ["baseline", "prefix"] + self.kinds
        for row in self.LOGS:
            speeds = {k: [] for k in kinds}
            errors = {}
            for rep in range(self.log_reps):
                for k in kinds:
                    if k in errors:
                        continue
                    self.wait_quiet()
                    try:
                        speeds[k].append(self.one_log_run(k, row, rep))
                    except Exception as e:  # noqa: BLE001
                        errors[k] = e
            base = statistics.median(speeds["baseline"]) if "baseline" not in errors else None
            self.base[row] = base
            if base is None:
                log(f"baseline {row} failed: {errors['baseline']}")
            if "prefix" not in errors:
                self.prefix_floor[row] = statistics.median(speeds["prefix"])
            for k in self.kinds:
                if k in errors:
                    self.fail(row, k, errors[k])
                    continue
                mbps = statistics.median(speeds[k])
                pct = f" ({100 * mbps / base:.0f}% of baseline)" if base else ""
                self.put(row, k, mbps, f"{mbps:.0f} MB/s{pct}")

    def wait_quiet(self):
        """Other work on the machine (builds, test suites) skews every number here. With
        QUIET_WAIT > 0, wait up to that many seconds, before the run and again before each
        measured round, for the CPUs to be idle (under QUIET_BUSY busy over half a second).
        Returns the last busy fraction seen."""
        limit = float(os.environ.get("QUIET_WAIT", "0"))
        if limit <= 0:
            return None
        busy_max = float(os.environ.get("QUIET_BUSY", "0.15"))
        start = time.monotonic()
        deadline = start + limit
        said = False
        (tot0, idle0), own0 = cpu_times(), own_cpu()
        while True:
            busy = cpu_busy(0.5)
            if busy < busy_max or time.monotonic() >= deadline:
                # Waiting is not measuring: keep it out of the "other load" figure.
                (tot1, idle1), own1 = cpu_times(), own_cpu()
                self.waited += time.monotonic() - start
                self.waited_others += max(0.0, ((tot1 - tot0) - (idle1 - idle0))
                                          / os.sysconf("SC_CLK_TCK") - (own1 - own0))
                if said and busy >= busy_max:
                    self.gave_up += 1
                return busy
            if not said:
                log(f"machine busy ({busy:.0%} of CPU time used by others); waiting")
                said = True

    def main(self):
        self.waited = self.waited_others = 0.0
        self.gave_up = 0
        self.wait_quiet()
        self.load_before = loadavg()
        t0 = time.monotonic()
        stat0, own0 = cpu_times(), own_cpu()
        m = self.metrics
        self.base = {}
        self.prefix_floor = {}
        if "restart" in m:
            log(f"restart latency: floor loop and every supervisor, {self.kills} kills each, "
                "in turns")
            self.restarts(["floor"] + self.kinds)
        for kind in self.kinds:
            if "idle" in m:
                log(f"{kind}: idle and memory ({self.idle_secs:g}s idle)")
                self.idle_and_rss(kind)
            if "shutdown" in m:
                log(f"{kind}: shutdown")
                self.shutdown(kind)
        if "start" in m:
            log(f"start 100 services: {self.start_reps} rounds over every supervisor")
            self.start100_all()
        if "log" in m:
            log("log throughput: baseline and every supervisor, interleaved")
            self.logs()
        self.elapsed = time.monotonic() - t0
        self.load_after = loadavg()
        (tot1, idle1), own1 = cpu_times(), own_cpu()
        busy = ((tot1 - stat0[0]) - (idle1 - stat0[1])) / os.sysconf("SC_CLK_TCK")
        others = max(0.0, busy - (own1 - own0) - self.waited_others)
        measuring = max(1e-9, self.elapsed - self.waited)
        self.others_share = others / (measuring * (os.cpu_count() or 1))


def fmt_ms(ms):
    return f"{ms * 1000:.0f} µs" if ms < 1 else f"{ms:.1f} ms"


# ---------------------------------------------------------------------------------------------
# The report

ROWS = [
    # key, label, lower is better, target text, target test (value, bench -> bool)
    ("idle_cs", "Idle wake-ups: context switches of the supervision tree, 20 services, {idle}",
     True, "0", lambda v, b: v == 0),
    ("idle_cpu", "Idle CPU time of the supervision tree, 20 services, {idle}", True,
     "0 (no wake-ups)", lambda v, b: v < 0.01),
    ("rss1", "RSS of the supervision tree, 1 service", True, None, None),
    ("rss20", "RSS of the supervision tree, 20 services", True, None, None),
    ("rss100", "RSS of the supervision tree, 100 services", True, "< 3 MiB",
     lambda v, b: v < 3),
    ("restart", "Restart latency: SIGKILL to new instance running (median of {kills})", True,
     "< 1 ms + backoff (0 s here)", lambda v, b: v < 1),
    ("restart_over", "Restart latency above the floor loop, paired kill by kill (median)", True,
     "< 1 ms (detection and bookkeeping)", lambda v, b: v < 1),
    ("shutdown", "Shutdown of 20 services that take 0.5 s to stop: request to all gone", True,
     "≤ 0.55 s", lambda v, b: v <= 0.55),
    ("start100", "Start 100 services: supervisor exec to last start marker (median of "
     "{starts})", True, None, None),
    ("log", "Log throughput: {logsize} of 100-byte lines in 64 KiB writes, all on one CPU "
     "(median of {reps})", False, "≥ 80% of baseline",
     lambda v, b: b.base.get("log") is not None and v >= 0.8 * b.base["log"]),
    ("log_split", "Log throughput: the same, the writer on a CPU of its own (median of {reps})",
     False, "≥ 80% of baseline",
     lambda v, b: b.base.get("log_split") is not None and v >= 0.8 * b.base["log_split"]),
    ("log_lines", "Log throughput: {linesize} of 100-byte lines, one write() per line, "
     "one CPU (median of {reps})", False, "≥ 80% of baseline",
     lambda v, b: b.base.get("log_lines") is not None and v >= 0.8 * b.base["log_lines"]),
]


def machine_facts(b, versions):
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001
            return "?"

    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("awk '/MemTotal/{printf \"%.0f GiB\", $2/1048576}' /proc/meminfo")
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- machine: nproc {sh('nproc')}, {cpu}, {mem} RAM; kernel {os.uname().release}",
        f"- tend: {versions.get('tend', '?')}",
        f"- supervisord {versions.get('supervisord', '?')} (Python {versions.get('python', '?')}), "
        f"runit {versions.get('runit', '?')}, s6 {versions.get('s6', '?')} (Debian packages)",
        f"- other load: processes outside this benchmark used about {b.others_share:.0%} of the "
        f"machine's CPU time while it measured"
        + (f" ({b.waited:.0f} s spent waiting for a quiet machine, {b.gave_up} rounds run "
           f"busy after QUIET_WAIT ran out)" if b.waited >= 1 else "")
        + f"; load average {b.load_before} at the start, {b.load_after} at the end",
        f"- settings: IDLE_SECS={b.idle_secs:g} LOG_BYTES={b.log_bytes} "
        f"LOG_LINE_BYTES={b.log_line_bytes} LOG_REPS={b.log_reps} RESTART_KILLS={b.kills} "
        f"START_REPS={b.start_reps} WRITER_CPU={b.writer_cpu} "
        f"RESTART_MIN_UP={b.min_up:g} SETTLE_SECS={b.settle:g} PIN_CPU={b.pin_cpu}; "
        f"whole run {b.elapsed:.0f} s",
    ]


def size_text(n):
    if n >= 1 << 30 and n % (1 << 30) == 0:
        return f"{n >> 30} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):g} MiB"
    return f"{n} B"


def report(b, versions):
    lines = ["### Supervisor mode: tend vs supervisord, runit, s6", ""]
    lines += machine_facts(b, versions)
    lines.append("")
    kinds = b.kinds
    others = [k for k in kinds if k != "tend"]
    compare = "tend" in kinds and others
    head = ["metric", "tend", "tend target"] + others
    if compare:
        head.append(f"tend ahead of {'all three' if len(others) == 3 else ', '.join(others)}?")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for key, label, lower, target, test in ROWS:
        label = label.format(idle=f"{b.idle_secs:g} s", kills=b.kills, reps=b.log_reps,
                             starts=b.start_reps,
                             logsize=size_text(b.log_bytes),
                             linesize=size_text(b.log_line_bytes))
        cells = [label]
        tv, tt = b.results.get((key, "tend"), (None, "not run"))
        cells.append(tt)
        if target is None:
            cells.append("ahead of all three")
        elif tv is None:
            cells.append(f"{target}: n/a")
        else:
            cells.append(f"{target}: **{'met' if test(tv, b) else 'missed'}**")
        for k in others:
            cells.append(b.results.get((key, k), (None, "not run"))[1])
        if compare:
            vals = {k: b.results.get((key, k), (None, ""))[0] for k in others}
            if tv is None or any(v is None for v in vals.values()):
                cells.append("n/a")
            else:
                better = [k for k, v in vals.items() if (v < tv if lower else v > tv)]
                tied = [k for k, v in vals.items() if v == tv]
                if better:
                    cells.append("no (behind " + ", ".join(better) + ")")
                elif tied:
                    cells.append("tied with " + ", ".join(tied))
                else:
                    cells.append("yes")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for row, (attr, chunk, split) in Bench.LOGS.items():
        base = b.base.get(row)
        what = "64 KiB writes" if chunk is None else "one write() per line"
        where = (f"writer on CPU {b.writer_cpu}, the rest on CPU {b.pin_cpu}" if split
                 else f"all on CPU {b.pin_cpu}")
        if "log" not in b.metrics:
            continue
        lines.append(f"- Baseline `writer | cat > /dev/null`, {size_text(getattr(b, attr))}, "
                     f"{what}, {where}: " + (f"{base:.0f} MB/s" if base else "failed")
                     + f" (median of {b.log_reps}; MB = 10^6 bytes).")
        prefixed = b.prefix_floor.get(row)
        pct = f" ({100 * prefixed / base:.0f}% of baseline)" if prefixed and base else ""
        lines.append("  Prefix floor, the same with a minimal C line prefixer in place of `cat` "
                     "(bench/supervisor-prefix.c: read, memchr, copy `name | ` and the line, "
                     "write): " + (f"{prefixed:.0f} MB/s{pct}." if prefixed else "failed."))
    floor = b.results.get(("restart", "floor"), (None, "failed"))[1]
    if "restart" in b.metrics:
        lines.append(f"- Restart floor, a minimal C loop (blocking waitpid, fork, setsid, execv; "
                     f"bench/supervisor-floor.c) measured the same way: {floor}.")
    lines.append("- RSS and PSS: sums over the supervision tree (the supervisor and the "
                 "per-service runsv / s6-supervise processes, never the services); "
                 "MiB = 2^20 bytes.")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tend", required=True)
    ap.add_argument("--svc", required=True)
    ap.add_argument("--init", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out")
    ap.add_argument("--version", action="append", default=[], help="NAME=VERSION")
    args = ap.parse_args()
    versions = dict(v.split("=", 1) for v in args.version)

    def on_signal(sig, _frame):
        raise SystemExit(f"interrupted by signal {sig}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    b = Bench(args)
    b.main()
    text = report(b, versions)
    emit(text, args.out)


if __name__ == "__main__":
    main()
