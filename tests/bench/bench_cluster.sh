# shellcheck shell=bash
# bench_cluster.sh: the cluster case (issue 7). Two more hexd, api1 and api2 (the API role
# only, as the cluster runs them), behind nginx configured from config/nginx.conf.in, the
# load balancer the cluster ships, compared in the same run with api1 measured direct.
# Sourced by run.sh, never run.

# hexd's default HEX_BODY_LIMIT: no instance of the benchmark changes it, and the template
# must refuse the same bodies hexd does.
BENCH_CLUSTER_BODY_LIMIT=1048576

# The three sides of the case, in the order first, second, third, third, second, first,
# twice: a drift of the machine that is linear over a group of six weighs the same on
# every side (as BENCH_ABBA does for two).
BENCH_ABC=(1 2 3 3 2 1 1 2 3 3 2 1)
BENCH_ABC_EACH=$((${#BENCH_ABC[@]} / 3))
BENCH_CLUSTER_SIDES=(direct nginx1 nginx2)

# Each instance's share of the requests of the 2-instance runs must lie in this band (%).
BENCH_SPREAD_MIN=35
BENCH_SPREAD_MAX=65

# bench_cluster_render API1_HTTP API1_PAY API2_HTTP API2_PAY LISTEN: config/nginx.conf.in
# with the placeholders scripts/cluster.sh fills (nginx_render), and nothing else changed.
# A placeholder left over means the template grew one this script does not know: stop
# rather than measure a configuration nginx would reject or read differently.
bench_cluster_render() {
	local template=$HEX_ROOT/config/nginx.conf.in conf left
	[ -f "$template" ] || hex_die "$template is missing"
	conf=$(<"$template")
	conf=${conf//@LISTEN_PORT@/$5}
	conf=${conf//@API1_HTTP_PORT@/$1}
	conf=${conf//@API1_PAYMENTS_PORT@/$2}
	conf=${conf//@API2_HTTP_PORT@/$3}
	conf=${conf//@API2_PAYMENTS_PORT@/$4}
	conf=${conf//@BODY_LIMIT@/$BENCH_CLUSTER_BODY_LIMIT}
	left=$(grep -oE '@[A-Z0-9_]+@' <<<"$conf" | sort -u | tr '\n' ' ' || true)
	[ -z "$left" ] || hex_die "config/nginx.conf.in has placeholders the bench does not fill: $left"
	printf '%s\n' "$conf"
}

bench_cluster_nginx_dir() {
	printf '%s/nginx-%s\n' "$BENCH_TMP" "$1"
}

# bench_cluster_nginx_start NAME PORT API1_HTTP API1_PAY API2_HTTP API2_PAY: the shipped
# configuration, run as the cluster runs it (prefix folder, unprivileged), ready once a
# /readyz through it answers 200.
bench_cluster_nginx_start() {
	local name=$1 port=$2 dir
	dir=$(bench_cluster_nginx_dir "$name")
	hex_make_server_dir "$dir"
	bench_cluster_render "$3" "$4" "$5" "$6" "$port" >"$dir/nginx.conf"
	hex_chown_to_server_user "$dir/nginx.conf"
	hex_at_exit "bench_nginx_stop '$dir'"
	hex_say "starting nginx $name on 127.0.0.1:$port (config/nginx.conf.in; upstreams :$3 and :$5)"
	if ! hex_as_server_user nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" 9>&- ||
		! hex_wait_until 10 curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; then
		hex_show_log_tail "$dir/error.log"
		hex_die "nginx $name did not start on 127.0.0.1:$port"
	fi
}

# CPU ticks of an nginx: its master and workers.
bench_cluster_nginx_ticks() {
	local master pid total=0
	master=$(head -n 1 "$1/nginx.pid" 2>/dev/null || true)
	case $master in '' | *[!0-9]*) hex_die "no nginx pid in $1/nginx.pid" ;; esac
	for pid in "$master" $(pgrep -P "$master" || true); do
		total=$((total + $(bench_cpu_ticks "$pid")))
	done
	printf '%s\n' "$total"
}

bench_cluster_hexd_ticks() {
	printf '%s\n' $(($(bench_cpu_ticks "${BENCH_HEXD_PID[api1]}") + \
		$(bench_cpu_ticks "${BENCH_HEXD_PID[api2]}")))
}

# bench_route_count PORT METHOD ROUTE: requests the hexd on PORT answered on that route
# since it started, whatever the status (its /metrics counters).
bench_route_count() {
	local out
	out=$(curl -sf "http://127.0.0.1:$1/metrics") ||
		hex_die "GET /metrics on 127.0.0.1:$1 failed: the spread cannot be counted"
	awk -v p="hex_http_requests_total{method=\"$2\",route=\"$3\"," \
		'index($0, p) == 1 { n += $2 } END { printf "%d\n", n }' <<<"$out"
}

# Lines of an nginx access log since the last call, and how many of them went to more
# than one upstream ("a, b": retried); then the log starts over (nginx appends, so
# truncating it under a running nginx is safe).
bench_cluster_access_log() {
	local log=$1/access.log counts
	counts=$(awk '{ n++ } /"upstream":"[^"]*, / { r++ } END { printf "%d %d\n", n, r }' \
		"$log" 2>/dev/null || echo '0 0')
	: >"$log"
	printf '%s\n' "$counts"
}

# bench_cluster_url SIDE PATH: where a side's wrk sends its requests.
bench_cluster_url() {
	case $1 in
	direct) printf 'http://127.0.0.1:%s%s\n' "$API1_PORT" "$2" ;;
	nginx1) printf 'http://127.0.0.1:%s%s\n' "$LB1_PORT" "$2" ;;
	nginx2) printf 'http://127.0.0.1:%s%s\n' "$LB2_PORT" "$2" ;;
	*) hex_die "no cluster side $1" ;;
	esac
}

# bench_cluster_warmup PREFIX SCRIPT PATH: one warm-up per side.
bench_cluster_warmup() {
	local prefix=$1 script=$2 path=$3 side
	for side in "${BENCH_CLUSTER_SIDES[@]}"; do
		bench_warmup "$prefix-$side" "$script" "$(bench_cluster_url "$side" "$path")" 2 64 2s
	done
}

# bench_cluster_runs PREFIX SCRIPT PATH METHOD ROUTE: the three sides in alternating runs
# (BENCH_ABC), the same wrk script, connections and length on each. Per run, besides
# wrk's numbers: how many requests of the route each instance answered (from its
# /metrics, before and after), the nginx access-log lines and retries, and the CPU of both
# hexd and of the nginx measured. Then PREFIX-<side> holds each side's combined numbers.
bench_cluster_runs() {
	local prefix=$1 script=$2 path=$3 method=$4 route=$5 run_s=$BENCH_ALT_SECONDS
	local -A dir=([direct]='' [nginx1]=$(bench_cluster_nginx_dir lb1)
		[nginx2]=$(bench_cluster_nginx_dir lb2))
	local -A runs=([direct]='' [nginx1]='' [nginx2]='')
	local which side run i=0 u1 u2 h0 n0 v1 v2 lines retried key
	local raw=$BENCH_RAW/cluster-$prefix.txt

	# Stragglers of a previous case must not land in the first run's access log.
	for side in nginx1 nginx2; do
		bench_cluster_access_log "${dir[$side]}" >/dev/null
	done
	printf 'run req/s api1 api2 api1_share nginx_log_lines retried hexd_ticks nginx_ticks\n' >"$raw"
	for which in "${BENCH_ABC[@]}"; do
		i=$((i + 1))
		side=${BENCH_CLUSTER_SIDES[which - 1]}
		run=$prefix$i-$side
		u1=$(bench_route_count "$API1_PORT" "$method" "$route")
		u2=$(bench_route_count "$API2_PORT" "$method" "$route")
		h0=$(bench_cluster_hexd_ticks)
		n0=0
		[ -z "${dir[$side]}" ] || n0=$(bench_cluster_nginx_ticks "${dir[$side]}")
		bench_wrk "$run" "$script" "$(bench_cluster_url "$side" "$path")" 2 64 2s '' "$run_s"
		# Assigned alone, so that a failure in the substitution stops the script (set -e).
		v1=$(bench_cluster_hexd_ticks)
		RES[$run.hexd_ticks]=$((v1 - h0))
		RES[$run.nginx_ticks]=0 RES[$run.lb_lines]=0 RES[$run.lb_retried]=0
		if [ -n "${dir[$side]}" ]; then
			v1=$(bench_cluster_nginx_ticks "${dir[$side]}")
			RES[$run.nginx_ticks]=$((v1 - n0))
			read -r lines retried < <(bench_cluster_access_log "${dir[$side]}")
			RES[$run.lb_lines]=$lines RES[$run.lb_retried]=$retried
		fi
		v1=$(bench_route_count "$API1_PORT" "$method" "$route")
		v2=$(bench_route_count "$API2_PORT" "$method" "$route")
		RES[$run.up1]=$((v1 - u1)) RES[$run.up2]=$((v2 - u2))
		printf '%s %s %s %s %s %s %s %s %s\n' "$run" "$(bench_int "${RES[$run.rps]}")" \
			"${RES[$run.up1]}" "${RES[$run.up2]}" \
			"$(bench_pct "${RES[$run.up1]}" $((${RES[$run.up1]} + ${RES[$run.up2]})))" \
			"${RES[$run.lb_lines]}" "${RES[$run.lb_retried]}" "${RES[$run.hexd_ticks]}" \
			"${RES[$run.nginx_ticks]}" >>"$raw"
		runs[$side]="${runs[$side]} $run"
	done

	for side in "${BENCH_CLUSTER_SIDES[@]}"; do
		local name=$prefix-$side duration=0 share min=100 max=0
		# shellcheck disable=SC2086 # the run names are single words
		bench_combine "$name" ${runs[$side]}
		for key in hexd_ticks nginx_ticks lb_lines lb_retried up1 up2; do
			RES[$name.$key]=0
		done
		for run in ${runs[$side]}; do
			for key in hexd_ticks nginx_ticks lb_lines lb_retried up1 up2; do
				RES[$name.$key]=$((${RES[$name.$key]} + ${RES[$run.$key]}))
			done
			duration=$((duration + ${RES[$run.duration_us]}))
			share=$(awk -v a="${RES[$run.up1]}" -v b="${RES[$run.up2]}" \
				'BEGIN { printf "%.0f", (a + b > 0 ? 100 * a / (a + b) : 0) }')
			[ "$share" -ge "$min" ] || min=$share
			[ "$share" -le "$max" ] || max=$share
		done
		RES[$name.share_range]="$min-$max%"
		RES[$name.share1]=$(awk -v a="${RES[$name.up1]}" -v b="${RES[$name.up2]}" \
			'BEGIN { printf "%.1f", (a + b > 0 ? 100 * a / (a + b) : 0) }')
		RES[$name.share2]=$(awk -v s="${RES[$name.share1]}" 'BEGIN { printf "%.1f", 100 - s }')
		read -r "RES[$name.hexd_pct]" "RES[$name.hexd_us]" "RES[$name.nginx_pct]" \
			"RES[$name.nginx_us]" < <(awk -v h="${RES[$name.hexd_ticks]}" \
			-v g="${RES[$name.nginx_ticks]}" -v hz="$BENCH_CLK_TCK" -v us="$duration" \
			-v n="${RES[$name.requests]}" 'BEGIN {
				s = us / 1e6
				printf "%.0f %.1f %.0f %.1f\n", 100 * h / hz / s, (n ? h * 1e6 / hz / n : 0),
					100 * g / hz / s, (n ? g * 1e6 / hz / n : 0) }')
		CMD[$name]=${CMD[$prefix$((1 + $(bench_cluster_side_index "$side")))-$side]}
		bench_cluster_check_counts "$name" "$side"
	done
	RES[$prefix.ratio2]=$(awk -v a="${RES[$prefix-nginx2.rps]}" -v b="${RES[$prefix-direct.rps]}" \
		'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	RES[$prefix.ratio1]=$(awk -v a="${RES[$prefix-nginx1.rps]}" -v b="${RES[$prefix-direct.rps]}" \
		'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	RES[$prefix.spread_ok]=$(awk -v s="${RES[$prefix-nginx2.share1]}" -v lo="$BENCH_SPREAD_MIN" \
		-v hi="$BENCH_SPREAD_MAX" 'BEGIN { print (s >= lo && s <= hi ? 1 : 0) }')
}

# 0, 1, 2: the side's position in BENCH_CLUSTER_SIDES, which is also the index of its
# first run in BENCH_ABC.
bench_cluster_side_index() {
	local i
	for i in "${!BENCH_CLUSTER_SIDES[@]}"; do
		[ "${BENCH_CLUSTER_SIDES[i]}" = "$1" ] && printf '%s\n' "$i" && return 0
	done
	hex_die "no cluster side $1"
}

# The counts the spread is computed from must be the requests wrk made: every reply wrk
# got was counted by an instance first (hexd counts a reply when it queues it), and the
# direct and 1-instance runs must have reached api1 alone, or the sides would not measure
# what they are named after.
bench_cluster_check_counts() {
	local name=$1 side=$2 ok counted
	ok=$((${RES[$name.requests]} - ${RES[$name.non2xx]}))
	counted=$((${RES[$name.up1]} + ${RES[$name.up2]}))
	[ "$counted" -ge "$ok" ] ||
		hex_die "case $name: wrk got $ok 2xx replies, but api1 and api2 counted only $counted requests"
	if [ "$side" != nginx2 ] && [ "${RES[$name.up2]}" != 0 ]; then
		hex_die "case $name: api2 answered ${RES[$name.up2]} requests, but only api1 is measured"
	fi
}

# The rows a cluster POST case added: every 201 a new message (a few more: requests
# answered after wrk stopped counting, at most one per connection and run).
bench_cluster_check_rows() {
	local prefix=$1 before=$2 after ok=0 side grew
	after=$(bench_psql_value "$BENCH_DB" 'SELECT count(*) FROM messages')
	for side in "${BENCH_CLUSTER_SIDES[@]}"; do
		ok=$((ok + ${RES[$prefix-$side.requests]} - ${RES[$prefix-$side.non2xx]}))
	done
	grew=$((after - before))
	[ "$grew" -ge "$ok" ] && [ "$grew" -le $((ok + 64 * ${#BENCH_ABC[@]})) ] ||
		hex_die "case $prefix: wrk got $ok replies 201 to POST /v1/messages, the table grew by $grew"
	RES[$prefix.rows]=$grew
	RES[$prefix.ok]=$ok
}

# cg, cp: cached reads and message posts on api1 direct, through nginx with both upstream
# slots on api1 (the proxy's own cost), and through nginx spreading over api1 and api2.
bench_measure_cluster() {
	local user_path=/v1/users/$BENCH_READER_ID name before lb1 lb2
	bench_hexd_start api1 "$API1_PORT" "$API1_PAY_PORT" "$API1_ADMIN_PORT" \
		"redis://127.0.0.1:$REDIS_PORT/0" HEX_ROLES=api
	bench_hexd_start api2 "$API2_PORT" "$API2_PAY_PORT" "$API2_ADMIN_PORT" \
		"redis://127.0.0.1:$REDIS_PORT/0" HEX_ROLES=api
	# The same template twice: with api2's slot pointing at api1 it is the one-instance
	# proxy, every directive as shipped.
	bench_cluster_nginx_start lb1 "$LB1_PORT" "$API1_PORT" "$API1_PAY_PORT" "$API1_PORT" \
		"$API1_PAY_PORT"
	bench_cluster_nginx_start lb2 "$LB2_PORT" "$API1_PORT" "$API1_PAY_PORT" "$API2_PORT" \
		"$API2_PAY_PORT"
	lb1=$(bench_cluster_nginx_dir lb1)
	lb2=$(bench_cluster_nginx_dir lb2)
	cp "$lb2/nginx.conf" "$BENCH_RAW/nginx-cluster.conf"
	# Every way in must send A's user JSON and accept a post, or the sides would differ.
	for name in "$API1_PORT" "$API2_PORT" "$LB1_PORT" "$LB2_PORT" "$LB2_PORT"; do
		bench_api GET "http://127.0.0.1:$name$user_path" '' "$BENCH_TOKEN"
		bench_expect 200 "GET /v1/users/:id on 127.0.0.1:$name (cluster case)"
		[ "$API_BODY" = "$BENCH_USER_JSON" ] ||
			hex_die "127.0.0.1:$name sends another user JSON than A: '$API_BODY'"
	done
	bench_api POST "http://127.0.0.1:$LB2_PORT/v1/messages" '{"body":"bench cluster check"}' \
		"$BENCH_TOKEN"
	bench_expect 201 "POST /v1/messages through nginx (cluster case)"

	bench_cluster_warmup cg get_user.lua "$user_path"
	bench_cluster_runs cg get_user.lua "$user_path" GET /v1/users/:id

	bench_cluster_warmup cp post_message.lua /v1/messages
	bench_wait_idle "${BENCH_HEXD_PID[api1]}" "hexd api1"
	bench_wait_idle "${BENCH_HEXD_PID[api2]}" "hexd api2"
	before=$(bench_psql_value "$BENCH_DB" 'SELECT count(*) FROM messages')
	bench_cluster_runs cp post_message.lua /v1/messages POST /v1/messages
	bench_wait_idle "${BENCH_HEXD_PID[api1]}" "hexd api1"
	bench_wait_idle "${BENCH_HEXD_PID[api2]}" "hexd api2"
	bench_cluster_check_rows cp "$before"

	# nginx's own complaints (an upstream closing a kept-alive connection, no live
	# upstream, ...) would explain errors or retries.
	RES[cluster.nginx_errors]=$(cat "$lb1/error.log" "$lb2/error.log" 2>/dev/null | wc -l)
	cat "$lb1/error.log" "$lb2/error.log" 2>/dev/null | head -n 50 \
		>"$BENCH_RAW/nginx-cluster-errors.txt" || true
	BENCH_RSS_API1=$(bench_peak_rss_kib "${BENCH_HEXD_PID[api1]}")
	BENCH_RSS_API2=$(bench_peak_rss_kib "${BENCH_HEXD_PID[api2]}")
	bench_nginx_stop "$lb1"
	bench_nginx_stop "$lb2"
	bench_hexd_stop api1
	bench_hexd_stop api2
}
