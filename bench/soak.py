#!/usr/bin/env python3
"""Harness of bench/soak.sh: tend as PID 1 of a fresh pid namespace supervising many
services that write numbered lines, under chaos, for a long time; then every line is checked.
Run it through the shell script, which compiles the writer and cleans up; the criteria and the
exact rules of the line check are in docs/benchmarks.md ("Soak").

Chaos, all at once, from threads of this harness:
  - SIGKILLs at --kill-rate per second, half to services' main processes (tend's children),
    half to their children (the writers' children, and orphans tend adopted), each sent through
    a pidfd after checking the pid's parent, so a reused pid is never hit by mistake;
  - `tend restart|stop|start NAME` at random (a stopped service is started again later);
  - every --reload-secs: the configuration rewritten with a change (SOAK_EPOCH toggled in the
    environment of a few services, so they restart; one service removed, the one removed the
    time before added back) and `tend reload`;
  - `tend logs -f NAME` attached for a few seconds, then detached (SIGTERM or SIGKILL), again
    and again; what it printed is checked like tend's own output.
Samples every --sample-secs: tend's VmRSS and RssAnon, its open descriptors, the zombies in its
namespace, whether `tend status` answers. A watcher looks at tend's children every 50 ms and
keeps how long each zombie among them lasted.
"""

import argparse
import collections
import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from benchlib import (children, die_with_parent, exe_of, logger, machine_facts, parent_of,
                      stop_on_signal)

log = logger("soak: ")

LINE = re.compile(rb"^(\S+) ([0-9a-f]{16}) ([mc]) ([0-9]+) ([a-z]*)\$$")
ZOMBIE_POLL = 0.05
ZOMBIE_LIMIT_MS = 100
RSS_GROWTH_LIMIT = 0.05
CLIENT_TIMEOUT = 20


class SoakError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# /proc, read from the host side


def stat_fields(pid):
    """(state, ppid, starttime) of pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2 :].split()
    return rest[0], int(rest[1]), int(rest[19])


def status_kib(pid, *keys):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                out[k] = int(v.split()[0])
    return [out.get(k) for k in keys]


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def pid_ns(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def namespace_zombies(ns, tend_pid):
    """(zombies in the namespace, of which tend's children) by a scan of the host's /proc."""
    total = of_tend = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or pid_ns(entry) != ns:
            continue
        st = stat_fields(entry)
        if st and st[0] == "Z":
            total += 1
            of_tend += st[1] == tend_pid
    return total, of_tend


# ---------------------------------------------------------------------------------------------
# The soak


class Soak:
    def __init__(self, a):
        self.a = a
        self.work = a.work
        self.state_dir = os.path.join(self.work, "state")
        os.makedirs(self.state_dir)
        os.chmod(self.work, 0o755)
        self.config = os.path.join(self.work, "tend.toml")
        self.sock = os.path.join(self.work, "ctl.sock")
        self.stdout_path = os.path.join(self.work, "tend.stdout")
        self.stderr_path = os.path.join(self.work, "tend.stderr")
        self.names = [f"svc{i:03d}" for i in range(a.services)]
        self.epoch = {n: 0 for n in self.names}
        self.removed = None  # the one service the last reload took out
        self.stopped = {}  # name -> when to start it again
        self.model = threading.Lock()  # over epoch, removed, stopped
        self.rng = random.Random(a.seed)
        self.stop = threading.Event()
        self.failures = []  # harness-side errors that end the run
        self.counts = collections.Counter()
        self.count_lock = threading.Lock()
        self.errors = collections.defaultdict(list)  # kind -> examples
        self.samples = []
        self.zombies = {}  # (pid, starttime) -> [first seen, last seen]
        self.zombie_ages = []  # ms, lower bounds, of zombies seen gone
        self.followers = []  # files with what each follower printed
        self.proc = None
        self.tend = None
        self.t0 = None

    def count(self, key, n=1):
        with self.count_lock:
            self.counts[key] += n

    def note(self, kind, text, keep=10):
        with self.count_lock:
            self.counts[kind] += 1
            if len(self.errors[kind]) < keep:
                self.errors[kind].append(text)

    def elapsed(self):
        return time.monotonic() - self.t0

    # -- configuration ------------------------------------------------------------------------

    def write_config(self):
        with self.model:
            names = [n for n in self.names if n != self.removed]
            epoch = dict(self.epoch)
        parts = [
            "[tend]\n"
            f'socket = "{self.sock}"\n'
            'shutdown-timeout = "9s"\n'
        ]
        for n in names:
            parts.append(
                f"\n[services.{n}]\n"
                f'command = ["{self.a.writer}", "{n}"]\n'
                f'env = {{ SOAK_STATE = "{self.state_dir}", '
                f'SOAK_INTERVAL_MS = "{self.a.interval_ms}", SOAK_BURST = "{self.a.burst}", '
                f'SOAK_EPOCH = "{epoch[n]}" }}\n'
                'restart = "always"\n'
                'backoff = { initial = "10ms", max = "500ms", factor = 2.0 }\n'
                'start-secs = "1s"\n'
                "max-restarts = 0\n"
                'stop-timeout = "2s"\n'
            )
        tmp = self.config + ".new"
        with open(tmp, "w") as f:
            f.write("".join(parts))
        os.replace(tmp, self.config)

    # -- tend ---------------------------------------------------------------------------------

    def client(self, *args, timeout=CLIENT_TIMEOUT):
        """Runs `tend ARGS --socket SOCK`; returns (exit code or None on timeout, output)."""
        try:
            r = subprocess.run(
                [self.a.tend, *args, "--socket", self.sock, "--timeout", f"{timeout}s"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout + 5,
            )
        except subprocess.TimeoutExpired:
            return None, f"no answer within {timeout + 5} s"
        return r.returncode, (r.stdout + r.stderr).decode(errors="replace").strip()

    def status(self):
        code, out = self.client("status", "--json", timeout=10)
        if code != 0:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    def running(self):
        st = self.status()
        if st is None:
            return None
        return {s["name"] for s in st["services"] if s["state"] == "running"}

    def wait_for(self, what, limit, pred):
        deadline = time.monotonic() + limit
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() > deadline:
                raise SoakError(f"timed out after {limit} s waiting for {what}")
            if self.tend_gone():
                raise SoakError(f"tend ended while waiting for {what}")
            time.sleep(0.1)

    def tend_gone(self):
        return self.proc is not None and self.proc.poll() is not None

    def start_tend(self):
        self.write_config()
        self.out_f = open(self.stdout_path, "wb")
        self.err_f = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL", "--",
             self.a.tend, "run", self.config],
            stdin=subprocess.DEVNULL,
            stdout=self.out_f,
            stderr=self.err_f,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        with open(os.path.join(self.work, "inits"), "a") as f:
            f.write(f"{self.proc.pid}\n")
        want = os.path.realpath(self.a.tend)
        self.tend = self.wait_for(
            "tend to start", 10,
            lambda: next((k for k in children(self.proc.pid) if exe_of(k) == want), None),
        )
        self.ns = pid_ns(self.tend)
        self.wait_for(
            f"all {len(self.names)} services to run", 60,
            lambda: (r := self.running()) is not None and len(r) == len(self.names),
        )

    def kill_tend(self):
        if self.proc is None:
            return
        if self.proc.poll() is None and self.tend is not None:
            try:
                if parent_of(self.tend) == self.proc.pid:
                    os.kill(self.tend, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    # -- chaos --------------------------------------------------------------------------------

    def pidfd_kill(self, pid, parent):
        """SIGKILL to pid if its parent is `parent`; through a pidfd, so a pid reused after
        the check is not hit. True if the signal went out."""
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return False
        try:
            st = stat_fields(pid)
            if st is None or st[1] != parent or st[0] == "Z":
                return False
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    def killer(self):
        period = 1.0 / self.a.kill_rate
        rng = random.Random(self.rng.random())
        nxt = time.monotonic()
        while not self.stop.is_set():
            nxt += period
            mains = children(self.tend)
            if mains:
                if rng.random() < 0.5:
                    target, parent, kind = rng.choice(mains), self.tend, "kills_main"
                else:
                    # A child of some service: a writer's child, or an orphan tend adopted.
                    rng.shuffle(mains)
                    target = None
                    for m in mains[:10]:
                        kids = children(m)
                        if kids:
                            target, parent, kind = rng.choice(kids), m, "kills_child"
                            break
                if target is not None and self.pidfd_kill(target, parent):
                    self.count(kind)
            delay = nxt - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            elif delay < -1:
                nxt = time.monotonic()  # far behind (machine busy): do not burst to catch up

    def controller(self):
        rng = random.Random(self.rng.random())
        while not self.stop.wait(rng.uniform(0.3, 1.5)):
            now = time.monotonic()
            with self.model:
                due = [n for n, t in self.stopped.items() if t <= now]
                live = [n for n in self.names if n != self.removed and n not in self.stopped]
            if due:
                name = due[0]
                code, out = self.client("start", name)
                with self.model:
                    self.stopped.pop(name, None)
                self.control_result("start", name, code, out)
                continue
            if not live:
                continue
            name = rng.choice(live)
            if rng.random() < 0.6:
                code, out = self.client("restart", name)
                self.control_result("restart", name, code, out)
            else:
                with self.model:
                    if name == self.removed:
                        continue
                    self.stopped[name] = now + rng.uniform(1, 6)
                code, out = self.client("stop", name)
                self.control_result("stop", name, code, out)

    def control_result(self, verb, name, code, out):
        if code == 0:
            self.count(f"ctl_{verb}")
        else:
            self.note(f"ctl_{verb}_failed", f"tend {verb} {name}: exit {code}: {out}")

    def reloader(self):
        rng = random.Random(self.rng.random())
        while not self.stop.wait(self.a.reload_secs):
            with self.model:
                for n in rng.sample(self.names, min(3, len(self.names))):
                    self.epoch[n] ^= 1
                back = self.removed
                candidates = [n for n in self.names if n != back]
                self.removed = rng.choice(candidates) if candidates else None
                self.stopped.pop(self.removed, None)
            self.write_config()
            code, out = self.client("reload")
            if code == 0:
                self.count("reloads")
            else:
                self.note("reload_failed", f"exit {code}: {out}")

    def follower(self):
        rng = random.Random(self.rng.random())
        i = 0
        while not self.stop.wait(rng.uniform(1, 4)):
            with self.model:
                name = rng.choice([n for n in self.names if n != self.removed])
            path = os.path.join(self.work, f"follow-{i}")
            i += 1
            with open(path, "wb") as out:
                p = subprocess.Popen(
                    [self.a.tend, "logs", "-f", name, "--socket", self.sock],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                )
            self.stop.wait(rng.uniform(2, 8))
            p.send_signal(rng.choice([signal.SIGTERM, signal.SIGKILL]))
            p.wait()
            self.followers.append((name, path))
            self.count("follows")

    def zombie_watch(self):
        while not self.stop.is_set():
            now = time.monotonic()
            seen = set()
            for pid in children(self.tend):
                st = stat_fields(pid)
                if st and st[0] == "Z":
                    key = (pid, st[2])
                    seen.add(key)
                    self.zombies.setdefault(key, [now, now])[1] = now
            for key in [k for k in self.zombies if k not in seen]:
                first, last = self.zombies.pop(key)
                self.zombie_ages.append((last - first) * 1000)
            self.stop.wait(ZOMBIE_POLL)
        for first, last in self.zombies.values():
            self.zombie_ages.append((last - first) * 1000)
        self.zombies.clear()

    def sample(self):
        rss, anon = status_kib(self.tend, "VmRSS", "RssAnon")
        fds = fd_count(self.tend)
        zombies, zombies_tend = namespace_zombies(self.ns, self.tend)
        answered = self.status() is not None
        with self.count_lock:
            kills = self.counts["kills_main"] + self.counts["kills_child"]
        row = dict(t=round(self.elapsed(), 1), rss_kib=rss, rss_anon_kib=anon, fds=fds,
                   zombies=zombies, zombies_of_tend=zombies_tend, status_ok=int(answered),
                   kills=kills)
        self.samples.append(row)
        if not answered:
            self.note("status_unanswered", f"at {row['t']} s")
        log(f"{row['t']:7.1f} s: RSS {rss} KiB (anon {anon}), {fds} fds, "
            f"{zombies} zombies ({zombies_tend} of tend), {kills} kills")
        return row

    def sampler(self):
        nxt = self.t0
        while True:
            nxt += self.a.sample_secs
            if self.stop.wait(max(0, nxt - time.monotonic())):
                return
            self.sample()

    # -- the run ------------------------------------------------------------------------------

    def run(self):
        log(f"starting tend with {len(self.names)} services")
        self.start_tend()
        self.t0 = time.monotonic()
        first = self.sample()
        self.fds_start = first["fds"]
        chaos = {"kill": self.killer, "control": self.controller, "reload": self.reloader,
                 "follow": self.follower}
        threads = [threading.Thread(target=f, daemon=True) for f in
                   [chaos[c] for c in self.a.chaos] + [self.zombie_watch, self.sampler]]
        for t in threads:
            t.start()
        end = self.t0 + self.a.minutes * 60
        while time.monotonic() < end:
            if self.tend_gone():
                raise SoakError(f"tend ended during the soak, exit {self.proc.returncode}")
            time.sleep(0.5)
        self.stop.set()
        for t in threads:
            t.join(timeout=60)
        self.chaos_secs = self.elapsed()
        log(f"chaos over after {self.chaos_secs:.0f} s; back to the first configuration")
        self.settle()
        log("tend shutdown")
        code, out = self.client("shutdown")
        if code != 0:
            self.note("shutdown_failed", f"exit {code}: {out}")
        try:
            self.tend_exit = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.tend_exit = None
            self.note("shutdown_failed", "tend did not end within 30 s of `tend shutdown`")
        self.out_f.close()
        self.err_f.close()

    def settle(self):
        """The first configuration again, every service started, and the end sample once the
        descriptors are back (or 20 s have passed)."""
        with self.model:
            self.epoch = {n: 0 for n in self.names}
            self.removed = None
            stopped = list(self.stopped)
            self.stopped.clear()
        self.write_config()
        code, out = self.client("reload")
        if code != 0:
            self.note("reload_failed", f"final reload: exit {code}: {out}")
        for name in stopped:
            code, out = self.client("start", name)
            self.control_result("start", name, code, out)
        self.wait_for(f"all {len(self.names)} services to run again", 60,
                      lambda: (r := self.running()) is not None and len(r) == len(self.names))
        deadline = time.monotonic() + 20
        while fd_count(self.tend) != self.fds_start and time.monotonic() < deadline:
            time.sleep(0.1)
        self.final = self.sample()

    # -- the check ----------------------------------------------------------------------------

    def check_stream(self, path, stream, seen, where):
        """Checks the lines of one of tend's outputs (or a follower's) into `seen`:
        (name, token, role) -> [first seq, last seq, lines]. Returns the count of lines."""
        n = 0
        role_of_stream = {"stdout": b"m", "stderr": b"c"}.get(stream)
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                n += 1
                if not raw.endswith(b"\n"):
                    if stream == "follow":
                        # The client was killed: its last write may have been cut short.
                        self.count("follower_partial_last")
                    else:
                        self.note(f"cut_{where}", f"{where} line {lineno} has no newline: {raw!r}")
                    continue
                line = raw[:-1]
                prefix, sep, text = line.partition(b" | ")
                if not sep:
                    if stream == "stderr" and line.startswith(b"tend: "):
                        self.note_tend_line(line)
                    elif stream == "follow" and line.startswith(b"tend: "):
                        self.note("follower_messages", line.decode(errors="replace"))
                    else:
                        self.note(f"cut_{where}", f"{where} line {lineno}: {raw!r}")
                    continue
                name = prefix.strip()
                m = LINE.match(text)
                if not m:
                    kind = "writer_errors" if text.startswith(b"soak-writer ") else f"cut_{where}"
                    self.note(kind, f"{where} line {lineno}: {raw!r}")
                    continue
                svc, token, role, seq, payload = m.groups()
                seq = int(seq)
                if (svc != name or (role_of_stream and role != role_of_stream)
                        or payload != bytes([97 + seq % 26]) * (seq % 61)):
                    self.note(f"cut_{where}", f"{where} line {lineno}: {raw!r}")
                    continue
                key = (svc.decode(), token.decode(), role.decode())
                inst = seen.get(key)
                if inst is None:
                    seen[key] = [seq, seq, 1]
                    if stream != "follow" and seq != 1:
                        self.note("lost", f"{key}: first line seen is {seq}", keep=20)
                        self.count("lost_lines", seq - 1)
                    continue
                last = inst[1]
                if seq <= last:
                    self.note(f"duplicated_{where}",
                              f"{where} line {lineno}: {key} seq {seq} after {last}", keep=20)
                    continue
                if seq != last + 1:
                    self.note("lost" if stream != "follow" else "follower_gaps",
                              f"{where} line {lineno}: {key} seq {seq} after {last}", keep=20)
                    if stream != "follow":
                        self.count("lost_lines", seq - last - 1)
                inst[1] = seq
                inst[2] += 1
        return n

    def note_tend_line(self, line):
        text = line.decode(errors="replace")
        # Group tend's messages by their text without numbers and names.
        shape = re.sub(r"'[^']*'|\[[^]]*\]|\d+", "#", text)
        self.note("tend_lines", text, keep=0)
        with self.count_lock:
            self.tend_shapes[shape] += 1

    def check(self):
        self.tend_shapes = collections.Counter()
        seen = {}
        log("checking every line")
        lines_out = self.check_stream(self.stdout_path, "stdout", seen, "stdout")
        lines_err = self.check_stream(self.stderr_path, "stderr", seen, "stderr")
        self.lines = lines_out + lines_err
        self.service_lines = sum(v[2] for v in seen.values())
        # The writers' records: every line up to `done` must be there, `attempted` may be.
        records = 0
        for entry in os.listdir(self.state_dir):
            name, token, role = entry.split(".")
            with open(os.path.join(self.state_dir, entry), "rb") as f:
                data = f.read()
            attempted = int.from_bytes(data[0:8], "little")
            done = int.from_bytes(data[8:16], "little")
            records += 1
            inst = seen.pop((name, token, role), None)
            last = inst[1] if inst else 0
            if last < done:
                self.note("lost", f"{name} {token} {role}: last line seen {last}, "
                          f"the writer wrote {done}", keep=20)
                self.count("lost_lines", done - last)
            elif last > attempted:
                self.note("phantom", f"{name} {token} {role}: line {last} seen, "
                          f"the writer got to {attempted}")
            elif last < attempted:
                self.count("interrupted")  # killed between the two counters
        self.instances = records
        for key in seen:
            self.note("unknown_instance", f"lines of {key}, which left no record")
        # What the followers printed: whole lines, each instance's in order, none twice.
        follow_lines = 0
        for name, path in self.followers:
            follow_lines += self.check_stream(path, "follow", {}, "follower")
        self.follow_lines = follow_lines

    # -- the report ---------------------------------------------------------------------------

    def report(self, out_dir):
        c = self.counts
        kills = c["kills_main"] + c["kills_child"]
        kills_target = int(10000 * self.a.minutes / 30)
        base = next((s for s in self.samples if s["t"] >= 60), None)
        later = [s for s in self.samples if base and s["t"] >= base["t"]]
        rss_max = max(s["rss_kib"] for s in later) if later else None
        growth = (rss_max - base["rss_kib"]) / base["rss_kib"] if base else None
        growth_end = ((self.final["rss_kib"] - base["rss_kib"]) / base["rss_kib"]
                      if base else None)
        # For reading, not judged: growth over the second half of the run (a bound that is
        # reached late shows here as little or none).
        mid = next((s for s in self.samples if s["t"] >= self.chaos_secs / 2), None)
        growth_half = ((self.final["rss_kib"] - mid["rss_kib"]) / mid["rss_kib"]
                       if mid else None)
        zmax = max(self.zombie_ages, default=0.0)
        cut = sum(v for k, v in c.items() if k.startswith("cut_"))
        dup = sum(v for k, v in c.items() if k.startswith("duplicated_"))
        crit = [
            ("lines lost", c["lost_lines"] == 0,
             f"{c['lost_lines']} lost ({c['lost']} places); {c['interrupted']} instances' last "
             "line interrupted by the kill (allowed)"),
            ("lines cut", cut == 0, f"{cut} (tend's output and the followers')"),
            ("lines duplicated", dup == 0, f"{dup}"),
            ("lines of unknown instances, or past what the writer wrote",
             c["unknown_instance"] + c["phantom"] == 0,
             f"{c['unknown_instance']} unknown, {c['phantom']} past the writer"),
            ("writer errors", c["writer_errors"] == 0, f"{c['writer_errors']}"),
            (f"SIGKILLs (at least 10,000 per 30 min: {kills_target:,})", kills >= kills_target,
             f"{kills:,} ({c['kills_main']:,} main processes, {c['kills_child']:,} children; "
             f"{kills / self.chaos_secs:.1f}/s)"),
            (f"RSS growth after the first minute < {RSS_GROWTH_LIMIT:.0%}",
             growth is not None and growth < RSS_GROWTH_LIMIT,
             (f"{growth:+.1%} at most ({base['rss_kib']} KiB at {base['t']:.0f} s, "
              f"max {rss_max} KiB; {growth_end:+.1%} at the end; {growth_half:+.1%} over "
              "the second half)") if base
             else "no sample after the first minute"),
            ("descriptors back to their starting count", self.final["fds"] == self.fds_start,
             f"{self.fds_start} at the start, {self.final['fds']} at the end, "
             f"{min(s['fds'] for s in self.samples)}–{max(s['fds'] for s in self.samples)} "
             "in between"),
            (f"no zombie child of tend older than {ZOMBIE_LIMIT_MS} ms", zmax <= ZOMBIE_LIMIT_MS,
             f"{len(self.zombie_ages):,} zombies seen (every {ZOMBIE_POLL * 1000:.0f} ms); "
             f"longest seen {zmax:.0f} ms"),
            ("tend answered `tend status` at every sample", c["status_unanswered"] == 0,
             f"{len(self.samples) - c['status_unanswered']} of {len(self.samples)}"),
            ("every reload accepted", c["reload_failed"] == 0,
             f"{c['reloads']} reloads, {c['reload_failed']} failed"),
            ("control requests answered", all(c[f"ctl_{v}_failed"] == 0
                                              for v in ("start", "stop", "restart")),
             ", ".join(f"{v} {c[f'ctl_{v}']} ok / {c[f'ctl_{v}_failed']} failed"
                       for v in ("restart", "stop", "start"))),
            ("clean shutdown (exit 0)", self.tend_exit == 0 and c["shutdown_failed"] == 0,
             f"exit {self.tend_exit}"),
        ]
        facts = machine_facts(self.a.tend, self.a.tend_source or self.a.tend)
        lines = [
            f"## Soak, {facts['date']}",
            "",
            f"- machine: {facts['cpus']}, kernel {facts['kernel']}; load average at the end "
            + " ".join(f"{x:.2f}" for x in os.getloadavg()),
            f"- tend: {facts['version']} ({self.a.tend_source or self.a.tend}, "
            f"built {facts['built']})",
            f"- settings: {self.a.minutes:g} min, {self.a.services} services (each a main "
            f"process and a child, one line each per {self.a.interval_ms} ms and a burst of "
            f"lines now and then), {self.a.kill_rate:g} SIGKILLs/s, a reload every "
            f"{self.a.reload_secs:g} s, samples every {self.a.sample_secs:g} s, seed "
            f"{self.a.seed}"
            + ("" if len(self.a.chaos) == 4 else f"; chaos only: {' '.join(self.a.chaos) or 'none'}"),
            f"- chaos: {kills:,} SIGKILLs, {c['ctl_restart']} restarts, {c['ctl_stop']} stops, "
            f"{c['ctl_start']} starts, {c['reloads']} reloads, {c['follows']} `tend logs -f` "
            "attached and detached",
            f"- checked: {self.lines:,} lines of tend's output ({self.service_lines:,} service "
            f"lines of {self.instances:,} writer instances, {c['tend_lines']:,} of tend's own), "
            f"{self.follow_lines:,} lines the followers printed",
            "",
            "| criterion | result | |",
            "|---|---|---|",
        ]
        for what, ok, detail in crit:
            lines.append(f"| {what} | {detail} | {'PASS' if ok else 'FAIL'} |")
        if self.tend_shapes:
            lines += ["", "tend's own messages (numbers and quoted names as #):", ""]
            for shape, n in self.tend_shapes.most_common(12):
                lines.append(f"- {n:,} × `{shape}`")
        bad = [k for k in sorted(self.errors) if self.errors[k] and k != "tend_lines"]
        if bad:
            lines += ["", "Examples:", ""]
            for k in bad:
                for e in self.errors[k]:
                    lines.append(f"- {k}: `{e}`")
        passed = all(ok for _, ok, _ in crit)
        lines += ["", f"Verdict: {'PASS' if passed else 'FAIL'}", ""]
        summary = "\n".join(lines)
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
            with open(os.path.join(out_dir, "summary.md"), "w") as f:
                f.write(summary)
            csv_path = os.path.join(out_dir, "samples.csv")
            with open(csv_path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(self.samples[0]))
                w.writeheader()
                w.writerows(self.samples)
            self.plot(csv_path, os.path.join(out_dir, "soak.png"))
        sys.stdout.write(summary)
        return passed

    def plot(self, csv_path, png):
        gnuplot = shutil.which("gnuplot")
        if not gnuplot:
            log("no plot: gnuplot is not installed (Debian: gnuplot-nox)")
            return
        script = f"""
set terminal pngcairo size 900,420 font ",10"
set output "{png}"
set datafile separator ","
set key below
set xlabel "seconds"
set ylabel "RSS, KiB"
set y2label "open descriptors"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set grid
set title "tend under the soak: {self.a.services} services, {self.a.kill_rate:g} SIGKILLs/s"
plot "{csv_path}" using 1:2 with linespoints axes x1y1 title "VmRSS (KiB)", \\
     "{csv_path}" using 1:3 with linespoints axes x1y1 title "RssAnon (KiB)", \\
     "{csv_path}" using 1:4 with linespoints axes x1y2 title "descriptors"
"""
        r = subprocess.run([gnuplot], input=script.encode(), capture_output=True)
        if r.returncode != 0:
            log(f"gnuplot failed: {r.stderr.decode(errors='replace').strip()}")
        else:
            log(f"plot written to {png}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tend", required=True)
    p.add_argument("--tend-source")
    p.add_argument("--writer", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--out")
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--services", type=int, default=100)
    p.add_argument("--kill-rate", type=float, default=7)
    p.add_argument("--interval-ms", type=int, default=50)
    p.add_argument("--burst", type=int, default=50)
    p.add_argument("--reload-secs", type=float, default=10)
    p.add_argument("--sample-secs", type=float, default=10)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--chaos", default="kill control reload follow")
    a = p.parse_args()
    a.chaos = a.chaos.split()
    if any(c not in ("kill", "control", "reload", "follow") for c in a.chaos):
        p.error(f"unknown chaos in {a.chaos}")
    if a.seed is None:
        a.seed = random.randrange(1 << 31)
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    soak = Soak(a)
    try:
        soak.run()
    except SoakError as e:
        log(f"FAIL: {e}")
        tail = open(soak.stderr_path, "rb").read()[-2000:].decode(errors="replace")
        log(f"tend's stderr ends with:\n{tail}")
        return 1
    finally:
        soak.stop.set()
        soak.kill_tend()
    soak.check()
    return 0 if soak.report(a.out) else 1


if __name__ == "__main__":
    sys.exit(main())
