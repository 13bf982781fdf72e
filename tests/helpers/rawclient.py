#!/usr/bin/env python3
"""Test helper: a control-socket client that sends exactly the bytes it is given.

Usage: rawclient.py SOCKET TIMEOUT_SECONDS [--close-write] < REQUEST_BYTES

Connects, sends stdin as it is (tend may stop reading early, e.g. for a request that is too
long: that is not an error here), with --close-write shuts its sending side, then copies
everything tend answers to stdout until tend closes the connection. Exits 3 if tend has not
closed it within TIMEOUT_SECONDS.
"""
import socket
import sys

sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
sock.settimeout(float(sys.argv[2]))
try:
    sock.sendall(sys.stdin.buffer.read())
    if "--close-write" in sys.argv[3:]:
        sock.shutdown(socket.SHUT_WR)
except OSError:
    pass
answer = b""
code = 0
try:
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
except socket.timeout:
    code = 3
except OSError:
    # A reset after tend closed with our bytes unread: what it answered is already here.
    pass
sys.stdout.buffer.write(answer)
sys.exit(code)
