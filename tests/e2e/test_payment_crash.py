#!/usr/bin/env python3
"""hexd killed with SIGKILL between storing a payment and Stripe's answer: after a restart
on the same database, the client's retry with its Idempotency-Key reuses the stored
Stripe key, and the fake Stripe holds exactly one PaymentIntent for the payment."""

import os
import signal
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import PaymentCase, sql_literal, unique_email, wait_until  # noqa: E402


class PaymentCrashTest(PaymentCase):
    # Longer than the fake's delay: hexd would still be waiting for Stripe when killed.
    HEXD_ENV = {"HEX_STRIPE_TIMEOUT_MS": "10000", "HEX_STRIPE_MAX_RETRIES": "1"}

    def stored(self, s, key):
        rows = self.stack.db.sql(
            "SELECT id, status, stripe_idempotency_key, stripe_payment_intent_id FROM payments "
            "WHERE user_id = %s AND client_key = %s" % (sql_literal(s.id), sql_literal(key)))
        return dict(zip(["id", "status", "stripe_key", "intent"], rows[0])) if rows else None

    def crash_mid_call(self, s, key, amount):
        """POSTs from a thread while the fake holds its answer 3 s, SIGKILLs hexd about
        1 s in, and restarts it; returns (the stored row, what the thread got)."""
        self.fake_stripe.control(delay_next=[3000])
        outcome = {}

        def post():
            try:
                outcome["response"] = self.create_payment(s, amount=amount, key=key,
                                                           timeout=20)
            except OSError as e:  # the connection dies with hexd
                outcome["error"] = e

        t = threading.Thread(target=post)
        started = time.monotonic()
        t.start()
        row = wait_until(lambda: self.stored(s, key), 5)
        self.assertIsNotNone(row, "the payment was not stored before calling Stripe")
        self.assertIsNotNone(
            wait_until(lambda: self.fake_stripe.stats()["by_key"].get(row["stripe_key"]), 5),
            "hexd did not call Stripe with the stored key")
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        self.assertTrue(t.is_alive(), "the request ended before the kill: %r" % outcome)
        self.assertEqual(self.stored(s, key)["intent"], "",
                         "Stripe's answer cannot have been stored yet")
        self.assertEqual(self.kill_hexd(), -signal.SIGKILL)
        t.join(30)
        self.assertFalse(t.is_alive())
        self.assertNotIn("response", outcome, "a killed hexd answered: %r" % outcome)
        self.stack.start_hexd()
        return row

    def test_sigkill_mid_stripe_call_then_the_retry_makes_no_second_intent(self):
        s = self.session(unique_email("crash"))
        key = "crash-" + uuid.uuid4().hex
        stats = self.fake_stripe.stats()
        row = self.crash_mid_call(s, key, 4900)
        self.assertEqual(self.stored(s, key)["intent"], "")
        # The fake created the intent before holding its answer: Stripe acted, hexd
        # never heard.
        self.assertEqual(len(self.fake_stripe.intents(row["id"])), 1)

        r = self.create_payment(s, amount=4900, key=key)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.body["id"], row["id"])
        self.assertEqual(r.body["status"], "requires_payment_method")
        intents = self.fake_stripe.intents(row["id"])
        self.assertEqual(len(intents), 1, "a second PaymentIntent after the crash: %r" % intents)
        self.assertEqual(r.body["stripe_payment_intent_id"], intents[0]["id"])
        self.assertEqual(r.body["client_secret"], intents[0]["client_secret"])
        after = self.fake_stripe.stats()
        self.assertEqual(after["intents_created"], stats["intents_created"] + 1)
        self.assertEqual(after["requests"], stats["requests"] + 2)
        self.assertEqual(after["by_key"].get(row["stripe_key"]), 2,
                         "both attempts must use the one stored Stripe key: %r" %
                         after["by_key"])
        self.assertEqual(after["replays"], stats["replays"] + 1)
        self.assertEqual(self.stored(s, key)["intent"], intents[0]["id"])
        self.assertEqual(self.stack.db.scalar(
            "SELECT count(*) FROM payments WHERE user_id = %s" % sql_literal(s.id)), "1")
        # And a further retry is a plain replay.
        again = self.create_payment(s, amount=4900, key=key)
        self.assertEqual(again.status, 201, again)
        self.assertEqual(again.body, r.body)
        self.assertEqual(self.fake_stripe.stats()["requests"], after["requests"])

    def test_after_the_crash_the_payment_still_completes_by_webhook(self):
        s = self.session(unique_email("crash-hook"))
        key = "crash-hook-" + uuid.uuid4().hex
        row = self.crash_mid_call(s, key, 5100)
        p = self.new_payment(s, amount=5100, purpose="wallet_top_up", key=key)
        self.assertEqual(p["id"], row["id"])
        self.deliver(harness.stripe_event_for(p, "succeeded"))
        self.assertEqual(self.get_payment(s, p["id"])["status"], "succeeded")
        self.assertEqual(len(self.fake_stripe.intents(p["id"])), 1)


if __name__ == "__main__":
    harness.main()
