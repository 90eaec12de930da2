#!/usr/bin/env python3
"""Saves a capture of each hexctl console screen, as an operator sees it at 80x24, to
docs/console/<screen>.txt for the README: a fresh stack with a few users, messages and
payments (one stuck), a dead letter and some traffic, driven through tmux like
test_console.py. Not a test (the e2e glob takes test_*.py only); run it by hand:

    scripts/test.sh's HEX_TEST_PG_URL, then
    python3 tests/e2e/console_captures.py --hexd build/bin/hexd

HEX_CONSOLE_CAPTURES (a folder) overrides where the files go."""

import os
import re
import secrets
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (http_request, sql_literal, stripe_event, stripe_event_for,  # noqa: E402
                     stripe_intent_object)
from test_console import ConsoleCase  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.environ.get("HEX_CONSOLE_CAPTURES") or \
    os.path.normpath(os.path.join(HERE, "..", "..", "docs", "console"))
PEOPLE = ["ada", "grace", "edsger", "barbara", "ken", "dennis"]


class Captures(ConsoleCase):
    def seed(self):
        sessions = []
        for i, name in enumerate(PEOPLE):
            s = self.session("%s@example.com" % name)
            sessions.append(s)
            for body in ("hello from %s" % name, "invoice %d sent" % (100 + i)):
                r = self.post("/v1/messages", {"body": body}, token=s.access)
                self.assertEqual(r.status, 201, r)
            if i < 4:
                p = self.new_payment(s, amount=1500 + 250 * i)
                self.deliver(stripe_event_for(p, "succeeded"))
        stuck = self.new_payment(sessions[4], amount=990)
        self.stack.db.sql("UPDATE payments SET created_at = now() - interval '17 minutes' "
                          "WHERE id = %s" % sql_literal(stuck["id"]))
        ghost = {"id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "amount": 4200,
                 "currency": "usd", "purpose": "wallet_top_up",
                 "stripe_payment_intent_id": "pi_" + secrets.token_hex(12)}
        ev = stripe_event("payment_intent.succeeded", stripe_intent_object(ghost))
        self.deliver(ev)
        self.wait_dead_letter(ev["id"])
        return sessions

    def load(self, sessions, stop):
        i = 0
        while not stop.is_set():
            s = sessions[i % len(sessions)]
            i += 1
            try:
                http_request(self.port, "GET", "/v1/users/%s" % s.id,
                             headers={"Authorization": "Bearer " + s.access}, timeout=5)
                if i % 5 == 0:
                    http_request(self.port, "GET", "/v1/messages",
                                 headers={"Authorization": "Bearer " + s.access}, timeout=5)
            except OSError:
                pass
            time.sleep(0.002)

    def save(self, name):
        time.sleep(0.4)
        text = "\n".join(l.rstrip() for l in self.term.lines()) + "\n"
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, name + ".txt"), "w") as f:
            f.write(text)
        print("saved %s" % os.path.join(OUT, name + ".txt"), file=sys.stderr)

    def test_capture_every_screen(self):
        sessions = self.seed()
        stop = threading.Event()
        loader = threading.Thread(target=self.load, args=(sessions, stop))
        loader.start()
        try:
            self.start_console()
            time.sleep(1.5)  # a status refresh and some latency ticks
            self.goto("1", "Users")
            self.term.wait_for(r"ada@example\.com")
            self.save("users")
            self.term.keys("/")
            self.term.type("ada")
            self.term.keys("Enter")
            self.term.wait_for(r"^Users whose email holds")
            self.term.keys("Enter")
            self.term.wait_for(r"^User ada@example\.com")
            self.save("users-detail")
            self.term.keys("Escape", "Escape")
            self.goto("2", "Messages")
            self.save("messages")
            self.goto("3", "Payments")
            self.term.wait_for(r"stuck \d+m")
            self.save("payments")
            self.goto("4", "Ledger accounts")
            self.save("ledger")
            self.term.keys("v")
            self.term.wait_for(r"^Ledger verify")
            self.save("ledger-verify")
            self.term.keys("Escape")
            self.goto("5", "Dead letters")
            self.term.wait_for(r"open\s+ledger")
            self.save("dead-letters")
            self.term.keys("Enter")
            self.term.wait_for(r"^Dead letter \d+")
            self.save("dead-letter-detail")
            self.term.keys("Escape")
            self.goto("6", "Latency per route")
            time.sleep(8)  # a few sparkline cells
            self.term.wait_for(r"GET /v1/users/:id")
            self.save("latency")
            self.term.keys("?")
            self.term.wait_for(r"Help: Latency")
            self.save("help")
            self.term.keys("x")
        finally:
            stop.set()
            loader.join()


if __name__ == "__main__":
    harness.main()
