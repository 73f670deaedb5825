#!/usr/bin/env python3
"""Counts TCP payload bytes both ways, for the wire measurements of scripts/wire-test.sh.

  tcp_count.py relay LISTEN_PORT TARGET_PORT COUNT_FILE   relay 127.0.0.1:LISTEN -> 127.0.0.1:TARGET
  tcp_count.py sink LISTEN_PORT COUNT_FILE                an HTTP server answering 204 to every request
                                                          (a remote_write receiver that keeps nothing)
  tcp_count.py stall LISTEN_PORT HOST:PORT AFTER FOR COUNT_FILE
                                                          a relay to HOST:PORT that stops forwarding (holds
                                                          the connections open, moves nothing) for FOR
                                                          seconds, AFTER seconds after it starts

COUNT_FILE gets "up down connections" (client->server bytes, server->client bytes) every second.
"""
import socket, sys, threading, time

counts = {"up": 0, "down": 0, "conns": 0}
lock = threading.Lock()

def add(key, n):
    with lock:
        counts[key] += n

def writer(path):
    while True:
        with lock:
            line = f'{counts["up"]} {counts["down"]} {counts["conns"]}\n'
        with open(path + ".tmp", "w") as f:
            f.write(line)
        import os
        os.replace(path + ".tmp", path)
        time.sleep(1)

stall = {"from": 0.0, "until": 0.0}

def pump(src, dst, key):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            while stall["from"] <= time.time() < stall["until"]:
                time.sleep(0.05)
            add(key, len(b))
            dst.sendall(b)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass

def relay(listen, target, host="127.0.0.1"):
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen)); srv.listen(64)
    while True:
        c, _ = srv.accept()
        try:
            u = socket.create_connection((host, target))
        except OSError:
            c.close(); continue
        add("conns", 1)
        threading.Thread(target=pump, args=(c, u, "up"), daemon=True).start()
        threading.Thread(target=pump, args=(u, c, "down"), daemon=True).start()

def sink_conn(c):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                b = c.recv(65536)
                if not b: return
                add("up", len(b)); buf += b
            head, buf = buf.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length": length = int(v.strip())
            while len(buf) < length:
                b = c.recv(65536)
                if not b: return
                add("up", len(b)); buf += b
            buf = buf[length:]
            resp = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
            add("down", len(resp)); c.sendall(resp)
    except OSError:
        pass
    finally:
        c.close()

def sink(listen):
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen)); srv.listen(64)
    while True:
        c, _ = srv.accept(); add("conns", 1)
        threading.Thread(target=sink_conn, args=(c,), daemon=True).start()

if __name__ == "__main__":
    mode = sys.argv[1]
    path = sys.argv[-1]
    threading.Thread(target=writer, args=(path,), daemon=True).start()
    if mode == "relay": relay(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "sink": sink(int(sys.argv[2]))
    elif mode == "stall":
        host, port = sys.argv[3].rsplit(":", 1)
        stall["from"] = time.time() + float(sys.argv[4]); stall["until"] = stall["from"] + float(sys.argv[5])
        relay(int(sys.argv[2]), int(port), host)
    else: sys.exit(__doc__)
