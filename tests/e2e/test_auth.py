#!/usr/bin/env python3
"""Bearer authentication: every malformed, forged or misused token is 401 and harmless."""

import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase, b64url, jwt_decode, jwt_forge  # noqa: E402


class BearerTest(HexCase):
    def setUp(self):
        super().setUp()
        self.s = self.session()
        self.header, self.claims = jwt_decode(self.s.access)

    def path(self):
        return "/v1/users/%s" % self.s.id

    def assert401(self, authorization, path=None):
        hdrs = {} if authorization is None else {"Authorization": authorization}
        r = self.get(path or self.path(), headers=hdrs)
        self.assertError(r, 401, "unauthenticated")
        self.assertNotIn(self.s.email.encode(), r.raw)
        return r

    def forged(self, header=None, secret=None, alg=None, **claims):
        c = dict(self.claims)
        c.update(claims)
        c = {k: v for k, v in c.items() if v is not None}
        return jwt_forge(c, self.stack.jwt_secret if secret is None else secret,
                         header=header, alg=alg)

    # -- controls: the real token and a token forged with the right secret both work, so
    #    the 401s below are about the one thing each test changes.

    def test_control_real_token_200(self):
        r = self.get(self.path(), token=self.s.access)
        self.assertEqual(r.status, 200, r)

    def test_control_forged_with_the_right_secret_200(self):
        r = self.get(self.path(), token=self.forged())
        self.assertEqual(r.status, 200, r)

    def test_issued_token_claims(self):
        now = time.time()
        self.assertEqual(self.header.get("alg"), "HS256")
        c = self.claims
        self.assertEqual(c["iss"], "hex")
        self.assertEqual(c["sub"], self.s.id)
        self.assertEqual(c["typ"], "access")
        self.assertEqual(c["role"], "user")
        self.assertIsInstance(c["ver"], int)
        self.assertIsInstance(c["jti"], str)
        self.assertTrue(c["jti"])
        self.assertLessEqual(abs(c["iat"] - now), 60)
        self.assertEqual(c["exp"] - c["iat"], 900)
        self.assertEqual(self.s.tokens["expires_in"], 900)
        self.assertEqual(self.s.tokens["token_type"], "Bearer")
        rh, rc = jwt_decode(self.s.refresh)
        self.assertEqual(rh.get("alg"), "HS256")
        self.assertEqual(rc["typ"], "refresh")
        self.assertEqual(rc["sub"], self.s.id)
        self.assertEqual(rc["iss"], "hex")
        self.assertEqual(rc["exp"] - rc["iat"], 604800)
        self.assertNotEqual(rc["jti"], c["jti"])
        other = self.login(self.s.email, self.s.password)
        self.assertNotEqual(jwt_decode(other["access_token"])[1]["jti"], c["jti"])

    def test_missing_header_401(self):
        self.assert401(None)

    def test_other_schemes_401(self):
        for a in ["Basic dXNlcjpwYXNzd29yZA==", "Token " + self.s.access,
                  "Digest " + self.s.access, self.s.access, "Bearer:" + self.s.access,
                  "JWT " + self.s.access]:
            with self.subTest(authorization=a[:20]):
                self.assert401(a)

    def test_empty_bearer_401(self):
        for a in ["Bearer", "Bearer ", "Bearer   ", ""]:
            with self.subTest(authorization=a):
                self.assert401(a)

    def test_garbage_tokens_401(self):
        t = self.s.access
        for tok in ["garbage", "a.b.c", "..", "...", t + "x", t[:-1], t + ".x",
                    t.replace(".", "", 1), "e30.e30.", "%%%.%%%.%%%", "x" * 5000,
                    t + " " + t, b64url("{") + "." + b64url("{}") + ".sig"]:
            with self.subTest(token=tok[:30]):
                self.assert401("Bearer " + tok)

    def test_alg_none_401(self):
        for alg in ["none", "None", "NONE", "nOnE"]:
            with self.subTest(alg=alg):
                unsigned = self.forged(header={"alg": alg, "typ": "JWT"})
                self.assertTrue(unsigned.endswith("."))
                self.assert401("Bearer " + unsigned)
                # none with a perfectly good HS256 signature attached
                good_sig = self.forged().rsplit(".", 1)[1]
                self.assert401("Bearer " + unsigned + good_sig)

    def test_other_algorithms_401(self):
        for alg in ["HS512", "HS384", "RS256", "ES256", "hs256", "HS256 "]:
            with self.subTest(alg=alg):
                self.assert401("Bearer " + self.forged(header={"alg": alg, "typ": "JWT"},
                                                       alg=alg if alg in ("HS512", "HS384")
                                                       else "HS256"))

    def test_header_without_alg_401(self):
        self.assert401("Bearer " + self.forged(header={"typ": "JWT"}, alg="HS256"))

    def test_tampered_payload_401(self):
        h, _, sig = self.s.access.split(".")
        for change in [{"role": "admin"}, {"sub": str(uuid.uuid4())},
                       {"exp": self.claims["exp"] + 3600}, {"ver": self.claims["ver"] + 1}]:
            with self.subTest(change=change):
                c = dict(self.claims)
                c.update(change)
                payload = jwt_forge(c, "x").split(".")[1]
                self.assert401("Bearer %s.%s.%s" % (h, payload, sig))

    def test_signed_with_another_secret_401(self):
        for secret in ["another-secret-of-at-least-32-bytes!!", self.stack.jwt_secret[:-1],
                       "", self.stack.admin_token]:
            with self.subTest(secret=len(secret)):
                self.assert401("Bearer " + self.forged(secret=secret))

    def test_wrong_or_missing_issuer_401(self):
        for iss in ["evil", "hex2", "HEX", "", 1]:
            with self.subTest(iss=iss):
                self.assert401("Bearer " + self.forged(iss=iss))
        c = {k: v for k, v in self.claims.items() if k != "iss"}
        self.assert401("Bearer " + jwt_forge(c, self.stack.jwt_secret))

    def test_expired_forged_401(self):
        now = int(time.time())
        self.assert401("Bearer " + self.forged(iat=now - 1000, exp=now - 10))
        self.assert401("Bearer " + self.forged(iat=now - 1000, exp=now - 1))

    def test_missing_or_bad_claims_401(self):
        c = self.claims
        for drop in ["sub", "exp", "typ"]:
            with self.subTest(drop=drop):
                self.assert401("Bearer " + jwt_forge({k: v for k, v in c.items() if k != drop},
                                                     self.stack.jwt_secret))
        for change in [{"sub": "not-a-uuid"}, {"exp": "tomorrow"}, {"typ": "id"},
                       {"sub": 12}]:
            with self.subTest(change=change):
                self.assert401("Bearer " + self.forged(**change))

    def test_token_of_an_unknown_user_401(self):
        self.assert401("Bearer " + self.forged(sub=str(uuid.uuid4())))

    def test_refresh_token_as_bearer_401(self):
        self.assert401("Bearer " + self.s.refresh)
        # also when forged with the right secret: the type claim decides
        self.assert401("Bearer " + self.forged(typ="refresh"))

    def test_access_token_as_refresh_token_401(self):
        r = self.post("/v1/token/refresh", {"refresh_token": self.s.access})
        self.assertError(r, 401, "unauthenticated")

    def test_bad_tokens_change_nothing_on_mutating_routes(self):
        before = self.user_row(self.s.id)
        bad = [None, "Basic eDp5", "Bearer " + self.forged(header={"alg": "none"}),
               "Bearer " + self.forged(secret="wrong-secret-wrong-secret-wrong!!"),
               "Bearer " + self.s.refresh]
        for a in bad:
            hdrs = {} if a is None else {"Authorization": a}
            with self.subTest(authorization=(a or "")[:20]):
                r = self.req("PUT", "/v1/users", json_body={"email": harness.unique_email()},
                             headers=hdrs)
                self.assertError(r, 401, "unauthenticated")
                r = self.req("DELETE", "/v1/users", headers=hdrs)
                self.assertError(r, 401, "unauthenticated")
                r = self.req("POST", "/v1/logout", headers=hdrs)
                self.assertError(r, 401, "unauthenticated")
        self.assertEqual(self.user_row(self.s.id), before)
        # the real session is untouched: logout above did not revoke it
        self.assertEqual(self.get(self.path(), token=self.s.access).status, 200)
        r = self.post("/v1/token/refresh", {"refresh_token": self.s.refresh})
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    harness.main()
