#!/usr/bin/env python3
"""Admins: GET /v1/users (filters, limits, cursors) and reading other users by id."""

import os
import sys
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase, jwt_decode, unique_email  # noqa: E402


def qs(**params):
    return "/v1/users?" + urllib.parse.urlencode(params) if params else "/v1/users"


class AdminTest(HexCase):
    def admin(self):
        if not hasattr(type(self), "_admin"):
            type(self)._admin = self.admin_session()
        return type(self)._admin

    def list(self, token=None, **params):
        r = self.get(qs(**params), token=token or self.admin().access)
        return r

    def list_ok(self, **params):
        r = self.list(**params)
        self.assertEqual(r.status, 200, r)
        self.assertJsonReply(r)
        self.assertEqual(set(r.body.keys()), {"data", "next_cursor"}, r.body)
        self.assertIsInstance(r.body["data"], list)
        for u in r.body["data"]:
            self.assertUserJson(u)
        nc = r.body["next_cursor"]
        self.assertTrue(nc is None or (isinstance(nc, str) and nc), nc)
        return r.body

    def all_ids_in_db(self):
        return [r[0] for r in self.stack.db.sql("SELECT id FROM users ORDER BY created_at, id")]

    def test_list_is_forbidden_for_normal_users(self):
        s = self.session()
        self.assertError(self.get("/v1/users", token=s.access), 403, "forbidden")
        self.assertError(self.get(qs(limit=5), token=s.access), 403, "forbidden")
        self.assertError(self.get("/v1/users"), 401, "unauthenticated")

    def test_grant_admin_then_fresh_login_lists_users(self):
        s = self.session()
        self.make_admin(s.email)
        self.assertEqual(self.user_row(s.id)["role"], "admin")
        fresh = self.login(s.email, s.password)
        self.assertEqual(jwt_decode(fresh["access_token"])[1]["role"], "admin")
        r = self.get("/v1/users", token=fresh["access_token"])
        self.assertEqual(r.status, 200, r)
        self.assertNotIn(b"$y$", r.raw)
        r = self.get(qs(email=s.email), token=fresh["access_token"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual([(u["id"], u["email"]) for u in r.body["data"]], [(s.id, s.email)])

    def test_grant_admin_accepts_any_case_and_refuses_unknown_emails(self):
        s = self.session()
        self.make_admin(s.email.upper())
        self.assertEqual(self.user_row(s.id)["role"], "admin")
        before = self.stack.db.sql("SELECT id, role FROM users ORDER BY id")
        p = self.stack.run_hexd(["user", "grant-admin", unique_email("nobody")])
        self.assertNotEqual(p.returncode, 0, "grant-admin of an unknown email succeeded")
        self.assertTrue((p.stdout + p.stderr).strip())
        self.assertEqual(self.stack.db.sql("SELECT id, role FROM users ORDER BY id"), before)

    def test_default_limit_20(self):
        self.admin()
        while self.user_count() < 25:
            self.create_user()
        b = self.list_ok()
        self.assertEqual(len(b["data"]), 20)
        self.assertIsNotNone(b["next_cursor"])
        self.assertEqual([u["id"] for u in b["data"]], self.all_ids_in_db()[:20])

    def test_filter_by_email(self):
        u, _ = self.create_user(unique_email("findme"))
        self.create_user()
        for q in [u["email"], u["email"].upper()]:
            with self.subTest(email=q):
                b = self.list_ok(email=q)
                self.assertEqual([x["id"] for x in b["data"]], [u["id"]])
                self.assertEqual(b["data"][0], u)
                self.assertIsNone(b["next_cursor"])
        b = self.list_ok(email=unique_email("absent"))
        self.assertEqual(b, {"data": [], "next_cursor": None})

    def test_filter_by_membership(self):
        m, _ = self.create_user(unique_email("member"))
        self.create_user()
        self.stack.db.sql("UPDATE users SET membership = 'member' WHERE id = %s" %
                          harness.sql_literal(m["id"]))
        b = self.list_ok(membership="member", limit=100)
        self.assertEqual([x["id"] for x in b["data"]], [m["id"]])
        self.assertEqual(b["data"][0]["membership"], "member")
        b = self.list_ok(membership="free", limit=100)
        ids = [x["id"] for x in b["data"]]
        self.assertNotIn(m["id"], ids)
        self.assertTrue(all(x["membership"] == "free" for x in b["data"]))
        free = int(self.stack.db.scalar("SELECT count(*) FROM users WHERE membership = 'free'"))
        self.assertEqual(len(ids), min(free, 100))
        for bad in ["gold", "", "FREE ", "members", "1"]:
            with self.subTest(membership=bad):
                self.assertError(self.list(membership=bad), 400, "invalid_request",
                                 field="membership")

    def test_limit_bounds(self):
        self.admin()
        self.create_user()
        self.create_user()
        for bad in ["0", "101", "x", "-1", "", "1.5", "20abc", "99999999999999999999"]:
            with self.subTest(limit=bad):
                self.assertError(self.list(limit=bad), 400, "invalid_request", field="limit")
        self.assertEqual(len(self.list_ok(limit=1)["data"]), 1)
        self.assertEqual(len(self.list_ok(limit=100)["data"]), min(self.user_count(), 100))

    def test_bad_cursor_400(self):
        for bad in ["garbage!!", "AAAA", "e30", "eyJhIjoxfQ", str(uuid.uuid4()), "%00",
                    "x" * 2000]:
            with self.subTest(cursor=bad[:20]):
                self.assertError(self.list(cursor=bad), 400, "invalid_request",
                                 field="cursor")

    def test_walk_pages_of_7_returns_everyone_exactly_once(self):
        self.admin()
        for _ in range(30):
            self.create_user(unique_email("walk"))
        want = self.all_ids_in_db()
        self.assertGreaterEqual(len(want), 31)
        seen, pages, cursor = [], 0, None
        while True:
            params = {"limit": 7}
            if cursor:
                params["cursor"] = cursor
            b = self.list_ok(**params)
            pages += 1
            self.assertLessEqual(len(b["data"]), 7)
            seen.extend(u["id"] for u in b["data"])
            cursor = b["next_cursor"]
            if cursor is None:
                break
            self.assertEqual(len(b["data"]), 7, "short page before the end")
            self.assertLess(pages, 100, "pagination does not end")
        self.assertEqual(len(seen), len(set(seen)), "a user appeared twice")
        self.assertEqual(seen, want, "not everyone exactly once, in (created_at, id) order")

    def test_cursor_is_stable_under_inserts(self):
        self.admin()
        for _ in range(10):
            self.create_user(unique_email("stable"))
        first = self.list_ok(limit=5)
        before_ids = self.all_ids_in_db()
        added = [self.create_user(unique_email("added"))[0]["id"] for _ in range(3)]
        seen = [u["id"] for u in first["data"]]
        cursor = first["next_cursor"]
        while cursor:
            b = self.list_ok(limit=5, cursor=cursor)
            seen.extend(u["id"] for u in b["data"])
            cursor = b["next_cursor"]
        self.assertEqual(len(seen), len(set(seen)))
        self.assertEqual(seen, before_ids + added)

    def test_filters_combine_with_paging(self):
        u, _ = self.create_user(unique_email("combo"))
        b = self.list_ok(email=u["email"], membership="free", limit=1)
        self.assertEqual([x["id"] for x in b["data"]], [u["id"]])
        self.assertIsNone(b["next_cursor"])
        b = self.list_ok(email=u["email"], membership="member")
        self.assertEqual(b["data"], [])

    def test_admin_reads_another_user(self):
        s = self.session()
        r = self.get("/v1/users/%s" % s.id, token=self.admin().access)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, s.user)

    def test_non_admin_cannot_read_another_user(self):
        a, b = self.session(), self.session()
        self.assertError(self.get("/v1/users/%s" % b.id, token=a.access), 403, "forbidden")
        self.assertError(self.get("/v1/users/%s" % self.admin().id, token=a.access), 403,
                         "forbidden")

    def test_unknown_and_malformed_ids_404(self):
        tok = self.admin().access
        self.assertError(self.get("/v1/users/%s" % uuid.uuid4(), token=tok), 404,
                         "not_found")
        for bad in ["not-a-uuid", "12345", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
                    str(uuid.uuid4()) + "0", str(uuid.uuid4())[:-1], "%27%20OR%201%3D1",
                    "x" * 300]:
            with self.subTest(id=bad[:40]):
                self.assertError(self.get("/v1/users/%s" % bad, token=tok), 404, "not_found")


if __name__ == "__main__":
    harness.main()
