#!/usr/bin/env python3
"""HTTP basics of the v1 listener: health, request ids, unknown routes, methods, junk."""

import os
import socket
import sys
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase, JSON_CT, REQUEST_ID_RE  # noqa: E402


def allow_set(r):
    return {m.strip().upper() for m in (r.header("Allow") or "").split(",") if m.strip()}


class HttpBasicsTest(HexCase):
    def test_healthz_ok(self):
        r = self.get("/healthz")
        self.assertEqual(r.status, 200, r)
        self.assertJsonReply(r)
        self.assertEqual(r.body, {"status": "ok"})
        self.assertRequestId(r)

    def test_readyz_ready(self):
        r = self.get("/readyz")
        self.assertEqual(r.status, 200, r)
        self.assertJsonReply(r)
        self.assertEqual(r.body, {"status": "ready"})
        self.assertRequestId(r)

    def test_request_id_echoed_when_valid(self):
        for rid in ["e2e-abc_1.2:3", "A", "x" * 128, "0123456789", "a.b:c-d_e"]:
            with self.subTest(rid=rid):
                r = self.get("/healthz", headers={"X-Request-Id": rid})
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("X-Request-Id"), rid)
                # error replies carry the same id in the body
                r = self.get("/v1/no-such-route", headers={"X-Request-Id": rid})
                self.assertError(r, 404, "not_found")
                self.assertEqual(r.body["request_id"], rid)

    def test_request_id_generated_when_absent(self):
        ids = set()
        for _ in range(5):
            r = self.get("/healthz")
            ids.add(self.assertRequestId(r))
        self.assertEqual(len(ids), 5, "generated request ids repeat: %s" % ids)

    def test_request_id_replaced_when_invalid(self):
        for rid in ["", "has space", "a/b", "x" * 129, "semi;colon", "<script>", "caf\xe9",
                    "a,b"]:
            with self.subTest(rid=rid):
                r = self.get("/v1/no-such-route", headers={"X-Request-Id": rid})
                self.assertError(r, 404, "not_found")
                got = r.header("X-Request-Id")
                self.assertNotEqual(got, rid)
                self.assertRegex(got, REQUEST_ID_RE)

    def test_request_id_on_every_kind_of_reply(self):
        s = self.session()
        replies = {
            "201": self.post("/v1/users", {"email": harness.unique_email(),
                                           "password": "password1"}),
            "400": self.post("/v1/users", body=b"[]"),
            "401": self.get("/v1/users/%s" % s.id),
            "404": self.get("/nope"),
            "405": self.req("PATCH", "/v1/users", body=b"{}"),
            "415": self.post("/v1/users", body=b"{}", content_type="text/plain"),
            "200": self.get("/v1/users/%s" % s.id, token=s.access),
            "204": self.post("/v1/logout", token=s.access),
        }
        for want, r in replies.items():
            with self.subTest(status=want):
                self.assertEqual(str(r.status), want, r)
                self.assertRequestId(r)

    def test_unknown_routes_are_404_json(self):
        for method, path in [("GET", "/"), ("GET", "/nope"), ("GET", "/v1/nope"),
                             ("GET", "/v1"), ("POST", "/v1/users/a/b"),
                             ("GET", "/v2/nothing-here"), ("DELETE", "/v1/users/x/y/z"),
                             ("GET", "/v1/userss")]:
            with self.subTest(method=method, path=path):
                body = b"{}" if method == "POST" else None
                r = self.req(method, path, body=body)
                self.assertError(r, 404, "not_found")

    def test_wrong_method_is_405_with_allow(self):
        cases = [
            ("GET", "/v1/login", {"POST"}),
            ("DELETE", "/v1/login", {"POST"}),
            ("PUT", "/v1/token/refresh", {"POST"}),
            ("GET", "/v1/logout", {"POST"}),
            ("PATCH", "/v1/users", {"GET", "POST", "PUT", "DELETE"}),
            ("POST", "/healthz", {"GET"}),
            ("DELETE", "/readyz", {"GET"}),
            ("PUT", "/v1/users/00000000-0000-4000-8000-000000000000", {"GET"}),
            ("POST", "/v1/users/00000000-0000-4000-8000-000000000000", {"GET"}),
        ]
        for method, path, must_allow in cases:
            with self.subTest(method=method, path=path):
                body = b"{}" if method in ("POST", "PUT", "PATCH") else None
                r = self.req(method, path, body=body)
                self.assertError(r, 405, "method_not_allowed")
                allowed = allow_set(r)
                self.assertTrue(must_allow <= allowed,
                                "Allow %r lacks %s" % (r.header("Allow"), must_allow))
                self.assertNotIn(method, allowed)

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            for _ in range(3):
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                r.read()
        finally:
            conn.close()

    def test_malformed_http_does_not_hurt_the_server(self):
        junk = [
            b"GARBAGE\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET /healthz HTTP/9.9\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n",
            b"\x00\x01\x02\xff\r\n\r\n",
            b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        ]
        for data in junk:
            with self.subTest(data=data[:40]):
                try:
                    out = harness.raw_exchange(self.port, data, timeout=5)
                except (ConnectionResetError, BrokenPipeError, socket.timeout):
                    out = b""
                status, _, _ = harness.parse_raw_response(out) if out else (None, {}, b"")
                if status is not None:
                    self.assertTrue(400 <= status < 500, "junk got %r" % out[:200])
                r = self.get("/healthz")
                self.assertEqual(r.status, 200)

    def test_half_sent_request_does_not_block_others(self):
        # A client that sends half a request and stalls must not stall anyone else.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            s.sendall(b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/json\r\nContent-Length: 100\r\n\r\n{\"email\"")
            r = self.get("/healthz", timeout=5)
            self.assertEqual(r.status, 200)
            self.assertLess(r.elapsed, 2.0)
        finally:
            s.close()

    def test_json_reply_content_type_exact(self):
        for r in [self.get("/healthz"), self.get("/nope"),
                  self.post("/v1/users", body=b"null")]:
            self.assertEqual(r.header("Content-Type"), JSON_CT, r)


if __name__ == "__main__":
    harness.main()
