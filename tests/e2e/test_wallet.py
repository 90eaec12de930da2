#!/usr/bin/env python3
"""GET /v2/wallet, GET /v2/wallet/entries and POST /v2/wallet/transfers against the
built hexd and a real PostgreSQL: balances, signed entries and their pages, transfers
through the ledger with a required Idempotency-Key (replay, reuse), every refusal moving
nothing, and concurrent transfers in both directions conserving the money.

Wallets are funded the way a top-up funds them (ledger_service_top_up): one balanced
journal transaction, Stripe clearing -X and wallet +X, inserted here with psql as the
database owner, so the database's own triggers still check it."""

import base64
import os
import re
import sys
import threading
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import TIME_RE, UUID_RE, PaymentCase, sql_literal, unique_email  # noqa: E402

WALLET_KEYS = {"currency", "balance", "updated_at"}
ENTRY_KEYS = {"id", "transaction_id", "amount", "currency", "reference", "created_at"}
TRANSFER_KEYS = {"id", "from_user_id", "to_user_id", "amount", "currency", "created_at"}
KEY_MAX = 175  # Idempotency-Key characters a transfer accepts (docs/API-NOTES.md)


class WalletCase(PaymentCase):
    FAKE_STRIPE = False  # the simulated gateway: no payment is made here

    # -- money in, money looked at

    def seed(self, session, amount, currency="usd"):
        """Tops session's wallet up by amount as ledger_service_top_up would post it;
        returns the journal transaction id."""
        txn = str(uuid.uuid4())
        key = sql_literal("payment:%s" % uuid.uuid4())
        cur, owner = sql_literal(currency), sql_literal(session.id)
        self.stack.db.sql(
            "BEGIN; "
            "INSERT INTO accounts (kind, owner_id, currency, allow_negative) "
            "VALUES ('stripe_clearing', NULL, %(c)s, true) ON CONFLICT DO NOTHING; "
            "INSERT INTO accounts (kind, owner_id, currency, allow_negative) "
            "VALUES ('wallet', %(o)s, %(c)s, false) ON CONFLICT DO NOTHING; "
            "INSERT INTO journal_transactions (id, idempotency_key, reference) "
            "VALUES (%(t)s, %(k)s, %(k)s); "
            "INSERT INTO entries (transaction_id, account_id, amount, currency) "
            "SELECT %(t)s, id, %(neg)d, %(c)s FROM accounts "
            "WHERE kind = 'stripe_clearing' AND currency = %(c)s; "
            "INSERT INTO entries (transaction_id, account_id, amount, currency) "
            "SELECT %(t)s, id, %(a)d, %(c)s FROM accounts "
            "WHERE kind = 'wallet' AND owner_id = %(o)s AND currency = %(c)s; "
            "COMMIT;" % {"t": sql_literal(txn), "k": key, "c": cur, "o": owner, "a": amount,
                         "neg": -amount})
        return txn

    def wallet(self, session):
        """GET /v2/wallet as session (asserting the shape); {currency: item}."""
        r = self.pay_req("GET", "/v2/wallet", token=session.access)
        self.assertEqual(r.status, 200, r)
        self.assertJsonReply(r)
        self.assertEqual(set(r.body.keys()), {"data"}, r.body)
        items = r.body["data"]
        for w in items:
            self.assertEqual(set(w.keys()), WALLET_KEYS, w)
            self.assertRegex(w["currency"], r"^[a-z]{3}$")
            self.assertIs(type(w["balance"]), int, w)
            self.assertGreaterEqual(w["balance"], 0, w)
            self.assertRegex(w["updated_at"], TIME_RE)
        currencies = [w["currency"] for w in items]
        self.assertEqual(currencies, sorted(set(currencies)), "one item per currency, sorted")
        return {w["currency"]: w for w in items}

    def balance(self, session, currency="usd"):
        w = self.wallet(session).get(currency)
        return w["balance"] if w else 0

    def entries_page(self, session, query=""):
        r = self.pay_req("GET", "/v2/wallet/entries" + query, token=session.access)
        self.assertEqual(r.status, 200, r)
        self.assertJsonReply(r)
        self.assertEqual(set(r.body.keys()), {"data", "next_cursor"}, r.body)
        for e in r.body["data"]:
            self.assertEqual(set(e.keys()), ENTRY_KEYS, e)
            self.assertIsInstance(e["id"], str, e)
            self.assertRegex(e["id"], r"^[1-9][0-9]*$")
            self.assertRegex(e["transaction_id"], UUID_RE)
            self.assertIs(type(e["amount"]), int, e)
            self.assertNotEqual(e["amount"], 0, e)
            self.assertRegex(e["currency"], r"^[a-z]{3}$")
            self.assertRegex(e["created_at"], TIME_RE)
        ids = [int(e["id"]) for e in r.body["data"]]
        self.assertEqual(ids, sorted(ids, reverse=True), "entries are not newest first")
        return r.body

    def all_entries(self, session):
        page = self.entries_page(session, "?limit=100")
        self.assertIsNone(page["next_cursor"], "more than 100 entries: use the pager")
        return page["data"]

    def transfer(self, session, to, amount=100, currency="usd", key=None, body=None,
                 headers=None):
        """POST /v2/wallet/transfers as session; a fresh key unless key is given (False:
        no Idempotency-Key header at all)."""
        obj = body if body is not None else {"to_user_id": to, "amount": amount,
                                             "currency": currency}
        hdrs = dict(headers or {})
        if key is None:
            key = "t-" + uuid.uuid4().hex
        if key is not False:
            hdrs["Idempotency-Key"] = key
        return self.pay_req("POST", "/v2/wallet/transfers", json_body=obj,
                            token=session.access, headers=hdrs)

    def assertTransferJson(self, t, frm, to, amount, currency):
        self.assertEqual(set(t.keys()), TRANSFER_KEYS, t)
        self.assertRegex(t["id"], UUID_RE)
        self.assertRegex(t["created_at"], TIME_RE)
        self.assertEqual((t["from_user_id"], t["to_user_id"], t["amount"], t["currency"]),
                         (frm.id, to.id, amount, currency))
        self.assertIs(type(t["amount"]), int, t)

    # -- the books

    def books(self):
        """Everything a refused request must leave as it was."""
        return (self.stack.db.sql("SELECT id, balance FROM accounts ORDER BY id"),
                self.stack.db.scalar("SELECT count(*) FROM entries"),
                self.stack.db.scalar("SELECT count(*) FROM journal_transactions"))

    def assertBooksBalanced(self):
        """Every balance is the sum of its entries; every currency's entries sum to 0."""
        self.assertEqual(self.stack.db.sql(
            "SELECT a.id FROM accounts a LEFT JOIN (SELECT account_id, sum(amount) AS s "
            "FROM entries GROUP BY account_id) e ON e.account_id = a.id "
            "WHERE a.balance <> coalesce(e.s, 0)"), [])
        self.assertEqual(self.stack.db.sql(
            "SELECT currency FROM entries GROUP BY currency HAVING sum(amount) <> 0"), [])
        self.assertEqual(self.stack.db.sql(
            "SELECT id FROM accounts WHERE kind = 'wallet' AND balance < 0"), [])

    def assertRefused(self, r, status, code, field=harness._DEFAULT, before=None):
        b = self.assertError(r, status, code, field)
        if before is not None:
            self.assertEqual(self.books(), before, "a refused transfer changed the books")
        return b


class WalletReadTest(WalletCase):
    def test_empty_wallet_and_no_entries(self):
        s = self.session(unique_email("empty"))
        r = self.pay_req("GET", "/v2/wallet", token=s.access)
        self.assertEqual(r.status, 200, r)
        self.assertJsonReply(r)
        self.assertRequestId(r)
        self.assertEqual(r.raw, b'{"data":[]}')
        self.assertEqual(self.entries_page(s), {"data": [], "next_cursor": None})

    def test_balances_in_two_currencies(self):
        s = self.session(unique_email("two"))
        other = self.session(unique_email("bystander"))
        self.seed(other, 999, "usd")
        self.seed(s, 1500, "usd")
        self.seed(s, 700, "eur")
        self.seed(s, 500, "usd")
        w = self.wallet(s)
        self.assertEqual(list(w.keys()), ["eur", "usd"])
        self.assertEqual((w["eur"]["balance"], w["usd"]["balance"]), (700, 2000))
        entries = self.all_entries(s)
        self.assertEqual([(e["amount"], e["currency"]) for e in entries],
                         [(500, "usd"), (700, "eur"), (1500, "usd")])
        for e in entries:
            self.assertRegex(e["reference"], r"^payment:[0-9a-f-]{36}$")
        # updated_at is when the balance last moved: its newest entry.
        self.assertEqual(w["usd"]["updated_at"], entries[0]["created_at"])
        self.assertEqual(w["eur"]["updated_at"], entries[1]["created_at"])
        self.assertEqual(self.balance(other), 999)
        self.assertBooksBalanced()

    def test_updated_at_of_a_wallet_idle_behind_many_entries(self):
        s = self.session(unique_email("idle"))
        self.seed(s, 50, "gbp")
        for _ in range(105):  # more than one page of the newest entries
            self.seed(s, 1, "usd")
        w = self.wallet(s)
        self.assertEqual((w["gbp"]["balance"], w["usd"]["balance"]), (50, 105))
        first = self.stack.db.scalar(
            "SELECT to_char(e.created_at AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM entries e JOIN accounts a "
            "ON a.id = e.account_id WHERE a.owner_id = %s AND a.currency = 'gbp'" %
            sql_literal(s.id))
        self.assertEqual(w["gbp"]["updated_at"], first)

    def test_bearer_required(self):
        s = self.session(unique_email("nobearer"))
        for path in ("/v2/wallet", "/v2/wallet/entries"):
            with self.subTest(path=path):
                self.assertError(self.pay_req("GET", path), 401, "unauthenticated")
                self.assertError(self.pay_req("GET", path, token=s.refresh), 401,
                                 "unauthenticated")
                self.assertError(self.pay_req("GET", path, headers={
                    "Authorization": "Basic dXNlcjpwYXNz"}), 401, "unauthenticated")

    def test_not_on_the_v1_listener(self):
        s = self.session(unique_email("v1"))
        self.assertError(self.get("/v2/wallet", token=s.access), 404, "not_found")
        self.assertError(self.get("/v2/wallet/entries", token=s.access), 404, "not_found")
        self.assertError(self.post("/v2/wallet/transfers", {}, token=s.access), 404,
                         "not_found")

    def test_wrong_methods_405(self):
        s = self.session(unique_email("methods"))
        r = self.pay_req("POST", "/v2/wallet", json_body={}, token=s.access)
        self.assertError(r, 405, "method_not_allowed")
        self.assertIn("GET", r.header("Allow"))
        r = self.pay_req("GET", "/v2/wallet/transfers", token=s.access)
        self.assertError(r, 405, "method_not_allowed")
        self.assertIn("POST", r.header("Allow"))


class EntriesPagingTest(WalletCase):
    def test_pages_of_two_walk_every_entry_once(self):
        s = self.session(unique_email("pager"))
        for amount in (1, 2, 3, 4, 5):
            self.seed(s, amount)
        full = self.all_entries(s)
        self.assertEqual([e["amount"] for e in full], [5, 4, 3, 2, 1])
        seen, cursor = [], None
        for want in ([5, 4], [3, 2], [1]):
            page = self.entries_page(s, "?limit=2" + ("&cursor=%s" % cursor if cursor
                                                      else ""))
            self.assertEqual([e["amount"] for e in page["data"]], want)
            seen += page["data"]
            cursor = page["next_cursor"]
            if want != [1]:
                self.assertIsInstance(cursor, str)
        self.assertIsNone(cursor)
        self.assertEqual(seen, full)
        # A full last page says there is no more.
        page = self.entries_page(s, "?limit=5")
        self.assertEqual(len(page["data"]), 5)
        self.assertIsNone(page["next_cursor"])

    def test_cursor_is_stable_under_inserts(self):
        s = self.session(unique_email("stable"))
        for amount in (10, 20, 30):
            self.seed(s, amount)
        first = self.entries_page(s, "?limit=2")
        self.seed(s, 40)
        rest = self.entries_page(s, "?limit=2&cursor=%s" % first["next_cursor"])
        self.assertEqual([e["amount"] for e in rest["data"]], [10])
        self.assertIsNone(rest["next_cursor"])
        self.assertEqual([e["amount"] for e in self.entries_page(s, "?limit=1")["data"]],
                         [40])

    def test_limit_bounds(self):
        s = self.session(unique_email("limits"))
        for amount in range(1, 23):
            self.seed(s, amount)
        self.assertEqual(len(self.entries_page(s)["data"]), 20, "default limit")
        self.assertEqual(len(self.entries_page(s, "?limit=1")["data"]), 1)
        page = self.entries_page(s, "?limit=100")
        self.assertEqual(len(page["data"]), 22)
        self.assertIsNone(page["next_cursor"])
        for bad in ("0", "101", "-1", "abc", "1.5", "", "2x"):
            with self.subTest(limit=bad):
                r = self.pay_req("GET", "/v2/wallet/entries?limit=%s" % bad, token=s.access)
                self.assertError(r, 400, "invalid_request", field="limit")

    def test_bad_cursors_400(self):
        s = self.session(unique_email("cursors"))
        other = self.session(unique_email("cursor-owner"))
        for amount in (1, 2, 3):
            self.seed(s, amount)
            self.seed(other, amount)
        theirs = self.entries_page(other, "?limit=1")["next_cursor"]
        self.assertIsInstance(theirs, str)
        last_id = self.entries_page(s, "?limit=1")["data"][0]["id"]

        def raw_cursor(text):
            return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

        payments_kind = raw_cursor("p1:%s:%s:%016x" % (last_id, s.id, 0))
        zero = raw_cursor("e1:0:%s:%016x" % (s.id, 0))
        negative = raw_cursor("e1:-5:%s:%016x" % (s.id, 0))
        tagged = raw_cursor("e1:%s:%s:%016x" % (last_id, s.id, 1))
        for bad in ("garbage", "%00", "", theirs, payments_kind, zero, negative, tagged,
                    raw_cursor("e1:%s" % last_id)):
            with self.subTest(cursor=bad):
                r = self.pay_req("GET", "/v2/wallet/entries?limit=1&cursor=%s" % bad,
                                 token=s.access)
                self.assertError(r, 400, "invalid_request", field="cursor")
        # The same text made for this user works: the refusals above are about content.
        mine = raw_cursor("e1:%s:%s:%016x" % (last_id, s.id, 0))
        page = self.entries_page(s, "?limit=1&cursor=%s" % mine)
        self.assertEqual([e["amount"] for e in page["data"]], [2])


class TransferTest(WalletCase):
    def setUp(self):
        super().setUp()
        self.a = self.session(unique_email("payer"))
        self.b = self.session(unique_email("payee"))

    def test_transfer_moves_money_through_the_ledger(self):
        self.seed(self.a, 5000, "usd")
        self.seed(self.b, 100, "eur")
        r = self.transfer(self.a, self.b.id, 1250, "USD")
        self.assertEqual(r.status, 201, r)
        self.assertJsonReply(r)
        self.assertRequestId(r)
        self.assertIsNone(r.header("Idempotent-Replayed"))
        t = r.body
        self.assertTransferJson(t, self.a, self.b, 1250, "usd")
        wa, wb = self.wallet(self.a), self.wallet(self.b)
        self.assertEqual(wa["usd"]["balance"], 3750)
        self.assertEqual((wb["usd"]["balance"], wb["eur"]["balance"]), (1250, 100))
        self.assertEqual(wa["usd"]["updated_at"], t["created_at"])
        self.assertEqual(wb["usd"]["updated_at"], t["created_at"])
        ea, eb = self.all_entries(self.a), self.all_entries(self.b)
        self.assertEqual(len(ea), 2)
        self.assertEqual(len(eb), 2)
        for e, amount in ((ea[0], -1250), (eb[0], 1250)):
            self.assertEqual((e["transaction_id"], e["amount"], e["currency"],
                              e["reference"], e["created_at"]),
                             (t["id"], amount, "usd", "transfer:%s" % t["id"],
                              t["created_at"]))
        self.assertNotEqual(ea[0]["id"], eb[0]["id"])
        rows = self.stack.db.sql(
            "SELECT a.kind, a.owner_id, e.amount FROM entries e JOIN accounts a "
            "ON a.id = e.account_id WHERE e.transaction_id = %s ORDER BY e.id" %
            sql_literal(t["id"]))
        self.assertEqual(rows, [["wallet", self.a.id, "-1250"], ["wallet", self.b.id, "1250"]])
        self.assertBooksBalanced()

    def test_whole_balance_and_largest_amount(self):
        self.seed(self.a, 99999999, "jpy")
        r = self.transfer(self.a, self.b.id, 99999999, "jpy")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.wallet(self.a)["jpy"]["balance"], 0, "an emptied wallet stays")
        self.assertEqual(self.balance(self.b, "jpy"), 99999999)
        r = self.transfer(self.b, self.a.id.upper(), 1, "jpy")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.body["to_user_id"], self.a.id, "ids are answered in lower case")
        self.assertBooksBalanced()

    def test_insufficient_funds_409_moves_nothing(self):
        self.seed(self.a, 100, "usd")
        before = self.books()
        for amount, currency in ((101, "usd"), (1, "eur")):
            with self.subTest(amount=amount, currency=currency):
                r = self.transfer(self.a, self.b.id, amount, currency)
                self.assertRefused(r, 409, "insufficient_funds", before=before)
        self.assertEqual(list(self.wallet(self.a).keys()), ["usd"])
        self.assertEqual(self.wallet(self.b), {}, "a refused transfer opened a wallet")
        # A payee who never held anything can still not pay.
        r = self.transfer(self.b, self.a.id, 1, "usd")
        self.assertRefused(r, 409, "insufficient_funds", before=before)
        r = self.transfer(self.a, self.b.id, 100, "usd")
        self.assertEqual(r.status, 201, r)
        self.assertEqual((self.balance(self.a), self.balance(self.b)), (0, 100))
        self.assertRefused(self.transfer(self.a, self.b.id, 1, "usd"), 409,
                           "insufficient_funds")
        self.assertBooksBalanced()

    def test_failed_request_is_not_remembered_under_its_key(self):
        key = "retry-" + uuid.uuid4().hex
        r = self.transfer(self.a, self.b.id, 300, "usd", key=key)
        self.assertRefused(r, 409, "insufficient_funds")
        self.seed(self.a, 300)
        r = self.transfer(self.a, self.b.id, 300, "usd", key=key)
        self.assertEqual(r.status, 201, r)
        self.assertEqual((self.balance(self.a), self.balance(self.b)), (0, 300))

    def test_bearer_required(self):
        self.seed(self.a, 1000)
        before = self.books()
        body = {"to_user_id": self.b.id, "amount": 10, "currency": "usd"}
        for hdrs in ({}, {"Authorization": "Bearer " + self.a.refresh},
                     {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer x"}):
            with self.subTest(auth=sorted(hdrs)):
                hdrs = dict(hdrs, **{"Idempotency-Key": "k-" + uuid.uuid4().hex})
                r = self.pay_req("POST", "/v2/wallet/transfers", json_body=body,
                                 headers=hdrs)
                self.assertRefused(r, 401, "unauthenticated", before=before)


class TransferValidationTest(WalletCase):
    def setUp(self):
        super().setUp()
        self.a = self.session(unique_email("checker"))
        self.b = self.session(unique_email("checked"))
        self.seed(self.a, 10**6, "usd")
        self.seed(self.a, 10**6, "eur")
        self.before = self.books()

    def body(self, **kw):
        b = {"to_user_id": self.b.id, "amount": 100, "currency": "usd"}
        b.update(kw)
        return {k: v for k, v in b.items() if v is not Ellipsis}

    def assertRejected(self, body, field, key=None, status=400, code="invalid_request"):
        r = self.transfer(self.a, None, body=body, key=key)
        return self.assertRefused(r, status, code, field=field, before=self.before)

    def test_bad_amount_400(self):
        for amount in (0, -1, -100, 1.5, 10.0, "10", "", True, None, [10], {"v": 10},
                       100000000, 10**12, 2**63 - 1, -(2**63)):
            with self.subTest(amount=amount):
                self.assertRejected(self.body(amount=amount), "amount")
        with self.subTest(amount="missing"):
            self.assertRejected(self.body(amount=...), "amount")
        with self.subTest(amount="beyond 64 bits"):
            self.assertRejected(self.body(amount=10**30), "body")

    def test_bad_currency_400(self):
        for currency in ("kwd", "xxx", "us", "usdd", "", "u$d", " usd", 840, None, ["usd"]):
            with self.subTest(currency=currency):
                self.assertRejected(self.body(currency=currency), "currency")
        with self.subTest(currency="missing"):
            self.assertRejected(self.body(currency=...), "currency")

    def test_bad_recipient_400(self):
        for to in ("abc", "", 123, None, [self.b.id], self.b.id + "0", self.b.id[:-1],
                   self.b.id.replace("-", "")):
            with self.subTest(to=to):
                self.assertRejected(self.body(to_user_id=to), "to_user_id")
        with self.subTest(to="missing"):
            self.assertRejected(self.body(to_user_id=...), "to_user_id")

    def test_self_transfer_400(self):
        for to in (self.a.id, self.a.id.upper()):
            with self.subTest(to=to):
                b = self.assertRejected(self.body(to_user_id=to), "to_user_id")
                self.assertIn("own", b["error"])

    def test_unknown_or_deleted_recipient_404(self):
        self.assertRejected(self.body(to_user_id=str(uuid.uuid4())), "to_user_id",
                            status=404, code="not_found")
        gone = self.session(unique_email("gone"))
        self.assertEqual(self.transfer(self.a, gone.id, 1).status, 201)
        self.before = self.books()
        self.assertEqual(self.get("/v1/users/%s" % gone.id, token=gone.access).status, 200)
        with self.redis() as rc:
            cached = rc.cmd("GET", self.cache_key(gone.id))
        self.assertIsNotNone(cached, "reading the user did not cache it")
        self.assertEqual(self.delete("/v1/users", token=gone.access).status, 204)
        # A reader racing the delete can put the user back into the cache: the recipient
        # check must read the database.
        with self.redis() as rc:
            self.assertEqual(rc.cmd("SET", self.cache_key(gone.id), cached, "EX", 300), "OK")
        self.assertRejected(self.body(to_user_id=gone.id), "to_user_id", status=404,
                            code="not_found")

    def test_missing_or_bad_idempotency_key_400(self):
        self.assertRejected(self.body(), "idempotency_key", key=False)
        for key in ("", "a b", "a\tb", "a\x7fb", "k" * (KEY_MAX + 1), "k" * 256):
            with self.subTest(key=key[:12]):
                self.assertRejected(self.body(), "idempotency_key", key=key)
        r = self.transfer(self.a, self.b.id, 5, key="K" * KEY_MAX)
        self.assertEqual(r.status, 201, r)

    def test_checks_run_in_order(self):
        self.assertRejected({"to_user_id": "x", "amount": 0, "currency": "xxx"},
                            "to_user_id", key=False)
        self.assertRejected({"to_user_id": self.a.id, "amount": 0, "currency": "xxx"},
                            "to_user_id", key=False)
        self.assertRejected({"to_user_id": str(uuid.uuid4()), "amount": 0,
                             "currency": "xxx"}, "amount", key=False)
        self.assertRejected({"to_user_id": str(uuid.uuid4()), "amount": 5,
                             "currency": "xxx"}, "currency", key=False)
        self.assertRejected({"to_user_id": str(uuid.uuid4()), "amount": 10**7,
                             "currency": "usd"}, "idempotency_key", key=False)
        # A valid request to nobody is 404 before funds are looked at.
        self.assertRejected({"to_user_id": str(uuid.uuid4()), "amount": 10**7,
                             "currency": "gbp"}, "to_user_id", status=404, code="not_found")

    def test_body_must_be_a_json_object(self):
        for raw in (b"[]", b"42", b'"x"', b"null", b'{"amount": 1', b'{"a":1,"a":2}'):
            with self.subTest(body=raw):
                r = self.pay_req("POST", "/v2/wallet/transfers", body=raw,
                                 token=self.a.access, headers={"Idempotency-Key": "k1"})
                self.assertRefused(r, 400, "invalid_request", field="body",
                                   before=self.before)
        r = self.pay_req("POST", "/v2/wallet/transfers", body=b'{"to_user_id":"x"}',
                         token=self.a.access, content_type="text/plain",
                         headers={"Idempotency-Key": "k2"})
        self.assertRefused(r, 415, "unsupported_media_type", before=self.before)

    def test_unknown_fields_ignored(self):
        body = self.body(from_user_id=self.b.id, id=str(uuid.uuid4()), note="hi")
        r = self.transfer(self.a, None, body=body)
        self.assertEqual(r.status, 201, r)
        self.assertTransferJson(r.body, self.a, self.b, 100, "usd")
        self.assertNotEqual(r.body["id"], body["id"])


class TransferIdempotencyTest(WalletCase):
    def setUp(self):
        super().setUp()
        self.a = self.session(unique_email("idem-a"))
        self.b = self.session(unique_email("idem-b"))
        self.c = self.session(unique_email("idem-c"))
        self.seed(self.a, 10000, "usd")
        self.seed(self.a, 10000, "eur")

    def transfer_count(self, session):
        return int(self.stack.db.scalar(
            "SELECT count(*) FROM journal_transactions WHERE idempotency_key LIKE %s" %
            sql_literal("transfer:%s:%%" % session.id)))

    def test_same_key_same_body_replays_the_same_bytes(self):
        key = "pay-" + uuid.uuid4().hex
        r1 = self.transfer(self.a, self.b.id, 700, "usd", key=key)
        self.assertEqual(r1.status, 201, r1)
        self.assertIsNone(r1.header("Idempotent-Replayed"))
        for _ in range(2):
            r2 = self.transfer(self.a, self.b.id, 700, "usd", key=key)
            self.assertEqual(r2.status, 201, r2)
            self.assertJsonReply(r2)
            self.assertEqual(r2.header("Idempotent-Replayed"), "true")
            self.assertEqual(r2.raw, r1.raw)
        # The same parameters in another layout are the same body.
        r3 = self.pay_req("POST", "/v2/wallet/transfers", token=self.a.access,
                          headers={"Idempotency-Key": key},
                          body='{ "currency": "usd", "amount": 700, "to_user_id": "%s" }' %
                          self.b.id)
        self.assertEqual(r3.raw, r1.raw)
        self.assertEqual((self.balance(self.a), self.balance(self.b)), (9300, 700))
        self.assertEqual(self.transfer_count(self.a), 1)
        self.assertEqual(len(self.all_entries(self.b)), 1)

    def test_the_ledger_dedupes_when_the_stored_answer_is_gone(self):
        key = "old-" + uuid.uuid4().hex
        r1 = self.transfer(self.a, self.b.id, 250, "eur", key=key)
        self.assertEqual(r1.status, 201, r1)
        # As after 24 h: the HTTP answer is forgotten, the ledger still knows the key.
        self.stack.db.sql("DELETE FROM idempotency_keys WHERE user_id = %s" %
                          sql_literal(self.a.id))
        for currency in ("eur", "EUR"):
            r2 = self.transfer(self.a, self.b.id, 250, currency, key=key)
            self.assertEqual(r2.status, 201, r2)
            self.assertEqual(r2.raw, r1.raw)
        self.assertEqual(self.balance(self.b, "eur"), 250)
        self.assertEqual(self.transfer_count(self.a), 1)
        r = self.transfer(self.a, self.b.id, 251, "eur", key=key)
        self.assertRefused(r, 409, "idempotency_key_reused")

    def test_same_key_other_body_409_moves_nothing(self):
        key = "reuse-" + uuid.uuid4().hex
        r1 = self.transfer(self.a, self.b.id, 300, "usd", key=key)
        self.assertEqual(r1.status, 201, r1)
        before = self.books()
        for other in ({"to_user_id": self.b.id, "amount": 301, "currency": "usd"},
                      {"to_user_id": self.c.id, "amount": 300, "currency": "usd"},
                      {"to_user_id": self.b.id, "amount": 300, "currency": "eur"}):
            with self.subTest(body=other):
                r = self.transfer(self.a, None, body=other, key=key)
                self.assertRefused(r, 409, "idempotency_key_reused", before=before)
        again = self.transfer(self.a, self.b.id, 300, "usd", key=key)
        self.assertEqual(again.raw, r1.raw)
        self.assertEqual((self.balance(self.a), self.balance(self.b), self.balance(self.c)),
                         (9700, 300, 0))

    def test_keys_belong_to_the_payer(self):
        key = "shared-" + uuid.uuid4().hex
        r1 = self.transfer(self.a, self.b.id, 400, "usd", key=key)
        self.assertEqual(r1.status, 201, r1)
        r2 = self.transfer(self.b, self.a.id, 150, "usd", key=key)
        self.assertEqual(r2.status, 201, r2)
        self.assertNotEqual(r2.body["id"], r1.body["id"])
        self.assertEqual((self.balance(self.a), self.balance(self.b)), (9750, 250))

    def test_concurrent_duplicates_move_money_once(self):
        key = "race-" + uuid.uuid4().hex
        results, lock = [], threading.Lock()
        start = threading.Barrier(6)

        def post():
            start.wait()
            r = self.transfer(self.a, self.b.id, 900, "usd", key=key)
            with lock:
                results.append(r)

        threads = [threading.Thread(target=post) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 6)
        for r in results:
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.body, results[0].body)
        self.assertEqual((self.balance(self.a), self.balance(self.b)), (9100, 900))
        self.assertEqual(self.transfer_count(self.a), 1)
        self.assertBooksBalanced()


class ConcurrentTransfersTest(WalletCase):
    def test_forty_transfers_both_ways_conserve_the_money(self):
        a = self.session(unique_email("race-a"))
        b = self.session(unique_email("race-b"))
        self.seed(a, 10000)
        self.seed(b, 10000)
        # Amounts large enough that some transfers must find the wallet short.
        plan = [(a, b, 300 + 97 * i) if i % 2 == 0 else (b, a, 250 + 89 * i)
                for i in range(40)]
        results = [None] * len(plan)
        start = threading.Barrier(len(plan))

        def post(i):
            frm, to, amount = plan[i]
            start.wait()
            try:
                results[i] = self.transfer(frm, to.id, amount, "usd")
            except Exception as e:  # noqa: BLE001 - reported below
                results[i] = e

        threads = [threading.Thread(target=post, args=(i,)) for i in range(len(plan))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        moved = {a.id: 0, b.id: 0}
        done = 0
        for (frm, to, amount), r in zip(plan, results):
            self.assertIsInstance(r, harness.Response, r)
            self.assertIn(r.status, (201, 409), r)
            if r.status == 409:
                self.assertEqual(r.body["code"], "insufficient_funds", r)
                continue
            done += 1
            self.assertTransferJson(r.body, frm, to, amount, "usd")
            moved[frm.id] -= amount
            moved[to.id] += amount
        self.assertGreater(done, 0)
        ba, bb = self.balance(a), self.balance(b)
        self.assertEqual(ba + bb, 20000, "money was created or lost")
        self.assertEqual((ba, bb), (10000 + moved[a.id], 10000 + moved[b.id]))
        for s, bal in ((a, ba), (b, bb)):
            entries = self.all_entries(s)
            self.assertEqual(sum(e["amount"] for e in entries), bal)
            self.assertEqual(len(entries), 1 + done)
        self.assertBooksBalanced()
        self.assertFalse(re.search(r'"level":"error"', self.stack.hexd.log()),
                         "hexd logged an error")


if __name__ == "__main__":
    harness.main()
