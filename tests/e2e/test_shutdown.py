#!/usr/bin/env python3
"""Graceful shutdown: requests in flight at SIGTERM/SIGINT complete, then hexd exits 0."""

import json
import os
import select
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase  # noqa: E402

N_REQUESTS = 6


class ShutdownTest(HexCase):
    # yescrypt cost 7 takes about 0.08 s per hash here and one KDF worker queues the
    # logins behind each other, so most are still running at the signal, while the
    # whole drain stays far below the 10 s shutdown timeout even on a loaded machine.
    HEXD_ENV = {"HEX_PASSWORD_COST": "7", "HEX_KDF_WORKERS": "1"}

    def send_logins(self, email, password, n):
        body = json.dumps({"email": email, "password": password}).encode()
        req = (b"POST /v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
               b"application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" %
               (len(body), body))
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            s.sendall(req)
            socks.append(s)
        return socks

    def setUp(self):
        super().setUp()
        if self.stack.hexd is None:  # an earlier test stopped it and failed early
            self.stack.start_hexd()

    def drain_on(self, sig):
        u, pw = self.create_user()
        socks = self.send_logins(u["email"], pw, N_REQUESTS)
        # Only requests hexd has accepted are in flight: connections still in the
        # kernel's accept queue are reset when the listener closes, as with any server.
        self.assertTrue(harness.wait_until(lambda: harness.accept_backlog(self.port) == 0,
                                           5), "hexd does not accept connections")
        time.sleep(0.05)  # and has read them
        pending = [s for s in socks if not select.select([s], [], [], 0)[0]]
        self.assertGreaterEqual(len(pending), 2,
                                "logins finished before the signal; the test proves nothing")
        h, self.stack.hexd = self.stack.hexd, None
        self.hexd_expected_alive = False
        t0 = time.monotonic()
        h.proc.send_signal(sig)
        replies = [harness.read_all(s) for s in socks]
        try:
            st = h.proc.wait(harness.STOP_TIMEOUT)
        except Exception:
            h.kill()
            st = "no exit within %.0f s" % harness.STOP_TIMEOUT
        shutdown_lines = [l for l in h.log().splitlines() if "shutdown" in l or "drain" in l]
        for i, out in enumerate(replies):
            status, _, body = harness.parse_raw_response(out)
            self.assertEqual(status, 200, "request %d got %r; %s" % (i, out[:300],
                                                                    shutdown_lines))
            self.assertIn("access_token", json.loads(body))
        self.assertEqual(st, 0, "hexd exit status after %s" % sig.name)
        self.assertFalse(harness.sanitizer_lines(h.log()))
        self.assertLess(time.monotonic() - t0, harness.STOP_TIMEOUT)
        # after the drain nobody is listening any more
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", h.http_port), timeout=2).close()
        self.stack.start_hexd()
        self.hexd_expected_alive = True

    def test_sigterm_drains_in_flight_logins(self):
        self.drain_on(signal.SIGTERM)

    def test_sigint_drains_in_flight_logins(self):
        self.drain_on(signal.SIGINT)

    def test_idle_sigterm_exits_0_quickly(self):
        h = self.stack.hexd
        t0 = time.monotonic()
        problems = self.stack.stop_hexd()
        self.hexd_expected_alive = False
        self.assertEqual(problems, [])
        self.assertLess(time.monotonic() - t0, 5.0, "idle shutdown is slow")
        self.assertIsNotNone(h)
        self.stack.start_hexd()
        self.hexd_expected_alive = True


if __name__ == "__main__":
    harness.main()
