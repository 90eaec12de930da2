#!/usr/bin/env bash
# run.sh: the hex benchmark. Not part of the test command; run it by hand.
#
# In one run, on loopback only: builds hexd (Release, build-bench/), starts a private
# PostgreSQL 15 and Redis in a temp folder, hexd instances (A with the Redis cache, B
# without, later D with access log and metrics off, C paying through a slow fake Stripe,
# and api1 and api2 behind the cluster's nginx, config/nginx.conf.in) and an nginx
# baseline, seeds users through the API and messages and payments in SQL, then measures
# with wrk, and redis-benchmark and pgbench on the same servers.
# Writes docs/BENCHMARKS.md and keeps the raw outputs in tests/bench/last-run/. Stops
# everything it started, however it ends. tests/bench/method.md says what is measured and
# why.
#
# Environment: HEX_BENCH_DURATION (10, seconds per measured run), HEX_BENCH_WARMUP (2),
# HEX_BENCH_LOGIN_USERS (64), HEX_BENCH_MESSAGES (300000, rows seeded),
# HEX_BENCH_WEBHOOK_EVENTS (100000, signed events made for the webhook case),
# HEX_BENCH_TRANSFER_USERS (256, users the transfers case moves money between; a multiple
# of 4), HEX_BENCH_DRAIN_TIMEOUT (300, seconds to wait for the ledger consumer after the
# webhook case),
# HEX_BENCH_PORT_BASE (28400, first port tried),
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
# shellcheck source=tests/bench/bench_messages.sh
. "$BENCH_DIR/bench_messages.sh"
# shellcheck source=tests/bench/bench_payments.sh
. "$BENCH_DIR/bench_payments.sh"
# shellcheck source=tests/bench/bench_ledger.sh
. "$BENCH_DIR/bench_ledger.sh"
# shellcheck source=tests/bench/bench_measure.sh
. "$BENCH_DIR/bench_measure.sh"
# shellcheck source=tests/bench/bench_cluster.sh
. "$BENCH_DIR/bench_cluster.sh"
# shellcheck source=tests/bench/bench_cases.sh
. "$BENCH_DIR/bench_cases.sh"
# shellcheck source=tests/bench/bench_report.sh
. "$BENCH_DIR/bench_report.sh"

# Bash 5.2 would otherwise read & in ${var//pattern/replacement} as the match.
shopt -u patsub_replacement 2>/dev/null || true

BENCH_DURATION=${HEX_BENCH_DURATION:-10}
BENCH_WARMUP=${HEX_BENCH_WARMUP:-2}
BENCH_LOGIN_USERS=${HEX_BENCH_LOGIN_USERS:-64}
BENCH_MESSAGES=${HEX_BENCH_MESSAGES:-300000}
BENCH_WEBHOOK_EVENTS=${HEX_BENCH_WEBHOOK_EVENTS:-100000}
BENCH_TRANSFER_USERS=${HEX_BENCH_TRANSFER_USERS:-256}
BENCH_DRAIN_TIMEOUT=${HEX_BENCH_DRAIN_TIMEOUT:-300}
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
	python3:python3 curl:curl cmake:cmake cc:build-essential pkg-config:pkg-config ss:iproute2
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
		HEX_STRIPE_WEBHOOK_SECRET="$BENCH_WEBHOOK_SECRET"
		HEX_LOG_FORMAT=json
		HEX_LOG_LEVEL="$BENCH_LOG_LEVEL"
	)
	bench_hexd_start A "$A_PORT" "$A_PAY_PORT" "$A_ADMIN_PORT" "redis://127.0.0.1:$REDIS_PORT/0"
	bench_hexd_start B "$B_PORT" "$B_PAY_PORT" "$B_ADMIN_PORT" ''
}

bench_summary() {
	local k
	printf '\n%-8s %10s %9s %9s %7s\n' case 'req/s' 'p50 ms' 'p99 ms' errors
	for k in $BENCH_CASES; do
		printf '%-8s %10s %9s %9s %7s\n' "$k" "$(bench_int "${RES[$k.rps]}")" \
			"$(bench_ms "${RES[$k.p50_us]}")" "$(bench_ms "${RES[$k.p99_us]}")" "${RES[$k.errors]}"
	done
	printf '\nwebhook received -> ledger posted, events of w: %s of %s posted, p50 %s ms, p99 %s ms, max %s ms, drained %s s after the load\n\n' \
		"${RES[lat.posted]}" "${RES[lat.events]}" "${RES[lat.p50_ms]}" "${RES[lat.p99_ms]}" \
		"${RES[lat.max_ms]}" "${RES[lat.drain_s]}"
}

main() {
	local started=$SECONDS
	BENCH_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
	# Other work on the machine skews every number; the report says how busy it was.
	BENCH_LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	BENCH_COMMAND="tests/bench/run.sh"
	local var val
	for var in HEX_BENCH_DURATION HEX_BENCH_WARMUP HEX_BENCH_LOGIN_USERS HEX_BENCH_MESSAGES \
		HEX_BENCH_WEBHOOK_EVENTS HEX_BENCH_TRANSFER_USERS HEX_BENCH_DRAIN_TIMEOUT \
		HEX_BENCH_LOG_LEVEL HEX_BENCH_HEXD HEX_BENCH_REVISION; do
		val=${!var:-}
		[ -n "$val" ] || continue
		# Quoted when the shell would split it, so that the report's command can be pasted.
		case $val in *[!A-Za-z0-9_./:,=+-]*) val="'$val'" ;; esac
		BENCH_COMMAND="$var=$val $BENCH_COMMAND"
	done
	bench_check_number HEX_BENCH_DURATION "$BENCH_DURATION"
	bench_check_number HEX_BENCH_WARMUP "$BENCH_WARMUP"
	[ "$BENCH_DURATION" -ge 1 ] || hex_die "HEX_BENCH_DURATION must be at least 1"
	# The alternating cases (o, s, cg, cp) run each side four or six times: about 1.2 or
	# twice the duration.
	BENCH_ALT_SECONDS=$(((BENCH_DURATION * 3 + 9) / 10))
	bench_check_number HEX_BENCH_LOGIN_USERS "$BENCH_LOGIN_USERS"
	[ "$BENCH_LOGIN_USERS" -ge 5 ] || hex_die "HEX_BENCH_LOGIN_USERS must be at least 5"
	bench_check_number HEX_BENCH_MESSAGES "$BENCH_MESSAGES"
	[ "$BENCH_MESSAGES" -ge 100 ] || hex_die "HEX_BENCH_MESSAGES must be at least 100"
	bench_check_number HEX_BENCH_WEBHOOK_EVENTS "$BENCH_WEBHOOK_EVENTS"
	[ "$BENCH_WEBHOOK_EVENTS" -ge 100 ] || hex_die "HEX_BENCH_WEBHOOK_EVENTS must be at least 100"
	bench_check_number HEX_BENCH_TRANSFER_USERS "$BENCH_TRANSFER_USERS"
	# Two wrk threads, each an even share of at least 4 (transfer.lua).
	if [ "$BENCH_TRANSFER_USERS" -lt 8 ] || [ $((BENCH_TRANSFER_USERS % 4)) != 0 ]; then
		hex_die "HEX_BENCH_TRANSFER_USERS must be a multiple of 4, at least 8"
	fi
	bench_check_number HEX_BENCH_DRAIN_TIMEOUT "$BENCH_DRAIN_TIMEOUT"

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
	bench_pick_port C_PORT
	bench_pick_port C_PAY_PORT
	bench_pick_port C_ADMIN_PORT
	bench_pick_port D_PORT
	bench_pick_port D_PAY_PORT
	bench_pick_port D_ADMIN_PORT
	bench_pick_port STRIPE_PORT
	bench_pick_port API1_PORT
	bench_pick_port API1_PAY_PORT
	bench_pick_port API1_ADMIN_PORT
	bench_pick_port API2_PORT
	bench_pick_port API2_PAY_PORT
	bench_pick_port API2_ADMIN_PORT
	bench_pick_port LB1_PORT
	bench_pick_port LB2_PORT
	BENCH_RUN_ID=$(bench_random_hex 4)
	BENCH_WEBHOOK_SECRET=whsec_bench_$(bench_random_hex 16)

	bench_start_data_servers
	bench_start_hexd
	bench_seed "http://127.0.0.1:$A_PORT" "http://127.0.0.1:$B_PORT"
	bench_seed_transfer_users "http://127.0.0.1:$A_PORT"
	bench_fund_transfer_users
	bench_check_transfer
	bench_seed_messages
	bench_check_messages "http://127.0.0.1:$A_PORT"
	bench_seed_payments
	bench_check_webhook "http://127.0.0.1:$A_PAY_PORT/v2/stripe/webhook"
	bench_psql "$BENCH_DB" 'VACUUM ANALYZE'
	bench_psql postgres 'CHECKPOINT'
	bench_wait_idle "${BENCH_HEXD_PID[A]}" "hexd A"
	BENCH_LOGIN_MS=$(bench_login_latency_ms "http://127.0.0.1:$A_PORT")
	bench_nginx_start "$NGINX_PORT" "$BENCH_USER_JSON"

	bench_measure_all

	bench_hexd_stop A
	bench_hexd_stop B
	local logs=() name
	for name in A B C D api1 api2; do
		logs+=("$(bench_hexd_log "$name")")
	done
	BENCH_WARN_LINES=$(cat "${logs[@]}" | grep -cE '"level":"(warn|error)"' || true)
	grep -hE '"level":"(warn|error)"' "${logs[@]}" | head -n 50 \
		>"$BENCH_RAW/hexd-warnings.txt" || true
	wc -l "${logs[@]}" | sed "s|$BENCH_TMP/||" >"$BENCH_RAW/hexd-log-lines.txt"
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
