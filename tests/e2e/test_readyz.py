#!/usr/bin/env python3
"""Readiness follows the database: 503 while it is unreachable, 200 again after."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase, unique_email, wait_until  # noqa: E402


class DatabaseOutageTest(HexCase):
    def set_connections(self, allowed):
        db = self.stack.db.name
        self.stack.db.admin_sql("ALTER DATABASE %s WITH ALLOW_CONNECTIONS %s" %
                                (db, "true" if allowed else "false"))
        if not allowed:
            self.stack.db.admin_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = '%s' AND pid <> pg_backend_pid()" % db)

    def test_readyz_503_while_database_unreachable_then_recovers(self):
        self.assertEqual(self.get("/readyz").status, 200)
        before = self.user_count()
        self.set_connections(False)
        try:
            r = wait_until(lambda: (lambda x: x if x.status == 503 else None)(
                self.get("/readyz", timeout=10)), 10, 0.2)
            self.assertIsNotNone(r, "readyz never went 503 with the database unreachable")
            self.assertJsonReply(r)
            self.assertError(r, 503, "unavailable")
            # liveness is not readiness
            self.assertEqual(self.get("/healthz").status, 200)
            # a use case that needs the database says so, quickly, instead of hanging
            t0 = time.monotonic()
            r = self.post("/v1/users", {"email": unique_email("outage"),
                                        "password": "password1"}, timeout=20)
            self.assertError(r, 503, "unavailable")
            self.assertLess(time.monotonic() - t0, 10.0)
            r = self.post("/v1/login", {"email": unique_email("outage"),
                                        "password": "password1"}, timeout=20)
            self.assertError(r, 503, "unavailable")
        finally:
            self.set_connections(True)
        r = wait_until(lambda: self.get("/readyz", timeout=10).status == 200, 15, 0.25)
        self.assertTrue(r, "readyz did not recover after the database came back")
        self.assertEqual(self.user_count(), before)

        # Each worker reconnects on its own (with a backoff), so allow a short while,
        # then every request must succeed again.
        def created():
            return self.post("/v1/users", {"email": unique_email("back"),
                                           "password": "password1"}).status == 201

        self.assertTrue(wait_until(created, 15, 0.25), "sign-up never recovered")
        time.sleep(2)
        for _ in range(10):
            self.session()
            self.assertEqual(self.get("/readyz").status, 200)


class DatabaseDownAtStartTest(HexCase):
    START_HEXD = False

    def test_start_with_an_unreachable_database(self):
        port = harness.free_port()  # nobody listens there
        url = "host=127.0.0.1 port=%d user=hex dbname=nowhere connect_timeout=2" % port
        t0 = time.monotonic()
        h = self.stack.spawn_hexd({"HEX_DATABASE_URL": url})
        state = None
        try:
            state = h.wait_healthy(timeout=20)
        finally:
            if state != "ok":
                h.kill()
        if state == "exited":
            # hexd refuses to start: non-zero, quickly, with one line about the database
            self.assertLess(time.monotonic() - t0, 10.0, "slow to give up")
            self.assertNotEqual(h.proc.returncode, 0)
            log = h.log()
            lines = [l for l in log.splitlines() if l.strip()]
            about_db = [l for l in lines if "database" in l.lower() or
                        "postgres" in l.lower()]
            self.assertTrue(about_db, log)
            self.assertIn(lines[-1], about_db, "the last word is not about the database")
            self.assertNotIn(self.stack.jwt_secret, log)
            self.assertFalse(harness.sanitizer_lines(log), log)
            print("\n[e2e] hexd with an unreachable database at start-up: exits %d: %s" %
                  (h.proc.returncode, lines[-1] if lines else ""), file=sys.stderr)
        else:
            self.assertEqual(state, "ok", "hexd neither served nor exited in 20 s:\n" +
                             h.log())
            self.stack.hexd = h
            r = self.get("/readyz")
            self.assertError(r, 503, "unavailable")
            print("\n[e2e] hexd with an unreachable database at start-up: serves, "
                  "readyz 503", file=sys.stderr)
            self.assertEqual(self.stack.stop_hexd(), [])


if __name__ == "__main__":
    harness.main()
