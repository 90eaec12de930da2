#!/usr/bin/env python3
"""Slow and greedy clients: the request deadline (HEX_HTTP_REQUEST_TIMEOUT), the idle
timeout (HEX_HTTP_IDLE_TIMEOUT), the cap of connections per client address
(HEX_HTTP_CONNS_PER_ADDR, trusted proxies exempt) and the header limit (HEX_HEADER_LIMIT).
Every limit is set low here so that the test takes seconds."""

import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase, PaymentCase, parse_raw_response, unique_email  # noqa: E402

REQUEST_TIMEOUT = 2
IDLE_TIMEOUT = 4
CAP = 5


def connect(port, timeout=10.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_until_closed(s, limit_s):
    """Every byte until the server closes (or limit_s): (bytes, seconds, closed)."""
    t0 = time.monotonic()
    chunks = []
    s.settimeout(0.2)
    while time.monotonic() - t0 < limit_s:
        try:
            c = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return b"".join(chunks), time.monotonic() - t0, True
        if not c:
            return b"".join(chunks), time.monotonic() - t0, True
        chunks.append(c)
    return b"".join(chunks), time.monotonic() - t0, False


def trickle(s, data, every_s, stop):
    """Sends data one byte per every_s until it is all sent, stop is set or the peer
    closes."""
    for i in range(len(data)):
        if stop.is_set():
            return
        try:
            s.sendall(data[i:i + 1])
        except OSError:
            return
        time.sleep(every_s)


def metric(case, name, labels):
    text = case.get("/metrics").raw.decode()
    for line in text.splitlines():
        if line.startswith(name + "{" + labels + "}"):
            return float(line.split()[-1])
    return None


class RequestDeadlineTest(HexCase):
    HEXD_ENV = {"HEX_HTTP_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
                "HEX_HTTP_IDLE_TIMEOUT": str(IDLE_TIMEOUT)}

    def slow(self, data, every_s=0.5, first=b""):
        """Sends first, then trickles data on a fresh connection; returns (status, headers,
        body, seconds, closed) of what the server said before closing."""
        s = connect(self.port)
        s.sendall(first)
        stop = threading.Event()
        t = threading.Thread(target=trickle, args=(s, data, every_s, stop), daemon=True)
        t0 = time.monotonic()
        t.start()
        try:
            data, _, closed = read_until_closed(s, REQUEST_TIMEOUT + IDLE_TIMEOUT + 4)
        finally:
            stop.set()
            s.close()
            t.join(5)
        status, hdrs, body = parse_raw_response(data)
        return status, hdrs, body, time.monotonic() - t0, closed

    def assert_timed_out(self, status, hdrs, body, took, closed):
        self.assertTrue(closed, "the connection was not closed")
        self.assertEqual(status, 408, (status, body))
        self.assertEqual(json.loads(body)["code"], "request_timeout")
        self.assertEqual(hdrs.get("connection"), "close")
        # the deadline, not the idle timeout (which every byte restarts) ended it
        self.assertGreaterEqual(took, REQUEST_TIMEOUT - 0.2)
        self.assertLess(took, REQUEST_TIMEOUT + 1.5)

    def test_headers_trickled_get_408_at_the_deadline(self):
        before = metric(self, "hex_http_connections_closed_total", 'reason="timeout"')
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
        self.assert_timed_out(*self.slow(head))
        self.assertEqual(metric(self, "hex_http_connections_closed_total",
                                'reason="timeout"'), before + 1)
        self.assertIn("http_request_timeout", self.stack.log_tail())

    def test_body_trickled_gets_408_and_nothing_is_created(self):
        email = unique_email("slowbody")
        body = json.dumps({"email": email, "password": "password1"}).encode()
        head = ("POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n" % len(body)).encode()
        self.assert_timed_out(*self.slow(body[10:], first=head + body[:10]))
        self.assertEqual(self.stack.db.scalar(
            "SELECT count(*) FROM users WHERE email = '%s'" % email), "0")

    def test_others_are_served_meanwhile(self):
        stop = threading.Event()
        socks = []
        threads = []
        for _ in range(20):
            s = connect(self.port)
            socks.append(s)
            t = threading.Thread(target=trickle, args=(s, b"GET /healthz HTTP/1.1\r\n" * 50,
                                                       0.3, stop), daemon=True)
            t.start()
            threads.append(t)
        try:
            worst = 0.0
            for _ in range(20):
                r = self.get("/healthz")
                self.assertEqual(r.status, 200)
                worst = max(worst, r.elapsed)
                time.sleep(0.05)
            self.assertLess(worst, 1.0, "a request waited %.2f s behind slow clients" % worst)
            # and the slow ones are all gone after the deadline
            closed = 0
            for s in socks:
                _, _, c = read_until_closed(s, REQUEST_TIMEOUT + 2)
                closed += c
            self.assertEqual(closed, len(socks))
        finally:
            stop.set()
            for s in socks:
                s.close()
            for t in threads:
                t.join(5)

    def test_an_idle_keep_alive_connection_is_not_a_slow_request(self):
        s = connect(self.port)
        try:
            req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            s.sendall(req)
            status, _, _ = parse_raw_response(s.recv(65536))
            self.assertEqual(status, 200)
            time.sleep(REQUEST_TIMEOUT + 1)  # idle, longer than the request deadline
            s.sendall(req)
            status, _, _ = parse_raw_response(s.recv(65536))
            self.assertEqual(status, 200)
        finally:
            s.close()

    def test_a_silent_connection_closes_at_the_idle_timeout_without_answer(self):
        s = connect(self.port)
        try:
            data, took, closed = read_until_closed(s, IDLE_TIMEOUT + 3)
        finally:
            s.close()
        self.assertTrue(closed)
        self.assertEqual(data, b"")
        self.assertGreaterEqual(took, IDLE_TIMEOUT - 0.5)


class SlowAnswerTest(PaymentCase):
    """The deadline covers receiving a request, not answering it: a payment whose Stripe
    call takes longer than the deadline still gets its 201."""
    HEXD_ENV = {"HEX_HTTP_REQUEST_TIMEOUT": "1"}

    def test_a_payment_answered_after_the_deadline_still_gets_201(self):
        s = self.session()
        self.fake_stripe.control(delay_next=[2500])
        r = self.create_payment(s, key="slow-answer-1")
        self.assertEqual(r.status, 201, r)
        self.assertGreater(r.elapsed, 2.0, "the fake Stripe did not hold the call")


class AddressCapTest(HexCase):
    HEXD_ENV = {"HEX_HTTP_CONNS_PER_ADDR": str(CAP)}

    def hold(self, n):
        """n connections that each sent part of a request (so hexd has seen them)."""
        socks = []
        for _ in range(n):
            s = connect(self.port)
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            socks.append(s)
        time.sleep(0.3)
        return socks

    def test_connection_over_the_cap_gets_503_and_runs_nothing(self):
        held = self.hold(CAP)
        try:
            email = unique_email("capped")
            body = json.dumps({"email": email, "password": "password1"})
            data = ("POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n%s" % (len(body), body)).encode()
            status, hdrs, rbody = parse_raw_response(harness.raw_exchange(self.port, data))
            self.assertEqual(status, 503, rbody)
            self.assertEqual(json.loads(rbody)["code"], "too_many_connections")
            self.assertEqual(hdrs.get("retry-after"), "1")
            time.sleep(0.3)
            self.assertEqual(self.stack.db.scalar(
                "SELECT count(*) FROM users WHERE email = '%s'" % email), "0")
            self.assertIn("http_connection_refused", self.stack.log_tail())
            # counted by the guard, not as a server error in the access log
            self.assertNotIn('"status":503', "\n".join(
                l for l in self.stack.log_tail().splitlines() if '"http_request"' in l))
            # another client address is not affected (127.0.0.3 is loopback too)
            with socket.create_connection(("127.0.0.1", self.port), timeout=10,
                                          source_address=("127.0.0.3", 0)) as other:
                other.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data, _, _ = read_until_closed(other, 5)
            self.assertEqual(parse_raw_response(data)[0], 200, data)
        finally:
            for s in held:
                s.close()
        # the held ones are gone: room again
        time.sleep(0.3)
        self.assertEqual(self.get("/healthz").status, 200)
        self.assertGreaterEqual(metric(self, "hex_http_connections_closed_total",
                                       'reason="refused"'), 1)

    def test_connections_under_the_cap_are_all_served(self):
        held = self.hold(CAP - 1)
        try:
            self.assertEqual(self.get("/healthz").status, 200)
        finally:
            for s in held:
                s.close()


class TrustedProxyUncappedTest(HexCase):
    HEXD_ENV = {"HEX_HTTP_CONNS_PER_ADDR": str(CAP), "HEX_TRUSTED_PROXIES": "127.0.0.1"}

    def test_a_trusted_proxy_may_hold_more(self):
        held = []
        try:
            for _ in range(CAP * 2):
                s = connect(self.port)
                s.sendall(b"GET /healthz HTTP/1.1\r\n")
                held.append(s)
            time.sleep(0.3)
            self.assertEqual(self.get("/healthz").status, 200)
        finally:
            for s in held:
                s.close()


class HeaderLimitTest(HexCase):
    HEXD_ENV = {"HEX_HEADER_LIMIT": "2048"}

    def test_headers_over_the_setting_are_refused(self):
        self.assertEqual(self.get("/healthz", headers={"X-Pad": "a" * 1000}).status, 200)
        r = self.get("/healthz", headers={"X-Pad": "a" * 3000})
        self.assertEqual(r.status, 400)
        self.assertEqual(self.get("/healthz").status, 200)

    def test_out_of_range_settings_stop_start_up(self):
        for key, value in [("HEX_HEADER_LIMIT", "100"), ("HEX_HTTP_REQUEST_TIMEOUT", "-1"),
                           ("HEX_HTTP_IDLE_TIMEOUT", "0"), ("HEX_HTTP_CONNS_PER_ADDR", "x")]:
            p = self.stack.run_hexd(["serve"], overrides={key: value}, timeout=20)
            self.assertNotEqual(p.returncode, 0, key)
            self.assertIn(key, p.stderr)


if __name__ == "__main__":
    harness.main()
