#!/usr/bin/env python3
"""Observability as an operator sees it: /metrics after a known sequence of requests
(parsed strictly as Prometheus text 0.0.4), the access log (one JSON line per request),
W3C traceparent, and the settings that switch each part (metrics_listen, metrics,
log_format, access_log, log_level)."""

import json
import math
import os
import re
import secrets
import socket
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase, free_port, http_request, unique_email, wait_until  # noqa: E402

METRICS_CT_PREFIX = "text/plain; version=0.0.4"
TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
KNOWN_ROUTES = {"/healthz", "/readyz", "/metrics", "/v1/users", "/v1/users/:id", "/v1/login",
                "/v1/token/refresh", "/v1/logout", "/v1/messages", "/v1/messages/:id",
                "unmatched"}
SUB_MS_BOUNDS = (0.0001, 0.00025, 0.0005)


# ---------------------------------------------------------------------------------------
# a strict reader of the Prometheus text format, version 0.0.4

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
VALUE_RE = re.compile(r"^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ExpositionError(AssertionError):
    pass


def _unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


def parse_labels(text, where):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        if not m:
            raise ExpositionError("%s: bad label syntax at %r" % (where, text[pos:]))
        if m.group(1) in labels:
            raise ExpositionError("%s: label %s twice" % (where, m.group(1)))
        labels[m.group(1)] = _unescape(m.group(2))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise ExpositionError("%s: labels must be separated by ','" % where)
            pos += 1
            if pos == len(text):
                raise ExpositionError("%s: trailing ',' in labels" % where)
    return labels


def parse_value(v, where):
    if not VALUE_RE.match(v):
        raise ExpositionError("%s: value %r is not a Prometheus float" % (where, v))
    return float(v.replace("Inf", "inf").replace("NaN", "nan"))


class Family:
    def __init__(self, name):
        self.name, self.type, self.help, self.samples = name, None, None, []


def parse_exposition(text):
    """{family name: Family}; raises ExpositionError on anything that is not a comment,
    a blank line, HELP/TYPE before the family's samples, or `name{labels} value`."""
    if text and not text.endswith("\n"):
        raise ExpositionError("the last line does not end with a newline")
    fams, order, current, seen_series = {}, [], None, set()

    def family_for_sample(name):
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix):
                base = fams.get(name[:-len(suffix)])
                if base is not None and base.type == "histogram":
                    return base
        return fams.get(name)

    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d %r" % (n, line)
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME_RE.fullmatch(name):
                    raise ExpositionError("%s: bad metric name" % where)
                f = fams.get(name)
                if f is None:
                    f = fams[name] = Family(name)
                    order.append(name)
                if f.samples:
                    raise ExpositionError("%s: %s after the family's samples" %
                                          (where, parts[1]))
                if parts[1] == "TYPE":
                    if f.type is not None:
                        raise ExpositionError("%s: second TYPE" % where)
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise ExpositionError("%s: unknown type" % where)
                    f.type = parts[3]
                else:
                    if f.help is not None:
                        raise ExpositionError("%s: second HELP" % where)
                    f.help = parts[3] if len(parts) == 4 else ""
                if current is not None and current is not f and current.samples:
                    current.closed = True
                current = f
            continue  # any other comment
        m = NAME_RE.match(line)
        if not m:
            raise ExpositionError("%s: does not start with a metric name" % where)
        name, rest = m.group(0), line[m.end():]
        labels = {}
        if rest.startswith("{"):
            close = rest.find("}")
            # a '}' inside a quoted label value: find the real end by parsing
            while close != -1:
                try:
                    labels = parse_labels(rest[1:close], where)
                    break
                except ExpositionError:
                    close = rest.find("}", close + 1)
            if close == -1:
                raise ExpositionError("%s: bad labels" % where)
            rest = rest[close + 1:]
        if not rest.startswith(" ") or rest.startswith("  "):
            raise ExpositionError("%s: one space must separate series and value" % where)
        fields = rest[1:].split(" ")
        if len(fields) not in (1, 2) or (len(fields) == 2 and
                                         not re.fullmatch(r"-?\d+", fields[1])):
            raise ExpositionError("%s: expected a value and an optional timestamp" % where)
        value = parse_value(fields[0], where)
        f = family_for_sample(name)
        if f is None or f.type is None or f.help is None:
            raise ExpositionError("%s: sample without HELP and TYPE before it" % where)
        if getattr(f, "closed", False) or (current is not f and f.samples):
            raise ExpositionError("%s: the lines of %s are not together" % (where, f.name))
        if f.type == "histogram" and name == f.name:
            raise ExpositionError("%s: a histogram sample needs _bucket/_sum/_count" % where)
        key = (name, tuple(sorted(labels.items())))
        if key in seen_series:
            raise ExpositionError("%s: the same series twice" % where)
        seen_series.add(key)
        if current is not None and current is not f:
            current.closed = True
        current = f
        f.samples.append((name, labels, value))
    return fams


def check_histograms(testcase, fams):
    """The histogram rules, for every histogram family and label set: buckets
    cumulative, le sorted, sub-millisecond buckets present, +Inf == _count, _sum >= 0."""
    checked = 0
    for f in fams.values():
        if f.type != "histogram":
            continue
        groups = {}
        for name, labels, value in f.samples:
            rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
            if name == f.name + "_bucket":
                testcase.assertIn("le", labels, "%s bucket without le" % f.name)
                g["buckets"].append((labels["le"], value))
            elif name == f.name + "_sum":
                g["sum"] = value
            elif name == f.name + "_count":
                g["count"] = value
        for rest, g in groups.items():
            what = "%s%s" % (f.name, dict(rest))
            testcase.assertIsNotNone(g["sum"], "%s: no _sum" % what)
            testcase.assertIsNotNone(g["count"], "%s: no _count" % what)
            testcase.assertGreaterEqual(g["sum"], 0, what)
            b = g["buckets"]
            testcase.assertTrue(b, "%s: no buckets" % what)
            testcase.assertEqual(b[-1][0], "+Inf", "%s: last bucket is not +Inf" % what)
            les = [float(le.replace("+Inf", "inf")) for le, _ in b]
            testcase.assertEqual(les, sorted(les), "%s: le not sorted" % what)
            testcase.assertEqual(len(set(les)), len(les), "%s: le repeated" % what)
            counts = [v for _, v in b]
            for a, c in zip(counts, counts[1:]):
                testcase.assertLessEqual(a, c, "%s: buckets not cumulative %s" % (what, b))
            testcase.assertEqual(counts[-1], g["count"], "%s: +Inf != _count" % what)
            for bound in SUB_MS_BOUNDS:
                testcase.assertTrue(any(math.isclose(le, bound, rel_tol=1e-9) for le in les),
                                    "%s: no le=%g bucket" % (what, bound))
            if g["count"] == 0:
                testcase.assertEqual(g["sum"], 0, what)
            checked += 1
    return checked


def series(fams, name):
    """[(labels, value)] of one series name (a histogram's _bucket etc. included)."""
    out = []
    for f in fams.values():
        out.extend((labels, value) for n, labels, value in f.samples if n == name)
    return out


def one_value(testcase, fams, name, **labels):
    got = [v for l, v in series(fams, name) if l == labels]
    testcase.assertEqual(len(got), 1, "%s%s: %d samples" % (name, labels, len(got)))
    return got[0]


def request_counts(fams):
    return {(l["method"], l["route"], l["status"]): v
            for l, v in series(fams, "hex_http_requests_total")}


# ---------------------------------------------------------------------------------------
# logs


def log_lines(text):
    """Every JSON object line of a hexd log (other lines are returned separately)."""
    objs, other = [], []
    for line in text.splitlines():
        try:
            o = json.loads(line)
        except ValueError:
            other.append(line)
            continue
        if isinstance(o, dict):
            objs.append(o)
        else:
            other.append(line)
    return objs, other


def access_lines(text):
    return [o for o in log_lines(text)[0] if o.get("event") == "http_request"]


def rid():
    return "obs-" + uuid.uuid4().hex


def wait_tcp(port, proc, timeout=harness.STARTUP_TIMEOUT):
    """Waits until port accepts connections without sending a request (so that nothing
    is counted or logged); None if the process exited first."""
    def up():
        if proc.poll() is not None:
            return "exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return "ok"
        except OSError:
            return None
    return wait_until(up, timeout)


def start_quiet(stack, overrides=None):
    """Starts hexd without a single HTTP request (the harness polls /healthz, which
    would be counted); returns the Hexd, also set as stack.hexd."""
    for attempt in range(3):
        h = stack.spawn_hexd(overrides, fresh_ports=attempt > 0)
        state = wait_tcp(h.http_port, h.proc)
        if state == "ok":
            stack.hexd = h
            return h
        h.kill()
        if state == "exited" and "in use" in h.log().lower():
            continue
        raise RuntimeError("hexd did not listen (%s); log:\n%s" % (state, h.log()[-4000:]))
    raise RuntimeError("hexd could not bind free ports 3 times")


class ObsCase(HexCase):
    def scrape(self, port=None):
        r = self.get("/metrics", port=port)
        self.assertEqual(r.status, 200, r)
        ct = r.header("Content-Type") or ""
        self.assertTrue(ct.startswith(METRICS_CT_PREFIX), "Content-Type %r" % ct)
        text = r.raw.decode("utf-8")
        try:
            fams = parse_exposition(text)
        except ExpositionError as e:
            self.fail("%s\n--- /metrics ---\n%s" % (e, text[:6000]))
        return fams, text

    def wait_access(self, pred, n=1, timeout=10):
        """The access lines of the current hexd matching pred, once there are >= n."""
        def got():
            lines = [o for o in access_lines(self.stack.hexd.log()) if pred(o)]
            return lines if len(lines) >= n else None
        lines = wait_until(got, timeout)
        if lines is None:
            lines = [o for o in access_lines(self.stack.hexd.log()) if pred(o)]
            self.fail("want %d access lines, found %d: %s" % (n, len(lines), lines))
        return lines

    def line_for(self, request_id):
        """The one access line of request_id (after a short grace for a duplicate)."""
        lines = self.wait_access(lambda o: o.get("request_id") == request_id)
        time.sleep(0.05)
        lines = [o for o in access_lines(self.stack.hexd.log())
                 if o.get("request_id") == request_id]
        self.assertEqual(len(lines), 1, "access lines of %s: %s" % (request_id, lines))
        return lines[0]

    def check_line(self, o, request_id, method, route, status, trace_id=None):
        self.assertEqual(o.get("event"), "http_request", o)
        self.assertRegex(o.get("time", ""), RFC3339_RE, o)
        self.assertEqual(o.get("level"), "error" if status >= 500 else "info", o)
        self.assertEqual(o.get("request_id"), request_id, o)
        self.assertRegex(o.get("trace_id", ""), r"^[0-9a-f]{32}$", o)
        if trace_id is not None:
            self.assertEqual(o["trace_id"], trace_id, o)
        self.assertEqual(o.get("method"), method, o)
        self.assertEqual(o.get("route"), route, o)
        self.assertIs(type(o.get("status")), int, o)
        self.assertEqual(o["status"], status, o)
        self.assertIs(type(o.get("duration_us")), int, o)
        self.assertGreaterEqual(o["duration_us"], 0, o)
        self.assertLess(o["duration_us"], 60 * 1000000, o)

    def reply_trace(self, r):
        tp = r.header("traceparent")
        self.assertIsNotNone(tp, "no traceparent on %r" % r)
        m = TRACEPARENT_RE.match(tp)
        self.assertIsNotNone(m, "bad traceparent %r on %r" % (tp, r))
        trace, span, flags = m.groups()
        self.assertNotEqual(trace, "0" * 32)
        self.assertNotEqual(span, "0" * 16)
        return trace, span, flags


# ---------------------------------------------------------------------------------------
# /metrics after a known sequence, in a process that served nothing else


class MetricsAfterKnownSequenceTest(ObsCase):
    START_HEXD = False
    PASSWORD = "known-seq-password-1"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h = start_quiet(cls.stack)
        port = h.http_port
        cls.ids = []

        def call(method, path, body=None, token=None, expect=None):
            hdrs = {"X-Request-Id": rid()}
            if body is not None:
                hdrs["Content-Type"] = "application/json"
                body = json.dumps(body)
            if token is not None:
                hdrs["Authorization"] = "Bearer " + token
            r = http_request(port, method, path, body, hdrs)
            if expect is not None and r.status != expect:
                raise AssertionError("%s %s: want %d, got %r" % (method, path, expect, r))
            cls.ids.append((hdrs["X-Request-Id"], method, path, r.status))
            return r

        for _ in range(3):
            call("GET", "/healthz", expect=200)
        call("GET", "/nope", expect=404)
        call("GET", "/v1/no/such/route", expect=404)
        email = unique_email("seq")
        cls.stack.note_secret(cls.PASSWORD)
        user = call("POST", "/v1/users", {"email": email, "password": cls.PASSWORD},
                    expect=201).body
        cls.user_id = user["id"]
        tokens = call("POST", "/v1/login", {"email": email, "password": cls.PASSWORD},
                      expect=200).body
        cls.stack.note_secret(tokens["access_token"])
        cls.stack.note_secret(tokens["refresh_token"])
        call("POST", "/v1/login", {"email": email, "password": "wrong-password-9"},
             expect=401)
        # The first read fills the cache (a miss); the next five are served from it.
        call("GET", "/v1/users/" + cls.user_id, token=tokens["access_token"], expect=200)
        for _ in range(5):
            call("GET", "/v1/users/" + cls.user_id, token=tokens["access_token"],
                 expect=200)
        r1 = call("GET", "/metrics", expect=200)
        r2 = call("GET", "/metrics", expect=200)
        cls.reply = r1
        cls.text1 = r1.raw.decode("utf-8")
        cls.text2 = r2.raw.decode("utf-8")

    def parsed(self, text):
        try:
            return parse_exposition(text)
        except ExpositionError as e:
            self.fail("%s\n--- /metrics ---\n%s" % (e, text[:6000]))

    def test_content_type_is_prometheus_text_0_0_4(self):
        ct = self.reply.header("Content-Type") or ""
        self.assertTrue(ct.startswith(METRICS_CT_PREFIX), "Content-Type %r" % ct)
        self.assertRequestId(self.reply)

    def test_whole_output_parses_strictly(self):
        for text in (self.text1, self.text2):
            fams = self.parsed(text)
            for f in fams.values():
                self.assertIsNotNone(f.type, "%s has no TYPE" % f.name)
                self.assertIsNotNone(f.help, "%s has no HELP" % f.name)
                if f.type == "counter":
                    for name, labels, v in f.samples:
                        self.assertGreaterEqual(v, 0, "%s%s" % (name, labels))

    def test_request_counters_equal_the_sequence_exactly(self):
        want = {
            ("GET", "/healthz", "200"): 3,
            ("ANY", "unmatched", "404"): 2,
            ("POST", "/v1/users", "201"): 1,
            ("POST", "/v1/login", "200"): 1,
            ("POST", "/v1/login", "401"): 1,
            ("GET", "/v1/users/:id", "200"): 6,
        }
        self.assertEqual(request_counts(self.parsed(self.text1)), want)
        # The first scrape is counted once its reply has left, so the second sees it.
        want[("GET", "/metrics", "200")] = 1
        self.assertEqual(request_counts(self.parsed(self.text2)), want)

    def test_route_label_is_the_pattern_never_a_raw_path(self):
        fams = self.parsed(self.text2)
        for f in fams.values():
            for name, labels, _ in f.samples:
                if "route" in labels:
                    self.assertIn(labels["route"], KNOWN_ROUTES, "%s%s" % (name, labels))
        self.assertNotIn(self.user_id, self.text2)
        self.assertNotIn("/nope", self.text2)

    def test_every_histogram_follows_the_rules(self):
        fams = self.parsed(self.text2)
        n = check_histograms(self, fams)
        # db, redis, and one per route with traffic (7 incl. /metrics and unmatched)
        self.assertGreaterEqual(n, 8, "histograms checked: %d" % n)
        self.assertEqual(fams["hex_http_request_duration_seconds"].type, "histogram")

    def test_latency_histogram_count_matches_the_counters(self):
        fams = self.parsed(self.text2)
        totals = {}
        for (method, route, _), v in request_counts(fams).items():
            totals[(method, route)] = totals.get((method, route), 0) + v
        got = {(l["method"], l["route"]): v
               for l, v in series(fams, "hex_http_request_duration_seconds_count")}
        self.assertEqual(got, totals)
        for (method, route), n in totals.items():
            s = one_value(self, fams, "hex_http_request_duration_seconds_sum",
                          method=method, route=route)
            self.assertGreater(s, 0, "%s %s: _sum 0 after %d requests" % (method, route, n))

    def test_logins_took_longer_than_health_checks(self):
        # Password hashing versus a constant reply: the histograms must tell them apart.
        fams = self.parsed(self.text2)
        login = one_value(self, fams, "hex_http_request_duration_seconds_sum",
                          method="POST", route="/v1/login") / 2
        health = one_value(self, fams, "hex_http_request_duration_seconds_sum",
                           method="GET", route="/healthz") / 3
        self.assertGreater(login, health)
        # A health check takes microseconds: the sub-millisecond buckets resolve it.
        fast = one_value(self, fams, "hex_http_request_duration_seconds_bucket",
                         method="GET", route="/healthz", le="0.001")
        self.assertGreaterEqual(fast, 1, "no health check under 1 ms")
        slowest = one_value(self, fams, "hex_http_request_duration_seconds_bucket",
                            method="GET", route="/healthz", le="0.1")
        self.assertEqual(slowest, 3, "a health check took over 100 ms")

    def test_cache_hits_and_misses_moved_as_expected(self):
        fams = self.parsed(self.text1)
        hits = one_value(self, fams, "hex_user_cache_requests_total", result="hit")
        misses = one_value(self, fams, "hex_user_cache_requests_total", result="miss")
        errors = one_value(self, fams, "hex_user_cache_requests_total", result="error")
        # One cold read and five warm ones: one miss, five hits. (A cold read that the
        # loop's async lookup already missed must not look the key up, and count, again.)
        self.assertEqual((hits, misses, errors), (5, 1, 0),
                         "(hits, misses, errors) after 1 cold + 5 cached reads")
        self.assertEqual(fams["hex_user_cache_requests_total"].type, "counter")

    def test_db_and_redis_latency_histograms_are_not_empty(self):
        fams = self.parsed(self.text1)
        for name in ("hex_db_query_duration_seconds", "hex_redis_command_duration_seconds"):
            self.assertEqual(fams[name].type, "histogram")
            count = one_value(self, fams, name + "_count")
            self.assertGreaterEqual(count, 1, name)
            self.assertGreater(one_value(self, fams, name + "_sum"), 0, name)
        # at least: insert, login lookup x2, one read; redis: one GET miss, one SET, 5 hits
        self.assertGreaterEqual(one_value(self, fams, "hex_db_query_duration_seconds_count"),
                                4)
        self.assertGreaterEqual(
            one_value(self, fams, "hex_redis_command_duration_seconds_count"), 7)

    def test_pool_gauges_for_every_pool(self):
        fams = self.parsed(self.text1)
        want_threads = {"api": 4, "kdf": 1, "gateway": 8}  # HEX_WORKERS=4 (harness); defaults
        for pool, n in want_threads.items():
            self.assertEqual(one_value(self, fams, "hex_pool_threads", pool=pool), n)
            depth = one_value(self, fams, "hex_pool_queue_depth", pool=pool)
            self.assertEqual(depth, 0, "nothing is waiting at scrape time")
            busy = one_value(self, fams, "hex_pool_busy_threads", pool=pool)
            self.assertTrue(0 <= busy <= n)
            self.assertEqual(one_value(self, fams, "hex_pool_rejected_total", pool=pool), 0)
        self.assertEqual(fams["hex_pool_threads"].type, "gauge")
        self.assertEqual(fams["hex_pool_queue_depth"].type, "gauge")
        self.assertEqual(fams["hex_pool_rejected_total"].type, "counter")
        pools = {l["pool"] for l, _ in series(fams, "hex_pool_threads")}
        self.assertEqual(pools, {"api", "kdf", "gateway"})

    def test_process_series(self):
        fams = self.parsed(self.text1)
        rss = one_value(self, fams, "process_resident_memory_bytes")
        self.assertGreater(rss, 1 << 20)
        self.assertLess(rss, 4 << 30)
        socks = one_value(self, fams, "hex_open_sockets")
        self.assertGreaterEqual(socks, 1)
        # listener + the scraping client + 4 workers' PostgreSQL (at least)
        self.assertGreaterEqual(socks, 3)
        self.assertGreaterEqual(one_value(self, fams, "process_open_fds"), socks)
        self.assertEqual(fams["process_resident_memory_bytes"].type, "gauge")
        self.assertEqual(fams["hex_open_sockets"].type, "gauge")

    def test_login_rate_limit_series(self):
        fams = self.parsed(self.text1)
        allowed = one_value(self, fams, "hex_login_rate_limit_total", result="allowed")
        self.assertGreaterEqual(allowed, 2)
        self.assertEqual(one_value(self, fams, "hex_login_rate_limit_total",
                                   result="limited"), 0)

    def test_one_access_line_per_request_of_the_sequence(self):
        lines = self.wait_access(lambda o: True, n=len(self.ids))
        time.sleep(0.1)
        lines = access_lines(self.stack.hexd.log())
        self.assertEqual(len(lines), len(self.ids),
                         "%d requests, %d access lines" % (len(self.ids), len(lines)))
        by_id = {o.get("request_id"): o for o in lines}
        for request_id, method, path, status in self.ids:
            o = by_id.get(request_id)
            self.assertIsNotNone(o, "no access line for %s %s" % (method, path))
            self.assertEqual(o["method"], method)
            self.assertEqual(o["status"], status)
            if path.startswith("/v1/users/"):
                self.assertEqual(o["route"], "/v1/users/:id")
                self.assertEqual(o.get("user_id"), self.user_id)
            elif status == 404:
                self.assertEqual(o["route"], "unmatched")
            else:
                self.assertEqual(o["route"], path)


# ---------------------------------------------------------------------------------------
# the access log, traceparent and secrets on a default (JSON) hexd


class AccessLogTest(ObsCase):
    def test_fields_of_an_anonymous_request(self):
        r = self.get("/healthz", headers={"X-Request-Id": "obs-health-1"})
        self.assertEqual(r.status, 200)
        trace, _, _ = self.reply_trace(r)
        o = self.line_for("obs-health-1")
        self.check_line(o, "obs-health-1", "GET", "/healthz", 200, trace)
        self.assertNotIn("user_id", o)

    def test_generated_request_id_is_the_one_logged(self):
        r = self.get("/nope/deeper")
        self.assertEqual(r.status, 404)
        generated = self.assertRequestId(r)
        o = self.line_for(generated)
        self.check_line(o, generated, "GET", "unmatched", 404, self.reply_trace(r)[0])
        self.assertEqual(r.body.get("request_id"), generated)

    def test_authenticated_request_carries_user_id_and_pattern(self):
        s = self.session()
        other = self.session()
        r = self.get("/v1/users/" + s.id, token=s.access, headers={"X-Request-Id": "obs-me"})
        self.assertEqual(r.status, 200)
        o = self.line_for("obs-me")
        self.check_line(o, "obs-me", "GET", "/v1/users/:id", 200)
        self.assertEqual(o.get("user_id"), s.id)
        self.assertNotIn(s.id, o["route"])
        # Known caller, refused: still the caller's id (not the one in the path).
        r = self.get("/v1/users/" + other.id, token=s.access,
                     headers={"X-Request-Id": "obs-other"})
        self.assertError(r, 403, "forbidden")
        o = self.line_for("obs-other")
        self.check_line(o, "obs-other", "GET", "/v1/users/:id", 403)
        self.assertEqual(o.get("user_id"), s.id)
        # Unknown caller: no user id.
        r = self.get("/v1/users/" + s.id, token=s.access + "x",
                     headers={"X-Request-Id": "obs-badtoken"})
        self.assertError(r, 401, "unauthenticated")
        o = self.line_for("obs-badtoken")
        self.check_line(o, "obs-badtoken", "GET", "/v1/users/:id", 401)
        self.assertNotIn("user_id", o)
        r = self.put("/v1/users", {"email": unique_email("obs")}, token=s.access,
                     headers={"X-Request-Id": "obs-put"})
        self.assertEqual(r.status, 200, r)
        o = self.line_for("obs-put")
        self.check_line(o, "obs-put", "PUT", "/v1/users", 200)
        self.assertEqual(o.get("user_id"), s.id)

    def test_one_line_for_every_kind_of_reply(self):
        s = self.session()
        cases = [
            ("POST", "/v1/users", {"email": unique_email(), "password": "password1"},
             None, "POST", "/v1/users", 201),
            ("POST", "/v1/users", b"[]", None, "POST", "/v1/users", 400),
            ("POST", "/v1/users", b"{}", "text/plain", "POST", "/v1/users", 415),
            ("GET", "/v1/users/" + s.id, None, None, "GET", "/v1/users/:id", 401),
            ("GET", "/v1/users/not-a-uuid", None, None, "GET", "/v1/users/:id", 401),
            ("GET", "/v1/nothing", None, None, "GET", "unmatched", 404),
            ("POST", "/v1/logout", None, None, "POST", "/v1/logout", 401),
            ("GET", "/readyz", None, None, "GET", "/readyz", 200),
        ]
        sent = []
        for method, path, body, ct, lmethod, route, status in cases:
            request_id = rid()
            kw = {"headers": {"X-Request-Id": request_id}}
            if isinstance(body, dict):
                r = self.req(method, path, json_body=body, **kw)
            else:
                kw["content_type"] = ct if ct else harness._DEFAULT
                r = self.req(method, path, body=body, **kw)
            self.assertEqual(r.status, status, "%s %s: %r" % (method, path, r))
            sent.append((request_id, lmethod, route, status, self.reply_trace(r)[0]))
        for request_id, method, route, status, trace in sent:
            with self.subTest(route=route, status=status):
                self.check_line(self.line_for(request_id), request_id, method, route,
                                status, trace)

    def test_method_not_allowed_is_logged_once(self):
        request_id = rid()
        r = self.req("PATCH", "/v1/users", body=b"{}", headers={"X-Request-Id": request_id})
        self.assertError(r, 405, "method_not_allowed")
        o = self.line_for(request_id)
        self.assertEqual(o["status"], 405)
        self.assertEqual(o["method"], "PATCH")
        self.assertIn(o["route"], ("/v1/users", "unmatched"))

    def test_concurrent_requests_one_line_each(self):
        import threading
        ids = [rid() for _ in range(40)]
        errors = []

        def one(request_id):
            try:
                r = self.get("/healthz", headers={"X-Request-Id": request_id})
                if r.status != 200:
                    errors.append(r)
            except OSError as e:
                errors.append(e)

        threads = [threading.Thread(target=one, args=(i,)) for i in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        wanted = set(ids)
        self.wait_access(lambda o: o.get("request_id") in wanted, n=len(ids))
        time.sleep(0.1)
        text = self.stack.hexd.log()
        got = [o["request_id"] for o in access_lines(text) if o.get("request_id") in wanted]
        self.assertEqual(sorted(got), sorted(ids))
        # Lines were not interleaved: every line of the log is one whole JSON object.
        _, other = log_lines(text)
        self.assertEqual(other, [], "non-JSON lines in a JSON log")

    def test_valid_traceparent_is_continued(self):
        s = self.session()
        for flags in ("01", "00"):
            for path, token, route in (("/healthz", None, "/healthz"),
                                       ("/v1/users/" + s.id, s.access, "/v1/users/:id"),
                                       ("/v1/missing", None, "unmatched")):
                with self.subTest(flags=flags, route=route):
                    trace = secrets.token_hex(16)
                    parent = secrets.token_hex(8)
                    request_id = rid()
                    r = self.get(path, token=token, headers={
                        "traceparent": "00-%s-%s-%s" % (trace, parent, flags),
                        "X-Request-Id": request_id})
                    got_trace, span, got_flags = self.reply_trace(r)
                    self.assertEqual(got_trace, trace)
                    self.assertNotEqual(span, parent, "our span must be new")
                    self.assertEqual(got_flags, flags)
                    o = self.line_for(request_id)
                    self.assertEqual(o.get("trace_id"), trace)
                    self.assertEqual(o.get("route"), route)

    def test_traceparent_header_name_is_case_insensitive(self):
        trace, parent = secrets.token_hex(16), secrets.token_hex(8)
        r = self.get("/healthz", headers={"TraceParent": "00-%s-%s-01" % (trace, parent)})
        self.assertEqual(self.reply_trace(r)[0], trace)

    def test_future_version_traceparent_is_continued(self):
        trace, parent = secrets.token_hex(16), secrets.token_hex(8)
        r = self.get("/healthz",
                     headers={"traceparent": "cc-%s-%s-01-future-data" % (trace, parent)})
        got_trace, span, flags = self.reply_trace(r)
        self.assertEqual((got_trace, flags), (trace, "01"))
        self.assertNotEqual(span, parent)

    def test_absent_or_invalid_traceparent_starts_a_new_trace(self):
        trace, parent = secrets.token_hex(16), secrets.token_hex(8)
        bad = [
            None,
            "",
            "garbage",
            "00-%s-%s-1" % (trace, parent),               # short
            "00-%s-%s-01-extra" % (trace, parent),        # version 00 with more
            "00-%s-%s-01" % (trace.upper(), parent),      # upper case
            "00-%s-%s-01" % ("0" * 32, parent),           # all-zero trace id
            "00-%s-%s-01" % (trace, "0" * 16),            # all-zero parent
            "ff-%s-%s-01" % (trace, parent),              # version ff
            "00_%s_%s_01" % (trace, parent),              # separators
        ]
        seen = set()
        for value in bad:
            with self.subTest(traceparent=value):
                request_id = rid()
                hdrs = {"X-Request-Id": request_id}
                if value is not None:
                    hdrs["traceparent"] = value
                r = self.get("/healthz", headers=hdrs)
                self.assertEqual(r.status, 200)
                got_trace, _, flags = self.reply_trace(r)
                self.assertNotEqual(got_trace, trace)
                self.assertNotEqual(got_trace.lower(), trace.lower())
                self.assertEqual(flags, "00")
                self.assertNotIn(got_trace, seen, "trace id reused")
                seen.add(got_trace)
                self.assertEqual(self.line_for(request_id).get("trace_id"), got_trace)

    def test_no_password_token_or_secret_in_the_log(self):
        password = "Obs-Secret-Pass-" + secrets.token_hex(4)
        wrong = "Obs-Wrong-Pass-" + secrets.token_hex(4)
        s = self.session(unique_email("secret"), password)
        fresh = self.post("/v1/token/refresh", {"refresh_token": s.refresh})
        self.assertEqual(fresh.status, 200, fresh)
        self.stack.note_secret(fresh.body["access_token"])
        self.stack.note_secret(fresh.body["refresh_token"])
        self.assertError(self.post("/v1/login", {"email": s.email, "password": wrong}), 401,
                         "unauthenticated")
        self.assertError(self.get("/v1/users/" + s.id, token=s.access + "tampered"), 401,
                         "unauthenticated")
        self.assertError(self.get("/v1/users/" + s.id,
                                  headers={"Authorization": "Basic " + s.access}),
                         401, "unauthenticated")
        self.assertEqual(self.get("/nope?access_token=" + s.access).status, 404)
        r = self.get("/v1/users/" + s.access, token=fresh.body["access_token"])
        self.assertEqual(r.status, 404, r)
        r = self.put("/v1/users", {"password": password + "-new"},
                     token=fresh.body["access_token"])
        self.assertEqual(r.status, 200, r)
        # The old refresh token is dead: its reuse is refused, and must not be logged.
        again = self.post("/v1/token/refresh", {"refresh_token": s.refresh})
        self.assertError(again, 401, "unauthenticated")
        request_id = rid()
        self.get("/healthz", headers={"X-Request-Id": request_id})
        self.line_for(request_id)  # the log has caught up
        log = self.stack.hexd.log()
        secrets_sent = {
            "password": password, "new password": password + "-new", "wrong password": wrong,
            "access token": s.access, "refresh token": s.refresh,
            "new access token": fresh.body["access_token"],
            "new refresh token": fresh.body["refresh_token"],
            "JWT secret": self.stack.jwt_secret, "admin token": self.stack.admin_token,
        }
        for what, value in secrets_sent.items():
            self.assertNotIn(value, log, "the %s is in the hexd log" % what)
        for what in ("access token", "refresh token"):
            sig = secrets_sent[what].rsplit(".", 1)[1]
            self.assertNotIn(sig, log, "the signature of the %s is in the log" % what)
        for v in (password + "-new", wrong):
            self.stack.note_secret(v)


class ServerErrorLogTest(ObsCase):
    """In a class of its own: the database outage it needs must not touch other tests."""

    def test_5xx_is_logged_at_level_error(self):
        db = self.stack.db
        db.admin_sql("ALTER DATABASE %s WITH ALLOW_CONNECTIONS false" % db.name)
        try:
            db.admin_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = '%s' AND pid <> pg_backend_pid()" % db.name)
            ids = []

            def unavailable():
                request_id = rid()
                r = self.get("/readyz", headers={"X-Request-Id": request_id}, timeout=10)
                ids.append(request_id)
                return (request_id, r) if r.status == 503 else None

            got = wait_until(unavailable, 15, 0.2)
            self.assertIsNotNone(got, "could not provoke a 503 with the database gone")
            request_id, r = got
            o = self.line_for(request_id)
            self.check_line(o, request_id, "GET", "/readyz", 503, self.reply_trace(r)[0])
            self.assertEqual(o["level"], "error")
        finally:
            db.admin_sql("ALTER DATABASE %s WITH ALLOW_CONNECTIONS true" % db.name)
        self.assertTrue(wait_until(lambda: self.get("/readyz").status == 200, 20, 0.2),
                        "hexd did not become ready again")


# ---------------------------------------------------------------------------------------
# settings: where /metrics is served, metrics off, log format, access log off, log level


class ObservabilitySettingsTest(ObsCase):
    START_HEXD = False

    def setUp(self):
        super().setUp()
        self.hexd_expected_alive = False

    def tearDown(self):
        super().tearDown()
        problems = self.stack.stop_hexd()
        if problems:
            self.fail("; ".join(problems))

    def start(self, overrides):
        self.stack.start_hexd(overrides)
        self.hexd_expected_alive = True

    def test_metrics_listen_serves_metrics_alone(self):
        mport = free_port()
        self.start({"HEX_METRICS_LISTEN": "127.0.0.1:%d" % mport})
        fams, _ = self.scrape(port=mport)
        self.assertIn("hex_http_requests_total", fams)
        r = self.get("/metrics")  # the v1 listener no longer serves it
        self.assertError(r, 404, "not_found")
        r = self.get("/healthz", port=mport)  # and the metrics listener serves nothing else
        self.assertEqual(r.status, 404, r)
        self.assertEqual(self.get("/healthz").status, 200)
        fams, _ = self.scrape(port=mport)
        counts = request_counts(fams)
        self.assertEqual(counts.get(("GET", "/metrics", "200")), 1, counts)
        self.assertGreaterEqual(counts.get(("ANY", "unmatched", "404"), 0), 2, counts)
        check_histograms(self, fams)

    def test_metrics_off_leaves_request_series_empty(self):
        self.start({"HEX_METRICS": "off"})
        s = self.session()
        for _ in range(3):
            self.assertEqual(self.get("/v1/users/" + s.id, token=s.access).status, 200)
        self.assertEqual(self.get("/nope").status, 404)
        self.scrape()
        fams, text = self.scrape()
        self.assertEqual(series(fams, "hex_http_requests_total"), [], text[:3000])
        self.assertEqual(series(fams, "hex_http_request_duration_seconds_count"), [])
        self.assertEqual(series(fams, "hex_http_request_duration_seconds_bucket"), [])
        check_histograms(self, fams)
        # Only the per-request series stop: the access log still runs.
        request_id = rid()
        self.get("/healthz", headers={"X-Request-Id": request_id})
        self.line_for(request_id)

    def test_text_log_format_is_for_humans(self):
        self.start({"HEX_LOG_FORMAT": "text"})
        trace = secrets.token_hex(16)
        request_id = rid()
        r = self.get("/healthz", headers={
            "X-Request-Id": request_id,
            "traceparent": "00-%s-%s-01" % (trace, secrets.token_hex(8))})
        self.assertEqual(r.status, 200)

        def line():
            ls = [l for l in self.stack.hexd.log().splitlines() if request_id in l]
            return ls or None

        lines = wait_until(line, 10)
        self.assertIsNotNone(lines, "no log line with the request id:\n" +
                             self.stack.hexd.log()[-3000:])
        self.assertEqual(len(lines), 1, lines)
        text_line = lines[0]
        with self.assertRaises(ValueError, msg="text format wrote JSON: %s" % text_line):
            json.loads(text_line)
        self.assertRegex(text_line, r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
        self.assertIn("http_request", text_line)
        self.assertIn("info", text_line)
        self.assertIn("/healthz", text_line)
        self.assertIn("200", text_line)
        self.assertIn(trace, text_line, "the trace id is missing from the text line")
        # No line of the whole log is JSON.
        for l in self.stack.hexd.log().splitlines():
            self.assertFalse(l.startswith("{"), "JSON line in text format: %s" % l)

    def test_access_log_off_writes_no_request_lines(self):
        self.start({"HEX_ACCESS_LOG": "off"})
        s = self.session()
        request_id = rid()
        self.assertEqual(self.get("/v1/users/" + s.id, token=s.access,
                                  headers={"X-Request-Id": request_id}).status, 200)
        self.assertEqual(self.get("/nope").status, 404)
        time.sleep(0.3)
        log = self.stack.hexd.log()
        objs, _ = log_lines(log)
        self.assertTrue(objs, "no JSON lines at all: is hexd logging?")
        self.assertEqual([o for o in objs if o.get("event") == "http_request"], [])
        self.assertNotIn(request_id, log)
        # The metrics still count what the access log skipped.
        fams, _ = self.scrape()
        counts = request_counts(fams)
        self.assertEqual(counts.get(("ANY", "unmatched", "404")), 1, counts)

    def test_log_level_warn_hides_info_lines(self):
        self.start({"HEX_LOG_LEVEL": "warn"})
        s = self.session()
        self.assertEqual(self.get("/v1/users/" + s.id, token=s.access).status, 200)
        self.assertEqual(self.get("/nope").status, 404)
        time.sleep(0.3)
        objs, other = log_lines(self.stack.hexd.log())
        infos = [o for o in objs if o.get("level") in ("debug", "info")]
        self.assertEqual(infos, [])
        self.assertEqual([o for o in objs if o.get("event") == "http_request"], [])
        for o in objs:
            self.assertIn(o.get("level"), ("warn", "error"), o)

    def test_log_level_debug_still_one_access_line(self):
        self.start({"HEX_LOG_LEVEL": "debug"})
        request_id = rid()
        self.assertEqual(self.get("/healthz", headers={"X-Request-Id": request_id}).status,
                         200)
        self.assertEqual(self.line_for(request_id)["level"], "info")

    def test_counters_add_up_across_loops(self):
        import threading
        self.start({"HEX_LOOPS": "4"})
        n_threads, each = 8, 25
        errors = []

        def client(k):
            for i in range(each):
                try:
                    r = self.get("/nope-%d-%d" % (k, i),
                                 headers={"X-Request-Id": "loops-%d-%d" % (k, i)})
                    if r.status != 404:
                        errors.append(r)
                except OSError as e:
                    errors.append(e)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        total = n_threads * each
        fams, _ = self.scrape()
        self.assertEqual(request_counts(fams).get(("ANY", "unmatched", "404")), total)
        self.assertEqual(one_value(self, fams, "hex_http_request_duration_seconds_count",
                                   method="ANY", route="unmatched"), total)
        check_histograms(self, fams)
        lines = self.wait_access(lambda o: o.get("request_id", "").startswith("loops-"),
                                 n=total)
        self.assertEqual(len({o["request_id"] for o in lines}), total)
        self.assertEqual(len(lines), total)


if __name__ == "__main__":
    harness.main()
