"""drill_lib: what every reliability drill shares (python3 stdlib only).

A drill starts a fresh private cluster with scripts/cluster.sh (HEX_CLUSTER_NAME=drills,
ports in 28000-28399, hexd from HEX_CLUSTER_BUILD_DIR, default build-drills), seeds data
through the API and SQL, runs load from Python threads that record every answer, injects
its fault, checks from PostgreSQL and the API, prints one summary line and tears down.

Environment: HEX_DRILL_SHORT=1 (a few seconds of load), HEX_DRILL_KEEP=1 (leave the cluster
up after the drill, for a look at its logs in .hex/drills/).
"""

import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
NAME = "drills"
NGINX_PORT = 28000
PG_PORT = 28001
REDIS_PORT = 28002
FAKE_STRIPE_PORT = 28003
HEXD_BASE = 28100  # instance n listens on 28100 + 10n .. +3
BUILD_DIR = os.environ.get("HEX_CLUSTER_BUILD_DIR", "build-drills")
SHORT = os.environ.get("HEX_DRILL_SHORT") == "1"
STATE = os.path.join(ROOT, ".hex", NAME)
PG_BIN = "/usr/lib/postgresql/15/bin"
SERVER_USER = "hex"
PASSWORD = "correct horse battery staple"
INSTANCES = ("api1", "api2", "worker1", "worker2")
CONSUMERS = ("ledger", "membership", "notify")
STREAM = "hex:events:payment_events"


def say(msg):
    print("drill: %s" % msg, flush=True)


class DrillFailed(Exception):
    pass


def wait_until(pred, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def load_seconds(full, short):
    return short if SHORT else full


# ------------------------------------------------------------------ the cluster


def server_dir():
    """Where cluster.sh keeps the servers' data (lib.sh hex_choose_folders)."""
    h = hashlib.sha256(ROOT.encode()).hexdigest()[:12]
    alt = "/var/tmp/hex-%s/%s" % (h, NAME)
    return alt if os.path.isdir(os.path.join(alt, "pg")) else STATE


class Cluster:
    def __init__(self, extra_env=None):
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("HEX_") and k not in ("HEX_CLUSTER_BUILD_DIR", "HEX_CLUSTER_SKIP_BUILD"):
                del self.env[k]
        self.env.update({
            "HEX_CLUSTER_NAME": NAME, "HEX_CLUSTER_PORT": str(NGINX_PORT),
            "HEX_CLUSTER_PG_PORT": str(PG_PORT), "HEX_CLUSTER_REDIS_PORT": str(REDIS_PORT),
            "HEX_CLUSTER_HEXD_PORT": str(HEXD_BASE), "HEX_CLUSTER_BUILD_DIR": BUILD_DIR,
            "HEX_LOG_FORMAT": "text",
            # No simulated settlement during a drill: the drill sends every event itself.
            "HEX_SIMULATED_DELAY_MS": "600000",
            # Another worker takes over a killed one's entries after 3 s, not 15.
            "HEX_EVENT_CLAIM_IDLE_MS": "3000",
            "HEX_EVENT_RETRY_BASE_MS": "200", "HEX_EVENT_RETRY_MAX_MS": "2000",
        })
        self.env.update(extra_env or {})
        self.secrets = {}
        self.started = False

    def script(self, cmd, timeout=300):
        p = subprocess.run([os.path.join(ROOT, "scripts", "cluster.sh"), cmd], env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        return p

    def start(self):
        self.stop()
        for d in (STATE, server_dir()):
            shutil.rmtree(d, ignore_errors=True)
        say("starting a fresh cluster (nginx :%d, PostgreSQL :%d, Redis :%d)" %
            (NGINX_PORT, PG_PORT, REDIS_PORT))
        t0 = time.monotonic()
        p = self.script("start", timeout=600)
        self.started = True
        if p.returncode != 0:
            raise DrillFailed("cluster.sh start failed:\n%s%s" % (p.stdout[-1500:],
                                                                   p.stderr[-3000:]))
        with open(os.path.join(STATE, "secrets.env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                self.secrets[k] = v
        say("cluster up in %.1fs" % (time.monotonic() - t0))
        if os.environ.get("HEX_DRILL_NGINX_NO_503") == "1":
            self.nginx_without_503()

    def nginx_without_503(self):
        """Diagnosis only (docs/RELIABILITY.md, drill 3): nginx with http_503 taken out of
        proxy_next_upstream, so a 503 no longer counts against max_fails."""
        conf = os.path.join(server_dir(), "nginx", "nginx.conf")
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace(" http_503", ""))
        subprocess.run(["runuser", "-u", SERVER_USER, "--", "nginx", "-p",
                        os.path.dirname(conf) + "/", "-c", conf, "-s", "reload"], cwd="/",
                       check=True, timeout=30)
        time.sleep(1)
        say("nginx reloaded without http_503 in proxy_next_upstream (HEX_DRILL_NGINX_NO_503)")

    def stop(self):
        p = self.script("stop", timeout=300)
        if p.returncode != 0:
            say("cluster.sh stop: exit %d: %s" % (p.returncode, p.stderr[-1000:]))

    # -- processes

    def pid(self, name):
        try:
            with open(os.path.join(STATE, name, "hexd.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def port(self, name, off):
        return HEXD_BASE + 10 * INSTANCES.index(name) + off

    def log(self, name):
        try:
            with open(os.path.join(STATE, name, "hexd.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def kill9(self, name):
        pid = self.pid(name)
        if pid is None:
            raise DrillFailed("no pid for %s" % name)
        os.kill(pid, 9)
        say("kill -9 %s (pid %d)" % (name, pid))

    def hexd_env(self):
        env = dict(os.environ)
        env.update({
            "HEX_DATABASE_URL": "host=127.0.0.1 port=%d user=%s dbname=hex" % (PG_PORT,
                                                                               SERVER_USER),
            "HEX_REDIS_URL": "redis://127.0.0.1:%d/0" % REDIS_PORT,
            "HEX_LOG_FORMAT": "text", "USER": "drill-operator",
        })
        env.update(self.secrets)
        return env

    def hexd(self, *args, timeout=120):
        return subprocess.run([os.path.join(ROOT, BUILD_DIR, "bin", "hexd")] + list(args),
                              env=self.hexd_env(), capture_output=True, text=True,
                              timeout=timeout)

    def ledger_verify(self):
        p = self.hexd("ledger", "verify")
        ok = p.returncode == 0 and p.stdout.strip().splitlines()[-1:] == ["ledger ok"]
        return ok, (p.stdout + p.stderr).strip()[-500:]

    # -- PostgreSQL and Redis

    def psql(self, query, timeout=60):
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-F", "\t",
                            "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", SERVER_USER, "-d",
                            "hex", "-c", query], capture_output=True, text=True,
                           timeout=timeout)
        if p.returncode != 0:
            raise DrillFailed("psql failed on %r: %s" % (query[:200], p.stderr.strip()))
        return [line.split("\t") for line in p.stdout.splitlines() if line]

    def scalar(self, query):
        rows = self.psql(query)
        return rows[0][0] if rows else None

    def pg_ctl(self, *args):
        data = os.path.join(server_dir(), "pg", "data")
        return subprocess.run(["runuser", "-u", SERVER_USER, "--", PG_BIN + "/pg_ctl"] +
                              list(args) + ["-D", data], capture_output=True, text=True,
                              timeout=120, cwd="/")

    def redis_cli(self, *args):
        return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(REDIS_PORT)] +
                              list(args), capture_output=True, text=True, timeout=30)

    def redis_stop(self):
        """SHUTDOWN SAVE: the streams and their groups come back with the snapshot."""
        self.redis_cli("shutdown", "save")
        wait_until(lambda: self.redis_cli("ping").stdout.strip() != "PONG", 20)

    def redis_start(self):
        d = os.path.join(server_dir(), "redis")
        p = subprocess.run(["runuser", "-u", SERVER_USER, "--", "redis-server", "--bind",
                            "127.0.0.1", "--port", str(REDIS_PORT), "--save", "300 1",
                            "--appendonly", "no", "--daemonize", "yes", "--pidfile",
                            d + "/redis.pid", "--logfile", d + "/redis.log", "--dir", d],
                           capture_output=True, text=True, timeout=30, cwd="/")
        if p.returncode != 0 or not wait_until(
                lambda: self.redis_cli("ping").stdout.strip() == "PONG", 20):
            raise DrillFailed("redis did not restart: %s" % p.stderr)

    def pending(self):
        """Entries delivered and not acknowledged, over every group of every stream."""
        total = 0
        for key in [STREAM] + ["%s:retry:%s" % (STREAM, c) for c in CONSUMERS]:
            out = self.redis_cli("xinfo", "groups", key).stdout.split("\n")
            for i, line in enumerate(out):
                if line.strip() == "pending" and i + 1 < len(out):
                    total += int(out[i + 1].strip())
        return total

    def unpublished(self):
        return int(self.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL "
                               "AND available_at <= now()") or 0)


# ------------------------------------------------------------------ HTTP


class Reply:
    def __init__(self, status, body, elapsed):
        self.status, self.body, self.elapsed = status, body, elapsed

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def code(self):
        j = self.json()
        return j.get("code") if isinstance(j, dict) else None


def request(method, path, body=None, token=None, headers=None, port=NGINX_PORT, timeout=30,
            conn=None):
    """One request; status 0 for a connection-level failure (refused, reset, timeout)."""
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    if token:
        hdrs["Authorization"] = "Bearer " + token
    t0 = time.monotonic()
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        return Reply(r.status, data.decode(errors="replace"), time.monotonic() - t0)
    except (OSError, http.client.HTTPException) as e:
        return Reply(0, str(e), time.monotonic() - t0)
    finally:
        if conn is None:
            c.close()


def make_user(prefix):
    email = "%s-%s@example.com" % (prefix, uuid.uuid4().hex[:10])
    r = request("POST", "/v1/users", {"email": email, "password": PASSWORD})
    if r.status != 201:
        raise DrillFailed("POST /v1/users: %d %s" % (r.status, r.body[:300]))
    uid = r.json()["id"]
    r = request("POST", "/v1/login", {"email": email, "password": PASSWORD})
    if r.status != 200:
        raise DrillFailed("POST /v1/login: %d %s" % (r.status, r.body[:300]))
    return {"id": uid, "email": email, "token": r.json()["access_token"]}


# ------------------------------------------------------------------ payments and events


def seed_payments(cluster, user_id, n, amount=1000, tag=None, amounts=None):
    """n 'processing' wallet top-ups of user_id, in SQL as after hexd's call to Stripe;
    their ids, intents and amounts (a list of dicts shaped like the API's payment)."""
    tag = tag or uuid.uuid4().hex[:8]
    out = []
    for i in range(n):
        pid = str(uuid.uuid4())
        out.append({"id": pid, "user_id": user_id, "amount": amounts[i] if amounts else amount,
                    "currency": "usd", "purpose": "wallet_top_up",
                    "stripe_payment_intent_id": "pi_drill_%s_%d" % (tag, i)})
    for chunk in range(0, n, 500):
        values = ",".join(
            "('%s','%s',%d,'usd','wallet_top_up','processing','drill-%s','%s')" %
            (p["id"], user_id, p["amount"], p["id"], p["stripe_payment_intent_id"])
            for p in out[chunk:chunk + 500])
        cluster.psql("INSERT INTO payments (id, user_id, amount, currency, purpose, status, "
                     "stripe_idempotency_key, stripe_payment_intent_id) VALUES " + values)
    return out


_FIXTURES = None


def fixtures():
    global _FIXTURES
    if _FIXTURES is None:
        with open(os.path.join(ROOT, "tests", "fixtures", "stripe", "fixtures3.json")) as f:
            _FIXTURES = json.load(f)["resources"]
    return _FIXTURES


def event_for(payment, kind, event_id=None):
    """A Stripe event: kind 'succeeded' (payment_intent.succeeded) or 'refunded'
    (charge.refunded, in full)."""
    meta = {"payment_id": payment["id"], "user_id": payment["user_id"],
            "purpose": payment["purpose"]}
    if kind == "succeeded":
        obj = dict(fixtures()["payment_intent"])
        obj.update({"id": payment["stripe_payment_intent_id"], "amount": payment["amount"],
                    "amount_received": payment["amount"], "currency": "usd",
                    "status": "succeeded", "metadata": meta, "client_secret": None,
                    "last_payment_error": None})
        type_ = "payment_intent.succeeded"
    else:
        obj = dict(fixtures()["charge"])
        obj.update({"id": "ch_" + uuid.uuid4().hex[:20], "amount": payment["amount"],
                    "amount_captured": payment["amount"],
                    "amount_refunded": payment["amount"], "captured": True, "refunded": True,
                    "currency": "usd", "payment_intent": payment["stripe_payment_intent_id"],
                    "metadata": meta})
        type_ = "charge.refunded"
    ev = dict(fixtures()["event"])
    ev.update({"id": event_id or "evt_drill_" + uuid.uuid4().hex[:20], "type": type_,
               "created": int(time.time()), "api_version": "2024-06-20",
               "data": {"object": obj}})
    return ev


def signed(secret, event):
    body = json.dumps(event, separators=(",", ":")).encode()
    t = int(time.time())
    mac = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": "t=%d,v1=%s" % (t, mac),
                  "Content-Type": "application/json"}


def send_event(cluster, event, conn=None):
    body, hdrs = signed(cluster.secrets["HEX_STRIPE_WEBHOOK_SECRET"], event)
    return request("POST", "/v2/stripe/webhook", body=body, headers=hdrs, conn=conn)


def top_up(cluster, user, amount):
    """Money into user's wallet the real way: a payment, its success event, the ledger
    consumer's posting (waited for)."""
    p = seed_payments(cluster, user["id"], 1, amount)[0]
    r = send_event(cluster, event_for(p, "succeeded"))
    if r.status != 200:
        raise DrillFailed("top-up webhook: %d %s" % (r.status, r.body[:300]))
    if not wait_until(lambda: balance(cluster, user["id"]) >= amount, 30):
        raise DrillFailed("top-up of %s never reached the wallet" % user["id"])
    return p


def balance(cluster, user_id, currency="usd"):
    v = cluster.scalar("SELECT balance FROM accounts WHERE kind = 'wallet' AND owner_id = '%s' "
                       "AND currency = '%s'" % (user_id, currency))
    return int(v) if v is not None else 0


# ------------------------------------------------------------------ load


class Recorder:
    """Every answer of a load: (start time, elapsed, op, status, code, info)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rows = []

    def add(self, t, reply, op, info=None):
        with self.lock:
            self.rows.append((t, reply.elapsed, op, reply.status, reply.code() if
                              reply.status >= 400 else None, info))

    def errors(self, ok=lambda row: 200 <= row[3] < 300):
        return [r for r in self.rows if not ok(r)]


def run_threads(n, fn, seconds, stop=None):
    """n threads calling fn(thread_index, persistent connection) until seconds pass or stop
    is set; joined before returning."""
    stop = stop or threading.Event()
    deadline = time.monotonic() + seconds

    def loop(i):
        conn = None
        while not stop.is_set() and time.monotonic() < deadline:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", NGINX_PORT, timeout=30)
            try:
                if fn(i, conn) is False:
                    conn.close()
                    conn = None
            except Exception as e:  # a drill's bug must not hang the load
                say("load thread %d: %r" % (i, e))
                conn.close()
                conn = None
        if conn:
            conn.close()

    ts = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    return ts, stop


def join(threads, timeout=120):
    for t in threads:
        t.join(timeout)


def percentile(xs, p):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


# ------------------------------------------------------------------ the summary


def summary(name, ok, **fields):
    parts = " ".join("%s=%s" % (k, v) for k, v in fields.items())
    print("DRILL %s %s %s" % (name, "PASS" if ok else "FAIL", parts), flush=True)


def main(name, body, extra_env=None):
    """Runs body(cluster, checks) on a fresh cluster; checks is a list of (ok, what). Exit
    status 0 only if the drill ran and every check held."""
    cluster = Cluster(extra_env)
    checks = []
    fields = {}
    t0 = time.monotonic()
    crashed = None
    try:
        cluster.start()
        body(cluster, checks, fields)
    except Exception as e:  # reported as the drill's failure
        crashed = "%s: %s" % (type(e).__name__, e)
    finally:
        if os.environ.get("HEX_DRILL_KEEP") != "1":
            cluster.stop()
    for ok, what in checks:
        if not ok:
            say("CHECK FAILED: %s" % what)
    if crashed:
        say("drill aborted: %s" % crashed)
    ok = crashed is None and bool(checks) and all(c[0] for c in checks)
    fields["seconds"] = "%.0f" % (time.monotonic() - t0)
    summary(name, ok, **fields)
    sys.exit(0 if ok else 1)


def check(checks, ok, what):
    checks.append((bool(ok), what))
    return bool(ok)


# ------------------------------------------------------------------ transfer + read load


class TransferLoad:
    """Users with money, and threads that read (GET /v1/users/:id) and move money
    (POST /v2/wallet/transfers with an Idempotency-Key), retrying a failed transfer with the
    same key as a careful client does. Every attempt is recorded; every key remembered."""

    def __init__(self, cluster, users=6, funds=50_000_000):
        self.cluster = cluster
        self.users = [make_user("drill") for _ in range(users)]
        for u in self.users:
            top_up(cluster, u, funds)
        self.funds = funds
        self.rec = Recorder()
        self.lock = threading.Lock()
        self.keys = {}  # key -> (payer index, payee index, amount, final status)
        self.retry_sleep = 0.3

    def op(self, i, conn):
        rnd = random.Random()
        me = self.users[i % len(self.users)]
        if rnd.random() < 0.5:
            t = time.monotonic()
            r = request("GET", "/v1/users/%s" % me["id"], token=me["token"], conn=conn)
            self.rec.add(t, r, "read")
            return r.status != 0
        payer = i % len(self.users)
        payee = (payer + 1 + rnd.randrange(len(self.users) - 1)) % len(self.users)
        amount = rnd.randint(1, 9)
        key = uuid.uuid4().hex
        with self.lock:
            self.keys[key] = [payer, payee, amount, None]
        body = {"to_user_id": self.users[payee]["id"], "amount": amount, "currency": "usd"}
        give_up = time.monotonic() + 30  # a careful client keeps its key and retries
        attempt = 0
        while True:
            t = time.monotonic()
            r = request("POST", "/v2/wallet/transfers", body, token=me["token"],
                        headers={"Idempotency-Key": key}, conn=conn if attempt == 0 else None)
            self.rec.add(t, r, "transfer", key)
            with self.lock:
                self.keys[key][3] = r.status
            if r.status == 201 or (400 <= r.status < 500 and r.status != 429):
                break
            if time.monotonic() > give_up:
                break
            attempt += 1
            time.sleep(self.retry_sleep)
        return True

    def check(self, checks, fields):
        """Nothing lost, nothing twice, balances as the answers imply, books verify."""
        c = self.cluster
        rows = c.psql("SELECT idempotency_key, count(*) FROM journal_transactions WHERE "
                      "idempotency_key LIKE 'transfer:%' GROUP BY idempotency_key")
        in_db = {}
        for k, n in rows:
            in_db[k.rsplit(":", 1)[1]] = int(n)
        ok_keys = {k for k, v in self.keys.items() if v[3] == 201}
        lost = sorted(ok_keys - set(in_db))
        dup = sorted(k for k, n in in_db.items() if n > 1)
        stray = sorted(set(in_db) - set(self.keys))
        unresolved = sorted(k for k, v in self.keys.items() if v[3] != 201)
        check(checks, not lost, "every 201 transfer is in the books (lost: %s)" % lost[:5])
        check(checks, not dup, "no transfer key moved money twice (%s)" % dup[:5])
        check(checks, not stray, "no transfer the drill did not make (%s)" % stray[:5])
        expect = [self.funds] * len(self.users)
        for k in in_db:
            payer, payee, amount, _ = self.keys.get(k, (0, 0, 0, 0))
            expect[payer] -= amount
            expect[payee] += amount
        actual = [balance(c, u["id"]) for u in self.users]
        check(checks, expect == actual, "wallets equal the transfers stored: %s vs %s" %
              (expect, actual))
        ok, out = c.ledger_verify()
        check(checks, ok, "hexd ledger verify: %s" % out)
        fields["transfers_ok"] = len(ok_keys)
        fields["unresolved"] = len(unresolved)
        fields["lost"] = len(lost)
        fields["duplicated"] = len(dup)
        fields["ledger_verify"] = "ok" if ok else "FAIL"
        return unresolved


def window_stats(rec, fault_t, fields, ok_codes=(200, 201)):
    """Requests, errors, and the error window (first to last failed answer) from the fault."""
    rows = rec.rows
    errs = [r for r in rows if r[3] not in ok_codes]
    fields["requests"] = len(rows)
    fields["errors"] = len(errs)
    if errs:
        first = min(r[0] for r in errs)
        last = max(r[0] + r[1] for r in errs)
        fields["window_s"] = "%.2f" % (last - min(first, fault_t))
        fields["first_err_after_fault_s"] = "%.2f" % (first - fault_t)
    else:
        fields["window_s"] = "0"
    codes = {}
    for r in errs:
        k = "%d:%s" % (r[3], r[4] or "-")
        codes[k] = codes.get(k, 0) + 1
    if codes:
        fields["error_codes"] = ",".join("%s=%d" % kv for kv in sorted(codes.items()))
    return errs


# ------------------------------------------------------------------ webhook load


class EventLoad:
    """Webhooks pouring in: payment_intent.succeeded for seeded payments of one user, each
    sent until answered 200 (as Stripe redelivers). Then: every accepted event applied once
    by every consumer, one ledger posting per payment, the wallet their sum."""

    def __init__(self, cluster, payments=20000, amount=100):
        self.cluster = cluster
        self.user = make_user("drill-events")
        self.payments = seed_payments(cluster, self.user["id"], payments, amount)
        self.events = [event_for(p, "succeeded", "evt_load_" + uuid.uuid4().hex[:20])
                       for p in self.payments]
        self.next = 0
        self.lock = threading.Lock()
        self.accepted = set()
        self.rec = Recorder()

    def op(self, i, conn):
        with self.lock:
            if self.next >= len(self.events):
                time.sleep(0.05)
                return True
            n = self.next
            self.next += 1
        ev = self.events[n]
        give_up = time.monotonic() + 60  # Stripe redelivers for days; a minute here
        attempt = 0
        while time.monotonic() < give_up:
            t = time.monotonic()
            r = send_event(self.cluster, ev, conn=conn if attempt == 0 else None)
            self.rec.add(t, r, "webhook", ev["id"])
            if r.status == 200:
                with self.lock:
                    self.accepted.add(n)
                return True
            attempt += 1
            time.sleep(0.2)
        return True

    def sent(self):
        return sorted(self.accepted)

    def applied(self, consumer="ledger"):
        return int(self.cluster.scalar(
            "SELECT count(*) FROM processed_events WHERE consumer = '%s' AND event_id LIKE "
            "'evt_load_%%'" % consumer))

    def wait_drained(self, timeout):
        """Waits until every consumer applied every accepted event and nothing is pending;
        seconds it took, or None."""
        t0 = time.monotonic()
        want = len(self.accepted)

        def done():
            return (all(self.applied(c) >= want for c in CONSUMERS) and
                    self.cluster.unpublished() == 0 and self.cluster.pending() == 0)
        return (time.monotonic() - t0) if wait_until(done, timeout, 0.5) else None

    def check(self, checks, fields):
        c = self.cluster
        acc = [self.payments[n] for n in self.accepted]
        ids = {self.events[n]["id"] for n in self.accepted}
        per_consumer = {}
        for cons in CONSUMERS:
            rows = c.psql("SELECT event_id, count(*) FROM processed_events WHERE consumer = "
                          "'%s' AND event_id LIKE 'evt_load_%%' GROUP BY event_id" % cons)
            got = {r[0]: int(r[1]) for r in rows}
            per_consumer[cons] = got
            missing = ids - set(got)
            twice = [k for k, v in got.items() if v > 1]
            check(checks, not missing, "%s applied every accepted event (missing %d)" %
                  (cons, len(missing)))
            check(checks, not twice, "%s applied no event twice (%d)" % (cons, len(twice)))
        refs = c.psql("SELECT reference, count(*) FROM journal_transactions WHERE reference "
                      "LIKE 'payment:%' GROUP BY reference")
        posted = {r[0].split(":", 1)[1]: int(r[1]) for r in refs}
        lost = [p["id"] for p in acc if p["id"] not in posted]
        dup = [k for k, v in posted.items() if v > 1]
        check(checks, not lost, "every accepted payment posted (lost %d)" % len(lost))
        check(checks, not dup, "no payment posted twice (%d)" % len(dup))
        want = sum(p["amount"] for p in acc)
        got = balance(c, self.user["id"])
        check(checks, want == got, "wallet %d = sum of accepted top-ups %d" % (got, want))
        stored = int(c.scalar("SELECT count(*) FROM stripe_events WHERE id LIKE 'evt_load_%'"))
        check(checks, stored == len(ids), "stripe_events holds each accepted event once "
              "(%d rows, %d events)" % (stored, len(ids)))
        ok, out = c.ledger_verify()
        check(checks, ok, "hexd ledger verify: %s" % out)
        fields["events"] = len(ids)
        fields["applied"] = len(per_consumer["ledger"])
        fields["lost"] = len(lost) + len(ids - set(per_consumer["ledger"]))
        fields["duplicated"] = len(dup)
        fields["ledger_verify"] = "ok" if ok else "FAIL"


# ------------------------------------------------------------------ wrk load


class WrkLoad:
    """wrk through nginx in the background, beside the Python load: a far higher request
    rate than Python threads reach, on one path with one bearer token. The Lua script
    (tests/drills/drill_1_wrk.lua) counts answers per wall-clock second; finish() parses
    what it prints into:
      per_second  {unix second: (2xx answers, other answers)}
      statuses    {status: answers} for every non-2xx status
      summary     wrk's own counters: requests, duration_us, connect, read, write, timeout
                  (socket errors, which no second can be given to), status (answers >= 400),
                  p50_us, p99_us, max_us."""

    def __init__(self, path, token, seconds, threads=2, conns=32, timeout_s=2,
                 script="drill_1_wrk.lua"):
        self.seconds = int(seconds)
        self.cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % self.seconds,
                    "--timeout", "%ds" % timeout_s, "-s",
                    os.path.join(ROOT, "tests", "drills", script),
                    "http://127.0.0.1:%d%s" % (NGINX_PORT, path)]
        self.env = dict(os.environ, HEX_DRILL_WRK_TOKEN=token)
        self.proc = None
        self.output = ""
        self.per_second = {}
        self.statuses = {}
        self.summary = {}

    def start(self):
        if shutil.which("wrk") is None:
            raise DrillFailed("wrk is not installed (scripts/lib.sh installs it)")
        # wrk runs on without a script it cannot load (one line on stderr, exit 0).
        if not os.path.isfile(self.cmd[-2]):
            raise DrillFailed("wrk script %s is missing" % self.cmd[-2])
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        say("wrk: %s" % " ".join(self.cmd[:-2] + [os.path.basename(self.cmd[-2]),
                                                  self.cmd[-1]]))
        return self

    def finish(self):
        """Waits for wrk (its -d and a margin) and parses its report; DrillFailed when wrk
        failed or printed no summary."""
        try:
            self.output, _ = self.proc.communicate(timeout=self.seconds + 60)
        except subprocess.TimeoutExpired:
            self.stop()
            raise DrillFailed("wrk still running %ds after its %ds" % (60, self.seconds))
        for line in self.output.splitlines():
            word, _, rest = line.partition(" ")
            kv = dict(p.split("=", 1) for p in rest.split() if "=" in p)
            if word == "WRK_SECOND":
                self.per_second[int(kv["t"])] = (int(kv["ok"]), int(kv["bad"]))
            elif word == "WRK_STATUS":
                self.statuses[int(kv["code"])] = int(kv["n"])
            elif word == "WRK_SUMMARY":
                self.summary = {k: int(v) for k, v in kv.items()}
        if self.proc.returncode != 0 or not self.summary:
            # One line: run.sh shows only the first line of a drill's failure.
            raise DrillFailed("wrk exit %d, no WRK_SUMMARY line; its output: %s" %
                              (self.proc.returncode,
                               " | ".join(self.output.strip().splitlines())[-2000:]))
        return self

    def stop(self):
        """Ends a wrk still running (a drill that failed half way); no-op otherwise."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def socket_errors(self):
        s = self.summary
        return s["connect"] + s["read"] + s["write"] + s["timeout"]

    def bad_seconds(self):
        """The seconds with at least one non-2xx answer, ascending."""
        return sorted(t for t, (_, bad) in self.per_second.items() if bad)
