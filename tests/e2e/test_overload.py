#!/usr/bin/env python3
"""Bounded queues: when the password-hashing pool is full the answer is a fast 503, and
cheap routes on other pools keep answering meanwhile."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase  # noqa: E402


class OverloadTest(HexCase):
    # cost 8 is about 0.3 s per hash; one KDF worker and a queue of one means that of
    # eight simultaneous logins at most two can be running or waiting at any moment.
    HEXD_ENV = {"HEX_PASSWORD_COST": "8", "HEX_KDF_WORKERS": "1", "HEX_QUEUE_MAX": "1"}

    def test_full_queue_answers_503_fast_and_others_still_served(self):
        s = self.session()
        results = []
        go = threading.Event()

        def login():
            go.wait(10)
            results.append(self.post("/v1/login", {"email": s.email,
                                                   "password": s.password}, timeout=60))

        threads = [threading.Thread(target=login) for _ in range(8)]
        for t in threads:
            t.start()
        go.set()
        time.sleep(0.1)
        # a route that needs no hashing is not stuck behind the logins
        r = self.get("/v1/users/%s" % s.id, token=s.access, timeout=10)
        self.assertEqual(r.status, 200, r)
        self.assertLess(r.elapsed, 1.0, "GET waited behind the login queue")
        for t in threads:
            t.join(60)
        busy = [r for r in results if r.status == 503]
        ok = [r for r in results if r.status == 200]
        self.assertEqual(len(busy) + len(ok), 8, results)
        self.assertTrue(ok, "no login got through")
        self.assertTrue(busy, "8 logins against a queue of 1 and nobody got 503")
        for r in busy:
            self.assertError(r, 503, "unavailable")
            self.assertLess(r.elapsed, 1.0, "503 was not fast: %.2f s" % r.elapsed)
        # once the burst is over, logins work again
        self.login(s.email, s.password)


if __name__ == "__main__":
    harness.main()
