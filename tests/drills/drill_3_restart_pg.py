#!/usr/bin/env python3
"""Drill 3: stop PostgreSQL under load for a few seconds, start it again.

Load: reads, keyed transfers (retried with the same key, as a client does) and webhooks
(resent until 200, as Stripe does). Passes when every failed answer during the outage is a
503 `unavailable` (no other status, no hang), hexd reconnects by itself (no failed answer
later than RECOVER_BOUND_S after PostgreSQL is back), every transfer and event ends applied
exactly once (no half-applied money movement: wallets equal the stored transfers, each
payment posted once) and `hexd ledger verify` is ok."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drill_lib as d  # noqa: E402

RECOVER_BOUND_S = 10.0


def body(cluster, checks, fields):
    seconds = d.load_seconds(30, 12)
    outage = d.load_seconds(5, 3)
    tl = d.TransferLoad(cluster)
    ev = d.EventLoad(cluster, payments=d.load_seconds(10000, 4000))
    d.say("load: 6 read/transfer + 2 webhook threads for %ds; PostgreSQL down at %ds for %ds"
          % (seconds, seconds // 3, outage))
    stop = threading.Event()
    t1, _ = d.run_threads(6, tl.op, seconds, stop)
    t2, _ = d.run_threads(2, ev.op, seconds, stop)
    time.sleep(seconds // 3)
    down_t = time.monotonic()
    p = cluster.pg_ctl("stop", "-m", "fast", "-w", "-t", "60")
    d.check(checks, p.returncode == 0, "pg_ctl stop: %s" % p.stderr)
    d.say("PostgreSQL stopped")
    time.sleep(outage)
    p = cluster.pg_ctl("start", "-w", "-t", "60", "-l",
                       os.path.join(d.server_dir(), "pg", "postgres.log"))
    up_t = time.monotonic()
    d.check(checks, p.returncode == 0, "pg_ctl start: %s" % p.stderr)
    d.say("PostgreSQL started again after %.1fs" % (up_t - down_t))
    d.join(t1 + t2)
    took = ev.wait_drained(120)
    d.check(checks, took is not None, "event pipeline drained within 120 s")
    rows = tl.rec.rows + ev.rec.rows
    errs = [r for r in rows if r[3] not in (200, 201)]
    bad = [r for r in errs if not (r[3] == 503 and r[4] == "unavailable")]
    late = [r for r in errs if r[0] > up_t + RECOVER_BOUND_S or r[0] + r[1] < down_t]
    fields["requests"] = len(rows)
    fields["outage_s"] = "%.1f" % (up_t - down_t)
    fields["errors"] = len(errs)
    fields["errors_503_unavailable"] = len(errs) - len(bad)
    if errs:
        fields["recovered_after_up_s"] = "%.2f" % max(0.0, max(r[0] + r[1] for r in errs) - up_t)
    codes = {}
    for r in bad:
        k = "%d:%s" % (r[3], r[4] or "-")
        codes[k] = codes.get(k, 0) + 1
    if codes:
        fields["other_errors"] = ",".join("%s=%d" % kv for kv in sorted(codes.items()))
    d.check(checks, not bad, "failed answers are 503 unavailable only (%s)" % codes)
    d.check(checks, not late, "no failed answer later than %.0fs after PostgreSQL is back "
            "(%d)" % (RECOVER_BOUND_S, len(late)))
    d.check(checks, errs, "the outage was seen by the load (else the drill proved nothing)")
    after = d.request("GET", "/readyz")
    d.check(checks, after.status == 200, "ready again: %d" % after.status)
    ev_fields = {}
    ev.check(checks, ev_fields)
    unresolved = tl.check(checks, fields)
    d.check(checks, not unresolved, "every transfer ended 201 (retried with its key): %d not"
            % len(unresolved))
    fields["events"] = ev_fields["events"]
    fields["events_lost"] = ev_fields["lost"]
    fields["events_duplicated"] = ev_fields["duplicated"]


if __name__ == "__main__":
    d.main("3-restart-pg", body)
