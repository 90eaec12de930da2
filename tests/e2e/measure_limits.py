#!/usr/bin/env python3
"""Measures (does not assert) what hexd's HTTP listener does with oversized headers,
slow clients and a connection flood, at its default limits; the numbers go into
docs/SECURITY.md. Not a ctest (its name does not start with test_). Takes about 80 s.
The flood comes from 127.0.0.2 and the probes from 127.0.0.1: two clients, as hexd sees
them.

    HEX_TEST_PG_URL=... python3 tests/e2e/measure_limits.py --hexd build/bin/hexd
"""

import argparse
import os
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Stack, http_request, parse_raw_response, raw_exchange  # noqa: E402


def header_case(port, what, request):
    t0 = time.monotonic()
    try:
        data = raw_exchange(port, request, timeout=40)
    except OSError as e:
        data = b""
        what += " (%s)" % type(e).__name__
    status, _, _ = parse_raw_response(data) if data else (None, {}, b"")
    print("  %-44s -> %s after %.2f s" % (what, status if status else "closed, no answer",
                                          time.monotonic() - t0))


def headers(port):
    print("headers (HEX_HEADER_LIMIT 16 KiB):")
    base = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    for n in (8 * 1024, 15 * 1024, 16 * 1024 + 1, 64 * 1024, 1024 * 1024):
        header_case(port, "one %d-byte header" % n,
                    base + b"X-Big: " + b"a" * n + b"\r\nConnection: close\r\n\r\n")
    for n in (100, 500, 2000):
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(n))
        header_case(port, "%d small headers (%d bytes)" % (n, len(many)),
                    base + many + b"Connection: close\r\n\r\n")
    header_case(port, "request line with a 20 KiB URI",
                b"GET /healthz?" + b"q" * 20480 + b" HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\n\r\n")


def closed_after(port, first, trickle=None, every=10.0, limit=75.0):
    """Sends first, then (if trickle) one byte of it every `every` s; seconds until the
    server closes, or None if still open after limit."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(0.5)
    t0 = time.monotonic()
    if first:
        s.sendall(first)
    last = t0
    try:
        while time.monotonic() - t0 < limit:
            try:
                c = s.recv(4096)
                if not c:
                    return time.monotonic() - t0, None
                return time.monotonic() - t0, c.split(b"\r\n", 1)[0].decode("latin-1")
            except socket.timeout:
                pass
            if trickle and time.monotonic() - last >= every:
                try:
                    s.sendall(trickle)
                except OSError:
                    return time.monotonic() - t0, "send failed"
                last = time.monotonic()
        return None, None
    finally:
        s.close()


def slow(port):
    print("slow clients (HEX_HTTP_IDLE_TIMEOUT 30 s, HEX_HTTP_REQUEST_TIMEOUT 20 s):")
    cases = {
        "connect, send nothing": (b"", None),
        "half a request line, then silence": (b"GET /heal", None),
        "headers without the blank line, then silence": (b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
                                                         None),
        "body: 10 of 100 bytes, then silence": (
            b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{\"email\":", None),
        "headers trickled, one byte per 10 s": (b"GET /healthz HTTP/1.1\r\n", b"X"),
        "headers trickled, one byte per 2 s": (b"GET /healthz HTTP/1.1\r\n", b"Y"),
    }
    results = {}

    def run(name, first, trickle):
        results[name] = closed_after(port, first, trickle, every=2.0 if trickle == b"Y" else 10.0)

    ts = [threading.Thread(target=run, args=(n, f, t)) for n, (f, t) in cases.items()]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for name in cases:
        secs, line = results[name]
        print("  %-46s -> %s" % (name, "still open after 75 s" if secs is None else
                                 "closed after %.1f s%s" % (secs, ", answered %r" % line
                                                            if line else "")))


def flood(port, n):
    print("%d connections from 127.0.0.2 holding half-sent headers, meanwhile GET /healthz "
          "and /readyz from 127.0.0.1:" % n)
    socks = []
    t0 = time.monotonic()
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                         source_address=("127.0.0.2", 0))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError as e:
            print("  open failed after %d: %s" % (len(socks), e))
            break
    time.sleep(0.5)
    refused = 0
    for s in socks:
        s.setblocking(False)
        try:
            refused += s.recv(64).startswith(b"HTTP/1.1 503")
        except (BlockingIOError, OSError):
            pass
    print("  opened %d in %.1f s; %d answered 503 too_many_connections and closed" %
          (len(socks), time.monotonic() - t0, refused))
    lat = []
    fails = 0
    for i in range(40):
        try:
            r = http_request(port, "GET", "/healthz" if i % 2 else "/readyz", timeout=10)
            lat.append(r.elapsed * 1000)
            fails += r.status != 200
        except OSError:
            fails += 1
    for s in socks:
        s.close()
    if lat:
        print("  40 requests: %d failed, latency ms median %.1f, max %.1f" %
              (fails, statistics.median(lat), max(lat)))


def baseline(port):
    lat = [http_request(port, "GET", "/healthz").elapsed * 1000 for _ in range(40)]
    print("baseline: GET /healthz median %.1f ms, max %.1f ms" % (statistics.median(lat),
                                                                   max(lat)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hexd", required=True)
    ap.add_argument("--flood", type=int, default=1000)
    ap.add_argument("--flood-only", action="store_true",
                    help="skip the header and trickle cases (run under a low ulimit -n to "
                         "see what descriptor exhaustion does)")
    ap.add_argument("--hexd-nofile", type=int,
                    help="lower hexd's open-file limit (prlimit) once it runs")
    a = ap.parse_args()
    harness.HEXD = os.path.abspath(a.hexd)
    st = Stack("measure").start()
    try:
        port = st.port
        if a.hexd_nofile:
            import subprocess
            subprocess.run(["prlimit", "--pid", str(st.hexd.proc.pid),
                            "--nofile=%d:%d" % (a.hexd_nofile, a.hexd_nofile)], check=True)
            print("hexd RLIMIT_NOFILE lowered to %d" % a.hexd_nofile)
        baseline(port)
        if not a.flood_only:
            headers(port)
        flood(port, a.flood)
        if not a.flood_only:
            slow(port)
        print("hexd alive: %s; stop: %s" % (st.hexd.alive(), st.stop_hexd() or "clean"))
    finally:
        st.close()


if __name__ == "__main__":
    main()
