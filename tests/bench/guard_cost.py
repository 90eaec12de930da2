#!/usr/bin/env python3
"""What the HTTP connection guard (adapters/http/http_conn_guard.c: request deadline and
per-address cap) costs a request. Starts a stack (a fresh database on HEX_TEST_PG_URL, a
private Redis) with two hexd on it: one with the guard at its defaults, one with it off
(HEX_HTTP_REQUEST_TIMEOUT=0, HEX_HTTP_CONNS_PER_ADDR=0); runs wrk on a cached
GET /v1/users/:id against each in turn (on, off, off, on, three times, 3 s each), and
prints each one's CPU per request and req/s. Not part of the test command; numbers in
docs/SECURITY.md.

Usage: HEX_TEST_PG_URL=... python3 tests/bench/guard_cost.py [BUILD_DIR]
(BUILD_DIR: a Release build with bin/hexd, default build-bench)."""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402
from harness import Stack, http_request  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build-bench")
harness.HEXD = os.path.abspath(os.path.join(BUILD, "bin", "hexd"))
SIDES = {"on": {}, "off": {"HEX_HTTP_REQUEST_TIMEOUT": "0", "HEX_HTTP_CONNS_PER_ADDR": "0"}}
JSON = {"Content-Type": "application/json"}


def ticks(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def main():
    st = Stack("guardcost", {"HEX_LOG_LEVEL": "info"}).start(start_hexd=False)
    hexds = {}
    try:
        for side, env in SIDES.items():
            hexds[side] = (st.start_hexd(env), st.http_port)
            st.hexd = None  # keep it: the next start_hexd takes fresh ports
            st.env(fresh_ports=True)
        port = hexds["on"][1]
        creds = json.dumps({"email": "g@example.com", "password": "correct horse 1"})
        uid = json.loads(http_request(port, "POST", "/v1/users", creds, JSON).raw)["id"]
        tok = json.loads(http_request(port, "POST", "/v1/login", creds, JSON).raw)["access_token"]
        lua = os.path.join(st.tmp, "get.lua")
        with open(lua, "w") as f:
            f.write('wrk.headers["Authorization"] = "Bearer %s"\n' % tok)
        cpu = {s: [0, 0] for s in SIDES}
        rps = {s: [] for s in SIDES}

        def run(side, keep=True):
            h, p = hexds[side]
            t0 = ticks(h.proc.pid)
            out = subprocess.run(["wrk", "-t2", "-c64", "-d3s", "-s", lua,
                                  "http://127.0.0.1:%d/v1/users/%s" % (p, uid)],
                                 capture_output=True, text=True).stdout
            t1 = ticks(h.proc.pid)
            n = int(re.search(r"(\d+) requests in", out).group(1))
            if keep:
                cpu[side][0] += t1 - t0
                cpu[side][1] += n
                rps[side].append(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)))

        run("on", False)
        run("off", False)
        for side in ["on", "off", "off", "on"] * 3:
            run(side)
        hz = os.sysconf("SC_CLK_TCK")
        for side in SIDES:
            t, n = cpu[side]
            print("guard %-3s: %.1f us CPU per request, %.0f req/s (mean of %d runs)" %
                  (side, 1e6 * t / hz / n, sum(rps[side]) / len(rps[side]), len(rps[side])))
    finally:
        for h, _ in hexds.values():
            st.hexd = h
            problems = st.stop_hexd()
            if problems:
                print("stop:", problems)
        st.close()


if __name__ == "__main__":
    main()
