#!/usr/bin/env python3
"""Test helper: a tiny HTTP server for readiness and health probes.

Usage: httpserver.py PORT STATEDIR [DELAY]

Waits DELAY seconds (default 0) before listening, writes its pid to STATEDIR/pid, then answers
every GET with 200, or 500 while STATEDIR/broken exists. The request target of the latest
GET is in STATEDIR/last-path.
"""
import http.server
import os
import sys
import time

port, state = int(sys.argv[1]), sys.argv[2]
time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 0)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(os.path.join(state, "last-path.tmp"), "w") as f:
            f.write(self.path)
        os.rename(os.path.join(state, "last-path.tmp"), os.path.join(state, "last-path"))
        code = 500 if os.path.exists(os.path.join(state, "broken")) else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", port), Handler)
with open(os.path.join(state, "pid.tmp"), "w") as f:
    f.write(str(os.getpid()))
os.rename(os.path.join(state, "pid.tmp"), os.path.join(state, "pid"))
server.serve_forever()
