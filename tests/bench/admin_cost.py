#!/usr/bin/env python3
"""What an operator's subscription costs the API (issue 6: the admin port "runs beside the
API without slowing it measurably"). Starts a stack (a fresh database on HEX_TEST_PG_URL,
a private Redis, hexd), then runs wrk on a cached GET /v1/users/:id in the order
off, on, on, off (three times, 3 s each) with and without `hexctl subscribe` clients
(SUBS: "latency", what the console holds, or "latency,log"), and prints hexd's CPU per
request and the req/s of both sides. Not part of the test command; numbers in
docs/ADMIN.md ("Cost").

Usage: HEX_TEST_PG_URL=... SUBS=latency python3 tests/bench/admin_cost.py [BUILD_DIR]
(BUILD_DIR: a Release build with bin/hexd and bin/hexctl, default build-bench)."""
import os, sys, time, subprocess, re, json, signal
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness
from harness import Stack, http_request
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build-bench")
harness.HEXD = os.path.abspath(os.path.join(BUILD, "bin", "hexd"))
HEXCTL = os.path.abspath(os.path.join(BUILD, "bin", "hexctl"))
st = Stack("admincost", {"HEX_LOG_LEVEL": "info"})
st.start()
try:
    r = http_request(st.http_port, "POST", "/v1/users", body=json.dumps({"email": "a@example.com", "password": "correct horse 1"}).encode(), headers={"Content-Type": "application/json"})
    uid = json.loads(r.raw)["id"]
    r = http_request(st.http_port, "POST", "/v1/login", body=json.dumps({"email": "a@example.com", "password": "correct horse 1"}).encode(), headers={"Content-Type": "application/json"})
    tok = json.loads(r.raw)["access_token"]
    lua = os.path.join(st.tmp, "get.lua")
    open(lua, "w").write('wrk.headers["Authorization"] = "Bearer %s"\n' % tok)
    url = "http://127.0.0.1:%d/v1/users/%s" % (st.http_port, uid)
    env = dict(os.environ, HEX_ADMIN_LISTEN="127.0.0.1:%d" % st.admin_port, HEX_ADMIN_TOKEN=st.admin_token)
    pid = st.hexd.proc.pid
    hz = os.sysconf("SC_CLK_TCK")
    def ticks():
        f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    cpu = {"off": [0, 0], "on": [0, 0]}
    def run(side=None):
        t0 = ticks()
        out = subprocess.run(["wrk", "-t2", "-c64", "-d3s", "-s", lua, url], capture_output=True, text=True).stdout
        t1 = ticks()
        n = int(re.search(r"(\d+) requests in", out).group(1))
        if side:
            cpu[side][0] += t1 - t0; cpu[side][1] += n
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    run()
    res = {"off": [], "on": []}
    for side in ["off", "on", "on", "off"] * 3:
        subs = []
        if side == "on":
            for what in os.environ.get("SUBS", "latency,log").split(","):
                subs.append(subprocess.Popen([HEXCTL, "--json", "subscribe", what], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(0.5)
        res[side].append(run(side))
        for p in subs:
            p.send_signal(signal.SIGINT); p.wait(5)
    off = sum(res["off"]) / len(res["off"]); on = sum(res["on"]) / len(res["on"])
    us = {k: cpu[k][0] * 1e6 / hz / max(cpu[k][1], 1) for k in cpu}
    print("hexd CPU per request: without %.1f us, with %.1f us (%+.1f%%)" % (us["off"], us["on"], (us["on"] - us["off"]) / us["off"] * 100))
    print("cached GET req/s without a subscriber %.0f, with one (" + os.environ.get("SUBS", "latency,log") + ") %.0f: %+.1f%% (runs off %s, on %s)" % (off, on, (on - off) / off * 100, [round(x) for x in res["off"]], [round(x) for x in res["on"]]))
finally:
    st.stop_hexd(); st.close()
