#!/usr/bin/env python3
"""POST/GET/PUT/DELETE /v1/users: happy paths and every error status."""

import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase, unique_email  # noqa: E402


class CreateUserTest(HexCase):
    def test_create_201_shape_location_and_storage(self):
        tag = uuid.uuid4().hex[:10]
        r = self.post("/v1/users", {"email": "Alice-%s@Example.COM" % tag,
                                    "password": "correct horse"})
        self.assertEqual(r.status, 201, r)
        self.assertJsonReply(r)
        self.assertRequestId(r)
        u = r.body
        self.assertUserJson(u, email="alice-%s@example.com" % tag)
        self.assertEqual(u["membership"], "free")
        self.assertEqual(r.header("Location"), "/v1/users/%s" % u["id"])
        self.assertNotIn(b"$y$", r.raw)
        self.assertNotIn(b"correct horse", r.raw)
        row = self.user_row(u["id"])
        self.assertIsNotNone(row)
        self.assertEqual(row["email"], "alice-%s@example.com" % tag)
        self.assertTrue(row["password_hash"].startswith("$y$"), row["password_hash"])
        self.assertNotIn("correct horse", row["password_hash"])
        self.assertEqual(row["role"], "user")
        self.assertEqual(row["membership"], "free")

    def test_create_duplicate_email_409_case_insensitive(self):
        email = unique_email("dup")
        self.create_user(email)
        before = self.user_count()
        for variant in [email, email.upper(), email.capitalize()]:
            with self.subTest(variant=variant):
                r = self.post("/v1/users", {"email": variant, "password": "password2"})
                self.assertError(r, 409, "conflict", field="email")
        self.assertEqual(self.user_count(), before)

    def test_create_bad_email_400(self):
        before = self.user_count()
        bad = ["", " ", "plainaddress", "@example.com", "user@", "user@@example.com",
               "us er@example.com", "user@exa mple.com", "user@example.com\n",
               "a" * 250 + "@example.com", "user@" + "d" * 300 + ".com"]
        for email in bad:
            with self.subTest(email=email[:40]):
                r = self.post("/v1/users", {"email": email, "password": "password1"})
                self.assertError(r, 400, "invalid_request", field="email")
        self.assertEqual(self.user_count(), before)

    def test_create_password_length_bounds(self):
        before = self.user_count()
        for pw in ["", "1234567", "x" * 1025, "y" * 5000]:
            with self.subTest(length=len(pw)):
                r = self.post("/v1/users", {"email": unique_email(), "password": pw})
                self.assertError(r, 400, "invalid_request", field="password")
        self.assertEqual(self.user_count(), before)
        for pw in ["12345678", "z" * 1024]:
            with self.subTest(length=len(pw)):
                u, _ = self.create_user(password=pw)
                self.login(u["email"], pw)

    def test_create_missing_fields_400(self):
        before = self.user_count()
        r = self.post("/v1/users", {"password": "password1"})
        self.assertError(r, 400, "invalid_request", field="email")
        r = self.post("/v1/users", {"email": unique_email()})
        self.assertError(r, 400, "invalid_request", field="password")
        r = self.post("/v1/users", {})
        b = self.assertError(r, 400, "invalid_request")
        self.assertIn(b.get("field"), ("email", "password"))
        self.assertEqual(self.user_count(), before)

    def test_concurrent_sign_ups_of_one_email_create_one_user(self):
        email = unique_email("race")
        results = []

        def sign_up(i):
            variant = email.upper() if i % 2 else email
            results.append(self.post("/v1/users", {"email": variant,
                                                   "password": "password-%d" % i}))

        threads = [threading.Thread(target=sign_up, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        statuses = sorted(r.status for r in results)
        self.assertEqual(statuses, [201] + [409] * 7, results)
        for r in results:
            if r.status == 409:
                self.assertError(r, 409, "conflict", field="email")
        self.assertEqual(self.stack.db.scalar(
            "SELECT count(*) FROM users WHERE lower(email) = %s" %
            harness.sql_literal(email)), "1")

    def test_create_cannot_choose_role_membership_or_id(self):
        want_id = str(uuid.uuid4())
        r = self.post("/v1/users", {"email": unique_email(), "password": "password1",
                                    "role": "admin", "membership": "member", "id": want_id,
                                    "token_version": 99})
        self.assertEqual(r.status, 201, r)
        self.assertNotEqual(r.body["id"], want_id)
        self.assertEqual(r.body["membership"], "free")
        row = self.user_row(r.body["id"])
        self.assertEqual(row["role"], "user")
        self.assertEqual(row["membership"], "free")


class ReadUserTest(HexCase):
    def test_get_self_200(self):
        s = self.session()
        r = self.get("/v1/users/%s" % s.id, token=s.access)
        self.assertEqual(r.status, 200, r)
        self.assertJsonReply(r)
        self.assertUserJson(r.body, email=s.email, user_id=s.id)
        self.assertEqual(r.body, s.user)
        self.assertNotIn(b"$y$", r.raw)

    def test_get_requires_bearer_401(self):
        s = self.session()
        r = self.get("/v1/users/%s" % s.id)
        self.assertError(r, 401, "unauthenticated")
        self.assertNotIn(s.email.encode(), r.raw)

    def test_get_other_user_403(self):
        a, b = self.session(), self.session()
        r = self.get("/v1/users/%s" % b.id, token=a.access)
        self.assertError(r, 403, "forbidden")
        self.assertNotIn(b.email.encode(), r.raw)


class UpdateUserTest(HexCase):
    def test_put_email_200_normalised_and_login_follows(self):
        s = self.session()
        time.sleep(0.01)
        new = unique_email("New")
        mixed = new[0].upper() + new[1:].replace("example.com", "Example.COM")
        r = self.put("/v1/users", {"email": mixed}, token=s.access)
        self.assertEqual(r.status, 200, r)
        self.assertJsonReply(r)
        self.assertUserJson(r.body, email=new.lower(), user_id=s.id)
        self.assertEqual(r.body["created_at"], s.user["created_at"])
        self.assertGreater(r.body["updated_at"], s.user["updated_at"])
        self.assertEqual(self.user_row(s.id)["email"], new.lower())
        g = self.get("/v1/users/%s" % s.id, token=s.access)
        self.assertEqual(g.status, 200, g)
        self.assertEqual(g.body["email"], new.lower())
        self.login(new.lower(), s.password)
        self.login(s.email, s.password, expect=401)

    def test_put_empty_object_changes_nothing(self):
        s = self.session()
        before = self.user_row(s.id)
        r = self.put("/v1/users", {}, token=s.access)
        self.assertEqual(r.status, 200, r)
        self.assertUserJson(r.body, email=s.email, user_id=s.id)
        after = self.user_row(s.id)
        self.assertEqual(before["email"], after["email"])
        self.assertEqual(before["password_hash"], after["password_hash"])
        self.login(s.email, s.password)

    def test_put_own_email_again_is_not_a_conflict(self):
        s = self.session()
        r = self.put("/v1/users", {"email": s.email.upper()}, token=s.access)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body["email"], s.email)

    def test_put_taken_email_409(self):
        a, b = self.session(), self.session()
        before = self.user_row(a.id)
        r = self.put("/v1/users", {"email": b.email.upper()}, token=a.access)
        self.assertError(r, 409, "conflict", field="email")
        self.assertEqual(self.user_row(a.id), before)

    def test_put_bad_values_400_change_nothing(self):
        s = self.session()
        before = self.user_row(s.id)
        cases = [({"email": "not-an-email"}, "email"), ({"email": ""}, "email"),
                 ({"password": "short"}, "password"), ({"password": "p" * 1025}, "password"),
                 ({"email": 7}, "email"), ({"email": None}, "email"),
                 ({"password": ["password1"]}, "password"), ({"password": True}, "password"),
                 ({"email": unique_email(), "password": "short"}, "password"),
                 ({"email": "bad", "password": "password-ok"}, "email")]
        for body, field in cases:
            with self.subTest(body=body):
                r = self.put("/v1/users", body, token=s.access)
                self.assertError(r, 400, "invalid_request", field=field)
        self.assertEqual(self.user_row(s.id), before)
        self.login(s.email, s.password)

    def test_put_requires_bearer_401(self):
        s = self.session()
        before = self.user_row(s.id)
        r = self.put("/v1/users", {"email": unique_email()})
        self.assertError(r, 401, "unauthenticated")
        self.assertEqual(self.user_row(s.id), before)

    def test_put_cannot_escalate_role_or_membership(self):
        s = self.session()
        r = self.put("/v1/users", {"role": "admin", "membership": "member",
                                   "id": str(uuid.uuid4())}, token=s.access)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body["id"], s.id)
        self.assertEqual(r.body["membership"], "free")
        row = self.user_row(s.id)
        self.assertEqual((row["role"], row["membership"]), ("user", "free"))


class DeleteUserTest(HexCase):
    def test_delete_204_user_gone_tokens_dead_email_free(self):
        s = self.session()
        r = self.delete("/v1/users", token=s.access)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.raw, b"")
        self.assertRequestId(r)
        self.assertIsNone(self.user_row(s.id))
        self.assertEqual(self.stack.db.scalar(
            "SELECT count(*) FROM refresh_tokens WHERE user_id = %s" %
            harness.sql_literal(s.id)), "0")
        self.assertError(self.get("/v1/users/%s" % s.id, token=s.access), 401,
                         "unauthenticated")
        self.assertError(self.delete("/v1/users", token=s.access), 401, "unauthenticated")
        self.assertError(self.post("/v1/token/refresh", {"refresh_token": s.refresh}), 401,
                         "unauthenticated")
        self.login(s.email, s.password, expect=401)
        u, _ = self.create_user(s.email)
        self.assertNotEqual(u["id"], s.id)

    def test_delete_requires_bearer_401(self):
        s = self.session()
        before = self.user_count()
        r = self.delete("/v1/users")
        self.assertError(r, 401, "unauthenticated")
        r = self.delete("/v1/users", token=s.refresh)
        self.assertError(r, 401, "unauthenticated")
        self.assertEqual(self.user_count(), before)
        self.assertIsNotNone(self.user_row(s.id))

    def test_delete_only_removes_the_caller(self):
        a, b = self.session(), self.session()
        self.assertEqual(self.delete("/v1/users", token=a.access).status, 204)
        self.assertIsNotNone(self.user_row(b.id))
        r = self.get("/v1/users/%s" % b.id, token=b.access)
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    harness.main()
