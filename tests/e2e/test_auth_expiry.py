#!/usr/bin/env python3
"""Access tokens really expire (HEX_ACCESS_TTL=2) and refresh tokens outlive them.

(hexd refuses refresh TTLs under 60 s, so refresh expiry is tested in test_tokens with a
stored token whose exp claim is re-signed into the past.)"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase, jwt_decode  # noqa: E402

TTL = 2


class AccessExpiryTest(HexCase):
    HEXD_ENV = {"HEX_ACCESS_TTL": str(TTL)}

    def test_access_token_expires_and_refresh_still_works(self):
        s = self.session()
        self.assertEqual(s.tokens["expires_in"], TTL)
        c = jwt_decode(s.access)[1]
        self.assertEqual(c["exp"] - c["iat"], TTL)
        r = self.get("/v1/users/%s" % s.id, token=s.access)
        self.assertEqual(r.status, 200, r)
        time.sleep(TTL + 1.5)
        r = self.get("/v1/users/%s" % s.id, token=s.access)
        self.assertError(r, 401, "unauthenticated")
        r = self.put("/v1/users", {"email": harness.unique_email()}, token=s.access)
        self.assertError(r, 401, "unauthenticated")
        self.assertEqual(self.user_row(s.id)["email"], s.email)
        # the refresh token (7 days) is still good and gives a fresh, working access token
        r = self.post("/v1/token/refresh", {"refresh_token": s.refresh})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body["expires_in"], TTL)
        g = self.get("/v1/users/%s" % s.id, token=r.body["access_token"])
        self.assertEqual(g.status, 200, g)


if __name__ == "__main__":
    harness.main()
