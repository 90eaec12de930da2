#!/usr/bin/env python3
"""The admin port's verbs (docs/ADMIN.md) through a raw socket, as hexctl speaks them, on
real rows: users made through the API, their messages, payments through the fake Stripe
with wallet top-ups by webhook, dead letters made by an event about a payment that does
not exist. Every verb answers the right data; lists page with LIMIT and CURSOR; every
argument error is invalid_argument naming its field; DLQ REPLAY applies once and is
audited with the operator from AUTH; CACHE FLUSH empties Redis of cached users; AUDIT
LIST holds the mutating verbs and only those; without Redis the CACHE verbs are
unavailable."""

import json
import os
import secrets
import socket
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (HexCase, PaymentCase, sql_literal, stripe_event,  # noqa: E402
                     stripe_event_for, stripe_intent_object, unique_email, wait_until,
                     UUID_RE, TIME_RE)

MUTATING = {"USERS GRANT-ADMIN", "USERS REVOKE-ADMIN", "DLQ REPLAY", "DLQ DISCARD",
            "CACHE FLUSH"}
VERBS = {"PING", "HELP", "STATS", "USERS LIST", "USERS SEARCH", "USERS SHOW",
         "USERS GRANT-ADMIN", "USERS REVOKE-ADMIN", "MESSAGES LIST", "MESSAGES SHOW",
         "PAYMENTS LIST", "PAYMENTS STUCK", "PAYMENTS SHOW", "LEDGER ACCOUNTS",
         "LEDGER ENTRIES", "LEDGER VERIFY", "DLQ LIST", "DLQ SHOW", "DLQ REPLAY",
         "DLQ DISCARD", "EVENTS LAG", "CACHE STATS", "CACHE FLUSH", "AUDIT LIST",
         "SUBSCRIBE", "UNSUBSCRIBE", "QUIT"}
DEAD_LETTER_KEYS = {"id", "consumer", "event_id", "topic", "attempts", "error", "status",
                    "created_at", "resolved_at", "resolved_by", "reason"}
AUDIT_KEYS = {"id", "at", "operator", "verb", "args", "ok", "error"}
ACCOUNT_KEYS = {"id", "kind", "owner_id", "currency", "balance"}
ENTRY_KEYS = {"id", "transaction_id", "amount", "currency", "reference", "created_at"}
ADMIN_USER_KEYS = harness.USER_KEYS | {"role"}


def scale():
    return 3.0 if harness.SANITIZED else 1.0


def quote(word):
    """A word as the protocol reads it back: quoted when it holds a space, a quote, a
    backslash or nothing."""
    if word == "" or any(c in word for c in " \t\"\\"):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


class AdminClient:
    """One authenticated admin-port connection: one command line, one JSON reply line."""

    def __init__(self, port, token, operator=None, timeout=20.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.sock.makefile("rwb")
        auth = self.line("AUTH %s%s" % (token, " " + operator if operator else ""))
        if auth.get("ok") is not True:
            raise AssertionError("AUTH refused: %r" % auth)

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass

    def line(self, text):
        """Sends one raw line; the reply (event lines are skipped)."""
        self.f.write(text.encode() + b"\n")
        self.f.flush()
        while True:
            raw = self.f.readline()
            if not raw:
                raise ConnectionError("hexd closed the admin connection after %r" % text)
            reply = json.loads(raw)
            if "event" not in reply:
                return reply

    def call(self, *words):
        return self.line(" ".join(quote(str(w)) for w in words))


class AdminCase:
    """What both test classes share: connections, assertions and list walks."""

    def admin(self, operator="tester"):
        c = AdminClient(self.stack.admin_port, self.stack.admin_token, operator)
        self.addCleanup(c.close)
        return c

    @property
    def adm(self):
        if not hasattr(self, "_adm"):
            self._adm = self.admin()
        return self._adm

    def ok(self, *words, client=None):
        r = (client or self.adm).call(*words)
        self.assertIs(r.get("ok"), True, "%s: %r" % (" ".join(map(str, words)), r))
        self.assertEqual(set(r), {"ok", "data"}, r)
        return r["data"]

    def fails(self, words, code, field=None, client=None, contains=None):
        r = (client or self.adm).call(*words)
        what = "%s: %r" % (" ".join(map(str, words)), r)
        self.assertIs(r.get("ok"), False, what)
        self.assertEqual(r.get("code"), code, what)
        self.assertIsInstance(r.get("error"), str, what)
        self.assertTrue(r["error"].strip(), what)
        self.assertEqual(r.get("field"), field, what)
        if contains is not None:
            self.assertIn(contains, r["error"], what)
        return r

    def walk(self, *words, limit=2, client=None):
        """Every item of a list verb, LIMIT limit at a time; (items, pages)."""
        items, pages, cursor = [], 0, None
        while True:
            args = list(words) + ["LIMIT", limit] + (["CURSOR", cursor] if cursor else [])
            d = self.ok(*args, client=client)
            self.assertEqual(set(d), {"items", "next_cursor"}, d)
            self.assertLessEqual(len(d["items"]), limit, d)
            items += d["items"]
            pages += 1
            cursor = d["next_cursor"]
            if cursor is None:
                return items, pages
            self.assertEqual(len(d["items"]), limit, "a page short of LIMIT yet a cursor")
            self.assertLess(pages, 200, "the walk does not end")

    def audit_rows(self):
        rows, _ = self.walk("AUDIT", "LIST", limit=100)
        return rows

    def open_dead_letters(self):
        return int(self.stack.db.scalar(
            "SELECT count(*) FROM dead_letters WHERE status = 'open'"))

    def cache_keys(self):
        with self.redis() as r:
            return sorted(k.decode() for k in r.cmd("KEYS", "hex:user:v1:*"))


class AdminVerbsTest(AdminCase, PaymentCase):
    """One stack with users, messages, payments, wallet top-ups and dead letters."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = "adm" + secrets.token_hex(4)

    # -- data through the API

    def people(self):
        """alice, bob and carol (emails with the class's token), each made once."""
        cls = type(self)
        if not hasattr(cls, "_people"):
            cls._people = {n: self.session("%s.%s@example.com" % (n, cls.token))
                           for n in ("alice", "bob", "carol")}
        return cls._people

    def balance(self, session, currency="usd"):
        r = self.pay_req("GET", "/v2/wallet", token=session.access)
        self.assertEqual(r.status, 200, r)
        return {w["currency"]: w["balance"] for w in r.body["data"]}.get(currency, 0)

    def wait_balance(self, session, amount):
        got = wait_until(lambda: self.balance(session) == amount, 15 * scale(), 0.1)
        self.assertTrue(got, "wallet of %s: %d, want %d" % (session.email,
                                                            self.balance(session), amount))

    def topped_up(self):
        """Payments of alice (1000 after a decline, 2500) and bob (1200) succeeded by
        webhook and booked; alice's third (700) never paid, made 10 minutes ago."""
        cls = type(self)
        if hasattr(cls, "_payments"):
            return cls._payments
        p = self.people()
        a1 = self.new_payment(p["alice"], amount=1000)
        self.deliver(stripe_event_for(a1, "failed"))
        self.deliver(stripe_event_for(a1, "succeeded"))
        a2 = self.new_payment(p["alice"], amount=2500)
        self.deliver(stripe_event_for(a2, "succeeded"))
        b1 = self.new_payment(p["bob"], amount=1200)
        self.deliver(stripe_event_for(b1, "succeeded"))
        a3 = self.new_payment(p["alice"], amount=700)
        self.stack.db.sql("UPDATE payments SET created_at = now() - interval '10 minutes' "
                          "WHERE id = %s" % sql_literal(a3["id"]))
        self.wait_balance(p["alice"], 3500)
        self.wait_balance(p["bob"], 1200)
        cls._payments = {"a1": a1, "a2": a2, "a3": a3, "b1": b1}
        return cls._payments

    def ghost_dead_letter(self, amount=4200):
        """A success event about a payment that does not exist: the ledger consumer
        dead-letters it at once. (ghost payment, event, dead letter id)."""
        ghost = {"id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "amount": amount,
                 "currency": "usd", "purpose": "wallet_top_up",
                 "stripe_payment_intent_id": "pi_" + secrets.token_hex(12)}
        ev = stripe_event("payment_intent.succeeded", stripe_intent_object(ghost))
        self.deliver(ev)

        def dead():
            for d in self.ok("DLQ", "LIST", "LIMIT", 100)["items"]:
                if d["event_id"] == ev["id"] and d["consumer"] == "ledger":
                    return d
            return None

        d = wait_until(dead, 15 * scale(), 0.1)
        self.assertIsNotNone(d, "event %s never reached the dead letters" % ev["id"])
        return ghost, ev, d["id"]

    # -- PING, HELP, STATS

    def test_ping_help_and_stats(self):
        self.assertEqual(self.ok("PING"), "pong")
        self.assertEqual(self.ok("ping"), "pong")
        verbs = self.ok("HELP")
        self.assertEqual({v["verb"] for v in verbs}, VERBS)
        self.assertEqual(len(verbs), len(VERBS))
        for v in verbs:
            self.assertEqual(set(v), {"verb", "usage", "summary", "mutating"}, v)
            self.assertTrue(v["usage"].startswith(v["verb"]), v)
            self.assertEqual(v["mutating"], v["verb"] in MUTATING, v)
        dlq = self.ok("HELP", "dlq")
        self.assertEqual([v["verb"] for v in dlq],
                         ["DLQ LIST", "DLQ SHOW", "DLQ REPLAY", "DLQ DISCARD"])
        one = self.ok("HELP", "DLQ", "DISCARD")
        self.assertEqual(one, [v for v in verbs if v["verb"] == "DLQ DISCARD"])
        self.assertEqual(one[0]["usage"], "DLQ DISCARD <id> <reason>")
        self.fails(["HELP", "FROB"], "not_found", "verb")

        stats = self.ok("STATS")
        for key in ("version", "pid", "uptime_s", "roles", "pools", "cache", "events"):
            self.assertIn(key, stats)
        self.assertEqual(stats["pid"], self.stack.hexd.proc.pid)
        events = stats["events"]
        self.assertEqual(set(events), {"outbox_unpublished", "oldest_unpublished_s",
                                       "dead_letters_open"}, events)
        self.assertTrue(wait_until(lambda: self.ok("STATS")["events"]["dead_letters_open"] ==
                                   self.open_dead_letters(), 10 * scale(), 0.2))

    # -- users

    def test_users_list_newest_first_in_pages(self):
        self.people()
        items, pages = self.walk("USERS", "LIST", limit=2)
        want = [r[0] for r in self.stack.db.sql(
            "SELECT email FROM users ORDER BY created_at DESC, id DESC")]
        self.assertEqual([u["email"] for u in items], want)
        self.assertEqual(pages, (len(want) + 1) // 2)
        self.assertGreaterEqual(len(want), 3)
        for u in items:
            self.assertEqual(set(u), ADMIN_USER_KEYS, u)
            self.assertIn(u["role"], ("user", "admin"))
        # A cursor of this list is refused by another list and with other filters.
        cursor = self.ok("USERS", "LIST", "LIMIT", 1)["next_cursor"]
        self.assertIsNotNone(cursor)
        self.fails(["USERS", "SEARCH", "a", "CURSOR", cursor], "invalid_argument", "cursor")
        self.fails(["PAYMENTS", "LIST", "CURSOR", cursor], "invalid_argument", "cursor")

    def test_users_search_any_case_and_literally(self):
        p = self.people()
        items, pages = self.walk("USERS", "SEARCH", self.token.upper(), limit=2)
        self.assertEqual([u["email"] for u in items],
                         [p[n].email for n in ("carol", "bob", "alice")])
        self.assertEqual(pages, 2)
        # A search cursor goes on only with the same text.
        d = self.ok("USERS", "SEARCH", self.token, "LIMIT", 1)
        self.fails(["USERS", "SEARCH", "example", "CURSOR", d["next_cursor"]],
                   "invalid_argument", "cursor")
        d = self.ok("USERS", "SEARCH", self.token, "CURSOR", d["next_cursor"])
        self.assertEqual([u["email"] for u in d["items"]], [p["bob"].email, p["alice"].email])
        # The text's own wildcards match themselves only.
        self.assertEqual(self.ok("USERS", "SEARCH", "%")["items"], [])
        self.assertEqual(self.ok("USERS", "SEARCH", "_")["items"], [])
        self.assertEqual(self.ok("USERS", "SEARCH", "bob." + self.token[:3] + "_")["items"],
                         [])
        self.fails(["USERS", "SEARCH", "two words"], "invalid_argument", "text")
        self.fails(["USERS", "SEARCH", ""], "invalid_argument", "text")

    def test_users_show_by_id_or_email(self):
        p = self.people()
        pay = self.topped_up()
        alice = p["alice"]
        for msg in ("first note", "second note"):
            r = self.post("/v1/messages", {"body": msg}, token=alice.access)
            self.assertEqual(r.status, 201, r)
        by_id = self.ok("USERS", "SHOW", alice.id)
        by_email = self.ok("USERS", "SHOW", alice.email.upper())
        self.assertEqual(by_id, by_email)
        self.assertEqual(set(by_id), {"user", "wallet", "payments", "messages"})
        self.assertEqual(by_id["user"]["id"], alice.id)
        self.assertEqual(by_id["user"]["email"], alice.email)
        self.assertEqual(by_id["user"]["role"], "user")
        self.assertEqual([(w["currency"], w["balance"]) for w in by_id["wallet"]],
                         [("usd", 3500)])
        self.assertRegex(by_id["wallet"][0]["updated_at"], TIME_RE)
        # Newest first: the unpaid one was made (moved) 10 minutes back.
        self.assertEqual([x["id"] for x in by_id["payments"]],
                         [pay["a2"]["id"], pay["a1"]["id"], pay["a3"]["id"]])
        self.assertEqual([x["status"] for x in by_id["payments"]],
                         ["succeeded", "succeeded", "requires_payment_method"])
        self.assertNotIn("client_secret", by_id["payments"][0])
        self.assertEqual([m["body"] for m in by_id["messages"]][:2],
                         ["second note", "first note"])
        # At most 10 of each: the latest.
        for i in range(11):
            self.post("/v1/messages", {"body": "bulk %d" % i}, token=alice.access)
        msgs = self.ok("USERS", "SHOW", alice.id)["messages"]
        self.assertEqual([m["body"] for m in msgs], ["bulk %d" % i for i in range(10, 0, -1)])
        # Someone with nothing.
        new = self.session(unique_email("empty"))
        shown = self.ok("USERS", "SHOW", new.id.upper())
        self.assertEqual(shown["user"]["email"], new.email)
        self.assertEqual((shown["wallet"], shown["payments"], shown["messages"]), ([], [], []))
        self.fails(["USERS", "SHOW", str(uuid.uuid4())], "not_found")
        self.fails(["USERS", "SHOW", "nobody." + self.token + "@example.com"], "not_found",
                   "email")
        self.fails(["USERS", "SHOW", "not-a-uuid"], "invalid_argument", "id")
        self.fails(["USERS", "SHOW", "bad@@example.com"], "invalid_argument", "email")

    def test_grant_and_revoke_admin_are_audited_and_take_effect(self):
        s = self.session(unique_email("promoted"))
        ops = self.admin("ops.lead@example")
        self.assertEqual(self.get("/v1/users", token=s.access).status, 403)
        u = self.ok("USERS", "GRANT-ADMIN", s.email.upper(), client=ops)
        self.assertEqual((u["id"], u["email"], u["role"]), (s.id, s.email, "admin"))
        self.assertEqual(self.user_row(s.id)["role"], "admin")
        # Tokens carry the role: the old one is revoked (the cached user went too), a
        # new one reads every user.
        self.assertEqual(self.get("/v1/users", token=s.access).status, 401)
        admin_token = self.login(s.email, s.password)["access_token"]
        self.assertEqual(self.get("/v1/users", token=admin_token).status, 200)
        u = self.ok("USERS", "REVOKE-ADMIN", s.email, client=ops)
        self.assertEqual(u["role"], "user")
        self.assertEqual(self.user_row(s.id)["role"], "user")
        self.assertEqual(self.get("/v1/users", token=admin_token).status, 401)
        user_token = self.login(s.email, s.password)["access_token"]
        self.assertEqual(self.get("/v1/users", token=user_token).status, 403)
        self.fails(["USERS", "GRANT-ADMIN", "nobody-%s@example.com" % self.token], "not_found",
                   "email", client=ops)
        self.fails(["USERS", "GRANT-ADMIN", "not an email"], "invalid_argument", "email",
                   client=ops)
        rows = [r for r in self.audit_rows() if r["operator"] == "ops.lead@example"]
        self.assertEqual([(r["verb"], r["args"], r["ok"]) for r in rows[:4]], [
            ("USERS GRANT-ADMIN", '"not an email"', False),
            ("USERS GRANT-ADMIN", "nobody-%s@example.com" % self.token, False),
            ("USERS REVOKE-ADMIN", s.email, True),
            ("USERS GRANT-ADMIN", s.email.upper(), True),
        ])
        self.assertIsNone(rows[2]["error"])
        self.assertIn("no user", rows[1]["error"])

    # -- messages

    def test_messages_list_and_show(self):
        p = self.people()
        bob = p["bob"]
        ids = []
        for i in range(5):
            body = "bob says %d%s" % (i, " zebracorn" if i == 3 else "")
            r = self.post("/v1/messages", {"body": body}, token=bob.access)
            self.assertEqual(r.status, 201, r)
            ids.append(r.body["id"])
        items, pages = self.walk("MESSAGES", "LIST", "USER", bob.id, limit=2)
        self.assertEqual([m["id"] for m in items], list(reversed(ids)))
        self.assertEqual(pages, 3)
        self.assertTrue(all(m["user_id"] == bob.id for m in items))
        hit = self.ok("MESSAGES", "LIST", "Q", "zebracorn")["items"]
        self.assertEqual([m["id"] for m in hit], [ids[3]])
        # Everyone's, newest first.
        everyone = self.ok("MESSAGES", "LIST", "LIMIT", 100)["items"]
        want = [r[0] for r in self.stack.db.sql(
            "SELECT id FROM messages ORDER BY created_at DESC, id DESC LIMIT 100")]
        self.assertEqual([m["id"] for m in everyone], want)
        # A cursor belongs to its filters.
        d = self.ok("MESSAGES", "LIST", "USER", bob.id, "LIMIT", 1)
        self.fails(["MESSAGES", "LIST", "CURSOR", d["next_cursor"]], "invalid_argument",
                   "cursor")
        m = self.ok("MESSAGES", "SHOW", ids[0])
        self.assertEqual((m["id"], m["user_id"], m["body"]), (ids[0], bob.id, "bob says 0"))
        self.assertEqual(self.ok("MESSAGES", "SHOW", ids[0].upper())["id"], ids[0])
        self.fails(["MESSAGES", "SHOW", str(uuid.uuid4())], "not_found")
        self.fails(["MESSAGES", "SHOW", "12"], "invalid_argument", "id")
        self.fails(["MESSAGES", "LIST", "USER", "bob"], "invalid_argument", "user_id")
        self.fails(["MESSAGES", "LIST", "Q"], "invalid_argument", "q")

    # -- payments

    def test_payments_list_stuck_and_show(self):
        pay = self.topped_up()
        alice = self.people()["alice"]
        items, pages = self.walk("PAYMENTS", "LIST", "USER", alice.id, limit=1)
        self.assertEqual([x["id"] for x in items],
                         [pay["a2"]["id"], pay["a1"]["id"], pay["a3"]["id"]])
        self.assertEqual(pages, 3)
        self.assertEqual(set(items[0]), harness.PAYMENT_KEYS)
        ok, _ = self.walk("PAYMENTS", "LIST", "STATUS", "succeeded", "USER", alice.id)
        self.assertEqual([x["id"] for x in ok], [pay["a2"]["id"], pay["a1"]["id"]])
        everyone, _ = self.walk("PAYMENTS", "LIST", "STATUS", "succeeded", limit=100)
        self.assertIn(pay["b1"]["id"], [x["id"] for x in everyone])
        d = self.ok("PAYMENTS", "LIST", "STATUS", "succeeded", "LIMIT", 1)
        self.fails(["PAYMENTS", "LIST", "STATUS", "failed", "CURSOR", d["next_cursor"]],
                   "invalid_argument", "cursor")
        self.fails(["PAYMENTS", "LIST", "STATUS", "paid"], "invalid_argument", "status")
        self.fails(["PAYMENTS", "LIST", "USER", "x"], "invalid_argument", "user_id")

        stuck = self.ok("PAYMENTS", "STUCK")["items"]
        self.assertIn(pay["a3"]["id"], [x["id"] for x in stuck])
        for x in stuck:
            self.assertIn(x["status"], ("requires_payment_method", "processing"))
            self.assertGreaterEqual(x["age_s"], 300)
        a3 = [x for x in stuck if x["id"] == pay["a3"]["id"]][0]
        self.assertTrue(595 <= a3["age_s"] <= 900, a3)
        self.assertNotIn(pay["a2"]["id"], [x["id"] for x in stuck])
        self.assertEqual(self.ok("PAYMENTS", "STUCK", "LIMIT", 1)["next_cursor"], None)

        shown = self.ok("PAYMENTS", "SHOW", pay["a1"]["id"])
        self.assertEqual(shown["payment"]["id"], pay["a1"]["id"])
        self.assertEqual(shown["payment"]["status"], "succeeded")
        self.assertEqual([e["type"] for e in shown["events"]],
                         ["payment_intent.payment_failed", "payment_intent.succeeded"])
        want = [r[0] for r in self.stack.db.sql(
            "SELECT id FROM stripe_events WHERE payment_id = %s ORDER BY received_at" %
            sql_literal(pay["a1"]["id"]))]
        self.assertEqual([e["id"] for e in shown["events"]], want)
        for e in shown["events"]:
            self.assertEqual(set(e), {"id", "type", "created_at", "received_at"})
            self.assertRegex(e["received_at"], TIME_RE)
        self.assertEqual(self.ok("PAYMENTS", "SHOW", pay["a3"]["id"])["events"], [])
        self.fails(["PAYMENTS", "SHOW", str(uuid.uuid4())], "not_found")
        self.fails(["PAYMENTS", "SHOW", "pi_123"], "invalid_argument", "id")
        self.fails(["PAYMENTS", "STUCK", "LIMIT", "0"], "invalid_argument", "limit")

    # -- ledger

    def test_ledger_accounts_entries_and_verify(self):
        pay = self.topped_up()
        p = self.people()
        accounts, pages = self.walk("LEDGER", "ACCOUNTS", limit=2)
        self.assertEqual(len(accounts), int(self.stack.db.scalar("SELECT count(*) FROM accounts")))
        kinds = [a["kind"] for a in accounts]
        first_wallet = kinds.index("wallet")
        self.assertNotIn("wallet", kinds[:first_wallet])
        self.assertEqual(set(kinds[first_wallet:]), {"wallet"}, "system accounts come first")
        for a in accounts:
            self.assertEqual(set(a), ACCOUNT_KEYS, a)
            self.assertEqual(a["owner_id"] is None, a["kind"] != "wallet", a)
        wallets = {a["owner_id"]: a for a in accounts if a["kind"] == "wallet"}
        self.assertEqual(wallets[p["alice"].id]["balance"], 3500)
        self.assertEqual(wallets[p["bob"].id]["balance"], 1200)
        clearing = [a for a in accounts if a["kind"] == "stripe_clearing"
                    and a["currency"] == "usd"][0]
        self.assertLessEqual(clearing["balance"], -4700)

        wallet = wallets[p["alice"].id]["id"]
        entries, pages = self.walk("LEDGER", "ENTRIES", wallet, limit=1)
        self.assertEqual([(e["amount"], e["reference"]) for e in entries],
                         [(2500, "payment:" + pay["a2"]["id"]),
                          (1000, "payment:" + pay["a1"]["id"])])
        self.assertEqual(set(entries[0]), ENTRY_KEYS)
        self.assertGreater(int(entries[0]["id"]), int(entries[1]["id"]))
        # A cursor walks one account.
        d = self.ok("LEDGER", "ENTRIES", wallet, "LIMIT", 1)
        self.fails(["LEDGER", "ENTRIES", clearing["id"], "CURSOR", d["next_cursor"]],
                   "invalid_argument", "cursor")
        clearing_entries, _ = self.walk("LEDGER", "ENTRIES", clearing["id"], limit=100)
        self.assertEqual(sum(e["amount"] for e in clearing_entries), clearing["balance"])
        self.fails(["LEDGER", "ENTRIES", str(uuid.uuid4())], "not_found")
        self.fails(["LEDGER", "ENTRIES", "wallet"], "invalid_argument", "account_id")
        self.fails(["LEDGER", "ACCOUNTS", "CURSOR", d["next_cursor"]], "invalid_argument",
                   "cursor")

        report = self.ok("LEDGER", "VERIFY")
        self.assertEqual(report, {"ok": True, "accounts_checked": len(accounts),
                                  "mismatches": [], "unbalanced": []})

    # -- dead letters

    def test_dlq_replay_applies_once_and_is_audited(self):
        carol = self.people()["carol"]
        ghost, ev, dl = self.ghost_dead_letter(amount=4200)
        shown = self.ok("DLQ", "SHOW", dl)
        self.assertEqual(set(shown), DEAD_LETTER_KEYS | {"payload", "history"})
        self.assertEqual((shown["consumer"], shown["event_id"], shown["topic"],
                          shown["attempts"], shown["status"]),
                         ("ledger", ev["id"], "payment_events", 1, "open"))
        self.assertIn(ghost["id"], shown["error"])
        self.assertEqual(json.loads(shown["payload"]), ev)
        self.assertEqual([h["attempt"] for h in shown["history"]], [1])
        self.assertIn(ghost["id"], shown["history"][0]["error"])
        self.assertIsNone(shown["resolved_at"])

        # The operator makes the payment exist (as a late insert would), then replays.
        self.stack.db.sql(
            "INSERT INTO payments (id, user_id, amount, currency, purpose, status, "
            "stripe_idempotency_key, stripe_payment_intent_id) VALUES (%s, %s, 4200, 'usd', "
            "'wallet_top_up', 'succeeded', %s, %s)" %
            (sql_literal(ghost["id"]), sql_literal(carol.id), sql_literal("k-" + ghost["id"]),
             sql_literal(ghost["stripe_payment_intent_id"])))
        ops = self.admin("ops.replayer")
        d = self.ok("DLQ", "REPLAY", dl, client=ops)
        self.assertEqual(set(d), DEAD_LETTER_KEYS)
        self.assertEqual((d["id"], d["status"], d["resolved_by"]),
                         (dl, "replayed", "ops.replayer"))
        self.assertRegex(d["resolved_at"], TIME_RE)
        self.wait_balance(carol, 4200)
        # Once: a second replay is refused and nothing moves again.
        self.fails(["DLQ", "REPLAY", dl], "conflict", "id", client=ops,
                   contains="already replayed")
        time.sleep(1.0 * scale())
        self.assertEqual(self.balance(carol), 4200)
        self.assertEqual(int(self.stack.db.scalar(
            "SELECT count(*) FROM journal_transactions WHERE reference = %s" %
            sql_literal("payment:" + ghost["id"]))), 1)
        self.assertNotIn(dl, [x["id"] for x in self.ok("DLQ", "LIST", "LIMIT", 100)["items"]])
        self.assertEqual(self.ok("DLQ", "SHOW", dl)["status"], "replayed")
        rows = [r for r in self.audit_rows() if r["operator"] == "ops.replayer"]
        self.assertEqual([(r["verb"], r["args"], r["ok"]) for r in rows],
                         [("DLQ REPLAY", str(dl), False), ("DLQ REPLAY", str(dl), True)])
        for r in rows:
            self.assertEqual(set(r), AUDIT_KEYS, r)
            self.assertRegex(r["at"], TIME_RE)
        self.assertIn("already replayed", rows[0]["error"])
        self.assertIsNone(rows[1]["error"])

    def test_dlq_discard_needs_a_reason(self):
        _, ev1, d1 = self.ghost_dead_letter(amount=101)
        _, ev2, d2 = self.ghost_dead_letter(amount=102)
        ops = self.admin("ops.discarder")
        self.fails(["DLQ", "DISCARD", d1], "invalid_argument", "reason", client=ops)
        self.fails(["DLQ", "DISCARD", d1, ""], "invalid_argument", "reason", client=ops)
        self.fails(["DLQ", "DISCARD", "x1", "why"], "invalid_argument", "id", client=ops)
        self.assertEqual(self.ok("DLQ", "SHOW", d1)["status"], "open")
        # The rest of the line, or one quoted word.
        r = ops.line("DLQ DISCARD %d not ours: test noise" % d1)
        self.assertIs(r["ok"], True, r)
        self.assertEqual((r["data"]["status"], r["data"]["reason"], r["data"]["resolved_by"]),
                         ("discarded", "not ours: test noise", "ops.discarder"))
        d = self.ok("DLQ", "DISCARD", d2, 'quoted "reason"', client=ops)
        self.assertEqual(d["reason"], 'quoted "reason"')
        open_ids = [x["id"] for x in self.walk("DLQ", "LIST", limit=3)[0]]
        self.assertNotIn(d1, open_ids)
        every, _ = self.walk("DLQ", "LIST", "ALL", limit=3)
        by_id = {x["id"]: x for x in every}
        self.assertEqual(by_id[d1]["status"], "discarded")
        self.assertEqual(by_id[d2]["reason"], 'quoted "reason"')
        self.assertEqual(set(by_id[d1]), DEAD_LETTER_KEYS)
        ids = [x["id"] for x in every]
        self.assertEqual(ids, sorted(ids, reverse=True), "newest first")
        self.fails(["DLQ", "DISCARD", d1, "again"], "conflict", "id", client=ops)
        self.fails(["DLQ", "DISCARD", 99999999, "why"], "not_found", "id", client=ops)
        rows = [r for r in self.audit_rows() if r["operator"] == "ops.discarder"]
        self.assertEqual([(r["args"], r["ok"]) for r in rows], [
            ("99999999 why", False), ("%d again" % d1, False),
            ('%d "quoted \\"reason\\""' % d2, True), ("%d not ours: test noise" % d1, True),
            ("x1 why", False), ('%d ""' % d1, False), (str(d1), False)])

    # -- events, cache

    def test_events_lag(self):
        self.topped_up()
        lag = self.ok("EVENTS", "LAG")
        self.assertEqual(set(lag), {"outbox_unpublished", "oldest_unpublished_s",
                                    "dead_letters_open", "consumers"}, lag)
        self.assertEqual([c["name"] for c in lag["consumers"]],
                         ["ledger", "membership", "notify"])
        for c in lag["consumers"]:
            self.assertIsInstance(c["pending"], int, c)
            self.assertIsInstance(c["lag"], int, c)
        self.assertIsInstance(lag["oldest_unpublished_s"], (int, float))
        self.assertTrue(wait_until(lambda: self.ok("EVENTS", "LAG")["dead_letters_open"] ==
                                   self.open_dead_letters(), 10 * scale(), 0.2))
        # Drained: nothing waits in the outbox for long.
        self.assertTrue(wait_until(
            lambda: self.ok("EVENTS", "LAG")["oldest_unpublished_s"] < 5, 10 * scale()))

    def cache_user(self, s):
        """Reads s through the API until its entry sits in Redis."""
        def cached():
            r = self.get("/v1/users/%s" % s.id, token=s.access)
            self.assertEqual(r.status, 200, r)
            return self.cache_key(s.id) in self.cache_keys()
        self.assertTrue(wait_until(cached, 5 * scale(), 0.05), "%s never cached" % s.email)

    def test_cache_stats_and_flush(self):
        p = self.people()
        for n in ("alice", "bob"):
            self.cache_user(p[n])
        stats = self.ok("CACHE", "STATS")
        self.assertEqual(set(stats), {"hits", "misses", "errors", "keys"})
        self.assertEqual(stats["keys"], len(self.cache_keys()))
        self.assertGreaterEqual(stats["keys"], 2)
        ops = self.admin("ops.cache")
        self.assertEqual(self.ok("CACHE", "FLUSH", p["alice"].id, client=ops), {"deleted": 1})
        self.assertNotIn(self.cache_key(p["alice"].id), self.cache_keys())
        self.assertIn(self.cache_key(p["bob"].id), self.cache_keys())
        self.assertEqual(self.ok("CACHE", "FLUSH", p["alice"].id, client=ops), {"deleted": 0})
        self.cache_user(p["alice"])
        n = len(self.cache_keys())
        with self.redis() as r:
            r.cmd("SET", "hex:user:v2:not-ours", "x")
            r.cmd("SET", "hex:users", "x")
            others = r.cmd("DBSIZE") - n
        self.assertEqual(self.ok("CACHE", "FLUSH", client=ops), {"deleted": n})
        self.assertEqual(self.cache_keys(), [])
        self.assertEqual(self.ok("CACHE", "STATS")["keys"], 0)
        with self.redis() as r:
            self.assertEqual(r.cmd("DBSIZE"), others, "only cached users were deleted")
            self.assertEqual(r.cmd("EXISTS", "hex:user:v2:not-ours", "hex:users"), 2)
        # Reads go on and fill it again.
        self.cache_user(p["bob"])
        self.fails(["CACHE", "FLUSH", "bob"], "invalid_argument", "user_id", client=ops)
        rows = [r for r in self.audit_rows() if r["operator"] == "ops.cache"]
        self.assertEqual([(r["args"], r["ok"]) for r in rows], [
            ("bob", False), ("", True), (p["alice"].id, True), (p["alice"].id, True)])

    # -- argument errors and the audit log

    def test_every_argument_error_names_its_field(self):
        cases = [
            (["USERS", "LIST", "LIMIT", "0"], "limit"),
            (["USERS", "LIST", "LIMIT", "101"], "limit"),
            (["USERS", "LIST", "LIMIT", "ten"], "limit"),
            (["USERS", "LIST", "LIMIT"], "limit"),
            (["USERS", "LIST", "LIMIT", "5", "LIMIT", "6"], "limit"),
            (["USERS", "LIST", "CURSOR", "bogus"], "cursor"),
            (["USERS", "LIST", "CURSOR"], "cursor"),
            (["USERS", "LIST", "STATUS", "x"], "args"),
            (["USERS", "LIST", "extra"], "args"),
            (["USERS", "SEARCH"], "text"),
            (["USERS", "SHOW"], "id"),
            (["USERS", "SHOW", "a", "b"], "args"),
            (["USERS", "GRANT-ADMIN"], "email"),
            (["USERS", "REVOKE-ADMIN", "a@example.com", "b@example.com"], "args"),
            (["MESSAGES", "SHOW"], "id"),
            (["MESSAGES", "LIST", "USER"], "user_id"),
            (["MESSAGES", "LIST", "ALL"], "args"),
            (["PAYMENTS", "SHOW", "1"], "id"),
            (["PAYMENTS", "STUCK", "CURSOR", "x"], "args"),
            (["PAYMENTS", "LIST", "LIMIT", "-1"], "limit"),
            (["LEDGER", "ENTRIES"], "account_id"),
            (["LEDGER", "ENTRIES", "123"], "account_id"),
            (["LEDGER", "ACCOUNTS", "CURSOR", "x"], "cursor"),
            (["LEDGER", "VERIFY", "now"], "args"),
            (["DLQ", "SHOW"], "id"),
            (["DLQ", "SHOW", "0"], "id"),
            (["DLQ", "SHOW", "-3"], "id"),
            (["DLQ", "SHOW", "1", "2"], "args"),
            (["DLQ", "REPLAY", "abc"], "id"),
            (["DLQ", "LIST", "LIMIT", "0"], "limit"),
            (["DLQ", "LIST", "CURSOR", "x"], "cursor"),
            (["AUDIT", "LIST", "CURSOR", "x"], "cursor"),
            (["AUDIT", "LIST", "ALL"], "args"),
            (["EVENTS", "LAG", "now"], "args"),
            (["CACHE", "STATS", "x"], "args"),
            (["CACHE", "FLUSH", "1", "2"], "args"),
            (["STATS", "x"], "args"),
            (["PING", "x"], "args"),
        ]
        for words, field in cases:
            with self.subTest(line=" ".join(words)):
                self.fails(words, "invalid_argument", field)
        # The usage line is in the message of a count error.
        self.fails(["DLQ", "DISCARD", "1"], "invalid_argument", "reason",
                   contains="usage: DLQ DISCARD <id> <reason>")
        for words in (["FROB"], ["USERS"], ["USERS", "FROB"], ["DLQ", "EAT", "1"]):
            self.fails(words, "unknown_verb")
        for words in (["DLQ", "SHOW", 987654], ["DLQ", "REPLAY", 987654],
                      ["MESSAGES", "SHOW", str(uuid.uuid4())],
                      ["LEDGER", "ENTRIES", str(uuid.uuid4())]):
            self.fails(words, "not_found", "id" if words[0] == "DLQ" else None)
        # The connection goes on after every error.
        self.assertEqual(self.ok("PING"), "pong")

    def test_audit_list_holds_mutating_verbs_only(self):
        before = max([r["id"] for r in self.audit_rows()] or [0])
        ops = self.admin("ops.audit")
        anon = AdminClient(self.stack.admin_port, self.stack.admin_token)
        self.addCleanup(anon.close)
        for words in (["PING"], ["USERS", "LIST"], ["DLQ", "LIST", "ALL"], ["STATS"],
                      ["EVENTS", "LAG"], ["CACHE", "STATS"], ["LEDGER", "VERIFY"],
                      ["HELP"], ["AUDIT", "LIST"], ["USERS", "SHOW", str(uuid.uuid4())]):
            ops.call(*words)
        ops.call("CACHE", "FLUSH", "nope")
        ops.call("USERS", "REVOKE-ADMIN", "ghost-%s@example.com" % self.token)
        anon.call("CACHE", "FLUSH")
        new = [r for r in self.audit_rows() if r["id"] > before]
        self.assertEqual([(r["operator"], r["verb"], r["args"], r["ok"]) for r in new], [
            ("unknown", "CACHE FLUSH", "", True),
            ("ops.audit", "USERS REVOKE-ADMIN", "ghost-%s@example.com" % self.token, False),
            ("ops.audit", "CACHE FLUSH", "nope", False),
        ])
        every = self.audit_rows()
        self.assertTrue(every, "the audit log is empty")
        self.assertEqual({r["verb"] for r in every} - MUTATING, set(),
                         "only mutating verbs are audited")
        ids = [r["id"] for r in every]
        self.assertEqual(ids, sorted(ids, reverse=True))
        self.assertEqual(len(ids), len(set(ids)))
        # Paging gives the same rows.
        paged, pages = self.walk("AUDIT", "LIST", limit=2)
        self.assertEqual([r["id"] for r in paged], ids)
        self.assertEqual(int(self.stack.db.scalar("SELECT count(*) FROM admin_audit")),
                         len(ids))


class NoRedisAdminVerbsTest(AdminCase, HexCase):
    """A stack without Redis: what needs it answers unavailable, the rest works."""

    USE_REDIS = False

    def test_cache_verbs_are_unavailable_and_the_rest_works(self):
        self.assertEqual(self.ok("PING"), "pong")
        ops = self.admin("ops.noredis")
        self.fails(["CACHE", "STATS"], "unavailable", client=ops, contains="HEX_REDIS_URL")
        self.fails(["CACHE", "FLUSH"], "unavailable", client=ops)
        self.fails(["CACHE", "FLUSH", str(uuid.uuid4())], "unavailable", client=ops)
        self.fails(["CACHE", "FLUSH", "nope"], "invalid_argument", "user_id", client=ops)
        lag = self.ok("EVENTS", "LAG")
        self.assertEqual([c["name"] for c in lag["consumers"]],
                         ["ledger", "membership", "notify"])
        for c in lag["consumers"]:
            self.assertIsNone(c["pending"], c)
            self.assertIsNone(c["lag"], c)
        self.assertEqual(lag["outbox_unpublished"], 0)
        self.assertIn("events", self.ok("STATS"))
        s = self.session(unique_email("noredis"))
        self.assertEqual(self.ok("USERS", "SHOW", s.id)["user"]["email"], s.email)
        self.assertTrue(self.ok("LEDGER", "VERIFY")["ok"])
        rows = self.audit_rows()
        self.assertEqual([(r["verb"], r["ok"]) for r in rows], [("CACHE FLUSH", False)] * 3)
        self.assertIn("HEX_REDIS_URL", rows[1]["error"])


if __name__ == "__main__":
    harness.main()
