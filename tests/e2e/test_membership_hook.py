#!/usr/bin/env python3
"""POST /v1/membership/webhooks, the old service's membership hook: `ApiKey` auth,
idempotent on event_id, the cached user dropped, every error status."""

import json
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import PaymentCase, sql_literal, unique_email  # noqa: E402

PATH = "/v1/membership/webhooks"
EVENT = "membership_status_updated"


class MembershipHookTest(PaymentCase):
    FAKE_STRIPE = False

    def hook(self, body, auth=harness._DEFAULT, **kw):
        if auth is harness._DEFAULT:
            auth = "ApiKey " + self.membership_key
        headers = {"Authorization": auth} if auth is not None else {}
        return self.req("POST", PATH, json_body=body, headers=headers, **kw)

    def event_id(self):
        return "mev_" + uuid.uuid4().hex

    def membership_events(self):
        return int(self.stack.db.scalar("SELECT count(*) FROM membership_events"))

    def membership(self, s):
        r = self.get("/v1/users/%s" % s.id, token=s.access)
        self.assertEqual(r.status, 200, r)
        return r.body["membership"]

    def state(self):
        return (self.stack.db.sql("SELECT id, membership, updated_at FROM users ORDER BY id"),
                self.stack.db.sql("SELECT event_id, user_id, membership FROM membership_events "
                                  "ORDER BY event_id"))

    def assertApplied(self, r, s, membership, duplicate=False):
        self.assertEqual(r.status, 200, r)
        self.assertJsonReply(r)
        self.assertRequestId(r)
        self.assertEqual(set(r.body.keys()), {"user", "duplicate"}, r.body)
        self.assertIs(r.body["duplicate"], duplicate, r.body)
        self.assertUserJson(r.body["user"], email=s.email, user_id=s.id)
        self.assertEqual(r.body["user"]["membership"], membership, r.body)
        self.assertNotIn(b"$y$", r.raw)

    def test_event_makes_a_member_records_it_and_drops_the_cached_user(self):
        s = self.session(unique_email("hook"))
        self.assertEqual(self.membership(s), "free")
        with self.redis() as c:
            self.assertEqual(c.cmd("EXISTS", self.cache_key(s.id)), 1)
        eid = self.event_id()
        r = self.hook({"event": EVENT, "user_id": s.id, "event_id": eid})
        self.assertApplied(r, s, "member")
        self.assertEqual(self.membership(s), "member",
                         "GET /v1/users/:id still shows free: the cache entry was kept")
        self.assertEqual(self.user_row(s.id)["membership"], "member")
        self.assertEqual(self.stack.db.sql(
            "SELECT user_id, membership FROM membership_events WHERE event_id = %s" %
            sql_literal(eid)), [[s.id, "member"]])

    def test_membership_free_takes_it_back(self):
        s = self.session(unique_email("hook-free"))
        self.assertApplied(self.hook({"event": EVENT, "user_id": s.id, "event_id":
                                      self.event_id(), "membership": "member"}), s, "member")
        self.assertEqual(self.membership(s), "member")  # cached as member now
        r = self.hook({"event": EVENT, "user_id": s.id, "event_id": self.event_id(),
                       "membership": "free"})
        self.assertApplied(r, s, "free")
        self.assertEqual(self.membership(s), "free")

    def test_same_event_id_again_is_a_duplicate_and_changes_nothing(self):
        s = self.session(unique_email("hook-dup"))
        eid = self.event_id()
        self.assertApplied(self.hook({"event": EVENT, "user_id": s.id, "event_id": eid}),
                           s, "member")
        before = self.state()
        for membership in ("member", "free"):
            with self.subTest(membership=membership):
                r = self.hook({"event": EVENT, "user_id": s.id, "event_id": eid,
                               "membership": membership})
                self.assertApplied(r, s, "member", duplicate=True)
                self.assertEqual(self.state(), before)
        self.assertEqual(self.membership(s), "member")

    def test_without_event_id_every_call_applies(self):
        s = self.session(unique_email("hook-noid"))
        events = self.membership_events()
        for membership in ("member", "free", "member", "member"):
            r = self.hook({"event": EVENT, "user_id": s.id, "membership": membership})
            self.assertApplied(r, s, membership)
            self.assertEqual(self.membership(s), membership)
        self.assertEqual(self.membership_events(), events)

    def test_bad_credentials_401_and_nothing_changes(self):
        s = self.session(unique_email("hook-auth"))
        body = {"event": EVENT, "user_id": s.id, "event_id": self.event_id()}
        before = self.state()
        cases = [("missing", None), ("empty", ""), ("wrong key", "ApiKey " + "x" * 32),
                 ("key with a byte more", "ApiKey " + self.membership_key + "x"),
                 ("key prefix", "ApiKey " + self.membership_key[:-1]),
                 ("no key", "ApiKey "), ("scheme only", "ApiKey"),
                 ("Bearer with the key", "Bearer " + self.membership_key),
                 ("Bearer access token", "Bearer " + s.access),
                 ("bare key", self.membership_key)]
        for what, auth in cases:
            with self.subTest(case=what):
                r = self.hook(body, auth=auth)
                self.assertEqual(r.status, 401, "%s: %r" % (what, r))
                self.assertJsonReply(r)
                self.assertEqual(r.body.get("code"), "unauthenticated", r)
                self.assertEqual(r.body.get("request_id"), self.assertRequestId(r))
                self.assertEqual(r.header("WWW-Authenticate"), "ApiKey",
                                 "401 must challenge for this route's scheme: %r" % r)
                self.assertEqual(self.state(), before)
        self.assertEqual(self.membership(s), "free")

    def test_other_event_400_field_event(self):
        s = self.session(unique_email("hook-event"))
        before = self.state()
        for event in ("membership_cancelled", "", "MEMBERSHIP_STATUS_UPDATED", 1, None):
            with self.subTest(event=event):
                r = self.hook({"event": event, "user_id": s.id, "event_id": self.event_id()})
                self.assertError(r, 400, "invalid_request", field="event")
        r = self.hook({"user_id": s.id, "event_id": self.event_id()})
        self.assertError(r, 400, "invalid_request", field="event")
        self.assertEqual(self.state(), before)

    def test_bad_membership_400(self):
        s = self.session(unique_email("hook-ms"))
        before = self.state()
        for membership in ("gold", "", "MEMBER", 1):
            with self.subTest(membership=membership):
                r = self.hook({"event": EVENT, "user_id": s.id, "membership": membership,
                               "event_id": self.event_id()})
                self.assertError(r, 400, "invalid_request", field="membership")
        self.assertEqual(self.state(), before)

    def test_unknown_user_404_and_nothing_recorded(self):
        self.session(unique_email("hook-bystander"))
        before = self.state()
        eid = self.event_id()
        r = self.hook({"event": EVENT, "user_id": str(uuid.uuid4()), "event_id": eid})
        self.assertError(r, 404, "not_found")
        self.assertEqual(self.state(), before)
        self.assertEqual(self.stack.db.scalar(
            "SELECT count(*) FROM membership_events WHERE event_id = %s" % sql_literal(eid)),
            "0")

    def test_bad_user_id_400_or_404(self):
        before = self.state()
        for user_id in ("not-a-uuid", "", "123", str(uuid.uuid4()) + "0"):
            with self.subTest(user_id=user_id):
                r = self.hook({"event": EVENT, "user_id": user_id,
                               "event_id": self.event_id()})
                self.assertIn(r.status, (400, 404), r)
                if r.status == 400:
                    self.assertError(r, 400, "invalid_request", field="user_id")
                else:
                    self.assertError(r, 404, "not_found")
        for user_id in (None, 5, ["x"]):
            with self.subTest(user_id=user_id):
                r = self.hook({"event": EVENT, "user_id": user_id})
                self.assertError(r, 400, "invalid_request", field="user_id")
        r = self.hook({"event": EVENT})
        self.assertError(r, 400, "invalid_request", field="user_id")
        self.assertEqual(self.state(), before)

    def test_body_rules(self):
        s = self.session(unique_email("hook-body"))
        before = self.state()
        auth = {"Authorization": "ApiKey " + self.membership_key}
        body = json.dumps({"event": EVENT, "user_id": s.id}).encode()
        r = self.req("POST", PATH, body=body, headers=auth, content_type="text/plain")
        self.assertError(r, 415, "unsupported_media_type")
        r = self.req("POST", PATH, body=b"[]", headers=auth)
        self.assertError(r, 400, "invalid_request", field="body")
        r = self.req("POST", PATH, body=b'{"event": ', headers=auth)
        self.assertError(r, 400, "invalid_request")
        r = self.hook({"event": EVENT, "user_id": s.id, "event_id": 42})
        self.assertError(r, 400, "invalid_request", field="event_id")
        self.assertEqual(self.state(), before)

    def test_key_never_logged(self):
        s = self.session(unique_email("hook-log"))
        self.hook({"event": EVENT, "user_id": s.id}, auth="ApiKey wrong-" + self.membership_key)
        self.assertApplied(self.hook({"event": EVENT, "user_id": s.id}), s, "member")
        self.assertNotIn(self.membership_key, self.stack.hexd.log())


if __name__ == "__main__":
    harness.main()
