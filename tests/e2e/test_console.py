#!/usr/bin/env python3
"""The hexctl console (tui/console*.c) in a real terminal: tmux runs hexctl at 80x24 on a
private socket, send-keys types, capture-pane reads the screen; PostgreSQL confirms what
the operator did. Every screen renders inside 80x24 with its title, legend and status
line; search, detail, filters and the key legend work; a dead letter replayed from the
console is applied once; the latency screen's numbers move under load; a hexd restart
shows "reconnecting" then "connected"; NO_COLOR and a monochrome terminal get no color;
q, Ctrl-C and SIGTERM all leave the terminal as it was, with no sanitizer report."""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (PaymentCase, http_request, sanitizer_lines, sql_literal,  # noqa: E402
                     stripe_event, stripe_event_for, stripe_intent_object, unique_email,
                     wait_until)

COLS, ROWS = 80, 24
OPERATOR = "e2e-console"
PS1 = "e2e$ "
FAST_RETRIES = {"HEX_EVENT_MAX_ATTEMPTS": "3", "HEX_EVENT_RETRY_BASE_MS": "50",
                "HEX_EVENT_RETRY_MAX_MS": "200"}
# Each screen: its key, the start of its title, words its legend must hold.
SCREENS = [
    ("1", "Users (newest first)", ["Enter open", "/ search", "m messages", "p payments"]),
    ("2", "Messages", ["Enter open", "/ search", "u by user"]),
    ("3", "Payments (stuck first, then newest)", ["Enter open", "s status filter"]),
    ("4", "Ledger accounts", ["Enter open", "v verify"]),
    ("5", "Dead letters, open (newest first)", ["Enter open", "r replay", "d discard"]),
    ("6", "Latency per route", ["Enter history"]),
]
TABS = ["1 Users", "2 Messages", "3 Payments", "4 Ledger", "5 Dead letters", "6 Latency"]
UUID_PART = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
SGR_RE = re.compile(r"\x1b\[([0-9;:]*)m")
SPARK_BLOCKS = set("\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588")


def scale():
    return 3.0 if harness.SANITIZED else 1.0


def hexctl_path():
    return os.path.join(os.path.dirname(harness.HEXD), "hexctl")


def cells(line):
    """Display width of a captured line (East Asian wide characters take two cells)."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in line)


def color_params(screen_with_escapes):
    """The SGR parameters that set a color (not the defaults 39/49) in a capture -e."""
    out = []
    for m in SGR_RE.finditer(screen_with_escapes):
        params = [p for p in re.split(r"[;:]", m.group(1)) if p]
        for p in params:
            n = int(p)
            if 30 <= n <= 37 or 40 <= n <= 47 or 90 <= n <= 97 or 100 <= n <= 107 or \
                    n in (38, 48):
                out.append(n)
    return out


class Tmux:
    """A private tmux server (own socket, no config file) with one 80x24 window running an
    interactive sh, in which the tests type the commands an operator would."""

    def __init__(self, env, cols=COLS, rows=ROWS):
        self.sock = "hexc-%d-%s" % (os.getpid(), secrets.token_hex(4))
        self.env = dict(env)
        self.tmpdir = tempfile.mkdtemp(prefix="hex-console-")
        self.env.update({"PS1": PS1, "HOME": self.tmpdir, "ENV": ""})
        self.cols, self.rows = cols, rows
        self.socket_path = None
        self.closed = False

    def tmux(self, *args, check=True):
        p = subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null"] + list(args),
                           env=self.env, capture_output=True, text=True, timeout=20)
        if check and p.returncode != 0:
            raise AssertionError("tmux %s: %s" % (" ".join(args), p.stderr.strip()))
        return p.stdout

    def start(self):
        try:
            # tmux does not hand PS1 on through its environment: set it on the command line.
            self.tmux("new-session", "-d", "-x", str(self.cols), "-y", str(self.rows),
                      "env PS1='%s' sh" % PS1)
            self.socket_path = self.tmux("display-message", "-p", "#{socket_path}").strip()
            if not wait_until(lambda: PS1.strip() in self.screen(), 10):
                raise AssertionError("no shell prompt in tmux:\n" + self.screen())
        except BaseException:
            self.close()
            raise
        return self

    def close(self):
        """Stops the tmux server and whatever runs in it; removes its socket. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.tmux("kill-server", check=False)
        if self.socket_path:
            wait_until(lambda: subprocess.run(["tmux", "-S", self.socket_path, "has-session"],
                                              capture_output=True).returncode != 0, 5)
            try:
                os.unlink(self.socket_path)
            except OSError:
                pass
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def keys(self, *keys):
        """tmux key names (Enter, Escape, Down, NPage, F3, C-c) or single characters."""
        self.tmux("send-keys", "-t", "0", *keys)
        time.sleep(0.05)

    def type(self, text):
        self.tmux("send-keys", "-t", "0", "-l", text)
        time.sleep(0.05)

    def screen(self, escapes=False, history=False):
        args = ["capture-pane", "-p", "-t", "0"]
        if escapes:
            args.append("-e")
        if history:
            args += ["-S", "-200"]
        return self.tmux(*args)

    def lines(self):
        return self.screen().split("\n")[:self.rows]

    def resize(self, cols, rows):
        self.tmux("resize-window", "-t", "0", "-x", str(cols), "-y", str(rows))

    def shell_pid(self):
        return int(self.tmux("display-message", "-p", "-t", "0", "#{pane_pid}").strip())

    def wait_for(self, pattern, timeout=10.0, flags=re.M):
        """The screen once pattern (a regex) matches it; fails showing the last screen."""
        last = [""]

        def seen():
            last[0] = self.screen()
            return re.search(pattern, last[0], flags)

        if wait_until(seen, timeout * scale(), interval=0.1) is None:
            raise AssertionError("screen never matched %r within %.0f s; it shows:\n%s" %
                                 (pattern, timeout * scale(), last[0]))
        return last[0]

    def wait_gone(self, pattern, timeout=10.0):
        last = [""]

        def gone():
            last[0] = self.screen()
            return not re.search(pattern, last[0], re.M)

        if wait_until(gone, timeout * scale(), interval=0.1) is None:
            raise AssertionError("screen still shows %r after %.0f s:\n%s" %
                                 (pattern, timeout * scale(), last[0]))
        return last[0]


class ConsoleCase(PaymentCase):
    """A stack (with the fake Stripe) and, per test, a tmux window with the console."""

    HEXD_ENV = FAST_RETRIES

    def setUp(self):
        super().setUp()
        self.term = None
        self.stty_file = None

    def tearDown(self):
        try:
            if self.term is not None and not self.term.closed:
                self.quit_console()
        finally:
            super().tearDown()

    def console_env(self, **extra):
        env = harness.base_env()
        for k in ("LANG", "LC_ALL", "LC_CTYPE", "NO_COLOR", "TERM", "TMUX", "COLUMNS",
                  "LINES"):
            env.pop(k, None)
        env.update({"HEX_ADMIN_LISTEN": "127.0.0.1:%d" % self.stack.admin_port,
                    "HEX_ADMIN_TOKEN": self.stack.admin_token, "USER": OPERATOR,
                    "LANG": "C.UTF-8"})
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def start_console(self, prefix="", wait_connected=True, **extra):
        """tmux at 80x24, an sh in it, and there `stty -g > before; hexctl; echo EXITED
        $?; stty -g > after`: the exit status and the terminal modes stay checkable."""
        self.term = Tmux(self.console_env(**extra))
        self.addCleanup(self.term.close)  # whatever happens to the test
        self.term.start()
        self.stty_file = os.path.join(self.term.tmpdir, "stty")
        self.term.type("stty -g > %s.before; %s%s; echo EXITED $?; stty -g > %s.after" %
                       (self.stty_file, prefix, hexctl_path(), self.stty_file))
        self.term.keys("Enter")
        if wait_connected:
            self.term.wait_for(r"connected 127\.0\.0\.1:%d" % self.stack.admin_port, 15)
        return self.term

    def exit_status(self, timeout=10.0):
        """Waits for the EXITED line; returns (status, whole pane text)."""
        text = self.term.wait_for(r"^EXITED (\d+)$", timeout)
        full = self.term.screen(history=True)
        return int(re.search(r"(?m)^EXITED (\d+)$", text).group(1)), full

    def assertTerminalRestored(self, full):
        """The sh prompt back after EXITED, the tty modes as before, no sanitizer lines."""
        self.assertFalse(sanitizer_lines(full), full)

        def prompt_back():
            # The sh prints its prompt after `stty -g > after`, a moment after EXITED.
            text = self.term.screen(history=True)
            after = text[text.index("EXITED"):].split("\n")
            return any(l.startswith(PS1.strip()) for l in after[1:])

        self.assertTrue(wait_until(prompt_back, 5),
                        "no shell prompt after hexctl exited:\n%s" %
                        self.term.screen(history=True))
        self.assertTrue(wait_until(lambda: os.path.exists(self.stty_file + ".after"), 5))
        with open(self.stty_file + ".before") as a, open(self.stty_file + ".after") as b:
            self.assertEqual(a.read(), b.read(), "terminal modes differ after hexctl")

    def quit_console(self):
        """Closes whatever is open, q; exit status 0 and a sane terminal (every test)."""
        if "EXITED" not in self.term.screen():
            self.term.keys("Escape")
            time.sleep(0.15)
            self.term.keys("Escape")
            time.sleep(0.15)
            self.term.keys("q")
        status, full = self.exit_status()
        self.assertFalse(sanitizer_lines(full), full)
        self.assertEqual(status, 0, full)

    def goto(self, key, title):
        self.term.keys(key)
        return self.term.wait_for(r"^%s" % re.escape(title), 10)

    def row_with(self, text, screen=None):
        for line in (screen or self.term.screen()).split("\n"):
            if text in line:
                return line
        return None

    # -- data

    def paid_user(self, amount=1000, message=None):
        """A user with a message and a wallet top-up that succeeded (through the ledger)."""
        s = self.session(unique_email("console"))
        r = self.post("/v1/messages", {"body": message or "hello from %s" % s.email},
                      token=s.access)
        self.assertEqual(r.status, 201, r)
        p = self.new_payment(s, amount=amount)
        self.deliver(stripe_event_for(p, "succeeded"))
        self.assertTrue(wait_until(lambda: self.balance(s) == amount, 10 * scale(), 0.1))
        return s, p

    def balance(self, session, currency="usd"):
        r = self.pay_req("GET", "/v2/wallet", token=session.access)
        self.assertEqual(r.status, 200, r)
        return {w["currency"]: w["balance"] for w in r.body["data"]}.get(currency, 0)

    def dead_letters(self, event_id, consumer="ledger"):
        cols = ["id", "status", "resolved_by", "reason", "attempts"]
        rows = self.stack.db.sql(
            "SELECT %s FROM dead_letters WHERE consumer = %s AND event_id = %s ORDER BY id" %
            (", ".join(cols), sql_literal(consumer), sql_literal(event_id)))
        return [dict(zip(cols, r)) for r in rows]

    def wait_dead_letter(self, event_id):
        rows = wait_until(lambda: self.dead_letters(event_id), 15 * scale(), 0.1)
        self.assertTrue(rows, "event %s never reached dead_letters" % event_id)
        return rows[0]

    def count(self, query):
        return int(self.stack.db.scalar(query))


# ---------------------------------------------------------------------------------------


class ScreensTest(ConsoleCase):
    """Rendering, navigation, search, details, filters, prompts and their errors."""

    def seed(self):
        if not hasattr(type(self), "_seeded"):
            type(self)._seeded = self.paid_user(amount=1234, message="first words\nsecond")
            type(self)._other = self.session(unique_email("other"))
        return type(self)._seeded

    def test_every_screen_fits_80x24_with_title_tabs_status_and_legend(self):
        s, p = self.seed()
        self.start_console()
        for key, title, legend in SCREENS:
            with self.subTest(screen=title):
                self.goto(key, title)
                time.sleep(0.3)
                lines = self.term.lines()
                self.assertEqual(len(lines), ROWS, lines)
                for l in lines:
                    self.assertLessEqual(cells(l), COLS, "line wider than 80: %r" % l)
                for tab in TABS:
                    self.assertIn(tab, lines[0])
                self.assertTrue(lines[1].startswith(title), lines[1])
                status = lines[ROWS - 2]
                self.assertRegex(status, r"\u25cf connected 127\.0\.0\.1:%d" %
                                 self.stack.admin_port)
                self.assertRegex(status, r"hexd \d+\.\d+\.\d+ \u2502 up \d+[smhd]")
                self.assertRegex(status, r"event lag \d+[smhd].*dlq \d+")
                for words in legend + ["? help", "q quit"]:
                    self.assertIn(words, lines[ROWS - 1])
        # Each screen shows the seeded data.
        screen = self.goto("1", "Users")
        self.assertIn(s.email, screen)
        screen = self.goto("2", "Messages")
        self.assertIn("first words", screen)
        self.assertNotIn("second", screen, "a list row shows the first line only")
        screen = self.goto("3", "Payments")
        self.assertRegex(self.row_with(p["id"][-7:], screen), r"succeeded\s+12\.34 usd")
        screen = self.goto("4", "Ledger accounts")
        self.assertRegex(screen, r"stripe_clearing\s+system\s+usd\s+-\d+\.\d\d usd")
        self.assertRegex(self.row_with(s.id[-7:], screen), r"wallet .* 12\.34 usd")
        screen = self.goto("5", "Dead letters")
        self.assertIn("no open dead letters", screen)
        self.goto("6", "Latency per route")
        # F-keys switch too, and Tab walks on.
        self.term.keys("F3")
        self.term.wait_for(r"^Payments \(stuck first")
        self.term.keys("Tab")
        self.term.wait_for(r"^Ledger accounts")

    def test_help_overlay_lists_the_screen_keys_and_any_key_closes_it(self):
        self.start_console()
        self.goto("5", "Dead letters")
        self.term.keys("?")
        screen = self.term.wait_for(r"Help: Dead letters")
        for words in (r"r\s+replay", r"d\s+discard", r"a\s+open/all", r"PgUp/PgDn\s+page",
                      r"q\s+quit", "any key closes this help"):
            self.assertRegex(screen, words)
        self.term.keys("q")  # closes the help, does not quit
        self.term.wait_gone(r"Help: Dead letters")
        self.assertNotIn("EXITED", self.term.screen())

    def test_users_search_detail_and_jumps_to_messages_and_payments(self):
        s, p = self.seed()
        self.start_console()
        self.term.wait_for(re.escape(s.email))
        self.term.keys("/")
        self.term.wait_for(r"^Search email \(empty: all users\):")
        self.term.type(s.email.split("@")[0].upper())  # case-insensitive
        self.term.keys("Enter")
        screen = self.term.wait_for(r"^Users whose email holds")
        self.assertIn(s.email, screen)
        self.assertNotIn(self._other.email, screen)
        self.assertIn("Esc all users", screen)
        self.term.keys("Enter")
        screen = self.term.wait_for(r"^User %s" % re.escape(s.email))
        for text in ("Wallet", "12.34 usd", "Latest payments", "succeeded", p["id"][-8:],
                     "Latest messages", "first words", s.id):
            self.assertIn(text, screen)
        self.term.keys("m")
        screen = self.term.wait_for(r"^Messages of %s" % re.escape(s.email))
        self.assertIn("first words", screen)
        self.term.keys("Enter")
        screen = self.term.wait_for(r"^Message %s" % UUID_PART)
        self.assertRegex(screen, r"(?m)^  first words$\n^  second$")
        self.term.keys("Escape")
        self.term.wait_for(r"^Messages of")
        self.term.keys("Escape")  # clears the filter
        self.term.wait_for(r"^Messages\s+\d+/\d+")
        # Back on Users the detail is still open; p works there too.
        self.term.keys("1")
        self.term.wait_for(r"^User %s" % re.escape(s.email))
        self.term.keys("p")
        screen = self.term.wait_for(r"^Payments \(stuck first, then newest\), of %s" %
                                    re.escape(s.email))
        self.assertIn(p["id"][-7:], screen)
        self.term.keys("1")
        self.term.wait_for(r"^User %s" % re.escape(s.email))
        self.term.keys("Escape")
        self.term.wait_for(r"^Users whose email holds")
        self.term.keys("Escape")
        screen = self.term.wait_for(r"^Users \(newest first\)")
        self.assertIn(self._other.email, screen)

    def test_search_that_matches_nothing_and_unknown_user_say_so(self):
        self.seed()
        self.start_console()
        self.term.keys("/")
        self.term.type("no-such-user-%s" % uuid.uuid4().hex[:6])
        self.term.keys("Enter")
        self.term.wait_for(r"^ no users$")
        self.goto("2", "Messages")
        self.term.keys("u")
        self.term.wait_for(r"^Messages of user \(email or id; empty: everyone\):")
        ghost = unique_email("ghost")
        self.term.type(ghost)
        self.term.keys("Enter")
        # hexd's own sentence on the message row; the screen stays unfiltered.
        screen = self.term.wait_for(r"(?m)^(?:no user|.*not found)")
        self.assertRegex(screen, r"(?m)^Messages\s+\d+/\d+")
        # Esc in a prompt cancels it: nothing changes.
        self.term.keys("/")
        self.term.wait_for(r"^Messages holding")
        self.term.type("zzz")
        self.term.keys("Escape")
        self.term.wait_gone(r"^Messages holding")
        self.assertRegex(self.term.screen(), r"(?m)^Messages\s+\d+/\d+")

    def test_payments_stuck_first_and_status_filter(self):
        s, paid = self.seed()
        waiting = self.new_payment(s, amount=777)  # the fake Stripe never settles it
        self.stack.db.sql("UPDATE payments SET created_at = now() - interval '10 minutes' "
                          "WHERE id = %s" % sql_literal(waiting["id"]))
        self.start_console()
        screen = self.goto("3", "Payments (stuck first, then newest)")
        rows = [l for l in screen.split("\n")[3:] if l.strip()]
        self.assertRegex(rows[0], r"^! .*%s requires_payment_method\s+7\.77 usd .*stuck "
                         r"1\dm\d\ds" % re.escape(waiting["id"][-7:]))
        self.assertEqual(screen.count(waiting["id"][-7:]), 1, "a stuck row listed twice")
        self.term.keys("s")
        screen = self.term.wait_for(r"^Stuck payments \(oldest first\)")
        self.assertIn(waiting["id"][-7:], screen)
        self.assertNotIn(paid["id"][-7:], screen)
        steps = [("Payments requiring a payment method", waiting, paid),
                 ("Payments processing", None, None), ("Payments succeeded", paid, waiting),
                 ("Payments failed", None, None), ("Payments refunded", None, None)]
        for title, shown, hidden in steps:
            self.term.keys("s")
            screen = self.term.wait_for(r"^%s" % re.escape(title))
            if shown:
                self.assertIn(shown["id"][-7:], screen)
            if hidden:
                self.assertNotIn(hidden["id"][-7:], screen)
            if shown is None:
                self.assertIn("no payments", screen)
        self.term.keys("s")
        self.term.wait_for(r"^Payments \(stuck first")
        self.term.keys("Enter")
        screen = self.term.wait_for(r"^Payment %s" % waiting["id"])
        self.assertIn("requires_payment_method", screen)
        self.assertIn("no events received", screen)
        self.term.keys("Escape", "Down")
        time.sleep(0.2)
        self.term.keys("Enter")
        screen = self.term.wait_for(r"^Payment %s" % paid["id"])
        self.assertRegex(screen, r"payment_intent\.succeeded")

    def test_ledger_entries_and_verify(self):
        s, p = self.seed()
        self.start_console()
        screen = self.goto("4", "Ledger accounts")
        wallet_row = self.row_with(s.id[-7:], screen)
        self.assertIsNotNone(wallet_row, screen)
        index = screen.split("\n").index(wallet_row) - 3
        self.term.keys(*(["Down"] * index))
        self.term.keys("Enter")
        screen = self.term.wait_for(r"^Entries of wallet")
        self.assertRegex(screen, r"12\.34 usd payment:%s" % p["id"][:20])
        self.term.keys("Enter")
        screen = self.term.wait_for(r"^Entry of wallet")
        self.assertIn("payment:%s" % p["id"], screen)
        self.term.keys("v")
        screen = self.term.wait_for(r"^Ledger verify")
        self.assertIn("OK: every balance equals the sum of its entries", screen)
        self.assertRegex(screen, r"accounts checked\s+\d+")
        self.assertRegex(screen, r"(?m)^verify OK at \d\d:\d\d:\d\d")
        self.term.keys("Escape")
        self.term.wait_for(r"^Entry of wallet")
        self.term.keys("Escape")
        self.term.wait_for(r"^Entries of wallet")
        self.term.keys("Escape")
        self.term.wait_for(r"^Ledger accounts \(last verify OK at")

    def test_hostile_text_stays_in_its_cell(self):
        # A message body is anyone's text: escape sequences, tabs, newlines, wide CJK.
        s = self.session(unique_email("hostile"))
        body = "\x1b[2J\x1b[31mred\x1b[0m\ttab \u6f22\u5b57\u6f22\u5b57 " + "wide " * 20
        r = self.post("/v1/messages", {"body": body}, token=s.access)
        self.assertEqual(r.status, 201, r)
        self.start_console()
        self.goto("2", "Messages")
        screen = self.term.wait_for(r"\[31mred")
        row = self.row_with("[31mred", screen)
        self.assertRegex(row, r" \[2J \[31mred \[0m tab \u6f22\u5b57\u6f22\u5b57 wide wide")
        self.assertEqual(cells(row), COLS, row)
        self.assertTrue(row.endswith("\u2026"), "a cut row ends with an ellipsis: %r" % row)
        self.assertNotIn("\x1b", self.term.screen(escapes=False))
        lines = self.term.lines()
        self.assertTrue(lines[0].startswith(" hexctl  1 Users"), "the screen was not cleared "
                        "or recolored by the text: %r" % lines[0])
        for l in lines:
            self.assertLessEqual(cells(l), COLS, l)

    def test_resize_redraws_and_a_tiny_window_says_so(self):
        self.seed()
        self.start_console()
        self.term.resize(100, 30)
        # Redrawn for 30 rows: the status line moved to row 28, the legend to 29.
        self.term.wait_for(r"\A(?:.*\n){28} \u25cf connected.*\n.*q quit", flags=0)
        self.term.resize(30, 8)
        self.term.wait_for(r"^terminal too small")
        self.term.resize(COLS, ROWS)
        self.term.wait_for(r"\A(?:.*\n){22} \u25cf connected.*\n.*q quit", flags=0)
        self.assertTrue(self.term.lines()[1].startswith("Users (newest first)"))

    def test_no_color_and_monochrome_terminal_use_attributes_only(self):
        self.seed()
        self.start_console()
        colored = self.term.screen(escapes=True)
        self.assertTrue(color_params(colored), "a color terminal got no color")
        self.quit_console()
        self.term.close()
        for name, prefix, extra in (("NO_COLOR", "", {"NO_COLOR": "1"}),
                                    ("vt100", "TERM=vt100 ", {})):
            with self.subTest(terminal=name):
                self.start_console(prefix=prefix, **extra)
                screen = self.term.screen(escapes=True)
                self.assertEqual(color_params(screen), [], screen)
                # The selected row and the bars stand out by reverse video.
                self.assertRegex(screen, r"\x1b\[(?:[0-9;]*;)?7(?:;[0-9;]*)?m")
                self.quit_console()
                self.term.close()
        self.term = None

    def test_ascii_locale_draws_no_utf8(self):
        self.seed()
        self.start_console(LANG="C")
        screen = self.term.screen()
        self.assertIn("* connected", screen)
        self.assertTrue(all(ord(c) < 128 for c in screen), screen)

    def test_q_ctrl_c_and_sigterm_leave_the_terminal_sane(self):
        self.seed()
        self.start_console()
        self.term.keys("5")  # any screen; q works on each
        self.term.keys("q")
        status, full = self.exit_status()
        self.assertEqual(status, 0, full)
        self.assertTerminalRestored(full)
        self.term.close()

        self.start_console()
        self.term.keys("/")  # even inside a prompt
        self.term.keys("C-c")
        status, full = self.exit_status()
        self.assertEqual(status, 128 + signal.SIGINT, full)
        self.assertTerminalRestored(full)
        self.term.close()

        self.start_console()
        shell = self.term.shell_pid()
        pid = int(subprocess.run(["pgrep", "-P", str(shell), "-x", "hexctl"],
                                 capture_output=True, text=True).stdout.split()[0])
        os.kill(pid, signal.SIGTERM)
        status, full = self.exit_status()
        self.assertEqual(status, 128 + signal.SIGTERM, full)
        self.assertTerminalRestored(full)
        self.term.close()
        self.term = None

    def test_without_a_terminal_it_refuses_and_names_the_alternatives(self):
        p = subprocess.run([hexctl_path()], env=self.console_env(), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("the console needs a terminal", p.stderr)
        self.assertIn("hexctl shell", p.stderr)
        self.assertFalse(sanitizer_lines(p.stderr), p.stderr)

    def test_wrong_token_keeps_retrying_and_says_why(self):
        self.start_console(wait_connected=False, HEX_ADMIN_TOKEN="wrong-" + "x" * 20)
        screen = self.term.wait_for(r"\u25cb reconnecting \(attempt \d+, next in \d+s\)")
        self.assertRegex(screen, r"(?i)(token|unauthori[sz]ed|refused)")
        self.assertIn("waiting for hexd", screen)


# ---------------------------------------------------------------------------------------


class PagingTest(ConsoleCase):
    """A stack of its own: 61 users, more than a page (50) of them."""

    def test_paging_loads_further_pages_on_demand(self):
        first = self.session(unique_email("first"))
        for i in range(60):
            self.create_user(unique_email("page%02d" % i))
        total = int(self.stack.db.scalar("SELECT count(*) FROM users"))
        self.assertEqual(total, 61)
        self.start_console()
        self.term.wait_for(r"^Users \(newest first\)\s+1/50\+$")
        self.term.keys("NPage")
        self.term.wait_for(r"^Users \(newest first\)\s+18/50\+$")  # 17 rows a page
        self.term.keys("NPage", "NPage")
        self.term.wait_for(r"^Users \(newest first\)\s+52/%d$" % total)  # page 2 loaded
        self.term.keys("End")
        screen = self.term.wait_for(r"^Users \(newest first\)\s+%d/%d$" % (total, total))
        # The oldest user is the last row: the first one made.
        self.assertIn(first.email, screen.split("\n")[ROWS - 4])
        self.term.keys("Up")
        self.term.wait_for(r"^Users \(newest first\)\s+%d/%d$" % (total - 1, total))
        self.term.keys("Home")
        self.term.wait_for(r"^Users \(newest first\)\s+1/%d$" % total)
        self.term.keys("PPage")
        self.term.wait_for(r"^Users \(newest first\)\s+1/%d$" % total)


# ---------------------------------------------------------------------------------------


class DeadLetterTest(ConsoleCase):
    """Dead letters replayed and discarded from the console, checked in PostgreSQL."""

    def transfer(self, frm, to, amount):
        r = self.pay_req("POST", "/v2/wallet/transfers", token=frm.access,
                         json_body={"to_user_id": to.id, "amount": amount, "currency": "usd"},
                         headers={"Idempotency-Key": "t-" + uuid.uuid4().hex})
        self.assertEqual(r.status, 201, r)

    def references(self, prefix):
        rows = self.stack.db.sql(
            "SELECT reference, count(*) FROM journal_transactions WHERE reference LIKE %s "
            "GROUP BY reference" % sql_literal(prefix + "%"))
        return {r[0]: int(r[1]) for r in rows}

    def test_replay_from_the_console_applies_the_refund_once(self):
        # A refund the wallet cannot cover (its money moved on) dies after 3 attempts.
        a, p = self.paid_user(amount=1000)
        b = self.session(unique_email("payee"))
        self.transfer(a, b, 800)
        refund = stripe_event_for(p, "refunded")
        self.deliver(refund)
        d = self.wait_dead_letter(refund["id"])
        self.assertEqual(d["status"], "open")

        self.start_console()
        self.goto("5", "Dead letters, open")
        self.term.wait_for(r"^\s+%s open\s+ledger\s+3 " % d["id"])
        # The detail: payload and every attempt.
        self.term.keys("Enter")
        screen = self.term.wait_for(r"^Dead letter %s" % d["id"])
        self.assertRegex(screen, r"event\s+%s" % refund["id"])
        self.assertRegex(screen, r"attempts\s+3")
        self.term.keys("Escape")
        self.term.wait_for(r"^Dead letters, open")

        # No at the confirmation: nothing happens.
        self.term.keys("r")
        self.term.wait_for(r"^Replay dead letter %s \(ledger, %s\)\? \[y/N\]" %
                           (d["id"], re.escape(refund["id"])))
        self.term.keys("n")
        self.term.wait_for(r"^not replayed")
        self.assertEqual(self.dead_letters(refund["id"])[0]["status"], "open")

        # The fix: the money comes back; then the operator replays.
        self.transfer(b, a, 800)
        self.term.keys("r")
        self.term.wait_for(r"^Replay dead letter %s" % d["id"])
        self.term.keys("y")
        screen = self.term.wait_for(r"^dead letter %s replayed \(status replayed\)" % d["id"])
        self.assertNotRegex(screen, r"(?m)^\s+%s " % d["id"])
        self.assertIn("no open dead letters", screen)

        # PostgreSQL: replayed once, by this operator, and the refund posted once.
        row = self.dead_letters(refund["id"])
        self.assertEqual(len(row), 1, row)
        self.assertEqual(row[0]["status"], "replayed")
        self.assertIn(OPERATOR, row[0]["resolved_by"])
        self.assertTrue(wait_until(lambda: self.references("refund:"), 10 * scale(), 0.1),
                        "the replayed refund was not posted")
        self.assertTrue(wait_until(
            lambda: self.count("SELECT count(*) FROM processed_events WHERE consumer = "
                               "'ledger' AND event_id = %s" % sql_literal(refund["id"])) == 1,
            10 * scale(), 0.1))
        self.assertEqual(self.references("refund:"), {"refund:%s" % p["id"]: 1})
        self.assertEqual(self.count("SELECT count(*) FROM outbox WHERE consumer = 'ledger' AND "
                                    "event_id = %s AND attempt = 4" %
                                    sql_literal(refund["id"])), 1)
        self.assertEqual(self.balance(a), 0)
        self.assertEqual(self.count("SELECT count(*) FROM admin_audit WHERE verb ILIKE "
                                    "'DLQ REPLAY%%' AND ok AND operator = %s" %
                                    sql_literal(OPERATOR)), 1)

        # Shown with `a` (all), it cannot be replayed twice: hexd's refusal is on screen.
        self.term.keys("a")
        self.term.wait_for(r"^Dead letters, all")
        self.term.wait_for(r"^\s+%s replayed\s+ledger\s+3 " % d["id"])
        self.term.keys("r")
        self.term.wait_for(r"^Replay dead letter %s" % d["id"])
        self.term.keys("y")
        self.term.wait_for(r"already replayed")
        time.sleep(0.5 * scale())
        self.assertEqual(self.references("refund:"), {"refund:%s" % p["id"]: 1})
        self.assertEqual(self.count("SELECT count(*) FROM outbox WHERE consumer = 'ledger' AND "
                                    "event_id = %s AND attempt >= 4" %
                                    sql_literal(refund["id"])), 1)
        # The status line's count follows.
        self.term.wait_for(r"dlq 0$")

    def test_discard_needs_a_reason_and_a_yes(self):
        ghost = {"id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "amount": 4200,
                 "currency": "usd", "purpose": "wallet_top_up",
                 "stripe_payment_intent_id": "pi_" + secrets.token_hex(12)}
        ev = stripe_event("payment_intent.succeeded", stripe_intent_object(ghost))
        self.deliver(ev)
        d = self.wait_dead_letter(ev["id"])
        self.start_console()
        self.goto("5", "Dead letters, open")
        self.term.wait_for(r"^\s+%s open\s+ledger\s+1 " % d["id"])
        self.term.wait_for(r"dlq [1-9]\d*$")
        self.term.keys("Enter")
        screen = self.term.wait_for(r"^Dead letter %s" % d["id"])
        self.assertIn(ghost["id"], screen)  # the last error names the missing payment
        self.term.keys("Escape")
        self.term.wait_for(r"^Dead letters, open")

        # An empty reason refuses; Esc cancels; no at the confirmation refuses.
        self.term.keys("d")
        self.term.wait_for(r"^Why discard dead letter %s\?" % d["id"])
        self.term.keys("Enter")
        self.term.wait_for(r"^not discarded: a discard needs a reason")
        self.term.keys("d")
        self.term.wait_for(r"^Why discard")
        self.term.type("half typed")
        self.term.keys("Escape")
        self.term.wait_for(r"^not discarded$")
        self.term.keys("d")
        self.term.wait_for(r"^Why discard")
        self.term.type("payment not ours")
        self.term.keys("Enter")
        self.term.wait_for(r"^Discard dead letter %s for \"payment not ours\"\? \[y/N\]" %
                           d["id"])
        self.term.keys("Enter")  # the default is no
        self.term.wait_for(r"^not discarded$")
        self.assertEqual(self.dead_letters(ev["id"])[0]["status"], "open")

        self.term.keys("d")
        self.term.wait_for(r"^Why discard")
        self.term.type("payment not ours")
        self.term.keys("Enter")
        self.term.wait_for(r"\[y/N\]")
        self.term.keys("y")
        screen = self.term.wait_for(r"^dead letter %s discarded" % d["id"])
        self.assertNotRegex(screen, r"(?m)^\s+%s " % d["id"])
        row = self.dead_letters(ev["id"])[0]
        self.assertEqual((row["status"], row["reason"]), ("discarded", "payment not ours"))
        self.assertIn(OPERATOR, row["resolved_by"])
        self.assertEqual(self.count("SELECT count(*) FROM journal_transactions WHERE "
                                    "reference LIKE %s" % sql_literal("%" + ghost["id"] + "%")),
                         0, "a discard posts nothing")
        self.term.wait_for(r"dlq 0$")


# ---------------------------------------------------------------------------------------


class LatencyTest(ConsoleCase):
    def load(self, session, stop):
        while not stop.is_set():
            try:
                http_request(self.port, "GET", "/v1/users/%s" % session.id,
                             headers={"Authorization": "Bearer " + session.access}, timeout=5)
            except OSError:
                pass

    def route_values(self, screen):
        row = self.row_with("GET /v1/users/:id", screen)
        if row is None:
            return None
        nums = re.findall(r"\s(\d+\.\d+|\d+)(?=\s)", row + " ")
        return tuple(nums[:5]) if len(nums) >= 5 else None

    def test_numbers_move_under_load_and_the_sparkline_grows(self):
        s = self.session(unique_email("lat"))
        self.start_console()
        self.goto("6", "Latency per route")
        stop = threading.Event()
        loaders = [threading.Thread(target=self.load, args=(s, stop)) for _ in range(2)]
        for t in loaders:
            t.start()
        try:
            self.term.wait_for(r"GET /v1/users/:id", 10)
            seen, titles = [], set()
            deadline = time.monotonic() + 15 * scale()
            while len(set(seen)) < 3 and time.monotonic() < deadline:
                screen = self.term.screen()
                v = self.route_values(screen)
                if v:
                    seen.append(v)
                titles.add(screen.split("\n")[1])
                time.sleep(0.7)
            self.assertGreaterEqual(len(set(seen)), 3, "the numbers did not move: %r" % seen)
            self.assertGreater(len(titles), 2, "the tick time did not move: %r" % titles)
            rps = float(seen[-1][0])
            self.assertGreater(rps, 1.0, seen)
            row = self.row_with("GET /v1/users/:id")
            self.assertTrue(SPARK_BLOCKS & set(row), "no sparkline: %r" % row)
            # One route's history at full width.
            self.term.keys("/")
            self.term.type("GET /v1/users")
            self.term.keys("Enter")
            time.sleep(0.3)
            self.term.keys("Enter")
            screen = self.term.wait_for(r"^Latency of GET /v1/users/:id at")
            for label in ("requests/s: now", "errors: now", "p50: now", "p95: now",
                          "p99: now"):
                self.assertIn(label, screen)
            # Two ticks a cell at full width; every measure but the (zero) errors drawn.
            self.assertGreaterEqual(sum(1 for c in screen if c in SPARK_BLOCKS), 4 * 2, screen)
        finally:
            stop.set()
            for t in loaders:
                t.join()


# ---------------------------------------------------------------------------------------


class RestartTest(ConsoleCase):
    def test_hexd_restart_shows_reconnecting_then_connected(self):
        s = self.session(unique_email("restart"))
        self.start_console()
        self.term.wait_for(re.escape(s.email))
        problems = self.stack.stop_hexd()
        self.assertEqual(problems, [])
        screen = self.term.wait_for(r"\u25cb reconnecting \(attempt \d+, next in \d+s\)", 15)
        self.assertRegex(screen, r"(?m)^lost the connection to hexd")
        self.assertIn(s.email, screen, "the screen keeps what it showed")
        # Keys still work while disconnected: screens switch, calls fail softly.
        self.term.keys("2")
        self.term.wait_for(r"^Messages")
        self.term.keys("1")
        self.term.wait_for(r"^Users")
        time.sleep(2)
        self.assertIn("reconnecting", self.term.screen())
        self.stack.start_hexd()
        screen = self.term.wait_for(r"\u25cf connected 127\.0\.0\.1:%d" % self.stack.admin_port,
                                    20)
        self.assertRegex(screen, r"(?m)^reconnected to hexd at 127\.0\.0\.1:%d" %
                         self.stack.admin_port)
        # The new connection works: data and the latency subscription.
        other = self.session(unique_email("after"))
        self.term.keys("C-l")
        self.term.wait_for(re.escape(other.email))
        self.goto("6", "Latency per route")
        self.term.wait_for(r"POST /v1/login", 10)


if __name__ == "__main__":
    harness.main()
