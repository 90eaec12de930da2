#!/usr/bin/env python3
"""Drill 4: stop Redis under load (reads and webhooks), start it again.

Passes when every read (GET /v1/users/:id, served from PostgreSQL while the cache is gone)
and every webhook is answered 200 throughout, events wait in the outbox during the outage
(unpublished rows grow) and drain once Redis is back: each applied once by every consumer,
wallet = sum, `hexd ledger verify` ok."""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drill_lib as d  # noqa: E402


def body(cluster, checks, fields):
    seconds = d.load_seconds(30, 10)
    outage = seconds // 3
    load = d.EventLoad(cluster, payments=d.load_seconds(20000, 6000))
    readers = [d.make_user("drill-reader") for _ in range(4)]
    reads = d.Recorder()

    def read(i, conn):
        u = readers[random.randrange(len(readers))]
        t = time.monotonic()
        r = d.request("GET", "/v1/users/%s" % u["id"], token=u["token"], conn=conn)
        reads.add(t, r, "read")
        time.sleep(0.002)
        return r.status != 0

    d.say("load: 4 webhook + 4 read threads for %ds; Redis down from %ds for %ds" %
          (seconds, outage, outage))
    stop = threading.Event()
    t1, _ = d.run_threads(4, load.op, seconds, stop)
    t2, _ = d.run_threads(4, read, seconds, stop)
    time.sleep(outage)
    down_t = time.monotonic()
    cluster.redis_stop()
    d.say("Redis stopped")
    peak = 0
    while time.monotonic() < down_t + outage:
        peak = max(peak, cluster.unpublished())
        time.sleep(0.5)
    applied_down = load.applied()
    cluster.redis_start()
    up_t = time.monotonic()
    d.say("Redis started again (outage %.1fs, outbox peak %d)" % (up_t - down_t, peak))
    d.join(t1 + t2)
    took = load.wait_drained(120)
    fields["outage_s"] = "%.1f" % (up_t - down_t)
    fields["outbox_peak"] = peak
    fields["drain_after_up_s"] = "%.1f" % (time.monotonic() - up_t) if took is not None \
        else "timeout"
    d.check(checks, took is not None, "pipeline drained within 120 s of the load's end")
    d.check(checks, peak > 0, "events waited in the outbox during the outage (peak %d)" % peak)
    rerr = [r for r in reads.rows if r[3] != 200]
    werr = [r for r in load.rec.rows if r[3] != 200]
    fields["reads"] = len(reads.rows)
    fields["read_errors"] = len(rerr)
    fields["webhooks"] = len(load.rec.rows)
    fields["webhook_errors"] = len(werr)
    fields["applied_during_outage"] = applied_down
    d.check(checks, not rerr, "every read answered 200 (%d not: %s)" % (len(rerr), rerr[:3]))
    d.check(checks, not werr, "every webhook answered 200 (%d not: %s)" % (len(werr), werr[:3]))
    d.check(checks, len(reads.rows) > 100, "reads ran (%d)" % len(reads.rows))
    load.check(checks, fields)


if __name__ == "__main__":
    d.main("4-stop-redis", body)
