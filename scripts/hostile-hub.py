#!/usr/bin/env python3
"""A hub that lies, for tests: it speaks enough of the sync protocol (docs/format/sync.md) to take an
agent's handshake and push, and answers with values no honest hub sends.

    scripts/hostile-hub.py PORT

- the handshake (`GET /api/v1/sync/cursor`) claims another epoch, so the agent pushes from its first tick;
- every push (`POST /api/v1/sync/push`, either lane) is answered at once, before the body is read, with
  `behind` acknowledgements whose `wait_ms` is the largest 64-bit integer, then with `applied` up to the
  largest 64-bit tick, then keeps reading (and ignoring) the body;
- the address map (`GET /api/v1/sync/addresses`) holds an empty address and a 300-byte host name.

Counts what it answered in /stats (JSON), so a test knows the agent met each lie.
"""
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATS = {"handshakes": 0, "pushes": 0, "addresses": 0}
LOCK = threading.Lock()
BIG = 2**63 - 1


def count(key):
    with LOCK:
        STATS[key] += 1


class Hub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/api/v1/sync/cursor":
            count("handshakes")
            self.reply(200, json.dumps({"host": "web-1", "epoch": "0", "applied_through": BIG}))
        elif path == "/api/v1/sync/addresses":
            count("addresses")
            self.reply(200, json.dumps({"": "web-1", "10.0.0.9": "x" * 300}))
        elif path == "/stats":
            with LOCK:
                self.reply(200, json.dumps(STATS))
        else:
            self.reply(404, json.dumps({"status": "error", "error": "not here"}))

    def do_POST(self):
        if self.path.split("?")[0] != "/api/v1/sync/push":
            return self.reply(404, "{}")
        count("pushes")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        lines = [{"outcome": "behind", "wait_ms": BIG}, {"outcome": "behind", "wait_ms": -BIG},
                 {"outcome": "applied", "first": 1, "last": 2**64 - 1}, {"outcome": "applied", "last": BIG}]
        for line in lines:
            data = (json.dumps(line) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
        try:
            while self.rfile.read(65536):
                pass
        except OSError:
            pass
        self.close_connection = True


if __name__ == "__main__":
    # A parent (a test runner) may have blocked these; the hub must stop when told.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hub).serve_forever()
