#!/usr/bin/env python3
"""Drill 1: kill -9 one API instance under load (reads and keyed transfers through nginx).

Passes when the cluster keeps serving: failed answers only in a window right after the kill
(bounded: none later than WINDOW_BOUND_S after it, at most ERROR_BOUND of all requests),
none at all afterwards, every 201 transfer stored once, wallets as the answers imply,
`hexd ledger verify` ok."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drill_lib as d  # noqa: E402

WINDOW_BOUND_S = 12.0
ERROR_BOUND = 0.02


def body(cluster, checks, fields):
    load = d.TransferLoad(cluster)
    seconds = d.load_seconds(30, 8)
    d.say("load: 8 threads for %ds; api1 killed at %ds" % (seconds, seconds // 3))
    threads, _ = d.run_threads(8, load.op, seconds)
    time.sleep(seconds // 3)
    kill_t = time.monotonic()
    cluster.kill9("api1")
    d.join(threads)
    end_t = time.monotonic()
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
    after = d.request("GET", "/readyz")
    d.check(checks, after.status == 200, "cluster still ready: %d" % after.status)
    unresolved = load.check(checks, fields)
    d.check(checks, not unresolved, "every transfer ended 201 (retried with its key)")


if __name__ == "__main__":
    d.main("1-kill-api", body)
