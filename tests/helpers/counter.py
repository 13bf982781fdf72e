#!/usr/bin/env python3
"""Test helper: writes the numbered lines 1, 2, 3, ... to stdout, each with one write, and
never forks (so it keeps running where fork fails).

Usage: counter.py INTERVAL_SECONDS [PROGRESS_FILE]

Sleeps INTERVAL_SECONDS after each line (0: as fast as the pipe takes them). With
PROGRESS_FILE, the number of the last line written is also kept in that file (rewritten in
place after each line), so a test can see whether the writer is held back.
"""
import os
import sys
import time

interval = float(sys.argv[1])
progress = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644) if len(sys.argv) > 2 else None
i = 0
while True:
    i += 1
    line = b"%d\n" % i
    while line:
        line = line[os.write(1, line):]
    if progress is not None:
        os.pwrite(progress, b"%-12d\n" % i, 0)
    if interval:
        time.sleep(interval)
