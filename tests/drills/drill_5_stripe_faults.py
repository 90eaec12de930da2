#!/usr/bin/env python3
"""Drill 5: Stripe slow (5 s per call) or failing, under load.

The cluster talks to the fake Stripe (tests/fakes/fake_stripe.py, in this process, on
127.0.0.1:28003) instead of the simulator.
  A. slow: reads (GET /v1/users/:id) are timed alone, then while 8 clients create payments
     that each wait 5 s on Stripe. Passes when the reads' p99 stays within
     LATENCY_BOUND_MS of the baseline's and no read fails; every payment ends 201.
  B. failing: Stripe answers 500 to every call for 3 s; the payments' requests fail (503,
     or 502 from nginx once it marked both instances failed), the client retries with the
     same Idempotency-Key and gets 201. Passes when each
     payment has exactly one PaymentIntent, made under one Stripe idempotency key.
  C. dead letter and replay: a refund that the wallet can no longer cover is retried
     (HEX_EVENT_MAX_ATTEMPTS=3), dead-lettered, the money comes back, `hexd dlq replay`
     applies it once. Passes with the refund posted once and `hexd ledger verify` ok."""

import importlib.util
import json
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drill_lib as d  # noqa: E402

LATENCY_BOUND_MS = 100.0
SECRET_KEY = "sk_test_hexdrill_" + uuid.uuid4().hex[:16]


def fake_stripe():
    path = os.path.join(d.ROOT, "tests", "fakes", "fake_stripe.py")
    spec = importlib.util.spec_from_file_location("fake_stripe", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fake = mod.FakeStripe(secret_key=SECRET_KEY)
    fake.start(d.FAKE_STRIPE_PORT)
    return fake


def create_payment(user, key, amount, rec, give_up_s=60):
    """POST /v2/payments with key until 201 (a client that keeps its key); the last reply
    and how many attempts it took."""
    deadline = time.monotonic() + give_up_s
    attempts = 0
    while True:
        attempts += 1
        t = time.monotonic()
        r = d.request("POST", "/v2/payments", {"amount": amount, "currency": "usd",
                                               "purpose": "wallet_top_up"},
                      token=user["token"], headers={"Idempotency-Key": key}, timeout=60)
        rec.add(t, r, "payment", key)
        if r.status == 201 or (400 <= r.status < 500 and r.status != 409) or \
                time.monotonic() > deadline:
            return r, attempts
        time.sleep(0.5)


def body_with(fake):
    def body(cluster, checks, fields):
        readers = [d.make_user("drill-reader") for _ in range(4)]
        payer = d.make_user("drill-payer")

        def reads_for(seconds, rec):
            def read(i, conn):
                u = readers[i % len(readers)]
                t = time.monotonic()
                r = d.request("GET", "/v1/users/%s" % u["id"], token=u["token"], conn=conn)
                rec.add(t, r, "read")
                time.sleep(0.01)
                return r.status != 0
            return d.run_threads(4, read, seconds)[0]

        # A. slow Stripe
        secs = d.load_seconds(15, 6)
        base = d.Recorder()
        d.join(reads_for(secs / 2, base))
        fake.control({"delay_ms": 5000})
        slow_reads = d.Recorder()
        pays = d.Recorder()
        results = []
        lock = threading.Lock()

        def pay(i, conn):
            r, n = create_payment(payer, uuid.uuid4().hex, 1000 + i, pays)
            with lock:
                results.append(r.status)
            return True

        d.say("A: reads alone %.0fs, then with 8 payment clients on a 5 s Stripe for %ds" %
              (secs / 2, secs))
        pt, _ = d.run_threads(8, pay, secs)
        d.join(reads_for(secs, slow_reads))
        d.join(pt)
        fake.control({"delay_ms": 0})
        lat = lambda rec: [r[1] * 1000 for r in rec.rows if r[3] == 200]  # noqa: E731
        b99, s99 = d.percentile(lat(base), 0.99), d.percentile(lat(slow_reads), 0.99)
        b50, s50 = d.percentile(lat(base), 0.5), d.percentile(lat(slow_reads), 0.5)
        fields["read_p50_ms"] = "%.1f->%.1f" % (b50, s50)
        fields["read_p99_ms"] = "%.1f->%.1f" % (b99, s99)
        fields["reads"] = len(base.rows) + len(slow_reads.rows)
        rerr = [r for r in base.rows + slow_reads.rows if r[3] != 200]
        fields["read_errors"] = len(rerr)
        fields["slow_payments"] = len(results)
        d.check(checks, not rerr, "no read failed (%d)" % len(rerr))
        d.check(checks, s99 <= b99 + LATENCY_BOUND_MS, "read p99 %.1f ms within %.0f ms of "
                "the baseline %.1f ms" % (s99, LATENCY_BOUND_MS, b99))
        d.check(checks, results and all(s == 201 for s in results),
                "every payment on the slow Stripe ended 201 (%s)" % results[:10])
        d.check(checks, len(slow_reads.rows) > 50, "reads ran during the slow phase")

        # B. failing Stripe: 3 attempts per hexd call (HEX_STRIPE_MAX_RETRIES 2)
        n = 5
        # Every call fails for FAIL_S seconds, whichever instance (and nginx retry) makes it.
        fake.control({"fail_next": [500] * 100000, "should_retry": True})
        b_rec = d.Recorder()
        keys = [uuid.uuid4().hex for _ in range(n)]
        out = [None] * n

        def one(i):
            out[i] = create_payment(payer, keys[i], 2000 + i, b_rec)

        ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        time.sleep(3)
        with fake.lock:
            fake.fail_next = []
        fail_end = time.monotonic()
        for t in ts:
            t.join(120)
        fields["failing_recovered_s"] = "%.1f" % max(
            [0.0] + [r[0] + r[1] - fail_end for r in b_rec.rows if r[3] != 201])
        first_503 = sum(1 for r in b_rec.rows if r[3] >= 500 or r[3] == 0)
        fields["failing_payments"] = n
        fields["failing_5xx_answers"] = first_503
        fields["failing_attempts"] = sum(o[1] for o in out if o)
        fields["failing_codes"] = ",".join(sorted({"%d:%s" % (r[3], r[4]) for r in b_rec.rows
                                                   if r[3] != 201}))
        d.check(checks, all(o and o[0].status == 201 for o in out),
                "every payment ended 201 after retries with its key")
        d.check(checks, first_503 >= 1, "Stripe's failures reached the client (a 5xx before the 201)")
        stats = json.loads(fake.stats_json())
        single = True
        for o in out:
            if not o or o[0].status != 201:
                continue
            pid = o[0].json()["id"]
            with fake.lock:
                its = [pi for pi in fake.intents.values()
                       if pi.get("metadata", {}).get("payment_id") == pid]
            key = cluster.scalar("SELECT stripe_idempotency_key FROM payments WHERE id = '%s'"
                                 % pid)
            if len(its) != 1 or stats["by_key"].get(key, 0) < 2:
                single = False
                d.say("payment %s: %d intents, key %s used %s times" %
                      (pid, len(its), key, stats["by_key"].get(key)))
        d.check(checks, single, "one PaymentIntent per payment, its Stripe key reused by "
                "every retry")
        rows = cluster.psql("SELECT count(*) FROM payments WHERE user_id = '%s'" % payer["id"])
        d.check(checks, int(rows[0][0]) == len(results) + n, "one payment row per key "
                "(%s rows, %d keys)" % (rows[0][0], len(results) + n))

        # C. dead letter, then replay
        p = out[0][0].json()
        paid = dict(p)
        r = d.send_event(cluster, d.event_for(paid, "succeeded", "evt_load_c_s"))
        d.check(checks, r.status == 200, "success event: %d" % r.status)
        d.wait_until(lambda: d.balance(cluster, payer["id"]) >= p["amount"], 30)
        other = d.make_user("drill-other")
        have = d.balance(cluster, payer["id"])
        tkey = uuid.uuid4().hex
        r = d.request("POST", "/v2/wallet/transfers", {"to_user_id": other["id"],
                                                       "amount": have, "currency": "usd"},
                      token=payer["token"], headers={"Idempotency-Key": tkey})
        d.check(checks, r.status == 201, "empty the wallet: %d %s" % (r.status, r.body[:200]))
        r = d.send_event(cluster, d.event_for(paid, "refunded", "evt_load_c_r"))
        d.check(checks, r.status == 200, "refund event: %d" % r.status)
        dl = d.wait_until(lambda: cluster.psql(
            "SELECT id, attempts FROM dead_letters WHERE event_id = 'evt_load_c_r' AND "
            "status = 'open'"), 60, 0.5)
        d.check(checks, dl, "the uncoverable refund was dead-lettered")
        if not dl:
            return
        fields["dead_letter_attempts"] = dl[0][1]
        r = d.request("POST", "/v2/wallet/transfers", {"to_user_id": payer["id"],
                                                       "amount": have, "currency": "usd"},
                      token=other["token"], headers={"Idempotency-Key": uuid.uuid4().hex})
        d.check(checks, r.status == 201, "money back: %d" % r.status)
        pr = cluster.hexd("dlq", "replay", dl[0][0])
        d.check(checks, pr.returncode == 0, "hexd dlq replay: %s%s" % (pr.stdout, pr.stderr))
        refunded = d.wait_until(lambda: cluster.scalar(
            "SELECT count(*) FROM journal_transactions WHERE reference = 'refund:%s'" %
            p["id"]) == "1", 30, 0.5)
        d.check(checks, refunded, "the replayed refund was posted once")
        st = cluster.scalar("SELECT status FROM dead_letters WHERE id = %s" % dl[0][0])
        d.check(checks, st == "replayed", "dead letter closed as replayed (%s)" % st)
        opened = int(cluster.scalar("SELECT count(*) FROM dead_letters WHERE status = 'open'"))
        d.check(checks, opened == 0, "no open dead letter left (%d)" % opened)
        d.check(checks, d.balance(cluster, payer["id"]) == 0, "wallet 0 after the refund")
        fields["dead_lettered"] = 1
        fields["replayed"] = 1 if refunded else 0
        ok, outp = cluster.ledger_verify()
        fields["ledger_verify"] = "ok" if ok else "FAIL"
        d.check(checks, ok, "hexd ledger verify: %s" % outp)
    return body


if __name__ == "__main__":
    fake = fake_stripe()
    try:
        d.main("5-stripe-faults", body_with(fake), {
            "HEX_GATEWAY": "stripe", "HEX_STRIPE_SECRET_KEY": SECRET_KEY,
            "HEX_STRIPE_API_BASE": "http://127.0.0.1:%d" % d.FAKE_STRIPE_PORT,
            "HEX_EVENT_MAX_ATTEMPTS": "3"})
    finally:
        fake.stop()
