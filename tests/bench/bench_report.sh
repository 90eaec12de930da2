# shellcheck shell=bash
# shellcheck disable=SC2016 # backticks are Markdown, not command substitution
# bench_report.sh: turns RES and CMD (bench_measure.sh) into docs/BENCHMARKS.md: the
# hand-written method (tests/bench/method.md) followed by this run's results and the
# targets with PASS/MISS. Sourced by run.sh, never run.

bench_ms() {
	awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'
}

bench_int() {
	awk -v v="$1" 'BEGIN { printf "%.0f", v }'
}

# bench_pct A B: A as a percentage of B.
bench_pct() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", (b > 0 ? 100 * a / b : 0) }'
}

# bench_overhead WITH WITHOUT: how much lower WITH is, in % of WITHOUT (one decimal).
bench_overhead() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", (b > 0 ? 100 * (1 - a / b) : 0) }'
}

# bench_more A B: how much more A is than B, in % of B (one decimal, signed).
bench_more() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f%%", (b > 0 ? 100 * (a / b - 1) : 0) }'
}

# bench_verdict EXPR: PASS when the awk expression holds.
bench_verdict() {
	awk "BEGIN { print (($1) ? \"PASS\" : \"MISS\") }"
}

bench_row() {
	local k=$1 label=$2 ratio=$3
	printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$k" "$label" \
		"$(bench_int "${RES[$k.rps]}")" "$(bench_ms "${RES[$k.p50_us]}")" \
		"$(bench_ms "${RES[$k.p99_us]}")" "${RES[$k.errors]}" "$ratio"
}

bench_errors_detail() {
	local k=$1
	printf '%s non-2xx, %s connect, %s read, %s write, %s timeout' "${RES[$k.non2xx]}" \
		"${RES[$k.connect]}" "${RES[$k.read]}" "${RES[$k.write]}" "${RES[$k.timeout]}"
}

bench_machine() {
	local mem cpu
	mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	printf -- '- Machine: %s CPUs (%s), %s RAM, Linux %s\n' "$(nproc)" "${cpu:-unknown}" \
		"$mem" "$(uname -r)"
	printf -- '- Load average (1, 5, 15 min) before the run: %s; after: %s\n' \
		"$BENCH_LOAD_BEFORE" "$BENCH_LOAD_AFTER"
}

bench_versions() {
	printf -- '- hexd: %s (%s; %s)\n' "$BENCH_HEXD_VERSION" "$BENCH_BUILD" "$BENCH_COMMIT"
	printf -- '- compiler: %s; libevent %s\n' "$(cc --version | head -n 1)" \
		"$(pkg-config --modversion libevent 2>/dev/null || echo '?')"
	printf -- '- nginx: %s\n' "$(nginx -v 2>&1 | sed 's/^nginx version: //')"
	printf -- '- PostgreSQL: %s\n' "$("$HEX_PG_BIN/postgres" --version)"
	printf -- '- Redis: %s\n' "$(redis-server --version | awk '{ print $3 }' | sed 's/^v=//')"
	printf -- '- wrk: %s\n' "$(wrk -v 2>&1 | head -n 1 | awk '{ print $2 }')"
}

bench_settings() {
	local kv
	printf 'hexd settings (every instance; environment cleared, then only these):\n\n'
	for kv in "${BENCH_HEXD_ENV[@]}"; do
		case $kv in
		HEX_JWT_SECRET=* | HEX_ADMIN_TOKEN=*) kv="${kv%%=*}=<random, 32 bytes>" ;;
		HEX_STRIPE_WEBHOOK_SECRET=*) kv="${kv%%=*}=whsec_bench_<random, 16 bytes>" ;;
		esac
		printf -- '- `%s`\n' "$kv"
	done
	printf -- '- A: `HEX_REDIS_URL=redis://127.0.0.1:<redis port>/0`; B: `HEX_REDIS_URL=` (empty: no cache)\n'
	printf -- '- D: as A, plus `HEX_ACCESS_LOG=off HEX_METRICS=off`\n'
	printf -- '- C: as A, plus `HEX_GATEWAY=stripe HEX_STRIPE_API_BASE=http://127.0.0.1:<fake port> HEX_STRIPE_SECRET_KEY=%s`; the fake Stripe holds every answer %s ms\n' \
		"$BENCH_STRIPE_KEY" "$BENCH_STRIPE_DELAY_MS"
	printf -- '- api1, api2 (the cluster case): as A, plus `HEX_ROLES=api` (no event threads, as the cluster runs its API instances)\n'
	printf -- '- everything else at its default: `HEX_WORKERS=8`, `HEX_KDF_WORKERS=1`, `HEX_GATEWAY_WORKERS=8`, `HEX_QUEUE_MAX=1024`, `HEX_ROLES=api,worker`, `HEX_WEBHOOK_TOLERANCE=300`, ...\n'
}

bench_report_results() {
	printf 'wrk: `-t2 -c64 -d%ss --latency`, after a %ss warm-up for a, b, h, c, ml, mp and t (o, s, cg and cp: one per side; cg and cp in their own section below). ' \
		"$BENCH_DURATION" "$BENCH_WARMUP"
	printf 'Latencies in ms. Errors: non-2xx replies plus socket errors (0 expected).\n\n'
	printf '| case | what | req/s | p50 | p99 | errors | ratio to its baseline |\n'
	printf '|---|---|---:|---:|---:|---:|---|\n'
	bench_row a "nginx, fixed ${#BENCH_USER_JSON}-byte JSON (baseline of b: the better of a, a2)" \
		baseline
	bench_row b "hexd A \`GET /v1/users/:id\`, Redis cache warm" \
		"$(bench_pct "${RES[b.rps]}" "${RES[a.best]}") of a"
	bench_row h "hexd A \`GET /healthz\` (diagnostic: no auth, no data)" \
		"$(bench_pct "${RES[h.rps]}" "${RES[a.best]}") of a"
	bench_row c "hexd B \`GET /v1/users/:id\`, no cache (PostgreSQL)" \
		"$(bench_pct "${RES[c.rps]}" "${RES[f2.rps]}") of f2"
	bench_row d "hexd A \`POST /v1/login\`, password cost $BENCH_PASSWORD_COST" \
		"one login unloaded: ${BENCH_LOGIN_MS} ms"
	bench_row e "hexd A cached reads during 32 concurrent logins" \
		"$(bench_pct "${RES[e.rps]}" "${RES[b.rps]}") of b"
	bench_row e-login "... the 32 logins themselves (\`-t1 -c32\`)" \
		"$(bench_pct "${RES[e-login.rps]}" "${RES[d.rps]}") of d"
	bench_row o-on "hexd A cached reads, access log and metrics on (mean of $BENCH_ABBA_EACH runs)" \
		"$(bench_pct "${RES[o-on.rps]}" "${RES[o-off.rps]}") of o-off"
	bench_row o-off "hexd D cached reads, \`HEX_ACCESS_LOG=off HEX_METRICS=off\` (mean of $BENCH_ABBA_EACH runs)" \
		"baseline of o-on"
	bench_row ml "hexd A \`GET /v1/messages?limit=20\`, caller owns $(bench_thousands "$BENCH_READER_MESSAGES") of $(bench_thousands "$BENCH_MESSAGES")" \
		"$(bench_pct "${RES[ml.rps]}" "${RES[f2.rps]}") of f2"
	bench_row mp "hexd A \`POST /v1/messages\`" \
		"$(bench_pct "${RES[mp.rps]}" "${RES[f2.rps]}") of f2, $(bench_pct "${RES[mp.rps]}" "${RES[f3.rps]}") of f3"
	bench_row w "hexd A \`POST /v2/stripe/webhook\`, signed \`payment_intent.succeeded\`, unique ids" \
		"$(bench_pct "${RES[w.rps]}" "${RES[f3.rps]}") of f3"
	bench_row t "hexd A \`POST /v2/wallet/transfers\`, 1 cent between $BENCH_TRANSFER_USERS users, a new \`Idempotency-Key\` each" \
		"$(bench_pct "${RES[t.rps]}" "${RES[f3.rps]}") of f3"
	bench_row s-alone "hexd C cached reads alone (Stripe gateway; mean of $BENCH_ABBA_EACH runs)" \
		"baseline of s-busy"
	bench_row s-busy "hexd C cached reads, 50 \`POST /v2/payments\` in flight (mean of $BENCH_ABBA_EACH runs)" \
		"$(bench_pct "${RES[s-busy.rps]}" "${RES[s-alone.rps]}") of s-alone"
	bench_row s-pay "... the payments themselves (\`-t1 -c50\`, fake Stripe answers in ${BENCH_STRIPE_DELAY_MS} ms)" \
		"${RES[s-pay.stored]} payments stored, ${RES[s-pay.intents]} intents at the fake"
	bench_row a2 "nginx again, after the hexd cases (noise check)" \
		"$(bench_pct "${RES[a2.rps]}" "${RES[a.rps]}") of the first"
	bench_row f1 "redis-benchmark GET (same Redis)" baseline
	bench_row f2 "pgbench -S, scale 10 (same PostgreSQL; tps)" "baseline of c, ml, mp"
	bench_row f3 "pgbench TPC-B, scale 10 (same PostgreSQL; tps)" "baseline of mp, w, t"
	printf '\nAlternating runs (req/s, in the order run): o: %s on A, %s on D; s: %s alone, %s busy ' \
		"${RES[o-on.runs]}" "${RES[o-off.runs]}" "${RES[s-alone.runs]}" "${RES[s-busy.runs]}"
	printf '(runs of %ss in the order first, second, second, first, three times).\n' \
		"$BENCH_ALT_SECONDS"
	printf '\nWrites checked in the database after each write case: mp added %s rows for %s replies 201; ' \
		"${RES[mp.rows]}" "$((${RES[mp.requests]} - ${RES[mp.non2xx]}))"
	printf 'w stored %s events (each with its payment succeeded and its outbox row) for %s replies 200, events sent twice: %s ' \
		"${RES[w.stored]}" "$((${RES[w.requests]} - ${RES[w.non2xx]}))" "${RES[w.duplicates]}"
	printf '(%s events were signed for it); t added %s transfer transactions for %s replies 201 (hexd A logged: %s), ' \
		"$(bench_thousands "$BENCH_WEBHOOK_EVENTS")" "${RES[t.rows]}" \
		"$((${RES[t.requests]} - ${RES[t.non2xx]}))" "${RES[t.statuses]}"
	printf 'each two wallet entries of -1 and +1, and after it the books balanced (every currency sums to 0, no wallet negative, every balance the sum of its entries, the transfer users together hold what they were funded with; `hexd ledger verify`: "%s"). ' \
		"${RES[t.verify]}"
	printf 'A few more rows than replies are requests answered after wrk stopped counting.\n'
	printf '\nError detail (wrk): '
	local x sep=''
	for x in a b h c d e e-login o-on o-off ml mp w t s-alone s-busy s-pay cg-direct cg-nginx1 \
		cg-nginx2 cp-direct cp-nginx1 cp-nginx2 a2; do
		printf '%s%s: %s' "$sep" "$x" "$(bench_errors_detail "$x")"
		sep='; '
	done
	printf '.\n'
}

bench_report_hexd() {
	local x
	printf '| case | hexd CPU (%% of one core) | CPU per request | by thread (`main` = first thread) |\n'
	printf '|---|---:|---:|---|\n'
	for x in b h c d e o-on o-off ml mp w w-drain t s-alone s-busy; do
		printf '| %s | %s%% | %s | %s |\n' "$x" "${RES[$x.cpu_pct]}" \
			"$(case $x in
				e | s-busy) printf 'n/a (mixed)' ;;
				w-drain) printf '%s µs per event posted' "${RES[$x.cpu_us]}" ;;
				*) printf '%s µs' "${RES[$x.cpu_us]}" ;;
				esac)" \
			"${RES[$x.threads]}"
	done
	printf '\nw-drain: from the end of the w load until the ledger consumer had processed every event (%s s), per top-up posted in that time (%s). ' \
		"$(awk -v us="${RES[w-drain.duration_us]}" 'BEGIN { printf "%.1f", us / 1e6 }')" \
		"${RES[w-drain.requests]}"
	printf 'The event threads (outbox relay, one consumer per group) have no thread name of their own: they are in `hexd`.\n'

	printf '\nRedis keyspace hits per request during b: %s (during c: %s in all). ' \
		"$(awk -v h="$BENCH_HITS_B" -v n="${RES[b.requests]}" \
			'BEGIN { printf "%.2f", (n ? h / n : 0) }')" "$BENCH_HITS_C"
	printf 'Peak RSS (VmHWM) at the end: hexd A %s MiB, B %s MiB, C %s MiB, D %s MiB, api1 %s MiB, api2 %s MiB. ' \
		"$(bench_mib "$BENCH_RSS_A")" "$(bench_mib "$BENCH_RSS_B")" \
		"$(bench_mib "$BENCH_RSS_C")" "$(bench_mib "$BENCH_RSS_D")" \
		"$(bench_mib "$BENCH_RSS_API1")" "$(bench_mib "$BENCH_RSS_API2")"
	printf 'Exit status after SIGTERM: A %s, B %s, C %s, D %s, api1 %s, api2 %s (0: drained and stopped cleanly). ' \
		"${BENCH_HEXD_RC[A]:-?}" "${BENCH_HEXD_RC[B]:-?}" "${BENCH_HEXD_RC[C]:-?}" \
		"${BENCH_HEXD_RC[D]:-?}" "${BENCH_HEXD_RC[api1]:-?}" "${BENCH_HEXD_RC[api2]:-?}"
	printf 'Warning and error log lines: %s (first ones in `%s/hexd-warnings.txt`).\n' \
		"$BENCH_WARN_LINES" "$BENCH_RAW_KEPT"
}

# Where the write cases spend PostgreSQL's time: its CPU, and what the measured clients'
# backends were doing (sampled).
bench_report_postgres() {
	local x
	printf '| case | PostgreSQL CPU (%% of one core) | per request or transaction | client backends not idle, mean number by state and wait event (sampled 5 times a second; %s samples in t) |\n' \
		"${RES[t.pg_samples]}"
	printf '|---|---:|---:|---|\n'
	for x in f3 mp w w-drain t; do
		printf '| %s | %s%% | %s µs%s | %s |\n' "$x" "${RES[$x.pg_cpu_pct]}" "${RES[$x.pg_cpu_us]}" \
			"$([ "$x" != w-drain ] || printf ' per event posted')" "${RES[$x.pg_states]}"
	done
	printf '\nPostgreSQL CPU is the postmaster and all its processes (backends, WAL writer, checkpointer, ...; those that exited during the case included). '
	printf 'States from `pg_stat_activity`, the six most frequent (`CPU`: waiting for nothing; `LWLock:WALWrite`: waiting for another backend to flush the WAL its commit needs, `IO:WALSync`: flushing it; `Lock:*`: row or transaction locks; `idle in transaction`: waiting for its client in the middle of a transaction); backends idle between transactions are left out. '
	printf 'f3 has 64 pgbench connections; hexd A has one per api worker (8) plus one per event thread (the relay and one per consumer group); B also has its pool on this database, idle during these cases.\n'
}

# Errors (non-2xx and socket) of every run of the cluster case, direct or through nginx.
bench_cluster_errors() {
	local n=0 x
	for x in cg-direct cg-nginx1 cg-nginx2 cp-direct cp-nginx1 cp-nginx2; do
		n=$((n + ${RES[$x.errors]}))
	done
	printf '%s\n' "$n"
}

bench_cluster_row() {
	local k=$1 prefix=${1%%-*} label=$2
	printf '| %s | %s | %s | %s | %s | %s | %s | %s / %s (%s%% / %s%%) | %s µs | %s |\n' "$k" \
		"$label" "$(bench_int "${RES[$k.rps]}")" "$(bench_ms "${RES[$k.p50_us]}")" \
		"$(bench_ms "${RES[$k.p99_us]}")" "${RES[$k.errors]}" \
		"$(bench_pct "${RES[$k.rps]}" "${RES[$prefix-direct.rps]}")" \
		"${RES[$k.up1]}" "${RES[$k.up2]}" "${RES[$k.share1]}" "${RES[$k.share2]}" \
		"${RES[$k.hexd_us]}" \
		"$(case $k in *-direct) printf -- '-' ;; *) printf '%s µs' "${RES[$k.nginx_us]}" ;; esac)"
}

# The cluster case (issue 7): the table, the ratios, the spread and what they can mean on
# this machine.
bench_report_cluster() {
	local x
	printf 'hexd api1 and api2 (`HEX_ROLES=api`, Redis cache, access log and metrics on, as A) on the same PostgreSQL and Redis; nginx from `config/nginx.conf.in` as shipped (only its ports filled in; `worker_processes auto`, access log on). '
	printf 'Each side ran %s times for %ss, alternating (direct, nginx1, nginx2, nginx2, nginx1, direct, twice), same wrk command (`-t2 -c64`, timeout 2 s) on each; numbers are the means of the runs. ' \
		"$BENCH_ABC_EACH" "$BENCH_ALT_SECONDS"
	printf 'Requests per instance are the route'"'"'s `hex_http_requests_total` counters of each hexd, read before and after every run.\n\n'
	printf '| case | what | req/s | p50 | p99 | errors | of direct | requests api1 / api2 | hexd CPU per request | nginx CPU per request |\n'
	printf '|---|---|---:|---:|---:|---:|---:|---|---:|---:|\n'
	bench_cluster_row cg-direct "api1 \`GET /v1/users/:id\` direct, Redis cache warm"
	bench_cluster_row cg-nginx1 "the same through nginx, both upstream slots on api1 (the proxy alone)"
	bench_cluster_row cg-nginx2 "the same through nginx, api1 and api2"
	bench_cluster_row cp-direct "api1 \`POST /v1/messages\` direct"
	bench_cluster_row cp-nginx1 "the same through nginx, both upstream slots on api1"
	bench_cluster_row cp-nginx2 "the same through nginx, api1 and api2"
	printf '\n**2 instances behind nginx / 1 direct: reads %sx, posts %sx.** ' "${RES[cg.ratio2]}" \
		"${RES[cp.ratio2]}"
	printf '1 instance behind nginx / 1 direct (what the proxy hop costs): reads %sx, posts %sx. ' \
		"${RES[cg.ratio1]}" "${RES[cp.ratio1]}"
	printf 'Spread over the 2-instance runs: reads api1 %s%% / api2 %s%% (per run, api1 %s), posts api1 %s%% / api2 %s%% (per run, api1 %s); the band is %s-%s%% per instance. ' \
		"${RES[cg-nginx2.share1]}" "${RES[cg-nginx2.share2]}" "${RES[cg-nginx2.share_range]}" \
		"${RES[cp-nginx2.share1]}" "${RES[cp-nginx2.share2]}" "${RES[cp-nginx2.share_range]}" \
		"$BENCH_SPREAD_MIN" "$BENCH_SPREAD_MAX"
	printf 'nginx access-log lines (one per request it answered) and retried requests (more than one upstream tried): '
	local sep=''
	for x in cg-nginx1 cg-nginx2 cp-nginx1 cp-nginx2; do
		printf '%s%s %s lines for %s wrk replies, %s retried' "$sep" "$x" "${RES[$x.lb_lines]}" \
			"${RES[$x.requests]}" "${RES[$x.lb_retried]}"
		sep='; '
	done
	printf '. nginx error-log lines: %s (first ones in `%s/nginx-cluster-errors.txt`). ' \
		"${RES[cluster.nginx_errors]}" "$BENCH_RAW_KEPT"
	printf 'The posts added %s rows for %s replies 201. ' "${RES[cp.rows]}" "${RES[cp.ok]}"
	printf 'CPU (%% of one core; hexd: api1 + api2, nginx: master + workers): '
	sep=''
	for x in cg-direct cg-nginx1 cg-nginx2 cp-direct cp-nginx1 cp-nginx2; do
		printf '%s%s hexd %s%%, nginx %s%%' "$sep" "$x" "${RES[$x.hexd_pct]}" "${RES[$x.nginx_pct]}"
		sep='; '
	done
	printf '. Runs'"'"' req/s, in the order run: '
	sep=''
	for x in cg-direct cg-nginx1 cg-nginx2 cp-direct cp-nginx1 cp-nginx2; do
		printf '%s%s: %s' "$sep" "$x" "${RES[$x.runs]}"
		sep='; '
	done
	printf ' (per-run counts in `%s/cluster-cg.txt` and `cluster-cp.txt`).\n\n' "$BENCH_RAW_KEPT"
	printf 'What the ratio means here: this machine has %s cores, and both hexd, nginx'"'"'s workers, wrk (and for the posts PostgreSQL) share them. ' \
		"$(nproc)"
	printf 'A second instance adds no core, so the 2-instance number measures what the proxy hop costs and whether nginx spreads the load evenly, not how the API scales; '
	printf 'on machines where each instance has its own cores the same setup would be expected to scale, which this run cannot show.\n'
}

# The event pipeline under the w load (issue 5).
bench_report_events() {
	printf 'The events of the w load (%s stored; the check event sent before it is left out), from webhook received (`stripe_events.received_at`) to ledger posted (`journal_transactions.created_at` of `payment:<payment id>`), both stamped by hexd: ' \
		"${RES[lat.events]}"
	printf '**p50 %s ms, p99 %s ms, max %s ms** over %s posted. ' "${RES[lat.p50_ms]}" \
		"${RES[lat.p99_ms]}" "${RES[lat.max_ms]}" "${RES[lat.posted]}"
	printf 'The last one was posted %s s after the load stopped (%s events were posted after it; the wait for the consumer, at most %s s, left %s unprocessed). ' \
		"${RES[lat.drain_s]}" "${RES[lat.behind]}" "$BENCH_DRAIN_TIMEOUT" "${RES[lat.left]}"
	printf 'Failed attempts on these events: %s; dead letters: %s. ' "${RES[lat.failures]}" \
		"${RES[lat.dead]}"
	printf 'hexd A runs the worker role with its API (`HEX_ROLES=api,worker`, the default): during w its relay and consumer threads share the 2 cores with the webhook intake (and with wrk and PostgreSQL), so these latencies include waiting for the intake; a worker-only hexd on its own cores would not.\n'
}

bench_report_targets() {
	printf '| target | measured | result |\n|---|---|---|\n'
	printf '| cached reads >= 40%% of nginx, p99 < 5 ms, 0 errors | %s of a, p99 %s ms, %s errors | %s |\n' \
		"$(bench_pct "${RES[b.rps]}" "${RES[a.best]}")" "$(bench_ms "${RES[b.p99_us]}")" \
		"${RES[b.errors]}" \
		"$(bench_verdict "${RES[b.rps]} >= 0.4 * ${RES[a.best]} && ${RES[b.p99_us]} < 5000 && ${RES[b.errors]} == 0")"
	printf '| uncached reads >= 30%% of pgbench -S tps | %s of f2 | %s |\n' \
		"$(bench_pct "${RES[c.rps]}" "${RES[f2.rps]}")" \
		"$(bench_verdict "${RES[c.rps]} >= 0.3 * ${RES[f2.rps]}")"
	printf '| cached >= 2x uncached | %s | %s |\n' \
		"$(awk -v a="${RES[b.rps]}" -v b="${RES[c.rps]}" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }')" \
		"$(bench_verdict "${RES[b.rps]} >= 2 * ${RES[c.rps]}")"
	printf '| reads during 32 logins >= 50%% of reads alone | %s of b | %s |\n' \
		"$(bench_pct "${RES[e.rps]}" "${RES[b.rps]}")" \
		"$(bench_verdict "${RES[e.rps]} >= 0.5 * ${RES[b.rps]}")"
	printf '| access log + metrics cost on cached reads < 10%% (issue 3) | %s fewer req/s than without (o-on vs o-off; CPU per request %s µs vs %s µs, %s more), %s errors | %s |\n' \
		"$(bench_overhead "${RES[o-on.rps]}" "${RES[o-off.rps]}")" \
		"${RES[o-on.cpu_us]}" "${RES[o-off.cpu_us]}" \
		"$(bench_more "${RES[o-on.cpu_us]}" "${RES[o-off.cpu_us]}")" \
		"$((${RES[o-on.errors]} + ${RES[o-off.errors]}))" \
		"$(bench_verdict "${RES[o-on.rps]} > 0.9 * ${RES[o-off.rps]} && ${RES[o-on.errors]} + ${RES[o-off.errors]} == 0")"
	printf '| cached reads with 50 payments in flight at a 2 s Stripe >= 90%% of reads alone (issue 4) | %s of s-alone, %s read errors, %s payment errors | %s |\n' \
		"$(bench_pct "${RES[s-busy.rps]}" "${RES[s-alone.rps]}")" \
		"$((${RES[s-alone.errors]} + ${RES[s-busy.errors]}))" "${RES[s-pay.errors]}" \
		"$(bench_verdict "${RES[s-busy.rps]} >= 0.9 * ${RES[s-alone.rps]} && ${RES[s-alone.errors]} + ${RES[s-busy.errors]} + ${RES[s-pay.errors]} == 0")"
	printf '| transfers >= 50%% of pgbench TPC-B tps (issue 5), 0 errors, every 201 one transfer, books balanced | %s of f3 (%s req/s vs %s tps), %s errors | %s |\n' \
		"$(bench_pct "${RES[t.rps]}" "${RES[f3.rps]}")" "$(bench_int "${RES[t.rps]}")" \
		"$(bench_int "${RES[f3.rps]}")" "${RES[t.errors]}" \
		"$(bench_verdict "${RES[t.rps]} >= 0.5 * ${RES[f3.rps]} && ${RES[t.errors]} == 0")"
	printf '| event latency under the w load reported (issue 5 sets no threshold): every event posted, none failed | p50 %s ms, p99 %s ms; %s of %s posted, %s failed attempts, %s dead letters | %s |\n' \
		"${RES[lat.p50_ms]}" "${RES[lat.p99_ms]}" "${RES[lat.posted]}" "${RES[lat.events]}" \
		"${RES[lat.failures]}" "${RES[lat.dead]}" \
		"$(bench_verdict "${RES[lat.posted]} == ${RES[lat.events]} && ${RES[lat.failures]} + ${RES[lat.dead]} == 0")"
	printf '| messages and webhook ingest: ratios reported (issues 3, 4 set no threshold), 0 errors, every reply stored once | ml %s of f2; mp %s of f2, %s of f3; w %s of f3; %s errors, %s events sent twice | %s |\n' \
		"$(bench_pct "${RES[ml.rps]}" "${RES[f2.rps]}")" "$(bench_pct "${RES[mp.rps]}" "${RES[f2.rps]}")" \
		"$(bench_pct "${RES[mp.rps]}" "${RES[f3.rps]}")" "$(bench_pct "${RES[w.rps]}" "${RES[f3.rps]}")" \
		"$((${RES[ml.errors]} + ${RES[mp.errors]} + ${RES[w.errors]}))" "${RES[w.duplicates]}" \
		"$(bench_verdict "${RES[ml.errors]} + ${RES[mp.errors]} + ${RES[w.errors]} + ${RES[w.duplicates]} == 0")"
	printf '| cluster (issue 7): 0 errors direct and through nginx, each of 2 instances behind nginx gets %s-%s%% of the requests; the ratio 2 behind nginx / 1 direct reported (no threshold: 2 cores) | reads %sx (api1 %s%%, api2 %s%%), posts %sx (api1 %s%%, api2 %s%%); %s errors | %s |\n' \
		"$BENCH_SPREAD_MIN" "$BENCH_SPREAD_MAX" \
		"${RES[cg.ratio2]}" "${RES[cg-nginx2.share1]}" "${RES[cg-nginx2.share2]}" \
		"${RES[cp.ratio2]}" "${RES[cp-nginx2.share1]}" "${RES[cp-nginx2.share2]}" \
		"$(bench_cluster_errors)" \
		"$(bench_verdict "$(bench_cluster_errors) == 0 && ${RES[cg.spread_ok]} == 1 && ${RES[cp.spread_ok]} == 1")"
}

bench_write_report() {
	local x
	{
		cat "$BENCH_DIR/method.md"
		printf '\n## Last run\n\n'
		printf -- '- Date: %s\n' "$BENCH_DATE"
		bench_machine
		bench_versions
		printf -- '- Command: `%s` (took %ss)\n' "$BENCH_COMMAND" "$BENCH_ELAPSED"
		printf -- '- Raw outputs: `%s/`\n\n' "$BENCH_RAW_KEPT"
		bench_settings
		printf '\n### Results\n\n'
		bench_report_results
		printf '\n### Cluster: two API instances behind nginx vs one direct (issue 7)\n\n'
		bench_report_cluster
		printf '\n### Event pipeline: webhook received -> ledger posted (issue 5)\n\n'
		bench_report_events
		printf '\n### hexd resources\n\n'
		bench_report_hexd
		printf '\n### PostgreSQL during the write cases\n\n'
		bench_report_postgres
		printf '\n### Targets\n\n'
		bench_report_targets
		printf '\n### Commands\n\nPorts are picked per run.\n\n'
		for x in $BENCH_CASES; do
			printf -- '- %s: `%s`\n' "$x" "${CMD[$x]}"
		done
		printf -- '- event latency, after w and the wait for the ledger consumer: `%s`\n' "${CMD[lat]}"
		printf -- '- o-on, o-off, s-alone, s-busy: each the command shown, run %s times for %ss (`-d%ss`), the two sides of a case in the order first, second, second, first, three times\n' \
			"$BENCH_ABBA_EACH" "$BENCH_ALT_SECONDS" "$BENCH_ALT_SECONDS"
		printf -- '- cg-*, cp-*: each the command shown, run %s times for %ss (`-d%ss`), the three sides of a case in the order direct, nginx1, nginx2, nginx2, nginx1, direct, twice; nginx configuration: `%s/nginx-cluster.conf` (config/nginx.conf.in with the ports of this run)\n' \
			"$BENCH_ABC_EACH" "$BENCH_ALT_SECONDS" "$BENCH_ALT_SECONDS" "$BENCH_RAW_KEPT"
	} >"$1"
}

# 300000 -> 300,000
bench_thousands() {
	printf '%s' "$1" | rev | sed -E 's/([0-9]{3})/\1,/g; s/,$//' | rev
}

bench_mib() {
	case $1 in
	'' | *[!0-9]*) printf '?' ;;
	*) awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' ;;
	esac
}
