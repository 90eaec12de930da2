# shellcheck shell=bash
# bench_servers.sh: the servers run.sh starts besides PostgreSQL and Redis (which come
# from scripts/lib.sh): free ports, nginx, hexd, and waiting for a process to go idle.
# Sourced by run.sh, never run. Every start registers its stop with hex_at_exit.

# Below Linux's ephemeral range (32768-60999 by default): the benchmark's own client
# connections take ports from that range, and one of them holding a port we picked would
# make a server's bind fail.
BENCH_NEXT_PORT=${HEX_BENCH_PORT_BASE:-28400}
declare -A BENCH_HEXD_PID=() BENCH_HEXD_RC=()

bench_port_taken() {
	hex_port_in_use "$1" && return 0
	if declare -F hex_port_bindable >/dev/null; then
		hex_port_bindable "$1" && return 1
		return 0
	fi
	return 1
}

# bench_pick_port VAR: the next free loopback port from HEX_BENCH_PORT_BASE up, into VAR.
bench_pick_port() {
	while bench_port_taken "$BENCH_NEXT_PORT"; do
		BENCH_NEXT_PORT=$((BENCH_NEXT_PORT + 1))
	done
	[ "$BENCH_NEXT_PORT" -le 65535 ] || hex_die "no free port above HEX_BENCH_PORT_BASE"
	printf -v "$1" '%s' "$BENCH_NEXT_PORT"
	BENCH_NEXT_PORT=$((BENCH_NEXT_PORT + 1))
}

# A child that exited is a zombie until `wait`: kill -0 still succeeds on it.
bench_pid_alive() {
	local state
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

bench_wait_pid_gone() {
	local pid=$1 timeout=$2 tries=0
	while bench_pid_alive "$pid"; do
		[ "$tries" -lt $((timeout * 5)) ] || return 1
		sleep 0.2
		tries=$((tries + 1))
	done
}

# bench_cpu_ticks PID: utime + stime of all its threads, in clock ticks (0 once it is
# gone). Fields are counted after the last ')': the name before it may hold spaces.
bench_cpu_ticks() {
	local v
	v=$(sed -E 's/.*\) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }')
	printf '%s\n' "${v:-0}"
}

# Waits until a process uses under 5% of one core over half a second. After a login run,
# hexd still hashes the passwords of requests wrk gave up on; measuring the next case
# before that ends would charge it for the previous one.
bench_wait_idle() {
	local pid=$1 what=$2 timeout=${3:-60} before after started=$SECONDS
	local limit=$((BENCH_CLK_TCK / 40))
	while :; do
		before=$(bench_cpu_ticks "$pid")
		sleep 0.5
		after=$(bench_cpu_ticks "$pid")
		[ $((after - before)) -le "$limit" ] && return 0
		if [ $((SECONDS - started)) -ge "$timeout" ]; then
			hex_say "warning: $what still busy after ${timeout}s; measuring anyway"
			return 0
		fi
	done
}

# Peak resident set size of a process in KiB, "?" when unknown.
bench_peak_rss_kib() {
	local v
	v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)
	printf '%s\n' "${v:-?}"
}

# ---------------------------------------------------------------- nginx

# bench_nginx_stop [DIR]: the nginx whose pid file is in DIR (the baseline's by default).
bench_nginx_stop() {
	local dir=${1:-$BENCH_TMP/nginx} pid
	pid=$(head -n 1 "$dir/nginx.pid" 2>/dev/null || true)
	case $pid in '' | *[!0-9]*) return 0 ;; esac
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nginx ] || return 0
	hex_say "stopping nginx (pid $pid, $dir)"
	kill -QUIT "$pid" 2>/dev/null || true
	bench_wait_pid_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
}

# bench_nginx_start PORT BODY: nginx answering every request with 200 and BODY.
bench_nginx_start() {
	local port=$1 body=$2 dir=$BENCH_TMP/nginx conf
	case $body in *"'"* | *'$'* | *\\*)
		hex_die "the user JSON contains a quote, \$ or \\; it cannot go into nginx.conf" ;;
	esac
	hex_make_server_dir "$dir"
	conf=$(<"$BENCH_DIR/nginx.conf.in")
	conf=${conf//@DIR@/$dir}
	conf=${conf//@PORT@/$port}
	conf=${conf//@BODY@/$body}
	printf '%s\n' "$conf" >"$dir/nginx.conf"
	hex_chown_to_server_user "$dir/nginx.conf"
	hex_at_exit bench_nginx_stop
	hex_say "starting nginx on 127.0.0.1:$port"
	if ! hex_as_server_user nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" 9>&- ||
		! hex_wait_until 10 curl -sf -o /dev/null "http://127.0.0.1:$port/"; then
		hex_show_log_tail "$dir/error.log"
		hex_die "nginx did not start on 127.0.0.1:$port"
	fi
}

# ---------------------------------------------------------------- hexd

bench_hexd_log() {
	printf '%s/hexd-%s.log\n' "$BENCH_TMP" "$1"
}

# bench_hexd_stop NAME: SIGTERM (hexd drains and exits 0), its exit status kept for the
# report; SIGKILL if it has not gone after 20 s.
bench_hexd_stop() {
	local name=$1 pid=${BENCH_HEXD_PID[$1]:-} rc=0
	[ -n "$pid" ] || return 0
	BENCH_HEXD_PID[$name]=
	if bench_pid_alive "$pid"; then
		hex_say "stopping hexd $name (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		if ! bench_wait_pid_gone "$pid" 20; then
			hex_say "hexd $name did not stop within 20s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || rc=$?
	# shellcheck disable=SC2034 # read by bench_report.sh
	BENCH_HEXD_RC[$name]=$rc
}

# bench_hexd_start NAME HTTP_PORT PAYMENTS_PORT ADMIN_PORT REDIS_URL [KEY=VALUE...]: hexd
# serve with a clean environment (only BENCH_HEXD_ENV, then the per-instance keys, which
# win), so that HEX_* variables of the caller's shell cannot change what is measured.
bench_hexd_start() {
	local name=$1 http=$2 payments=$3 admin=$4 redis_url=$5 log pid
	shift 5
	log=$(bench_hexd_log "$name")
	hex_say "starting hexd $name on 127.0.0.1:$http (redis: ${redis_url:-none}; log: $log)"
	env -i PATH="$PATH" LANG=C.UTF-8 "${BENCH_HEXD_ENV[@]}" \
		HEX_HTTP_LISTEN="127.0.0.1:$http" HEX_PAYMENTS_LISTEN="127.0.0.1:$payments" \
		HEX_ADMIN_LISTEN="127.0.0.1:$admin" HEX_REDIS_URL="$redis_url" "$@" \
		"$BENCH_HEXD" serve >"$log" 2>&1 9>&- &
	pid=$!
	BENCH_HEXD_PID[$name]=$pid
	hex_at_exit "bench_hexd_stop $name"
	local tries=0
	until curl -sf -o /dev/null "http://127.0.0.1:$http/healthz"; do
		if ! bench_pid_alive "$pid" || [ "$tries" -ge 150 ]; then
			hex_show_log_tail "$log"
			hex_die "hexd $name did not answer /healthz on 127.0.0.1:$http"
		fi
		sleep 0.2
		tries=$((tries + 1))
	done
}
