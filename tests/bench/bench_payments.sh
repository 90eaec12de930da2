# shellcheck shell=bash
# bench_payments.sh: what the payment cases (issue 4) need besides hexd: the payments
# the webhook events are about (seeded in SQL), the signed events themselves
# (webhook_events.py), the checks that every event accepted was stored with its effects,
# and the fake Stripe (tests/fakes/fake_stripe.py) that answers slowly.
# Sourced by run.sh, never run.

BENCH_STRIPE_KEY=sk_test_bench
BENCH_STRIPE_DELAY_MS=2000

# Payments 0 ... BENCH_WEBHOOK_EVENTS (one more than the load sends: the last one is for
# the check before it), 'processing' as after hexd's call to Stripe, each with the
# PaymentIntent pi_bench_<i> and the id webhook_events.py names in metadata.payment_id.
bench_seed_payments() {
	hex_say "seeding $((BENCH_WEBHOOK_EVENTS + 1)) processing payments in SQL for the webhook events"
	bench_psql "$BENCH_DB" "
		INSERT INTO payments (id, user_id, amount, currency, purpose, status,
		                      stripe_idempotency_key, stripe_payment_intent_id)
		SELECT md5('bench-pay-' || i)::uuid, '$BENCH_READER_ID', 1000, 'usd', 'wallet_top_up',
		       'processing', 'bench-seed-' || i, 'pi_bench_' || i
		FROM generate_series(0, $BENCH_WEBHOOK_EVENTS) AS i"
}

# bench_make_events PREFIX FIRST COUNT FILES: signed events FIRST ... FIRST+COUNT-1 into
# PREFIX.0 ... PREFIX.<FILES-1>, signed now.
bench_make_events() {
	python3 "$BENCH_DIR/webhook_events.py" --secret "$BENCH_WEBHOOK_SECRET" --prefix "$1" \
		--first "$2" --count "$3" --files "$4" 9>&- ||
		hex_die "webhook_events.py failed"
}

# One event (the spare payment's) through curl first: 200, not a duplicate, and the
# payment it names is now succeeded. A wrong secret or a changed event format would
# otherwise only show up as wrk's non-2xx count.
bench_check_webhook() {
	local url=$1 prefix=$BENCH_TMP/webhook-check line status
	bench_make_events "$prefix" "$BENCH_WEBHOOK_EVENTS" 1 1
	line=$(<"$prefix.0")
	API_STATUS=$(curl -sS -o "$BENCH_TMP/api-reply" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/json; charset=utf-8' \
		-H "Stripe-Signature: ${line%%$'\t'*}" --data-binary "${line#*$'\t'}" "$url") ||
		API_STATUS=000
	API_BODY=$(cat "$BENCH_TMP/api-reply" 2>/dev/null || true)
	bench_expect 200 "POST /v2/stripe/webhook (one signed event)"
	case $API_BODY in *'"duplicate": false'* | *'"duplicate":false'*) ;;
	*) hex_die "the first webhook event was not taken as new: $API_BODY" ;;
	esac
	status=$(bench_psql_value "$BENCH_DB" "SELECT status FROM payments
		WHERE id = md5('bench-pay-$BENCH_WEBHOOK_EVENTS')::uuid")
	[ "$status" = succeeded ] ||
		hex_die "after its payment_intent.succeeded event, the payment is '$status'"
}

# After the webhook load: every event wrk got a 2xx for is one stored event, one
# succeeded payment and one outbox row (events answered after wrk stopped counting may
# add a few). Sets RES[w.stored] and RES[w.duplicates] (replies for events sent a second
# time because the files ran out: the run needs a larger HEX_BENCH_WEBHOOK_EVENTS).
bench_count_webhook_effects() {
	local name=$1 ok stored succeeded outbox
	ok=$((${RES[$name.requests]} - ${RES[$name.non2xx]}))
	read -r stored succeeded outbox < <(bench_psql_value "$BENCH_DB" "
		SELECT (SELECT count(*) FROM stripe_events WHERE id LIKE 'evt_bench_%') - 1,
		       (SELECT count(*) FROM payments WHERE status = 'succeeded'
		                                        AND stripe_payment_intent_id LIKE 'pi_bench_%') - 1,
		       (SELECT count(*) FROM outbox WHERE event_id LIKE 'evt_bench_%') - 1" | tr '|' ' ')
	[ "$succeeded" = "$stored" ] && [ "$outbox" = "$stored" ] ||
		hex_die "webhook events stored: $stored, payments succeeded: $succeeded, outbox rows: $outbox (all three should match)"
	RES[$name.stored]=$stored
	RES[$name.duplicates]=$((ok > stored ? ok - stored : 0))
	if [ "${RES[$name.duplicates]}" -gt 0 ]; then
		hex_say "warning: wrk sent ${RES[$name.duplicates]} webhook events twice (raise HEX_BENCH_WEBHOOK_EVENTS)"
	fi
}

# bench_count_payments CASE INTENTS: after the payments load and the queue drained, each
# payment wrk got a 201 for is a row with its client key (run.sh's keys start with
# "bench-"), and each such row that reached Stripe is one intent the fake created:
# INTENTS, as counted by the fake. Sets RES[CASE.stored] and RES[CASE.intents].
bench_count_payments() {
	local name=$1 intents=$2 ok stored charged
	ok=$((${RES[$name.requests]} - ${RES[$name.non2xx]}))
	read -r stored charged < <(bench_psql_value "$BENCH_DB" "
		SELECT count(*), count(stripe_payment_intent_id) FROM payments
		WHERE client_key LIKE 'bench-%'" | tr '|' ' ')
	[ "$stored" -ge "$ok" ] ||
		hex_die "wrk got $ok replies 201 to POST /v2/payments, hexd stored $stored payments"
	[ "$charged" = "$intents" ] ||
		hex_die "$charged payments have a PaymentIntent, the fake Stripe created $intents"
	RES[$name.stored]=$stored
	RES[$name.intents]=$intents
}

# ---------------------------------------------------------------- the fake Stripe

bench_fake_stripe_stop() {
	local pid=${BENCH_FAKE_STRIPE_PID:-}
	[ -n "$pid" ] || return 0
	BENCH_FAKE_STRIPE_PID=
	bench_pid_alive "$pid" || return 0
	hex_say "stopping the fake Stripe (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	bench_wait_pid_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

bench_fake_stripe_stats() {
	curl -sf "http://127.0.0.1:$1/__stats"
}

# bench_fake_stripe_start PORT: tests/fakes/fake_stripe.py on 127.0.0.1:PORT with key
# BENCH_STRIPE_KEY, told to hold every answer BENCH_STRIPE_DELAY_MS.
bench_fake_stripe_start() {
	local port=$1 log=$BENCH_TMP/fake-stripe.log
	hex_say "starting the fake Stripe on 127.0.0.1:$port (answers after ${BENCH_STRIPE_DELAY_MS} ms)"
	python3 "$HEX_ROOT/tests/fakes/fake_stripe.py" --port "$port" \
		--secret-key "$BENCH_STRIPE_KEY" >"$log" 2>&1 9>&- &
	BENCH_FAKE_STRIPE_PID=$!
	hex_at_exit bench_fake_stripe_stop
	if ! hex_wait_until 20 bench_fake_stripe_stats "$port"; then
		hex_show_log_tail "$log"
		hex_die "the fake Stripe did not start on 127.0.0.1:$port"
	fi
	curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
		--data-binary "{\"delay_ms\": $BENCH_STRIPE_DELAY_MS}" "http://127.0.0.1:$port/__control" ||
		hex_die "the fake Stripe refused its delay setting"
}

# bench_fake_stripe_value PORT KEY: a top-level number of the fake's /__stats.
bench_fake_stripe_value() {
	bench_fake_stripe_stats "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# After the payments load stops, hexd still works through the payments queued for its
# gateway threads, each call held 2 s by the fake. Quiet means no new call for longer
# than one answer takes, then one answer's time for the last calls to return.
bench_fake_stripe_wait_quiet() {
	local port=$1 timeout=${2:-60} before after quiet=0 started=$SECONDS
	local window=$(((BENCH_STRIPE_DELAY_MS + 999) / 1000 + 1))
	before=$(bench_fake_stripe_value "$port" requests)
	while [ "$quiet" -lt "$window" ]; do
		sleep 1
		after=$(bench_fake_stripe_value "$port" requests)
		if [ "$after" = "$before" ]; then
			quiet=$((quiet + 1))
		else
			quiet=0
			before=$after
		fi
		if [ $((SECONDS - started)) -ge "$timeout" ]; then
			hex_say "warning: hexd still calls the fake Stripe after ${timeout}s"
			return 0
		fi
	done
	sleep "$(((BENCH_STRIPE_DELAY_MS + 999) / 1000))"
}
