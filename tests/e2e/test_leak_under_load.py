#!/usr/bin/env python3
"""Issue 7: no leak in a hexd run under load that ends with a clean shutdown.

One hexd (API and event workers, payments through the fake Stripe) takes 25 s of mixed
concurrent traffic in the ASan build (8 s in the plain build) from 12 client threads,
through every subsystem that allocates: sign-up, login (right, wrong, rate limited),
token refresh and refresh reuse, user reads through the Redis cache (hits and misses),
messages, payments with idempotency replays and Stripe faults (deliberate 503s),
signed webhooks (so the outbox relay and the consumers run), checkout, wallet transfers
with replays, the membership hook, bad JSON, 404/405/413/415, oversize headers,
malformed HTTP, connections dropped mid-request, and the admin port (verbs, a cache
flush, SUBSCRIBE LATENCY/LOG, then a disconnect). Every answer is checked: its status,
and its shape (JSON, X-Request-Id, the contract's error body).

Then SIGTERM arrives while requests are in flight: three payments held at the fake
Stripe, a subscriber that never reads, a half-sent request, and whatever the load
threads are doing. hexd must answer the held payments, exit 0 within the harness's
timeout, and, in the sanitized build with detect_leaks=1 (forced, and read back from
the running process), leave no AddressSanitizer, LeakSanitizer or UBSan line in its log.

test_1 proves that the leak check can fail here: hexd links the ASan runtime, that
runtime runs hexd with detect_leaks=true under the options the load's hexd gets, and the
same runtime, preloaded into a process that leaks on purpose, reports the leak in lines
the log check catches.
"""

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (AdminClient, AdminClosed, JSON_CT, PaymentCase, Session,  # noqa: E402
                     parse_raw_response, stripe_event, stripe_event_for,
                     stripe_signature_header, unique_email, wait_until)

THREADS = 12
LOAD_SECONDS_ASAN = 25.0
LOAD_SECONDS_PLAIN = 8.0
MAX_OPS_PER_THREAD = 4000  # bounds the run on a fast machine; the clock ends it first
BODY_LIMIT = 65536
EMAIL_LIMIT = 5  # login attempts per email per window: the rate-limit op goes over it
STRIPE_RETRIES = 1  # two failed Stripe attempts make a deliberate 503
HELD_PAYMENTS = 3  # payments held at the fake Stripe across SIGTERM
HOLD_MS = 2500  # long enough that all three wait there at the signal
REQUEST_TIMEOUT = 20.0
LEAK_SIZE = 7331  # bytes per block the sanity check leaks; odd, so nothing else matches
LEAK_BLOCKS = 16
HEXD_BASE_ENV = {
    "HEX_BODY_LIMIT": str(BODY_LIMIT),
    "HEX_LOGIN_LIMIT_EMAIL": str(EMAIL_LIMIT),
    "HEX_LOGIN_LIMIT_ADDR": "0",  # every client thread shares 127.0.0.1
    "HEX_STRIPE_MAX_RETRIES": str(STRIPE_RETRIES),
    "HEX_EVENT_RETRY_BASE_MS": "50",
    "HEX_EVENT_RETRY_MAX_MS": "400",
    "HEX_EVENT_POLL_MS": "10",
}

# Malformed requests from test_http.py; hexd may answer 4xx or just close.
JUNK = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /healthz HTTP/9.9\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"\x00\x01\x02\xff\r\n\r\n",
    b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
]

ADMIN_VERBS = ["PING", "HELP", "STATS", "USERS LIST LIMIT 5", "MESSAGES LIST LIMIT 5",
               "PAYMENTS LIST LIMIT 5", "PAYMENTS STUCK", "LEDGER ACCOUNTS LIMIT 5",
               "DLQ LIST LIMIT 5", "EVENTS LAG", "CACHE STATS", "AUDIT LIST LIMIT 5"]


def asan_options_with_leaks(current):
    """current ASAN_OPTIONS with detect_leaks forced on (the last setting wins)."""
    opts = [o for o in (current or "").split(":") if o and not o.startswith("detect_leaks=")]
    return ":".join(opts + ["detect_leaks=1"])


def libasan_of(binary):
    """The libasan shared object binary loads (from ldd), or None when it has none."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    m = re.search(r"libasan\.so[.\d]*\s*=>\s*(\S+)", out)
    return m.group(1) if m else None


class SharedLock:
    """Many payment ops at once, or one Stripe fault op alone: an injected failure must
    hit the request that expects it. Waiting fault ops keep new payment ops out."""

    def __init__(self):
        self.cv = threading.Condition()
        self.readers = 0
        self.writer = False
        self.writers_waiting = 0

    def acquire_shared(self):
        with self.cv:
            while self.writer or self.writers_waiting:
                self.cv.wait()
            self.readers += 1

    def release_shared(self):
        with self.cv:
            self.readers -= 1
            self.cv.notify_all()

    def acquire_exclusive(self):
        with self.cv:
            self.writers_waiting += 1
            while self.writer or self.readers:
                self.cv.wait()
            self.writers_waiting -= 1
            self.writer = True

    def release_exclusive(self):
        with self.cv:
            self.writer = False
            self.cv.notify_all()


class Cut(Exception):
    """A request found hexd gone after SIGTERM: the client thread stops."""


class Tally:
    """What the load saw: answers by status class, ops run, and every problem."""

    def __init__(self):
        self.lock = threading.Lock()
        self.classes = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
        self.statuses = {}
        self.ops = {}
        self.dropped = 0  # connections closed by the client on purpose
        self.closed = 0  # requests hexd closed without an answer (allowed ones only)
        self.cut = 0  # requests refused or reset because hexd was shutting down
        self.after_term = 0  # load requests answered after SIGTERM (in flight at it)
        self.admin_lines = 0
        self.transferred = 0  # transfers answered 201: top-ups reached the wallets
        self.refreshed = 0
        self.refresh_limited = 0
        self.deliberate_503 = 0
        self.problems = []

    def status(self, st):
        with self.lock:
            self.classes["%dxx" % (st // 100)] = self.classes.get("%dxx" % (st // 100), 0) + 1
            self.statuses[st] = self.statuses.get(st, 0) + 1

    def op(self, name):
        with self.lock:
            self.ops[name] = self.ops.get(name, 0) + 1

    def add(self, name, n=1):
        with self.lock:
            setattr(self, name, getattr(self, name) + n)

    def problem(self, text):
        with self.lock:
            self.problems.append(text)

    def requests(self):
        return sum(self.classes.values())


class LeakUnderLoadTest(PaymentCase):
    @classmethod
    def setUpClass(cls):
        env = dict(HEXD_BASE_ENV)
        if harness.SANITIZED:
            # The leak check only means something with LSan on: force it for this hexd
            # whatever the caller's ASAN_OPTIONS say.
            env["ASAN_OPTIONS"] = asan_options_with_leaks(os.environ.get("ASAN_OPTIONS"))
        cls.HEXD_ENV = env
        super().setUpClass()

    @property
    def port(self):
        # Fixed once the load starts: requests keep going to it after SIGTERM, when the
        # stack no longer has a hexd (and must be refused then).
        return getattr(self, "v1_port", None) or self.stack.port

    # -- the sanity check: the leak check can fail here

    def test_1_leak_check_can_fail_in_this_environment(self):
        if not harness.SANITIZED:
            self.skipTest("plain build: hexd has no sanitizer runtime to check")
        opts = self.HEXD_ENV["ASAN_OPTIONS"]
        nm = subprocess.run(["nm", "-D", harness.HEXD], capture_output=True, text=True)
        self.assertEqual(nm.returncode, 0, nm.stderr)
        self.assertRegex(nm.stdout, r"\b__asan_init\b", "hexd does not link ASan")
        # The runtime hexd runs with these very options, leak detection on.
        env = harness.base_env()
        env["ASAN_OPTIONS"] = opts + ":help=1"
        p = subprocess.run([harness.HEXD, "--version"], env=env, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout + p.stderr,
                         r"\bdetect_leaks\n\s+- [^\n]*\(Current Value: true\)",
                         "ASan does not run hexd with detect_leaks=true: %s" % opts)
        # The same runtime, in a process that leaks on purpose, reports the leak in lines
        # that sanitizer_lines() (what the hexd log check uses) catches.
        lib = libasan_of(harness.HEXD)
        self.assertIsNotNone(lib, "ldd shows no libasan for hexd")
        code = ("import ctypes\n"
                "m = ctypes.CDLL(None).malloc\n"
                "m.restype = ctypes.c_void_p\n"
                "for _ in range(%d):\n"
                "    m(%d)\n" % (LEAK_BLOCKS, LEAK_SIZE))
        env = harness.base_env()
        env.update({"LD_PRELOAD": lib, "ASAN_OPTIONS": opts})
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, errors="replace", timeout=60)
        self.assertNotEqual(p.returncode, 0, "a leaking process exited 0 under LSan")
        self.assertIn("ERROR: LeakSanitizer: detected memory leaks", p.stderr)
        self.assertIn("Direct leak of %d byte(s) in %d object(s)" %
                      (LEAK_SIZE * LEAK_BLOCKS, LEAK_BLOCKS), p.stderr)
        self.assertTrue(harness.sanitizer_lines(p.stderr), "the log check would miss it")

    # -- the load

    def test_2_load_then_sigterm_exits_0_without_leaks(self):
        t_start = time.monotonic()
        self.v1_port = self.stack.port
        self.tally = Tally()
        self.stripe_lock = SharedLock()
        self.terminating = threading.Event()
        self.stop_load = threading.Event()
        self.addCleanup(self.stop_load.set)  # a failure before the end stops the threads
        self.prepare()
        if harness.SANITIZED:
            env = self.process_env(self.stack.hexd.proc.pid)
            leaks = [o for o in env.get("ASAN_OPTIONS", "").split(":")
                     if o.startswith("detect_leaks=")]
            self.assertEqual(leaks[-1:], ["detect_leaks=1"],
                             "this hexd runs without leak detection: ASAN_OPTIONS=%r" %
                             env.get("ASAN_OPTIONS"))
        seconds = LOAD_SECONDS_ASAN if harness.SANITIZED else LOAD_SECONDS_PLAIN
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=self.worker, args=(i, deadline), daemon=True)
                   for i in range(THREADS)]
        # Open across the shutdown: a subscriber that never reads, and half a request.
        quiet = AdminClient(port=self.stack.admin_port, rcvbuf=4096)
        self.addCleanup(quiet.close)
        self.assertEqual(quiet.auth(self.stack.admin_token, "quiet").get("ok"), True)
        self.assertEqual(quiet.call("SUBSCRIBE LOG").get("ok"), True)
        self.assertEqual(quiet.call("SUBSCRIBE LATENCY").get("ok"), True)
        half = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.addCleanup(half.close)
        half.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: 100\r\n\r\n{\"body\"")
        t_load = time.monotonic()
        for t in threads:
            t.start()
        while time.monotonic() < deadline and any(t.is_alive() for t in threads):
            time.sleep(0.1)
        load_s = time.monotonic() - t_load
        with AdminClient(port=self.stack.admin_port, timeout=REQUEST_TIMEOUT) as c:
            self.assertEqual(c.auth(self.stack.admin_token, "check").get("ok"), True)
            stats = c.call("STATS")
        self.assertEqual(stats.get("ok"), True, stats)
        cache = stats["data"]["cache"]

        held, t_term, exit_status, drain_s = self.sigterm_with_requests_in_flight()
        self.stop_load.set()
        for t in threads:
            t.join(30)
        self.assertFalse([t for t in threads if t.is_alive()], "client threads hang")
        h_log = self.hexd_log

        bad = harness.sanitizer_lines(h_log)
        self.assertEqual(bad, [], "sanitizer report in the hexd log:\n%s" %
                         self.report_excerpt(h_log))
        self.assertEqual(exit_status, 0, "hexd exit status after SIGTERM under load "
                         "(None: no exit within %.0f s)\n%s" % (harness.STOP_TIMEOUT,
                                                                h_log[-6000:]))
        # The held payments were in hexd at the signal, and were answered after it.
        for i, (status, body, t_done) in enumerate(held):
            self.assertEqual(status, 201, "held payment %d: %r" % (i, body[:300]))
            self.assertEqual(json.loads(body).get("status"), "requires_payment_method")
            self.assertGreater(t_done, t_term, "held payment %d answered before SIGTERM" % i)
        self.assertEqual(self.stack.secret_leaks(), [], "secrets in the hexd log")
        self.assertIn('"event":"stopped"', h_log, "hexd did not log its clean stop")

        tally = self.tally
        self.assertEqual(tally.problems[:20], [], "%d unexpected answers under load" %
                         len(tally.problems))
        missing = sorted(set(self.OPS) - set(tally.ops))
        self.assertEqual(missing, [], "load ops that never ran")
        # Only the deliberate 503s (Stripe failing twice in a row) may be 5xx.
        self.assertEqual(tally.classes["5xx"], tally.deliberate_503,
                         tally.statuses)
        self.assertGreater(tally.refreshed, 0, "no token refresh went through")
        # Both sides of the cache ran, and the event pipeline did: the relay published,
        # the consumers applied, and top-ups reached the wallets that transfers moved.
        self.assertGreater(cache["hits"], 0, stats)
        self.assertGreater(cache["misses"], 0, stats)
        db = self.stack.db
        published = int(db.scalar("SELECT count(*) FROM outbox "
                                  "WHERE published_at IS NOT NULL"))
        consumed = int(db.scalar("SELECT count(*) FROM processed_events"))
        self.assertGreater(published, 0, "the outbox relay published nothing")
        self.assertGreater(consumed, 0, "no consumer applied an event")
        self.assertGreater(tally.transferred, 0, "no transfer moved money")
        self.assertGreaterEqual(tally.requests(), 50 * seconds, "too little load to mean "
                                "anything: %d requests" % tally.requests())
        leaks = "0" if harness.SANITIZED else "not checked (plain build, no LSan)"
        print("\n  leak_under_load: %d requests (2xx %d, 3xx %d, 4xx %d, 5xx %d: %d "
              "deliberate 503), %d admin lines, %d connections "
              "dropped on purpose, %d answered and %d cut after SIGTERM, cache %d hits %d "
              "misses, %d events published %d consumed, %d transfers; %d ops by %d "
              "threads in %.1f s load, SIGTERM with %d held payments in flight, exit %s "
              "after %.1f s, %.1f s total (ops: %s); leaks: %s" %
              (tally.requests(), tally.classes["2xx"], tally.classes["3xx"],
               tally.classes["4xx"], tally.classes["5xx"], tally.deliberate_503,
               tally.admin_lines, tally.dropped, tally.after_term,
               tally.cut, cache["hits"], cache["misses"], published, consumed,
               tally.transferred, sum(tally.ops.values()), THREADS, load_s, len(held),
               exit_status, drain_s, time.monotonic() - t_start,
               " ".join("%s=%d" % kv for kv in sorted(tally.ops.items())), leaks),
              file=sys.stderr)

    @staticmethod
    def process_env(pid):
        with open("/proc/%d/environ" % pid, "rb") as f:
            items = f.read().decode("utf-8", "replace").split("\0")
        return dict(i.split("=", 1) for i in items if "=" in i)

    @staticmethod
    def report_excerpt(log):
        """The sanitizer report in log: from its first marker line, 120 lines."""
        lines = log.splitlines()
        for i, line in enumerate(lines):
            if harness.sanitizer_lines(line):
                return "\n".join(lines[max(0, i - 2):i + 120])
        return ""

    def prepare(self):
        """Users for the load: one session per client thread (their ids are the payees
        of transfers), an admin, and the owner of the held payments."""
        self.sessions = [self.session(unique_email("load%d" % i)) for i in range(THREADS)]
        self.admin = self.admin_session()
        self.holder = self.session(unique_email("held"))
        self.user_ids = [s.id for s in self.sessions]

    # -- SIGTERM with requests in flight

    def sigterm_with_requests_in_flight(self):
        """Holds HELD_PAYMENTS payment creations at the fake Stripe (no other payment op
        runs meanwhile), sends SIGTERM while they wait there and the load threads go on,
        and reads their answers. (answers [(status, body, time)], SIGTERM time, exit
        status or None, seconds from SIGTERM to exit)."""
        fake = self.fake_stripe
        self.stripe_lock.acquire_exclusive()
        released = False
        try:
            fake.clear_injections()
            before = self.intent_posts()
            fake.control(delay_ms=HOLD_MS)
            socks = []
            for i in range(HELD_PAYMENTS):
                body = json.dumps({"amount": 1000 + i, "currency": "usd",
                                   "purpose": "wallet_top_up"}).encode()
                req = (b"POST /v2/payments HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       b"application/json\r\nAuthorization: Bearer %s\r\nIdempotency-Key: "
                       b"held-%d-%s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" %
                       (self.holder.access.encode(), i, uuid.uuid4().hex.encode(), len(body),
                        body))
                s = socket.create_connection(("127.0.0.1", self.pay_port), timeout=30)
                s.sendall(req)
                socks.append(s)
            # No other payment op runs now: these creations are the ones at the fake.
            arrived = wait_until(lambda: self.intent_posts() >= before + HELD_PAYMENTS,
                                 10 * (3 if harness.SANITIZED else 1), interval=0.01)
            self.assertTrue(arrived, "the held payments never reached the fake Stripe")
            h, self.stack.hexd = self.stack.hexd, None
            self.hexd_expected_alive = False
            self.terminating.set()
            t_term = time.monotonic()
            h.proc.send_signal(signal.SIGTERM)
            self.stripe_lock.release_exclusive()
            released = True
            held = []
            for s in socks:
                out = harness.read_all(s)
                st, _, body = parse_raw_response(out) if out else (None, {}, b"")
                held.append((st, body, time.monotonic()))
            try:
                status = h.proc.wait(harness.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                h.kill()
                status = None
            drain_s = time.monotonic() - t_term
            fake.control(delay_ms=0)
            self.hexd_log = h.log()
            return held, t_term, status, drain_s
        finally:
            if not released:
                self.stripe_lock.release_exclusive()

    def intent_posts(self):
        return self.fake_stripe.stats()["by_path"].get("POST /v1/payment_intents", 0)

    # -- the client threads

    def worker(self, i, deadline):
        rnd = random.Random(1000 + i)
        me = self.sessions[i]
        state = {"messages": []}
        names = list(self.OPS)
        weights = [self.OPS[n] for n in names]
        n = 0
        while not self.stop_load.is_set() and n < MAX_OPS_PER_THREAD:
            if not self.terminating.is_set() and time.monotonic() >= deadline:
                # Until SIGTERM the load keeps going, so that the signal finds the
                # threads mid-request; only cheap ops, not to delay the held payments.
                name = rnd.choice(["reads", "messages", "http_errors", "dropped"])
            else:
                name = rnd.choices(names, weights)[0]
            n += 1
            self.tally.op(name)
            try:
                getattr(self, "op_" + name)(rnd, me, state)
            except Cut:
                return
            except Exception as e:  # a client-side bug must fail the test, not hang it
                self.tally.problem("%s: %s: %s" % (name, type(e).__name__, e))
            if self.terminating.is_set() and rnd.random() < 0.3:
                return

    # Each op: one user-visible behaviour with the answers it must get. Weights.
    OPS = {
        "churn": 3, "login_limit": 1, "reads": 5, "messages": 5, "topup": 3,
        "membership": 1, "checkout": 1, "stripe_fault": 1, "transfers": 5, "wallet": 2,
        "webhook_misc": 2, "membership_hook": 1, "http_errors": 4, "too_large": 1,
        "oversize_header": 1, "junk": 1, "dropped": 3, "admin": 2, "probes": 1,
    }

    def call(self, op, method, path, expect, body=None, json_body=harness._DEFAULT,
             token=None, headers=None, content_type=harness._DEFAULT, port=None, code=None,
             json_reply=True, from_app=True, challenge="Bearer"):
        """One request; checks its status is in expect and that the answer is well formed:
        from_app, it carries an X-Request-Id (answers of the HTTP layer itself, such as a
        413, do not), json_reply, it is JSON, errors in the contract's shape (with code
        if given; a 401 challenges for the challenge scheme). The Response, or None after
        a problem was recorded. Raises Cut once hexd stops."""
        try:
            r = self.req(method, path, body=body, json_body=json_body, token=token,
                         headers=headers, content_type=content_type, timeout=REQUEST_TIMEOUT,
                         port=port)
        except (OSError, harness.http.client.HTTPException) as e:
            if self.terminating.is_set():
                self.tally.add("cut")
                raise Cut()
            self.tally.problem("%s %s %s: no answer: %s: %s" % (op, method, path,
                                                               type(e).__name__, e))
            return None
        self.tally.status(r.status)
        if self.terminating.is_set():
            self.tally.add("after_term")
        if isinstance(expect, int):
            expect = (expect,)
        why = self.malformed(r, json_reply, code, challenge) if from_app else None
        if r.status not in expect or why:
            self.tally.problem("%s %s %s: want %s, got %d %s %r" % (
                op, method, path, expect, r.status, why or "", r.raw[:240]))
            return None
        return r

    @staticmethod
    def malformed(r, json_reply, code, challenge):
        if not r.header("X-Request-Id"):
            return "no X-Request-Id"
        if r.status == 204 or not json_reply:
            return None
        if r.header("Content-Type") != JSON_CT or not r.is_json:
            return "not a JSON reply"
        if r.status >= 400:
            b = r.body
            if not isinstance(b, dict) or not isinstance(b.get("error"), str) or \
                    not isinstance(b.get("code"), str) or \
                    b.get("request_id") != r.header("X-Request-Id"):
                return "not the contract's error shape"
            if code is not None and b["code"] != code:
                return "code %s, want %s" % (b["code"], code)
            if r.status == 405 and not r.header("Allow"):
                return "405 without Allow"
            if r.status == 429 and not (r.header("Retry-After") or "").isdigit():
                return "429 without Retry-After"
            if r.status == 401 and not (r.header("WWW-Authenticate") or "").startswith(
                    challenge):
                return "401 without WWW-Authenticate: %s" % challenge
        return None

    def raw(self, op, data, expect_statuses, close_ok=False, port=None):
        """Raw bytes to hexd; checks the first answer's status (None when hexd closes
        without one, allowed only with close_ok)."""
        try:
            out = harness.raw_exchange(port or self.port, data, timeout=REQUEST_TIMEOUT)
        except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError) as e:
            if self.terminating.is_set():
                self.tally.add("cut")
                raise Cut()
            if isinstance(e, ConnectionRefusedError) or not close_ok:
                self.tally.problem("%s: %s" % (op, e))
                return
            out = b""
        st, _, _ = parse_raw_response(out) if out else (None, {}, b"")
        if st is None:
            if not close_ok and not self.terminating.is_set():
                self.tally.problem("%s: closed without an answer: %r" % (op, out[:120]))
            self.tally.add("closed")
            return
        self.tally.status(st)
        if st not in expect_statuses:
            self.tally.problem("%s: status %d, want %s: %r" % (op, st, expect_statuses,
                                                             out[:240]))

    def new_session(self, op, rnd):
        """Sign-up then login through the load path; a Session or None (problem noted)."""
        email = unique_email("churn")
        pw = "pw-" + uuid.uuid4().hex[:12]
        r = self.call(op, "POST", "/v1/users", 201, json_body={"email": email, "password": pw})
        if r is None:
            return None
        self.call(op, "POST", "/v1/users", 409, json_body={"email": email.upper(),
                                                            "password": pw}, code="conflict")
        self.call(op, "POST", "/v1/login", 401, json_body={"email": email,
                                                           "password": pw + "x"},
                  code="unauthenticated")
        t = self.call(op, "POST", "/v1/login", 200, json_body={"email": email, "password": pw})
        if t is None:
            return None
        return Session(r.body, pw, t.body)

    # -- ops

    def op_churn(self, rnd, me, state):
        """A short user life: sign-up, logins, cache miss and hit, update, refresh with
        reuse detection, logout or account deletion."""
        op = "churn"
        s = self.new_session(op, rnd)
        if s is None:
            return
        path = "/v1/users/%s" % s.id
        for _ in range(2):  # a miss, then a hit
            self.call(op, "GET", path, 200, token=s.access)
        self.call(op, "POST", "/v1/users", 400, json_body={"email": "not-an-email",
                                                           "password": "short"},
                  code="invalid_request")
        if rnd.random() < 0.5:
            new_email = unique_email("moved")
            r = self.call(op, "PUT", "/v1/users", 200, json_body={"email": new_email},
                          token=s.access)
            if r is not None and r.body.get("email") != new_email:
                self.tally.problem("%s: PUT /v1/users answered %r" % (op, r.body))
            self.call(op, "GET", path, 200, token=s.access)  # a miss after the update
        # Refreshes are rate limited per client address, and every thread is 127.0.0.1:
        # past the limit a refresh is a 429 (checked), and the user goes on without one.
        r = self.call(op, "POST", "/v1/token/refresh", (200, 429),
                      json_body={"refresh_token": s.refresh})
        if r is None:
            return
        if r.status == 429:
            self.tally.add("refresh_limited")
            if r.body.get("code") != "rate_limited":
                self.tally.problem("%s: refresh 429 %r" % (op, r.body))
            r = None
        else:
            self.tally.add("refreshed")
        tokens = r.body if r is not None else s.tokens
        if r is not None and rnd.random() < 0.5:
            # the old refresh token is dead: reusing it is refused (and revokes the family)
            self.call(op, "POST", "/v1/token/refresh", (401, 429),
                      json_body={"refresh_token": s.refresh})
            self.call(op, "POST", "/v1/token/refresh", (401, 429),
                      json_body={"refresh_token": r.body["refresh_token"]})
        elif rnd.random() < 0.5:
            self.call(op, "POST", "/v1/logout", 204, token=tokens["access_token"])
        else:
            mid = self.call(op, "POST", "/v1/messages", 201, json_body={"body": "bye"},
                            token=tokens["access_token"])
            self.call(op, "DELETE", "/v1/users", 204, token=tokens["access_token"])
            if mid is not None:
                self.call(op, "GET", "/v1/messages/%s" % mid.body["id"], 404,
                          token=self.admin.access, code="not_found")

    def op_login_limit(self, rnd, me, state):
        """Twelve wrong logins for one email, limit five per window: some are 429, and a
        window boundary can split them only into one part that still goes over."""
        op = "login_limit"
        email = unique_email("limited")
        got = []
        for _ in range(2 * EMAIL_LIMIT + 2):
            r = self.call(op, "POST", "/v1/login", (401, 429),
                          json_body={"email": email, "password": "wrong-password"})
            if r is None:
                return
            got.append(r.status)
        if 429 not in got:
            self.tally.problem("%s: %d attempts, limit %d, no 429: %s" %
                               (op, len(got), EMAIL_LIMIT, got))

    def op_reads(self, rnd, me, state):
        op = "reads"
        other = rnd.choice(self.user_ids)
        self.call(op, "GET", "/v1/users/%s" % me.id, 200, token=me.access)
        if other != me.id:
            self.call(op, "GET", "/v1/users/%s" % other, 403, token=me.access,
                      code="forbidden")
        self.call(op, "GET", "/v1/users/%s" % other, 200, token=self.admin.access)
        self.call(op, "GET", "/v1/users/%s" % uuid.uuid4(), 404, token=self.admin.access,
                  code="not_found")
        self.call(op, "GET", "/v1/users/%s" % me.id, 401, code="unauthenticated")
        self.call(op, "GET", "/v1/users/%s" % me.id, 401, token=me.refresh,
                  code="unauthenticated")
        self.call(op, "GET", "/v1/users?limit=5", 200, token=self.admin.access)
        self.call(op, "GET", "/v1/users?limit=5", 403, token=me.access, code="forbidden")
        self.call(op, "GET", "/v1/users?limit=0", 400, token=self.admin.access,
                  code="invalid_request")

    def op_messages(self, rnd, me, state):
        op = "messages"
        text = "load %s %d" % (uuid.uuid4().hex[:8], rnd.randint(0, 1 << 30))
        r = self.call(op, "POST", "/v1/messages", 201, json_body={"body": text},
                      token=me.access)
        if r is None:
            return
        m = r.body
        path = "/v1/messages/%s" % m["id"]
        self.call(op, "GET", path, 200, token=me.access)
        self.call(op, "GET", "/v1/messages?limit=5", 200, token=me.access)
        self.call(op, "GET", "/v1/messages?q=load&limit=3", 200, token=me.access)
        other = self.sessions[(self.sessions.index(me) + 1) % THREADS]
        self.call(op, "GET", path, 403, token=other.access, code="forbidden")
        self.call(op, "GET", "/v1/messages?user_id=%s&limit=3" % me.id, 200,
                  token=self.admin.access)
        u = self.call(op, "PUT", path, 200, json_body={"body": text + " edited"},
                      token=me.access)
        if u is not None and u.body.get("body") != text + " edited":
            self.tally.problem("%s: PUT answered %r" % (op, u.body))
        self.call(op, "PUT", path, 400, json_body={"body": 5}, token=me.access,
                  code="invalid_request")
        if rnd.random() < 0.7:
            self.call(op, "DELETE", path, 204, token=me.access)
            self.call(op, "GET", path, 404, token=me.access, code="not_found")
            self.call(op, "DELETE", path, 404, token=me.access, code="not_found")
        self.call(op, "GET", "/v1/messages?limit=500", 400, token=me.access,
                  code="invalid_request")

    def create_payment_shared(self, op, me, amount, purpose="wallet_top_up", key=None):
        """POST /v2/payments (with its replay when keyed) under the shared Stripe lock."""
        key = key or "load-%s" % uuid.uuid4().hex
        body = {"amount": amount, "currency": "usd", "purpose": purpose}
        hdrs = {"Idempotency-Key": key}
        self.stripe_lock.acquire_shared()
        try:
            r = self.call(op, "POST", "/v2/payments", 201, json_body=body, token=me.access,
                          headers=hdrs, port=self.pay_port)
            if r is None:
                return None
            again = self.call(op, "POST", "/v2/payments", 201, json_body=body,
                              token=me.access, headers=hdrs, port=self.pay_port)
        finally:
            self.stripe_lock.release_shared()
        if again is not None and again.body != r.body:
            self.tally.problem("%s: replay differs: %r vs %r" % (op, again.raw[:200],
                                                                 r.raw[:200]))
        self.call(op, "POST", "/v2/payments", 409,
                  json_body=dict(body, amount=amount + 1), token=me.access, headers=hdrs,
                  port=self.pay_port, code="idempotency_key_reused")
        return r.body

    def webhook(self, op, event, expect_dup=False, secret=None, expect=200):
        raw = json.dumps(event).encode()
        sig = stripe_signature_header(secret or self.webhook_secret, raw)
        r = self.call(op, "POST", "/v2/stripe/webhook", expect, body=raw,
                      headers={"Stripe-Signature": sig}, port=self.pay_port,
                      code=None if expect == 200 else "invalid_request")
        if r is not None and expect == 200 and \
                r.body != {"received": True, "duplicate": expect_dup}:
            self.tally.problem("%s: webhook answered %r" % (op, r.body))

    def op_topup(self, rnd, me, state):
        """A wallet top-up paid through a signed webhook (the relay and the ledger
        consumer post it); some delivered twice, some refunded, some forged."""
        op = "topup"
        p = self.create_payment_shared(op, me, rnd.randint(2000, 8000))
        if p is None:
            return
        p = dict(p, user_id=me.id)
        ev = stripe_event_for(p, "succeeded")
        self.webhook(op, ev)
        if rnd.random() < 0.4:
            self.webhook(op, ev, expect_dup=True)
        if rnd.random() < 0.2:
            self.webhook(op, stripe_event_for(p, "succeeded"), secret="whsec_not_the_one",
                         expect=400)
        if rnd.random() < 0.1:
            self.webhook(op, stripe_event_for(p, "refunded"))
        self.call(op, "GET", "/v2/payments/%s" % p["id"], 200, token=me.access,
                  port=self.pay_port)
        self.call(op, "GET", "/v2/payments?limit=5", 200, token=me.access, port=self.pay_port)

    def op_membership(self, rnd, me, state):
        op = "membership"
        p = self.create_payment_shared(op, me, 999, purpose="membership")
        if p is None:
            return
        p = dict(p, user_id=me.id)
        self.webhook(op, stripe_event_for(p, rnd.choice(["succeeded", "failed"])))

    def op_checkout(self, rnd, me, state):
        op = "checkout"
        self.stripe_lock.acquire_shared()
        try:
            if rnd.random() < 0.5:
                r = self.call(op, "POST", "/v2/create-checkout-session", 200, token=me.access,
                              headers={"Accept": "application/json"}, port=self.pay_port)
            else:
                r = self.call(op, "POST", "/v2/create-checkout-session", 303, token=me.access,
                              port=self.pay_port)
                if r is not None and not r.header("Location"):
                    self.tally.problem("%s: 303 without Location" % op)
        finally:
            self.stripe_lock.release_shared()

    def op_stripe_fault(self, rnd, me, state):
        """Alone at the fake Stripe: two failures in a row make a deliberate 503, and the
        same key afterwards creates the payment; a refusal is a 400, replayed as such."""
        op = "stripe_fault"
        key = "fault-%s" % uuid.uuid4().hex
        body = {"amount": 4321, "currency": "usd", "purpose": "wallet_top_up"}
        hdrs = {"Idempotency-Key": key}
        self.stripe_lock.acquire_exclusive()
        try:
            if rnd.random() < 0.6:
                self.fake_stripe.control(fail_next=[500] * (STRIPE_RETRIES + 1))
                r = self.call(op, "POST", "/v2/payments", 503, json_body=body, token=me.access,
                              headers=hdrs, port=self.pay_port, code="unavailable")
                if r is not None:
                    self.tally.add("deliberate_503")
                self.fake_stripe.clear_injections()
                self.call(op, "POST", "/v2/payments", 201, json_body=body, token=me.access,
                          headers=hdrs, port=self.pay_port)
            else:
                self.fake_stripe.control(fail_next=[{"status": 402}])
                r1 = self.call(op, "POST", "/v2/payments", 400, json_body=body,
                               token=me.access, headers=hdrs, port=self.pay_port,
                               code="invalid_request")
                self.fake_stripe.clear_injections()
                r2 = self.call(op, "POST", "/v2/payments", 400, json_body=body,
                               token=me.access, headers=hdrs, port=self.pay_port,
                               code="invalid_request")
                if r1 is not None and r2 is not None and r1.body["error"] != r2.body["error"]:
                    self.tally.problem("%s: refusal not replayed: %r vs %r" %
                                       (op, r1.body, r2.body))
        finally:
            self.fake_stripe.clear_injections()
            self.stripe_lock.release_exclusive()

    def op_transfers(self, rnd, me, state):
        """A transfer (201, or 409 while the wallet is short), replayed with its key
        byte for byte when it went through, and refused when the key is reused."""
        op = "transfers"
        to = rnd.choice([u for u in self.user_ids if u != me.id])
        key = "tr-%s" % uuid.uuid4().hex
        body = {"to_user_id": to, "amount": rnd.randint(1, 400), "currency": "usd"}
        hdrs = {"Idempotency-Key": key}
        # A deadlock with a consumer batch is retried inside hexd: never a 503 here.
        r = self.call(op, "POST", "/v2/wallet/transfers", (201, 409), json_body=body,
                      token=me.access, headers=hdrs, port=self.pay_port)
        if r is None:
            return
        if r.status == 409:
            if r.body.get("code") != "insufficient_funds":
                self.tally.problem("%s: 409 %r" % (op, r.body))
            return
        self.tally.add("transferred")
        again = self.call(op, "POST", "/v2/wallet/transfers", 201, json_body=body,
                          token=me.access, headers=hdrs, port=self.pay_port)
        if again is not None and (again.raw != r.raw or
                                  again.header("Idempotent-Replayed") != "true"):
            self.tally.problem("%s: replay %r differs from %r" % (op, again.raw[:200],
                                                                 r.raw[:200]))
        self.call(op, "POST", "/v2/wallet/transfers", 409,
                  json_body=dict(body, amount=body["amount"] + 1), token=me.access,
                  headers=hdrs, port=self.pay_port, code="idempotency_key_reused")
        self.call(op, "POST", "/v2/wallet/transfers", 400, json_body=dict(body, amount=-5),
                  token=me.access, headers={"Idempotency-Key": key + "n"},
                  port=self.pay_port, code="invalid_request")

    def op_wallet(self, rnd, me, state):
        op = "wallet"
        self.call(op, "GET", "/v2/wallet", 200, token=me.access, port=self.pay_port)
        self.call(op, "GET", "/v2/wallet/entries?limit=10", 200, token=me.access,
                  port=self.pay_port)
        self.call(op, "GET", "/v2/wallet", 401, port=self.pay_port, code="unauthenticated")

    def op_webhook_misc(self, rnd, me, state):
        """Events hexd records and ignores, and deliveries it must refuse."""
        op = "webhook_misc"
        ev = stripe_event("customer.created", {"id": "cus_" + uuid.uuid4().hex[:14],
                                               "object": "customer"})
        self.webhook(op, ev)
        self.webhook(op, ev, expect_dup=True)
        self.call(op, "POST", "/v2/stripe/webhook", 400, body=b'{"id": "evt_x"}',
                  port=self.pay_port, code="invalid_request")  # no signature
        raw = b'{"id": "evt_broken", "type": '
        self.call(op, "POST", "/v2/stripe/webhook", 400, body=raw, port=self.pay_port,
                  headers={"Stripe-Signature": stripe_signature_header(self.webhook_secret,
                                                                       raw)},
                  code="invalid_request")

    def op_membership_hook(self, rnd, me, state):
        op = "membership_hook"
        body = {"event": "membership_status_updated", "user_id": me.id,
                "event_id": "mev_" + uuid.uuid4().hex}
        r = self.call(op, "POST", "/v1/membership/webhooks", 200, json_body=body,
                      headers={"Authorization": "ApiKey " + self.membership_key})
        if r is not None and r.body.get("duplicate") is not False:
            self.tally.problem("%s: %r" % (op, r.body))
        self.call(op, "POST", "/v1/membership/webhooks", 200, json_body=body,
                  headers={"Authorization": "ApiKey " + self.membership_key})
        self.call(op, "POST", "/v1/membership/webhooks", 401, json_body=body,
                  headers={"Authorization": "ApiKey mk_wrong_%s" % uuid.uuid4().hex},
                  code="unauthenticated", challenge="ApiKey")

    def op_http_errors(self, rnd, me, state):
        """Bad JSON, wrong types, 404, 405, 415 on both listeners."""
        op = "http_errors"
        pick = rnd.randrange(8)
        if pick == 0:
            self.call(op, "POST", "/v1/users", 400, body=b'{"email": "a@b.c", "pass',
                      code="invalid_request")
        elif pick == 1:
            self.call(op, "POST", "/v1/users", 400, body=b"[]", code="invalid_request")
        elif pick == 2:
            self.call(op, "POST", "/v1/messages", 400, json_body={"body": ["x"]},
                      token=me.access, code="invalid_request")
        elif pick == 3:
            self.call(op, "GET", rnd.choice(["/nope", "/v1/userss", "/v2/nothing-here",
                                             "/v1/users/a/b"]), 404, code="not_found")
        elif pick == 4:
            self.call(op, rnd.choice(["PATCH", "DELETE"]), "/v1/login", 405, body=b"{}",
                      code="method_not_allowed")
        elif pick == 5:
            self.call(op, "POST", "/v1/users", 415, body=b"{}", content_type="text/plain",
                      code="unsupported_media_type")
        elif pick == 6:
            self.call(op, "POST", "/v2/wallet/transfers", 415, body=b"{}",
                      content_type="application/x-www-form-urlencoded", token=me.access,
                      port=self.pay_port, code="unsupported_media_type")
        else:
            self.call(op, "GET", "/v2/payments/not-a-uuid", 404, token=me.access,
                      port=self.pay_port, code="not_found")

    def op_too_large(self, rnd, me, state):
        """Bodies over HEX_BODY_LIMIT: 413 from the HTTP layer (not JSON)."""
        op = "too_large"
        if rnd.random() < 0.5:
            pad = "p" * (BODY_LIMIT + rnd.randint(1, 4096))
            self.call(op, "POST", "/v1/users", 413, json_body={"email": unique_email(),
                                                               "password": "password1",
                                                               "pad": pad},
                      from_app=False)
        else:
            data = b"x" * (BODY_LIMIT * 2)
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 8192]), data[i:i + 8192])
                              for i in range(0, len(data), 8192))
            self.raw(op, b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nTransfer-Encoding: chunked\r\nConnection: close"
                     b"\r\n\r\n" + chunks + b"0\r\n\r\n", (413,))

    def op_oversize_header(self, rnd, me, state):
        """Headers over the 16 KiB limit: 400 today (431 is the planned answer)."""
        op = "oversize_header"
        if rnd.random() < 0.5:
            data = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
                    b"a" * rnd.randint(17000, 40000) + b"\r\n\r\n")
        else:
            data = (b"GET /v1/users/%s HTTP/1.1\r\nHost: x\r\n" % me.id.encode() +
                    b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 20) for i in range(1500)) +
                    b"\r\n")
        self.raw(op, data, (400, 431), port=rnd.choice([self.port, self.pay_port]))

    def op_junk(self, rnd, me, state):
        self.raw("junk", rnd.choice(JUNK), tuple(range(400, 500)), close_ok=True)

    def op_dropped(self, rnd, me, state):
        """Connections the client drops: mid-head, mid-body, or with the request sent and
        the answer never read (some reset, not closed)."""
        op = "dropped"
        body = json.dumps({"email": me.email, "password": me.password}).encode()
        full = (b"POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        cut = rnd.choice([len(full) // 3, len(full) - len(body) // 2, len(full)])
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=REQUEST_TIMEOUT)
        except OSError as e:
            if self.terminating.is_set():
                self.tally.add("cut")
                raise Cut()
            self.tally.problem("%s: connect: %s" % (op, e))
            return
        try:
            s.sendall(full[:cut])
            if rnd.random() < 0.5:
                time.sleep(rnd.random() * 0.02)
            if rnd.random() < 0.5:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00"
                             b"\x00\x00\x00\x00")  # close sends RST
        except OSError:
            pass
        finally:
            s.close()
        self.tally.add("dropped")

    def op_admin(self, rnd, me, state):
        """An operator: AUTH, read-only verbs, a cache flush (cache misses follow),
        subscriptions, then a disconnect while subscribed; or a wrong token."""
        op = "admin"
        try:
            c = AdminClient(port=self.stack.admin_port, timeout=REQUEST_TIMEOUT)
        except OSError as e:
            if self.terminating.is_set():
                self.tally.add("cut")
                raise Cut()
            self.tally.problem("%s: connect: %s" % (op, e))
            return
        try:
            if rnd.random() < 0.15:
                c.send_line("AUTH wrong-%s" % uuid.uuid4().hex)
                try:
                    rest = c.wait_closed(REQUEST_TIMEOUT)
                except OSError:
                    rest = b""
                self.tally.add("admin_lines")
                if b'"ok":true' in rest:
                    self.tally.problem("%s: a wrong token was accepted: %r" % (op, rest))
                return
            replies = [c.auth(self.stack.admin_token, "load")]
            for verb in rnd.sample(ADMIN_VERBS, 4):
                replies.append(c.call(verb))
            replies.append(c.call("USERS SHOW %s" % me.id))
            replies.append(c.call("CACHE FLUSH %s" % me.id))
            if rnd.random() < 0.2:
                replies.append(c.call("LEDGER VERIFY"))
            replies.append(c.call("SUBSCRIBE LOG"))
            replies.append(c.call("SUBSCRIBE LATENCY"))
            replies.append(c.call("PING"))
            self.tally.add("admin_lines", len(replies) + len(c.events))
            bad = [r for r in replies if r.get("ok") is not True]
            if bad:
                self.tally.problem("%s: %r" % (op, bad[:3]))
            if rnd.random() < 0.5:
                c.next_event(timeout=REQUEST_TIMEOUT)  # the log of this very load
            # then the operator simply disconnects, still subscribed
        except (AdminClosed, OSError) as e:
            if self.terminating.is_set():
                self.tally.add("cut")
                raise Cut()
            self.tally.problem("%s: %s: %s" % (op, type(e).__name__, e))
        finally:
            c.close()

    def op_probes(self, rnd, me, state):
        op = "probes"
        self.call(op, "GET", "/healthz", 200)
        self.call(op, "GET", "/readyz", 200)
        r = self.call(op, "GET", "/metrics", 200, json_reply=False)
        if r is not None and b"hex_http_requests_total" not in r.raw:
            self.tally.problem("%s: /metrics without request counters" % op)


if __name__ == "__main__":
    harness.main()
