#!/usr/bin/env python3
"""The ledger under concurrent load, end to end: many clients make random transfers while
Stripe top-ups and refunds (some delivered twice, some out of order) flow through the
event pipeline; afterwards the books must balance, no wallet may be negative, every
balance must equal its entries, every idempotency key must have moved money at most once,
and `hexd ledger verify` must agree. Then the simulated gateway's chaos mode (duplicated,
reordered, dropped-then-retried webhooks) must end with the same balances as a clean run.
"""

import os
import random
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (PaymentCase, sql_literal, stripe_event_for, unique_email,  # noqa: E402
                     wait_until)

PIPELINE_ENV = {
    "HEX_EVENT_RETRY_BASE_MS": "50",
    "HEX_EVENT_RETRY_MAX_MS": "400",
    "HEX_EVENT_MAX_ATTEMPTS": "8",
    "HEX_EVENT_POLL_MS": "10",
}


class BooksMixin:
    """Checks of the whole ledger straight from PostgreSQL."""

    def scalar(self, q):
        return self.stack.db.scalar(q)

    def wait_pipeline_idle(self, timeout=60.0):
        """Until nothing waits in the outbox and the ledger consumer has every event done
        (applied, or dead-lettered)."""
        q = ("SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL) + "
             "(SELECT count(*) FROM outbox o WHERE o.consumer = '' AND NOT EXISTS "
             " (SELECT 1 FROM processed_events p WHERE p.consumer = 'ledger' "
             "  AND p.event_id = o.event_id) AND NOT EXISTS "
             " (SELECT 1 FROM dead_letters d WHERE d.consumer = 'ledger' "
             "  AND d.event_id = o.event_id AND d.status = 'open'))")
        last = [None]

        def idle():
            last[0] = int(self.scalar(q))
            return last[0] == 0

        if not wait_until(idle, timeout * (3 if harness.SANITIZED else 1), interval=0.2):
            self.fail("the pipeline did not drain: %s events left\n%s" %
                      (last[0], self.stack.log_tail(4000)))

    def assertBooksBalance(self):
        db = self.stack.db
        unbalanced = db.sql("SELECT currency, sum(amount) FROM entries GROUP BY currency "
                            "HAVING sum(amount) <> 0")
        self.assertEqual(unbalanced, [], "entries do not sum to zero per currency")
        negative = db.sql("SELECT id, balance FROM accounts WHERE kind = 'wallet' "
                          "AND balance < 0")
        self.assertEqual(negative, [], "a wallet went negative")
        drift = db.sql("SELECT a.id, a.balance, coalesce(sum(e.amount), 0) FROM accounts a "
                       "LEFT JOIN entries e ON e.account_id = a.id GROUP BY a.id "
                       "HAVING a.balance <> coalesce(sum(e.amount), 0)")
        self.assertEqual(drift, [], "a balance differs from the sum of its entries")
        per_txn = db.sql("SELECT transaction_id FROM entries GROUP BY transaction_id, currency "
                         "HAVING sum(amount) <> 0 OR count(*) < 2")
        self.assertEqual(per_txn, [], "a journal transaction is not balanced")
        r = self.stack.run_hexd(["ledger", "verify"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("ledger ok", r.stdout)

    def wallet(self, session):
        r = self.pay_req("GET", "/v2/wallet", token=session.access)
        self.assertEqual(r.status, 200, r)
        return {w["currency"]: w["balance"] for w in r.body["data"]}


class LedgerConcurrencyTest(BooksMixin, PaymentCase):
    HEXD_ENV = dict(PIPELINE_ENV, HEX_WORKERS="6")

    USERS = 10
    TOP_UPS_PER_USER = 4
    TRANSFERS = 600 if harness.SANITIZED else 1500
    REFUNDS = 12
    THREADS = 8

    def test_random_transfers_top_ups_and_refunds_keep_the_books(self):
        rnd = random.Random(20261129)
        users = [self.session(unique_email("conc")) for _ in range(self.USERS)]
        payments = []
        for u in users:
            for _ in range(self.TOP_UPS_PER_USER):
                cur = rnd.choice(["usd", "usd", "eur"])
                payments.append((u, self.new_payment(u, amount=rnd.randint(500, 5000),
                                                     currency=cur)))
        refunded = rnd.sample(payments, self.REFUNDS)

        ops = []
        for u, p in payments:
            ev = stripe_event_for(p, "succeeded")
            ops.append(("event", ev))
            if rnd.random() < 0.4:
                ops.append(("event", ev))  # a duplicate delivery of the same event id
        for u, p in refunded:
            ops.append(("event", stripe_event_for(p, "refunded")))
        keys = {}  # (payer id, key) -> the request body, to replay exactly
        for i in range(self.TRANSFERS):
            a, b = rnd.sample(users, 2)
            if keys and rnd.random() < 0.15:
                (payer_id, key), body = rnd.choice(list(keys.items()))
                a = next(u for u in users if u.id == payer_id)
            else:
                key = "k-%d-%s" % (i, uuid.uuid4().hex[:8])
                body = {"to_user_id": b.id, "amount": rnd.randint(1, 900),
                        "currency": rnd.choice(["usd", "usd", "eur"])}
                keys[(a.id, key)] = body
            ops.append(("transfer", (a, key, body)))
        rnd.shuffle(ops)

        lock = threading.Lock()
        answers = {}  # (payer id, key) -> list of (status, body)
        errors = []

        def run(op):
            kind, arg = op
            if kind == "event":
                r = self.send_event(arg)
                if r.status != 200:
                    with lock:
                        errors.append(("event", r.status, r.body))
                return
            a, key, body = arg
            r = self.pay_req("POST", "/v2/wallet/transfers", json_body=body, token=a.access,
                             headers={"Idempotency-Key": key})
            with lock:
                answers.setdefault((a.id, key), []).append((r.status, r.body))
                if r.status not in (201, 409):
                    errors.append(("transfer", r.status, r.body))

        t0 = time.monotonic()
        with ThreadPoolExecutor(self.THREADS) as pool:
            list(pool.map(run, ops))
        elapsed = time.monotonic() - t0
        self.assertEqual(errors, [], "unexpected answers under load")
        self.wait_pipeline_idle()

        # Each key moved money at most once, and every 201 for a key is the same transfer.
        moved = {}
        for k, got in answers.items():
            created = [b for s, b in got if s == 201]
            ids = {b["id"] for b in created}
            self.assertLessEqual(len(ids), 1, "key %s created %d transfers" % (k, len(ids)))
            for s, b in got:
                if s == 409:
                    self.assertEqual(b["code"], "insufficient_funds", b)
            if ids:
                moved[k] = created[0]
        db = self.stack.db
        n_transfers = int(db.scalar("SELECT count(*) FROM journal_transactions "
                                    "WHERE reference LIKE 'transfer:%'"))
        self.assertEqual(n_transfers, len(moved), "transfers in the books vs keys answered 201")
        for (payer, key), t in moved.items():
            rows = db.sql("SELECT a.owner_id, e.amount, e.currency FROM entries e "
                          "JOIN accounts a ON a.id = e.account_id WHERE e.transaction_id = %s "
                          "ORDER BY e.amount" % sql_literal(t["id"]))
            self.assertEqual(rows, [[payer, str(-t["amount"]), t["currency"]],
                                    [t["to_user_id"], str(t["amount"]), t["currency"]]])

        # Every success posted exactly once; every refund posted once or dead-lettered.
        for u, p in payments:
            n = db.scalar("SELECT count(*) FROM journal_transactions WHERE reference = %s" %
                          sql_literal("payment:" + p["id"]))
            self.assertEqual(n, "1", "top-up %s posted %s times" % (p["id"], n))
        refunds_posted = set()
        for u, p in refunded:
            n = int(db.scalar("SELECT count(*) FROM journal_transactions WHERE reference = %s"
                              % sql_literal("refund:" + p["id"])))
            dead = int(db.scalar(
                "SELECT count(*) FROM dead_letters d JOIN stripe_events s ON s.id = d.event_id "
                "WHERE d.consumer = 'ledger' AND d.status = 'open' AND s.payment_id = %s" %
                sql_literal(p["id"])))
            self.assertEqual((n, dead) in ((1, 0), (0, 1)), True,
                             "refund of %s: %d postings, %d dead letters" % (p["id"], n, dead))
            if n:
                refunds_posted.add(p["id"])

        # What each wallet must hold, from the answers alone, equals what the API says.
        expect = {u.id: {} for u in users}

        def add(uid, cur, amount):
            expect[uid][cur] = expect[uid].get(cur, 0) + amount

        for u, p in payments:
            add(u.id, p["currency"], p["amount"])
            if p["id"] in refunds_posted:
                add(u.id, p["currency"], -p["amount"])
        for (payer, key), t in moved.items():
            add(payer, t["currency"], -t["amount"])
            add(t["to_user_id"], t["currency"], t["amount"])
        for u in users:
            have = self.wallet(u)
            want = {c: v for c, v in expect[u.id].items() if c in have or v != 0}
            self.assertEqual(have, want, "wallet of %s" % u.id)
        self.assertBooksBalance()
        print("\n  %d operations (%d transfers answered 201, %d refunds posted) in %.1f s"
              % (len(ops), len(moved), len(refunds_posted), elapsed), file=sys.stderr)


class ChaosEquivalenceTest(BooksMixin, PaymentCase):
    """The same purchases through the simulated gateway, first clean, then with chaos:
    each user's balances must come out the same."""

    FAKE_STRIPE = False
    HEXD_ENV = dict(PIPELINE_ENV, HEX_GATEWAY="simulated", HEX_SIMULATED_DELAY_MS="20")
    USERS = 4
    PAYMENTS_PER_USER = 6

    def run_purchases(self, tag):
        """Every user buys the same top-ups (some declined: amounts ending in 13); the
        balances once every payment has settled, by user index."""
        users = [self.session(unique_email("%s%d" % (tag, i))) for i in range(self.USERS)]
        rnd = random.Random(7)
        made = []
        for i, u in enumerate(users):
            for j in range(self.PAYMENTS_PER_USER):
                amount = rnd.choice([1000, 2013, 350, 4999, 113, 720])
                made.append((u, self.new_payment(u, amount=amount, currency="usd",
                                                 key="%s-%d-%d" % (tag, i, j))))
        for u, p in made:
            want = "failed" if p["amount"] % 100 == 13 else "succeeded"
            self.wait_payment_status(u, p["id"], want, timeout=30.0)
        self.wait_pipeline_idle()
        return [self.wallet(u) for u in users], made

    def test_chaos_ends_with_the_same_balances_as_a_clean_run(self):
        clean, made = self.run_purchases("clean")
        for i, wallet in enumerate(clean):
            paid = sum(p["amount"] for u, p in made[i * self.PAYMENTS_PER_USER:]
                       [:self.PAYMENTS_PER_USER] if p["amount"] % 100 != 13)
            self.assertEqual(wallet, {"usd": paid} if paid else {}, "user %d" % i)
        clean_events = int(self.stack.db.scalar("SELECT count(*) FROM stripe_events"))
        self.stack.restart_hexd({"HEX_SIMULATED_CHAOS": "on"})
        chaos, _ = self.run_purchases("chaos")
        self.assertEqual(chaos, clean)
        # Chaos really happened: more webhook deliveries than events (duplicates, retries).
        r = self.get("/metrics")
        deliveries = sum(float(line.rsplit(" ", 1)[1]) for line in r.raw.decode().splitlines()
                         if line.startswith("hex_http_requests_total{")
                         and 'route="/v2/stripe/webhook"' in line)
        chaos_events = int(self.stack.db.scalar("SELECT count(*) FROM stripe_events")) - \
            clean_events
        self.assertGreater(deliveries, chaos_events, "no duplicate delivery under chaos")
        self.assertEqual(self.stack.db.scalar("SELECT count(*) FROM dead_letters"), "0")
        self.assertBooksBalance()


if __name__ == "__main__":
    harness.main()
