#!/usr/bin/env python3
"""/v1/messages: every route, the ownership rules for users and admins, each error status,
filters (user_id, q, since, until), and keyset pagination under concurrent inserts."""

import datetime
import json
import os
import sys
import threading
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import TIME_RE, UUID_RE, HexCase, sql_literal  # noqa: E402

MESSAGE_KEYS = {"id", "user_id", "body", "created_at", "updated_at"}
WRONG_TYPES = [7, 1.5, None, True, False, [], ["hi"], {}, {"text": "hi"}]


def qs(path="/v1/messages", **params):
    return path + "?" + urllib.parse.urlencode(params) if params else path


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


def allow_set(r):
    return {m.strip() for m in (r.header("Allow") or "").split(",") if m.strip()}


class MessagesCase(HexCase):
    """Helpers shared by the message test classes."""

    def admin(self):
        if not hasattr(type(self), "_admin"):
            type(self)._admin = self.admin_session()
        return type(self)._admin

    def assertMessageJson(self, m, body=None, user_id=None):
        self.assertIsInstance(m, dict, m)
        self.assertEqual(set(m.keys()), MESSAGE_KEYS, m)
        self.assertRegex(m["id"], UUID_RE)
        self.assertRegex(m["user_id"], UUID_RE)
        self.assertIsInstance(m["body"], str)
        self.assertRegex(m["created_at"], TIME_RE)
        self.assertRegex(m["updated_at"], TIME_RE)
        if body is not None:
            self.assertEqual(m["body"], body)
        if user_id is not None:
            self.assertEqual(m["user_id"], user_id)

    def create(self, s, body="hello", expect=201):
        r = self.post("/v1/messages", {"body": body}, token=s.access)
        self.assertEqual(r.status, expect, r)
        if expect == 201:
            self.assertMessageJson(r.body, body=body, user_id=s.id)
        return r.body

    def message_row(self, message_id):
        cols = ["id", "user_id", "body"]
        rows = self.stack.db.sql("SELECT %s FROM messages WHERE id = %s" %
                                 (", ".join(cols), sql_literal(message_id)))
        return dict(zip(cols, rows[0])) if rows else None

    def message_count(self, user_id=None):
        where = " WHERE user_id = %s" % sql_literal(user_id) if user_id else ""
        return int(self.stack.db.scalar("SELECT count(*) FROM messages" + where))

    def list_ok(self, token, **params):
        r = self.get(qs(**params), token=token)
        self.assertEqual(r.status, 200, r)
        self.assertJsonReply(r)
        self.assertEqual(set(r.body.keys()), {"data", "next_cursor"}, r.body)
        for m in r.body["data"]:
            self.assertMessageJson(m)
        nc = r.body["next_cursor"]
        self.assertTrue(nc is None or (isinstance(nc, str) and nc), nc)
        return r.body

    def walk(self, token, between_pages=None, **params):
        """Every page of a listing; returns (messages, pages)."""
        seen, pages, cursor = [], 0, None
        while True:
            p = dict(params)
            if cursor:
                p["cursor"] = cursor
            b = self.list_ok(token, **p)
            pages += 1
            seen.extend(b["data"])
            cursor = b["next_cursor"]
            if cursor is None:
                return seen, pages
            self.assertEqual(len(b["data"]), int(params.get("limit", 20)),
                             "short page before the end")
            self.assertLess(pages, 500, "pagination does not end")
            if between_pages:
                between_pages(pages)

    def ids_in_db(self, user_id=None):
        """Message ids newest first, in the list order, straight from the database."""
        where = " WHERE user_id = %s" % sql_literal(user_id) if user_id else ""
        return [r[0] for r in self.stack.db.sql(
            "SELECT id FROM messages%s ORDER BY created_at DESC, id DESC" % where)]


class CreateMessageTest(MessagesCase):
    def test_create_201_shape_location_and_owner_from_token(self):
        s, other = self.session(), self.session()
        text = "Grüße, 東京 \U0001F600 \"quoted\" \\ new\nline"
        forged_id = str(uuid.uuid4())
        r = self.post("/v1/messages", {"body": text, "user_id": other.id, "id": forged_id,
                                       "created_at": "2000-01-01T00:00:00Z"},
                      token=s.access)
        self.assertEqual(r.status, 201, r)
        self.assertJsonReply(r)
        self.assertRequestId(r)
        m = r.body
        self.assertMessageJson(m, body=text, user_id=s.id)
        self.assertNotEqual(m["id"], forged_id)
        self.assertEqual(m["created_at"], m["updated_at"])
        age = datetime.datetime.now(datetime.timezone.utc) - parse_time(m["created_at"])
        self.assertLess(abs(age.total_seconds()), 60)
        self.assertEqual(r.header("Location"), "/v1/messages/%s" % m["id"])
        row = self.message_row(m["id"])
        self.assertEqual(row, {"id": m["id"], "user_id": s.id, "body": text})
        self.assertEqual(self.message_count(other.id), 0)

    def test_raw_utf8_body_round_trips(self):
        s = self.session()
        text = "naïve café — ünïcödé ✓"
        r = self.post("/v1/messages", body=json.dumps({"body": text},
                                                      ensure_ascii=False).encode(),
                      token=s.access)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.body["body"], text)
        g = self.get("/v1/messages/%s" % r.body["id"], token=s.access)
        self.assertEqual(g.body["body"], text)

    def test_body_length_counts_characters_not_bytes(self):
        s = self.session()
        for unit in ["a", "ü", "€", "\U0001F600"]:
            with self.subTest(unit=unit):
                before = self.message_count(s.id)
                self.create(s, unit * 10000)
                r = self.post("/v1/messages", {"body": unit * 10001}, token=s.access)
                self.assertError(r, 400, "invalid_request", field="body")
                self.assertEqual(self.message_count(s.id), before + 1)
        # 9999 characters plus one astral one is still 10000.
        self.create(s, "a" * 9999 + "\U0001F600")

    def test_empty_blank_missing_or_mistyped_body_400(self):
        s = self.session()
        cases = [{"body": ""}, {"body": " "}, {"body": "\n\t "}, {}, {"text": "hi"}]
        cases += [{"body": v} for v in WRONG_TYPES]
        for body in cases:
            with self.subTest(body=body):
                r = self.post("/v1/messages", body, token=s.access)
                self.assertError(r, 400, "invalid_request", field="body")
        for raw in [b"", b"[]", b"\"hi\"", b"{", b"{\"body\": \"a\\u0000b\"}",
                    b"{\"body\": \"\\ud800\"}", b"{\"body\": \"\xff\"}",
                    b"{\"body\": \"a\", \"body\": \"b\"}"]:
            with self.subTest(raw=raw):
                r = self.post("/v1/messages", body=raw, token=s.access)
                self.assertError(r, 400, "invalid_request", field="body")
        self.assertEqual(self.message_count(s.id), 0)

    def test_create_requires_a_bearer_access_token_401(self):
        s = self.session()
        before = self.message_count()
        for token in [None, s.refresh, "garbage", s.access + "x"]:
            with self.subTest(token=(token or "")[:12]):
                r = self.post("/v1/messages", {"body": "hi"}, token=token)
                self.assertError(r, 401, "unauthenticated")
        r = self.post("/v1/messages", {"body": "hi"}, headers={"Authorization": "Basic abc"})
        self.assertError(r, 401, "unauthenticated")
        self.assertEqual(self.message_count(), before)

    def test_create_without_json_content_type_415(self):
        s = self.session()
        before = self.message_count()
        for ct in [None, "text/plain", "application/x-www-form-urlencoded"]:
            with self.subTest(content_type=ct):
                r = self.req("POST", "/v1/messages", body=json.dumps({"body": "hi"}),
                             token=s.access, content_type=ct)
                self.assertError(r, 415, "unsupported_media_type")
        self.assertEqual(self.message_count(), before)

    def test_create_after_logout_or_user_deletion_401(self):
        s = self.session()
        before = self.message_count()
        self.assertEqual(self.post("/v1/logout", token=s.access).status, 204)
        self.assertError(self.post("/v1/messages", {"body": "hi"}, token=s.access), 401,
                         "unauthenticated")
        t = self.session()
        self.assertEqual(self.delete("/v1/users", token=t.access).status, 204)
        self.assertError(self.post("/v1/messages", {"body": "hi"}, token=t.access), 401,
                         "unauthenticated")
        self.assertEqual(self.message_count(), before)


class MessageByIdTest(MessagesCase):
    def test_owner_and_admin_read_others_are_forbidden(self):
        owner, other = self.session(), self.session()
        m = self.create(owner, "secret plans")
        for who in [owner, self.admin()]:
            with self.subTest(reader=who.email):
                r = self.get("/v1/messages/%s" % m["id"], token=who.access)
                self.assertEqual(r.status, 200, r)
                self.assertJsonReply(r)
                self.assertEqual(r.body, m)
        r = self.get("/v1/messages/%s" % m["id"], token=other.access)
        self.assertError(r, 403, "forbidden")
        self.assertNotIn(b"secret plans", r.raw)
        self.assertError(self.get("/v1/messages/%s" % m["id"]), 401, "unauthenticated")

    def test_unknown_and_malformed_ids_404(self):
        s = self.session()
        m = self.create(s)
        for mid in [str(uuid.uuid4()), "not-a-uuid", "1", m["id"] + "0", m["id"][:-1],
                    "%27%3B%20DROP%20TABLE%20messages%3B--", "%00"]:
            for who in [s, self.admin()]:
                with self.subTest(id=mid, who=who.email):
                    r = self.get("/v1/messages/%s" % mid, token=who.access)
                    self.assertError(r, 404, "not_found")
                    r = self.put("/v1/messages/%s" % mid, {"body": "x"}, token=who.access)
                    self.assertError(r, 404, "not_found")
                    r = self.delete("/v1/messages/%s" % mid, token=who.access)
                    self.assertError(r, 404, "not_found")
        # The upper-case spelling of an id is the same message.
        r = self.get("/v1/messages/%s" % m["id"].upper(), token=s.access)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.message_count(s.id), 1)
        self.assertEqual(self.message_row(m["id"])["body"], "hello")

    def test_put_by_owner_changes_only_the_body(self):
        s, other = self.session(), self.session()
        m = self.create(s, "first")
        r = self.put("/v1/messages/%s" % m["id"],
                     {"body": "second", "user_id": other.id, "id": str(uuid.uuid4()),
                      "created_at": "2000-01-01T00:00:00Z"}, token=s.access)
        self.assertEqual(r.status, 200, r)
        self.assertJsonReply(r)
        u = r.body
        self.assertMessageJson(u, body="second", user_id=s.id)
        self.assertEqual(u["id"], m["id"])
        self.assertEqual(u["created_at"], m["created_at"])
        self.assertGreater(parse_time(u["updated_at"]), parse_time(m["updated_at"]))
        self.assertEqual(self.get("/v1/messages/%s" % m["id"], token=s.access).body, u)
        self.assertEqual(self.message_row(m["id"])["user_id"], s.id)

    def test_put_is_for_the_owner_only_admins_included_403(self):
        s, other = self.session(), self.session()
        m = self.create(s, "original")
        for who in [other, self.admin()]:
            with self.subTest(who=who.email):
                r = self.put("/v1/messages/%s" % m["id"], {"body": "hijacked"},
                             token=who.access)
                self.assertError(r, 403, "forbidden")
        self.assertEqual(self.message_row(m["id"])["body"], "original")
        # An admin edits its own messages like anyone else.
        mine = self.create(self.admin(), "admin note")
        r = self.put("/v1/messages/%s" % mine["id"], {"body": "admin note 2"},
                     token=self.admin().access)
        self.assertEqual(r.status, 200, r)

    def test_put_bad_bodies_400_415_401_change_nothing(self):
        s = self.session()
        m = self.create(s, "keep")
        path = "/v1/messages/%s" % m["id"]
        for body in [{}, {"body": ""}, {"body": "   "}, {"body": "x" * 10001}] + \
                [{"body": v} for v in WRONG_TYPES]:
            with self.subTest(body=str(body)[:40]):
                self.assertError(self.put(path, body, token=s.access), 400,
                                 "invalid_request", field="body")
        self.assertError(self.req("PUT", path, body=b"[1]", token=s.access), 400,
                         "invalid_request", field="body")
        self.assertError(self.req("PUT", path, body=b'{"body":"x"}', token=s.access,
                                  content_type="text/plain"), 415, "unsupported_media_type")
        self.assertError(self.put(path, {"body": "x"}), 401, "unauthenticated")
        self.assertError(self.put(path, {"body": "x"}, token=s.refresh), 401,
                         "unauthenticated")
        self.assertEqual(self.message_row(m["id"])["body"], "keep")

    def test_delete_by_owner_or_admin_204_others_403(self):
        s, other = self.session(), self.session()
        a, b = self.create(s, "a"), self.create(s, "b")
        r = self.delete("/v1/messages/%s" % a["id"], token=other.access)
        self.assertError(r, 403, "forbidden")
        self.assertError(self.delete("/v1/messages/%s" % a["id"]), 401, "unauthenticated")
        self.assertIsNotNone(self.message_row(a["id"]))
        r = self.delete("/v1/messages/%s" % a["id"], token=s.access)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.raw, b"")
        self.assertRequestId(r)
        self.assertIsNone(self.message_row(a["id"]))
        self.assertError(self.get("/v1/messages/%s" % a["id"], token=s.access), 404,
                         "not_found")
        self.assertError(self.delete("/v1/messages/%s" % a["id"], token=s.access), 404,
                         "not_found")
        r = self.delete("/v1/messages/%s" % b["id"], token=self.admin().access)
        self.assertEqual(r.status, 204, r)
        self.assertIsNone(self.message_row(b["id"]))

    def test_wrong_methods_405_with_allow(self):
        s = self.session()
        m = self.create(s)
        cases = [("PATCH", "/v1/messages/%s" % m["id"], {"GET", "PUT", "DELETE"}),
                 ("POST", "/v1/messages/%s" % m["id"], {"GET", "PUT", "DELETE"}),
                 ("PUT", "/v1/messages", {"GET", "POST"}),
                 ("DELETE", "/v1/messages", {"GET", "POST"}),
                 ("PATCH", "/v1/messages", {"GET", "POST"})]
        for method, path, allow in cases:
            with self.subTest(method=method, path=path):
                body = b"{}" if method in ("POST", "PUT", "PATCH") else None
                r = self.req(method, path, body=body, token=s.access)
                self.assertError(r, 405, "method_not_allowed")
                self.assertEqual(allow_set(r), allow)
        self.assertError(self.get("/v1/messages/a/b", token=s.access), 404, "not_found")
        self.assertIsNotNone(self.message_row(m["id"]))

    def test_deleting_a_user_deletes_its_messages(self):
        s, other = self.session(), self.session()
        mine = [self.create(s, "mine %d" % i)["id"] for i in range(3)]
        theirs = self.create(other, "theirs")
        self.assertEqual(self.delete("/v1/users", token=s.access).status, 204)
        self.assertEqual(self.message_count(s.id), 0)
        for mid in mine:
            self.assertError(self.get("/v1/messages/%s" % mid, token=self.admin().access),
                             404, "not_found")
        r = self.get("/v1/messages/%s" % theirs["id"], token=other.access)
        self.assertEqual(r.status, 200, r)


class ListMessagesTest(MessagesCase):
    def test_list_own_newest_first_default_limit_20(self):
        s, other = self.session(), self.session()
        self.create(other, "not mine")
        made = [self.create(s, "m%d" % i)["id"] for i in range(23)]
        b = self.list_ok(s.access)
        self.assertEqual([m["id"] for m in b["data"]], list(reversed(made))[:20])
        self.assertTrue(all(m["user_id"] == s.id for m in b["data"]))
        self.assertIsNotNone(b["next_cursor"])
        b = self.list_ok(s.access, cursor=b["next_cursor"])
        self.assertEqual([m["id"] for m in b["data"]], list(reversed(made))[20:])
        self.assertIsNone(b["next_cursor"])
        # Naming oneself, in any case, is the same listing.
        b = self.list_ok(s.access, user_id=s.id.upper(), limit=100)
        self.assertEqual(len(b["data"]), 23)

    def test_empty_list(self):
        s = self.session()
        self.assertEqual(self.list_ok(s.access), {"data": [], "next_cursor": None})

    def test_another_users_messages_are_for_admins(self):
        s, other = self.session(), self.session()
        theirs = self.create(other, "theirs")
        self.create(s, "mine")
        r = self.get(qs(user_id=other.id), token=s.access)
        self.assertError(r, 403, "forbidden")
        self.assertNotIn(b"theirs", r.raw)
        b = self.list_ok(self.admin().access, user_id=other.id)
        self.assertEqual([m["id"] for m in b["data"]], [theirs["id"]])
        # Without user_id an admin sees everyone's messages.
        b = self.list_ok(self.admin().access, limit=100)
        self.assertEqual([m["id"] for m in b["data"]], self.ids_in_db()[:100])
        self.assertIn(theirs["id"], [m["id"] for m in b["data"]])
        self.assertEqual(self.list_ok(self.admin().access, user_id=str(uuid.uuid4()))["data"],
                         [])

    def test_bad_parameters_400_naming_them(self):
        s = self.session()
        cases = [("limit", "0"), ("limit", "101"), ("limit", "-1"), ("limit", "abc"),
                 ("limit", ""), ("limit", "1.5"), ("limit", "99999999999999999999"),
                 ("user_id", ""), ("user_id", "me"), ("user_id", "1234"),
                 ("q", "x" * 257), ("q", "ж" * 257),
                 ("since", "yesterday"), ("since", ""), ("since", "2026-01-01"),
                 ("since", "2026-01-01T00:00:00"), ("since", "2026-13-01T00:00:00Z"),
                 ("since", "2026-02-29T00:00:00Z"), ("since", "2026-01-01T24:00:00Z"),
                 ("since", "2026-01-01T00:00:60Z"), ("since", "1767225600"),
                 ("since", "2026-01-01T00:00:00.Z"), ("since", "2026-01-01T00:00:00+2400"),
                 ("until", "2026-01-01T00:00:00+24:00"), ("until", "not a time"),
                 ("until", "2026-01-01T00:00:00Zjunk"),
                 ("cursor", "garbage!!"), ("cursor", "AAAA"), ("cursor", "x" * 2000),
                 ("cursor", str(uuid.uuid4()))]
        for name, value in cases:
            with self.subTest(param=name, value=value[:30]):
                r = self.get(qs(**{name: value}), token=s.access)
                self.assertError(r, 400, "invalid_request", field=name)
        r = self.get(qs(since="2026-01-02T00:00:00Z", until="2026-01-01T00:00:00Z"),
                     token=s.access)
        self.assertError(r, 400, "invalid_request", field="since")
        for limit in ["1", "100"]:
            self.list_ok(s.access, limit=limit)
        self.assertError(self.get("/v1/messages"), 401, "unauthenticated")

    def test_cursors_are_tied_to_their_listing(self):
        s, t = self.session(), self.session()
        for i in range(3):
            self.create(s, "lunch %d" % i)
        first = self.list_ok(s.access, q="lunch", limit=1)
        cursor = first["next_cursor"]
        self.assertIsNotNone(cursor)
        self.assertEqual(len(self.list_ok(s.access, q="lunch", limit=5, cursor=cursor)["data"]),
                         2)
        for params in [{}, {"q": "dinner"}, {"q": "lunch", "since": "2000-01-01T00:00:00Z"}]:
            with self.subTest(params=params):
                r = self.get(qs(cursor=cursor, **params), token=s.access)
                self.assertError(r, 400, "invalid_request", field="cursor")
        # Someone else replaying it, and a cursor of the user list, are refused too.
        self.assertError(self.get(qs(cursor=cursor, q="lunch"), token=t.access), 400,
                         "invalid_request", field="cursor")
        r = self.get("/v1/users?limit=1", token=self.admin().access)
        self.assertEqual(r.status, 200, r)
        self.assertIsNotNone(r.body["next_cursor"])
        self.assertError(self.get(qs(cursor=r.body["next_cursor"]), token=s.access), 400,
                         "invalid_request", field="cursor")

    def test_since_and_until(self):
        s = self.session()
        made = [self.create(s, "t%d" % i) for i in range(5)]
        at = [m["created_at"] for m in made]
        # since is inclusive, until exclusive.
        b = self.list_ok(s.access, since=at[1], until=at[3])
        self.assertEqual([m["body"] for m in b["data"]], ["t2", "t1"])
        b = self.list_ok(s.access, since=at[3])
        self.assertEqual([m["body"] for m in b["data"]], ["t4", "t3"])
        b = self.list_ok(s.access, until=at[1])
        self.assertEqual([m["body"] for m in b["data"]], ["t0"])
        self.assertEqual(self.list_ok(s.access, since=at[2], until=at[2])["data"], [])
        # The same instants in another offset and spelling mean the same.
        t1 = parse_time(at[1]).astimezone(datetime.timezone(datetime.timedelta(hours=5,
                                                                               minutes=30)))
        t3 = parse_time(at[3]).astimezone(datetime.timezone(datetime.timedelta(hours=-8)))
        b = self.list_ok(s.access, since=t1.isoformat(timespec="microseconds"),
                         until=t3.isoformat(timespec="microseconds").replace("T", "t"))
        self.assertEqual([m["body"] for m in b["data"]], ["t2", "t1"])
        # An unencoded '+' arrives as a space; it is read as the '+' it was.
        raw = "/v1/messages?since=%s" % t1.isoformat(timespec="microseconds")
        r = self.get(raw, token=s.access)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([m["body"] for m in r.body["data"]], ["t4", "t3", "t2", "t1"])
        # Whole seconds, and digits past the microsecond, are fine.
        b = self.list_ok(s.access, since="2000-01-01T00:00:00Z",
                         until="2999-12-31T23:59:59.123456789Z")
        self.assertEqual(len(b["data"]), 5)
        self.assertEqual(self.list_ok(s.access, until="2000-02-29T00:00:00Z")["data"], [])

    def test_search(self):
        s, other = self.session(), self.session()
        self.create(s, "Lunch at noon, then the Meeting")
        self.create(s, "MEETING notes: budget")
        self.create(s, "Grüße aus Köln")
        self.create(s, "lunch meeting moved")
        self.create(other, "meeting of someone else")
        cases = [("meeting", ["lunch meeting moved", "MEETING notes: budget",
                              "Lunch at noon, then the Meeting"]),
                 ("LUNCH Meeting", ["lunch meeting moved", "Lunch at noon, then the Meeting"]),
                 ('"lunch meeting"', ["lunch meeting moved"]),
                 ("meeting -lunch", ["MEETING notes: budget"]),
                 ("budget or köln", ["Grüße aus Köln", "MEETING notes: budget"]),
                 ("grüße", ["Grüße aus Köln"]),
                 ("meet", []), ("nothing-like-this", []), ("!!!", [])]
        for q, want in cases:
            with self.subTest(q=q):
                b = self.list_ok(s.access, q=q)
                self.assertEqual([m["body"] for m in b["data"]], want)
        # Empty and blank searches are no search.
        self.assertEqual(len(self.list_ok(s.access, q="")["data"]), 4)
        self.assertEqual(len(self.list_ok(s.access, q="   ")["data"]), 4)
        # 256 characters are allowed.
        self.assertEqual(self.list_ok(s.access, q="ж" * 256)["data"], [])
        # An admin searches everyone's messages, or one user's.
        b = self.list_ok(self.admin().access, q="meeting")
        self.assertEqual(len(b["data"]), 4)
        b = self.list_ok(self.admin().access, q="meeting", user_id=other.id)
        self.assertEqual([m["body"] for m in b["data"]], ["meeting of someone else"])
        # Search pages like any listing.
        got, pages = self.walk(s.access, q="meeting", limit=1)
        self.assertEqual(len(got), 3)
        self.assertEqual(pages, 3)


class PaginationUnderInsertsTest(MessagesCase):
    def test_walks_return_each_message_exactly_once_while_others_post(self):
        s, other = self.session(), self.session()
        admin = self.admin()
        for i in range(40):
            self.create(s if i % 3 else other, "seed %d" % i)
        stop = threading.Event()
        permits = threading.Semaphore(0)  # the walk lets the poster post a few at a time
        posted, errors = [], []

        def poster():
            i = 0
            while not stop.is_set():
                if not permits.acquire(timeout=0.05):
                    continue
                who = (s, other)[i % 2]
                r = self.post("/v1/messages", {"body": "late %d" % i}, token=who.access)
                (posted if r.status == 201 else errors).append(r)
                i += 1

        for label, token, user_id, limit in [("own", s.access, None, 7),
                                             ("admin-all", admin.access, None, 6),
                                             ("admin-one", admin.access, other.id, 4)]:
            with self.subTest(walk=label):
                want = self.ids_in_db(user_id if user_id else
                                      (s.id if token == s.access else None))
                params = {"limit": limit}
                if user_id:
                    params["user_id"] = user_id
                # The first page is read before anything new is posted; then, before
                # every further page, a second client posts two messages.
                first = self.list_ok(token, **params)
                self.assertIsNotNone(first["next_cursor"])
                stop.clear()
                t = threading.Thread(target=poster)
                t.start()
                try:
                    rest = self.walk_from(first["next_cursor"], token, posted, permits,
                                          **params)
                finally:
                    stop.set()
                    t.join(60)
                seen = [m["id"] for m in first["data"] + rest]
                self.assertFalse(errors, errors[:3])
                self.assertGreater(len(posted), 0, "nothing was posted during the walk")
                self.assertEqual(len(seen), len(set(seen)), "a message appeared twice")
                self.assertEqual(seen, want,
                                 "not every message exactly once, newest first")
                keys = [(m["created_at"], m["id"]) for m in first["data"] + rest]
                self.assertEqual(keys, sorted(keys, reverse=True))

    def walk_from(self, cursor, token, posted, permits, **params):
        """The pages after cursor; before each, lets the poster post two messages."""
        seen, pages = [], 0
        while cursor:
            n = len(posted)
            permits.release(2)
            self.assertTrue(harness.wait_until(lambda: len(posted) >= n + 2, 20),
                            "the concurrent poster stalled")
            b = self.list_ok(token, cursor=cursor, **params)
            pages += 1
            seen.extend(b["data"])
            cursor = b["next_cursor"]
            self.assertLess(pages, 500, "pagination does not end")
        return seen


if __name__ == "__main__":
    harness.main()
