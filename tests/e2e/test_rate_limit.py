#!/usr/bin/env python3
"""Login rate limits per email and per client address (fixed windows kept in Redis)."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase, unique_email  # noqa: E402

WINDOW = 60


def avoid_window_edge(needed_s=5.0):
    """Waits for a fresh window if the current one (aligned on multiples of WINDOW, as
    a fixed-window limiter keyed by window number is) ends within needed_s, so that a
    burst of attempts cannot straddle two windows."""
    left = WINDOW - (time.time() % WINDOW)
    if left < needed_s:
        time.sleep(left + 0.2)


class EmailLimitTest(HexCase):
    HEXD_ENV = {"HEX_LOGIN_LIMIT_EMAIL": "3", "HEX_LOGIN_WINDOW": str(WINDOW)}

    def attempt(self, email, password):
        return self.post("/v1/login", {"email": email, "password": password})

    def test_fourth_attempt_429_and_other_emails_unaffected(self):
        u, pw = self.create_user()
        other, other_pw = self.create_user()
        avoid_window_edge()
        for i in range(3):
            r = self.attempt(u["email"], "wrong-password")
            self.assertError(r, 401, "unauthenticated")
        r = self.attempt(u["email"], pw)  # even the right password is refused now
        b = self.assertError(r, 429, "rate_limited")
        self.assertNotIn("access_token", b)
        ra = int(r.header("Retry-After"))
        self.assertTrue(1 <= ra <= WINDOW, "Retry-After %d" % ra)
        r = self.attempt(u["email"], "wrong-password")
        self.assertError(r, 429, "rate_limited")
        # another email is still allowed, and works
        self.assertEqual(self.attempt(other["email"], other_pw).status, 200)
        for _ in range(3):
            self.assertError(self.attempt(unique_email("nobody"), "x-password"), 401,
                             "unauthenticated")
        # limiter state lives in Redis under hex:rl:
        with self.redis() as c:
            keys = c.cmd("KEYS", "hex:rl:*")
        self.assertTrue(keys, "no hex:rl:* keys in redis")
        with self.redis() as c:
            for k in keys:
                ttl = c.cmd("TTL", k)
                self.assertTrue(0 < ttl <= WINDOW, (k, ttl))

    def test_limit_counts_the_normalised_email(self):
        u, pw = self.create_user()
        avoid_window_edge()
        for variant in [u["email"], u["email"].upper(), u["email"].capitalize()]:
            self.assertError(self.attempt(variant, "wrong-password"), 401, "unauthenticated")
        self.assertError(self.attempt(u["email"], pw), 429, "rate_limited")


class AddressLimitTest(HexCase):
    HEXD_ENV = {"HEX_LOGIN_LIMIT_ADDR": "5", "HEX_LOGIN_LIMIT_EMAIL": "1000",
                "HEX_LOGIN_WINDOW": str(WINDOW)}

    def test_sixth_attempt_from_one_address_429(self):
        u, pw = self.create_user()
        avoid_window_edge()
        for i in range(4):
            self.assertError(self.post("/v1/login", {"email": unique_email("addr"),
                                                     "password": "whatever1"}),
                             401, "unauthenticated")
        self.assertEqual(self.post("/v1/login", {"email": u["email"], "password": pw}).status,
                         200)
        r = self.post("/v1/login", {"email": u["email"], "password": pw})
        self.assertError(r, 429, "rate_limited")
        self.assertTrue(1 <= int(r.header("Retry-After")) <= WINDOW)
        # the limit is on logins only: other routes still answer
        self.create_user()


if __name__ == "__main__":
    harness.main()
