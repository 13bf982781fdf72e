#!/usr/bin/env python3
"""Test helper: records every signal it receives, one number per line, in a file.

Usage: sigcatch.py OUTFILE [EXIT_ON_SIGNAL EXIT_CODE]

All catchable signals are blocked and taken with sigwaitinfo, so none is lost or coalesced
beyond what the kernel does (real-time signals queue; standard ones may merge). Writes
"ready" once set up, so a test knows when to start sending.
"""
import os
import signal
import sys

out = open(sys.argv[1], "a", buffering=1)
exit_on = int(sys.argv[2]) if len(sys.argv) > 2 else None
exit_code = int(sys.argv[3]) if len(sys.argv) > 3 else 0
sync = {signal.SIGKILL, signal.SIGSTOP, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL,
        signal.SIGFPE, signal.SIGTRAP, signal.SIGSYS}
wanted = [s for s in signal.valid_signals() if s not in sync]
signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
out.write("ready %d\n" % os.getpid())
while True:
    info = signal.sigwaitinfo(wanted)
    out.write("%d\n" % info.si_signo)
    if exit_on is not None and info.si_signo == exit_on:
        sys.exit(exit_code)
