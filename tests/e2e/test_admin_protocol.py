#!/usr/bin/env python3
"""The admin port's protocol (docs/ADMIN.md) against a running hexd: AUTH and its
failures, framing (quotes, blank lines, pipelining, the 64 KiB limit, garbage bytes),
unknown verbs and wrong arguments, QUIT, the connection limit, the AUTH deadline, a slow
subscriber, the latency and log subscriptions, the unix socket, and start-up refusals of
bad admin settings. The data verbs are tested in test_admin_verbs.py."""

import concurrent.futures
import http.client
import json
import os
import re
import secrets
import socket
import stat
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (AdminClient, AdminClosed, HexCase, TIME_RE, free_port,  # noqa: E402
                     wait_until)

LINE_MAX = 64 * 1024


def slowdown():
    return 3.0 if harness.SANITIZED else 1.0


ANY = object()


def assert_error(test, reply, code, field=None):
    """{"ok":false,"error":"<sentence>","code":code[,"field":field]} and nothing else
    (field ANY: with or without one)."""
    test.assertIsInstance(reply, dict, reply)
    test.assertIs(reply.get("ok"), False, reply)
    test.assertEqual(reply.get("code"), code, reply)
    test.assertIsInstance(reply.get("error"), str, reply)
    test.assertTrue(reply["error"].strip(), reply)
    if field is ANY:
        test.assertLessEqual(set(reply) - {"field"}, {"ok", "error", "code"}, reply)
        return
    want = {"ok", "error", "code"} | ({"field"} if field is not None else set())
    test.assertEqual(set(reply), want, reply)
    if field is not None:
        test.assertEqual(reply["field"], field, reply)


def ok_data(test, reply):
    test.assertIsInstance(reply, dict, reply)
    test.assertEqual(set(reply), {"ok", "data"}, reply)
    test.assertIs(reply["ok"], True, reply)
    return reply["data"]


class KeepAlive:
    """Requests on one keep-alive HTTP connection (faster than one connection each)."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path, headers=None):
        try:
            self.conn.request("GET", path, headers=headers or {})
            r = self.conn.getresponse()
            r.read()
            return r.status
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            return None

    def close(self):
        self.conn.close()


def hammer(port, path, seconds=None, count=None, threads=4, headers=None):
    """GETs path from several threads for `seconds` or `count` requests in all."""
    stop = time.monotonic() + seconds if seconds is not None else None
    done = [0]
    lock = threading.Lock()

    def run():
        c = KeepAlive(port)
        try:
            while True:
                with lock:
                    if count is not None and done[0] >= count:
                        return
                    done[0] += 1
                if stop is not None and time.monotonic() >= stop:
                    return
                c.get(path, headers)
        finally:
            c.close()

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return done[0]


class AdminProtocolTest(HexCase):
    """One hexd with the admin port on TCP (the stack's HEX_ADMIN_LISTEN/TOKEN)."""

    def healthy(self):
        self.assertEqual(self.get("/healthz").status, 200)

    # -- AUTH

    def test_auth_names_the_operator_and_commands_follow(self):
        c = self.admin_connect(auth=False)
        self.assertEqual(ok_data(self, c.auth(self.stack.admin_token, "alice.ops@example-1")),
                         {"operator": "alice.ops@example-1"})
        self.assertEqual(ok_data(self, c.call("PING")), "pong")
        self.assertEqual(ok_data(self, c.call("ping")), "pong")  # verbs: any case
        self.assertEqual(ok_data(self, c.call("PiNg")), "pong")
        self.assertIn("operator alice.ops@example-1", self.stack.hexd.log())

    def test_auth_without_operator_is_unknown(self):
        c = self.admin_connect(auth=False)
        self.assertEqual(ok_data(self, c.call("auth %s" % self.stack.admin_token)),
                         {"operator": "unknown"})
        self.assertEqual(ok_data(self, c.call("PING")), "pong")

    def test_auth_accepts_crlf_and_longest_operator(self):
        c = self.admin_connect(auth=False)
        op = "o" * 63
        c.send_raw(b"AUTH %s %s\r\n" % (self.stack.admin_token.encode(), op.encode()))
        self.assertEqual(ok_data(self, c.reply()), {"operator": op})
        c.send_raw(b"PING\r\n")
        self.assertEqual(ok_data(self, c.reply()), "pong")

    def test_wrong_token_is_answered_then_closed(self):
        wrong = "wrong-" + secrets.token_hex(12)
        self.stack.note_secret(wrong)  # must not reach the log either
        for token in (wrong, self.stack.admin_token[:-1], self.stack.admin_token + "x",
                      self.stack.admin_token.upper(), '""'):
            with self.subTest(token=token[:8]):
                c = self.admin_connect(auth=False)
                assert_error(self, c.call("AUTH %s ops" % token), "unauthorized")
                self.assertEqual(c.wait_closed(), b"")
        self.assertIn("admin_auth_failed", self.stack.hexd.log())
        self.healthy()

    def test_first_line_must_be_auth(self):
        for line in ("PING", "AUTH", "HELP", "AUTH %s ops extra" % self.stack.admin_token,
                     "SUBSCRIBE LOG", '"unclosed'):
            with self.subTest(line=line[:20]):
                c = self.admin_connect(auth=False)
                assert_error(self, c.call(line), "unauthorized")
                self.assertEqual(c.wait_closed(), b"")

    def test_commands_sent_with_a_wrong_auth_are_not_run(self):
        c = self.admin_connect(auth=False)
        c.send_raw(b"AUTH nope\nPING\nSUBSCRIBE LOG\n")
        assert_error(self, c.reply(), "unauthorized")
        self.assertEqual(c.wait_closed(), b"")  # no pong, no subscription

    def test_bad_operator_is_refused_and_closed(self):
        for op in ("o" * 64, '"two words"', "semi;colon", "ünï", '""', "tab\\there"):
            with self.subTest(op=op[:10]):
                c = self.admin_connect(auth=False)
                assert_error(self, c.call("AUTH %s %s" % (self.stack.admin_token, op)),
                             "invalid_argument", field="operator")
                self.assertEqual(c.wait_closed(), b"")

    def test_auth_twice_is_an_error_not_a_disconnect(self):
        c = self.admin_connect("bob")
        assert_error(self, c.call("AUTH %s carol" % self.stack.admin_token),
                     "invalid_argument")
        self.assertEqual(ok_data(self, c.call("PING")), "pong")

    def test_token_never_logged(self):
        c = self.admin_connect("tokencheck")
        c.call("PING")
        bad = self.admin_connect(auth=False)
        bad.call("AUTH %s" % self.stack.admin_token[::-1])
        log = self.stack.hexd.log()
        self.assertNotIn(self.stack.admin_token, log)
        self.assertNotIn(self.stack.admin_token[::-1], log)

    # -- lines

    def test_unknown_verb_keeps_the_connection(self):
        c = self.admin_connect()
        r = c.call("FROBNICATE now")
        assert_error(self, r, "unknown_verb")
        self.assertIn("FROBNICATE", r["error"])
        assert_error(self, c.call("USERS FROBNICATE"), "unknown_verb")
        self.assertEqual(ok_data(self, c.call("PING")), "pong")

    def test_wrong_argument_count(self):
        c = self.admin_connect()
        assert_error(self, c.call("PING extra"), "invalid_argument", field=ANY)
        assert_error(self, c.call("QUIT now"), "invalid_argument", field="args")
        assert_error(self, c.call("SUBSCRIBE"), "invalid_argument", field="topic")
        assert_error(self, c.call("SUBSCRIBE LOG LATENCY"), "invalid_argument", field="args")
        assert_error(self, c.call("UNSUBSCRIBE LOG LATENCY"), "invalid_argument",
                     field="args")
        self.assertEqual(ok_data(self, c.call("PING")), "pong")

    def test_bad_quoting_is_invalid_argument(self):
        c = self.admin_connect()
        for line in ('PING "unclosed', 'USERS SEARCH "a\\"', '"'):
            with self.subTest(line=line):
                r = c.call(line)
                assert_error(self, r, "invalid_argument")
                self.assertIn("quote", r["error"])
        # quotes that close are fine: "PING" is the verb PING
        self.assertEqual(ok_data(self, c.call('"PING"')), "pong")
        self.assertEqual(ok_data(self, c.call('P"IN"G')), "pong")

    def test_too_many_words(self):
        c = self.admin_connect()
        r = c.call("PING " + " ".join(["w"] * 40))
        assert_error(self, r, "invalid_argument")
        self.assertIn("32", r["error"])
        self.assertEqual(ok_data(self, c.call("PING")), "pong")

    def test_blank_lines_are_no_commands(self):
        c = self.admin_connect()
        c.send_raw(b"\n \t \n\r\nPING\n\n")
        self.assertEqual(ok_data(self, c.reply()), "pong")
        self.assertEqual(ok_data(self, c.call("PING")), "pong")  # no stray reply between

    def test_pipelined_commands_answered_in_order(self):
        c = self.admin_connect()
        c.send_raw(b"PING\nNOPE\nHELP\nPING extra\nPING\n")
        self.assertEqual(ok_data(self, c.reply()), "pong")
        assert_error(self, c.reply(), "unknown_verb")
        self.assertIsInstance(ok_data(self, c.reply()), list)
        assert_error(self, c.reply(), "invalid_argument", field=ANY)
        self.assertEqual(ok_data(self, c.reply()), "pong")

    def test_line_at_the_limit_is_served(self):
        c = self.admin_connect()
        line = b"PING" + b" " * (LINE_MAX - 4)
        self.assertEqual(len(line), LINE_MAX)
        c.send_raw(line + b"\n")
        self.assertEqual(ok_data(self, c.reply()), "pong")
        c.send_raw(line + b"\r\n")  # the \r is not part of the line
        self.assertEqual(ok_data(self, c.reply()), "pong")

    def test_line_over_the_limit_closes(self):
        for extra, tail in ((1, b"\n"), (1024, b"\n"), (200 * 1024, b""), (1, b"")):
            with self.subTest(extra=extra, newline=bool(tail)):
                c = self.admin_connect()
                data = b"PING" + b" " * (LINE_MAX - 4 + extra) + tail
                # sent from a thread: hexd stops reading at the limit, which may leave
                # sendall waiting until hexd has drained and closed
                t = threading.Thread(target=lambda: self._send_ignoring_reset(c, data))
                t.start()
                assert_error(self, c.reply(), "line_too_long")
                self.assertEqual(c.wait_closed(), b"")
                t.join(10)
        self.assertIn("admin_line_too_long", self.stack.hexd.log())
        self.healthy()
        self.assertEqual(ok_data(self, self.admin_connect().call("PING")), "pong")

    @staticmethod
    def _send_ignoring_reset(c, data):
        try:
            c.send_raw(data)
        except OSError:
            pass

    def test_binary_garbage_gets_errors_not_a_crash(self):
        c = self.admin_connect()
        rnd = secrets.token_bytes(4096)

        def is_command(line):  # what hexd answers: not blank once a final \r is cut
            line = line[:-1] if line.endswith(b"\r") else line
            return line.strip(b" \t") != b""

        lines = [l for l in rnd.split(b"\n") if is_command(l)]
        c.send_raw(rnd + b"\n")
        for _ in lines:
            r = c.reply()
            self.assertIs(r.get("ok"), False, r)
            self.assertIn(r.get("code"), ("invalid_argument", "unknown_verb"), r)
        for line in (b"PING\x00", b"\xff\xfePING", b"PING \xc3", b"\x1b[2J\x07",
                     b"USERS SHOW \xed\xa0\x80"):
            with self.subTest(line=line):
                r = c.call(line)
                self.assertIs(r.get("ok"), False, r)
                self.assertIn(r.get("code"), ("invalid_argument", "unknown_verb"), r)
        self.assertEqual(ok_data(self, c.call("PING")), "pong")
        # garbage instead of AUTH: refused and closed
        g = self.admin_connect(auth=False)
        g.send_raw(b"\x00\x01\x02\xff\n")
        assert_error(self, g.reply(), "unauthorized")
        self.assertEqual(g.wait_closed(), b"")
        # and a TLS ClientHello, as from a client pointed at the wrong port
        t = self.admin_connect(auth=False)
        t.send_raw(bytes.fromhex("16030100a5010000a10303") + secrets.token_bytes(200) + b"\n")
        self.assertIs(t.reply().get("ok"), False)
        t.wait_closed()
        self.healthy()

    # -- verbs the server owns

    def test_help_lists_the_server_verbs(self):
        c = self.admin_connect()
        verbs = ok_data(self, c.call("HELP"))
        self.assertIsInstance(verbs, list)
        names = {v.get("verb") for v in verbs}
        for name in ("PING", "HELP", "QUIT"):
            self.assertIn(name, names)
        self.assertTrue(any(n and n.startswith("SUBSCRIBE") for n in names), names)
        self.assertTrue(any(n and n.startswith("UNSUBSCRIBE") for n in names), names)
        for v in verbs:
            self.assertTrue({"verb", "usage", "summary", "mutating"} <= set(v), v)

    def test_quit_says_bye_and_closes(self):
        c = self.admin_connect()
        c.send_raw(b"QUIT\nPING\n")  # nothing after QUIT runs
        self.assertEqual(ok_data(self, c.reply()), "bye")
        self.assertEqual(c.wait_closed(), b"")
        c2 = self.admin_connect()
        self.assertEqual(ok_data(self, c2.call("quit")), "bye")
        self.assertEqual(c2.wait_closed(), b"")

    def test_half_closed_client_still_gets_its_replies(self):
        with socket.create_connection(("127.0.0.1", self.stack.admin_port), timeout=10) as s:
            s.sendall(b"AUTH %s half\nPING\nHELP\nPING" % self.stack.admin_token.encode())
            s.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        lines = data.split(b"\n")
        self.assertEqual(lines[-1], b"")  # every reply ends with a newline
        replies = [json.loads(l) for l in lines[:-1]]
        self.assertEqual(len(replies), 3, replies)  # the last PING had no newline
        self.assertEqual(replies[0]["data"], {"operator": "half"})
        self.assertEqual(replies[1]["data"], "pong")
        self.assertIsInstance(replies[2]["data"], list)

    def test_stats_shows_this_process(self):
        c = self.admin_connect("stats")
        before = ok_data(self, c.call("STATS"))
        self.assertEqual(before["pid"], self.stack.hexd.proc.pid)
        self.assertEqual(before["roles"], ["api", "worker"])
        self.assertRegex(before["version"], r"^\d+\.\d+\.\d+")
        self.assertGreaterEqual(before["uptime_s"], 0)
        self.assertGreater(before["rss_bytes"], 1 << 20)
        self.assertGreater(before["open_fds"], 5)
        pools = {p["name"]: p for p in before["pools"]}
        self.assertEqual(set(pools), {"api", "kdf", "gateway", "admin"})
        self.assertEqual(pools["api"]["threads"], 4)  # the stack's HEX_WORKERS
        self.assertEqual(pools["admin"]["threads"], 2)  # HEX_ADMIN_WORKERS default
        # this very STATS, and at most one command an earlier test left running (its
        # client gone, it still finishes on its admin worker)
        self.assertIn(pools["admin"]["busy"], (1, 2))
        for p in pools.values():
            self.assertEqual(set(p), {"name", "threads", "busy", "queued", "rejected"}, p)
        self.assertEqual(set(before["cache"]), {"hits", "misses", "errors"})
        hammer(self.port, "/healthz", count=57, threads=1)
        after = ok_data(self, c.call("STATS"))
        self.assertGreaterEqual(after["requests_total"] - before["requests_total"], 57)
        self.assertLess(after["requests_total"] - before["requests_total"], 57 + 20)

    # -- subscriptions

    def test_subscribe_latency_ticks_every_second_and_moves(self):
        c = self.admin_connect("lat")
        self.assertEqual(ok_data(self, c.call("SUBSCRIBE LATENCY")),
                         {"subscribed": "latency", "interval_ms": 1000})
        self.assertEqual(ok_data(self, c.call("subscribe latency")),  # again: no double
                         {"subscribed": "latency", "interval_ms": 1000})
        route = "GET /v1/users/:id"
        stop = threading.Event()

        def load():
            k = KeepAlive(self.port)
            while not stop.is_set():
                k.get("/v1/users/%s" % "00000000-0000-4000-8000-000000000000")
            k.close()

        t = threading.Thread(target=load)
        t.start()
        try:
            ticks = []
            arrived = []
            while len(ticks) < 4:
                ticks.append(c.next_event("latency", timeout=5 * slowdown()))
                arrived.append(time.monotonic())
        finally:
            stop.set()
            t.join()
        for ev in ticks:
            self.assertEqual(set(ev), {"event", "data"}, ev)
            d = ev["data"]
            self.assertEqual(set(d), {"time", "window_s", "routes"}, d)
            self.assertRegex(d["time"], TIME_RE)
            self.assertEqual(d["window_s"], 10)
            for r in d["routes"]:
                self.assertEqual(set(r), {"route", "rps", "error_rate", "p50_ms", "p95_ms",
                                          "p99_ms"}, r)
                self.assertGreater(r["rps"], 0, r)
                self.assertTrue(0 <= r["error_rate"] <= 1, r)
                self.assertTrue(0 <= r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"], r)
        gaps = [b - a for a, b in zip(arrived[1:], arrived[2:])]  # the first may be partial
        for g in gaps:
            self.assertGreater(g, 0.5, gaps)
            self.assertLess(g, 1.5 * slowdown(), gaps)

        def rps(ev):
            rows = [r for r in ev["data"]["routes"] if r["route"] == route]
            return rows[0]["rps"] if rows else 0.0

        self.assertGreater(rps(ticks[-1]), 0, ticks[-1])
        self.assertGreater(rps(ticks[-1]), rps(ticks[0]), [rps(x) for x in ticks])
        # no traffic on a route means it is left out
        self.assertFalse([r for r in ticks[-1]["data"]["routes"]
                          if r["route"] == "DELETE /v1/messages/:id"])
        self.assertEqual(ok_data(self, c.call("UNSUBSCRIBE LATENCY")),
                         {"unsubscribed": ["latency"]})
        c.events.clear()
        time.sleep(2.5)
        self.assertEqual(ok_data(self, c.call("PING")), "pong")
        self.assertEqual(c.events, [], "ticks after UNSUBSCRIBE")

    def test_subscribe_log_streams_access_lines_until_unsubscribed(self):
        c = self.admin_connect("logwatch")
        self.assertEqual(ok_data(self, c.call("SUBSCRIBE LOG")), {"subscribed": "log"})
        rid = "admin-log-" + secrets.token_hex(8)
        r = self.get("/v1/no-such-route", headers={"X-Request-Id": rid})
        self.assertEqual(r.status, 404)
        deadline = time.monotonic() + 10 * slowdown()
        seen = None
        while seen is None and time.monotonic() < deadline:
            ev = c.next_event(timeout=10 * slowdown())
            self.assertIn(ev["event"], ("log", "log_dropped"), ev)
            if ev["event"] == "log" and ev["data"].get("request_id") == rid:
                seen = ev
        self.assertIsNotNone(seen, "no log event for request %s" % rid)
        self.assertEqual(set(seen), {"event", "data"})
        d = seen["data"]
        self.assertEqual(d["event"], "http_request")
        self.assertEqual(d["status"], 404)
        self.assertEqual(d["level"], "info")
        self.assertRegex(d["time"], TIME_RE)

        self.assertEqual(ok_data(self, c.call("UNSUBSCRIBE LOG")), {"unsubscribed": ["log"]})
        c.events.clear()
        rid2 = "admin-log-after-" + secrets.token_hex(8)
        self.assertEqual(self.get("/v1/no-such-route", headers={"X-Request-Id": rid2}).status,
                         404)
        time.sleep(1.0)
        self.assertEqual(ok_data(self, c.call("PING")), "pong")
        self.assertEqual(c.events, [], "log lines after UNSUBSCRIBE LOG")
        self.assertIn(rid2, self.stack.hexd.log())  # it was logged, just not sent

    def test_log_subscribers_each_get_every_line(self):
        a = self.admin_connect("a")
        b = self.admin_connect("b")
        for c in (a, b):
            ok_data(self, c.call("SUBSCRIBE LOG"))
        rids = ["fanout-%d-%s" % (i, secrets.token_hex(4)) for i in range(20)]
        k = KeepAlive(self.port)
        for rid in rids:
            k.get("/v1/none", headers={"X-Request-Id": rid})
        k.close()
        for c in (a, b):
            got = []
            while len(got) < len(rids):
                ev = c.next_event("log", timeout=10 * slowdown())
                if ev["data"].get("request_id", "").startswith("fanout-"):
                    got.append(ev["data"]["request_id"])
            self.assertEqual(got, rids)  # all of them, in order
        a.call("UNSUBSCRIBE")
        # b still subscribed: the feed goes on for it
        rid = "after-a-left-" + secrets.token_hex(4)
        self.get("/v1/none", headers={"X-Request-Id": rid})
        while True:
            ev = b.next_event("log", timeout=10 * slowdown())
            if ev["data"].get("request_id") == rid:
                break

    def test_commands_answered_while_subscribed(self):
        c = self.admin_connect("busybee")
        ok_data(self, c.call("SUBSCRIBE LATENCY"))
        ok_data(self, c.call("SUBSCRIBE LOG"))
        hammer(self.port, "/healthz", count=200)
        for _ in range(5):
            self.assertEqual(ok_data(self, c.call("PING")), "pong")
            self.assertIsInstance(ok_data(self, c.call("HELP")), list)
            time.sleep(0.3)
        self.assertTrue(any(e["event"] == "log" for e in c.events), c.events[:3])
        self.assertTrue(any(e["event"] == "latency" for e in c.events), c.events[:3])
        # events never carry "ok"; replies never carry "event"
        for e in c.events:
            self.assertNotIn("ok", e)
        self.assertEqual(ok_data(self, c.call("UNSUBSCRIBE")),
                         {"unsubscribed": ["latency", "log"]})

    def test_subscribe_errors(self):
        c = self.admin_connect()
        assert_error(self, c.call("SUBSCRIBE METRICS"), "invalid_argument", field="topic")
        assert_error(self, c.call("UNSUBSCRIBE EVERYTHING"), "invalid_argument", field="topic")
        self.assertEqual(ok_data(self, c.call("UNSUBSCRIBE")), {"unsubscribed": []})
        self.assertEqual(ok_data(self, c.call("UNSUBSCRIBE log")), {"unsubscribed": []})
        self.assertEqual(ok_data(self, c.call("subscribe Log")), {"subscribed": "log"})
        self.assertEqual(ok_data(self, c.call("unsubscribe LOG")), {"unsubscribed": ["log"]})

    def test_slow_log_reader_is_disconnected_and_hexd_stays_healthy(self):
        marks = self.stack.log_marks()
        slow = self.admin_connect("slowpoke", rcvbuf=4096)
        ok_data(self, slow.call("SUBSCRIBE LOG"))
        watcher = self.admin_connect("watcher")
        ok_data(self, watcher.call("SUBSCRIBE LATENCY"))
        rid = "slow-" + "x" * 120  # long ids make long lines: fewer requests needed
        deadline = time.monotonic() + 90

        def dropped():
            return "admin_slow_reader" in self.stack.log_since(marks, max_lines=100000)

        while not dropped() and time.monotonic() < deadline:
            hammer(self.port, "/v1/none", count=2000, threads=4,
                   headers={"X-Request-Id": rid})
        self.assertTrue(dropped(), "the slow reader was never disconnected")
        # what was sent before the cut is still readable, then the end
        rest = slow.wait_closed(timeout=20)
        self.assertTrue(rest.startswith(b'{"event":"log"'), rest[:100])
        # hexd and the other operator carry on
        self.healthy()
        self.assertEqual(ok_data(self, watcher.call("PING")), "pong")
        self.assertIn("slowpoke", self.stack.log_since(marks, max_lines=100000))
        fresh = self.admin_connect("fresh")
        self.assertEqual(ok_data(self, fresh.call("PING")), "pong")

    def test_stop_with_operators_connected(self):
        subscribed = self.admin_connect("stays")
        ok_data(self, subscribed.call("SUBSCRIBE LOG"))
        ok_data(self, subscribed.call("SUBSCRIBE LATENCY"))
        idle = self.admin_connect(auth=False)
        half = self.admin_connect()
        half.send_raw(b"PIN")  # half a command
        problems = self.stack.stop_hexd()
        self.assertEqual(problems, [])
        for c in (subscribed, idle, half):
            c.wait_closed(timeout=5)
        self.stack.start_hexd()
        self.assertEqual(ok_data(self, self.admin_connect().call("PING")), "pong")


class AdminConnectionLimitTest(HexCase):
    """A hexd of its own, so that no other test's connections count."""

    def test_64_served_the_rest_busy(self):
        clients = [AdminClient(port=self.stack.admin_port) for _ in range(70)]
        try:
            # every connection is in before any AUTH: exactly 64 places
            for i, c in enumerate(clients):
                try:
                    c.send_line("AUTH %s op%d" % (self.stack.admin_token, i))
                except OSError:
                    pass  # a refused one may be gone already
            served, busy = [], []
            for c in clients:
                r = c.reply()
                if r.get("ok") is True:
                    served.append(c)
                else:
                    assert_error(self, r, "busy")
                    self.assertEqual(c.wait_closed(), b"")
                    busy.append(c)
            self.assertEqual((len(served), len(busy)), (64, 6))

            def ping(c):
                return c.call("PING")

            with concurrent.futures.ThreadPoolExecutor(16) as ex:
                for r in ex.map(ping, served):
                    self.assertEqual(r, {"ok": True, "data": "pong"})
            self.assertIn("admin_busy", self.stack.hexd.log())
            # a place freed is a place taken
            served[0].close()
            served[1].call("QUIT")
            served[1].wait_closed()

            def new_one_served():
                c = AdminClient(port=self.stack.admin_port)
                try:
                    return c.auth(self.stack.admin_token).get("ok") is True
                except AdminClosed:
                    return False
                finally:
                    c.close()

            self.assertTrue(wait_until(new_one_served, 5), "no place after two left")
        finally:
            for c in clients:
                c.close()
        self.assertEqual(self.get("/healthz").status, 200)


class AdminAuthDeadlineTest(HexCase):
    def test_unauthenticated_connections_closed_after_10_s(self):
        silent = self.admin_connect(auth=False, timeout=30)
        dribble = self.admin_connect(auth=False, timeout=30)
        t0 = time.monotonic()
        dribble.send_raw(b"AU")  # activity without a line does not buy time
        time.sleep(3)
        dribble.send_raw(b"TH")
        authed = self.admin_connect("patient")
        for c in (silent, dribble):
            assert_error(self, c.reply(timeout=20), "unauthorized")
            self.assertEqual(c.wait_closed(timeout=5), b"")
        elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 9.0)
        self.assertLess(elapsed, 10.0 + 3.0 * slowdown())
        # an authenticated connection may idle as long as it likes
        self.assertEqual(ok_data(self, authed.call("PING")), "pong")
        self.assertIn("admin_auth_timeout", self.stack.hexd.log())


class AdminUnixSocketTest(HexCase):
    """The admin port on a unix socket only (HEX_ADMIN_LISTEN empty)."""

    START_HEXD = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # sun_path holds 107 bytes: a short folder of its own, not the stack's
        cls.sockdir = tempfile.mkdtemp(prefix="hexadm-")
        cls.path = os.path.join(cls.sockdir, "admin.sock")
        cls.addClassCleanup(lambda: os.path.exists(cls.sockdir) and
                            __import__("shutil").rmtree(cls.sockdir, ignore_errors=True))

    def test_unix_socket_mode_0600_stale_file_replaced_and_removed_at_stop(self):
        # a stale socket file, as a crashed hexd leaves it
        s = socket.socket(socket.AF_UNIX)
        s.bind(self.path)
        s.close()
        self.assertTrue(stat.S_ISSOCK(os.lstat(self.path).st_mode))
        self.stack.start_hexd({"HEX_ADMIN_SOCKET": self.path, "HEX_ADMIN_LISTEN": ""})
        st = os.lstat(self.path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        with AdminClient(path=self.path) as c:
            self.assertEqual(ok_data(self, c.auth(self.stack.admin_token, "local")),
                             {"operator": "local"})
            self.assertEqual(ok_data(self, c.call("PING")), "pong")
            self.assertIn("unix: operator local", self.stack.hexd.log())
        with AdminClient(path=self.path) as c:
            assert_error(self, c.call("AUTH wrong"), "unauthorized")
            self.assertEqual(c.wait_closed(), b"")
        # no TCP admin port at all
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.stack.admin_port), timeout=2).close()
        # a second hexd may not take over a live socket
        h = self.stack.spawn_hexd({"HEX_ADMIN_SOCKET": self.path, "HEX_ADMIN_LISTEN": "",
                                   "HEX_HTTP_LISTEN": "127.0.0.1:%d" % free_port(),
                                   "HEX_PAYMENTS_LISTEN": "127.0.0.1:%d" % free_port()})
        try:
            h.proc.wait(20)
        except Exception:
            h.kill()
            raise
        self.assertNotEqual(h.proc.returncode, 0)
        self.assertIn("HEX_ADMIN_SOCKET", h.log())
        self.assertIn("in use", h.log())
        self.assertTrue(os.path.exists(self.path))  # the running one keeps it
        with AdminClient(path=self.path) as c:
            self.assertEqual(ok_data(self, c.auth(self.stack.admin_token)), {"operator": "unknown"})
        self.assertEqual(self.stack.stop_hexd(), [])
        self.assertFalse(os.path.exists(self.path), "socket file left after stop")

    def test_both_tcp_and_socket(self):
        self.stack.start_hexd({"HEX_ADMIN_SOCKET": self.path})
        try:
            for c in (AdminClient(path=self.path), AdminClient(port=self.stack.admin_port)):
                with c:
                    ok_data(self, c.auth(self.stack.admin_token))
                    self.assertEqual(ok_data(self, c.call("PING")), "pong")
        finally:
            self.assertEqual(self.stack.stop_hexd(), [])

    def test_admin_port_off(self):
        # no token: nothing listens, whatever the addresses say
        self.stack.start_hexd({"HEX_ADMIN_TOKEN": "", "HEX_ADMIN_SOCKET": self.path})
        try:
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", self.stack.admin_port),
                                         timeout=2).close()
            self.assertFalse(os.path.exists(self.path))
        finally:
            self.assertEqual(self.stack.stop_hexd(), [])
        # no address and no socket: off as well, and hexd serves
        self.stack.start_hexd({"HEX_ADMIN_LISTEN": ""})
        self.assertEqual(self.stack.stop_hexd(), [])


class AdminBadSettingsTest(HexCase):
    """Bad admin settings stop start-up with one line naming the key."""

    START_HEXD = False

    def refused(self, overrides, key, words):
        h = self.stack.spawn_hexd(overrides)
        try:
            h.proc.wait(20)
        except Exception:
            h.kill()
            raise
        self.assertNotEqual(h.proc.returncode, 0, h.log())
        lines = [l for l in h.log().splitlines() if key in l]
        self.assertTrue(lines, h.log()[-2000:])
        self.assertTrue(re.search(words, lines[0]), lines[0])
        return lines[0]

    def test_bad_listen_address(self):
        self.refused({"HEX_ADMIN_LISTEN": "nonsense"}, "HEX_ADMIN_LISTEN", "address:port")
        self.refused({"HEX_ADMIN_LISTEN": "127.0.0.1:99999"}, "HEX_ADMIN_LISTEN",
                     "address:port")

    def test_listen_address_in_use(self):
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            port = holder.getsockname()[1]
            self.refused({"HEX_ADMIN_LISTEN": "127.0.0.1:%d" % port}, "HEX_ADMIN_LISTEN",
                         "in use")

    def test_bad_socket_path(self):
        d = tempfile.mkdtemp(prefix="hexadm-")
        try:
            self.refused({"HEX_ADMIN_SOCKET": "/" + "x" * 120}, "HEX_ADMIN_SOCKET", "107")
            self.refused({"HEX_ADMIN_SOCKET": os.path.join(d, "missing", "admin.sock")},
                         "HEX_ADMIN_SOCKET", "No such file")
            regular = os.path.join(d, "file")
            with open(regular, "w") as f:
                f.write("keep me")
            self.refused({"HEX_ADMIN_SOCKET": regular}, "HEX_ADMIN_SOCKET", "not a socket")
            with open(regular) as f:
                self.assertEqual(f.read(), "keep me")  # never deleted
        finally:
            __import__("shutil").rmtree(d, ignore_errors=True)

    def test_bad_worker_count(self):
        self.refused({"HEX_ADMIN_WORKERS": "0"}, "HEX_ADMIN_WORKERS", "integer")


if __name__ == "__main__":
    harness.main()
