#!/usr/bin/env python3
"""The hexd command line: --help/--version, config errors, -c FILE, migrate."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HexCase  # noqa: E402

# (what is changed, overrides of the valid environment, key the one line must name)
CONFIG_ERRORS = [
    ("missing jwt secret", {"HEX_JWT_SECRET": None}, "jwt_secret"),
    ("10-byte jwt secret", {"HEX_JWT_SECRET": "0123456789"}, "jwt_secret"),
    ("31-byte jwt secret", {"HEX_JWT_SECRET": "a" * 31}, "jwt_secret"),
    ("missing database url", {"HEX_DATABASE_URL": None}, "database_url"),
    ("garbage http listen", {"HEX_HTTP_LISTEN": "garbage"}, "http_listen"),
    ("http listen port out of range", {"HEX_HTTP_LISTEN": "127.0.0.1:99999"}, "http_listen"),
    ("garbage payments listen", {"HEX_PAYMENTS_LISTEN": "nope:"}, "payments_listen"),
    ("workers not a number", {"HEX_WORKERS": "abc"}, "workers"),
    ("workers with trailing junk", {"HEX_WORKERS": "8x"}, "workers"),
    ("password cost too high", {"HEX_PASSWORD_COST": "12"}, "password_cost"),
    ("password cost zero", {"HEX_PASSWORD_COST": "0"}, "password_cost"),
    ("unknown log format", {"HEX_LOG_FORMAT": "xml"}, "log_format"),
    ("unknown gateway", {"HEX_GATEWAY": "paypal"}, "gateway"),
    ("access ttl not a number", {"HEX_ACCESS_TTL": "soon"}, "access_ttl"),
    ("body limit not a number", {"HEX_BODY_LIMIT": "1MB"}, "body_limit"),
    ("bad redis url", {"HEX_REDIS_URL": "http://127.0.0.1:6379"}, "redis_url"),
]


def nonempty_lines(text):
    return [l for l in text.splitlines() if l.strip()]


class CliTest(HexCase):
    START_HEXD = False

    def test_version_exits_0(self):
        p = self.stack.run_hexd(["--version"])
        self.assertEqual(p.returncode, 0, p)
        self.assertRegex(p.stdout + p.stderr, r"\d+\.\d+\.\d+")

    def test_help_exits_0_and_names_the_commands(self):
        p = self.stack.run_hexd(["--help"])
        self.assertEqual(p.returncode, 0, p)
        out = p.stdout + p.stderr
        for word in ["serve", "migrate", "grant-admin"]:
            self.assertIn(word, out)

    def test_unknown_command_fails(self):
        p = self.stack.run_hexd(["frobnicate"])
        self.assertNotEqual(p.returncode, 0, p)
        self.assertTrue((p.stdout + p.stderr).strip())

    def test_config_errors_exit_2_with_one_line_naming_the_key(self):
        for what, overrides, key in CONFIG_ERRORS:
            with self.subTest(what):
                p = self.stack.run_hexd(["serve"], overrides, timeout=15)
                lines = nonempty_lines(p.stderr)
                self.assertEqual(p.returncode, 2, "%s: exit %d, stderr %r" %
                                 (what, p.returncode, p.stderr))
                self.assertEqual(len(lines), 1, "%s: want one line, got %r" % (what, lines))
                self.assertIn(key, lines[0].lower(), "%s: line does not name %s" % (what, key))
                self.assertNotIn(self.stack.jwt_secret, p.stderr + p.stdout)

    def test_print_config_shows_values_but_not_secrets(self):
        port = harness.free_port()
        p = self.stack.run_hexd(["--print-config"],
                                {"HEX_HTTP_LISTEN": "127.0.0.1:%d" % port,
                                 "HEX_STRIPE_SECRET_KEY": "sk_test_e2e_do_not_print",
                                 "HEX_MEMBERSHIP_API_KEY": "membership-key-do-not-print"})
        self.assertEqual(p.returncode, 0, p)
        out = p.stdout + p.stderr
        self.assertIn("127.0.0.1:%d" % port, out)
        self.assertIn("http_listen", out.lower())
        for secret in [self.stack.jwt_secret, self.stack.admin_token,
                       "sk_test_e2e_do_not_print", "membership-key-do-not-print"]:
            self.assertNotIn(secret, out)

    def config_file(self, port, **extra):
        env = self.stack.env()
        keys = {
            "database_url": env["HEX_DATABASE_URL"],
            "redis_url": env["HEX_REDIS_URL"],
            "http_listen": "127.0.0.1:%d" % port,
            "payments_listen": "127.0.0.1:%d" % harness.free_port(),
            "admin_listen": "127.0.0.1:%d" % harness.free_port(),
            "jwt_secret": self.stack.jwt_secret,
            "admin_token": self.stack.admin_token,
            "gateway": "simulated",
            "password_cost": "1",
            "workers": "2",
            "log_format": "json",
        }
        keys.update(extra)
        path = os.path.join(self.stack.tmp, "hexd-%d.conf" % port)
        with open(path, "w") as f:
            f.write("# hexd configuration written by the e2e tests\n\n")
            for k, v in keys.items():
                f.write("%s = %s\n" % (k, v))
        return path

    def test_config_file_serves_and_env_overrides_it(self):
        file_port = harness.free_port()
        path = self.config_file(file_port)
        bare = harness.base_env()  # no HEX_* at all: everything from the file
        h = harness.Hexd(bare, os.path.join(self.stack.tmp, "file.log"),
                         ["-c", path, "serve"])
        h.http_port = file_port
        self.stack.logs.append(h.log_path)
        h.spawn()
        try:
            self.assertEqual(h.wait_healthy(), "ok", h.log())
        finally:
            st = h.stop()
        self.assertEqual(st, 0, h.log())
        env_port = harness.free_port()
        env = dict(bare, HEX_HTTP_LISTEN="127.0.0.1:%d" % env_port)
        h = harness.Hexd(env, os.path.join(self.stack.tmp, "file-env.log"),
                         ["-c", path, "serve"])
        self.stack.logs.append(h.log_path)
        h.spawn()
        try:
            self.assertEqual(h.wait_healthy(), "ok", h.log())
            with self.assertRaises(OSError):
                harness.http_request(file_port, "GET", "/healthz", timeout=2)
        finally:
            st = h.stop()
        self.assertEqual(st, 0, h.log())
        self.assertFalse(harness.sanitizer_lines(h.log()))

    def test_config_file_bad_value_exit_2(self):
        path = self.config_file(harness.free_port(), jwt_secret="short")
        p = self.stack.run_hexd(["-c", path, "serve"], env=harness.base_env(), timeout=15)
        self.assertEqual(p.returncode, 2, p)
        lines = nonempty_lines(p.stderr)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("jwt_secret", lines[0].lower())

    def test_missing_config_file_exit_2(self):
        missing = os.path.join(self.stack.tmp, "no-such.conf")
        p = self.stack.run_hexd(["-c", missing, "serve"], timeout=15)
        self.assertEqual(p.returncode, 2, p)
        self.assertIn("no-such.conf", p.stderr)

    def test_migrate_is_idempotent(self):
        p = self.stack.run_hexd(["migrate"])
        self.assertEqual(p.returncode, 0, p)
        tables = {r[0] for r in self.stack.db.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        self.assertTrue({"users", "refresh_tokens", "schema_migrations"} <= tables, tables)
        applied = self.stack.db.sql("SELECT version FROM schema_migrations ORDER BY version")
        self.assertTrue(applied)
        self.assertTrue(re.match(r"^0*1$", applied[0][0]), applied)
        p = self.stack.run_hexd(["migrate"])
        self.assertEqual(p.returncode, 0, p)
        self.assertEqual(self.stack.db.sql("SELECT version FROM schema_migrations "
                                           "ORDER BY version"), applied)
        self.assertFalse(harness.sanitizer_lines(p.stderr))

    def test_migrate_with_bad_database_url_fails(self):
        url = "host=127.0.0.1 port=%d user=hex dbname=x connect_timeout=2" % harness.free_port()
        p = self.stack.run_hexd(["migrate"], {"HEX_DATABASE_URL": url})
        self.assertNotEqual(p.returncode, 0, p)
        self.assertTrue(p.stderr.strip())


if __name__ == "__main__":
    harness.main()
