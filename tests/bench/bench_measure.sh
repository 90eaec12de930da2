# shellcheck shell=bash
# bench_measure.sh: runs the load generators (wrk, redis-benchmark, pgbench), keeps each
# raw output in $BENCH_RAW, and records its numbers as RES[<case>.<key>] (rps, p50_us,
# p99_us, errors, requests, ...) and the command as CMD[<case>]. Sourced by run.sh.

# shellcheck disable=SC2034 # read by bench_report.sh
declare -A RES=() CMD=()
BENCH_BG_PIDS=()

# wrk gives a Lua script no path of its own; they find report.lua through this.
export BENCH_LUA_DIR=$BENCH_DIR

bench_kill_background() {
	local pid
	for pid in "${BENCH_BG_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	BENCH_BG_PIDS=()
}

# bench_wrk_start CASE SCRIPT URL THREADS CONNS TIMEOUT [SECONDS]: wrk in the background
# (pid in BENCH_WRK_PID), run from the project root so that CMD reads as typed there.
bench_wrk_start() {
	local name=$1 script=$2 url=$3 threads=$4 conns=$5 timeout=$6
	local seconds=${7:-$BENCH_DURATION}
	local cmd=(wrk -t"$threads" -c"$conns" -d"${seconds}s" --timeout "$timeout" --latency
		-s "tests/bench/$script" "$url")
	CMD[$name]="${cmd[*]}"
	(cd "$HEX_ROOT" && exec "${cmd[@]}") >"$BENCH_RAW/wrk-$name.txt" 2>&1 9>&- &
	BENCH_WRK_PID=$!
	BENCH_BG_PIDS+=("$BENCH_WRK_PID")
}

# bench_wrk_finish CASE PID: waits for that wrk and parses the line report.lua printed.
bench_wrk_finish() {
	local name=$1 pid=$2 out=$BENCH_RAW/wrk-$1.txt rc=0 line kv
	wait "$pid" || rc=$?
	line=$(grep '^BENCH ' "$out" | tail -n 1 || true)
	if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
		hex_show_log_tail "$out"
		hex_die "wrk for case $name failed (exit $rc)"
	fi
	for kv in ${line#BENCH }; do
		RES[$name.${kv%%=*}]=${kv#*=}
	done
}

# bench_cpu_mark CASE PID / bench_cpu_done CASE PID: a hexd's CPU use over a case, from
# /proc: cpu_pct (% of one core, all threads), cpu_us (CPU time per request), cpu_ticks and
# threads ("main 55%, hexd 49%": per thread name, trailing numbers dropped, so threads
# named like "loop-1" and "loop-2" add up; the process's first thread is "main"; names
# under 1% left out).
bench_cpu_mark() {
	bench_cpu_ticks "$2" >"$BENCH_TMP/cpu-$1.total"
	bench_cpu_threads "$2" >"$BENCH_TMP/cpu-$1.threads"
}

bench_cpu_done() {
	local name=$1 pid=$2 t0 secs
	t0=$(<"$BENCH_TMP/cpu-$name.total")
	secs=$(awk -v us="${RES[$name.duration_us]}" 'BEGIN { print us / 1e6 }')
	RES[$name.cpu_ticks]=$(($(bench_cpu_ticks "$pid") - t0))
	read -r "RES[$name.cpu_pct]" "RES[$name.cpu_us]" < <(awk \
		-v t="${RES[$name.cpu_ticks]}" -v hz="$BENCH_CLK_TCK" -v s="$secs" \
		-v n="${RES[$name.requests]}" \
		'BEGIN { printf "%.0f %.0f\n", 100 * t / hz / s, (n ? t * 1e6 / hz / n : 0) }')
	RES[$name.threads]=$(bench_cpu_threads "$pid" | awk -v hz="$BENCH_CLK_TCK" -v s="$secs" '
		NR == FNR { before[$1] = $3; next }
		{ use[$2] += $3 - before[$1] }
		END {
			for (g in use) printf "%s %.0f\n", g, 100 * use[g] / hz / s
		}' "$BENCH_TMP/cpu-$name.threads" - |
		sort -k2,2nr -k1,1 | awk '$2 >= 1 { printf "%s%s %s%%", (n++ ? ", " : ""), $1, $2 }')
}

# One line per thread of PID: tid, name group, utime + stime in ticks.
bench_cpu_threads() {
	local pid=$1 task tid comm ticks
	for task in /proc/"$pid"/task/*; do
		tid=${task##*/}
		comm=$(cat "$task/comm" 2>/dev/null) || continue
		[ "$tid" = "$pid" ] && comm=main
		comm=${comm//[[:space:]]/_}
		comm=$(sed -E 's/[-_:.#]?[0-9]+$//' <<<"$comm")
		# The name in stat may hold spaces and parentheses: count fields after the last ')'.
		ticks=$(sed -E 's/.*\) //' "$task/stat" 2>/dev/null | awk '{ print $12 + $13 }')
		[ -n "$ticks" ] && printf '%s %s %s\n' "$tid" "${comm:-thread}" "$ticks"
	done
}

# bench_wrk CASE SCRIPT URL THREADS CONNS TIMEOUT [PID] [SECONDS]: one measured run in
# the foreground; with PID (a hexd), also that process's CPU use.
bench_wrk() {
	local name=$1 pid=${7:-} seconds=${8:-$BENCH_DURATION}
	[ -n "$pid" ] && bench_cpu_mark "$name" "$pid"
	hex_say "case $name: ${seconds}s of $3"
	bench_wrk_start "$1" "$2" "$3" "$4" "$5" "$6" "$seconds"
	bench_wrk_finish "$name" "$BENCH_WRK_PID"
	[ -z "$pid" ] || bench_cpu_done "$name" "$pid"
}

# A short run with the same parameters whose numbers are thrown away: connections,
# PostgreSQL's buffers and prepared statements, and the CPU caches start warm.
bench_warmup() {
	local name=$1 script=$2 url=$3 threads=$4 conns=$5 timeout=$6 keep=$BENCH_RAW
	[ "$BENCH_WARMUP" -gt 0 ] || return 0
	BENCH_RAW=$BENCH_TMP
	bench_wrk_start "warmup-$name" "$script" "$url" "$threads" "$conns" "$timeout" \
		"$BENCH_WARMUP"
	BENCH_RAW=$keep
	wait "$BENCH_WRK_PID" || hex_die "wrk warm-up for case $name failed"
}

# redis-benchmark with --csv instead of -q: the same load, but the output carries p99.
bench_redis() {
	local name=$1 port=$2 out=$BENCH_RAW/redis-benchmark.txt line
	local cmd=(redis-benchmark -h 127.0.0.1 -p "$port" -n 200000 -c 64 -t get --csv)
	CMD[$name]="${cmd[*]}"
	hex_say "case $name: ${cmd[*]}"
	"${cmd[@]}" >"$out" 2>&1 9>&- || hex_die "redis-benchmark failed: $(tail -n 3 "$out")"
	line=$(grep '^"GET' "$out" | tail -n 1 | tr -d '"')
	[ -n "$line" ] || hex_die "redis-benchmark printed no GET line (see $out)"
	# "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
	# "p99_latency_ms","max_latency_ms"
	IFS=, read -r _ "RES[$name.rps]" _ _ "RES[$name.p50_ms]" _ "RES[$name.p99_ms]" _ <<<"$line"
	RES[$name.p50_us]=$(awk -v v="${RES[$name.p50_ms]}" 'BEGIN { printf "%.0f", v * 1000 }')
	RES[$name.p99_us]=$(awk -v v="${RES[$name.p99_ms]}" 'BEGIN { printf "%.0f", v * 1000 }')
	RES[$name.errors]=$(grep -ci 'error' "$out" || true)
	RES[$name.requests]=200000
}

# bench_pgbench CASE PORT DB OUT [OPTION...]: pgbench -c 64 -j 2 for BENCH_DURATION with
# the options given (-S: the select-only script; none: TPC-B), output in $BENCH_RAW/OUT.
# Per-transaction logs (-l, kept out of the raw folder: they are large) give p50 and p99,
# which pgbench's summary lacks.
bench_pgbench() {
	local name=$1 port=$2 db=$3 out=$BENCH_RAW/$4 logs=$BENCH_TMP/pgbench-log-$1
	shift 4
	local cmd=(pgbench "$@" -c 64 -j 2 -T "$BENCH_DURATION" -h 127.0.0.1 -p "$port"
		-U "$HEX_SERVER_USER" "$db")
	CMD[$name]="${cmd[*]}"
	hex_say "case $name: ${cmd[*]}"
	mkdir -p "$logs"
	(cd "$logs" && exec "${cmd[@]}" -l --log-prefix=tx) >"$out" 2>&1 9>&- ||
		hex_die "pgbench failed: $(tail -n 3 "$out")"
	RES[$name.rps]=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | tail -n 1)
	RES[$name.requests]=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
	RES[$name.errors]=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
	: "${RES[$name.errors]:=0}"
	[ -n "${RES[$name.rps]}" ] || hex_die "pgbench printed no tps (see $out)"
	# Log lines: client_id transaction_no latency_us script_no epoch epoch_us.
	local pcts
	pcts=$(cat "$logs"/tx.* | awk '{ print $3 }' | sort -n |
		awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "0 0"; exit }
			p50 = int(NR * 0.50); if (p50 < 1) p50 = 1
			p99 = int(NR * 0.99); if (p99 < 1) p99 = 1
			print v[p50], v[p99] }')
	read -r "RES[$name.p50_us]" "RES[$name.p99_us]" <<<"$pcts"
	rm -rf "$logs"
}

bench_redis_hits() {
	redis-cli -h 127.0.0.1 -p "$1" info stats | tr -d '\r' |
		sed -n 's/^keyspace_hits:\([0-9]*\)$/\1/p'
}
