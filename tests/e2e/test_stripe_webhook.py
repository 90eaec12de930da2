#!/usr/bin/env python3
"""POST /v2/stripe/webhook: signatures made here with Python's hmac (never by hexd's
code), rejections that store nothing, duplicates, and what each event does to the payment
and its owner, in every delivery order."""

import itertools
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (PaymentCase, sql_literal, stripe_event, stripe_event_for,  # noqa: E402
                     stripe_fixture, stripe_intent_object, stripe_signature,
                     stripe_signature_header, unique_email)


class WebhookCase(PaymentCase):
    def setUp(self):
        super().setUp()
        self.s = self.session(unique_email("hook"))

    def event_row(self, event_id):
        cols = ["id", "type", "payment_id", "intent_id", "amount", "currency"]
        rows = self.stack.db.sql("SELECT %s FROM stripe_events WHERE id = %s" %
                                 (", ".join(cols), sql_literal(event_id)))
        return dict(zip(cols, rows[0])) if rows else None

    def outbox_rows(self, event_id):
        return self.stack.db.sql("SELECT topic, payload::text FROM outbox WHERE event_id = %s"
                                 % sql_literal(event_id))

    def status(self, payment, session=None):
        return self.get_payment(session or self.s, payment["id"])["status"]

    def membership(self, session=None):
        s = session or self.s
        r = self.get("/v1/users/%s" % s.id, token=s.access)
        self.assertEqual(r.status, 200, r)
        return r.body["membership"]


class WebhookSignatureTest(WebhookCase):
    def assertRejected(self, r, what):
        self.assertEqual(r.status, 400, "%s: want 400, got %r" % (what, r))
        self.assertError(r, 400, "invalid_request")

    def test_valid_event_200_recorded_once_with_its_outbox_row(self):
        p = self.new_payment(self.s, amount=1234, currency="eur")
        ev = stripe_event_for(p, "succeeded")
        body = json.dumps(ev, indent=2).encode()  # odd spacing: stored as sent
        r = self.send_event(body)
        self.assertEqual(r.status, 200, r)
        self.assertJsonReply(r)
        self.assertRequestId(r)
        self.assertEqual(r.body, {"received": True, "duplicate": False})
        row = self.event_row(ev["id"])
        self.assertEqual(row, {"id": ev["id"], "type": "payment_intent.succeeded",
                               "payment_id": p["id"],
                               "intent_id": p["stripe_payment_intent_id"],
                               "amount": "1234", "currency": "eur"})
        out = self.outbox_rows(ev["id"])
        self.assertEqual(len(out), 1, out)
        self.assertEqual(out[0][0], "payment_events")
        self.assertEqual(out[0][1], body.decode(), "the outbox payload is not the event as sent")
        self.assertEqual(self.status(p), "succeeded")

    def test_bad_signatures_400_and_nothing_stored(self):
        p = self.new_payment(self.s, amount=500)
        ev = stripe_event_for(p, "succeeded")
        body = json.dumps(ev).encode()
        now = int(time.time())
        good = stripe_signature(self.webhook_secret, body, now)
        other_secret = "whsec_" + uuid.uuid4().hex
        tampered = body.replace(b'"amount": 500', b'"amount": 50000')
        self.assertNotEqual(tampered, body)
        cases = [
            ("missing header", body, None),
            ("empty header", body, ""),
            ("garbage", body, "garbage"),
            ("empty fields", body, "t=,v1="),
            ("no t", body, good),
            ("t only", body, "t=%d" % now),
            ("t not a number", body, "t=abc,%s" % good),
            ("no v1 value", body, "t=%d,v1=" % now),
            ("truncated v1", body, "t=%d,%s" % (now, good[:-2])),
            ("v1 not hex", body, "t=%d,v1=%s" % (now, "z" * 64)),
            ("wrong secret", body, stripe_signature_header(other_secret, body, now)),
            ("tampered body", tampered, "t=%d,%s" % (now, good)),
            ("signature of another t", body,
             "t=%d,%s" % (now, stripe_signature(self.webhook_secret, body, now - 1))),
            ("400 s old", body, stripe_signature_header(self.webhook_secret, body, now - 400)),
            ("a day old", body, stripe_signature_header(self.webhook_secret, body,
                                                         now - 86400)),
            ("400 s in the future", body,
             stripe_signature_header(self.webhook_secret, body, now + 400)),
            ("v0 only", body,
             "t=%d,%s" % (now, stripe_signature(self.webhook_secret, body, now, "v0"))),
            ("v2 only", body,
             "t=%d,%s" % (now, stripe_signature(self.webhook_secret, body, now, "v2"))),
        ]
        before = self.payments_state()
        for what, data, header in cases:
            with self.subTest(case=what):
                r = self.send_event(data, signature=header)
                self.assertRejected(r, what)
                self.assertEqual(self.payments_state(), before, "%s stored something" % what)
        # Nothing of the above was kept: the same event id is new now.
        self.deliver(ev)
        self.assertEqual(self.status(p), "succeeded")

    def test_several_v1_values_any_one_valid_200(self):
        for place in ("last", "first"):
            with self.subTest(valid=place):
                p = self.new_payment(self.s, amount=600)
                ev = stripe_event_for(p, "succeeded")
                body = json.dumps(ev).encode()
                now = int(time.time())
                good = stripe_signature(self.webhook_secret, body, now)
                bad = [stripe_signature("whsec_old_" + uuid.uuid4().hex, body, now),
                       "v1=" + "0" * 64]
                sigs = bad + [good] if place == "last" else [good] + bad
                header = "t=%d,%s,%s" % (now, stripe_signature(self.webhook_secret, body, now,
                                                               "v0"), ",".join(sigs))
                r = self.send_event(body, signature=header)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, {"received": True, "duplicate": False})
                self.assertEqual(self.status(p), "succeeded")

    def test_timestamp_inside_the_tolerance_200(self):
        for offset in (-250, 250):
            with self.subTest(offset=offset):
                p = self.new_payment(self.s, amount=700)
                ev = stripe_event_for(p, "succeeded")
                body = json.dumps(ev).encode()
                header = stripe_signature_header(self.webhook_secret, body,
                                                 int(time.time()) + offset)
                r = self.send_event(body, signature=header)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(self.status(p), "succeeded")

    def test_invalid_json_with_a_valid_signature_400_nothing_stored(self):
        before = self.payments_state()
        for raw in (b"{not json", b"", b"[1, 2]", b'"evt"', b'{"type": "charge.refunded"}',
                    b'{"id": "evt_no_type"}'):
            with self.subTest(body=raw):
                r = self.send_event(raw)
                self.assertRejected(r, raw)
                self.assertEqual(self.payments_state(), before)

    def test_huge_body_413_nothing_stored(self):
        p = self.new_payment(self.s, amount=800)
        ev = stripe_event_for(p, "succeeded")
        ev["data"]["object"]["description"] = "x" * (2 * 1024 * 1024)
        before = self.payments_state()
        r = self.send_event(ev)
        self.assertEqual(r.status, 413, r)
        self.assertEqual(self.payments_state(), before)
        self.assertEqual(self.status(p), "requires_payment_method")

    def test_no_bearer_needed_and_not_on_the_v1_listener(self):
        p = self.new_payment(self.s, amount=900)
        ev = stripe_event_for(p, "succeeded")
        before = self.payments_state()
        r = self.send_event(ev, port=self.port)
        self.assertError(r, 404, "not_found")
        self.assertEqual(self.payments_state(), before)
        r = self.send_event(ev, headers={"Authorization": "Bearer nonsense"})
        self.assertEqual(r.status, 200, "the webhook is authenticated by its signature only: "
                         "%r" % r)


class WebhookDuplicateTest(WebhookCase):
    def test_same_event_id_again_is_a_duplicate_and_changes_nothing(self):
        p = self.new_payment(self.s, amount=1000)
        ev = stripe_event_for(p, "succeeded")
        self.deliver(ev)
        before = self.payments_state()
        self.deliver(ev, duplicate=True)
        self.assertEqual(self.payments_state(), before)
        # Same id, other content (here a refund): still the event already received.
        self.deliver(stripe_event_for(p, "refunded", event_id=ev["id"]), duplicate=True)
        self.assertEqual(self.payments_state(), before)
        self.assertEqual(self.status(p), "succeeded")
        self.assertEqual(len(self.outbox_rows(ev["id"])), 1)

    def test_duplicate_signed_later_is_still_a_duplicate(self):
        p = self.new_payment(self.s, amount=1100)
        ev = stripe_event_for(p, "failed")
        body = json.dumps(ev).encode()
        now = int(time.time())
        r = self.send_event(body, signature=stripe_signature_header(self.webhook_secret, body,
                                                                    now - 100))
        self.assertEqual(r.body, {"received": True, "duplicate": False}, r)
        before = self.payments_state()
        r = self.send_event(body, signature=stripe_signature_header(self.webhook_secret, body,
                                                                    now))
        self.assertEqual(r.body, {"received": True, "duplicate": True}, r)
        self.assertEqual(self.payments_state(), before)


class WebhookEffectsTest(WebhookCase):
    def test_succeeded_then_failed_stays_succeeded(self):
        p = self.new_payment(self.s, amount=1200)
        self.deliver(stripe_event_for(p, "succeeded"))
        self.assertEqual(self.status(p), "succeeded")
        self.deliver(stripe_event_for(p, "failed"))
        self.assertEqual(self.status(p), "succeeded")

    def test_failed_then_succeeded_is_a_retry_with_another_card(self):
        p = self.new_payment(self.s, amount=1300)
        self.deliver(stripe_event_for(p, "failed"))
        self.assertEqual(self.status(p), "failed")
        self.deliver(stripe_event_for(p, "succeeded"))
        self.assertEqual(self.status(p), "succeeded")

    def test_charge_refunded_marks_refunded(self):
        p = self.new_payment(self.s, amount=1400)
        self.deliver(stripe_event_for(p, "succeeded"))
        ev = stripe_event_for(p, "refunded")
        self.deliver(ev)
        self.assertEqual(self.status(p), "refunded")
        row = self.event_row(ev["id"])
        self.assertEqual((row["type"], row["payment_id"], row["intent_id"]),
                         ("charge.refunded", p["id"], p["stripe_payment_intent_id"]))

    def test_every_order_of_succeeded_failed_refunded_ends_refunded(self):
        for order in itertools.permutations(("succeeded", "failed", "refunded")):
            with self.subTest(order=order):
                p = self.new_payment(self.s, amount=1500)
                events = [stripe_event_for(p, kind) for kind in order]
                for ev in events:
                    self.deliver(ev)
                for ev in events:
                    self.deliver(ev, duplicate=True)
                self.assertEqual(self.status(p), "refunded")
                self.assertEqual(self.payment_row(p["id"])["status"], "refunded")

    def test_membership_success_makes_a_member_and_drops_the_cached_user(self):
        s = self.session(unique_email("buyer"))
        self.assertEqual(self.membership(s), "free")
        with self.redis() as c:
            self.assertEqual(c.cmd("EXISTS", self.cache_key(s.id)), 1,
                             "GET /v1/users/:id did not fill the cache")
        p = self.new_payment(s, amount=999, purpose="membership")
        self.deliver(stripe_event_for(p, "succeeded"))
        self.assertEqual(self.status(p, s), "succeeded")
        self.assertEqual(self.membership(s), "member",
                         "the user is not a member (or a stale cache entry was served)")
        self.assertEqual(self.user_row(s.id)["membership"], "member")

    def test_membership_failure_keeps_free(self):
        s = self.session(unique_email("declined"))
        p = self.new_payment(s, amount=999, purpose="membership")
        self.deliver(stripe_event_for(p, "failed"))
        self.assertEqual(self.status(p, s), "failed")
        self.assertEqual(self.membership(s), "free")

    def test_wallet_top_up_success_does_not_make_a_member(self):
        s = self.session(unique_email("topup"))
        p = self.new_payment(s, amount=5000, purpose="wallet_top_up")
        self.deliver(stripe_event_for(p, "succeeded"))
        self.assertEqual(self.status(p, s), "succeeded")
        self.assertEqual(self.membership(s), "free")

    def test_checkout_session_completed_for_membership(self):
        s = self.session(unique_email("checkout"))
        self.membership(s)
        p = self.new_payment(s, amount=1999, purpose="membership")
        self.deliver(stripe_event_for(p, "checkout"))
        self.assertEqual(self.status(p, s), "succeeded")
        self.assertEqual(self.membership(s), "member")

    def test_unknown_type_recorded_and_ignored(self):
        p = self.new_payment(self.s, amount=1600)
        obj = stripe_intent_object(p, "succeeded")  # would succeed it, were it understood
        ev = stripe_event("payment_intent.teleported", obj)
        plain = stripe_event("customer.created", stripe_fixture("charge"))
        for e in (ev, plain):
            with self.subTest(type=e["type"]):
                self.deliver(e)
                row = self.event_row(e["id"])
                self.assertIsNotNone(row, "the unknown event was not recorded")
                self.assertEqual(row["type"], e["type"])
                self.deliver(e, duplicate=True)
        self.assertEqual(self.status(p), "requires_payment_method")

    def test_event_about_an_unknown_payment_recorded(self):
        ghost = {"id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "amount": 100,
                 "currency": "usd", "purpose": "membership",
                 "stripe_payment_intent_id": "pi_ghost_" + uuid.uuid4().hex}
        ev = stripe_event_for(ghost, "succeeded")
        before = self.payments_state()["payments"]
        self.deliver(ev)
        self.assertEqual(self.event_row(ev["id"])["payment_id"], ghost["id"])
        self.assertEqual(self.payments_state()["payments"], before)


if __name__ == "__main__":
    harness.main()
