#!/usr/bin/env bash
# run.sh: the hex benchmark. Not part of the test command; run it by hand.
#
# In one run, on loopback only: builds hexd (Release, build-bench/), starts a private
# PostgreSQL 15 and Redis in a temp folder, two hexd (A with the Redis cache, B without)
# and an nginx baseline, seeds users through the API, then measures with wrk, and
# redis-benchmark and pgbench on the same servers. Writes docs/BENCHMARKS.md and keeps
# the raw outputs in tests/bench/last-run/. Stops everything it started, however it ends.
# tests/bench/method.md says what is measured and why.
#
# Environment: HEX_BENCH_DURATION (10, seconds per measured run), HEX_BENCH_WARMUP (2),
# HEX_BENCH_LOGIN_USERS (64), HEX_BENCH_PORT_BASE (28400, first port tried),
# HEX_BENCH_LOG_LEVEL (info, hexd's), HEX_BENCH_HEXD (a hexd binary to use instead of
# building one) with HEX_BENCH_REVISION (what it was built from, for the report),
# HEX_BENCH_OUT (docs/BENCHMARKS.md, raw outputs in tests/bench/last-run/; another path
# gets its raw outputs in <path>.raw/; "-" keeps nothing).
set -euo pipefail

HEX_SCRIPT=bench
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=scripts/lib.sh
. "$BENCH_DIR/../../scripts/lib.sh"
# shellcheck source=tests/bench/bench_servers.sh
. "$BENCH_DIR/bench_servers.sh"
# shellcheck source=tests/bench/bench_seed.sh
. "$BENCH_DIR/bench_seed.sh"
# shellcheck source=tests/bench/bench_measure.sh
. "$BENCH_DIR/bench_measure.sh"
# shellcheck source=tests/bench/bench_report.sh
. "$BENCH_DIR/bench_report.sh"

# Bash 5.2 would otherwise read & in ${var//pattern/replacement} as the match.
shopt -u patsub_replacement 2>/dev/null || true

BENCH_DURATION=${HEX_BENCH_DURATION:-10}
BENCH_WARMUP=${HEX_BENCH_WARMUP:-2}
BENCH_LOGIN_USERS=${HEX_BENCH_LOGIN_USERS:-64}
BENCH_LOG_LEVEL=${HEX_BENCH_LOG_LEVEL:-info}
BENCH_OUT=${HEX_BENCH_OUT:-$HEX_ROOT/docs/BENCHMARKS.md}
case $BENCH_OUT in - | /*) ;; *) BENCH_OUT=$PWD/$BENCH_OUT ;; esac
BENCH_PASSWORD_COST=5
BENCH_CLK_TCK=$(getconf CLK_TCK)
BENCH_DB=hex_bench
BENCH_PGBENCH_DB=pgbench

# tool -> the Debian package that has it
BENCH_TOOLS=(
	wrk:wrk nginx:nginx-light redis-server:redis-server redis-benchmark:redis-tools
	redis-cli:redis-tools pgbench:postgresql-client-15 psql:postgresql-client-15
	curl:curl cmake:cmake cc:build-essential pkg-config:pkg-config ss:iproute2
	runuser:util-linux flock:util-linux getconf:libc-bin
)

bench_check_tools() {
	local entry tool missing=() packages=()
	for entry in "${BENCH_TOOLS[@]}"; do
		tool=${entry%%:*}
		command -v "$tool" >/dev/null 2>&1 && continue
		missing+=("$tool")
		case " ${packages[*]} " in *" ${entry#*:} "*) ;; *) packages+=("${entry#*:}") ;; esac
	done
	if [ ! -x "$HEX_PG_BIN/postgres" ]; then
		missing+=("$HEX_PG_BIN/postgres")
		packages+=(postgresql-15)
	fi
	[ "${#missing[@]}" -eq 0 ] && return 0
	hex_die "missing: ${missing[*]}; install them with: apt-get install ${packages[*]}"
}

bench_check_number() {
	case $2 in '' | *[!0-9]*) hex_die "$1 must be a whole number, got '$2'" ;; esac
}

bench_random_hex() {
	od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

bench_hexd_binary() {
	if [ -n "${HEX_BENCH_HEXD:-}" ]; then
		BENCH_HEXD=$HEX_BENCH_HEXD
		BENCH_BUILD="given as HEX_BENCH_HEXD"
	else
		hex_say "building hexd (Release) in build-bench/ (log: $BENCH_TMP/build.log)"
		hex_build build-bench -DCMAKE_BUILD_TYPE=Release >"$BENCH_TMP/build.log" 2>&1 || {
			hex_show_log_tail "$BENCH_TMP/build.log"
			hex_die "the Release build in build-bench/ failed"
		}
		BENCH_HEXD=$HEX_ROOT/build-bench/bin/hexd
		BENCH_BUILD="CMAKE_BUILD_TYPE=Release, build-bench/"
	fi
	[ -x "$BENCH_HEXD" ] || hex_die "no hexd binary at $BENCH_HEXD"
	BENCH_HEXD_VERSION=$("$BENCH_HEXD" --version 2>&1 | head -n 1)
	if [ -n "${HEX_BENCH_HEXD:-}" ]; then
		# Only the caller knows what a given binary was built from.
		BENCH_COMMIT=${HEX_BENCH_REVISION:-built from an unknown revision}
		return 0
	fi
	BENCH_COMMIT="commit $(git -C "$HEX_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
	if [ -n "$(git -C "$HEX_ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
		BENCH_COMMIT="$BENCH_COMMIT + uncommitted changes"
	fi
}

bench_start_data_servers() {
	hex_pg_start bench "$PG_PORT" HEX_BENCH_PORT_BASE
	hex_redis_start bench "$REDIS_PORT" HEX_BENCH_PORT_BASE
	hex_pg_create_database "$PG_PORT" "$BENCH_DB"
	hex_pg_create_database "$PG_PORT" "$BENCH_PGBENCH_DB"
	hex_say "initialising the pgbench database (scale 10)"
	pgbench -i -s 10 -q -h 127.0.0.1 -p "$PG_PORT" -U "$HEX_SERVER_USER" "$BENCH_PGBENCH_DB" \
		>"$BENCH_RAW/pgbench-init.txt" 2>&1 9>&- ||
		hex_die "pgbench -i failed: $(tail -n 3 "$BENCH_RAW/pgbench-init.txt")"
}

bench_psql() {
	psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U "$HEX_SERVER_USER" -d "$1" -v ON_ERROR_STOP=1 \
		-c "$2" >/dev/null
}

bench_start_hexd() {
	BENCH_HEXD_ENV=(
		HEX_DATABASE_URL="host=127.0.0.1 port=$PG_PORT user=$HEX_SERVER_USER dbname=$BENCH_DB"
		HEX_JWT_SECRET="$(bench_random_hex 32)"
		HEX_ADMIN_TOKEN="$(bench_random_hex 32)"
		HEX_PASSWORD_COST="$BENCH_PASSWORD_COST"
		HEX_LOGIN_LIMIT_EMAIL=0
		HEX_LOGIN_LIMIT_ADDR=0
		HEX_ACCESS_TTL=3600
		HEX_GATEWAY=simulated
		HEX_LOG_FORMAT=json
		HEX_LOG_LEVEL="$BENCH_LOG_LEVEL"
	)
	bench_hexd_start A "$A_PORT" "$A_PAY_PORT" "$A_ADMIN_PORT" "redis://127.0.0.1:$REDIS_PORT/0"
	bench_hexd_start B "$B_PORT" "$B_PAY_PORT" "$B_ADMIN_PORT" ''
}

bench_measure_all() {
	local api_a=http://127.0.0.1:$A_PORT api_b=http://127.0.0.1:$B_PORT
	local user_path=/v1/users/$BENCH_READER_ID
	local pid_a=${BENCH_HEXD_PID[A]} pid_b=${BENCH_HEXD_PID[B]} hits

	# Baselines first, while both hexd are idle.
	bench_warmup a plain.lua "http://127.0.0.1:$NGINX_PORT$user_path" 2 64 2s
	bench_wrk a plain.lua "http://127.0.0.1:$NGINX_PORT$user_path" 2 64 2s
	bench_redis f1 "$REDIS_PORT"
	bench_pgbench f2 "$PG_PORT" "$BENCH_PGBENCH_DB"

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

	# a2: nginx again. On a shared 2-core machine the baseline moves between runs; the
	# second measurement shows by how much, and the better of the two is the ceiling.
	bench_wrk a2 plain.lua "http://127.0.0.1:$NGINX_PORT$user_path" 2 64 2s
	RES[a.best]=$(awk -v x="${RES[a.rps]}" -v y="${RES[a2.rps]}" 'BEGIN { print (x > y ? x : y) }')

	BENCH_RSS_A=$(bench_peak_rss_kib "$pid_a")
	BENCH_RSS_B=$(bench_peak_rss_kib "$pid_b")
}

bench_summary() {
	local k
	printf '\n%-8s %10s %9s %9s %7s\n' case 'req/s' 'p50 ms' 'p99 ms' errors
	for k in a b h c d e e-login a2 f1 f2; do
		printf '%-8s %10s %9s %9s %7s\n' "$k" "$(bench_int "${RES[$k.rps]}")" \
			"$(bench_ms "${RES[$k.p50_us]}")" "$(bench_ms "${RES[$k.p99_us]}")" "${RES[$k.errors]}"
	done
	printf '\n'
}

main() {
	local started=$SECONDS
	BENCH_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
	# Other work on the machine skews every number; the report says how busy it was.
	BENCH_LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	BENCH_COMMAND="tests/bench/run.sh"
	local var
	for var in HEX_BENCH_DURATION HEX_BENCH_WARMUP HEX_BENCH_LOGIN_USERS HEX_BENCH_LOG_LEVEL \
		HEX_BENCH_HEXD HEX_BENCH_REVISION; do
		[ -n "${!var:-}" ] && BENCH_COMMAND="$var=${!var} $BENCH_COMMAND"
	done
	bench_check_number HEX_BENCH_DURATION "$BENCH_DURATION"
	bench_check_number HEX_BENCH_WARMUP "$BENCH_WARMUP"
	bench_check_number HEX_BENCH_LOGIN_USERS "$BENCH_LOGIN_USERS"
	[ "$BENCH_LOGIN_USERS" -ge 5 ] || hex_die "HEX_BENCH_LOGIN_USERS must be at least 5"

	hex_init
	hex_at_exit bench_kill_background
	hex_lock bench
	bench_check_tools
	hex_ensure_server_user

	BENCH_TMP=$(mktemp -d /tmp/hex-bench.XXXXXX)
	chmod 755 "$BENCH_TMP"
	hex_at_exit "rm -rf --one-file-system '$BENCH_TMP'"
	HEX_SERVER_DIR=$BENCH_TMP
	BENCH_RAW=$BENCH_TMP/raw
	mkdir -p "$BENCH_RAW"

	bench_hexd_binary
	bench_pick_port PG_PORT
	bench_pick_port REDIS_PORT
	bench_pick_port NGINX_PORT
	bench_pick_port A_PORT
	bench_pick_port A_PAY_PORT
	bench_pick_port A_ADMIN_PORT
	bench_pick_port B_PORT
	bench_pick_port B_PAY_PORT
	bench_pick_port B_ADMIN_PORT

	bench_start_data_servers
	bench_start_hexd
	bench_seed "http://127.0.0.1:$A_PORT" "http://127.0.0.1:$B_PORT"
	bench_psql "$BENCH_DB" 'VACUUM ANALYZE'
	bench_psql postgres 'CHECKPOINT'
	bench_wait_idle "${BENCH_HEXD_PID[A]}" "hexd A"
	BENCH_LOGIN_MS=$(bench_login_latency_ms "http://127.0.0.1:$A_PORT")
	bench_nginx_start "$NGINX_PORT" "$BENCH_USER_JSON"

	bench_measure_all

	bench_hexd_stop A
	bench_hexd_stop B
	BENCH_WARN_LINES=$(cat "$(bench_hexd_log A)" "$(bench_hexd_log B)" |
		grep -cE '"level":"(warn|error)"' || true)
	grep -hE '"level":"(warn|error)"' "$(bench_hexd_log A)" "$(bench_hexd_log B)" |
		head -n 50 >"$BENCH_RAW/hexd-warnings.txt" || true
	wc -l "$(bench_hexd_log A)" "$(bench_hexd_log B)" | sed "s|$BENCH_TMP/||" \
		>"$BENCH_RAW/hexd-log-lines.txt"
	BENCH_ELAPSED=$((SECONDS - started))
	BENCH_LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

	# The raw outputs stay with the report they belong to: last-run/ goes with
	# docs/BENCHMARKS.md, and a report written elsewhere gets its own <report>.raw/.
	if [ "$BENCH_OUT" != - ]; then
		local raw_keep=$BENCH_OUT.raw
		[ "$BENCH_OUT" = "$HEX_ROOT/docs/BENCHMARKS.md" ] && raw_keep=$BENCH_DIR/last-run
		rm -rf "$raw_keep"
		cp -r "$BENCH_RAW" "$raw_keep"
		BENCH_RAW_KEPT=${raw_keep#"$HEX_ROOT"/}
		bench_write_report "$BENCH_OUT"
		hex_say "wrote $BENCH_OUT (raw outputs in $raw_keep)"
	fi
	bench_summary
	hex_say "took ${BENCH_ELAPSED}s"
}

main "$@"
