#!/usr/bin/env python3
"""The payment-event pipeline under faults (docs/EVENTS.md), driven as an operator sees it:
a worker killed with SIGKILL mid-stream while another takes over its entries, Redis
stopped under load and started again, an event that can never apply, a refund that keeps
failing until an operator fixes the books and replays it, and garbage on the stream.
Every scenario ends with the same books: each payment posted once, wallets equal to
their top-ups, `hexd ledger verify` ok, nothing left pending on the stream."""

import collections
import concurrent.futures
import json
import os
import re
import secrets
import signal
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (PaymentCase, RespError, free_port, http_request,  # noqa: E402
                     sanitizer_lines, sql_literal, stripe_event, stripe_event_for,
                     stripe_intent_object, unique_email, wait_until)

STREAM = "hex:events:payment_events"
CONSUMERS = ("ledger", "membership", "notify")
OPERATOR = "s5-operator"  # $USER of `hexd dlq`: the actor its audit trail names
METRIC_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scale():
    """Timeouts grow with the sanitizers' slowdown."""
    return 3.0 if harness.SANITIZED else 1.0


def retry_stream(consumer):
    return "%s:retry:%s" % (STREAM, consumer)


def resp_map(flat):
    """A flat RESP name/value list as a dict with str keys."""
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in zip(flat[::2], flat[1::2])}


def parse_metrics(text):
    """{(name, frozenset of (label, value))): float} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_RE.match(line)
        if m:
            labels = frozenset(LABEL_RE.findall(m.group(2) or ""))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def fake_payment(amount=1000, currency="usd"):
    """A payment hexd never made: well-formed ids that name nothing in its database."""
    return {"id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "amount": amount,
            "currency": currency, "purpose": "wallet_top_up",
            "stripe_payment_intent_id": "pi_" + secrets.token_hex(12)}


class EventCase(PaymentCase):
    # -- what the databases hold

    def count(self, query):
        return int(self.stack.db.scalar(query))

    def processed(self, consumer):
        """Event ids consumer applied, with how often each is recorded."""
        rows = self.stack.db.sql("SELECT event_id, count(*) FROM processed_events WHERE "
                                 "consumer = %s GROUP BY event_id" % sql_literal(consumer))
        return {r[0]: int(r[1]) for r in rows}

    def references(self, prefix):
        """{journal reference: transactions with it} for references starting with prefix."""
        rows = self.stack.db.sql(
            "SELECT reference, count(*) FROM journal_transactions WHERE reference LIKE %s "
            "GROUP BY reference" % sql_literal(prefix + "%"))
        return {r[0]: int(r[1]) for r in rows}

    def unpublished(self):
        return self.count("SELECT count(*) FROM outbox WHERE published_at IS NULL")

    def failures(self, event_id, consumer="ledger"):
        return self.stack.db.sql(
            "SELECT attempt, error FROM event_failures WHERE consumer = %s AND event_id = %s "
            "ORDER BY attempt" % (sql_literal(consumer), sql_literal(event_id)))

    def dead_letters(self, event_id, consumer="ledger"):
        cols = ["id", "consumer", "event_id", "topic", "payload", "attempts", "error",
                "status", "resolved_by", "reason"]
        rows = self.stack.db.sql(
            "SELECT %s FROM dead_letters WHERE consumer = %s AND event_id = %s ORDER BY id" %
            (", ".join(cols), sql_literal(consumer), sql_literal(event_id)))
        return [dict(zip(cols, r)) for r in rows]

    def wait_dead_letter(self, event_id, consumer="ledger", timeout=10.0):
        rows = wait_until(lambda: self.dead_letters(event_id, consumer), timeout * scale(),
                          interval=0.1)
        self.assertTrue(rows, "event %s never reached dead_letters for %s" %
                        (event_id, consumer))
        self.assertEqual(len(rows), 1, rows)
        return rows[0]

    def assertLedgerVerifies(self):
        p = self.stack.run_hexd(["ledger", "verify"], timeout=60)
        self.assertFalse(sanitizer_lines(p.stderr), p.stderr)
        self.assertEqual(p.returncode, 0, "hexd ledger verify: %s%s" % (p.stdout, p.stderr))
        self.assertEqual(p.stdout.strip().splitlines()[-1], "ledger ok", p.stdout)

    def balance(self, session, currency="usd"):
        r = self.pay_req("GET", "/v2/wallet", token=session.access)
        self.assertEqual(r.status, 200, r)
        return {w["currency"]: w["balance"] for w in r.body["data"]}.get(currency, 0)

    # -- the stream, through RESP

    def groups(self, key):
        """{group: XINFO GROUPS fields} of a stream; {} when the stream does not exist."""
        with self.redis() as c:
            try:
                return {resp_map(g)["name"].decode(): resp_map(g)
                        for g in c.cmd("XINFO", "GROUPS", key)}
            except RespError as e:
                if "no such key" in str(e).lower():
                    return {}
                raise

    def members(self, consumer, key=STREAM):
        """{member name: entries pending on it} in consumer's group."""
        with self.redis() as c:
            return {resp_map(m)["name"].decode(): resp_map(m)["pending"]
                    for m in c.cmd("XINFO", "CONSUMERS", key, consumer)}

    def pending(self):
        """{(stream, group): pending} over the main stream and every retry stream."""
        out = {}
        for key in [STREAM] + [retry_stream(c) for c in CONSUMERS]:
            for name, g in self.groups(key).items():
                out[(key, name)] = g["pending"]
        return out

    def assertNothingPending(self):
        p = self.pending()
        for c in CONSUMERS:
            self.assertIn((STREAM, c), p, "group %s missing on %s: %r" % (c, STREAM, p))
        self.assertEqual({k: v for k, v in p.items() if v != 0}, {},
                         "entries left pending (delivered, never acknowledged)")

    # -- /metrics

    def metrics(self, port=None):
        r = http_request(port or self.port, "GET", "/metrics", timeout=10)
        self.assertEqual(r.status, 200, r)
        return parse_metrics(r.raw.decode())

    def metric(self, name, port=None, **labels):
        return self.metrics(port).get((name, frozenset(labels.items())))

    def wait_metric(self, name, pred, port=None, timeout=10.0, **labels):
        """Polls until pred(value) (the relay samples once a second); the last value."""
        last = [None]

        def ok():
            last[0] = self.metric(name, port, **labels)
            return last[0] is not None and pred(last[0])

        wait_until(ok, timeout * scale(), interval=0.2)
        return last[0]

    # -- the operator's command line

    def dlq(self, *args):
        env = self.stack.env()
        env["USER"] = OPERATOR
        p = self.stack.run_hexd(["dlq"] + list(args), env=env, timeout=60)
        self.assertFalse(sanitizer_lines(p.stderr), p.stderr)
        return p

    # -- money in

    def top_ups(self, sessions, n, workers=4):
        """n wallet top-up payments spread over sessions, made concurrently; each payment
        JSON with its session's index under "_owner"."""
        def make(i):
            p = self.new_payment(sessions[i % len(sessions)], amount=100 + 37 * i,
                                 purpose="wallet_top_up")
            p["_owner"] = i % len(sessions)
            return p

        with concurrent.futures.ThreadPoolExecutor(workers) as ex:
            return list(ex.map(make, range(n)))

    def deliver_all(self, events, workers=4):
        """Delivers (event, duplicate) pairs concurrently; asserts each answer. Every first
        delivery is answered before any repeat is sent: in one pool, a repeat could
        overtake its first delivery on a busy machine and be the one taken as new."""
        def send(pair):
            self.deliver(pair[0], duplicate=pair[1])

        for wave in ([e for e in events if not e[1]], [e for e in events if e[1]]):
            with concurrent.futures.ThreadPoolExecutor(workers) as ex:
                list(ex.map(send, wave))

    def success_events(self, payments):
        """payment_intent.succeeded for each payment; every 7th also delivered again, every
        10th followed by a checkout.session.completed (another event id, the same
        payment: still one posting). The webhook deliveries and the distinct ids."""
        first, again = [], []
        for i, p in enumerate(payments):
            ev = stripe_event_for(p, "succeeded")
            first.append((ev, False))
            if i % 7 == 0:
                again.append((ev, True))
            if i % 10 == 3:
                first.append((stripe_event_for(p, "checkout"), False))
        return first + again, {ev["id"] for ev, dup in first}


# ---------------------------------------------------------------------------------------
# 1. two competing workers, one killed with SIGKILL (or stopped with SIGTERM) while the
#    ledger is part-way


class TwoWorkersCase(EventCase):
    """An API-only hexd takes the webhooks; worker-only hexds started by the test run the
    event threads."""
    HEXD_ENV = {"HEX_ROLES": "api"}  # takes the webhooks, runs no event thread
    PAYMENTS = 200

    def spawn_worker(self):
        """A worker-only hexd on fresh ports, serving only /metrics; waits until its event
        threads run."""
        for _ in range(3):
            mport = free_port()
            h = self.stack.spawn_hexd({
                "HEX_ROLES": "worker", "HEX_EVENT_CLAIM_IDLE_MS": "1000",
                "HEX_METRICS_LISTEN": "127.0.0.1:%d" % mport,
                "HEX_HTTP_LISTEN": "127.0.0.1:%d" % free_port(),
                "HEX_PAYMENTS_LISTEN": "127.0.0.1:%d" % free_port(),
                "HEX_ADMIN_LISTEN": "127.0.0.1:%d" % free_port()})
            self.addCleanup(h.kill)
            h.metrics_port = mport

            def up():
                if not h.alive():
                    return "exited"
                if '"event_workers"' not in h.log():
                    return None
                try:
                    return "ok" if http_request(mport, "GET", "/metrics",
                                                timeout=2).status == 200 else None
                except OSError:
                    return None

            state = wait_until(up, harness.STARTUP_TIMEOUT)
            if state == "ok":
                return h
            h.kill()
            if state != "exited" or "in use" not in h.log().lower():
                self.fail("worker hexd did not start (%s):\n%s" % (state, h.log()[-4000:]))
        self.fail("worker hexd could not bind a free port 3 times")

    def ledger_member_pending(self, pid):
        """Entries of the ledger group pending on the members of process pid."""
        tag = "-%d-ledger-" % pid
        return sum(n for name, n in self.members("ledger").items() if tag in name)



    def part_way_victim(self, workers, n):
        """Once the ledger group has read a fifth of the n events and before it is done:
        the worker whose members hold the most ledger entries (at least 3) right now."""
        deadline = time.monotonic() + 30 * scale()
        while time.monotonic() < deadline:
            g = self.groups(STREAM).get("ledger")
            read = g.get("entries-read") if g else None
            if read is not None and read >= n // 5:
                most, w = max(((self.ledger_member_pending(w.proc.pid), w) for w in workers),
                              key=lambda x: x[0])
                if most >= 3:
                    return w
            if read is not None and read >= n and g["pending"] == 0:
                break
            time.sleep(0.005)
        self.fail("the ledger finished (or never started) before a worker could be picked "
                  "mid-stream: make the batch bigger")

    def drained(self, n):
        return (all(len(self.processed(c)) == n for c in CONSUMERS) and
                self.unpublished() == 0 and not any(self.pending().values()))

    def assertDrains(self, n, after):
        self.assertTrue(wait_until(lambda: self.drained(n), 60 * scale(), interval=0.3),
                        "not drained after the %s: processed %r, unpublished %d, pending %r" %
                        (after, {c: len(self.processed(c)) for c in CONSUMERS},
                         self.unpublished(), self.pending()))


    def assertOnlyDeadlockRetries(self):
        """No failed attempt but the known one: two ledger batches creating the same new
        wallet deadlock now and then (docs/EVENTS.md, "Left"); PostgreSQL ends one, its
        event is retried at attempt 2 and applied once. Anything else fails the test."""
        rows = self.stack.db.sql("SELECT consumer, attempt, error FROM event_failures")
        for consumer, attempt, error in rows:
            self.assertEqual((consumer, attempt), ("ledger", "1"), rows)
            self.assertIn("unavailable", error, rows)
        self.assertEqual(self.count("SELECT count(*) FROM dead_letters"), 0)
        self.assertLessEqual(len(rows), 3, rows)


class WorkerKilledMidStreamTest(TwoWorkersCase):
    def test_sigkill_one_worker_the_other_takes_over_and_books_balance(self):
        sessions = [self.session(unique_email("kill%d" % i)) for i in range(4)]
        payments = self.top_ups(sessions, self.PAYMENTS)
        deliveries, event_ids = self.success_events(payments)
        n = len(event_ids)
        # Every event waits in the outbox first, so that both workers start into a
        # backlog and each holds a batch of delivered, unacknowledged entries.
        self.deliver_all(deliveries)
        self.assertEqual(self.unpublished(), n)
        workers = [self.spawn_worker(), self.spawn_worker()]

        # Kill while the ledger group is part-way.
        victim = self.part_way_victim(workers, n)
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        survivor = workers[0] if victim is workers[1] else workers[1]
        orphaned = self.ledger_member_pending(victim.proc.pid)
        done_at_kill = len(self.processed("ledger"))
        self.assertGreater(orphaned, 0, "the killed worker held no ledger entry")
        self.assertLess(done_at_kill, n, "the ledger was not part-way at the kill")

        self.assertDrains(n, "kill")
        self.assertTrue(survivor.alive())

        # Each payment posted exactly once, whatever carried it and however often.
        posted = self.references("payment:")
        self.assertEqual(posted, {"payment:%s" % p["id"]: 1 for p in payments})
        self.assertEqual(self.count("SELECT count(*) FROM journal_transactions"),
                         len(payments))
        # Each event applied exactly once per consumer, none failed.
        for c in CONSUMERS:
            self.assertEqual(self.processed(c), {e: 1 for e in event_ids}, c)
        self.assertOnlyDeadlockRetries()
        self.assertEqual(self.count("SELECT count(*) FROM dead_letters"), 0)
        # Wallets are their top-ups, as their owners see them.
        want = collections.Counter()
        for p in payments:
            want[p["_owner"]] += p["amount"]
        for i, s in enumerate(sessions):
            self.assertEqual(self.balance(s), want[i], "wallet of user %d" % i)
        self.assertLedgerVerifies()
        # The survivor claimed what the dead member held: nothing is pending anywhere,
        # not on the dead member either.
        self.assertNothingPending()
        self.assertEqual(self.ledger_member_pending(victim.proc.pid), 0)
        self.assertIn("took over", survivor.log())
        self.assertEqual(self.wait_metric("hex_events_outbox_unpublished", lambda x: x == 0,
                                          port=survivor.metrics_port), 0.0)
        for c in CONSUMERS:
            for name in ("hex_events_pending", "hex_events_oldest_unacked_seconds"):
                self.assertEqual(self.wait_metric(name, lambda x: x == 0,
                                                  port=survivor.metrics_port, consumer=c),
                                 0.0, "%s{consumer=%s}" % (name, c))

        self.assertFalse(sanitizer_lines(victim.log()))
        self.assertEqual(survivor.stop(), 0, survivor.log()[-4000:])
        self.assertFalse(sanitizer_lines(survivor.log()), survivor.log()[-4000:])


class WorkerStoppedMidStreamTest(TwoWorkersCase):
    def test_sigterm_one_worker_finishes_its_events_and_leaves_none_pending(self):
        """SIGTERM is a clean stop: the worker finishes and acknowledges what it read,
        exits 0, and leaves nothing for another member to take over."""
        sessions = [self.session(unique_email("term%d" % i)) for i in range(4)]
        payments = self.top_ups(sessions, self.PAYMENTS)
        deliveries, event_ids = self.success_events(payments)
        n = len(event_ids)
        self.deliver_all(deliveries)
        self.assertEqual(self.unpublished(), n)
        workers = [self.spawn_worker(), self.spawn_worker()]

        victim = self.part_way_victim(workers, n)  # holds 3 or more entries unacknowledged
        victim.proc.send_signal(signal.SIGTERM)
        self.assertEqual(victim.proc.wait(15 * scale()), 0, victim.log()[-4000:])
        # What it had read is applied and acknowledged, not left to XAUTOCLAIM.
        self.assertEqual(self.ledger_member_pending(victim.proc.pid), 0)
        survivor = workers[0] if victim is workers[1] else workers[1]

        self.assertDrains(n, "SIGTERM")
        self.assertEqual(self.references("payment:"),
                         {"payment:%s" % p["id"]: 1 for p in payments})
        for c in CONSUMERS:
            self.assertEqual(self.processed(c), {e: 1 for e in event_ids}, c)
        self.assertOnlyDeadlockRetries()
        self.assertLedgerVerifies()
        self.assertNotIn("took over", survivor.log(), "the stopped worker left entries behind")
        self.assertIn('"stopped"', victim.log())
        self.assertFalse(sanitizer_lines(victim.log()), victim.log()[-4000:])
        self.assertEqual(survivor.stop(), 0, survivor.log()[-4000:])


# ---------------------------------------------------------------------------------------
# 2. Redis stopped under load and started again


class RedisDownUnderLoadTest(EventCase):
    EVENTS = 100

    def test_webhooks_and_reads_go_on_events_wait_then_drain(self):
        s = self.session(unique_email("outage"))
        t = self.session(unique_email("outage2"))
        # One event through first: the stream and its groups exist before the outage.
        first = self.new_payment(s, amount=500)
        self.deliver(stripe_event_for(first, "succeeded"))
        self.assertTrue(wait_until(lambda: self.references("payment:"), 10 * scale(), 0.1))
        self.assertTrue(wait_until(lambda: all(len(self.processed(c)) == 1 for c in CONSUMERS),
                                   10 * scale(), 0.1))
        payments = self.top_ups([s, t], self.EVENTS)
        r = self.get("/v1/users/%s" % s.id, token=s.access)
        self.assertEqual(r.status, 200, r)
        with self.redis() as c:
            self.assertEqual(c.cmd("EXISTS", self.cache_key(s.id)), 1)
            entries = c.cmd("XLEN", STREAM)
        self.assertGreaterEqual(entries, 1)

        self.assertEqual(self.wait_metric("hex_events_outbox_unpublished", lambda x: x == 0),
                         0.0)
        self.stack.redis.stop(save=True)
        for p in payments:
            r = self.send_event(stripe_event_for(p, "succeeded"))
            self.assertEqual(r.status, 200, "a webhook with Redis down: %r" % r)
            self.assertEqual(r.body, {"received": True, "duplicate": False}, r)
        for who in (s, t):
            r = self.get("/v1/users/%s" % who.id, token=who.access)
            self.assertEqual(r.status, 200, "a user read with Redis down: %r" % r)
            self.assertUserJson(r.body, who.email, who.id)
        self.assertEqual(self.unpublished(), self.EVENTS)
        v = self.wait_metric("hex_events_outbox_unpublished", lambda x: x >= self.EVENTS)
        self.assertEqual(v, self.EVENTS, "hex_events_outbox_unpublished with Redis down")
        age = self.wait_metric("hex_events_oldest_unpublished_seconds", lambda x: x > 0)
        self.assertGreater(age, 0)
        self.assertEqual(len(self.references("payment:")), 1, "posted with Redis down?")
        self.assertEqual(self.stack.hexd.alive(), True)

        started = time.monotonic()
        self.stack.redis.start()
        # The restart kept the stream and its groups (the entry that was there before).
        with self.redis() as c:
            self.assertGreaterEqual(c.cmd("XLEN", STREAM), entries)
        self.assertEqual(set(self.groups(STREAM)), set(CONSUMERS))

        def drained():
            return (self.unpublished() == 0 and
                    len(self.references("payment:")) == self.EVENTS + 1 and
                    all(len(self.processed(c)) == self.EVENTS + 1 for c in CONSUMERS))

        self.assertTrue(wait_until(drained, 30 * scale(), interval=0.2),
                        "not drained within %.0f s of Redis coming back: unpublished %d, "
                        "posted %d" % (30 * scale(), self.unpublished(),
                                       len(self.references("payment:"))))
        took = time.monotonic() - started
        self.assertLess(took, 30 * scale())
        self.assertEqual(self.references("payment:"),
                         {"payment:%s" % p["id"]: 1 for p in payments + [first]})
        self.assertEqual(self.balance(s) + self.balance(t),
                         sum(p["amount"] for p in payments + [first]))
        self.assertEqual(self.balance(t), sum(p["amount"] for p in payments[1::2]))
        self.assertEqual(self.wait_metric("hex_events_outbox_unpublished", lambda x: x == 0),
                         0.0)
        self.assertTrue(wait_until(lambda: not any(self.pending().values()), 10 * scale(),
                                   0.2), self.pending())
        self.assertNothingPending()
        self.assertEqual(self.count("SELECT count(*) FROM dead_letters"), 0)
        self.assertLedgerVerifies()


# ---------------------------------------------------------------------------------------
# 3. dead letters: an event that can never apply, one that fails until fixed, garbage

FAST_RETRIES = {"HEX_EVENT_MAX_ATTEMPTS": "3", "HEX_EVENT_RETRY_BASE_MS": "50",
                "HEX_EVENT_RETRY_MAX_MS": "200"}


class PoisonEventTest(EventCase):
    HEXD_ENV = FAST_RETRIES

    def test_unknown_payment_is_dead_lettered_at_once_shown_and_discarded(self):
        ghost = fake_payment(amount=4200)
        ev = stripe_event("payment_intent.succeeded", stripe_intent_object(ghost))
        self.deliver(ev)
        d = self.wait_dead_letter(ev["id"])
        self.assertEqual((d["attempts"], d["status"], d["topic"]), ("1", "open",
                                                                   "payment_events"), d)
        self.assertIn(ghost["id"], d["error"])
        self.assertEqual(json.loads(d["payload"])["id"], ev["id"])
        self.assertEqual([f[0] for f in self.failures(ev["id"])], ["1"],
                         "an event that can never apply was retried")
        self.assertEqual(self.count("SELECT count(*) FROM outbox WHERE consumer <> ''"), 0)
        self.assertEqual(self.references(""), {})
        # The books are the ledger's: the other consumers have nothing to do with a payment
        # that does not exist (no cached member to drop), so they apply it as nothing
        # instead of handing the operator the same dead event twice more.
        for c in ("membership", "notify"):
            self.assertTrue(wait_until(lambda: self.processed(c).get(ev["id"]) == 1 or
                                       self.dead_letters(ev["id"], c), 10 * scale(), 0.1))
            dead = [(d["id"], d["error"]) for d in self.dead_letters(ev["id"], c)]
            self.assertEqual(dead, [], "%s dead-lettered an event about no payment too" % c)
            self.assertEqual(self.processed(c), {ev["id"]: 1}, c)
        self.assertEqual(self.count("SELECT count(*) FROM dead_letters WHERE status = 'open'"),
                         1)
        self.assertEqual(self.wait_metric("hex_dead_letters_open", lambda x: x >= 1), 1.0)
        self.assertEqual(self.metric("hex_events_total", consumer="ledger", result="dead"), 1)
        self.assertEqual(self.metric("hex_events_total", consumer="ledger", result="retried"),
                         0)
        self.assertEqual(self.metric("hex_events_total", consumer="notify", result="applied"),
                         1)

        p = self.dlq("list")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 1, p.stdout)
        self.assertEqual(lines[0].split()[:4], [d["id"], "open", "ledger", "1"], lines)
        self.assertIn(ev["id"], lines[0])
        self.assertIn(ghost["id"], lines[0])

        p = self.dlq("show", d["id"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^id:\s+%s$" % d["id"])
        self.assertRegex(p.stdout, r"(?m)^status:\s+open$")
        self.assertRegex(p.stdout, r"(?m)^consumer:\s+ledger$")
        self.assertRegex(p.stdout, r"(?m)^event:\s+%s$" % re.escape(ev["id"]))
        self.assertRegex(p.stdout, r"(?m)^attempts:\s+1$")
        self.assertRegex(p.stdout, r"(?m)^attempt 1 at \S+Z: .*%s" % ghost["id"])
        payload = re.search(r"(?m)^payload:\s+(.*)$", p.stdout)
        self.assertIsNotNone(payload, p.stdout)
        self.assertEqual(json.loads(payload.group(1)), ev)

        # Discarding needs a reason; a refused discard changes nothing.
        p = self.dlq("discard", d["id"])
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("usage:", p.stderr)
        p = self.dlq("discard", d["id"], "")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("reason", p.stderr)
        self.assertEqual(self.dead_letters(ev["id"])[0]["status"], "open")

        reason = "payment not ours: test account noise"
        p = self.dlq("discard", d["id"], reason)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^status:\s+discarded$")
        self.assertIn("by hexd-cli:%s: %s" % (OPERATOR, reason), p.stdout)
        row = self.dead_letters(ev["id"])[0]
        self.assertEqual((row["status"], row["resolved_by"], row["reason"]),
                         ("discarded", "hexd-cli:" + OPERATOR, reason))
        self.assertEqual(self.dlq("list").stdout.strip(), "")
        p = self.dlq("list", "--all")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split()[:2], [d["id"], "discarded"], p.stdout)
        self.assertEqual(self.wait_metric("hex_dead_letters_open", lambda x: x == 0), 0.0)
        # Resolved is final.
        for verb in (["replay", d["id"]], ["discard", d["id"], "again"]):
            p = self.dlq(*verb)
            self.assertEqual(p.returncode, 5, p.stdout + p.stderr)
            self.assertIn("already discarded", p.stderr)
        self.assertEqual(self.references(""), {})

    def test_unknown_or_bad_ids_and_bad_verbs(self):
        for verb in (["show", "987654321"], ["replay", "987654321"],
                     ["discard", "987654321", "some reason"]):
            p = self.dlq(*verb)
            self.assertEqual(p.returncode, 4, "%s: %s%s" % (verb, p.stdout, p.stderr))
            self.assertIn("dead letter 987654321 not found", p.stderr)
            self.assertEqual(p.stdout, "")
        for bad in ("abc", "0", "-1", "12x"):
            p = self.dlq("show", bad)
            self.assertEqual(p.returncode, 1, "%s: %s%s" % (bad, p.stdout, p.stderr))
            self.assertIn("not a dead letter id", p.stderr)
        for args in ([], ["frobnicate"], ["show"], ["replay", "1", "2"], ["list", "-a", "b"]):
            p = self.dlq(*args)
            self.assertEqual(p.returncode, 2, "%s: %s%s" % (args, p.stdout, p.stderr))
            self.assertIn("usage: hexd dlq", p.stderr)
        p = self.dlq("list", "--open")  # not an option: never read as a plain list
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("unknown option --open", p.stderr)
        self.assertEqual(p.stdout, "")


class RefundRetriedThenReplayedTest(EventCase):
    HEXD_ENV = FAST_RETRIES

    def transfer(self, frm, to, amount):
        r = self.pay_req("POST", "/v2/wallet/transfers", token=frm.access,
                         json_body={"to_user_id": to.id, "amount": amount, "currency": "usd"},
                         headers={"Idempotency-Key": "t-" + uuid.uuid4().hex})
        self.assertEqual(r.status, 201, r)

    def test_overdrawing_refund_retries_dies_then_posts_once_on_replay(self):
        a = self.session(unique_email("payer"))
        b = self.session(unique_email("payee"))
        p = self.new_payment(a, amount=1000)
        self.deliver(stripe_event_for(p, "succeeded"))
        self.assertTrue(wait_until(lambda: self.balance(a) == 1000, 10 * scale(), 0.1))
        self.transfer(a, b, 800)
        self.assertEqual((self.balance(a), self.balance(b)), (200, 800))

        refund = stripe_event_for(p, "refunded")
        self.deliver(refund)
        d = self.wait_dead_letter(refund["id"])
        self.assertEqual((d["attempts"], d["status"]), ("3", "open"), d)
        history = self.failures(refund["id"])
        self.assertEqual([h[0] for h in history], ["1", "2", "3"], history)
        retries = self.stack.db.sql("SELECT attempt FROM outbox WHERE consumer = 'ledger' AND "
                                    "event_id = %s ORDER BY attempt" %
                                    sql_literal(refund["id"]))
        self.assertEqual(retries, [["2"], ["3"]])
        self.assertEqual(self.references("refund:"), {})
        self.assertEqual((self.balance(a), self.balance(b)), (200, 800))
        self.assertEqual(self.wait_metric("hex_dead_letters_open", lambda x: x >= 1), 1.0)
        show = self.dlq("show", d["id"])
        self.assertEqual(show.returncode, 0, show.stderr)
        for n in (1, 2, 3):
            self.assertRegex(show.stdout, r"(?m)^attempt %d at " % n)

        # The fix: the money comes back, then the operator replays.
        self.transfer(b, a, 800)
        self.assertEqual((self.balance(a), self.balance(b)), (1000, 0))
        r = self.dlq("replay", d["id"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^status:\s+replayed$")
        self.assertRegex(r.stdout, r"(?m)^resolved:\s+\S+Z by hexd-cli:%s$" % OPERATOR)
        self.assertTrue(wait_until(lambda: self.references("refund:"), 10 * scale(), 0.1),
                        "the replayed refund was not posted")
        self.assertTrue(wait_until(lambda: self.processed("ledger").get(refund["id"]) == 1,
                                   10 * scale(), 0.1))
        self.assertEqual(self.references("refund:"), {"refund:%s" % p["id"]: 1})
        self.assertEqual((self.balance(a), self.balance(b)), (0, 0))
        row = self.dead_letters(refund["id"])
        self.assertEqual(len(row), 1, row)
        self.assertEqual((row[0]["status"], row[0]["resolved_by"]),
                         ("replayed", "hexd-cli:" + OPERATOR))
        # The replay is the 4th attempt, and it did not fail.
        self.assertEqual([h[0] for h in self.failures(refund["id"])], ["1", "2", "3"])
        self.assertEqual(self.count("SELECT count(*) FROM outbox WHERE consumer = 'ledger' "
                                    "AND attempt = 4 AND event_id = %s" %
                                    sql_literal(refund["id"])), 1)
        self.assertEqual(self.wait_metric("hex_dead_letters_open", lambda x: x == 0), 0.0)

        totals = {r: self.metric("hex_events_total", consumer="ledger", result=r)
                  for r in ("applied", "retried", "dead", "duplicate", "stalled")}
        self.assertEqual(totals, {"applied": 2, "retried": 2, "dead": 1, "duplicate": 0,
                                  "stalled": 0})

        again = self.dlq("replay", d["id"])
        self.assertEqual(again.returncode, 5, again.stdout + again.stderr)
        self.assertIn("dead letter %s is already replayed" % d["id"], again.stderr)
        # Refused before scheduling anything: no 5th attempt exists to post twice.
        self.assertEqual(self.stack.db.sql(
            "SELECT attempt FROM outbox WHERE consumer = 'ledger' AND event_id = %s ORDER BY "
            "attempt" % sql_literal(refund["id"])), [["2"], ["3"], ["4"]])
        self.assertEqual(self.references("refund:"), {"refund:%s" % p["id"]: 1})
        self.assertEqual(self.balance(a), 0)
        self.assertEqual(self.dlq("list").stdout.strip(), "")
        self.assertLedgerVerifies()
        self.assertTrue(wait_until(lambda: not any(self.pending().values()), 10 * scale(),
                                   0.2), self.pending())


class MalformedStreamEntryTest(EventCase):
    HEXD_ENV = FAST_RETRIES

    def test_garbage_entries_are_dead_lettered_and_block_nothing(self):
        s = self.session(unique_email("garbage"))
        warm = self.new_payment(s, amount=300)
        self.deliver(stripe_event_for(warm, "succeeded"))  # the groups exist after this
        self.assertTrue(wait_until(lambda: len(self.references("payment:")) == 1,
                                   10 * scale(), 0.1))
        with self.redis() as c:
            junk = c.cmd("XADD", STREAM, "*", "junk", b"\x00\xff\xfe binary", "n", "1").decode()
            # The right names, a wrong topic: still not an event of this stream.
            wrong = c.cmd("XADD", STREAM, "*", "event_id", "evt_wrong", "topic", "elsewhere",
                          "consumer", "", "attempt", "1", "outbox_id", "1",
                          "payload", "{}").decode()
        after = self.new_payment(s, amount=700)
        self.deliver(stripe_event_for(after, "succeeded"))
        self.assertTrue(wait_until(lambda: len(self.references("payment:")) == 2,
                                   10 * scale(), 0.1), "an event behind garbage was blocked")
        self.assertEqual(self.balance(s), 1000)

        for entry, why in ((junk, "a field is missing"), (wrong, "topic")):
            for c in CONSUMERS:
                d = self.wait_dead_letter("stream:" + entry, c)
                self.assertEqual((d["attempts"], d["status"]), ("1", "open"), d)
                self.assertIn("malformed", d["error"])
                self.assertIn("malformed stream entry %s" % entry, d["payload"])
                self.assertIn(why, d["payload"])
        self.assertEqual(self.wait_metric("hex_dead_letters_open", lambda x: x >= 6), 6.0)
        self.assertTrue(wait_until(lambda: not any(self.pending().values()), 10 * scale(),
                                   0.2), self.pending())
        self.assertNothingPending()

        d = self.dead_letters("stream:" + junk)[0]
        p = self.dlq("show", d["id"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^event:\s+stream:%s$" % junk)
        self.assertIn("\\x00\\xff\\xfe binary", p.stdout)
        # Not JSON: it cannot be replayed, only discarded.
        p = self.dlq("replay", d["id"])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("not JSON", p.stderr)
        self.assertEqual(self.dead_letters("stream:" + junk)[0]["status"], "open")
        p = self.dlq("discard", d["id"], "garbage written by hand")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.dead_letters("stream:" + junk)[0]["status"], "discarded")
        self.assertEqual(len(self.dlq("list").stdout.splitlines()), 5)
        self.assertEqual(self.references("payment:"),
                         {"payment:%s" % warm["id"]: 1, "payment:%s" % after["id"]: 1})
        self.assertLedgerVerifies()


if __name__ == "__main__":
    harness.main()
