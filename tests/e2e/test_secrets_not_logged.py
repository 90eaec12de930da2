#!/usr/bin/env python3
"""Secrets never reach a log (docs/SECURITY.md, "Logging rules"). A representative
session at HEX_LOG_LEVEL=debug - sign-up, a wrong and a right login, refresh and refresh
reuse, a password change, payments through the fake Stripe, a signed and a badly signed
webhook, the membership hook with the right and a wrong key, a transfer, admin AUTH right
and wrong with a log subscription open - then every line hexd wrote (its log files, what
SUBSCRIBE LOG streamed, what start-up refusals print) is searched for the JWT secret, the
admin token, the webhook secret, the Stripe key, the membership key, the database
password, every password, access and refresh token (and each token's signature alone)
and every client secret. The harness's note_secret list is the one list of secrets:
this module only feeds it and asks harness.Stack.secret_leaks."""

import os
import secrets
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (PaymentCase, base_env, stripe_event_for, unique_email,  # noqa: E402
                     wait_until)

DB_PASSWORD = "dbpw-" + secrets.token_hex(12)


def with_db_password(conninfo):
    """conninfo (key=value or URI) carrying DB_PASSWORD."""
    if "://" in conninfo:
        return conninfo + ("&" if "?" in conninfo else "?") + "password=" + DB_PASSWORD
    return conninfo + " password=" + DB_PASSWORD


class SecretsNotLoggedTest(PaymentCase):
    HEXD_ENV = {"HEX_LOG_LEVEL": "debug"}

    def setUp(self):
        super().setUp()
        self.stack.note_secret(DB_PASSWORD)

    def restart_with_db_password(self):
        """A password in the conninfo: the test server trusts loopback, so it is accepted
        and ignored, but hexd has it in hand and must not print it."""
        self.stack.restart_hexd({"HEX_DATABASE_URL": with_db_password(self.stack.db.conninfo)})

    def usd_balance(self, s):
        r = self.pay_req("GET", "/v2/wallet", token=s.access)
        self.assertEqual(r.status, 200, r)
        return sum(w["balance"] for w in r.body["data"] if w["currency"] == "usd")

    def representative_session(self):
        # users and tokens
        s = self.session(unique_email("sess"))
        wrong_pw = "wrong-" + secrets.token_hex(8)
        self.stack.note_secret(wrong_pw)
        self.login(s.email, wrong_pw, expect=401)
        self.login(unique_email("nobody"), wrong_pw, expect=401)
        r = self.post("/v1/token/refresh", {"refresh_token": s.refresh})
        self.assertEqual(r.status, 200, r)
        for k in ("access_token", "refresh_token"):
            self.stack.note_secret(r.body[k])
        # reuse of the spent token revokes the family (and is logged as an event)
        r = self.post("/v1/token/refresh", {"refresh_token": s.refresh})
        self.assertEqual(r.status, 401, r)
        s = self.session(unique_email("sess2"))
        new_pw = "newpw-" + secrets.token_hex(8)
        self.stack.note_secret(new_pw)
        r = self.put("/v1/users", {"password": new_pw}, token=s.access)
        self.assertEqual(r.status, 200, r)
        self.login(s.email, new_pw)
        # the access token died with the password change
        r = self.put("/v1/users", {"password": "again-" + secrets.token_hex(8)},
                     token=s.access)
        self.assertEqual(r.status, 401, r)
        s = self.session(unique_email("payer"))
        # payments, webhooks and the wallet
        pay = self.new_payment(s, amount=2500, key="key-" + uuid.uuid4().hex)
        self.assertTrue(pay.get("client_secret"))
        self.deliver(stripe_event_for(pay, "succeeded"))
        self.wait_payment_status(s, pay["id"], "succeeded")
        # the top-up reaches the ledger through the event pipeline: wait for the money
        self.assertTrue(wait_until(lambda: self.usd_balance(s) >= 2500,
                                   20 * (3 if harness.SANITIZED else 1), interval=0.1),
                        "the top-up never reached the wallet")
        bad = self.send_event(stripe_event_for(pay, "refunded"),
                              secret="whsec_" + secrets.token_hex(16))
        self.assertEqual(bad.status, 400, bad)
        r = self.pay_req("POST", "/v2/create-checkout-session", token=s.access,
                         headers={"Accept": "application/json"})
        self.assertEqual(r.status, 200, r)
        other = self.session(unique_email("payee"))
        r = self.pay_req("POST", "/v2/wallet/transfers", token=s.access,
                         json_body={"to_user_id": other.id, "amount": 500, "currency": "usd"},
                         headers={"Idempotency-Key": uuid.uuid4().hex})
        self.assertEqual(r.status, 201, r)
        hook = {"event": "membership_status_updated", "user_id": other.id,
                "membership": "member", "event_id": uuid.uuid4().hex}
        wrong_key = "mk_" + secrets.token_hex(16)
        self.stack.note_secret(wrong_key)
        r = self.post("/v1/membership/webhooks", hook,
                      headers={"Authorization": "ApiKey " + wrong_key})
        self.assertEqual(r.status, 401, r)
        r = self.post("/v1/membership/webhooks", hook,
                      headers={"Authorization": "ApiKey " + self.membership_key})
        self.assertEqual(r.status, 200, r)
        # admin port: a wrong AUTH, then operator commands that show users and payments
        wrong_token = secrets.token_hex(16)
        self.stack.note_secret(wrong_token)
        c = self.admin_connect(auth=False)
        self.assertEqual(c.auth(wrong_token, "mallory").get("code"), "unauthorized")
        ops = self.admin_connect("alice")
        for line in ("USERS SHOW %s" % s.id, "PAYMENTS SHOW %s" % pay["id"], "STATS"):
            self.assertTrue(ops.call(line).get("ok"), line)
        r = self.post("/v1/logout", token=other.access)
        self.assertEqual(r.status, 204, r)

    def test_representative_session_logs_no_secret(self):
        self.restart_with_db_password()
        admin = self.admin_connect("logwatch")
        self.assertEqual(admin.call("SUBSCRIBE LOG").get("ok"), True)
        self.representative_session()
        # end with a request whose access-log line is the last thing streamed
        marker = "marker-" + uuid.uuid4().hex
        self.get("/healthz", headers={"X-Request-Id": marker})
        streamed = []
        while True:
            ev = admin.next_event(timeout=10 * (3 if harness.SANITIZED else 1))
            streamed.append(repr(ev))
            if marker in repr(ev):
                break
        log = self.stack.hexd.log()
        self.assertGreater(len(log.splitlines()), 40, "the session logged next to nothing: "
                           "the search below would prove nothing")
        self.assertIn('"level":"debug"', log.replace(" ", ""),
                      "HEX_LOG_LEVEL=debug did not take")
        self.assertEqual(self.stack.secret_leaks({"SUBSCRIBE LOG": "\n".join(streamed)}), [])

    def test_secrets_noted_are_really_searched(self):
        """The search finds a secret where there is one: this module cannot pass by
        searching nothing."""
        probe = "probe-" + secrets.token_hex(10)
        jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0." + secrets.token_hex(20)
        self.stack.note_secret(jwt_like)
        self.stack.note_secret(probe)
        try:
            leaks = self.stack.secret_leaks({"a": "x %s y" % probe,
                                             "b": "cut at the dot: " +
                                                  jwt_like.rsplit(".", 1)[1]})
            self.assertEqual(leaks, ["a: %s..." % probe[:8],
                                     "b: %s..." % jwt_like.rsplit(".", 1)[1][:8]])
        finally:
            self.stack.secrets.discard(probe)
            self.stack.secrets.discard(jwt_like)

    def test_refused_settings_do_not_echo_the_secret(self):
        """A secret too short is refused at start-up naming the setting, not its value."""
        env = base_env()
        cases = {"HEX_JWT_SECRET": "short-jwt-" + secrets.token_hex(4),
                 "HEX_ADMIN_TOKEN": "adm-" + secrets.token_hex(4),
                 "HEX_MEMBERSHIP_API_KEY": "mk-" + secrets.token_hex(4)}
        for name, value in cases.items():
            with self.subTest(setting=name):
                e = dict(env, HEX_DATABASE_URL=self.stack.db.conninfo,
                         HEX_JWT_SECRET=self.stack.jwt_secret)
                e[name] = value
                p = subprocess.run([harness.HEXD, "--print-config"], env=e,
                                   capture_output=True, text=True, timeout=30)
                self.assertNotEqual(p.returncode, 0, "%s of %d bytes accepted" %
                                    (name, len(value)))
                self.assertIn(name, p.stderr)
                self.assertNotIn(value, p.stdout + p.stderr)

    def test_print_config_hides_every_secret(self):
        e = base_env()
        e.update(self.stack.env({"HEX_DATABASE_URL": with_db_password(self.stack.db.conninfo)}))
        p = subprocess.run([harness.HEXD, "--print-config"], env=e, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.stack.secret_leaks({"--print-config": p.stdout + p.stderr}),
                         [])
        for key in ("database_url", "jwt_secret", "admin_token", "stripe_secret_key",
                    "stripe_webhook_secret", "membership_api_key"):
            self.assertIn("%s = (set, hidden)" % key, p.stdout)


if __name__ == "__main__":
    harness.main()
