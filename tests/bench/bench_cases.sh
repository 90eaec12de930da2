# shellcheck shell=bash
# bench_cases.sh: the measured cases, in the order run.sh runs them (tests/bench/method.md
# says what each one is for). Results go to RES and CMD (bench_measure.sh).
# Sourced by run.sh, never run.

# The two sides an alternating case compares run in the order first, second, second,
# first, three times, BENCH_ALT_SECONDS each: a drift of the machine that is linear over
# a group of four then weighs the same on both sides, and six short runs a side follow
# the bursts of other work on the machine closer than a few long ones would.
BENCH_ABBA=(1 2 2 1 1 2 2 1 1 2 2 1)
BENCH_ABBA_EACH=$((${#BENCH_ABBA[@]} / 2))

# Every case in the summary and the report's command list, in the order of the table.
BENCH_CASES="a b h c d e e-login o-on o-off ml mp w t s-alone s-busy s-pay cg-direct cg-nginx1
cg-nginx2 cp-direct cp-nginx1 cp-nginx2 a2 f1 f2 f3"

# bench_combine NAME RUN...: NAME's numbers from several runs of the same load: req/s,
# p50, p99 and CPU use are the means of the runs', CPU per request is total over total
# (to 0.1 µs: the comparisons of the alternating cases need more than whole µs),
# requests and errors are sums. RES[NAME.runs] lists the runs' req/s.
bench_combine() {
	local name=$1 run key
	shift
	local n=$# rps=0 p50=0 p99=0 pct=0 ticks=0 requests=0 runs=''
	for key in errors non2xx connect read write timeout; do
		RES[$name.$key]=0
	done
	for run in "$@"; do
		rps=$(awk -v a="$rps" -v b="${RES[$run.rps]}" 'BEGIN { print a + b }')
		p50=$((p50 + ${RES[$run.p50_us]}))
		p99=$((p99 + ${RES[$run.p99_us]}))
		pct=$((pct + ${RES[$run.cpu_pct]:-0}))
		ticks=$((ticks + ${RES[$run.cpu_ticks]:-0}))
		requests=$((requests + ${RES[$run.requests]}))
		for key in errors non2xx connect read write timeout; do
			RES[$name.$key]=$((${RES[$name.$key]} + ${RES[$run.$key]}))
		done
		runs="$runs${runs:+, }$(bench_int "${RES[$run.rps]}")"
	done
	RES[$name.rps]=$(awk -v a="$rps" -v n="$n" 'BEGIN { printf "%.1f", a / n }')
	RES[$name.p50_us]=$((p50 / n))
	RES[$name.p99_us]=$((p99 / n))
	RES[$name.cpu_pct]=$((pct / n))
	RES[$name.cpu_us]=$(awk -v t="$ticks" -v hz="$BENCH_CLK_TCK" -v n="$requests" \
		'BEGIN { printf "%.1f", (n ? t * 1e6 / hz / n : 0) }')
	RES[$name.requests]=$requests
	RES[$name.threads]="${RES[$1.threads]:-} (first run)"
	RES[$name.runs]=$runs
}

# ---------------------------------------------------------------- baselines

# While every hexd is idle. TPC-B writes (and dirties) the pgbench tables; the checkpoint
# after it keeps its writes out of the hexd cases that follow. PostgreSQL's side of TPC-B
# (CPU, what its backends wait for) is measured as for the write cases of hexd.
bench_measure_baselines() {
	local user_path=/v1/users/$BENCH_READER_ID
	bench_warmup a plain.lua "http://127.0.0.1:$NGINX_PORT$user_path" 2 64 2s
	bench_wrk a plain.lua "http://127.0.0.1:$NGINX_PORT$user_path" 2 64 2s
	bench_redis f1 "$REDIS_PORT"
	bench_pgbench f2 "$PG_PORT" "$BENCH_PGBENCH_DB" pgbench.txt -S
	bench_pg_mark f3 "$BENCH_PGBENCH_DB"
	bench_pgbench f3 "$PG_PORT" "$BENCH_PGBENCH_DB" pgbench-tpcb.txt
	bench_pg_done f3
	bench_psql postgres 'CHECKPOINT'
}

# ---------------------------------------------------------------- users (foundation)

bench_measure_users() {
	local api_a=http://127.0.0.1:$A_PORT api_b=http://127.0.0.1:$B_PORT
	local user_path=/v1/users/$BENCH_READER_ID
	local pid_a=${BENCH_HEXD_PID[A]} pid_b=${BENCH_HEXD_PID[B]} hits

	# b: the seed already read the user through A; make sure it sits in the cache.
	[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" exists "hex:user:v1:$BENCH_READER_ID")" = 1 ] ||
		hex_die "after a read through hexd A, hex:user:v1:$BENCH_READER_ID is not in Redis"
	bench_warmup b get_user.lua "$api_a$user_path" 2 64 2s
	hits=$(bench_redis_hits "$REDIS_PORT")
	bench_wrk b get_user.lua "$api_a$user_path" 2 64 2s "$pid_a"
	BENCH_HITS_B=$(($(bench_redis_hits "$REDIS_PORT") - hits))

	# h: answered on a loop thread, no worker, no data: hexd's fixed cost per request.
	bench_warmup h plain.lua "$api_a/healthz" 2 64 2s
	bench_wrk h plain.lua "$api_a/healthz" 2 64 2s "$pid_a"

	bench_warmup c get_user.lua "$api_b$user_path" 2 64 2s
	hits=$(bench_redis_hits "$REDIS_PORT")
	bench_wrk c get_user.lua "$api_b$user_path" 2 64 2s "$pid_b"
	BENCH_HITS_C=$(($(bench_redis_hits "$REDIS_PORT") - hits))

	# d: 64 logins queue for one hashing thread, so a reply can take seconds: wrk's 2 s
	# default timeout would count slow replies as errors.
	bench_wrk d login.lua "$api_a/v1/login" 2 64 10s "$pid_a"
	bench_wait_idle "$pid_a" "hexd A"

	# e: reads while 32 clients log in for the same duration.
	hex_say "case e: ${BENCH_DURATION}s of $api_a$user_path while 32 clients log in"
	bench_cpu_mark e "$pid_a"
	bench_wrk_start e-login login.lua "$api_a/v1/login" 1 32 10s
	local login_pid=$BENCH_WRK_PID
	bench_wrk_start e get_user.lua "$api_a$user_path" 2 64 2s
	bench_wrk_finish e "$BENCH_WRK_PID"
	bench_wrk_finish e-login "$login_pid"
	bench_cpu_done e "$pid_a"
	BENCH_BG_PIDS=()
	bench_wait_idle "$pid_a" "hexd A"
}

# ---------------------------------------------------------------- issue 3

# bench_metric_value PORT SERIES: the value of one /metrics series, 0 when absent.
bench_metric_value() {
	curl -sf "http://127.0.0.1:$1/metrics" |
		awk -v s="$2" 'index($0, s " ") == 1 { v = $2 } END { print v + 0 }'
}

# o: cached reads on A (access log and metrics on, the defaults) and on D (both off), in
# alternating runs (BENCH_ABBA). Afterwards D must really have recorded nothing:
# no access-log lines and no per-route series; A must have recorded both.
bench_measure_observability() {
	local user_path=/v1/users/$BENCH_READER_ID run_s=$BENCH_ALT_SECONDS
	local series="hex_http_requests_total{method=\"GET\",route=\"/v1/users/:id\",status=\"200\"}"
	local -A api=([1]=http://127.0.0.1:$A_PORT [2]=http://127.0.0.1:$D_PORT)
	local -A port=([1]=$A_PORT [2]=$D_PORT) label=([1]=on [2]=off)
	local which i=0 on=() off=() lines

	bench_hexd_start D "$D_PORT" "$D_PAY_PORT" "$D_ADMIN_PORT" \
		"redis://127.0.0.1:$REDIS_PORT/0" HEX_ACCESS_LOG=off HEX_METRICS=off
	local -A pid=([1]=${BENCH_HEXD_PID[A]} [2]=${BENCH_HEXD_PID[D]})
	bench_api GET "${api[2]}$user_path" '' "$BENCH_TOKEN"
	bench_expect 200 "GET /v1/users/:id on hexd D"
	[ "$API_BODY" = "$BENCH_USER_JSON" ] ||
		hex_die "hexd D sends another user JSON than A: '$API_BODY'"
	bench_warmup o-on get_user.lua "${api[1]}$user_path" 2 64 2s
	bench_warmup o-off get_user.lua "${api[2]}$user_path" 2 64 2s
	for which in "${BENCH_ABBA[@]}"; do
		i=$((i + 1))
		bench_wrk "o$i-${label[$which]}" get_user.lua "${api[$which]}$user_path" 2 64 2s \
			"${pid[$which]}" "$run_s"
		if [ "$which" = 1 ]; then on+=("o$i-on"); else off+=("o$i-off"); fi
	done
	bench_combine o-on "${on[@]}"
	bench_combine o-off "${off[@]}"
	CMD[o-on]=${CMD[${on[0]}]}
	CMD[o-off]=${CMD[${off[0]}]}

	lines=$(wc -l <"$(bench_hexd_log D)")
	[ "$lines" -lt 100 ] ||
		hex_die "hexd D was started with HEX_ACCESS_LOG=off but logged $lines lines"
	[ "$(bench_metric_value "${port[2]}" "$series")" = 0 ] ||
		hex_die "hexd D was started with HEX_METRICS=off but counts requests in /metrics"
	[ "$(bench_metric_value "${port[1]}" "$series")" -gt 0 ] ||
		hex_die "hexd A has no $series in /metrics: the comparison would be void"
	BENCH_RSS_D=$(bench_peak_rss_kib "${pid[2]}")
	bench_hexd_stop D
}

# ml, mp: the reader's newest 20 of BENCH_READER_MESSAGES messages, and posting more. Every
# 201 must be a new row (a few more may land after wrk stops counting).
bench_measure_messages() {
	local api_a=http://127.0.0.1:$A_PORT pid_a=${BENCH_HEXD_PID[A]} before after ok
	bench_warmup ml get_user.lua "$api_a/v1/messages?limit=20" 2 64 2s
	bench_wrk ml get_user.lua "$api_a/v1/messages?limit=20" 2 64 2s "$pid_a"
	bench_warmup mp post_message.lua "$api_a/v1/messages" 2 64 2s
	bench_wait_idle "$pid_a" "hexd A"
	before=$(bench_psql_value "$BENCH_DB" 'SELECT count(*) FROM messages')
	bench_pg_mark mp "$BENCH_DB"
	bench_wrk mp post_message.lua "$api_a/v1/messages" 2 64 2s "$pid_a"
	bench_pg_done mp
	bench_wait_idle "$pid_a" "hexd A"
	after=$(bench_psql_value "$BENCH_DB" 'SELECT count(*) FROM messages')
	ok=$((${RES[mp.requests]} - ${RES[mp.non2xx]}))
	[ $((after - before)) -ge "$ok" ] && [ $((after - before)) -le $((ok + 64)) ] ||
		hex_die "wrk got $ok replies 201 to POST /v1/messages, the table grew by $((after - before))"
	RES[mp.rows]=$((after - before))
}

# ---------------------------------------------------------------- issue 4

# w: BENCH_WEBHOOK_EVENTS signed events, signed just now, one file per wrk thread, sent
# once each to A's payments listener; then every 2xx must be stored with its effects.
# A runs the worker role too: its ledger consumer posts each event's top-up, during the
# load and after it; the end-to-end latency of those events (issue 5) is measured once
# the consumer has caught up (bench_ledger.sh).
bench_measure_webhooks() {
	local url=http://127.0.0.1:$A_PAY_PORT/v2/stripe/webhook pid_a=${BENCH_HEXD_PID[A]}
	export BENCH_WEBHOOK_FILES=$BENCH_TMP/webhook-events
	hex_say "signing $BENCH_WEBHOOK_EVENTS webhook events"
	bench_make_events "$BENCH_WEBHOOK_FILES" 0 "$BENCH_WEBHOOK_EVENTS" 2
	bench_pg_mark w "$BENCH_DB"
	bench_wrk w webhook.lua "$url" 2 64 2s "$pid_a"
	BENCH_W_END=$(date +%s.%N)
	bench_pg_done w
	bench_pg_mark w-drain "$BENCH_DB"
	bench_wait_ledger w "$pid_a"
	bench_pg_done w-drain
	bench_wait_idle "$pid_a" "hexd A"
	bench_count_webhook_effects w
	bench_event_latency
	rm -f "$BENCH_WEBHOOK_FILES".*
}

# s: cached reads on C (Stripe gateway, the fake answering in 2 s) alone, and while a
# second wrk keeps 50 POST /v2/payments in flight on C's payments listener, alternating
# (BENCH_ABBA). One payments wrk spans each pair of busy runs;
# before the next alone run, C finishes the payments still queued when it stopped.
bench_measure_slow_stripe() {
	local api_c=http://127.0.0.1:$C_PORT pay_c=http://127.0.0.1:$C_PAY_PORT
	local user_path=/v1/users/$BENCH_READER_ID run_s=$BENCH_ALT_SECONDS
	local pid_c intents which i=0 alone=() busy=() pays=() pay_pid=''

	bench_fake_stripe_start "$STRIPE_PORT"
	bench_hexd_start C "$C_PORT" "$C_PAY_PORT" "$C_ADMIN_PORT" \
		"redis://127.0.0.1:$REDIS_PORT/0" HEX_GATEWAY=stripe \
		HEX_STRIPE_API_BASE="http://127.0.0.1:$STRIPE_PORT" \
		HEX_STRIPE_SECRET_KEY="$BENCH_STRIPE_KEY"
	pid_c=${BENCH_HEXD_PID[C]}
	# One payment first: it must reach the fake and come back 201 after the delay.
	bench_api POST "$pay_c/v2/payments" '{"amount":1000,"currency":"usd","purpose":"wallet_top_up"}' \
		"$BENCH_TOKEN"
	bench_expect 201 "POST /v2/payments on hexd C (Stripe gateway, fake Stripe)"
	intents=$(bench_fake_stripe_value "$STRIPE_PORT" intents_created)
	[ "$intents" = 1 ] || hex_die "after one payment the fake Stripe created $intents intents"
	bench_api GET "$api_c$user_path" '' "$BENCH_TOKEN"
	bench_expect 200 "GET /v1/users/:id on hexd C"

	bench_warmup s-alone get_user.lua "$api_c$user_path" 2 64 2s
	for which in "${BENCH_ABBA[@]}" 1; do
		i=$((i + 1))
		if [ "$which" = 1 ] && [ -n "$pay_pid" ]; then
			bench_wrk_finish "${pays[-1]}" "$pay_pid"
			pay_pid=''
			hex_say "waiting for hexd C to finish the payments still queued"
			bench_fake_stripe_wait_quiet "$STRIPE_PORT"
		fi
		[ "$i" -le "${#BENCH_ABBA[@]}" ] || break
		if [ "$which" = 1 ]; then
			bench_wrk "s$i-alone" get_user.lua "$api_c$user_path" 2 64 2s "$pid_c" "$run_s"
			alone+=("s$i-alone")
			continue
		fi
		if [ -z "$pay_pid" ]; then
			# Long enough for the two busy runs that follow; 50 in flight before they start.
			pays+=("s-pay$((${#pays[@]} + 1))")
			export BENCH_PAY_KEYS=bench-$BENCH_RUN_ID-${pays[-1]}
			hex_say "case ${pays[-1]}: 50 clients posting payments on $pay_c"
			bench_wrk_start "${pays[-1]}" payment.lua "$pay_c/v2/payments" 1 50 60s \
				$((2 * run_s + 4))
			pay_pid=$BENCH_WRK_PID
			sleep 2
		fi
		bench_wrk "s$i-busy" get_user.lua "$api_c$user_path" 2 64 2s "$pid_c" "$run_s"
		busy+=("s$i-busy")
	done
	BENCH_BG_PIDS=()
	bench_combine s-alone "${alone[@]}"
	bench_combine s-busy "${busy[@]}"
	bench_combine s-pay "${pays[@]}"
	bench_count_payments s-pay "$(($(bench_fake_stripe_value "$STRIPE_PORT" intents_created) - intents))"
	CMD[s-alone]=${CMD[${alone[0]}]}
	CMD[s-busy]=${CMD[${busy[0]}]}
	CMD[s-pay]=${CMD[${pays[0]}]}
	BENCH_RSS_C=$(bench_peak_rss_kib "$pid_c")
	bench_hexd_stop C
	bench_fake_stripe_stop
}

# ---------------------------------------------------------------- all

bench_measure_all() {
	local user_path=/v1/users/$BENCH_READER_ID
	bench_measure_baselines
	bench_measure_users
	bench_measure_observability
	bench_measure_messages
	bench_measure_webhooks
	bench_measure_transfers
	bench_measure_slow_stripe
	bench_measure_cluster

	# a2: nginx again. On a shared 2-core machine the baseline moves between runs; the
	# second measurement shows by how much, and the better of the two is the ceiling.
	bench_wrk a2 plain.lua "http://127.0.0.1:$NGINX_PORT$user_path" 2 64 2s
	RES[a.best]=$(awk -v x="${RES[a.rps]}" -v y="${RES[a2.rps]}" 'BEGIN { print (x > y ? x : y) }')

	BENCH_RSS_A=$(bench_peak_rss_kib "${BENCH_HEXD_PID[A]}")
	BENCH_RSS_B=$(bench_peak_rss_kib "${BENCH_HEXD_PID[B]}")
}
