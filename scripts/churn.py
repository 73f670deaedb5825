#!/usr/bin/env python3
"""Host churn for storage and fidelity measurements: short-lived processes and TCP connections.

    scripts/churn.py [--processes-per-minute 300] [--connections-per-minute 300] [--seconds 3600] [--seed 1]

Starts processes (`sleep`, living 0.2 s to 30 s, a tenth of them over 10 s so they get per-process
series) and opens loopback TCP connections to a listener of its own (held 1 s to 30 s), at the given
rates, until --seconds have passed or it is interrupted. Prints what it did once a minute. Seeded, so two
runs churn alike.
"""
import argparse
import random
import socket
import subprocess
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes-per-minute", type=float, default=300)
    ap.add_argument("--connections-per-minute", type=float, default=300)
    ap.add_argument("--seconds", type=float, default=3600)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    port = listener.getsockname()[1]
    accepted = []

    def accept_loop():
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            accepted.append((c, time.monotonic()))

    threading.Thread(target=accept_loop, daemon=True).start()

    procs, conns = [], []  # (object, end time)
    started = time.monotonic()
    next_proc = next_conn = started
    last_report, counts = started, [0, 0]
    while time.monotonic() - started < a.seconds:
        now = time.monotonic()
        if a.processes_per_minute > 0 and now >= next_proc:
            life = rng.uniform(10, 30) if rng.random() < 0.1 else rng.uniform(0.2, 5)
            procs.append(subprocess.Popen(["sleep", "%.2f" % life]))
            counts[0] += 1
            next_proc += rng.expovariate(a.processes_per_minute / 60)
        if a.connections_per_minute > 0 and now >= next_conn:
            s = socket.create_connection(("127.0.0.1", port))
            conns.append((s, now + rng.uniform(1, 30)))
            counts[1] += 1
            next_conn += rng.expovariate(a.connections_per_minute / 60)
        procs = [p for p in procs if p.poll() is None]
        keep = []
        for s, end in conns:
            if now >= end:
                s.close()
            else:
                keep.append((s, end))
        conns = keep
        for i in range(len(accepted) - 1, -1, -1):
            c, t = accepted[i]
            if now - t > 31:
                c.close()
                del accepted[i]
        if now - last_report >= 60:
            print("churn: %d processes and %d connections started in %.0f s; %d processes and %d connections alive"
                  % (counts[0], counts[1], now - started, len(procs), len(conns)), flush=True)
            last_report = now
        time.sleep(min(max(0.0, min(next_proc, next_conn) - time.monotonic()), 0.05))
    for s, _ in conns:
        s.close()
    for p in procs:
        p.kill()
        p.wait()
    print("churn: done, %d processes and %d connections started" % tuple(counts), flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
