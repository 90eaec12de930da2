#!/usr/bin/env python3
"""Drill 1: kill -9 one API instance under load (reads and keyed transfers through nginx
from Python threads, and wrk on cached reads through nginx at the same time).

Passes when the cluster keeps serving: failed answers only in a window right after the kill
(bounded: none later than WINDOW_BOUND_S after it, at most ERROR_BOUND of all requests),
none at all afterwards, every 201 transfer stored once, wallets as the answers imply,
`hexd ledger verify` ok. For wrk, whose answers are counted per wall-clock second
(drill_1_wrk.lua), the same at second resolution: every second with a non-2xx answer lies
in [the kill's second, kill + WINDOW_BOUND_S], non-2xx answers and socket errors (which have
no second) together at most ERROR_BOUND of its requests, and the TAIL_S or more seconds
after the window all answered and all 2xx."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drill_lib as d  # noqa: E402

WINDOW_BOUND_S = 12.0
ERROR_BOUND = 0.02
# Whole seconds after the window that wrk must still be running in (and answered 2xx).
TAIL_S = 3


def nginx_retried():
    """Requests nginx passed to the second instance after the first one failed (refused or
    reset): what the kill did to requests that no client saw fail."""
    n = 0
    with open(os.path.join(d.server_dir(), "nginx", "access.log"), "rb") as f:
        for line in f:
            i = line.find(b'"upstream":"')
            if i >= 0 and b", " in line[i + 12:line.find(b'"', i + 12)]:
                n += 1
    return n


def wrk_checks(checks, fields, wrk, kill_wall):
    s = wrk.summary
    per = wrk.per_second
    kill_s = int(kill_wall)
    last_s = int(kill_wall + WINDOW_BOUND_S)
    requests = s["requests"]
    answered = sum(ok + bad for ok, bad in per.values())
    non2xx = sum(bad for _, bad in per.values())
    sockets = wrk.socket_errors()
    bad = wrk.bad_seconds()
    outside = [t - kill_s for t in bad if t < kill_s or t > last_s]
    before = [t for t, (ok, _) in per.items() if t < kill_s and ok]
    # Every second from the window's end to wrk's last, answered or not: a stall counts.
    tail = list(range(last_s + 1, max(per, default=last_s) + 1))
    tail_served = [t for t in tail if per.get(t, (0, 0))[0] > 0 and per[t][1] == 0]
    fields["wrk_requests"] = requests
    fields["wrk_rps"] = "%.0f" % (requests / max(1e-6, s["duration_us"] / 1e6))
    fields["wrk_non2xx"] = non2xx
    fields["wrk_socket_errors"] = sockets
    if sockets:
        fields["wrk_socket_crwt"] = "%d/%d/%d/%d" % (s["connect"], s["read"], s["write"],
                                                     s["timeout"])
    fields["wrk_failed"] = non2xx + sockets
    # Whole seconds from the kill's second to the last one with a non-2xx answer.
    fields["wrk_fail_window_s"] = (bad[-1] - kill_s + 1) if bad else 0
    if wrk.statuses:
        fields["wrk_codes"] = ",".join("%d=%d" % kv for kv in sorted(wrk.statuses.items()))
    fields["wrk_p99_ms"] = "%.1f" % (s["p99_us"] / 1000)
    d.check(checks, requests > 1000, "wrk ran (%d requests)" % requests)
    d.check(checks, answered == requests, "every wrk answer has its second (%d of %d)" %
            (answered, requests))
    d.check(checks, before, "wrk was answered before the kill (seconds %s, kill at %d)" %
            (sorted(per)[:3], kill_s))
    d.check(checks, not outside, "no wrk second with a non-2xx answer outside [kill, kill+%.0fs]"
            " (seconds after the kill's: %s)" % (WINDOW_BOUND_S, outside[:10]))
    d.check(checks, non2xx + sockets <= ERROR_BOUND * max(1, requests),
            "wrk non-2xx %d + socket errors %d (connect %d, read %d, write %d, timeout %d) "
            "within %.0f%% of %d requests" % (non2xx, sockets, s["connect"], s["read"],
                                              s["write"], s["timeout"], ERROR_BOUND * 100,
                                              requests))
    d.check(checks, len(tail) >= TAIL_S and tail_served == tail,
            "wrk's %d seconds after the window all answered 2xx only (need >= %d): %s" %
            (len(tail), TAIL_S, [(t - kill_s,) + per.get(t, (0, 0)) for t in tail
                                 if t not in tail_served]))


def body(cluster, checks, fields):
    load = d.TransferLoad(cluster)
    reader = d.make_user("drill-wrk")
    path = "/v1/users/%s" % reader["id"]
    # The first read fills the Redis cache: wrk measures the cached path.
    r = d.request("GET", path, token=reader["token"])
    if r.status != 200:
        raise d.DrillFailed("GET %s: %d %s" % (path, r.status, r.body[:300]))
    seconds = d.load_seconds(30, 8)
    kill_at = seconds // 3
    # wrk starts before the kill and ends TAIL_S whole seconds (and a margin) after the
    # window, even when the Python load is shorter than that.
    wrk_seconds = max(seconds, kill_at + int(WINDOW_BOUND_S) + TAIL_S + 2)
    wrk = d.WrkLoad(path, reader["token"], wrk_seconds, threads=2, conns=32, timeout_s=2)
    d.say("load: 8 threads for %ds and wrk for %ds; api1 killed at %ds" %
          (seconds, wrk_seconds, kill_at))
    try:
        wrk.start()
        threads, _ = d.run_threads(8, load.op, seconds)
        time.sleep(kill_at)
        kill_t = time.monotonic()
        kill_wall = time.time()
        cluster.kill9("api1")
        d.join(threads)
        end_t = time.monotonic()
        wrk.finish()
    finally:
        wrk.stop()
    d.say("wrk (kill at second t=%d, window to t=%d): %s" %
          (int(kill_wall), int(kill_wall + WINDOW_BOUND_S),
           wrk.output.strip().replace("\n", "\n      ")))
    errs = d.window_stats(load.rec, kill_t, fields)
    late = [r for r in errs if r[0] > kill_t + WINDOW_BOUND_S or r[0] < kill_t]
    fields["after_kill_s"] = "%.0f" % (end_t - kill_t)
    d.check(checks, not late, "no failed answer outside [kill, kill+%.0fs]: %d (%s)" %
            (WINDOW_BOUND_S, len(late), late[:3]))
    d.check(checks, len(errs) <= ERROR_BOUND * max(1, len(load.rec.rows)),
            "errors %d within %.0f%% of %d requests" % (len(errs), ERROR_BOUND * 100,
                                                        len(load.rec.rows)))
    d.check(checks, len(load.rec.rows) > 100, "the load ran (%d requests)" %
            len(load.rec.rows))
    wrk_checks(checks, fields, wrk, kill_wall)
    retried = nginx_retried()
    fields["nginx_retried"] = retried
    # Zero would mean api1 had no request in flight and got none after: nothing was tested.
    d.check(checks, retried > 0, "the kill reached requests: nginx retried %d on api2" %
            retried)
    after = d.request("GET", "/readyz")
    d.check(checks, after.status == 200, "cluster still ready: %d" % after.status)
    unresolved = load.check(checks, fields)
    d.check(checks, not unresolved, "every transfer ended 201 (retried with its key)")


if __name__ == "__main__":
    d.main("1-kill-api", body)
