#!/usr/bin/env python3
"""Drill 2: kill -9 a worker mid-stream while webhooks pour in.

Signed payment_intent.succeeded events are sent through nginx by 6 threads; worker1 is
killed with SIGKILL while the consumers are busy. Passes when every accepted event is
applied exactly once by each consumer (ledger, membership, notify), each payment is posted
once, the wallet equals the sum, the outbox is drained, nothing is left pending on the
stream (worker2 claimed worker1's entries) and `hexd ledger verify` is ok."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drill_lib as d  # noqa: E402


def body(cluster, checks, fields):
    seconds = d.load_seconds(30, 8)
    load = d.EventLoad(cluster, payments=d.load_seconds(30000, 8000))
    d.say("load: 6 webhook threads for %ds; worker1 killed at %ds" % (seconds, seconds // 2))
    threads, _ = d.run_threads(6, load.op, seconds)
    time.sleep(seconds // 2)
    before = load.applied()
    cluster.kill9("worker1")
    fields["applied_at_kill"] = before
    d.join(threads)
    d.say("%d events accepted; waiting for the pipeline to drain" % len(load.accepted))
    took = load.wait_drained(120)
    fields["drain_s"] = "%.1f" % took if took is not None else "timeout"
    d.check(checks, took is not None, "pipeline drained within 120 s")
    d.check(checks, before < len(load.accepted), "the kill happened mid-stream (%d applied of "
            "%d)" % (before, len(load.accepted)))
    errs = d.window_stats(load.rec, 0, fields, ok_codes=(200,))
    fields.pop("window_s", None)
    fields.pop("first_err_after_fault_s", None)
    d.check(checks, not errs, "every webhook answered 200 (%d not)" % len(errs))
    load.check(checks, fields)


if __name__ == "__main__":
    d.main("2-kill-worker", body)
