#!/usr/bin/env python3
"""webhook_events: signed Stripe `payment_intent.succeeded` events for the webhook case of
tests/bench/run.sh (stdlib only; wrk's Lua has no HMAC-SHA256, so they are made here).

    webhook_events.py --secret WHSEC [--first F] --count N --files K --prefix PATH

Writes K files PATH.0 ... PATH.<K-1> (one per wrk thread, so no two threads send the same
event) holding events F ... F+N-1, event i going to file (i - F) % K. Each line is `<Stripe-Signature>\\t<body>`: the
header Stripe would send (`t=<now>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`) and the
event as compact JSON (no tab, no newline). Event i is `evt_bench_<i>` about the
PaymentIntent `pi_bench_<i>` of the payment run.sh seeded with the id
md5('bench-pay-<i>')::uuid, named in metadata.payment_id as hexd's own intents do; the
PaymentIntent object is Stripe's fixture (tests/fixtures/stripe/fixtures3.json), so the
body has the size of a real one. Signed now: run it right before the load (hexd accepts
300 s of skew by default).
"""

import argparse
import hashlib
import hmac
import json
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "stripe" / "fixtures3.json"


def payment_id(i):
    """The uuid PostgreSQL gives md5('bench-pay-<i>')::uuid."""
    return str(uuid.UUID(hashlib.md5(b"bench-pay-%d" % i).hexdigest()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--secret", required=True, help="the webhook signing secret")
    ap.add_argument("--first", type=int, default=0, help="number of the first event")
    ap.add_argument("--count", type=int, required=True, help="events in all")
    ap.add_argument("--files", type=int, required=True, help="files (wrk threads)")
    ap.add_argument("--prefix", required=True, help="output files are PREFIX.<n>")
    ap.add_argument("--amount", type=int, default=1000, help="the seeded payments' amount")
    args = ap.parse_args()
    if args.first < 0 or args.count < 1 or args.files < 1:
        ap.error("--count and --files must be at least 1, --first at least 0")

    with open(FIXTURES, encoding="utf-8") as f:
        fixtures = json.load(f)["resources"]
    intent = fixtures["payment_intent"]
    event = fixtures["event"]
    key = args.secret.encode()
    now = int(time.time())
    outs = [open("%s.%d" % (args.prefix, n), "wb") for n in range(args.files)]
    try:
        for i in range(args.first, args.first + args.count):
            obj = dict(intent)
            obj.update({
                "id": "pi_bench_%d" % i, "amount": args.amount,
                "amount_received": args.amount, "currency": "usd", "status": "succeeded",
                "client_secret": "pi_bench_%d_secret_bench" % i, "canceled_at": None,
                "last_payment_error": None, "next_action": None, "processing": None,
                "metadata": {"payment_id": payment_id(i)}, "created": now,
            })
            ev = dict(event)
            ev.update({
                "id": "evt_bench_%d" % i, "type": "payment_intent.succeeded",
                "api_version": "2024-06-20", "created": now, "data": {"object": obj},
            })
            body = json.dumps(ev, separators=(",", ":")).encode()
            mac = hmac.new(key, b"%d." % now + body, hashlib.sha256).hexdigest()
            outs[(i - args.first) % args.files].write(b"t=%d,v1=%s\t%s\n" % (now, mac.encode(), body))
    finally:
        for out in outs:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
