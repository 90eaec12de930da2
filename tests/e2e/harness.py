"""End-to-end harness: runs the built hexd as a user would, against real servers.

Every test class that derives from HexCase gets its own "stack": a fresh PostgreSQL
database (created with psql from HEX_TEST_PG_URL, dropped at the end), its own
redis-server on a free loopback port (so a test may stop and restart it), and one hexd
`serve` process on free loopback ports whose stderr goes to a log file. Stopping hexd
sends SIGTERM and insists on exit status 0 within 15 s and a log free of sanitizer
reports. When a test fails, the hexd log lines written during that test are printed.

Python 3 standard library only. Run a module as `python3 test_x.py --hexd PATH`.
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import shutil
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid

HEXD = None  # path of the hexd binary under test, set by main()
SANITIZED = False  # hexd built with ASan/UBSan: slower, and its reports must be absent

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                     "ERROR: UndefinedBehaviorSanitizer")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
JSON_CT = "application/json; charset=utf-8"
USER_KEYS = {"id", "email", "membership", "created_at", "updated_at"}
LOGIN_KEYS = {"id", "email", "membership", "access_token", "refresh_token", "token_type",
              "expires_in"}
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0

_DEFAULT = object()


# ---------------------------------------------------------------------------------------
# small utilities


def free_port():
    """A loopback TCP port that was free a moment ago, below Linux's ephemeral range
    (32768-60999): a port from that range can be taken by any outgoing connection on a
    busy machine between this check and the server's bind."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        if port in (25432, 26379):  # the test command's PostgreSQL and Redis
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port in 20000-32000")


def unique_email(prefix="user"):
    return "%s-%s@example.com" % (prefix, uuid.uuid4().hex[:12])


def wait_until(pred, timeout, interval=0.05):
    """Polls pred() until it returns a true value (returned) or timeout (returns None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def sanitizer_lines(text):
    return [l for l in text.splitlines() if any(m in l for m in SANITIZER_MARKERS)]


def accept_backlog(port):
    """Connections waiting in the kernel accept queue of a loopback listener (via ss), or
    None if nothing listens on port."""
    out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4 and f[0] == "LISTEN":
            return int(f[1])
    return None


def sql_literal(s):
    return "'" + str(s).replace("'", "''") + "'"


def _sanitized(binary):
    try:
        with open(binary, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__ubsan_handle" in data


# ---------------------------------------------------------------------------------------
# PostgreSQL: one fresh database per stack, driven through psql


def conninfo_with_dbname(conninfo, dbname):
    """The same server conninfo (key=value or URI) pointing at dbname."""
    if conninfo.startswith(("postgres://", "postgresql://")):
        u = urllib.parse.urlsplit(conninfo)
        return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + dbname, u.query, u.fragment))
    rest = re.sub(r"\bdbname\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", "", conninfo).strip()
    return ("%s dbname=%s" % (rest, dbname)).strip()


class Database:
    def __init__(self, admin_conninfo, label):
        self.admin = admin_conninfo
        safe = re.sub(r"[^a-z0-9_]", "_", label.lower())[:30]
        self.name = "hex_e2e_%s_%d_%s" % (safe, os.getpid(), secrets.token_hex(3))
        self.conninfo = conninfo_with_dbname(admin_conninfo, self.name)
        self.created = False

    @staticmethod
    def _psql(conninfo, query, check=True):
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-F", "\x1f", "-R", "\x1e", "-d", conninfo, "-c", query],
                           capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise RuntimeError("psql failed (%d) on %r: %s" % (p.returncode, query,
                                                                p.stderr.strip()))
        return p

    def create(self):
        self._psql(self.admin, "CREATE DATABASE %s" % self.name)
        self.created = True

    def drop(self):
        if self.created:
            self._psql(self.admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name,
                       check=False)
            self.created = False

    def sql(self, query):
        """Rows of the query's result, each a list of strings (NULL comes back as '')."""
        out = self._psql(self.conninfo, query).stdout.rstrip("\n")
        return [r.split("\x1f") for r in out.split("\x1e") if r.strip("\n")]

    def scalar(self, query):
        rows = self.sql(query)
        return rows[0][0] if rows else None

    def admin_sql(self, query):
        return self._psql(self.admin, query).stdout


# ---------------------------------------------------------------------------------------
# Redis: a private redis-server per stack and a tiny RESP client


class RespError(Exception):
    pass


class RespClient:
    """Synchronous RESP2 client: enough for GET/SET/EXISTS/TTL/DEL/KEYS/DEBUG."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RespError("bad RESP line %r" % line)


class RedisServer:
    def __init__(self, workdir, port=None):
        self.workdir = workdir
        self.port = port or free_port()
        self.proc = None

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self):
        log = os.path.join(self.workdir, "redis-%d.log" % self.port)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.workdir, "--logfile", log,
             "--enable-debug-command", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with %d, see %s" %
                                   (self.proc.returncode, log))
            try:
                with RespClient(self.port, timeout=1) as c:
                    return c.cmd("PING") == "PONG"
            except (OSError, RespError):
                return False

        if not wait_until(ready, 10):
            raise RuntimeError("redis-server on port %d did not answer PING" % self.port)

    def stop(self, sig=signal.SIGTERM, save=False):
        """Stops redis-server: its data is lost (no persistence), unless save: then it
        exits by SHUTDOWN SAVE, writing dump.rdb into workdir, which every later start()
        on this workdir loads back (keys, streams, consumer groups and their pending
        entries), as a server with persistence would."""
        if save and self.proc and self.proc.poll() is None:
            try:
                with self.client() as c:
                    c.cmd("SHUTDOWN", "SAVE")  # answers only if it could not save
            except ConnectionError:
                pass  # the server closed the connection as it exited
            self.proc.wait(10)
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client(self, timeout=5.0):
        return RespClient(self.port, timeout)


# ---------------------------------------------------------------------------------------
# HTTP


class Response:
    """status, headers (case-insensitive), body (parsed JSON if it parses, else bytes)."""

    def __init__(self, status, headers, raw, elapsed=0.0):
        self.status = status
        self.headers = headers
        self.raw = raw
        self.elapsed = elapsed
        try:
            self.body = json.loads(raw.decode("utf-8")) if raw else raw
            self.is_json = bool(raw)
        except (ValueError, UnicodeDecodeError):
            self.body = raw
            self.is_json = False

    def __iter__(self):
        return iter((self.status, self.headers, self.body))

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return "<HTTP %d %s %r>" % (self.status, dict(self.headers.items()), self.raw[:300])


def http_request(port, method, path, body=None, headers=None, timeout=30.0):
    """One request on a fresh connection. body: bytes/str or None."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        raw = r.read()
        return Response(r.status, r.headers, raw, time.monotonic() - t0)
    finally:
        conn.close()


def read_all(s):
    """Every byte until the peer closes (or a reset, or s's timeout), then closes s."""
    chunks = []
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
    except (socket.timeout, ConnectionResetError):
        pass
    finally:
        s.close()
    return b"".join(chunks)


def raw_exchange(port, data, timeout=10.0):
    """Sends raw bytes, returns every byte the server sends until it closes or timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    return read_all(s)


def parse_raw_response(data):
    """(status, {lower-case header: value}, body bytes) of the first response in data."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        return None, {}, data
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if "content-length" in hdrs:
        body = body[:int(hdrs["content-length"])]
    elif "chunked" in hdrs.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    return status, hdrs, body


def _dechunk(data):
    out = []
    while data:
        line, _, data = data.partition(b"\r\n")
        n = int(line.split(b";")[0].strip() or b"0", 16)
        if n == 0:
            break
        out.append(data[:n])
        data = data[n + 2:]
    return b"".join(out)


# ---------------------------------------------------------------------------------------
# JWT (HS256/HS512/none) for inspecting real tokens and forging bad ones


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_decode(token):
    """(header, claims) of a compact JWT, without checking the signature."""
    h, p, _ = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p))


def jwt_forge(claims, secret, header=None, alg=None):
    """A compact JWT over exactly these header/claims, signed with secret by header alg."""
    header = dict(header or {"alg": "HS256", "typ": "JWT"})
    alg = alg or header.get("alg")
    signing = "%s.%s" % (b64url(json.dumps(header, separators=(",", ":"))),
                         b64url(json.dumps(claims, separators=(",", ":"))))
    digests = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
    if alg in digests:
        key = secret.encode() if isinstance(secret, str) else secret
        sig = b64url(hmac.new(key, signing.encode(), digests[alg]).digest())
    else:
        sig = ""
    return signing + "." + sig


def bearer(token):
    return {"Authorization": "Bearer " + token}


# ---------------------------------------------------------------------------------------
# hexd processes


def base_env():
    """The caller's environment without any HEX_* setting, so nothing leaks into hexd."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HEX_")}


class Hexd:
    """One `hexd serve` process with its own log file."""

    def __init__(self, env, log_path, args=("serve",)):
        self.env = env
        self.log_path = log_path
        self.args = list(args)
        self.proc = None
        self.http_port = int(env["HEX_HTTP_LISTEN"].rsplit(":", 1)[1]) \
            if ":" in env.get("HEX_HTTP_LISTEN", "") else None

    def spawn(self):
        logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([HEXD] + self.args, env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf)
        finally:
            logf.close()
        return self

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self, timeout=STARTUP_TIMEOUT):
        def healthy():
            if self.proc.poll() is not None:
                return "exited"
            try:
                r = http_request(self.http_port, "GET", "/healthz", timeout=2)
                return "ok" if r.status == 200 else None
            except OSError:
                return None

        return wait_until(healthy, timeout)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signals hexd and returns its exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Stack:
    """A fresh database, a private redis-server and a hexd wired to both."""

    def __init__(self, label, overrides=None, use_redis=True):
        pg = os.environ.get("HEX_TEST_PG_URL")
        if not pg:
            raise RuntimeError("HEX_TEST_PG_URL is not set: run the tests through "
                               "scripts/test.sh (or export it) - e2e tests do not skip")
        self.label = label
        self.tmp = tempfile.mkdtemp(prefix="hex-e2e-%s-" % label)
        self.db = Database(pg, label)
        self.redis = RedisServer(self.tmp) if use_redis else None
        self.overrides = dict(overrides or {})
        self.jwt_secret = secrets.token_hex(32)
        self.admin_token = secrets.token_hex(16)
        self.hexd = None
        self.logs = []  # every hexd log path of this stack, in start order
        # passwords and tokens the tests used: none may ever show up in a hexd log
        self.secrets = {self.jwt_secret, self.admin_token}
        self._n = 0

    # -- life cycle

    def start(self, start_hexd=True):
        self.db.create()
        if self.redis:
            self.redis.start()
        if start_hexd:
            self.start_hexd()
        return self

    def env(self, overrides=None, fresh_ports=False):
        """The environment hexd runs with: the stack's settings plus overrides."""
        if fresh_ports or not hasattr(self, "http_port"):
            self.http_port = free_port()
            self.payments_port = free_port()
            self.admin_port = free_port()
        env = base_env()
        env.update({
            "HEX_DATABASE_URL": self.db.conninfo,
            "HEX_REDIS_URL": self.redis.url if self.redis else "",
            "HEX_HTTP_LISTEN": "127.0.0.1:%d" % self.http_port,
            "HEX_PAYMENTS_LISTEN": "127.0.0.1:%d" % self.payments_port,
            "HEX_ADMIN_LISTEN": "127.0.0.1:%d" % self.admin_port,
            "HEX_JWT_SECRET": self.jwt_secret,
            "HEX_ADMIN_TOKEN": self.admin_token,
            "HEX_GATEWAY": "simulated",
            "HEX_PASSWORD_COST": "1",
            "HEX_LOGIN_LIMIT_EMAIL": "1000",
            "HEX_LOGIN_LIMIT_ADDR": "1000",
            "HEX_REFRESH_LIMIT_ADDR": "1000",
            "HEX_LOG_FORMAT": "json",
            # Fewer than the default 8 so that parallel modules stay far below the test
            # server's max_connections.
            "HEX_WORKERS": "4",
        })
        env.update(self.overrides)
        env.update(overrides or {})
        return {k: v for k, v in env.items() if v is not None}

    def spawn_hexd(self, overrides=None, args=("serve",), fresh_ports=False):
        """Starts hexd without waiting for it; the caller decides what to expect."""
        self._n += 1
        log = os.path.join(self.tmp, "hexd-%d.log" % self._n)
        self.logs.append(log)
        return Hexd(self.env(overrides, fresh_ports), log, args).spawn()

    def start_hexd(self, overrides=None):
        """Starts hexd serve and waits for /healthz; retries on a port taken meanwhile."""
        for attempt in range(3):
            h = self.spawn_hexd(overrides, fresh_ports=attempt > 0)
            state = h.wait_healthy()
            if state == "ok":
                self.hexd = h
                return h
            h.kill()
            log = h.log()
            if state == "exited" and "in use" in log.lower():
                continue
            raise RuntimeError("hexd did not become healthy within %.0f s (%s, status %s); "
                               "log:\n%s" % (STARTUP_TIMEOUT, state or "timeout",
                                             h.proc.returncode, log[-6000:]))
        raise RuntimeError("hexd could not bind free ports 3 times")

    def stop_hexd(self, sig=signal.SIGTERM):
        """SIGTERMs hexd; returns a list of problems (bad exit, sanitizer lines)."""
        h, self.hexd = self.hexd, None
        if h is None:
            return []
        problems = []
        st = h.stop(sig)
        if st is None:
            problems.append("hexd did not exit within %.0f s of SIGTERM" % STOP_TIMEOUT)
        elif st != 0:
            problems.append("hexd exited with status %d after SIGTERM (want 0)" % st)
        log = h.log()
        bad = sanitizer_lines(log)
        if bad:
            problems.append("sanitizer report in hexd log: %s" % bad[:5])
        leaked = sorted(x[:8] + "..." for x in self.secrets if x in log)
        if leaked:
            problems.append("secrets in the hexd log (password, token or key starting "
                            "with): %s" % leaked)
        return problems

    def note_secret(self, value):
        """Remembers a password or token; stop_hexd fails if the log contains it."""
        if isinstance(value, str) and len(value) >= 10 and not value.isdigit() and \
                len(set(value)) > 3:
            self.secrets.add(value)

    def restart_hexd(self, overrides=None):
        problems = self.stop_hexd()
        if problems:
            raise AssertionError("; ".join(problems) + "\nlog:\n" + self.log_tail())
        return self.start_hexd(overrides)

    def close(self):
        """Best-effort teardown of everything the stack started."""
        if self.hexd:
            self.hexd.kill()
            self.hexd = None
        if self.redis:
            self.redis.stop()
        try:
            self.db.drop()
        finally:
            if not os.environ.get("HEX_E2E_KEEP"):
                shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers

    @property
    def port(self):
        return self.hexd.http_port

    def log_tail(self, n=8000):
        return self.hexd.log()[-n:] if self.hexd else ""

    def log_marks(self):
        marks = {}
        for p in self.logs:
            try:
                marks[p] = os.path.getsize(p)
            except OSError:
                marks[p] = 0
        return marks

    def log_since(self, marks, max_lines=200):
        out = []
        for p in self.logs:
            try:
                with open(p, "rb") as f:
                    f.seek(marks.get(p, 0))
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            lines = text.splitlines()
            if lines:
                out.append("--- %s (%d new lines%s) ---" %
                           (os.path.basename(p), len(lines),
                            ", last %d shown" % max_lines if len(lines) > max_lines else ""))
                out.extend(lines[-max_lines:])
        return "\n".join(out)

    def run_hexd(self, args, overrides=None, timeout=30.0, env=None):
        """Runs a one-shot hexd command; CompletedProcess (text). Kills it on timeout."""
        e = env if env is not None else self.env(overrides)
        try:
            return subprocess.run([HEXD] + list(args), env=e, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, errors="replace",
                                  timeout=timeout)
        except subprocess.TimeoutExpired as ex:
            raise AssertionError("hexd %s did not finish within %.0f s; output: %s %s" %
                                 (" ".join(args), timeout, ex.stdout, ex.stderr))

    def secret_needles(self):
        """What must never be written: every noted secret, and the signature part of
        every noted JWT on its own (a log that cut a token at a dot would keep it)."""
        needles = set(self.secrets)
        for s in self.secrets:
            parts = s.split(".")
            if len(parts) == 3 and len(parts[2]) >= 20:
                needles.add(parts[2])
        return needles

    def secret_leaks(self, extra_texts=None):
        """Noted secrets found in any hexd log of this stack (every start, not only the
        current one) or in extra_texts ({name: text}): a list of "where: prefix..."
        strings, empty when clean. Only prefixes are reported, never whole secrets."""
        texts = {}
        for p in self.logs:
            try:
                with open(p, "r", errors="replace") as f:
                    texts[os.path.basename(p)] = f.read()
            except OSError:
                pass
        texts.update(extra_texts or {})
        needles = self.secret_needles()
        return sorted("%s: %s..." % (where, n[:8]) for where, text in texts.items()
                      for n in needles if n in text)


# ---------------------------------------------------------------------------------------
# the admin port (docs/ADMIN.md): one JSON line per reply, event lines while subscribed


class AdminClosed(Exception):
    """The admin port closed the connection."""


class AdminClient:
    """A line client of hexd's admin port over TCP (port) or a unix socket (path).
    Reply lines (with "ok") and event lines (with "event") are told apart: call() returns
    the next reply and keeps the events that came before it in self.events, oldest first.
    rcvbuf shrinks the socket's receive buffer (set before connecting): a slow reader."""

    def __init__(self, port=None, path=None, timeout=10.0, rcvbuf=None):
        if path is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(path if path is not None else ("127.0.0.1", port))
        self.timeout = timeout
        self.buf = b""
        self.events = []

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode("utf-8"))

    def send_line(self, line):
        self.send_raw((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n")

    def read_line(self, timeout=None):
        """The next line (bytes, without its newline); AdminClosed at the end."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no line from the admin port within the timeout")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise AdminClosed("closed by hexd; unterminated rest %r" % self.buf[:200])
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def read_json(self, timeout=None):
        line = self.read_line(timeout)
        try:
            return json.loads(line.decode("utf-8"))
        except ValueError:
            raise AssertionError("admin port sent a line that is not JSON: %r" % line[:300])

    def reply(self, timeout=None):
        """The next reply line, keeping the event lines before it in self.events."""
        while True:
            obj = self.read_json(timeout)
            if isinstance(obj, dict) and "event" in obj and "ok" not in obj:
                self.events.append(obj)
                continue
            return obj

    def call(self, line, timeout=None):
        self.send_line(line)
        return self.reply(timeout)

    def next_event(self, kind=None, timeout=None):
        """The next event line (of kind, if given: others are skipped), kept ones first."""
        while True:
            if self.events:
                ev = self.events.pop(0)
            else:
                ev = self.read_json(timeout)
                if "ok" in ev:
                    raise AssertionError("a reply where an event was expected: %r" % ev)
            if kind is None or ev.get("event") == kind:
                return ev

    def auth(self, token, operator=None):
        line = "AUTH %s" % token + (" %s" % operator if operator is not None else "")
        return self.call(line)

    def wait_closed(self, timeout=None):
        """Reads (and returns) everything until hexd closes; socket.timeout if it does
        not within timeout."""
        rest = []
        while True:
            try:
                rest.append(self.read_line(timeout))
            except AdminClosed:
                rest.append(self.buf)
                self.buf = b""
                return b"\n".join(x for x in rest if x)


# ---------------------------------------------------------------------------------------
# the test case base class


class Session:
    """A registered, logged-in user."""

    def __init__(self, user, password, tokens):
        self.user = user
        self.id = user["id"]
        self.email = user["email"]
        self.password = password
        self.access = tokens["access_token"]
        self.refresh = tokens["refresh_token"]
        self.tokens = tokens

    @property
    def auth(self):
        return bearer(self.access)


class HexCase(unittest.TestCase):
    """Base class: one Stack per test class. Subclasses tune it with class attributes."""

    HEXD_ENV = {}  # per-class hexd overrides, e.g. {"HEX_ACCESS_TTL": "2"}
    USE_REDIS = True
    START_HEXD = True
    maxDiff = None
    stack = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stack = Stack(cls.__name__, cls.HEXD_ENV, cls.USE_REDIS)
        cls.addClassCleanup(cls.stack.close)
        cls.stack.start(start_hexd=cls.START_HEXD)

    @classmethod
    def tearDownClass(cls):
        problems = cls.stack.stop_hexd() if cls.stack else []
        super().tearDownClass()
        if problems:
            raise AssertionError("; ".join(problems) + "\n" +
                                 cls.stack.log_since({}, max_lines=80))

    def setUp(self):
        self._log_marks = self.stack.log_marks()
        self.hexd_expected_alive = self.START_HEXD

    def tearDown(self):
        h = self.stack.hexd
        if self.hexd_expected_alive and h is not None and not h.alive():
            st = h.proc.returncode
            self.stack.hexd = None
            self.fail("hexd died during the test (exit status %s)" % st)

    # -- HTTP

    @property
    def port(self):
        return self.stack.port

    def req(self, method, path, body=None, json_body=_DEFAULT, token=None, headers=None,
            content_type=_DEFAULT, timeout=30.0, port=None):
        """One HTTP request to hexd's v1 listener. A JSON body gets application/json
        unless content_type says otherwise (None: no Content-Type header at all)."""
        hdrs = {}
        if json_body is not _DEFAULT:
            body = json.dumps(json_body).encode()
        if content_type is _DEFAULT:
            if body is not None:
                hdrs["Content-Type"] = "application/json"
        elif content_type is not None:
            hdrs["Content-Type"] = content_type
        if token is not None:
            hdrs.update(bearer(token))
        hdrs.update(headers or {})
        return http_request(port or self.port, method, path, body, hdrs, timeout)

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, obj=_DEFAULT, **kw):
        return self.req("POST", path, json_body=obj, **kw)

    def put(self, path, obj=_DEFAULT, **kw):
        return self.req("PUT", path, json_body=obj, **kw)

    def delete(self, path, **kw):
        return self.req("DELETE", path, **kw)

    # -- domain helpers

    def create_user(self, email=None, password=None):
        """Registers a user (asserting 201); returns (user JSON, password)."""
        email = email or unique_email()
        password = password or "pw-" + secrets.token_hex(6)
        self.stack.note_secret(password)
        r = self.post("/v1/users", {"email": email, "password": password})
        self.assertEqual(r.status, 201, "create_user(%s): %r" % (email, r))
        return r.body, password

    def login(self, email, password, expect=200):
        r = self.post("/v1/login", {"email": email, "password": password})
        self.assertEqual(r.status, expect, "login(%s): %r" % (email, r))
        if r.status == 200:
            self.stack.note_secret(r.body.get("access_token"))
            self.stack.note_secret(r.body.get("refresh_token"))
        return r.body

    def session(self, email=None, password=None):
        user, pw = self.create_user(email, password)
        return Session(user, pw, self.login(user["email"], pw))

    def make_admin(self, email):
        p = self.stack.run_hexd(["user", "grant-admin", email])
        self.assertEqual(p.returncode, 0, "hexd user grant-admin %s: %s%s" %
                         (email, p.stdout, p.stderr))
        self.assertFalse(sanitizer_lines(p.stderr), p.stderr)

    def admin_session(self):
        s = self.session(unique_email("admin"))
        self.make_admin(s.email)
        return Session(s.user, s.password, self.login(s.email, s.password))

    def redis(self):
        return self.stack.redis.client()

    def cache_key(self, user_id):
        return "hex:user:v1:%s" % user_id

    def user_count(self):
        return int(self.stack.db.scalar("SELECT count(*) FROM users"))

    def user_row(self, user_id):
        """The users row as a dict of strings, or None."""
        cols = ["id", "email", "password_hash", "membership", "role", "token_version",
                "created_at", "updated_at"]
        rows = self.stack.db.sql("SELECT %s FROM users WHERE id = %s" %
                                 (", ".join(cols), sql_literal(user_id)))
        return dict(zip(cols, rows[0])) if rows else None

    def admin_connect(self, operator=None, auth=True, **kw):
        """An AdminClient on this stack's admin port, authenticated (asserted) unless
        auth is false; closed at the end of the test."""
        c = AdminClient(port=self.stack.admin_port, **kw)
        self.addCleanup(c.close)
        if auth:
            r = c.auth(self.stack.admin_token, operator)
            self.assertEqual(r.get("ok"), True, r)
        return c

    # -- assertions

    def assertJsonReply(self, r):
        self.assertEqual(r.header("Content-Type"), JSON_CT, "content type of %r" % r)
        self.assertTrue(r.is_json, "body is not JSON: %r" % r)

    def assertRequestId(self, r):
        rid = r.header("X-Request-Id")
        self.assertIsNotNone(rid, "no X-Request-Id on %r" % r)
        self.assertRegex(rid, REQUEST_ID_RE)
        return rid

    def assertError(self, r, status, code, field=_DEFAULT):
        """The contract's error reply: status, JSON {error, code, request_id[, field]}."""
        self.assertEqual(r.status, status, "want %d %s, got %r" % (status, code, r))
        self.assertJsonReply(r)
        b = r.body
        self.assertIsInstance(b, dict, r)
        self.assertIsInstance(b.get("error"), str, r)
        self.assertTrue(b["error"].strip(), r)
        self.assertEqual(b.get("code"), code, r)
        self.assertEqual(b.get("request_id"), self.assertRequestId(r), r)
        if field is not _DEFAULT:
            self.assertEqual(b.get("field"), field, "field of %r" % r)
        if status == 401:
            self.assertTrue((r.header("WWW-Authenticate") or "").startswith("Bearer"),
                            "401 without WWW-Authenticate: Bearer: %r" % r)
        if status == 405:
            self.assertTrue(r.header("Allow"), "405 without Allow: %r" % r)
        if status == 429:
            ra = r.header("Retry-After")
            self.assertIsNotNone(ra, "429 without Retry-After: %r" % r)
            self.assertRegex(ra, r"^\d+$")
        return b

    def assertUserJson(self, u, email=None, user_id=None):
        self.assertIsInstance(u, dict, u)
        self.assertEqual(set(u.keys()), USER_KEYS, u)
        self.assertRegex(u["id"], UUID_RE)
        self.assertIn(u["membership"], ("free", "member"))
        self.assertRegex(u["created_at"], TIME_RE)
        self.assertRegex(u["updated_at"], TIME_RE)
        if email is not None:
            self.assertEqual(u["email"], email)
        if user_id is not None:
            self.assertEqual(u["id"], user_id)


# ---------------------------------------------------------------------------------------
# payments: a fake Stripe served from this process, webhook signatures made here with
# Python's hmac (independent of hexd's code), Stripe events built from fixtures3.json

FAKE_STRIPE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes",
                                "fake_stripe.py")
PAYMENT_KEYS = {"id", "user_id", "amount", "currency", "purpose", "status",
                "stripe_payment_intent_id", "created_at", "updated_at"}
PAYMENT_STATUSES = ("requires_payment_method", "processing", "failed", "succeeded",
                    "refunded")
_fake_stripe_mod = None


def fake_stripe_module():
    """tests/fakes/fake_stripe.py, imported once."""
    global _fake_stripe_mod
    if _fake_stripe_mod is None:
        import importlib.util
        spec = importlib.util.spec_from_file_location("fake_stripe", FAKE_STRIPE_PATH)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _fake_stripe_mod = mod
    return _fake_stripe_mod


class FakeStripeServer:
    """The fake Stripe (tests/fakes/fake_stripe.py) on a free loopback port, served by
    threads of the test process; control and stats are called directly."""

    def __init__(self):
        mod = fake_stripe_module()
        self.secret_key = mod.DEFAULT_SECRET_KEY
        self.fake = mod.FakeStripe(secret_key=self.secret_key)
        self.port = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        """Listens on self.port if it has one (a restart), else on a free port."""
        for _ in range(20):
            port = self.port or free_port()
            try:
                self.fake.start(port)
            except OSError:
                if self.port:
                    raise
                continue
            self.port = port
            return self
        raise RuntimeError("fake Stripe: no free port")

    def stop(self):
        """Stops listening (connections are refused); what it created is kept."""
        self.fake.stop()

    def control(self, **doc):
        """As POST /__control with this JSON object."""
        self.fake.control(doc)

    def clear_injections(self):
        """Drops failures, hang-ups and delays not used up yet; keeps objects and stats."""
        with self.fake.lock:
            self.fake.fail_next = []
            self.fake.hangup_next = 0
            self.fake.delay_next = []
            self.fake.delay_ms = 0

    def stats(self):
        """As GET /__stats."""
        return json.loads(self.fake.stats_json())

    def intents(self, payment_id=None):
        """Copies of the PaymentIntents created, optionally only those whose
        metadata.payment_id is payment_id."""
        with self.fake.lock:
            out = json.loads(json.dumps(list(self.fake.intents.values())))
        if payment_id is not None:
            out = [pi for pi in out if pi.get("metadata", {}).get("payment_id") == payment_id]
        return out


def stripe_fixture(name):
    """A fresh copy of one fixtures3.json resource (payment_intent, checkout.session,
    charge, event)."""
    return json.loads(json.dumps(fake_stripe_module().load_fixtures()[name]))


def stripe_signature(secret, body, t, scheme="v1"):
    """`<scheme>=<hex HMAC-SHA256(secret, "<t>.<body>")>`."""
    if isinstance(body, str):
        body = body.encode()
    mac = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
    return "%s=%s" % (scheme, mac)


def stripe_signature_header(secret, body, t=None):
    """The Stripe-Signature header Stripe would send for body signed at t (default now)."""
    t = int(time.time()) if t is None else t
    return "t=%d,%s" % (t, stripe_signature(secret, body, t))


def stripe_event(type_, obj, event_id=None, created=None):
    """A Stripe event (fixture shape) of type_ about data.object obj."""
    ev = stripe_fixture("event")
    ev.update({"id": event_id or "evt_" + secrets.token_hex(12), "type": type_,
               "created": int(time.time()) if created is None else created,
               "api_version": "2024-06-20", "data": {"object": obj}})
    return ev


def payment_metadata(payment):
    return {"payment_id": payment["id"], "user_id": payment["user_id"],
            "purpose": payment["purpose"]}


def stripe_intent_object(payment, status="succeeded"):
    """The PaymentIntent of payment as Stripe shows it in an event. A failed attempt
    looks as Stripe shows a decline: back to requires_payment_method, nothing received."""
    pi = stripe_fixture("payment_intent")
    failed = status == "failed"
    pi.update({"id": payment["stripe_payment_intent_id"], "amount": payment["amount"],
               "currency": payment["currency"], "metadata": payment_metadata(payment),
               "status": "requires_payment_method" if failed else status,
               "amount_received": payment["amount"] if status == "succeeded" else 0,
               "client_secret": None})
    if failed:
        pi["last_payment_error"] = {"type": "card_error", "code": "card_declined",
                                    "message": "Your card was declined."}
    return pi


def stripe_charge_object(payment, amount_refunded=None):
    """The charge of payment, refunded (wholly unless amount_refunded says otherwise)."""
    ch = stripe_fixture("charge")
    refunded = payment["amount"] if amount_refunded is None else amount_refunded
    ch.update({"id": "ch_" + secrets.token_hex(12), "amount": payment["amount"],
               "amount_captured": payment["amount"], "amount_refunded": refunded,
               "captured": True, "refunded": refunded == payment["amount"],
               "currency": payment["currency"],
               "payment_intent": payment["stripe_payment_intent_id"],
               "metadata": payment_metadata(payment)})
    return ch


def stripe_session_object(payment):
    """A completed, paid Checkout Session for payment."""
    cs = stripe_fixture("checkout.session")
    cs.update({"id": "cs_test_" + secrets.token_hex(20), "mode": "payment",
               "payment_intent": payment["stripe_payment_intent_id"],
               "amount_subtotal": payment["amount"], "amount_total": payment["amount"],
               "currency": payment["currency"], "metadata": payment_metadata(payment),
               "status": "complete", "payment_status": "paid"})
    return cs


# Event type by the payment status it aims at.
STRIPE_EVENT_FOR = {
    "succeeded": ("payment_intent.succeeded", lambda p: stripe_intent_object(p, "succeeded")),
    "failed": ("payment_intent.payment_failed", lambda p: stripe_intent_object(p, "failed")),
    "refunded": ("charge.refunded", stripe_charge_object),
    "checkout": ("checkout.session.completed", stripe_session_object),
}


def stripe_event_for(payment, kind, event_id=None):
    """The event Stripe sends when payment reaches kind (a STRIPE_EVENT_FOR key)."""
    type_, make = STRIPE_EVENT_FOR[kind]
    return stripe_event(type_, make(payment), event_id)


class PaymentCase(HexCase):
    """A HexCase whose hexd takes payments through its own fake Stripe (HEX_GATEWAY=stripe
    unless HEXD_ENV says otherwise), with a webhook secret and a membership ApiKey."""

    FAKE_STRIPE = True
    fake_stripe = None

    @classmethod
    def setUpClass(cls):
        unittest.TestCase.setUpClass()
        cls.webhook_secret = "whsec_" + secrets.token_hex(16)
        cls.membership_key = "mk_" + secrets.token_hex(16)
        env = {"HEX_STRIPE_WEBHOOK_SECRET": cls.webhook_secret,
               "HEX_MEMBERSHIP_API_KEY": cls.membership_key}
        if cls.FAKE_STRIPE:
            cls.fake_stripe = FakeStripeServer().start()
            cls.addClassCleanup(cls.fake_stripe.stop)
            env.update({"HEX_GATEWAY": "stripe", "HEX_STRIPE_API_BASE": cls.fake_stripe.url,
                        "HEX_STRIPE_SECRET_KEY": cls.fake_stripe.secret_key})
        env.update(cls.HEXD_ENV)
        cls.stack = Stack(cls.__name__, env, cls.USE_REDIS)
        cls.addClassCleanup(cls.stack.close)
        for s in (cls.webhook_secret, cls.membership_key,
                  cls.fake_stripe.secret_key if cls.fake_stripe else None):
            cls.stack.note_secret(s)
        cls.stack.start(start_hexd=cls.START_HEXD)

    # -- HTTP on the payments listener

    @property
    def pay_port(self):
        return self.stack.payments_port

    def pay_req(self, method, path, **kw):
        return self.req(method, path, port=self.pay_port, **kw)

    def create_payment(self, session, amount=1000, currency="usd", purpose="wallet_top_up",
                       key=None, body=None, timeout=30.0):
        """POST /v2/payments as session (body overrides the fields); the Response."""
        obj = body if body is not None else {"amount": amount, "currency": currency,
                                             "purpose": purpose}
        hdrs = {"Idempotency-Key": key} if key is not None else None
        r = self.pay_req("POST", "/v2/payments", json_body=obj, token=session.access,
                         headers=hdrs, timeout=timeout)
        if r.status == 201 and isinstance(r.body, dict):
            self.stack.note_secret(r.body.get("client_secret"))
        return r

    def new_payment(self, session, **kw):
        """A payment created with 201 (asserted); its JSON."""
        r = self.create_payment(session, **kw)
        self.assertEqual(r.status, 201, r)
        return r.body

    def get_payment(self, session, payment_id, expect=200):
        r = self.pay_req("GET", "/v2/payments/%s" % payment_id, token=session.access)
        self.assertEqual(r.status, expect, r)
        return r.body

    def wait_payment_status(self, session, payment_id, status, timeout=10.0):
        """Polls GET /v2/payments/:id until it shows status; the last payment JSON."""
        last = [None]

        def reached():
            last[0] = self.get_payment(session, payment_id)
            return last[0].get("status") == status

        wait_until(reached, timeout * (3 if SANITIZED else 1), interval=0.1)
        return last[0]

    def send_event(self, event, secret=None, t=None, signature=_DEFAULT, headers=None,
                   port=None):
        """POSTs a webhook delivery: event (dict, or the raw body) signed with secret
        (default the configured one) at t, unless signature gives the header (None: no
        Stripe-Signature at all)."""
        body = event if isinstance(event, (bytes, str)) else json.dumps(event).encode()
        if isinstance(body, str):
            body = body.encode()
        hdrs = {}
        if signature is _DEFAULT:
            signature = stripe_signature_header(secret or self.webhook_secret, body, t)
        if signature is not None:
            hdrs["Stripe-Signature"] = signature
        hdrs.update(headers or {})
        return self.req("POST", "/v2/stripe/webhook", body=body, headers=hdrs,
                        port=port or self.pay_port)

    def deliver(self, event, duplicate=False):
        """Sends a correctly signed event and asserts the 200 answer."""
        r = self.send_event(event)
        self.assertEqual(r.status, 200, r)
        self.assertJsonReply(r)
        self.assertEqual(r.body, {"received": True, "duplicate": duplicate}, r)
        return r

    # -- stored rows

    def payment_row(self, payment_id):
        cols = ["id", "user_id", "amount", "currency", "purpose", "status", "client_key",
                "stripe_idempotency_key", "stripe_payment_intent_id", "client_secret",
                "failure_message"]
        rows = self.stack.db.sql("SELECT %s FROM payments WHERE id = %s" %
                                 (", ".join(cols), sql_literal(payment_id)))
        return dict(zip(cols, rows[0])) if rows else None

    def payments_state(self):
        """Everything a webhook may change: event, outbox, payment and user rows."""
        db = self.stack.db
        return {
            "stripe_events": db.sql("SELECT id, type FROM stripe_events ORDER BY id"),
            "outbox": db.sql("SELECT id, event_id, topic FROM outbox ORDER BY id"),
            "payments": db.sql("SELECT id, status, stripe_payment_intent_id, updated_at "
                               "FROM payments ORDER BY id"),
            "users": db.sql("SELECT id, membership, updated_at FROM users ORDER BY id"),
        }

    def kill_hexd(self, sig=signal.SIGKILL):
        """Kills hexd at once (no drain); it is no longer the stack's. Its exit status."""
        h, self.stack.hexd = self.stack.hexd, None
        h.proc.send_signal(sig)
        try:
            h.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            h.kill()
        return h.proc.returncode


# ---------------------------------------------------------------------------------------
# nginx in front of several hexd: config/nginx.conf.in, as scripts/cluster.sh runs it

NGINX_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                              "config", "nginx.conf.in")


def render_nginx_conf(listen_port, api1, api2, body_limit=1048576):
    """config/nginx.conf.in filled in: nginx on listen_port in front of two instances,
    api1 and api2 each a (v1 port, v2 port) pair (HEX_HTTP_LISTEN, HEX_PAYMENTS_LISTEN)."""
    with open(NGINX_TEMPLATE) as f:
        conf = f.read()
    for key, value in (("LISTEN_PORT", listen_port), ("API1_HTTP_PORT", api1[0]),
                       ("API1_PAYMENTS_PORT", api1[1]), ("API2_HTTP_PORT", api2[0]),
                       ("API2_PAYMENTS_PORT", api2[1]), ("BODY_LIMIT", body_limit)):
        conf = conf.replace("@%s@" % key, str(value))
    left = re.findall(r"@[A-Z0-9_]+@", conf)
    if left:
        raise RuntimeError("nginx.conf.in: placeholders nobody fills: %s" % sorted(set(left)))
    return conf


def log_events(text, event=None):
    """The JSON lines of a hexd log (optionally only those of one event), as dicts."""
    out = []
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if event is None or obj.get("event") == event:
            out.append(obj)
    return out


class Nginx:
    """An nginx (foreground, from the test process) running conf in a folder of its own,
    which is its prefix: pid, logs and temp files. The folder is world-readable so that
    workers started by root (they run as nobody) can use their temp folders."""

    def __init__(self, conf, port):
        self.conf = conf
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="hex-e2e-nginx-")
        os.chmod(self.dir, 0o755)
        self.proc = None

    @property
    def access_log_path(self):
        return os.path.join(self.dir, "access.log")

    def start(self, timeout=10.0):
        if shutil.which("nginx") is None:
            raise RuntimeError("nginx is not installed (Debian package nginx-light)")
        path = os.path.join(self.dir, "nginx.conf")
        with open(path, "w") as f:
            f.write(self.conf)
        err = os.path.join(self.dir, "error.log")
        self.proc = subprocess.Popen(["nginx", "-p", self.dir + "/", "-e", err, "-c", path,
                                      "-g", "daemon off;"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def listening():
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited with %d: %s" % (self.proc.returncode,
                                                                 self.error_log()[-3000:]))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False

        if not wait_until(listening, timeout):
            self.stop()
            raise RuntimeError("nginx did not listen on %d: %s" % (self.port,
                                                                   self.error_log()[-3000:]))
        return self

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def access_log(self):
        """Every access-log entry so far (one JSON object per request)."""
        try:
            with open(self.access_log_path, errors="replace") as f:
                return [json.loads(l) for l in f if l.strip()]
        except OSError:
            return []

    def entry(self, request_id, timeout=5.0):
        """The one access-log entry of request_id (nginx writes it when the reply is sent)."""
        def found():
            hits = [e for e in self.access_log() if e.get("request_id") == request_id]
            return hits or None

        hits = wait_until(found, timeout)
        if not hits or len(hits) != 1:
            raise AssertionError("nginx logged request %s %d times" %
                                 (request_id, len(hits or [])))
        return hits[0]

    def stop(self):
        """Graceful stop (QUIT: requests in progress finish); kills it after 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self):
        self.stop()
        if not os.environ.get("HEX_E2E_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# runner


class HexResult(unittest.TextTestResult):
    """Prints the hexd log lines written during a failed test."""

    def _dump(self, test):
        test = getattr(test, "test_case", test)  # a failed subTest points at its test
        marks = getattr(test, "_log_marks", None)
        stack = getattr(test, "stack", None)
        if marks is None or stack is None:
            return
        done = getattr(self, "_dumped", set())
        self._dumped = done
        if test.id() in done:
            return
        done.add(test.id())
        text = stack.log_since(marks)
        if text:
            self.stream.writeln("\n==== hexd log during %s ====\n%s\n==== end ====" %
                                (test.id(), text))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._dump(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._dump(test)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._dump(test)


def main():
    global HEXD, SANITIZED
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--hexd")
    known, rest = ap.parse_known_args()
    here = os.path.dirname(os.path.abspath(__file__))
    HEXD = known.hexd or os.environ.get("HEXD") or \
        os.path.join(here, "..", "..", "build", "bin", "hexd")
    HEXD = os.path.abspath(HEXD)
    if not os.access(HEXD, os.X_OK):
        print("e2e: hexd binary not found or not executable: %s" % HEXD, file=sys.stderr)
        sys.exit(2)
    if not os.environ.get("HEX_TEST_PG_URL"):
        print("e2e: HEX_TEST_PG_URL is not set (run scripts/test.sh); refusing to skip",
              file=sys.stderr)
        sys.exit(2)
    SANITIZED = _sanitized(HEXD)
    runner = unittest.TextTestRunner(resultclass=HexResult, verbosity=2)
    unittest.main(module="__main__", argv=[sys.argv[0]] + rest, testRunner=runner)
