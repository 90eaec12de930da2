#!/usr/bin/env python3
"""fake_stripe: a local stand-in for Stripe's API, for hexd's tests (stdlib only).

    python3 tests/fakes/fake_stripe.py --port N [--control-port M] [--secret-key KEY]

Serves, on 127.0.0.1 only:
  POST /v1/payment_intents          create (form-encoded, like Stripe)
  POST /v1/checkout/sessions        create
  GET  /v1/payment_intents/:id      retrieve
with JSON shaped like Stripe's own fixture objects (fixtures3.json: the full set next to
the repository when present, else the copy in tests/fixtures/stripe/).

It checks the wire format hexd must send, answering 400/401 with Stripe's error JSON when
something is wrong: `Authorization: Bearer <secret key>`, `Stripe-Version` (the pinned
one), `Idempotency-Key` on every POST (Stripe makes it optional; hexd always sends it),
`Content-Type: application/x-www-form-urlencoded` with strict percent-encoding, known
parameters only, required ones present and valid.

Idempotency like Stripe: a POST whose key was seen with the same endpoint and the same
parameters gets the first answer again, byte for byte, with `Idempotent-Replayed: true`;
the same key with other parameters is a 400 idempotency_error. Only requests that ran are
saved (a failure injected below, or a validation error, is not).

Control (on the API port, and on --control-port when given):
  POST /__control  JSON object, any of
      "reset": true                 forget every object, key, stat and setting
      "fail_next": [500, 429, {"status": 400, "type": "...", "code": "...",
                    "message": "...", "param": "...", "should_retry": false,
                    "raw_body": "<html>..."}, ...]
                                    the next API requests fail so, one entry each,
                                    before anything runs (nothing is created);
                                    raw_body replaces the error JSON (any status)
      "hangup_next": N              the next N API requests get the connection closed
                                    without an answer, before anything runs
      "delay_next": [ms, ...]       the next API requests run, then wait ms before
                                    answering (a client timing out has still created)
      "delay_ms": ms                every API request waits so long (0 to stop)
      "should_retry": true|false|null   Stripe-Should-Retry on injected failures
      "set_intent_status": {"id": "pi_...", "status": "succeeded"}
      "complete_session": "cs_..."  pays a Checkout Session: its intent now exists
  GET /__stats  {"requests", "intents_created", "sessions_created", "replays",
                 "by_key": {key: requests}, "by_path": {"POST /v1/...": requests},
                 "last_request": {"method", "path", "headers", "body", "params"}}

Prints `fake_stripe port=<port> control_port=<port>` once listening (a port of 0 picks a
free one); exits 0 on SIGTERM or SIGINT.
"""

import argparse
import copy
import json
import os
import random
import signal
import string
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DEFAULT_SECRET_KEY = "sk_test_hexfake_4eC39HqLyjWDarjtT1zdp7dc"
STRIPE_VERSION = "2024-06-20"
BODY_MAX = 1024 * 1024
AMOUNT_MAX = 99999999
CURRENCIES = {
    "usd", "eur", "gbp", "jpy", "chf", "cad", "aud", "nzd", "sek", "nok", "dkk", "pln",
    "czk", "huf", "sgd", "hkd", "mxn", "brl", "inr",
}
METADATA_KEYS_MAX = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_PATHS = [
    ROOT.parent / "shared" / "fixtures" / "stripe" / "fixtures3.json",
    ROOT / "tests" / "fixtures" / "stripe" / "fixtures3.json",
]


def load_fixtures():
    for path in FIXTURE_PATHS:
        if path.is_file():
            with open(path, encoding="utf-8") as f:
                return json.load(f)["resources"]
    raise SystemExit("fake_stripe: no fixtures3.json in " + ", ".join(map(str, FIXTURE_PATHS)))


def random_token(n):
    alphabet = string.ascii_letters + string.digits
    return "".join(random.choice(alphabet) for _ in range(n))


class StripeError(Exception):
    """An answer in Stripe's error shape."""

    def __init__(self, status, type_, message, code=None, param=None, headers=None):
        super().__init__(message)
        self.status = status
        self.body = {"type": type_, "message": message}
        if code is not None:
            self.body["code"] = code
        if param is not None:
            self.body["param"] = param
        self.headers = headers or {}


def invalid(message, param=None, code=None, status=400):
    return StripeError(status, "invalid_request_error", message, code=code, param=param)


def parse_form(body):
    """application/x-www-form-urlencoded, strictly: every pair has '=', every '%' two hex
    digits, UTF-8 text, no key twice. Returns {key: value}."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise invalid("fake_stripe: the form body has bytes outside ASCII (not encoded)")
    params = {}
    if text == "":
        return params
    for pair in text.split("&"):
        if "=" not in pair:
            raise invalid("fake_stripe: form element without '=': %r" % pair[:80])
        raw_key, raw_value = pair.split("=", 1)
        key, value = percent_decode(raw_key), percent_decode(raw_value)
        if key == "":
            raise invalid("fake_stripe: form element without a key")
        if key in params:
            raise invalid("fake_stripe: parameter %r sent twice" % key, param=key)
        params[key] = value
    return params


def percent_decode(s):
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "%":
            h = s[i + 1:i + 3]
            if len(h) != 2 or any(x not in string.hexdigits for x in h):
                raise invalid("fake_stripe: bad percent-encoding in %r" % s[:80])
            out.append(int(h, 16))
            i += 3
            continue
        if c == "+":
            out.append(0x20)
        elif c.isalnum() or c in "-._~[]":
            out.append(ord(c))
        else:
            raise invalid("fake_stripe: %r must be percent-encoded in %r" % (c, s[:80]))
        i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("fake_stripe: percent-encoded bytes are not UTF-8 in %r" % s[:80])


def parse_amount(params, key):
    value = params.get(key)
    if value is None:
        raise invalid("Missing required param: %s." % key, param=key, code="parameter_missing")
    if not value.isdigit() or int(value) < 1:
        raise invalid("Invalid integer: %s" % value, param=key, code="parameter_invalid_integer")
    if int(value) > AMOUNT_MAX:
        raise invalid("Amount must be no more than $999,999.99", param=key,
                      code="amount_too_large")
    return int(value)


def parse_currency(params, key):
    value = params.get(key)
    if value is None:
        raise invalid("Missing required param: %s." % key, param=key, code="parameter_missing")
    if value not in CURRENCIES:
        raise invalid("Invalid currency: %s. Stripe currently supports these currencies: %s"
                      % (value, ", ".join(sorted(CURRENCIES))), param=key)
    return value


def take_metadata(params, prefix, used):
    """Collects prefix[key]=value parameters into a dict, checking Stripe's limits."""
    meta = {}
    for key, value in params.items():
        if not key.startswith(prefix + "[") or not key.endswith("]"):
            continue
        name = key[len(prefix) + 1:-1]
        if name == "" or "[" in name or "]" in name or len(name) > METADATA_KEY_MAX:
            raise invalid("Invalid metadata key: %r" % name, param=key)
        if len(value) > METADATA_VALUE_MAX:
            raise invalid("Metadata values can have up to 500 characters", param=key)
        meta[name] = value
        used.add(key)
    if len(meta) > METADATA_KEYS_MAX:
        raise invalid("Metadata can have up to 50 keys", param=prefix)
    return meta


def refuse_unknown(params, used):
    for key in params:
        if key not in used:
            raise invalid("Received unknown parameter: %s" % key, param=key)


class FakeStripe:
    """The state and behaviour; HTTP handling is in Handler."""

    def __init__(self, secret_key=DEFAULT_SECRET_KEY, verbose=False):
        self.secret_key = secret_key
        self.verbose = verbose
        self.fixtures = load_fixtures()
        self.lock = threading.Lock()
        self.servers = []
        self.reset()

    def reset(self):
        self.intents = {}
        self.sessions = {}
        self.idempotency = {}
        self.fail_next = []
        self.hangup_next = 0
        self.delay_next = []
        self.delay_ms = 0
        self.should_retry = None
        self.stats = {
            "requests": 0, "intents_created": 0, "sessions_created": 0, "replays": 0,
            "by_key": {}, "by_path": {}, "last_request": None,
        }

    # --- control -------------------------------------------------------------------------

    def control(self, doc):
        if not isinstance(doc, dict):
            raise invalid("fake_stripe: the control body must be a JSON object")
        with self.lock:
            if doc.get("reset"):
                self.reset()
            if "fail_next" in doc:
                self.fail_next.extend(self.failure(x) for x in doc["fail_next"])
            if "hangup_next" in doc:
                self.hangup_next += int(doc["hangup_next"])
            if "delay_next" in doc:
                self.delay_next.extend(int(x) for x in doc["delay_next"])
            if "delay_ms" in doc:
                self.delay_ms = int(doc["delay_ms"])
            if "should_retry" in doc:
                self.should_retry = doc["should_retry"]
            if "set_intent_status" in doc:
                req = doc["set_intent_status"]
                pi = self.intents.get(req.get("id"))
                if pi is None:
                    raise invalid("fake_stripe: no intent %r" % req.get("id"), status=404)
                pi["status"] = req["status"]
                if req["status"] == "succeeded":
                    pi["amount_received"] = pi["amount"]
            if "complete_session" in doc:
                self.complete_session(doc["complete_session"])

    @staticmethod
    def failure(entry):
        if isinstance(entry, int):
            entry = {"status": entry}
        status = int(entry["status"])
        defaults = {
            400: ("invalid_request_error", None, "fake_stripe: injected invalid request"),
            401: ("invalid_request_error", None, "Invalid API Key provided: sk_test_****"),
            402: ("card_error", "card_declined", "Your card was declined."),
            403: ("permission_error", None, "The provided key does not have access."),
            404: ("invalid_request_error", "resource_missing", "No such object."),
            409: ("invalid_request_error", "lock_timeout",
                  "This object cannot be accessed right now because another API request "
                  "or Stripe process is currently accessing it."),
            429: ("rate_limit_error", "rate_limit", "Too many requests hit the API too quickly."),
        }
        type_, code, message = defaults.get(
            status, ("api_error", None, "fake_stripe: injected server error"))
        return {
            "status": status,
            "type": entry.get("type", type_),
            "code": entry.get("code", code),
            "message": entry.get("message", message),
            "param": entry.get("param"),
            "should_retry": entry.get("should_retry", "unset"),
            "raw_body": entry.get("raw_body"),
        }

    def stats_json(self):
        with self.lock:
            return json.dumps(self.stats)

    # --- the API ---------------------------------------------------------------------------

    def before_running(self, method, path, headers, body):
        """Counts the request and returns what to inject: ("hangup"|"fail", detail)|None."""
        key = headers.get("idempotency-key")
        with self.lock:
            s = self.stats
            s["requests"] += 1
            route = "%s %s" % (method, path)
            s["by_path"][route] = s["by_path"].get(route, 0) + 1
            if key is not None:
                s["by_key"][key] = s["by_key"].get(key, 0) + 1
            try:
                params = parse_form(body) if method == "POST" else {}
            except StripeError:
                params = None
            s["last_request"] = {
                "method": method, "path": path, "headers": headers,
                "body": body.decode("utf-8", "replace"), "params": params,
            }
            if self.hangup_next > 0:
                self.hangup_next -= 1
                return ("hangup", None)
            if self.fail_next:
                return ("fail", self.fail_next.pop(0))
            return None

    def injected_error(self, f):
        headers = {}
        should_retry = f["should_retry"] if f["should_retry"] != "unset" else self.should_retry
        if should_retry is not None:
            headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
        return StripeError(f["status"], f["type"], f["message"], code=f["code"],
                           param=f["param"], headers=headers)

    def next_delay_ms(self):
        with self.lock:
            if self.delay_next:
                return self.delay_next.pop(0)
            return self.delay_ms

    def check_wire(self, method, headers):
        auth = headers.get("authorization")
        if auth is None:
            raise invalid("You did not provide an API key. You need to provide your API key "
                          "in the Authorization header, using Bearer auth.", status=401)
        if not auth.startswith("Bearer ") or auth[len("Bearer "):] != self.secret_key:
            raise invalid("Invalid API Key provided: %s****" % auth[7:15], status=401)
        version = headers.get("stripe-version")
        if version != STRIPE_VERSION:
            raise invalid("fake_stripe: Stripe-Version must be %s, got %r"
                          % (STRIPE_VERSION, version))
        if method == "POST":
            key = headers.get("idempotency-key")
            if not key:
                raise invalid("fake_stripe: Idempotency-Key is required on every POST")
            if len(key) > 255:
                raise invalid("Idempotency-Key must be at most 255 characters")
            ctype = headers.get("content-type", "")
            if ctype.split(";")[0].strip() != "application/x-www-form-urlencoded":
                raise invalid("fake_stripe: Content-Type must be "
                              "application/x-www-form-urlencoded, got %r" % ctype)

    def handle_api(self, method, path, headers, body):
        """Returns (status, body bytes, extra headers) for a checked request."""
        self.check_wire(method, headers)
        if method == "POST" and path in ("/v1/payment_intents", "/v1/checkout/sessions"):
            params = parse_form(body)
            key = headers["idempotency-key"]
            with self.lock:
                seen = self.idempotency.get(key)
                if seen is not None:
                    if seen["route"] != path or seen["params"] != params:
                        raise StripeError(
                            400, "idempotency_error",
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with. Try using a key other "
                            "than '%s' if you meant to execute a different request." % key)
                    self.stats["replays"] += 1
                    return seen["status"], seen["body"], {"Idempotent-Replayed": "true"}
                if path == "/v1/payment_intents":
                    obj = self.create_intent(params)
                else:
                    obj = self.create_session(params)
                data = json.dumps(obj, indent=2).encode()
                self.idempotency[key] = {"route": path, "params": params, "status": 200,
                                         "body": data}
                return 200, data, {}
        prefix = "/v1/payment_intents/"
        if method == "GET" and path.startswith(prefix) and "/" not in path[len(prefix):]:
            pid = path[len(prefix):]
            with self.lock:
                obj = self.intents.get(pid)
                if obj is None:
                    raise invalid("No such payment_intent: '%s'" % pid, param="intent",
                                  code="resource_missing", status=404)
                return 200, json.dumps(obj, indent=2).encode(), {}
        raise invalid("Unrecognized request URL (%s: %s). Please see https://stripe.com/docs "
                      "or we can help at https://support.stripe.com/." % (method, path),
                      status=404)

    def new_intent(self, amount, currency, metadata, status="requires_payment_method"):
        pi = copy.deepcopy(self.fixtures["payment_intent"])
        pid = "pi_" + random_token(24)
        pi.update({
            "id": pid, "amount": amount, "currency": currency, "metadata": metadata,
            "client_secret": pid + "_secret_" + random_token(25), "status": status,
            "amount_received": amount if status == "succeeded" else 0,
            "created": int(time.time()), "automatic_payment_methods": {"enabled": True},
            "canceled_at": None, "last_payment_error": None, "next_action": None,
            "processing": None, "transfer_data": None, "latest_charge": None,
        })
        self.intents[pid] = pi
        self.stats["intents_created"] += 1
        return pi

    def create_intent(self, params):
        used = {"amount", "currency", "automatic_payment_methods[enabled]", "description"}
        amount = parse_amount(params, "amount")
        currency = parse_currency(params, "currency")
        apm = params.get("automatic_payment_methods[enabled]")
        if apm not in (None, "true", "false"):
            raise invalid("Invalid boolean: %s" % apm, param="automatic_payment_methods[enabled]")
        metadata = take_metadata(params, "metadata", used)
        refuse_unknown(params, used)
        return self.new_intent(amount, currency, metadata)

    def create_session(self, params):
        used = {"mode", "success_url", "cancel_url", "client_reference_id", "customer_email"}
        if params.get("mode") not in ("payment", "setup", "subscription"):
            raise invalid("Invalid mode: must be one of payment, setup, or subscription",
                          param="mode")
        for key in ("success_url", "cancel_url"):
            url = params.get(key)
            if url is None and key == "success_url":
                raise invalid("Missing required param: success_url.", param=key,
                              code="parameter_missing")
            if url is not None and not url.startswith(("http://", "https://")):
                raise invalid("Not a valid URL", param=key, code="url_invalid")
        if len(params.get("client_reference_id", "")) > 200:
            raise invalid("client_reference_id is too long", param="client_reference_id")
        items = []
        i = 0
        while any(k.startswith("line_items[%d]" % i) for k in params):
            p = "line_items[%d]" % i
            names = [p + "[price_data][currency]", p + "[price_data][unit_amount]",
                     p + "[price_data][product_data][name]", p + "[quantity]"]
            for name in names:
                if name not in params:
                    raise invalid("Missing required param: %s." % name, param=name,
                                  code="parameter_missing")
            used.update(names)
            items.append({
                "currency": parse_currency(params, names[0]),
                "unit_amount": parse_amount(params, names[1]),
                "name": params[names[2]],
                "quantity": parse_amount(params, names[3]),
            })
            i += 1
        if not items:
            raise invalid("Missing required param: line_items.", param="line_items",
                          code="parameter_missing")
        if len({it["currency"] for it in items}) != 1:
            raise invalid("All line items must use the same currency", param="line_items")
        metadata = take_metadata(params, "metadata", used)
        intent_metadata = take_metadata(params, "payment_intent_data[metadata]", used)
        refuse_unknown(params, used)

        cs = copy.deepcopy(self.fixtures["checkout.session"])
        sid = "cs_test_" + random_token(58)
        total = sum(it["unit_amount"] * it["quantity"] for it in items)
        now = int(time.time())
        cs.update({
            "id": sid, "url": "https://checkout.stripe.com/c/pay/" + sid,
            "mode": params["mode"], "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "metadata": metadata, "currency": items[0]["currency"],
            "amount_subtotal": total, "amount_total": total, "status": "open",
            "payment_status": "unpaid", "payment_intent": None, "created": now,
            "expires_at": now + 86400,
        })
        self.sessions[sid] = {"object": cs, "intent_metadata": intent_metadata}
        self.stats["sessions_created"] += 1
        return cs

    def complete_session(self, sid):
        entry = self.sessions.get(sid)
        if entry is None:
            raise invalid("fake_stripe: no session %r" % sid, status=404)
        cs = entry["object"]
        if cs["payment_intent"] is None:
            pi = self.new_intent(cs["amount_total"], cs["currency"], entry["intent_metadata"],
                                 status="succeeded")
            cs.update({"payment_intent": pi["id"], "status": "complete",
                       "payment_status": "paid"})

    # --- serving ---------------------------------------------------------------------------

    def listen(self, port, control_only=False):
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        server.fake = self
        server.control_only = control_only
        self.servers.append(server)
        return server

    def start(self, port=0, control_port=None):
        """Serves in background threads (for Python tests); returns the API port."""
        api = self.listen(port)
        threading.Thread(target=api.serve_forever, daemon=True).start()
        if control_port is not None:
            ctl = self.listen(control_port, control_only=True)
            threading.Thread(target=ctl.serve_forever, daemon=True).start()
        return api.server_address[1]

    def stop(self):
        for server in self.servers:
            server.shutdown()
            server.server_close()
        self.servers = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server_version = "fake_stripe"
    sys_version = ""

    def version_string(self):
        return "fake_stripe"

    def log_message(self, fmt, *args):
        if self.server.fake.verbose:
            sys.stderr.write("fake_stripe: %s\n" % (fmt % args))

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def read_body(self):
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):
                raise invalid("fake_stripe: send a Content-Length, not a chunked body")
            return b""
        if not length.isdigit() or int(length) > BODY_MAX:
            raise invalid("fake_stripe: bad Content-Length", status=413)
        return self.rfile.read(int(length))

    def dispatch(self, method):
        fake = self.server.fake
        path = self.path.split("?", 1)[0]
        try:
            body = self.read_body()
        except StripeError as e:
            self.close_connection = True
            return self.send_error_json(e)
        if path == "/__control" and method == "POST":
            try:
                fake.control(json.loads(body or b"{}"))
            except StripeError as e:
                return self.send_error_json(e)
            except (ValueError, KeyError, TypeError) as e:
                return self.send_error_json(invalid("fake_stripe: bad control: %s" % e))
            return self.send_json(200, b'{"ok": true}')
        if path == "/__stats" and method == "GET":
            return self.send_json(200, fake.stats_json().encode())
        if self.server.control_only:
            return self.send_error_json(invalid("fake_stripe: control port", status=404))

        headers = {k.lower(): v for k, v in self.headers.items()}
        injected = fake.before_running(method, path, headers, body)
        if injected is not None and injected[0] == "hangup":
            self.close_connection = True
            return
        try:
            if injected is not None:
                error = fake.injected_error(injected[1])
                if injected[1]["raw_body"] is not None:
                    raw = injected[1]["raw_body"].encode()
                    return self.send_json(error.status, raw, error.headers)
                raise error
            status, data, extra = fake.handle_api(method, path, headers, body)
        except StripeError as e:
            return self.send_error_json(e)
        delay = fake.next_delay_ms()
        if delay > 0:
            time.sleep(delay / 1000.0)
        self.send_json(status, data, extra)

    def send_error_json(self, e):
        self.send_json(e.status, json.dumps({"error": e.body}, indent=2).encode(), e.headers)

    def send_json(self, status, data, extra=None):
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", "req_" + random_token(14))
            self.send_header("Stripe-Version", STRIPE_VERSION)
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout): what ran stays run, as at Stripe.
            self.close_connection = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True, help="API port (0: any free one)")
    ap.add_argument("--control-port", type=int, help="also serve /__control, /__stats here")
    ap.add_argument("--secret-key", default=os.environ.get("FAKE_STRIPE_SECRET_KEY",
                                                           DEFAULT_SECRET_KEY))
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args()

    fake = FakeStripe(secret_key=args.secret_key, verbose=args.verbose)
    try:
        api = fake.listen(args.port)
        ctl = fake.listen(args.control_port, True) if args.control_port is not None else None
    except OSError as e:
        sys.stderr.write("fake_stripe: cannot listen: %s\n" % e)
        return 3
    if ctl is not None:
        threading.Thread(target=ctl.serve_forever, daemon=True).start()

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("fake_stripe port=%d control_port=%d" % (
        api.server_address[1], ctl.server_address[1] if ctl is not None else 0), flush=True)
    try:
        api.serve_forever()
    finally:
        api.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
