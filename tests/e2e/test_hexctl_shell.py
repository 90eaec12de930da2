#!/usr/bin/env python3
"""hexctl as an operator and a runbook use it, against a real hexd: one-shot verbs, scripts
through `hexctl shell < script` and `-f`, --json parsed, --keep-going, exit statuses
(0 ok, 1 a command failed, 2 usage, 3 cannot connect or token refused), and the
interactive shell in a pseudo-terminal: prompt, Tab completion of verbs and of ids from
recent replies, help, history in ~/.hexctl_history, reconnecting after a hexd restart.
A scripted fake admin port covers what a healthy hexd never does (a reply that never
comes, a line that is not JSON, events before a reply)."""

import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import fcntl
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase, sql_literal, unique_email, wait_until  # noqa: E402

UUID_RE = harness.UUID_RE
# what the Terminal class interprets: line moves, cursor moves, erase, other escapes (no
# effect), and runs of plain text
TERM_TOKEN_RE = re.compile(r"\n|\r|\x08|\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\x07|"
                           r"[^\n\r\x08\x1b\x07]+")
RUN_TIMEOUT = 30.0


def hexctl_path():
    return os.path.join(os.path.dirname(harness.HEXD), "hexctl")


def clean_env(**settings):
    """hexctl's environment: nothing of the caller's HEX_* settings, HOME in a temp dir
    unless given, then settings (None removes a variable)."""
    env = harness.base_env()
    env.pop("COLUMNS", None)
    env["USER"] = "e2e-operator"
    env.update(settings)
    return {k: v for k, v in env.items() if v is not None}


def sanitizer_report(text):
    return harness.sanitizer_lines(text)


class Run:
    """The outcome of one hexctl process."""

    def __init__(self, p, args):
        self.args = args
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr

    def json_lines(self):
        return [json.loads(l) for l in self.out.splitlines() if l.strip()]

    def err_json(self):
        lines = [l for l in self.err.splitlines() if l.strip()]
        assert len(lines) == 1, "want one JSON error line on stderr, got %r" % self.err
        return json.loads(lines[0])

    def __repr__(self):
        return "hexctl %s -> exit %s\n--- stdout:\n%s\n--- stderr:\n%s" % (
            " ".join(self.args), self.rc, self.out[-3000:], self.err[-3000:])


def run_hexctl(args, env, stdin=None, timeout=RUN_TIMEOUT):
    try:
        p = subprocess.run([hexctl_path()] + list(args), env=env, input=stdin,
                           stdin=None if stdin is not None else subprocess.DEVNULL,
                           capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as ex:
        raise AssertionError("hexctl %s did not finish within %.0f s: %r %r" %
                             (" ".join(args), timeout, ex.stdout, ex.stderr))
    r = Run(p, list(args))
    bad = sanitizer_report(r.err)
    if bad:
        raise AssertionError("sanitizer report from hexctl: %s\n%r" % (bad[:5], r))
    return r


class Terminal:
    """hexctl in a pseudo-terminal, read as a person would see it (escapes stripped)."""

    def __init__(self, args, env, cols=200, rows=50):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: sizes its terminal, becomes hexctl
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                os.execve(hexctl_path(), [hexctl_path()] + list(args), env)
            finally:
                os._exit(127)
        self.raw = b""
        self.seen = 0  # expect() searches from here
        self.status = None

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child has gone
            return None
        if not data:
            return None
        self.raw += data
        return True

    @property
    def text(self):
        """The output as the terminal shows it: readline redraws a line with carriage
        returns, backspaces and cursor moves, so they are applied, not just dropped."""
        lines, row, col = [[]], 0, 0
        for tok in TERM_TOKEN_RE.findall(self.raw.decode("utf-8", "replace")):
            line = lines[row]
            if tok == "\n":
                row += 1
                col = 0
                if row == len(lines):
                    lines.append([])
            elif tok == "\r":
                col = 0
            elif tok == "\b":
                col = max(col - 1, 0)
            elif tok.startswith("\x1b"):
                n = int(tok[2:-1]) if tok[2:-1].isdigit() else 1
                if tok.endswith("K"):
                    del line[col:]
                elif tok.endswith("C"):
                    col += n
                elif tok.endswith("D"):
                    col = max(col - n, 0)
            else:
                for ch in tok:
                    while len(line) < col:
                        line.append(" ")
                    if col < len(line):
                        line[col] = ch
                    else:
                        line.append(ch)
                    col += 1
        return "\n".join("".join(l) for l in lines)

    def send(self, data):
        os.write(self.fd, data.encode() if isinstance(data, str) else data)

    def expect(self, pattern, timeout=10.0):
        """Waits until pattern (a regex) shows up after the previous match; returns the
        match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.text, self.seen)
            if m:
                self.seen = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0 or self._read(min(left, 0.2)) is None:
                m = rx.search(self.text, self.seen)
                if m:
                    self.seen = m.end()
                    return m
                raise AssertionError("%r did not show up within %.0f s; screen:\n%s" %
                                     (pattern, timeout, self.text[-3000:]))

    def exited(self):
        if self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.status = os.waitstatus_to_exitcode(st)
        return self.status is not None

    def wait(self, timeout=10.0):
        """Exit status, reading output meanwhile; kills hexctl if it does not exit."""
        deadline = time.monotonic() + timeout
        while not self.exited() and time.monotonic() < deadline:
            self._read(0.1)
        while self._read(0.05):
            pass
        bad = sanitizer_report(self.text)
        if bad:
            raise AssertionError("sanitizer report from hexctl: %s" % bad[:5])
        if not self.exited():
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.status = -9
            raise AssertionError("hexctl did not exit within %.0f s; screen:\n%s" %
                                 (timeout, self.text[-3000:]))
        return self.status

    def close(self):
        if not self.exited():
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.status = -9
        os.close(self.fd)


class HexctlCase(HexCase):
    """A real hexd; hexctl pointed at its admin port with its token."""

    def setUp(self):
        super().setUp()
        self.home = tempfile.mkdtemp(prefix="hexctl-home-")
        self.addCleanup(shutil.rmtree, self.home, ignore_errors=True)

    @property
    def admin_listen(self):
        return self.stack.hexd.env["HEX_ADMIN_LISTEN"]

    def env(self, **settings):
        base = {"HEX_ADMIN_LISTEN": self.admin_listen,
                "HEX_ADMIN_TOKEN": self.stack.admin_token, "HOME": self.home}
        base.update(settings)
        return clean_env(**base)

    def hexctl(self, *args, stdin=None, env=None, timeout=RUN_TIMEOUT):
        return run_hexctl(args, env if env is not None else self.env(), stdin, timeout)

    def ok(self, *args, **kw):
        r = self.hexctl(*args, **kw)
        self.assertEqual(r.rc, 0, r)
        return r

    def data(self, *args, **kw):
        """--json: the one line of data of an ok reply."""
        r = self.ok("--json", *args, **kw)
        lines = r.json_lines()
        self.assertEqual(len(lines), 1, r)
        return lines[0]

    def script_file(self, text):
        fd, path = tempfile.mkstemp(prefix="hexctl-script-", suffix=".txt", dir=self.home)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def terminal(self, *args, env=None):
        t = Terminal(args or ("shell",), env if env is not None else self.env(TERM="xterm"))
        self.addCleanup(t.close)
        return t

    def user(self, prefix="hexctl"):
        return self.create_user(unique_email(prefix))[0]

    def new_users(self, n, prefix="hexctl"):
        return [self.user(prefix) for _ in range(n)]

    def dead_letter(self, consumer="ledger", error="handler failed: e2e"):
        event_id = "evt_hexctl_" + uuid.uuid4().hex[:16]
        rows = self.stack.db.sql(
            "INSERT INTO dead_letters (consumer, event_id, topic, payload, attempts, error) "
            "VALUES (%s, %s, 'payments', %s, 5, %s) RETURNING id" %
            (sql_literal(consumer), sql_literal(event_id),
             sql_literal('{"id":"%s","type":"payment_intent.succeeded"}' % event_id),
             sql_literal(error)))
        return str(rows[0][0]), event_id


# ---------------------------------------------------------------------------------------
# one-shot verbs and exit statuses


class OneShotTest(HexctlCase):
    def test_version_and_help_exit_0_without_hexd(self):
        env = clean_env(HEX_ADMIN_LISTEN="127.0.0.1:%d" % harness.free_port())
        r = run_hexctl(["--version"], env)
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.out, r"^hexctl \d+\.\d+\.\d+\n$")
        r = run_hexctl(["--help"], env)
        self.assertEqual(r.rc, 0, r)
        for word in ["--target", "--token-file", "--operator", "--json", "--keep-going",
                     "-f", "--timeout", "shell", "hexctl help", "exit status"]:
            self.assertIn(word, r.out)

    def test_ping_prints_pong(self):
        r = self.ok("ping")
        self.assertEqual(r.out, "pong\n")
        self.assertEqual(r.err, "")
        self.assertEqual(self.data("PING"), "pong")

    def test_help_lists_the_verbs_with_usage(self):
        r = self.ok("help")
        for usage in ["PING", "USERS LIST [LIMIT n] [CURSOR c]", "DLQ REPLAY <id>",
                      "LEDGER VERIFY"]:
            self.assertIn(usage, r.out)
        self.assertRegex(r.out, r"DLQ REPLAY <id>\s+.*\(mutating")
        verbs = self.data("help")
        self.assertIn("DLQ REPLAY", [v["verb"] for v in verbs])
        one = self.data("help", "dlq", "replay")
        self.assertEqual([v["verb"] for v in one], ["DLQ REPLAY"])

    def test_users_list_json_is_the_data_as_one_line(self):
        users = self.new_users(3)
        d = self.data("users", "list", "limit", "2")
        self.assertEqual(set(d), {"items", "next_cursor"})
        newest = [r[0] for r in self.stack.db.sql(
            "SELECT id FROM users ORDER BY created_at DESC, id DESC LIMIT 2")]
        self.assertEqual([u["id"] for u in d["items"]], newest)
        for u in d["items"]:
            self.assertLessEqual({"id", "email", "membership", "created_at"}, set(u))
            self.assertNotIn("password_hash", u)
        self.assertIsInstance(d["next_cursor"], str)
        page2 = self.data("users", "list", "limit", "2", "cursor", d["next_cursor"])
        self.assertFalse({u["id"] for u in page2["items"]} & set(newest))
        self.assertIn(users[0]["id"], {u["id"] for u in
                                       self.data("users", "list", "limit", "100")["items"]})

    def test_users_list_for_people_is_a_table_with_a_next_page_hint(self):
        users = self.new_users(3, "table")
        r = self.ok("users", "list", "limit", "2")
        lines = r.out.splitlines()
        self.assertRegex(lines[0], r"^ID\s+EMAIL\s+MEMBERSHIP\s+")
        d = self.data("users", "list", "limit", "2")
        for i, u in enumerate(d["items"]):
            self.assertTrue(lines[1 + i].startswith(u["id"] + "  "), r)
            self.assertIn(u["email"], lines[1 + i])
        # columns line up: every row's EMAIL cell starts where the header's does
        col = lines[0].index("EMAIL")
        for u, line in zip(d["items"], lines[1:3]):
            self.assertEqual(line.index(u["email"]), col, r)
        self.assertIn("CURSOR %s" % d["next_cursor"], lines[-1])
        self.assertEqual(len(lines), 4, r)  # header, two rows, the hint
        self.assertNotIn(users[0]["email"], r.out)  # the oldest of the three is on page 2

    def test_narrow_terminal_cuts_cells_with_an_ellipsis(self):
        self.new_users(2, "a-rather-long-local-part-for-cutting")
        r = self.ok("users", "list", "limit", "2", env=self.env(COLUMNS="60"))
        for line in r.out.splitlines():
            self.assertLessEqual(len(line), 60, r)
        self.assertIn("\u2026", r.out)
        wide = self.ok("users", "list", "limit", "2")  # a pipe without COLUMNS: whole cells
        self.assertNotIn("\u2026", wide.out)

    def test_objects_print_as_key_value_lines(self):
        u = self.user("show")
        r = self.ok("users", "show", u["email"])
        self.assertRegex(r.out, r"(?m)^user:\n  id:\s+%s$" % re.escape(u["id"]))
        self.assertRegex(r.out, r"(?m)^  email:\s+%s$" % re.escape(u["email"]))
        self.assertRegex(r.out, r"(?m)^(wallet|payments|messages): \(none\)$")
        d = self.data("users", "show", u["id"])
        self.assertEqual(d["user"]["id"], u["id"])

    def test_words_with_spaces_are_quoted_for_the_protocol(self):
        # Unquoted, the reason would be four words and the verb would refuse the extra
        # ones; quoted, it arrives whole, quote and backslash included.
        dl_id, _ = self.dead_letter()
        reason = 'settled by hand, see "INC-42" \\ runbook'
        d = self.data("dlq", "discard", dl_id, reason)
        self.assertEqual((d["status"], d["reason"]), ("discarded", reason), d)
        r = self.hexctl("--json", "users", "search", "two words")
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.err_json().get("field"), "text")  # one argument, with a space
        u = self.user("quoted")
        d = self.data("users", "search", u["email"].split("@")[0])
        self.assertEqual([x["id"] for x in d["items"]], [u["id"]])

    def test_ledger_verify_json(self):
        d = self.data("ledger", "verify")
        self.assertIs(d["ok"], True, d)
        self.assertIsInstance(d["accounts_checked"], int)
        self.assertEqual(d["mismatches"], [])
        self.assertEqual(d["unbalanced"], [])

    def test_dlq_list_json_and_show(self):
        dl_id, event_id = self.dead_letter()
        d = self.data("dlq", "list")
        self.assertIn(dl_id, [str(x["id"]) for x in d["items"]], d)
        item = [x for x in d["items"] if str(x["id"]) == dl_id][0]
        self.assertEqual(item["event_id"], event_id)
        self.assertEqual(item["status"], "open")
        self.assertEqual(item["attempts"], 5)
        shown = self.data("dlq", "show", dl_id)
        self.assertEqual(shown["event_id"], event_id)
        self.assertIn(event_id, shown["payload"])

    def test_unknown_verb_exits_1_with_the_error(self):
        r = self.hexctl("frobnicate", "now")
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.out, "")
        self.assertIn("unknown_verb", r.err)
        r = self.hexctl("--json", "frobnicate")
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.out, "")
        e = r.err_json()
        self.assertIs(e["ok"], False)
        self.assertEqual(e["code"], "unknown_verb")
        self.assertTrue(e["error"])

    def test_bad_argument_exits_1_naming_the_field(self):
        r = self.hexctl("--json", "users", "list", "limit", "0")
        self.assertEqual(r.rc, 1, r)
        e = r.err_json()
        self.assertEqual(e["code"], "invalid_argument")
        self.assertEqual(e.get("field"), "limit")
        r = self.hexctl("users", "show", str(uuid.uuid4()))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("not_found", r.err)

    def test_bad_token_exits_3(self):
        r = self.hexctl("ping", env=self.env(HEX_ADMIN_TOKEN="not-the-token-" + "x" * 20))
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(r.out, "")
        self.assertIn("refused the admin token", r.err)
        r = self.hexctl("--json", "ping", env=self.env(HEX_ADMIN_TOKEN="wrong-token"))
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(r.err_json()["code"], "unauthorized")
        r = self.hexctl("ping", env=self.env(HEX_ADMIN_TOKEN=None))
        self.assertEqual(r.rc, 3, r)
        self.assertIn("HEX_ADMIN_TOKEN", r.err)

    def test_token_file_instead_of_the_environment(self):
        good = self.script_file(self.stack.admin_token + "\n")
        bad = self.script_file("wrong-token\n")
        r = self.hexctl("--token-file", good, "ping", env=self.env(HEX_ADMIN_TOKEN=None))
        self.assertEqual((r.rc, r.out), (0, "pong\n"), r)
        # the file wins over the environment
        r = self.hexctl("--token-file", bad, "ping")
        self.assertEqual(r.rc, 3, r)
        r = self.hexctl("--token-file", os.path.join(self.home, "missing"), "ping")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("missing", r.err)

    def test_hexd_unreachable_exits_3(self):
        dead = "127.0.0.1:%d" % harness.free_port()
        r = self.hexctl("ping", env=self.env(HEX_ADMIN_LISTEN=dead))
        self.assertEqual(r.rc, 3, r)
        self.assertIn(dead, r.err)
        r = self.hexctl("--json", "--target", dead, "ping")
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(r.err_json()["code"], "unavailable")
        r = self.hexctl("--target", os.path.join(self.home, "no.sock"), "ping")
        self.assertEqual(r.rc, 3, r)
        # a script cannot start either
        r = self.hexctl("shell", stdin="ping\n", env=self.env(HEX_ADMIN_LISTEN=dead))
        self.assertEqual((r.rc, r.out), (3, ""), r)

    def test_target_option_overrides_the_environment(self):
        dead = "127.0.0.1:%d" % harness.free_port()
        r = self.hexctl("--target", self.admin_listen, "ping",
                        env=self.env(HEX_ADMIN_LISTEN=dead))
        self.assertEqual((r.rc, r.out), (0, "pong\n"), r)

    def test_usage_errors_exit_2(self):
        script = self.script_file("ping\n")
        cases = [
            (["--no-such-option"], "try hexctl --help"),
            (["--timeout", "0", "ping"], "--timeout"),
            (["--timeout", "soon", "ping"], "--timeout"),
            (["shell", "extra"], "no arguments"),
            (["-f", script, "ping"], "no verb"),
            (["-f", os.path.join(self.home, "missing.txt")], "missing.txt"),
            (["--target"], "requires an argument"),
        ]
        for args, says in cases:
            with self.subTest(args=args):
                r = self.hexctl(*args)
                self.assertEqual(r.rc, 2, r)
                self.assertEqual(r.out, "")
                self.assertIn(says, r.err)

    def test_operator_name_reaches_the_audit_log(self):
        u = self.user("audit")
        self.ok("--operator", "alice.ops@example", "cache", "flush", u["id"])
        rows = self.data("audit", "list", "limit", "1")["items"]
        self.assertEqual(rows[0]["operator"], "alice.ops@example", rows)
        self.assertIn("CACHE FLUSH", rows[0]["verb"].upper())
        # a login name the protocol would refuse is made acceptable, not rejected
        self.ok("cache", "flush", env=self.env(USER="bad name!"))
        rows = self.data("audit", "list", "limit", "1")["items"]
        self.assertEqual(rows[0]["operator"], "bad_name_", rows)

    def test_subscribe_follows_events_until_interrupted(self):
        p = subprocess.Popen([hexctl_path(), "--json", "subscribe", "latency"],
                             env=self.env(), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            first = json.loads(p.stdout.readline())
            self.assertEqual(first.get("subscribed"), "latency", first)
            self.get("/healthz")
            tick = json.loads(p.stdout.readline())  # ticks come once a second
            self.assertEqual(tick["event"], "latency", tick)
            self.assertIn("routes", tick["data"])
            p.send_signal(signal.SIGINT)
            self.assertEqual(p.wait(10), 0)
            err = p.stderr.read().decode()
            self.assertFalse(sanitizer_report(err), err)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()


# ---------------------------------------------------------------------------------------
# scripts


SCRIPT = """# a runbook step: check hexd, the books and the dead letters
PING

users list limit 2
   LEDGER VERIFY
# comments and blank lines are skipped
dlq list
help dlq
"""
SCRIPT_COMMANDS = 5


class ScriptTest(HexctlCase):
    def check_script_json(self, r):
        self.assertEqual(r.rc, 0, r)
        out = r.json_lines()
        self.assertEqual(len(out), SCRIPT_COMMANDS, r)
        self.assertEqual(out[0], "pong")
        self.assertEqual(set(out[1]), {"items", "next_cursor"})
        self.assertLessEqual(len(out[1]["items"]), 2)
        self.assertIs(out[2]["ok"], True)
        self.assertIn("items", out[3])
        self.assertTrue(out[4] and all(v["verb"].startswith("DLQ") for v in out[4]), out[4])

    def test_script_on_stdin_runs_every_verb(self):
        self.new_users(3, "script")
        r = self.hexctl("shell", stdin=SCRIPT)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.err, "")
        self.assertTrue(r.out.startswith("pong\n"), r)
        self.assertRegex(r.out, r"(?m)^ID\s+EMAIL")
        self.assertRegex(r.out, r"(?m)^ok:\s+true$")
        self.assertRegex(r.out, r"DLQ REPLAY <id>")
        self.assertNotIn("hexctl>", r.out)  # no prompt when not interactive
        self.check_script_json(self.hexctl("--json", "shell", stdin=SCRIPT))

    def test_script_file_with_f(self):
        self.new_users(1, "script")
        path = self.script_file(SCRIPT)
        self.check_script_json(self.hexctl("--json", "-f", path))
        self.check_script_json(self.hexctl("--json", "-f", "-", stdin=SCRIPT))

    def test_first_error_stops_the_script(self):
        u = self.user("stop")
        script = "ping\nfrobnicate\nusers grant-admin %s\nping\n" % u["email"]
        r = self.hexctl("--json", "shell", stdin=script)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.json_lines(), ["pong"], r)
        self.assertEqual(r.err_json()["code"], "unknown_verb")
        self.assertNotEqual(self.user_row(u["id"])["role"], "admin")
        r = self.hexctl("-f", self.script_file(script))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("line 2", r.err)
        self.assertEqual(r.out, "pong\n")

    def test_keep_going_runs_the_rest_and_exits_1(self):
        u = self.user("keep")
        script = "ping\nfrobnicate\nusers grant-admin %s\nusers list limit 0\nping\n" % \
            u["email"]
        r = self.hexctl("--json", "--keep-going", "shell", stdin=script)
        self.assertEqual(r.rc, 1, r)
        out = r.json_lines()
        self.assertEqual(out[0], "pong")
        self.assertEqual(out[1]["email"], u["email"])
        self.assertEqual(out[2], "pong")
        self.assertEqual(len(out), 3, r)
        errors = [json.loads(l) for l in r.err.splitlines()]
        self.assertEqual([e["code"] for e in errors], ["unknown_verb", "invalid_argument"])
        self.assertEqual(self.user_row(u["id"])["role"], "admin")
        r = self.hexctl("-k", "-f", self.script_file(script))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("line 2", r.err)
        self.assertIn("line 4", r.err)

    def test_exit_ends_a_script_early(self):
        r = self.hexctl("--json", "shell", stdin="ping\nexit\nfrobnicate\n")
        self.assertEqual((r.rc, r.json_lines()), (0, ["pong"]), r)

    def test_quoted_reason_in_a_script(self):
        dl_id, _ = self.dead_letter()
        r = self.hexctl("--json", "--operator", "runbook", "shell",
                        stdin='DLQ DISCARD %s "duplicate of a settled event"\n' % dl_id)
        self.assertEqual(r.rc, 0, r)
        d = r.json_lines()[0]
        self.assertEqual(d["status"], "discarded")
        self.assertEqual(d["reason"], "duplicate of a settled event")
        self.assertEqual(d["resolved_by"], "runbook")


# ---------------------------------------------------------------------------------------
# the interactive shell


class InteractiveTest(HexctlCase):
    def prompt(self):
        """The prompt, waiting for input (nothing typed after it yet)."""
        return re.escape("hexctl %s> " % self.admin_listen) + "$"

    def start(self, **env):
        t = self.terminal("shell", env=self.env(TERM="xterm", **env) if env else None)
        t.expect(self.prompt())
        return t

    def test_prompt_help_and_ctrl_d(self):
        t = self.start()
        t.send("help\r")
        t.expect(r"DLQ REPLAY <id>")
        t.expect(r"In the shell:")
        t.expect(self.prompt())
        t.send("ping\r")
        t.expect(r"\npong\n")
        t.expect(self.prompt())
        t.send("\x04")
        self.assertEqual(t.wait(), 0)
        self.assertFalse(sanitizer_report(t.text), t.text)

    def test_errors_do_not_end_the_session(self):
        t = self.start()
        t.send("frobnicate\r")
        t.expect(r"error: .*unknown_verb")
        t.expect(self.prompt())
        t.send("PING\r")
        t.expect(r"\npong\n")
        t.expect(self.prompt())
        t.send("quit\r")
        self.assertEqual(t.wait(), 0)

    def test_tab_completes_verbs(self):
        t = self.start()
        t.send("DL\t")
        t.expect(r"DLQ $")
        t.send("LI\t")
        t.expect(r"LIST $")
        t.send("\r")
        t.expect(r"(no items|ID\s+CONSUMER)")
        t.expect(self.prompt())
        t.send("led\tve\t")  # lower case works too
        t.expect(r"LEDGER VERIFY $")
        t.send("\r")
        t.expect(r"accounts_checked:")
        t.expect(self.prompt())
        t.send("users list l\t")
        t.expect(r"users list LIMIT $")
        t.send("1\r")
        t.expect(r"(no items|ID\s+EMAIL)")
        t.expect(self.prompt())
        t.send("exit\r")
        self.assertEqual(t.wait(), 0)

    def test_tab_completes_ids_from_recent_replies(self):
        u = self.user("complete")
        t = self.start()
        t.send("users search %s\r" % u["email"])
        t.expect(re.escape(u["email"]))
        t.expect(self.prompt())
        t.send("users show %s\t" % u["id"][:8])
        t.expect(re.escape("users show %s " % u["id"]))
        t.send("\r")
        t.expect(r"user:\n\s+id:\s+%s" % re.escape(u["id"]))
        t.send("exit\r")
        self.assertEqual(t.wait(), 0)

    def test_history_is_written_and_read_back(self):
        hist = os.path.join(self.home, ".hexctl_history")
        t = self.start()
        t.send("ping\r")
        t.expect(r"\npong\n")
        t.send("users list limit 1\r")
        # Its answer first: the prompt still on screen from before would match at once, and
        # a Ctrl-D typed while the command runs is the terminal's, not readline's.
        t.expect(r"\(no items\)|id:")
        t.expect(self.prompt())
        t.send("\x04")
        self.assertEqual(t.wait(), 0)
        with open(hist) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[-2:], ["ping", "users list limit 1"])
        self.assertEqual(os.stat(hist).st_mode & 0o777, 0o600)  # commands name people
        # a new session recalls it with the Up arrow
        t = self.start()
        t.send("\x1b[A\x1b[A\r")
        t.expect(r"\npong\n")
        t.send("exit\r")
        self.assertEqual(t.wait(), 0)

    def test_events_show_above_the_line_being_typed(self):
        t = self.start()
        t.send("subscribe latency\r")
        t.expect(r"subscribed:\s+latency")
        t.expect(self.prompt())
        t.send("pin")
        t.expect(r"\[latency\] \{.*\}\n" + re.escape("hexctl %s> pin" % self.admin_listen))
        t.send("g\r")
        t.expect(r"\npong\n")
        t.send("unsubscribe\r")
        t.expect(r"unsubscribed:")
        t.send("exit\r")
        self.assertEqual(t.wait(), 0)

    def test_history_stays_bounded(self):
        hist = os.path.join(self.home, ".hexctl_history")
        with open(hist, "w") as f:
            f.write("".join("users list limit %d\n" % (i % 100 + 1) for i in range(1500)))
        t = self.start()
        t.send("ping\r")
        t.expect(r"\npong\n")
        t.expect(self.prompt())
        t.send("exit\r")
        self.assertEqual(t.wait(), 0)
        with open(hist) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 1000)  # the newest thousand
        self.assertEqual(lines[-3:], ["users list limit 100", "ping", "exit"])
        self.assertEqual(lines[0], "users list limit 3")  # line 503 of the 1500

    def test_reconnects_after_hexd_restarts(self):
        t = self.start()
        t.send("ping\r")
        t.expect(r"\npong\n")
        t.expect(self.prompt())
        self.stack.restart_hexd()
        t.expect(r"closed the connection")
        t.send("ping\r")
        t.expect(r"reconnected")
        t.expect(r"\npong\n")
        t.send("exit\r")
        self.assertEqual(t.wait(), 0)

    def test_ctrl_c_clears_the_line_and_keeps_the_shell(self):
        t = self.start()
        t.send("users list this is not run")
        t.expect(r"not run")
        t.send("\x03")
        t.expect(r"\^C\n" + self.prompt())
        t.send("ping\r")
        t.expect(r"\npong\n")
        t.send("exit\r")
        self.assertEqual(t.wait(), 0)


# ---------------------------------------------------------------------------------------
# hexd going away under a running script


class HexdGoneTest(HexctlCase):
    def script_process(self, *args):
        p = subprocess.Popen([hexctl_path()] + list(args) + ["shell"], env=self.env(),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        return p

    def say(self, p, line):
        p.stdin.write(line + "\n")
        p.stdin.flush()
        return p.stdout.readline()

    def finish(self, p, rest=""):
        """Sends the rest of the script, ends it, and waits for hexctl."""
        out, err = p.communicate(rest, timeout=RUN_TIMEOUT)
        self.assertFalse(sanitizer_report(err), err)
        return p.returncode, out, err

    def test_a_restart_between_commands_reconnects(self):
        p = self.script_process("--json")
        self.assertEqual(json.loads(self.say(p, "ping")), "pong")
        self.stack.restart_hexd()
        self.assertEqual(json.loads(self.say(p, "ping")), "pong")
        rc, out, err = self.finish(p)
        self.assertEqual(rc, 0, err)
        self.assertIn("reconnected", err)

    def test_hexd_down_stops_the_script_with_3(self):
        env = self.env()  # hexd's address, while it still runs
        p = self.script_process("--keep-going")
        self.assertEqual(self.say(p, "ping"), "pong\n")
        problems = self.stack.stop_hexd()
        self.hexd_expected_alive = False
        self.assertEqual(problems, [])
        rc, out, err = self.finish(p, "ping\nping\n")
        self.assertEqual(rc, 3, err)
        self.assertEqual(out, "")  # even --keep-going stops: nothing else can run
        self.assertIn("cannot connect", err)
        # and a new hexctl cannot start
        r = self.hexctl("ping", env=env)
        self.assertEqual((r.rc, r.out), (3, ""), r)


# ---------------------------------------------------------------------------------------
# the unix socket


class UnixSocketTest(HexctlCase):
    @classmethod
    def setUpClass(cls):
        cls.sock_dir = tempfile.mkdtemp(prefix="hexctl-sock-")
        cls.sock = os.path.join(cls.sock_dir, "admin.sock")
        cls.HEXD_ENV = {"HEX_ADMIN_SOCKET": cls.sock}
        cls.addClassCleanup(shutil.rmtree, cls.sock_dir, ignore_errors=True)
        super().setUpClass()

    def test_socket_wins_over_tcp_and_target_takes_a_path(self):
        dead = "127.0.0.1:%d" % harness.free_port()
        r = self.hexctl("ping", env=self.env(HEX_ADMIN_SOCKET=self.sock,
                                             HEX_ADMIN_LISTEN=dead))
        self.assertEqual((r.rc, r.out), (0, "pong\n"), r)
        r = self.hexctl("--target", self.sock, "--json", "ping",
                        env=self.env(HEX_ADMIN_LISTEN=dead))
        self.assertEqual((r.rc, r.json_lines()), (0, ["pong"]), r)

    def test_prompt_shows_the_socket(self):
        t = self.terminal("--target", self.sock, "shell")
        t.expect(re.escape("hexctl %s> " % self.sock))
        t.send("ping\r")
        t.expect(r"\npong\n")
        t.send("exit\r")
        self.assertEqual(t.wait(), 0)


# ---------------------------------------------------------------------------------------
# what a healthy hexd never does: a scripted admin port


class FakeAdmin:
    """A one-connection-at-a-time admin port that answers AUTH, then follows a script:
    {command word: list of raw lines to send, or None to send nothing}."""

    def __init__(self, answers, token="fake-token"):
        self.answers = answers
        self.token = token
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                f = conn.makefile("rwb")
                try:
                    self.session(f)
                except OSError:
                    pass

    def session(self, f):
        auth = f.readline().decode().split()
        if auth[:2] != ["AUTH", self.token]:
            f.write(b'{"ok":false,"error":"bad token","code":"unauthorized"}\n')
            f.flush()
            return
        f.write(b'{"ok":true,"data":"welcome"}\n')
        f.flush()
        for line in f:
            text = line.decode().rstrip("\n")
            self.received.append(text)
            lines = self.answers.get(text.split()[0].upper())
            if lines is None:
                time.sleep(5)  # never answers in time
                return
            for out in lines:
                f.write(out.encode() + b"\n")
            f.flush()

    def close(self):
        self.stop = True
        self.sock.close()


class ClientEdgeTest(unittest.TestCase):
    def fake(self, answers):
        f = FakeAdmin(answers)
        self.addCleanup(f.close)
        return f, clean_env(HEX_ADMIN_LISTEN="127.0.0.1:%d" % f.port,
                            HEX_ADMIN_TOKEN=f.token, HOME=tempfile.gettempdir())

    def test_events_before_a_reply_are_printed_before_it(self):
        f, env = self.fake({"PING": ['{"event":"log","data":{"msg":"first"}}',
                                     '{"ok":true,"data":"pong"}']})
        r = run_hexctl(["ping"], env)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, '[log] {"msg":"first"}\npong\n')
        r = run_hexctl(["--json", "ping"], env)
        self.assertEqual(r.json_lines(), [{"event": "log", "data": {"msg": "first"}}, "pong"])

    def test_no_reply_within_the_timeout_exits_3(self):
        f, env = self.fake({"SLOW": None})
        started = time.monotonic()
        r = run_hexctl(["--timeout", "1", "slow"], env)
        self.assertEqual(r.rc, 3, r)
        self.assertLess(time.monotonic() - started, 4.5)
        self.assertIn("no reply", r.err)

    def test_a_line_that_is_not_json_exits_3(self):
        f, env = self.fake({"BAD": ["this is not json"]})
        r = run_hexctl(["--json", "bad"], env)
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(r.err_json()["code"], "internal")

    def test_control_characters_never_reach_the_terminal(self):
        f, env = self.fake({"SHOW": ['{"ok":true,"data":{"items":[{"id":"x","body":'
                                     '"red\\u001b[31malert\\u009b2J"}],"next_cursor":null}}']})
        r = run_hexctl(["show"], env)
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("\x1b", r.out)
        self.assertNotIn("\x9b", r.out)
        self.assertIn("red?[31malert?2J", r.out)

    def test_the_operator_and_quoting_on_the_wire(self):
        f, env = self.fake({"ECHO": ['{"ok":true,"data":null}']})
        r = run_hexctl(["echo", "two words", 'a"b', "", "plain"], env)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(f.received, ['echo "two words" "a\\"b" "" plain'])


if __name__ == "__main__":
    harness.main()
