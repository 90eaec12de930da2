#!/usr/bin/env python3
"""Refresh-token rotation and reuse detection, logout, and revocation by password change."""

import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase, LOGIN_KEYS, jwt_decode, jwt_forge  # noqa: E402


class TokensTest(HexCase):
    def refresh(self, token):
        return self.post("/v1/token/refresh", {"refresh_token": token})

    def assertRefreshOk(self, r, s):
        self.assertEqual(r.status, 200, r)
        self.assertJsonReply(r)
        self.assertEqual(set(r.body.keys()), LOGIN_KEYS, r.body)
        self.assertEqual(r.body["id"], s.id)
        self.assertEqual(r.body["email"], s.email)
        self.assertEqual(r.body["membership"], "free")
        self.assertEqual(r.body["token_type"], "Bearer")
        self.assertEqual(r.body["expires_in"], 900)
        return r.body

    def assertAccessWorks(self, s, token, works=True):
        r = self.get("/v1/users/%s" % s.id, token=token)
        if works:
            self.assertEqual(r.status, 200, r)
        else:
            self.assertError(r, 401, "unauthenticated")

    def assertRefreshDead(self, token):
        self.assertError(self.refresh(token), 401, "unauthenticated")

    # -- rotation

    def test_refresh_returns_a_new_working_pair(self):
        s = self.session()
        b = self.assertRefreshOk(self.refresh(s.refresh), s)
        self.assertNotEqual(b["refresh_token"], s.refresh)
        self.assertNotEqual(b["access_token"], s.access)
        self.assertEqual(jwt_decode(b["refresh_token"])[1]["typ"], "refresh")
        self.assertEqual(jwt_decode(b["access_token"])[1]["typ"], "access")
        self.assertAccessWorks(s, b["access_token"])
        # rotation does not log the user out of the access token it already has
        self.assertAccessWorks(s, s.access)

    def test_rotation_chain(self):
        s = self.session()
        tok = s.refresh
        seen = {tok}
        for _ in range(4):
            tok = self.assertRefreshOk(self.refresh(tok), s)["refresh_token"]
            self.assertNotIn(tok, seen)
            seen.add(tok)

    def test_old_refresh_token_is_dead_and_its_reuse_revokes_the_family(self):
        s = self.session()
        new = self.assertRefreshOk(self.refresh(s.refresh), s)
        self.assertRefreshDead(s.refresh)  # reuse of a rotated token ...
        self.assertRefreshDead(new["refresh_token"])  # ... kills its successor too
        self.assertRefreshDead(s.refresh)
        # the user can still log in and start a new family
        fresh = self.login(s.email, s.password)
        self.assertRefreshOk(self.refresh(fresh["refresh_token"]), s)

    def test_concurrent_refreshes_of_one_token_succeed_at_most_once(self):
        s = self.session()
        results = []
        go = threading.Event()

        def refresh():
            go.wait(10)
            results.append(self.refresh(s.refresh))

        threads = [threading.Thread(target=refresh) for _ in range(6)]
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join(60)
        ok = [r for r in results if r.status == 200]
        self.assertLessEqual(len(ok), 1, "one refresh token rotated %d times" % len(ok))
        for r in results:
            if r.status != 200:
                self.assertError(r, 401, "unauthenticated")
        # the reuse killed the family, including a winner's new token
        for r in ok:
            self.assertRefreshDead(r.body["refresh_token"])

    def test_reuse_revokes_only_that_family(self):
        s = self.session()
        other = self.login(s.email, s.password)  # a second device: its own family
        new = self.assertRefreshOk(self.refresh(s.refresh), s)
        self.assertRefreshDead(s.refresh)
        self.assertRefreshDead(new["refresh_token"])
        self.assertRefreshOk(self.refresh(other["refresh_token"]), s)

    def test_garbage_and_forged_refresh_tokens_401(self):
        s = self.session()
        h, c = jwt_decode(s.refresh)
        unknown_jti = dict(c, jti=str(uuid.uuid4()))
        for tok in ["garbage", "a.b.c", s.refresh + "x", s.access,
                    jwt_forge(c, "another-secret-of-at-least-32-bytes!!"),
                    jwt_forge(c, self.stack.jwt_secret, header={"alg": "none"}),
                    jwt_forge(dict(c, iss="evil"), self.stack.jwt_secret),
                    jwt_forge(unknown_jti, self.stack.jwt_secret)]:
            with self.subTest(token=tok[:30]):
                self.assertRefreshDead(tok)
        # none of that hurt the real token
        self.assertRefreshOk(self.refresh(s.refresh), s)

    def test_expired_refresh_token_401_and_harmless(self):
        s = self.session()
        _, c = jwt_decode(s.refresh)
        now = int(time.time())
        # the stored jti, re-signed with the right secret, but expired
        expired = jwt_forge(dict(c, iat=now - 100, exp=now - 1), self.stack.jwt_secret)
        self.assertRefreshDead(expired)
        # an expired token is not a reuse: the family lives on
        self.assertRefreshOk(self.refresh(s.refresh), s)

    # -- logout

    def test_logout_204_revokes_every_token_of_the_caller(self):
        s = self.session()
        second = self.login(s.email, s.password)
        bystander = self.session()
        r = self.post("/v1/logout", token=s.access)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.raw, b"")
        self.assertRequestId(r)
        self.assertAccessWorks(s, s.access, works=False)
        self.assertAccessWorks(s, second["access_token"], works=False)
        self.assertRefreshDead(s.refresh)
        self.assertRefreshDead(second["refresh_token"])
        self.assertError(self.post("/v1/logout", token=s.access), 401, "unauthenticated")
        # other users are not affected
        self.assertAccessWorks(bystander, bystander.access)
        self.assertRefreshOk(self.refresh(bystander.refresh), bystander)
        # logging in again works
        again = self.login(s.email, s.password)
        self.assertAccessWorks(s, again["access_token"])
        self.assertRefreshOk(self.refresh(again["refresh_token"]), s)

    def test_logout_accepts_a_json_body(self):
        s = self.session()
        r = self.post("/v1/logout", {}, token=s.access)
        self.assertEqual(r.status, 204, r)
        self.assertAccessWorks(s, s.access, works=False)

    def test_logout_needs_a_valid_access_token(self):
        s = self.session()
        self.assertError(self.post("/v1/logout"), 401, "unauthenticated")
        self.assertError(self.post("/v1/logout", token=s.refresh), 401, "unauthenticated")
        self.assertAccessWorks(s, s.access)
        self.assertRefreshOk(self.refresh(s.refresh), s)

    # -- password change

    def test_password_change_revokes_every_session(self):
        s = self.session()
        second = self.login(s.email, s.password)
        r = self.put("/v1/users", {"password": "brand-new-password"}, token=s.access)
        self.assertEqual(r.status, 200, r)
        self.assertUserJson(r.body, email=s.email, user_id=s.id)
        self.assertAccessWorks(s, s.access, works=False)
        self.assertAccessWorks(s, second["access_token"], works=False)
        self.assertRefreshDead(s.refresh)
        self.assertRefreshDead(second["refresh_token"])
        self.login(s.email, s.password, expect=401)
        fresh = self.login(s.email, "brand-new-password")
        self.assertAccessWorks(s, fresh["access_token"])

    def test_failed_password_change_revokes_nothing(self):
        s = self.session()
        r = self.put("/v1/users", {"password": "short"}, token=s.access)
        self.assertError(r, 400, "invalid_request", field="password")
        self.assertAccessWorks(s, s.access)
        self.login(s.email, s.password)
        self.assertRefreshOk(self.refresh(s.refresh), s)


if __name__ == "__main__":
    harness.main()
