# shellcheck shell=bash
# bench_ledger.sh: the ledger cases (issue 5). t: wallet transfers between many users,
# signed up and logged in through the API and funded in SQL the way a top-up posts, then
# checked: every 201 moved money exactly once and the books still balance. And the event
# pipeline's end-to-end latency (webhook received -> ledger posted) for the events of
# the w load. Also PostgreSQL's side of the write cases: its CPU use (the postmaster and
# every child, those that exited during the case included) and the states and wait
# events of the measured clients' backends, sampled: where a write spends its time.
# Sourced by run.sh, never run.

# Each transfer user's top-up, in cents (10,000.00 usd): transfers of 1 never run dry.
BENCH_TRANSFER_FUND=1000000
# wrk threads of the t case; transfer.lua gives each its own share of the users.
BENCH_TRANSFER_THREADS=2
BENCH_TRANSFER_CURRENCY=usd

# bench_curl_json METHOD URL TOKEN [KEY] [JSON]: like bench_api, with an Idempotency-Key.
bench_curl_json() {
	local method=$1 url=$2 token=$3 key=${4:-} json=${5:-} out=$BENCH_TMP/api-reply
	local args=(-sS -o "$out" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $token")
	[ -n "$key" ] && args+=(-H "Idempotency-Key: $key")
	[ -n "$json" ] && args+=(-H 'Content-Type: application/json' --data-binary "$json")
	API_STATUS=$(curl "${args[@]}" "$url") || API_STATUS=000
	API_BODY=$(cat "$out" 2>/dev/null || true)
}

# bench_seed_transfer_users API: BENCH_TRANSFER_USERS users (bench-transfer-<i>), signed up
# and logged in through the API like the login users; "<id>\t<access token>" per line in
# BENCH_TRANSFER_FILE, which transfer.lua reads.
bench_seed_transfer_users() {
	local api=$1 i id token started=$SECONDS
	BENCH_TRANSFER_FILE=$BENCH_TMP/transfer-users
	: >"$BENCH_TRANSFER_FILE"
	hex_say "seeding through the API: $BENCH_TRANSFER_USERS transfer users (sign-up and login each)"
	for ((i = 0; i < BENCH_TRANSFER_USERS; i++)); do
		bench_api POST "$api/v1/users" "$(bench_credentials "bench-transfer-$i@example.com")"
		bench_expect 201 "POST /v1/users (bench-transfer-$i)"
		id=$(bench_json_field id)
		bench_api POST "$api/v1/login" "$(bench_credentials "bench-transfer-$i@example.com")"
		bench_expect 200 "POST /v1/login (bench-transfer-$i)"
		token=$(bench_json_field access_token)
		[ -n "$id" ] && [ -n "$token" ] ||
			hex_die "bench-transfer-$i: no id or no access_token from the API"
		printf '%s\t%s\n' "$id" "$token" >>"$BENCH_TRANSFER_FILE"
	done
	export BENCH_TRANSFER_FILE BENCH_TRANSFER_THREADS
	hex_say "seeded $BENCH_TRANSFER_USERS transfer users in $((SECONDS - started))s"
}

# One top-up per transfer user, exactly as ledger_service_top_up posts it for a succeeded
# wallet_top_up payment: a succeeded payment row, then one journal transaction keyed and
# referenced 'payment:<payment id>' with two entries, stripe_clearing -X and the user's
# wallet +X. Accounts are made as the ledger makes them (ON CONFLICT DO NOTHING: the
# clearing account may exist already). The database's own triggers move the balances and
# check at commit that every transaction balances; one psql -c is one transaction.
bench_fund_transfer_users() {
	local x=$BENCH_TRANSFER_FUND cur=$BENCH_TRANSFER_CURRENCY n
	hex_say "funding their $cur wallets in SQL: one top-up of $x each"
	bench_psql "$BENCH_DB" "
		CREATE TEMP TABLE fund AS
		SELECT u.id AS user_id, md5('bench-fund-' || u.id)::uuid AS payment_id,
		       gen_random_uuid() AS txn
		FROM users u WHERE u.email LIKE 'bench-transfer-%';
		INSERT INTO payments (id, user_id, amount, currency, purpose, status,
		                      stripe_idempotency_key, stripe_payment_intent_id)
		SELECT payment_id, user_id, $x, '$cur', 'wallet_top_up', 'succeeded',
		       'bench-fund-' || payment_id, 'pi_fund_' || replace(payment_id::text, '-', '')
		FROM fund;
		INSERT INTO accounts (kind, owner_id, currency, allow_negative)
		VALUES ('stripe_clearing', NULL, '$cur', true) ON CONFLICT DO NOTHING;
		INSERT INTO accounts (kind, owner_id, currency, allow_negative)
		SELECT 'wallet', user_id, '$cur', false FROM fund ON CONFLICT DO NOTHING;
		INSERT INTO journal_transactions (id, idempotency_key, reference)
		SELECT txn, 'payment:' || payment_id, 'payment:' || payment_id FROM fund;
		INSERT INTO entries (transaction_id, account_id, amount, currency)
		SELECT f.txn, c.id, -$x, '$cur' FROM fund f
		JOIN accounts c ON c.kind = 'stripe_clearing' AND c.owner_id IS NULL
		                AND c.currency = '$cur'
		UNION ALL
		SELECT f.txn, w.id, $x, '$cur' FROM fund f
		JOIN accounts w ON w.kind = 'wallet' AND w.owner_id = f.user_id AND w.currency = '$cur'"
	n=$(bench_psql_value "$BENCH_DB" "
		SELECT count(*) FROM accounts a JOIN users u ON u.id = a.owner_id
		WHERE u.email LIKE 'bench-transfer-%' AND a.kind = 'wallet' AND a.balance = $x")
	[ "$n" = "$BENCH_TRANSFER_USERS" ] ||
		hex_die "funded $BENCH_TRANSFER_USERS wallets with $x, $n hold it"
}

# bench_wallet_balance TOKEN: the caller's balance in BENCH_TRANSFER_CURRENCY, from
# GET /v2/wallet on A's payments listener.
bench_wallet_balance() {
	bench_curl_json GET "http://127.0.0.1:$A_PAY_PORT/v2/wallet" "$1"
	bench_expect 200 "GET /v2/wallet"
	BENCH_CUR=$BENCH_TRANSFER_CURRENCY python3 -c '
import json, os, sys
d = json.load(sys.stdin)["data"]
print(next((w["balance"] for w in d if w["currency"] == os.environ["BENCH_CUR"]), "none"))' \
		<<<"$API_BODY" 2>/dev/null || echo unreadable
}

# One transfer with curl first, between the pair transfer.lua starts with: 201 with the
# transfer's JSON, and both balances moved by 1 as GET /v2/wallet shows them. A broken
# route, token or funding would otherwise only show up as wrk's non-2xx count.
bench_check_transfer() {
	local url=http://127.0.0.1:$A_PAY_PORT/v2/wallet/transfers share from to
	local from_id from_token to_id to_token a b
	share=$((BENCH_TRANSFER_USERS / BENCH_TRANSFER_THREADS))
	IFS=$'\t' read -r from_id from_token < <(sed -n 1p "$BENCH_TRANSFER_FILE")
	IFS=$'\t' read -r to_id to_token < <(sed -n "$((share / 2 + 1))p" "$BENCH_TRANSFER_FILE")
	bench_curl_json POST "$url" "$from_token" "bench-$BENCH_RUN_ID-check" \
		"{\"to_user_id\":\"$to_id\",\"amount\":1,\"currency\":\"$BENCH_TRANSFER_CURRENCY\"}"
	bench_expect 201 "POST /v2/wallet/transfers (one transfer of 1)"
	from=$(bench_json_field from_user_id)
	to=$(bench_json_field to_user_id)
	[ "$from" = "$from_id" ] && [ "$to" = "$to_id" ] ||
		hex_die "the transfer's reply names other users: $API_BODY"
	a=$(bench_wallet_balance "$from_token")
	b=$(bench_wallet_balance "$to_token")
	[ "$a" = $((BENCH_TRANSFER_FUND - 1)) ] && [ "$b" = $((BENCH_TRANSFER_FUND + 1)) ] ||
		hex_die "after a transfer of 1 the wallets hold $a and $b (funded with $BENCH_TRANSFER_FUND)"
}

bench_transfer_count() {
	bench_psql_value "$BENCH_DB" \
		"SELECT count(*) FROM journal_transactions WHERE reference LIKE 'transfer:%'"
}

# After the t load, die unless the books are right: every transfer transaction is
# 'transfer:<its id>' with two wallet entries, -1 and +1 in one currency; every currency's
# entries sum to 0; no wallet is negative; every balance is the sum of its entries; the
# transfer users together still hold what they were funded with. Then hexd's own
# `hexd ledger verify`, a second opinion from the product.
bench_check_books() {
	local bad
	bad=$(bench_psql_value "$BENCH_DB" "
		SELECT count(*) FROM journal_transactions t
		WHERE t.reference LIKE 'transfer:%' AND (
		    t.reference <> 'transfer:' || t.id
		    OR (SELECT count(*) FROM entries e JOIN accounts a ON a.id = e.account_id
		        WHERE e.transaction_id = t.id AND a.kind = 'wallet') <> 2
		    OR (SELECT count(*) FROM entries e WHERE e.transaction_id = t.id) <> 2
		    OR (SELECT sum(abs(amount)) FROM entries e WHERE e.transaction_id = t.id) <> 2
		    OR (SELECT sum(amount) FROM entries e WHERE e.transaction_id = t.id) <> 0)")
	[ "$bad" = 0 ] || hex_die "$bad transfer transactions are not two wallet entries of -1 and +1"
	bad=$(bench_psql_value "$BENCH_DB" "
		SELECT (SELECT count(*) FROM (SELECT currency FROM entries GROUP BY currency
		                              HAVING sum(amount) <> 0) s)
		    || ' ' || (SELECT count(*) FROM accounts WHERE kind = 'wallet' AND balance < 0)
		    || ' ' || (SELECT count(*) FROM accounts a
		               LEFT JOIN (SELECT account_id, sum(amount) AS total FROM entries
		                          GROUP BY account_id) s ON s.account_id = a.id
		               WHERE a.balance <> coalesce(s.total, 0))
		    || ' ' || (SELECT coalesce(sum(a.balance), 0) FROM accounts a
		               JOIN users u ON u.id = a.owner_id
		               WHERE a.kind = 'wallet' AND u.email LIKE 'bench-transfer-%')")
	local unbalanced negative mismatched held
	read -r unbalanced negative mismatched held <<<"$bad"
	[ "$unbalanced" = 0 ] || hex_die "the books do not balance: $unbalanced currencies' entries do not sum to 0"
	[ "$negative" = 0 ] || hex_die "$negative wallets are negative"
	[ "$mismatched" = 0 ] || hex_die "$mismatched accounts' balances differ from the sum of their entries"
	[ "$held" = $((BENCH_TRANSFER_USERS * BENCH_TRANSFER_FUND)) ] ||
		hex_die "the transfer users hold $held together, they were funded with $((BENCH_TRANSFER_USERS * BENCH_TRANSFER_FUND))"
	if ! env -i PATH="$PATH" LANG=C.UTF-8 "${BENCH_HEXD_ENV[@]}" "$BENCH_HEXD" ledger verify \
		>"$BENCH_RAW/ledger-verify.txt" 2>&1 9>&-; then
		hex_show_log_tail "$BENCH_RAW/ledger-verify.txt"
		hex_die "hexd ledger verify disagrees with the books after the transfers"
	fi
	RES[t.verify]=$(tail -n 1 "$BENCH_RAW/ledger-verify.txt")
}

# bench_log_statuses NAME ROUTE FROM: "201 x 31000, 409 x 2": the statuses hexd A's access
# log gave ROUTE from byte FROM on (what a case sent), to name any non-2xx precisely.
bench_log_statuses() {
	local log
	log=$(bench_hexd_log A)
	tail -c +"$(($3 + 1))" "$log" | grep -o "\"route\":\"$2\",\"status\":[0-9]*" |
		sed 's/.*://' | sort | uniq -c |
		awk '{ printf "%s%s x %s", (n++ ? ", " : ""), $2, $1 } END { if (!n) printf "none logged" }'
}

# t: transfers on A's payments listener after a checkpoint (w's writes stay out of it).
# Afterwards each 201 must be one new 'transfer:' transaction (a few more: requests
# answered after wrk stopped counting) and the books must balance.
bench_measure_transfers() {
	local url=http://127.0.0.1:$A_PAY_PORT/v2/wallet/transfers pid_a=${BENCH_HEXD_PID[A]}
	local before after ok from
	bench_psql postgres 'CHECKPOINT'
	bench_wait_idle "$pid_a" "hexd A"
	export BENCH_TRANSFER_KEYS=bench-$BENCH_RUN_ID-tw
	bench_warmup t transfer.lua "$url" 2 64 2s
	bench_wait_idle "$pid_a" "hexd A"
	before=$(bench_transfer_count)
	from=$(hex_log_size "$(bench_hexd_log A)")
	export BENCH_TRANSFER_KEYS=bench-$BENCH_RUN_ID-t
	bench_pg_mark t "$BENCH_DB"
	bench_wrk t transfer.lua "$url" 2 64 2s "$pid_a"
	bench_pg_done t
	bench_wait_idle "$pid_a" "hexd A"
	after=$(bench_transfer_count)
	RES[t.statuses]=$(bench_log_statuses t /v2/wallet/transfers "$from")
	ok=$((${RES[t.requests]} - ${RES[t.non2xx]}))
	RES[t.rows]=$((after - before))
	[ "${RES[t.rows]}" -ge "$ok" ] && [ "${RES[t.rows]}" -le $((ok + 64)) ] ||
		hex_die "wrk got $ok replies 201 to POST /v2/wallet/transfers, the journal has ${RES[t.rows]} new transfers (hexd A logged: ${RES[t.statuses]})"
	bench_check_books
}

# ---------------------------------------------------------------- event latency (w)

# bench_events_left: evt_bench_ events stored that the ledger consumer has not processed.
bench_events_left() {
	bench_psql_value "$BENCH_DB" "
		SELECT count(*) FROM stripe_events e WHERE e.id LIKE 'evt\_bench\_%'
		AND NOT EXISTS (SELECT 1 FROM processed_events p
		                WHERE p.consumer = 'ledger' AND p.event_id = e.id)"
}

# bench_wait_ledger NAME PID: right after the w load, which ended at BENCH_W_END: waits at
# most BENCH_DRAIN_TIMEOUT seconds until processed_events for consumer 'ledger' covers
# every evt_bench_ event stored. hexd's CPU over that wait is case NAME-drain, per event
# the consumer posted after the load ended.
bench_wait_ledger() {
	local name=$1-drain pid=$2 left started=$SECONDS t0 t1
	t0=$(date +%s.%N)
	bench_cpu_mark "$name" "$pid"
	hex_say "waiting (at most ${BENCH_DRAIN_TIMEOUT}s) for the ledger consumer to post every webhook event"
	while :; do
		left=$(bench_events_left)
		[ "$left" = 0 ] && break
		if [ $((SECONDS - started)) -ge "$BENCH_DRAIN_TIMEOUT" ]; then
			hex_say "warning: the ledger consumer still has $left events to process after ${BENCH_DRAIN_TIMEOUT}s"
			break
		fi
		sleep 0.5
	done
	t1=$(date +%s.%N)
	RES[lat.left]=$left
	RES[$name.duration_us]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1e6 }')
	RES[$name.requests]=$(bench_psql_value "$BENCH_DB" "
		SELECT count(*) FROM journal_transactions
		WHERE reference LIKE 'payment:%' AND created_at > to_timestamp($BENCH_W_END)")
	bench_cpu_done "$name" "$pid"
}

# The SQL of the latency: per event of the load (evt_bench_<i>, the check event sent
# before it left out), its ledger posting's journal_transactions.created_at (key and
# reference 'payment:<payment id>') minus stripe_events.received_at; both stamps come
# from hexd's clock. Events not posted (yet) count in "events", not in the percentiles.
bench_latency_sql() {
	cat <<SQL
WITH ev AS (
  SELECT e.received_at, j.created_at AS posted_at
  FROM stripe_events e
  LEFT JOIN journal_transactions j
    ON j.idempotency_key = 'payment:' || e.payment_id AND j.reference = 'payment:' || e.payment_id
  WHERE e.id LIKE 'evt\_bench\_%' AND e.id <> 'evt_bench_$BENCH_WEBHOOK_EVENTS'),
l AS (SELECT extract(epoch FROM posted_at - received_at) * 1000 AS ms FROM ev
      WHERE posted_at IS NOT NULL)
SELECT (SELECT count(*) FROM ev), (SELECT count(*) FROM l),
  (SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms), 1) FROM l),
  (SELECT round(percentile_disc(0.99) WITHIN GROUP (ORDER BY ms), 1) FROM l),
  (SELECT round(max(ms), 1) FROM l),
  (SELECT coalesce(extract(epoch FROM max(posted_at)), 0) FROM ev),
  (SELECT count(*) FROM ev WHERE posted_at > to_timestamp($BENCH_W_END))
SQL
}

# bench_event_latency: RES[lat.*] from bench_latency_sql, the drain time (last posting
# minus the end of the load) and the consumers' failures on these events. Dies if the
# consumer has processed every event but some top-up was never posted: money lost.
bench_event_latency() {
	local last
	# One line: the command list of the report shows it as typed.
	CMD[lat]="psql -d $BENCH_DB -c \"$(bench_latency_sql | tr '\n' ' ' | tr -s ' ')\""
	IFS='|' read -r "RES[lat.events]" "RES[lat.posted]" "RES[lat.p50_ms]" "RES[lat.p99_ms]" \
		"RES[lat.max_ms]" last "RES[lat.behind]" < <(bench_psql_value "$BENCH_DB" "$(bench_latency_sql)")
	RES[lat.drain_s]=$(awk -v a="$last" -v b="$BENCH_W_END" 'BEGIN { d = a - b; printf "%.1f", (d > 0 ? d : 0) }')
	read -r "RES[lat.failures]" "RES[lat.dead]" < <(bench_psql_value "$BENCH_DB" "
		SELECT (SELECT count(*) FROM event_failures WHERE event_id LIKE 'evt\_bench\_%')
		    || ' ' || (SELECT count(*) FROM dead_letters WHERE event_id LIKE 'evt\_bench\_%')")
	if [ "${RES[lat.left]}" = 0 ] && [ "${RES[lat.posted]}" != "${RES[lat.events]}" ]; then
		hex_die "the ledger consumer processed all ${RES[lat.events]} events of the webhook load, but only ${RES[lat.posted]} top-ups are in the journal"
	fi
	hex_say "event latency (webhook received -> ledger posted) over ${RES[lat.posted]} of ${RES[lat.events]} events: p50 ${RES[lat.p50_ms]} ms, p99 ${RES[lat.p99_ms]} ms, max ${RES[lat.max_ms]} ms; drained ${RES[lat.drain_s]} s after the load"
}

# ---------------------------------------------------------------- PostgreSQL's side

# CPU ticks of the whole PostgreSQL: the postmaster with what it reaped (cutime, cstime:
# backends that exited, such as pgbench's at its end) plus every child alive now.
# Fields are counted after the last ')' of each stat line: utime is then $13.
bench_pg_ticks() {
	local pm
	pm=$(hex_pg_pid)
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | sed -E 's/^([0-9]+) \(.*\) /\1 /' |
		awk -v pm="$pm" '
			$1 == pm { t += $13 + $14 + $15 + $16 }
			$3 == pm { t += $13 + $14 }
			END { print t + 0 }'
}

# bench_pg_mark NAME DB / bench_pg_done NAME: PostgreSQL's CPU over case NAME
# (RES[NAME.pg_cpu_pct], % of one core; RES[NAME.pg_cpu_us] per request or transaction),
# and, sampled five times a second on one connection of its own, what the client backends
# connected to DB were doing: RES[NAME.pg_states], "state: wait event" and the mean number
# of backends in it, the six largest ("CPU" when waiting for nothing). Backends idle
# between transactions are left out: every hexd's pool has some, whatever it is doing;
# so are the script's own psql sessions (this one, the checks between cases).
bench_pg_mark() {
	local name=$1 db=$2 q
	bench_pg_ticks >"$BENCH_TMP/pg-$name.ticks"
	q="SELECT '#' UNION ALL SELECT state || ': ' || coalesce(wait_event_type || ':' || wait_event, 'CPU')
	   FROM pg_stat_activity WHERE datname = '$db' AND backend_type = 'client backend'
	   AND state <> 'idle' AND application_name <> 'psql';"
	q=$(tr '\n\t' '  ' <<<"$q")
	# The loop ends when the flag goes: psql then reads EOF and exits with its output
	# flushed (killed, it would lose what stdio still buffers).
	: >"$BENCH_TMP/pg-$name.sampling"
	(
		while [ -e "$BENCH_TMP/pg-$name.sampling" ]; do
			printf '%s\n' "$q"
			sleep 0.2
		done
	) 9>&- | psql -X -q -t -A -h 127.0.0.1 -p "$PG_PORT" -U "$HEX_SERVER_USER" -d postgres \
		>"$BENCH_TMP/pg-$name.states" 2>&1 9>&- &
	BENCH_PG_SAMPLER=$!
	BENCH_BG_PIDS+=("$BENCH_PG_SAMPLER")
}

bench_pg_done() {
	local name=$1 t0 secs n
	t0=$(<"$BENCH_TMP/pg-$name.ticks")
	rm -f "$BENCH_TMP/pg-$name.sampling"
	wait "$BENCH_PG_SAMPLER" 2>/dev/null || true
	local pid keep=()
	for pid in "${BENCH_BG_PIDS[@]}"; do
		[ "$pid" = "$BENCH_PG_SAMPLER" ] || keep+=("$pid")
	done
	BENCH_BG_PIDS=("${keep[@]}")
	secs=$(awk -v us="${RES[$name.duration_us]:-0}" -v d="$BENCH_DURATION" \
		'BEGIN { print (us > 0 ? us / 1e6 : d) }')
	n=${RES[$name.requests]:-0}
	read -r "RES[$name.pg_cpu_pct]" "RES[$name.pg_cpu_us]" < <(awk \
		-v t="$(($(bench_pg_ticks) - t0))" -v hz="$BENCH_CLK_TCK" -v s="$secs" -v n="$n" \
		'BEGIN { printf "%.0f %.0f\n", 100 * t / hz / s, (n ? t * 1e6 / hz / n : 0) }')
	RES[$name.pg_states]=$(awk '
		$0 == "#" { n++; next }
		/: / { c[$0]++ }
		END { for (k in c) printf "%.2f\t%s\n", c[k] / (n ? n : 1), k }' \
		"$BENCH_TMP/pg-$name.states" | sort -t$'\t' -k1,1gr |
		awk -F'\t' '$1 >= 0.05 && n < 6 { printf "%s%s %.1f", (n++ ? ", " : ""), $2, $1 }')
	RES[$name.pg_samples]=$(grep -cx '#' "$BENCH_TMP/pg-$name.states" || true)
}
