#!/usr/bin/env python3
"""The authn/authz matrix of docs/SECURITY.md, tested: every route of the route table
(adapters/http/http_routes.c, parsed here so that a new route without a row fails this
module) called by every kind of caller - no token, malformed, wrong key, alg none,
expired, a refresh token, another user, an admin, the owner - gets the status its row
says; a route is served on its own listener only; the two webhooks refuse missing and
wrong credentials; the admin port refuses a missing or wrong AUTH and binds loopback by
default.

Set HEX_AUTHZ_PRINT=1 to print the observed matrix as a markdown table."""

import json
import os
import re
import secrets
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (PaymentCase, base_env, free_port, jwt_decode, jwt_forge,  # noqa: E402
                     unique_email)

ROUTES_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "adapters",
                        "http", "http_routes.c")
# {HTTP_GET, "/path", AUTH_x, BODY_x, POOL_x, handler, LISTEN_x, IDEM_x}
ROUTE_RE = re.compile(r"\{\s*HTTP_([A-Z]+)\s*,\s*\"([^\"]+)\"\s*,\s*(AUTH_[A-Z]+)\s*,\s*\w+\s*,"
                      r"\s*\w+\s*,\s*\w+\s*,\s*(LISTEN_[A-Z]+)\s*,")

# Callers that hold no valid access token: every AUTH_BEARER route answers them 401.
UNAUTH = ("none", "garbage", "basic", "wrong_key", "alg_none", "expired", "refresh")
CALLERS = UNAUTH + ("other", "admin", "owner")

# One row per route: (auth column, listener, expected status per caller kind).
# "any": every caller alike (the route ignores Authorization). For AUTH_BEARER rows the
# UNAUTH callers are 401 and only other/admin/owner are listed. "other" acts on the
# owner's resource where the route names one (:id, ?user_id=); on a route about the
# caller alone (PUT/DELETE /v1/users, the wallet) it acts on itself, and the owner's data
# is checked unchanged.
MATRIX = {
    ("GET", "/healthz"): ("AUTH_NONE", "LISTEN_API", {"any": 200}),
    ("GET", "/readyz"): ("AUTH_NONE", "LISTEN_API", {"any": 200}),
    ("GET", "/metrics"): ("AUTH_NONE", "LISTEN_METRICS", {"any": 200}),
    ("POST", "/v1/users"): ("AUTH_NONE", "LISTEN_API", {"any": 201}),
    ("GET", "/v1/users"): ("AUTH_BEARER", "LISTEN_API",
                           {"other": 403, "admin": 200, "owner": 403}),
    ("PUT", "/v1/users"): ("AUTH_BEARER", "LISTEN_API",
                           {"other": 200, "admin": 200, "owner": 200}),
    ("DELETE", "/v1/users"): ("AUTH_BEARER", "LISTEN_API",
                              {"other": 204, "admin": 204, "owner": 204}),
    ("GET", "/v1/users/:id"): ("AUTH_BEARER", "LISTEN_API",
                               {"other": 403, "admin": 200, "owner": 200}),
    ("POST", "/v1/login"): ("AUTH_NONE", "LISTEN_API", {"any": 200}),
    ("POST", "/v1/token/refresh"): ("AUTH_NONE", "LISTEN_API", {"any": 200}),
    ("POST", "/v1/logout"): ("AUTH_BEARER", "LISTEN_API",
                             {"other": 204, "admin": 204, "owner": 204}),
    ("POST", "/v1/messages"): ("AUTH_BEARER", "LISTEN_API",
                               {"other": 201, "admin": 201, "owner": 201}),
    ("GET", "/v1/messages"): ("AUTH_BEARER", "LISTEN_API",
                              {"other": 403, "admin": 200, "owner": 200}),
    ("GET", "/v1/messages/:id"): ("AUTH_BEARER", "LISTEN_API",
                                  {"other": 403, "admin": 200, "owner": 200}),
    ("PUT", "/v1/messages/:id"): ("AUTH_BEARER", "LISTEN_API",
                                  {"other": 403, "admin": 403, "owner": 200}),
    ("DELETE", "/v1/messages/:id"): ("AUTH_BEARER", "LISTEN_API",
                                     {"other": 403, "admin": 204, "owner": 204}),
    # ApiKey route: a bearer token, valid or not, is no credential here.
    ("POST", "/v1/membership/webhooks"): ("AUTH_NONE", "LISTEN_API", {"any": 401}),
    ("POST", "/v2/payments"): ("AUTH_BEARER", "LISTEN_PAYMENTS",
                               {"other": 201, "admin": 201, "owner": 201}),
    ("GET", "/v2/payments"): ("AUTH_BEARER", "LISTEN_PAYMENTS",
                              {"other": 403, "admin": 200, "owner": 200}),
    ("GET", "/v2/payments/:id"): ("AUTH_BEARER", "LISTEN_PAYMENTS",
                                  {"other": 403, "admin": 200, "owner": 200}),
    ("POST", "/v2/create-checkout-session"): ("AUTH_BEARER", "LISTEN_PAYMENTS",
                                              {"other": 200, "admin": 200, "owner": 200}),
    ("GET", "/v2/wallet"): ("AUTH_BEARER", "LISTEN_PAYMENTS",
                            {"other": 200, "admin": 200, "owner": 200}),
    ("GET", "/v2/wallet/entries"): ("AUTH_BEARER", "LISTEN_PAYMENTS",
                                    {"other": 200, "admin": 200, "owner": 200}),
    # Nobody holds money here: an authenticated transfer gets as far as the funds check.
    ("POST", "/v2/wallet/transfers"): ("AUTH_BEARER", "LISTEN_PAYMENTS",
                                       {"other": 409, "admin": 409, "owner": 409}),
    # Stripe-Signature route: without one, 400 whoever calls.
    ("POST", "/v2/stripe/webhook"): ("AUTH_NONE", "LISTEN_PAYMENTS", {"any": 400}),
}

# Routes that end the caller's session or account: each cell gets fresh users.
FRESH = {("DELETE", "/v1/users"), ("POST", "/v1/logout"), ("PUT", "/v1/users")}


def c_routes():
    """[(method, pattern, auth, listener)] of http_routes.c, in table order."""
    with open(ROUTES_C) as f:
        text = f.read()
    table = text.split("routes[] = {", 1)[1].split("\n};", 1)[0]
    return [m.groups() for m in ROUTE_RE.finditer(table)]


def expected(route, caller):
    auth, _, row = MATRIX[route]
    if "any" in row:
        return row["any"]
    if auth == "AUTH_BEARER" and caller in UNAUTH:
        return 401
    return row[caller]


class AuthzMatrixTest(PaymentCase):
    """One stack with the fake Stripe: the payment routes answer for real."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.observed = {}

    # -- callers and resources

    def fresh_people(self):
        return {"owner": self.session(unique_email("owner")),
                "other": self.session(unique_email("other")),
                "admin": self.admin_session()}

    def people(self, fresh):
        if fresh:
            return self.fresh_people()
        if not hasattr(type(self), "_people"):
            type(self)._people = self.fresh_people()
        return type(self)._people

    def auth_header(self, caller, p):
        """The Authorization header (or None) that caller sends; tokens are forged from
        the owner's real claims, so only the property named by caller is wrong."""
        owner = p["owner"]
        claims = jwt_decode(owner.access)[1]
        now = int(time.time())
        forged = {
            "garbage": "Bearer " + "x" * 40,
            "basic": "Basic " + harness.b64url("%s:%s" % (owner.email, owner.password)),
            "wrong_key": "Bearer " + jwt_forge(claims, "k" * 32 + secrets.token_hex(8)),
            "alg_none": "Bearer " + jwt_forge(claims, self.stack.jwt_secret,
                                              header={"alg": "none", "typ": "JWT"}),
            "expired": "Bearer " + jwt_forge(dict(claims, iat=now - 7200, exp=now - 3600),
                                             self.stack.jwt_secret),
            "refresh": "Bearer " + owner.refresh,
        }
        if caller == "none":
            return None
        if caller in forged:
            v = forged[caller]
            self.stack.note_secret(v.split(" ", 1)[1])
            return v
        return "Bearer " + p[caller].access

    def build(self, route, caller, p):
        """(path, body, extra headers) of a well-formed request for route, as caller."""
        owner = p["owner"]
        acting = p.get(caller, owner)
        method, pattern = route
        key = {"Idempotency-Key": "authz-" + uuid.uuid4().hex}
        if pattern == "/v1/users" and method == "POST":
            pw = "pw-" + secrets.token_hex(8)
            self.stack.note_secret(pw)
            return pattern, {"email": unique_email("signup"), "password": pw}, {}
        if pattern == "/v1/users" and method == "PUT":
            return pattern, {"email": unique_email("renamed")}, {}
        if pattern == "/v1/users" and method == "GET":
            return pattern, None, {}
        if pattern == "/v1/users/:id":
            return "/v1/users/%s" % owner.id, None, {}
        if pattern == "/v1/login":
            return pattern, {"email": owner.email, "password": owner.password}, {}
        if pattern == "/v1/token/refresh":
            tokens = self.login(owner.email, owner.password)
            return pattern, {"refresh_token": tokens["refresh_token"]}, {}
        if pattern == "/v1/messages" and method == "POST":
            return pattern, {"body": "hello from " + caller}, {}
        if pattern == "/v1/messages" and method == "GET":
            return "/v1/messages?user_id=%s" % owner.id, None, {}
        if pattern == "/v1/messages/:id":
            r = self.post("/v1/messages", {"body": "owned"}, token=owner.access)
            self.assertEqual(r.status, 201, r)
            return "/v1/messages/%s" % r.body["id"], \
                {"body": "edited"} if method == "PUT" else None, {}
        if pattern == "/v1/membership/webhooks":
            return pattern, {"event": "membership_status_updated", "user_id": owner.id,
                             "membership": "member"}, {}
        if pattern == "/v2/payments" and method == "POST":
            return pattern, {"amount": 500, "currency": "usd",
                             "purpose": "wallet_top_up"}, key
        if pattern == "/v2/payments" and method == "GET":
            return "/v2/payments?user_id=%s" % owner.id, None, {}
        if pattern == "/v2/payments/:id":
            if not hasattr(type(self), "_payment") or type(self)._payment_owner != owner.id:
                type(self)._payment = self.new_payment(owner, amount=700)
                type(self)._payment_owner = owner.id
            return "/v2/payments/%s" % type(self)._payment["id"], None, {}
        if pattern == "/v2/create-checkout-session":
            return pattern, None, {"Accept": "application/json"}
        if pattern == "/v2/wallet/transfers":
            to = p["other"] if acting is not p["other"] else owner
            return pattern, {"to_user_id": to.id, "amount": 100, "currency": "usd"}, key
        if pattern == "/v2/stripe/webhook":
            return pattern, {"id": "evt_" + secrets.token_hex(8), "type": "ping"}, {}
        return pattern, None, {}  # /healthz, /readyz, /metrics, wallet reads, logout

    def port_of(self, listener):
        return self.pay_port if listener == "LISTEN_PAYMENTS" else self.port

    def call(self, route, caller, p, port=None):
        method, _ = route
        path, body, hdrs = self.build(route, caller, p)
        auth = self.auth_header(caller, p)
        if auth is not None:
            hdrs["Authorization"] = auth
        data = json.dumps(body).encode() if body is not None else None
        ct = {"Content-Type": "application/json"} if data is not None else {}
        ct.update(hdrs)
        return self.req(method, path, body=data, headers=ct, content_type=None,
                        port=port or self.port_of(MATRIX[route][1]))

    # -- the tests

    def test_every_c_route_has_a_row_and_the_same_auth_and_listener(self):
        routes = c_routes()
        self.assertGreaterEqual(len(routes), 20, "could not parse %s" % ROUTES_C)
        in_c = {(m, p): (a, l) for m, p, a, l in routes}
        missing = sorted(set(in_c) - set(MATRIX))
        gone = sorted(set(MATRIX) - set(in_c))
        self.assertEqual(missing, [], "routes without a row in MATRIX (add one, and to "
                                      "docs/SECURITY.md)")
        self.assertEqual(gone, [], "rows of MATRIX for routes no longer in the table")
        for route, (auth, listener) in in_c.items():
            with self.subTest(route=route):
                self.assertEqual((auth, listener), MATRIX[route][:2],
                                 "the C table changed this route's auth or listener")

    def test_matrix(self):
        """Every route x caller cell; all mismatches reported at once."""
        wrong = []
        for route in MATRIX:
            for caller in CALLERS:
                p = self.people(route in FRESH)
                before = self.user_row(p["owner"].id)
                r = self.call(route, caller, p)
                want = expected(route, caller)
                self.observed[(route, caller)] = r.status
                if r.status != want:
                    wrong.append("%s %s as %s: want %d, got %d %r" %
                                 (route[0], route[1], caller, want, r.status, r.raw[:160]))
                    continue
                if r.status in (401, 403):
                    code = "unauthenticated" if r.status == 401 else "forbidden"
                    if not (r.is_json and r.body.get("code") == code):
                        wrong.append("%s %s as %s: %d without code %s: %r" %
                                      (route[0], route[1], caller, r.status, code, r.raw))
                if route in FRESH and caller != "owner":
                    after = self.user_row(p["owner"].id)
                    if after != before:
                        wrong.append("%s %s as %s changed the owner: %r -> %r" %
                                     (route[0], route[1], caller, before, after))
        if os.environ.get("HEX_AUTHZ_PRINT"):
            self.print_matrix()
        self.assertEqual(wrong, [], "\n".join(wrong))

    def print_matrix(self):
        print("\n| route | " + " | ".join(CALLERS) + " |")
        print("|---|" + "---|" * len(CALLERS))
        for route in MATRIX:
            cells = [str(self.observed.get((route, c), "?")) for c in CALLERS]
            print("| `%s %s` | %s |" % (route[0], route[1], " | ".join(cells)))

    def test_unauthenticated_calls_change_nothing(self):
        p = self.people(True)
        owner = p["owner"]
        msg = self.post("/v1/messages", {"body": "keep me"}, token=owner.access).body
        before = (self.user_row(owner.id),
                  self.stack.db.sql("SELECT id, body FROM messages ORDER BY id"),
                  self.stack.db.sql("SELECT id FROM payments ORDER BY id"))
        for caller in UNAUTH + ("other",):
            for route in (("DELETE", "/v1/users"), ("PUT", "/v1/users"),
                          ("DELETE", "/v1/messages/:id"), ("PUT", "/v1/messages/:id"),
                          ("POST", "/v1/logout")):
                if caller == "other" and ":id" not in route[1]:
                    continue  # acts on the other user itself
                with self.subTest(route=route, caller=caller):
                    path = "/v1/messages/%s" % msg["id"] if ":id" in route[1] else route[1]
                    hdr = self.auth_header(caller, p)
                    r = self.req(route[0], path,
                                 json_body={"body": "x", "email": unique_email()}
                                 if route[0] == "PUT" else harness._DEFAULT,
                                 headers={"Authorization": hdr} if hdr else None)
                    self.assertIn(r.status, (401, 403), r)
        after = (self.user_row(owner.id),
                 self.stack.db.sql("SELECT id, body FROM messages ORDER BY id"),
                 self.stack.db.sql("SELECT id FROM payments ORDER BY id"))
        self.assertEqual(after, before)
        # and the owner's session still works
        self.assertEqual(self.get("/v1/users/%s" % owner.id, token=owner.access).status, 200)

    def test_routes_live_on_their_own_listener_only(self):
        p = self.people(False)
        for route, (_, listener, _) in MATRIX.items():
            with self.subTest(route=route):
                wrong_port = self.port if listener == "LISTEN_PAYMENTS" else self.pay_port
                r = self.call(route, "owner", p, port=wrong_port)
                self.assertEqual(r.status, 404, r)

    # -- webhook credentials

    def test_stripe_webhook_needs_a_valid_signature(self):
        ev = harness.stripe_event("customer.created", {"id": "cus_" + secrets.token_hex(6)})
        body = json.dumps(ev).encode()
        now = int(time.time())
        cases = {
            "none": None,
            "empty": "",
            "other secret": harness.stripe_signature_header("whsec_" + "0" * 32, body),
            "stale": harness.stripe_signature_header(self.webhook_secret, body, now - 3600),
            "v0 scheme": "t=%d,%s" % (now, harness.stripe_signature(self.webhook_secret, body,
                                                                  now, "v0")),
            "garbage": "t=abc,v1=zz",
        }
        before = self.payments_state()
        for what, sig in cases.items():
            with self.subTest(case=what):
                r = self.send_event(body, signature=sig)
                self.assertEqual(r.status, 400, r)
        self.assertEqual(self.payments_state(), before, "a refused webhook stored something")
        self.deliver(ev)
        self.assertEqual(len(self.payments_state()["stripe_events"]),
                         len(before["stripe_events"]) + 1)

    def test_membership_hook_needs_the_api_key(self):
        s = self.session(unique_email("hook"))
        body = {"event": "membership_status_updated", "user_id": s.id,
                "membership": "member"}
        for what, auth in (("none", None), ("wrong key", "ApiKey " + "y" * 32),
                           ("bearer", "Bearer " + s.access),
                           ("key as bearer", "Bearer " + self.membership_key)):
            with self.subTest(case=what):
                r = self.post("/v1/membership/webhooks", body,
                              headers={"Authorization": auth} if auth else None)
                self.assertEqual(r.status, 401, r)
                self.assertEqual(self.user_row(s.id)["membership"], "free")
        r = self.post("/v1/membership/webhooks", body,
                      headers={"Authorization": "ApiKey " + self.membership_key})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.user_row(s.id)["membership"], "member")

    # -- the admin port

    def test_admin_port_needs_auth_first(self):
        for first in ("PING", "STATS", "USERS LIST"):
            with self.subTest(first=first):
                c = self.admin_connect(auth=False)
                r = c.call(first)
                self.assertEqual((r.get("ok"), r.get("code")), (False, "unauthorized"), r)
                self.assertEqual(c.wait_closed(), b"")

    def test_admin_port_wrong_token_closes(self):
        wrong = secrets.token_hex(16)
        self.stack.note_secret(wrong)
        c = self.admin_connect(auth=False)
        c.send_raw(("AUTH %s\nUSERS LIST\n" % wrong).encode())
        r = c.reply()
        self.assertEqual((r.get("ok"), r.get("code")), (False, "unauthorized"), r)
        self.assertEqual(c.wait_closed(), b"")  # the command after it was not run

    def test_admin_port_right_token_serves(self):
        c = self.admin_connect("authz")
        self.assertEqual(c.call("PING"), {"ok": True, "data": "pong"})

    def print_config(self, **env):
        e = base_env()
        e.update({"HEX_JWT_SECRET": self.stack.jwt_secret,
                  "HEX_ADMIN_TOKEN": self.stack.admin_token})
        e.update(env)
        p = subprocess.run([harness.HEXD, "--print-config"], env=e, capture_output=True,
                           text=True, timeout=30)
        return p

    def test_default_listeners_are_loopback(self):
        p = self.print_config()
        self.assertEqual(p.returncode, 0, p.stderr)
        conf = dict(l.split(" = ", 1) for l in p.stdout.splitlines() if " = " in l)
        self.assertEqual(conf.get("admin_listen"), "127.0.0.1:7070")
        self.assertEqual(conf.get("http_listen"), "127.0.0.1:5000")
        self.assertEqual(conf.get("payments_listen"), "127.0.0.1:4242")
        self.assertEqual(conf.get("metrics_listen"), "")
        self.assertEqual(conf.get("admin_token"), "(set, hidden)")
        self.assertEqual(conf.get("jwt_secret"), "(set, hidden)")
        self.assertNotIn(self.stack.admin_token, p.stdout + p.stderr)
        self.assertNotIn(self.stack.jwt_secret, p.stdout + p.stderr)

    def test_non_loopback_admin_address_is_refused_without_opt_in(self):
        # Checked through --print-config, which validates the settings without binding:
        # this test must not open the admin port on a public address.
        p = self.print_config(HEX_ADMIN_LISTEN="0.0.0.0:%d" % free_port())
        self.assertNotEqual(p.returncode, 0, "HEX_ADMIN_LISTEN=0.0.0.0 accepted: %s" %
                            p.stdout[-300:])
        self.assertIn("HEX_ADMIN_LISTEN", p.stderr)
        # The explicit opt-in allows it.
        p = self.print_config(HEX_ADMIN_LISTEN="0.0.0.0:%d" % free_port(),
                              HEX_ADMIN_ALLOW_REMOTE="on")
        self.assertEqual(p.returncode, 0, p.stderr[-300:])


if __name__ == "__main__":
    harness.main()
