#!/usr/bin/env python3
"""The Redis user cache: filled by reads, emptied by writes, and never needed for answers."""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase, unique_email, wait_until  # noqa: E402


class CacheTest(HexCase):
    def key(self, s):
        return self.cache_key(s.id)

    def read(self, s):
        r = self.get("/v1/users/%s" % s.id, token=s.access)
        self.assertEqual(r.status, 200, r)
        return r.body

    def test_get_fills_the_cache_with_a_ttl_and_no_secrets(self):
        s = self.session(unique_email("cache"), "secret-password-1")
        with self.redis() as c:
            c.cmd("DEL", self.key(s))
            self.assertEqual(c.cmd("EXISTS", self.key(s)), 0)
            self.assertEqual(self.read(s)["email"], s.email)
            self.assertEqual(c.cmd("EXISTS", self.key(s)), 1)
            ttl = c.cmd("TTL", self.key(s))
            self.assertTrue(0 < ttl <= 600, "TTL %r" % ttl)
            value = c.cmd("GET", self.key(s))
        self.assertNotIn(b"$y$", value)
        self.assertNotIn(b"secret-password-1", value)
        self.assertNotIn(self.user_row(s.id)["password_hash"].encode(), value)

    def test_put_deletes_the_key_and_next_get_shows_the_change(self):
        s = self.session(unique_email("cache"))
        self.read(s)
        with self.redis() as c:
            self.assertEqual(c.cmd("EXISTS", self.key(s)), 1)
            new = unique_email("changed")
            r = self.put("/v1/users", {"email": new}, token=s.access)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(c.cmd("EXISTS", self.key(s)), 0,
                             "cache key still present right after the PUT's 200")
            self.assertEqual(self.read(s)["email"], new)
            self.assertEqual(c.cmd("EXISTS", self.key(s)), 1)

    def test_password_change_deletes_the_key(self):
        s = self.session(unique_email("cache"))
        self.read(s)
        with self.redis() as c:
            r = self.put("/v1/users", {"password": "another-password"}, token=s.access)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(c.cmd("EXISTS", self.key(s)), 0)

    def test_delete_deletes_the_key(self):
        s = self.session(unique_email("cache"))
        self.read(s)
        with self.redis() as c:
            self.assertEqual(c.cmd("EXISTS", self.key(s)), 1)
            self.assertEqual(self.delete("/v1/users", token=s.access).status, 204)
            self.assertEqual(c.cmd("EXISTS", self.key(s)), 0)

    def test_reads_are_served_from_the_cache(self):
        s = self.session(unique_email("cache"))
        self.read(s)
        k = self.key(s)
        with self.redis() as c:
            original = c.cmd("GET", k)
            self.assertIsNotNone(original)
            self.assertIn(s.email.encode(), original,
                          "cannot find the email in the cached value to edit it")
            edited_email = "cachx" + s.email[5:]  # same length: any encoding survives
            edited = original.replace(s.email.encode(), edited_email.encode())
            try:
                self.assertEqual(c.cmd("SET", k, edited, "KEEPTTL"), "OK")
                self.assertEqual(self.read(s)["email"], edited_email,
                                 "GET did not serve the cached value")
            finally:
                c.cmd("SET", k, original, "KEEPTTL")
            self.assertEqual(self.read(s)["email"], s.email)

    def test_corrupt_cache_value_is_a_miss(self):
        s = self.session(unique_email("cache"))
        self.read(s)
        with self.redis() as c:
            c.cmd("SET", self.key(s), b"\x00garbage{]", "EX", 600)
            self.assertEqual(self.read(s), s.user)
            self.assertNotEqual(c.cmd("GET", self.key(s)), b"\x00garbage{]")

    def test_user_list_and_login_do_not_leak_through_a_stale_cache(self):
        s = self.session(unique_email("cache"))
        self.read(s)
        new = unique_email("fresh")
        self.assertEqual(self.put("/v1/users", {"email": new}, token=s.access).status, 200)
        self.login(new, s.password)
        self.assertEqual(self.read(s)["email"], new)


class CacheTtlTest(HexCase):
    HEXD_ENV = {"HEX_CACHE_TTL": "30"}

    def test_cache_ttl_follows_config(self):
        s = self.session()
        with self.redis() as c:
            c.cmd("DEL", self.cache_key(s.id))
            r = self.get("/v1/users/%s" % s.id, token=s.access)
            self.assertEqual(r.status, 200, r)
            ttl = c.cmd("TTL", self.cache_key(s.id))
        self.assertTrue(0 < ttl <= 30, "TTL %r" % ttl)


class RedisOutageTest(HexCase):
    def setUp(self):
        super().setUp()
        if self.stack.redis.proc is None:
            self.stack.redis.start()

    def read(self, s, max_s=2.0):
        r = self.get("/v1/users/%s" % s.id, token=s.access, timeout=10)
        self.assertEqual(r.status, 200, r)
        self.assertLess(r.elapsed, max_s, "read took %.2f s" % r.elapsed)
        return r.body

    def test_redis_killed_then_restarted(self):
        s = self.session(unique_email("outage"))
        self.read(s)
        port = self.stack.redis.port
        self.stack.redis.stop(signal.SIGKILL)
        for _ in range(5):
            self.assertEqual(self.read(s), s.user)
        # the other use cases keep working without Redis too
        fresh = self.login(s.email, s.password)
        self.assertEqual(fresh["id"], s.id)
        new_user, pw = self.create_user()
        new = unique_email("while-down")
        r = self.put("/v1/users", {"email": new}, token=s.access)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.read(s)["email"], new)
        self.assertEqual(self.get("/readyz").status, 200)
        # Redis comes back on the same port: the cache fills again
        self.stack.redis = harness.RedisServer(self.stack.tmp, port)
        self.stack.redis.start()

        def cached():
            self.read(s)
            with self.redis() as c:
                return c.cmd("EXISTS", self.cache_key(s.id)) == 1

        self.assertTrue(wait_until(cached, 15, 0.25), "cache never filled again")
        self.assertEqual(self.read(s)["email"], new)

    def test_redis_stalled(self):
        s = self.session(unique_email("stall"))
        self.read(s)
        done = threading.Event()

        def stall():
            try:
                with self.stack.redis.client(timeout=10) as c:
                    c.cmd("DEBUG", "SLEEP", "3")
            finally:
                done.set()

        t = threading.Thread(target=stall, daemon=True)
        t.start()
        time.sleep(0.3)
        try:
            self.assertFalse(done.is_set(), "redis did not stall")
            t0 = time.monotonic()
            self.assertEqual(self.read(s), s.user)
            self.login(s.email, s.password)
            self.assertLess(time.monotonic() - t0, 2.5,
                            "hexd waited for the stalled redis")
            self.assertFalse(done.is_set(), "redis recovered before the checks ended")
        finally:
            t.join(10)


class NoCacheTest(HexCase):
    """HEX_REDIS_URL empty: no cache, no limiter store; everything still works."""
    USE_REDIS = False

    def test_everything_works_without_redis(self):
        s = self.session()
        r = self.get("/v1/users/%s" % s.id, token=s.access)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, s.user)
        new = unique_email("nocache")
        self.assertEqual(self.put("/v1/users", {"email": new}, token=s.access).status, 200)
        self.assertEqual(self.get("/v1/users/%s" % s.id, token=s.access).body["email"], new)
        self.assertEqual(self.post("/v1/token/refresh",
                                   {"refresh_token": s.refresh}).status, 200)
        self.assertEqual(self.get("/readyz").status, 200)


if __name__ == "__main__":
    harness.main()
