#!/usr/bin/env python3
"""Login and token-refresh rate limits per email, user and client address (fixed windows
kept in Redis), and the client address seen through trusted proxies (X-Forwarded-For)."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase, unique_email  # noqa: E402

WINDOW = 60


def avoid_window_edge(needed_s=5.0, window=WINDOW):
    """Waits for a fresh window if the current one (aligned on multiples of WINDOW, as
    a fixed-window limiter keyed by window number is) ends within needed_s, so that a
    burst of attempts cannot straddle two windows."""
    left = window - (time.time() % window)
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


def refresh(case, token, xff=None):
    headers = {"X-Forwarded-For": xff} if xff else None
    r = case.post("/v1/token/refresh", {"refresh_token": token}, headers=headers)
    if r.status == 200:
        case.stack.note_secret(r.body["access_token"])
        case.stack.note_secret(r.body["refresh_token"])
    return r


SHORT_WINDOW = 8


class RefreshAddressLimitTest(HexCase):
    HEXD_ENV = {"HEX_REFRESH_LIMIT_ADDR": "4", "HEX_LOGIN_WINDOW": str(SHORT_WINDOW)}

    def test_fifth_refresh_from_one_address_429_and_the_token_survives(self):
        s = self.session()
        avoid_window_edge(3.0, SHORT_WINDOW)
        token = s.tokens["refresh_token"]
        # garbage counts too: the limit comes before any token work
        self.assertError(refresh(self, "not-a-token"), 401, "unauthenticated")
        for _ in range(3):
            r = refresh(self, token)
            self.assertEqual(r.status, 200, r)
            token = r.body["refresh_token"]
        r = refresh(self, token)
        b = self.assertError(r, 429, "rate_limited")
        self.assertIn("token refreshes", b["error"])
        self.assertNotIn("refresh_token", b)
        ra = int(r.header("Retry-After"))
        self.assertTrue(1 <= ra <= SHORT_WINDOW, "Retry-After %d" % ra)
        # Limited, not spent: the same token still rotates once the window is over.
        time.sleep(ra + 0.2)
        self.assertEqual(refresh(self, token).status, 200)
        # the limit is on refreshes only: logins still work
        self.login(s.user["email"], s.password)


class TrustedProxyTest(HexCase):
    """hexd behind nginx: the per-address limit counts the client nginx saw."""
    HEXD_ENV = {"HEX_LOGIN_LIMIT_ADDR": "3", "HEX_TRUSTED_PROXIES": "10.9.9.9, 127.0.0.1",
                "HEX_LOGIN_WINDOW": str(WINDOW)}

    def attempt(self, xff):
        return self.post("/v1/login", {"email": unique_email("xff"), "password": "whatever1"},
                         headers={"X-Forwarded-For": xff})

    def test_forwarded_client_is_limited_not_the_proxy(self):
        avoid_window_edge()
        # as nginx writes it ($proxy_add_x_forwarded_for): what the client sent, then
        # the address nginx saw; trusted entries on the right are skipped
        for xff in ["203.0.113.5", "203.0.113.5, 10.9.9.9", "1.2.3.4, 203.0.113.5"]:
            self.assertError(self.attempt(xff), 401, "unauthenticated")
        self.assertError(self.attempt("203.0.113.5"), 429, "rate_limited")
        # other clients behind the same proxy are not
        for i in range(3):
            self.assertError(self.attempt("203.0.113.%d" % (10 + i)), 401, "unauthenticated")
        self.assertError(self.attempt("2001:db8::7"), 401, "unauthenticated")
        # an unreadable header is the proxy itself (127.0.0.1 here), counted as one client
        for _ in range(3):
            self.assertError(self.attempt("not-an-address"), 401, "unauthenticated")
        self.assertError(self.attempt("garbage, ,"), 429, "rate_limited")

    def test_every_forwarded_for_line_counts_in_order(self):
        """A proxy that adds its own X-Forwarded-For line (rather than appending to the
        client's) must not let the client's line decide."""
        avoid_window_edge()

        def attempt(*lines):
            body = json.dumps({"email": unique_email("xff2"), "password": "whatever1"})
            head = "".join("X-Forwarded-For: %s\r\n" % l for l in lines)
            data = ("POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "%sContent-Length: %d\r\nConnection: close\r\n\r\n%s" %
                    (head, len(body), body)).encode()
            return harness.parse_raw_response(harness.raw_exchange(self.port, data))[0]

        for i in range(3):  # the client (as the proxy saw it) is 198.51.100.50 each time
            self.assertEqual(attempt("203.0.113.%d" % (100 + i), "198.51.100.50"), 401)
        self.assertEqual(attempt("203.0.113.200", "198.51.100.50"), 429)
        self.assertEqual(attempt("198.51.100.51"), 401)

    def test_a_bad_proxy_list_stops_start_up(self):
        p = self.stack.run_hexd(["serve"], overrides={"HEX_TRUSTED_PROXIES": "127.0.0.1,nginx"},
                                timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("HEX_TRUSTED_PROXIES", p.stderr)
        self.assertIn('"nginx" is not an IP address', p.stderr)


class UntrustedForwardedForTest(HexCase):
    """Without HEX_TRUSTED_PROXIES a client cannot dodge the limit with its own header."""
    HEXD_ENV = {"HEX_LOGIN_LIMIT_ADDR": "3", "HEX_LOGIN_WINDOW": str(WINDOW)}

    def test_spoofed_forwarded_for_is_ignored(self):
        avoid_window_edge()
        for i in range(3):
            r = self.post("/v1/login", {"email": unique_email("spoof"), "password": "whatever1"},
                          headers={"X-Forwarded-For": "203.0.113.%d" % i})
            self.assertError(r, 401, "unauthenticated")
        r = self.post("/v1/login", {"email": unique_email("spoof"), "password": "whatever1"},
                      headers={"X-Forwarded-For": "203.0.113.200"})
        self.assertError(r, 429, "rate_limited")


if __name__ == "__main__":
    harness.main()
