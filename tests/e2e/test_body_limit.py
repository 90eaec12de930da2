#!/usr/bin/env python3
"""HEX_BODY_LIMIT: bodies over the limit get 413 and change nothing (limit set to 4096)."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase, unique_email  # noqa: E402

LIMIT = 4096


def body_of_size(n, email=None):
    """A valid create-user body padded with an unknown field to exactly n bytes."""
    base = {"email": email or unique_email("limit"), "password": "password1", "pad": ""}
    size = len(json.dumps(base).encode())
    base["pad"] = "p" * (n - size)
    data = json.dumps(base).encode()
    assert len(data) == n, (len(data), n)
    return data, base["email"]


class BodyLimitTest(HexCase):
    HEXD_ENV = {"HEX_BODY_LIMIT": str(LIMIT)}

    def test_body_at_the_limit_is_accepted(self):
        data, email = body_of_size(LIMIT)
        r = self.req("POST", "/v1/users", body=data)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.body["email"], email)

    def test_body_one_byte_over_the_limit_413(self):
        before = self.user_count()
        data, email = body_of_size(LIMIT + 1)
        r = self.req("POST", "/v1/users", body=data)
        self.assertEqual(r.status, 413, r)
        self.assertEqual(self.user_count(), before)
        self.assertEqual(self.stack.db.scalar("SELECT count(*) FROM users WHERE email = %s"
                                              % harness.sql_literal(email)), "0")

    def test_big_bodies_413(self):
        # hexd lets libevent drain the declared body before it answers (lingering
        # close), so the client sends everything and then reads its 413.
        before = self.user_count()
        for size in [64 * 1024, 10 * 1024 * 1024]:
            with self.subTest(size=size):
                data, _ = body_of_size(size)
                r = self.req("POST", "/v1/users", body=data)
                self.assertEqual(r.status, 413, r)
        self.assertEqual(self.user_count(), before)

    def test_chunked_body_over_the_limit_413(self):
        before = self.user_count()
        data, _ = body_of_size(LIMIT * 3)
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 1000]), data[i:i + 1000])
                          for i in range(0, len(data), 1000))
        req = (b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks +
               b"0\r\n\r\n")
        try:
            out = harness.raw_exchange(self.port, req)
        except (ConnectionResetError, BrokenPipeError):
            out = b""
        status, _, _ = harness.parse_raw_response(out)
        self.assertEqual(status, 413, out[:300])
        self.assertEqual(self.user_count(), before)

    def test_chunked_body_under_the_limit_is_accepted(self):
        data, email = body_of_size(LIMIT // 2)
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 500]), data[i:i + 500])
                          for i in range(0, len(data), 500))
        req = (b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks +
               b"0\r\n\r\n")
        status, _, body = harness.parse_raw_response(harness.raw_exchange(self.port, req))
        self.assertEqual(status, 201, body[:300])
        self.assertEqual(json.loads(body)["email"], email)

    def test_server_healthy_after_oversized_bodies(self):
        for _ in range(3):
            try:
                self.req("POST", "/v1/users", body=b"x" * (LIMIT * 4))
            except (ConnectionResetError, BrokenPipeError):
                pass
        self.assertEqual(self.get("/healthz").status, 200)
        self.create_user()


if __name__ == "__main__":
    harness.main()
