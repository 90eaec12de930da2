#!/usr/bin/env python3
"""POST /v2/create-checkout-session: a membership sold through a Stripe Checkout Session.
Against the fake Stripe: the 303 to the session's page, the JSON form with Accept, the
request stored before Stripe is called, Idempotency-Key replay, Stripe down (503, then the
retry opens one session), Stripe refusing (400, failed), auth. With the simulated gateway:
the buyer becomes a member through the signed checkout.session.completed webhook."""

import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import PaymentCase, sql_literal, stripe_event_for, unique_email  # noqa: E402

PATH = "/v2/create-checkout-session"
SUCCESS_URL = "https://shop.example/welcome"
CANCEL_URL = "https://shop.example/maybe-later"
PRICE = 1299


class CheckoutCase(PaymentCase):
    def checkout(self, session, key=None, accept=None, token=harness._DEFAULT, timeout=30.0):
        hdrs = {}
        if key is not None:
            hdrs["Idempotency-Key"] = key
        if accept is not None:
            hdrs["Accept"] = accept
        tok = session.access if token is harness._DEFAULT else token
        return self.pay_req("POST", PATH, token=tok, headers=hdrs, timeout=timeout)

    def session_json(self, session, key=None):
        r = self.checkout(session, key=key, accept="application/json")
        self.assertEqual(r.status, 200, r)
        return r.body

    def assertSessionJson(self, body):
        self.assertIsInstance(body, dict, body)
        self.assertEqual(set(body), {"id", "url", "payment_id"}, body)
        self.assertRegex(body["payment_id"], harness.UUID_RE)
        self.assertTrue(body["id"].startswith("cs_"), body)
        self.assertRegex(body["url"], r"^https?://[^/]+/.*" + body["id"] + "$")

    def checkout_row(self, payment_id):
        cols = ["user_id", "amount", "currency", "purpose", "status", "client_key",
                "stripe_idempotency_key", "stripe_checkout_session_id", "checkout_url",
                "failure_message"]
        rows = self.stack.db.sql("SELECT %s FROM payments WHERE id = %s" %
                                 (", ".join(cols), sql_literal(payment_id)))
        return dict(zip(cols, rows[0])) if rows else None

    def rows_by_key(self, session, key):
        return self.stack.db.sql(
            "SELECT id, status, stripe_idempotency_key, "
            "coalesce(stripe_checkout_session_id, '') FROM payments "
            "WHERE user_id = %s AND client_key = %s" % (sql_literal(session.id),
                                                        sql_literal(key)))

    def membership(self, session):
        r = self.get("/v1/users/%s" % session.id, token=session.access)
        self.assertEqual(r.status, 200, r)
        return r.body["membership"]


class FakeStripeCheckoutTest(CheckoutCase):
    HEXD_ENV = {"HEX_MEMBERSHIP_PRICE": str(PRICE), "HEX_MEMBERSHIP_CURRENCY": "EUR",
                "HEX_CHECKOUT_SUCCESS_URL": SUCCESS_URL, "HEX_CHECKOUT_CANCEL_URL": CANCEL_URL,
                "HEX_STRIPE_TIMEOUT_MS": "1000", "HEX_STRIPE_CONNECT_TIMEOUT_MS": "500",
                "HEX_STRIPE_MAX_RETRIES": "1"}

    def setUp(self):
        super().setUp()
        self.s = self.session(unique_email("buyer"))

    def tearDown(self):
        self.fake_stripe.clear_injections()
        super().tearDown()

    def test_303_to_the_session_page_with_json_body(self):
        before = self.fake_stripe.stats()
        r = self.checkout(self.s)
        self.assertEqual(r.status, 303, r)
        self.assertRequestId(r)
        self.assertJsonReply(r)
        self.assertSessionJson(r.body)
        self.assertEqual(r.header("Location"), r.body["url"])
        after = self.fake_stripe.stats()
        self.assertEqual(after["sessions_created"], before["sessions_created"] + 1)
        self.assertEqual(after["requests"], before["requests"] + 1)
        # The page is the fake's own session page.
        with self.fake_stripe.fake.lock:
            cs = self.fake_stripe.fake.sessions[r.body["id"]]["object"]
        self.assertEqual(cs["url"], r.header("Location"))
        self.assertEqual((cs["amount_total"], cs["currency"]), (PRICE, "eur"))
        self.assertEqual((cs["success_url"], cs["cancel_url"]), (SUCCESS_URL, CANCEL_URL))
        self.assertEqual(cs["metadata"], {"payment_id": r.body["payment_id"],
                                          "user_id": self.s.id, "purpose": "membership"})
        self.assertEqual(cs["client_reference_id"], self.s.id)

        row = self.checkout_row(r.body["payment_id"])
        self.assertEqual(row["user_id"], self.s.id)
        self.assertEqual((row["amount"], row["currency"], row["purpose"], row["status"]),
                         (str(PRICE), "eur", "membership", "requires_payment_method"))
        self.assertEqual(row["stripe_checkout_session_id"], r.body["id"])
        self.assertEqual(row["checkout_url"], r.body["url"])
        # The key Stripe got is the one stored before the call.
        self.assertTrue(row["stripe_idempotency_key"])
        self.assertEqual(after["last_request"]["path"], "/v1/checkout/sessions")
        self.assertEqual(after["last_request"]["headers"].get("idempotency-key"),
                         row["stripe_idempotency_key"])
        # The payment is readable as the buyer's own.
        p = self.get_payment(self.s, r.body["payment_id"])
        self.assertEqual((p["purpose"], p["amount"]), ("membership", PRICE))

    def test_accept_json_gets_200_without_location(self):
        for accept in ("application/json", "text/html, application/json;q=0.9",
                       "application/json; charset=utf-8"):
            with self.subTest(accept=accept):
                r = self.checkout(self.s, accept=accept)
                self.assertEqual(r.status, 200, r)
                self.assertJsonReply(r)
                self.assertSessionJson(r.body)
                self.assertIsNone(r.header("Location"))
        with self.subTest(accept="text/html"):
            r = self.checkout(self.s, accept="text/html")
            self.assertEqual(r.status, 303, r)
            self.assertEqual(r.header("Location"), r.body["url"])

    def test_same_idempotency_key_same_session(self):
        key = "buy-" + uuid.uuid4().hex
        first = self.checkout(self.s, key=key)
        self.assertEqual(first.status, 303, first)
        requests = self.fake_stripe.stats()["requests"]
        again = self.checkout(self.s, key=key)
        self.assertEqual(again.status, 303, again)
        self.assertEqual(again.body, first.body)
        self.assertEqual(again.header("Location"), first.header("Location"))
        as_json = self.session_json(self.s, key=key)
        self.assertEqual(as_json, first.body)
        self.assertEqual(self.fake_stripe.stats()["requests"], requests,
                         "a replay asked Stripe again")
        self.assertEqual(len(self.rows_by_key(self.s, key)), 1)
        # Without a key, or with another one, it is another purchase.
        other = self.session_json(self.s, key=key + "-2")
        self.assertNotEqual(other["id"], first.body["id"])
        self.assertNotEqual(self.session_json(self.s)["payment_id"], first.body["payment_id"])
        # Another user's same key is their own.
        t = self.session(unique_email("other-buyer"))
        theirs = self.session_json(t, key=key)
        self.assertNotEqual(theirs["id"], first.body["id"])

    def test_key_of_a_payment_intent_409(self):
        key = "shared-" + uuid.uuid4().hex
        p = self.create_payment(self.s, amount=PRICE, currency="eur", purpose="membership",
                                key=key)
        self.assertEqual(p.status, 201, p)
        requests = self.fake_stripe.stats()["requests"]
        r = self.checkout(self.s, key=key)
        b = self.assertError(r, 409, "idempotency_key_reused")
        self.assertEqual(self.fake_stripe.stats()["requests"], requests)
        self.assertEqual(len(self.rows_by_key(self.s, key)), 1, b)

    def test_bad_idempotency_key_400_nothing_stored(self):
        before = int(self.stack.db.scalar("SELECT count(*) FROM payments"))
        requests = self.fake_stripe.stats()["requests"]
        r = self.checkout(self.s, key="has space")
        self.assertError(r, 400, "invalid_request", field="idempotency_key")
        self.assertEqual(int(self.stack.db.scalar("SELECT count(*) FROM payments")), before)
        self.assertEqual(self.fake_stripe.stats()["requests"], requests)

    def test_stripe_down_503_then_retry_one_session(self):
        key = "down-" + uuid.uuid4().hex
        # Down: not listening, and a connection hexd kept alive is hung up on.
        self.fake_stripe.stop()
        self.fake_stripe.control(hangup_next=10)
        try:
            r = self.checkout(self.s, key=key)
            self.assertError(r, 503, "unavailable")
            self.assertIsNone(r.header("Location"))
            rows = self.rows_by_key(self.s, key)
            self.assertEqual(len(rows), 1, "the request was not stored before calling Stripe")
            payment_id, status, stripe_key, session_id = rows[0]
            self.assertEqual((status, session_id), ("requires_payment_method", ""))
        finally:
            self.fake_stripe.clear_injections()
            self.fake_stripe.start()
        sessions = self.fake_stripe.stats()["sessions_created"]
        r = self.checkout(self.s, key=key)
        self.assertEqual(r.status, 303, r)
        self.assertEqual(r.body["payment_id"], payment_id)
        self.assertEqual(self.fake_stripe.stats()["sessions_created"], sessions + 1)
        # Every attempt, hung up on or not, carried the stored key; one session exists.
        self.assertGreaterEqual(self.fake_stripe.stats()["by_key"].get(stripe_key), 1)
        with self.fake_stripe.fake.lock:
            mine = [sid for sid, e in self.fake_stripe.fake.sessions.items()
                    if e["object"]["metadata"].get("payment_id") == payment_id]
        self.assertEqual(mine, [r.body["id"]])
        self.assertEqual(self.rows_by_key(self.s, key)[0][3], r.body["id"])

    def test_stripe_answer_lost_then_retry_gets_the_same_session(self):
        key = "slow-" + uuid.uuid4().hex
        self.fake_stripe.control(delay_ms=2500)
        r = self.checkout(self.s, key=key)
        self.assertError(r, 503, "unavailable")
        self.fake_stripe.control(delay_ms=0)
        sessions = self.fake_stripe.stats()["sessions_created"]
        r = self.checkout(self.s, key=key)
        self.assertEqual(r.status, 303, r)
        self.assertEqual(self.fake_stripe.stats()["sessions_created"], sessions,
                         "a second session after a timeout")
        self.assertGreaterEqual(self.fake_stripe.stats()["replays"], 1)

    def test_stripe_refusal_400_and_failed(self):
        key = "refused-" + uuid.uuid4().hex
        self.fake_stripe.control(fail_next=[{"status": 400, "type": "invalid_request_error",
                                             "message": "Checkout is not enabled"}])
        r = self.checkout(self.s, key=key)
        b = self.assertError(r, 400, "invalid_request")
        self.assertIn("Checkout is not enabled", b["error"])
        payment_id, status, _, session_id = self.rows_by_key(self.s, key)[0]
        self.assertEqual((status, session_id), ("failed", ""))
        requests = self.fake_stripe.stats()["requests"]
        again = self.checkout(self.s, key=key)
        self.assertError(again, 400, "invalid_request")
        self.assertEqual(again.body["error"], b["error"])
        self.assertEqual(self.fake_stripe.stats()["requests"], requests)

    def test_bearer_required_and_only_post(self):
        requests = self.fake_stripe.stats()["requests"]
        for tok in (None, "not-a-jwt"):
            with self.subTest(token=tok):
                r = self.checkout(self.s, token=tok)
                self.assertError(r, 401, "unauthenticated")
        r = self.pay_req("GET", PATH, token=self.s.access)
        self.assertError(r, 405, "method_not_allowed")
        self.assertIn("POST", r.header("Allow"))
        # Not on the v1 listener.
        r = self.req("POST", PATH, token=self.s.access)
        self.assertEqual(r.status, 404, r)
        self.assertEqual(self.fake_stripe.stats()["requests"], requests)

    def test_completed_session_webhook_makes_a_member(self):
        self.assertEqual(self.membership(self.s), "free")  # and now cached
        body = self.session_json(self.s)
        p = self.get_payment(self.s, body["payment_id"])
        p["stripe_payment_intent_id"] = "pi_" + uuid.uuid4().hex
        self.deliver(stripe_event_for(p, "checkout"))
        self.assertEqual(self.membership(self.s), "member")
        self.assertEqual(self.get_payment(self.s, p["id"])["status"], "succeeded")


class SimulatedCheckoutTest(CheckoutCase):
    FAKE_STRIPE = False
    HEXD_ENV = {"HEX_GATEWAY": "simulated", "HEX_SIMULATED_DELAY_MS": "300"}

    def test_checkout_makes_the_buyer_a_member(self):
        s = self.session(unique_email("sim-buyer"))
        self.assertEqual(self.membership(s), "free")  # and now cached
        r = self.checkout(s)
        self.assertEqual(r.status, 303, r)
        self.assertSessionJson(r.body)
        self.assertEqual(r.header("Location"), r.body["url"])
        got = self.wait_payment_status(s, r.body["payment_id"], "succeeded", timeout=5)
        self.assertEqual((got["purpose"], got["amount"], got["currency"]),
                         ("membership", 999, "usd"))
        types = [t for (t,) in self.stack.db.sql(
            "SELECT type FROM stripe_events WHERE payment_id = %s" %
            sql_literal(r.body["payment_id"]))]
        self.assertIn("checkout.session.completed", types)
        self.assertTrue(harness.wait_until(lambda: self.membership(s) == "member",
                                           5 * (3 if harness.SANITIZED else 1)))

    def test_same_key_same_simulated_session(self):
        s = self.session(unique_email("sim-again"))
        key = "sim-" + uuid.uuid4().hex
        a = self.session_json(s, key=key)
        b = self.session_json(s, key=key)
        self.assertEqual(a, b)
        self.assertEqual(int(self.stack.db.scalar(
            "SELECT count(*) FROM payments WHERE client_key = %s" % sql_literal(key))), 1)


if __name__ == "__main__":
    harness.main()
