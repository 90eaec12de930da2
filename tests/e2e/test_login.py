#!/usr/bin/env python3
"""POST /v1/login: the reply, and no way to tell an unknown email from a wrong password."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase, LOGIN_KEYS, jwt_decode, unique_email  # noqa: E402


class LoginTest(HexCase):
    def test_login_200_shape(self):
        u, pw = self.create_user()
        r = self.post("/v1/login", {"email": u["email"], "password": pw})
        self.assertEqual(r.status, 200, r)
        self.assertJsonReply(r)
        self.assertRequestId(r)
        b = r.body
        self.assertEqual(set(b.keys()), LOGIN_KEYS, b)
        self.assertEqual(b["id"], u["id"])
        self.assertEqual(b["email"], u["email"])
        self.assertEqual(b["membership"], "free")
        self.assertEqual(b["token_type"], "Bearer")
        self.assertEqual(b["expires_in"], 900)
        self.assertIsInstance(b["access_token"], str)
        self.assertEqual(jwt_decode(b["access_token"])[1]["sub"], u["id"])
        self.assertNotIn(b"$y$", r.raw)
        self.assertNotIn(pw.encode(), r.raw)

    def test_login_email_is_case_insensitive(self):
        u, pw = self.create_user()
        b = self.login(u["email"].upper(), pw)
        self.assertEqual(b["id"], u["id"])
        self.assertEqual(b["email"], u["email"])

    def test_unknown_email_and_wrong_password_are_indistinguishable(self):
        u, pw = self.create_user()
        wrong = self.post("/v1/login", {"email": u["email"], "password": pw + "x"})
        unknown = self.post("/v1/login", {"email": unique_email("ghost"), "password": pw})
        for r in (wrong, unknown):
            self.assertError(r, 401, "unauthenticated")
            self.assertEqual(r.body["error"], "invalid email or password")
        strip = lambda b: {k: v for k, v in b.items() if k != "request_id"}  # noqa: E731
        self.assertEqual(strip(wrong.body), strip(unknown.body))
        self.assertEqual(wrong.header("WWW-Authenticate"), unknown.header("WWW-Authenticate"))
        self.assertEqual(wrong.header("Content-Type"), unknown.header("Content-Type"))
        skip = {"x-request-id", "date", "content-length"}
        names = lambda r: sorted(k.lower() for k in r.headers.keys()  # noqa: E731
                                 if k.lower() not in skip)
        self.assertEqual(names(wrong), names(unknown))

    def test_wrong_passwords_401(self):
        u, pw = self.create_user(password="Password-123")
        for bad in ["password-123", "Password-123 ", " Password-123", "Password-12",
                    "Password-1234", "x" * 1024]:
            with self.subTest(password=bad):
                r = self.post("/v1/login", {"email": u["email"], "password": bad})
                self.assertError(r, 401, "unauthenticated")
                self.assertNotIn("access_token", r.body)
        self.login(u["email"], "Password-123")

    def test_deleted_user_cannot_log_in(self):
        s = self.session()
        self.assertEqual(self.delete("/v1/users", token=s.access).status, 204)
        r = self.post("/v1/login", {"email": s.email, "password": s.password})
        self.assertError(r, 401, "unauthenticated")
        self.assertEqual(r.body["error"], "invalid email or password")

    def test_each_login_is_a_new_session(self):
        u, pw = self.create_user()
        a, b = self.login(u["email"], pw), self.login(u["email"], pw)
        self.assertNotEqual(a["refresh_token"], b["refresh_token"])
        self.assertNotEqual(a["access_token"], b["access_token"])
        n = self.stack.db.scalar("SELECT count(DISTINCT family_id) FROM refresh_tokens "
                                 "WHERE user_id = %s" % harness.sql_literal(u["id"]))
        self.assertEqual(n, "2")


if __name__ == "__main__":
    harness.main()
