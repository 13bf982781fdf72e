#!/usr/bin/env python3
"""Test helper: makes N orphans by double fork, then waits until every one is reaped.

Usage: orphans.py N

Each orphan's parent exits at once, so the orphan is re-parented to the nearest subreaper
(tend) and exits there; reaping it is tend's job. This process exits 0 once no zombie and no
orphan of its making is left, and 1 (listing what is left) if that does not happen in time.
"""
import os
import sys
import time

n = int(sys.argv[1])
reaper = os.getppid()
mine = set()
for _ in range(n):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        grandchild = os.fork()
        if grandchild == 0:
            os._exit(0)
        os.write(w, str(grandchild).encode())
        os._exit(0)
    os.close(w)
    mine.add(int(os.read(r, 32)))
    os.close(r)
    os.waitpid(pid, 0)


def alive(pid):
    """A pid still in the process table (running or zombie) under the reaper."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[1]) == reaper


deadline = time.monotonic() + 30
left = mine
while left and time.monotonic() < deadline:
    left = {p for p in left if alive(p)}
    time.sleep(0.01)
if left:
    print("not reaped: %s" % sorted(left)[:20], file=sys.stderr)
    sys.exit(1)
print("all %d orphans reaped" % n)
