#!/usr/bin/env bash
# cluster.sh: a local hex cluster on loopback, the way production runs several hexd.
#
#   ./scripts/cluster.sh start       PostgreSQL, Redis, `hexd migrate`, two API instances
#                                    (HEX_ROLES=api), two workers (HEX_ROLES=worker) and nginx
#                                    in front (config/nginx.conf.in); waits until each is
#                                    ready, prints the URLs, returns (they keep running)
#   ./scripts/cluster.sh stop        SIGTERM to every hexd (they drain), then nginx, Redis,
#                                    PostgreSQL
#   ./scripts/cluster.sh status      each process and its health; exit 0 only if all are up
#   ./scripts/cluster.sh nginx-conf  prints config/nginx.conf.in rendered for these ports
#                                    (with the defaults it is config/nginx.conf)
#
# Data (kept between runs) and logs live in .hex/cluster/. Ports: HEX_CLUSTER_PORT (nginx,
# 18000), HEX_CLUSTER_PG_PORT (18432), HEX_CLUSTER_REDIS_PORT (18379) and
# HEX_CLUSTER_HEXD_PORT (18100): instance n (api1, api2, worker1, worker2 = 0..3) listens on
# base+10n (v1), +1 (v2 payments), +2 (admin), +3 (metrics). HEX_CLUSTER_BUILD_DIR (build)
# is the build folder whose hexd runs (build-asan: under the sanitizers). Every other HEX_*
# setting of hexd in the environment is passed to all four instances (HEX_LOG_FORMAT=text).
# HEX_CLUSTER_NAME (cluster) names the folder .hex/<name>/ and the lock, so a second cluster
# (tests/drills) can run next to the default one with its own ports and data.
# HEX_CLUSTER_SKIP_BUILD=1: start the hexd already built, without building first.
set -euo pipefail

HEX_SCRIPT=cluster
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NGINX_PORT=${HEX_CLUSTER_PORT:-18000}
PG_PORT=${HEX_CLUSTER_PG_PORT:-18432}
REDIS_PORT=${HEX_CLUSTER_REDIS_PORT:-18379}
HEXD_PORT=${HEX_CLUSTER_HEXD_PORT:-18100}
BODY_LIMIT=${HEX_BODY_LIMIT:-1048576}
BUILD_DIR=${HEX_CLUSTER_BUILD_DIR:-build}
HEXD=$HEX_ROOT/$BUILD_DIR/bin/hexd
NGINX_TEMPLATE=$HEX_ROOT/config/nginx.conf.in
INSTANCES=(api1 api2 worker1 worker2)
CLUSTER_NAME=${HEX_CLUSTER_NAME:-cluster}
# hexd drains for at most HEX_SHUTDOWN_TIMEOUT seconds (10); then allow its clean-up.
STOP_WAIT=$((${HEX_SHUTDOWN_TIMEOUT:-10} + 20))

# ---------------------------------------------------------------- instances

instance_index() {
	local i
	for i in "${!INSTANCES[@]}"; do
		[ "${INSTANCES[i]}" = "$1" ] && printf '%s' "$i" && return 0
	done
	return 1
}

# instance_port NAME OFFSET: 0 v1 (HEX_HTTP_LISTEN), 1 v2, 2 admin, 3 metrics.
instance_port() {
	printf '%s' $((HEXD_PORT + 10 * $(instance_index "$1") + $2))
}

instance_role() {
	case $1 in api*) printf api ;; *) printf worker ;; esac
}

instance_dir() {
	printf '%s' "$HEX_STATE/$1"
}

instance_pid() {
	head -n 1 "$(instance_dir "$1")/hexd.pid" 2>/dev/null || true
}

# Our hexd: a live process running this project's binary (also after a rebuild replaced
# the file, which /proc shows as "(deleted)").
hexd_pid_is_ours() {
	local pid=$1 exe
	case $pid in '' | *[!0-9]*) return 1 ;; esac
	hex_pid_alive "$pid" || return 1
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
	[ "$exe" = "$HEXD" ] || [ "$exe" = "$HEXD (deleted)" ]
}

# The URL that says whether an instance is ready: an API instance's /readyz (200 only once
# it is migrated, connected and serving), a worker's /metrics (served only after its relay
# and consumers started; a worker has no API listener).
instance_ready_url() {
	if [ "$(instance_role "$1")" = api ]; then
		printf 'http://127.0.0.1:%s/readyz' "$(instance_port "$1" 0)"
	else
		printf 'http://127.0.0.1:%s/metrics' "$(instance_port "$1" 3)"
	fi
}

http_ok() {
	curl -sf -o /dev/null --max-time 2 "$1"
}

instance_start() {
	local name=$1 dir
	dir=$(instance_dir "$name")
	mkdir -p "$dir"
	rm -f "$dir/hexd.pid"
	# Its own session: the terminal's Ctrl-C must not reach instances left running.
	(
		HEX_ROLES=$(instance_role "$name")
		HEX_HTTP_LISTEN=127.0.0.1:$(instance_port "$name" 0)
		HEX_PAYMENTS_LISTEN=127.0.0.1:$(instance_port "$name" 1)
		HEX_ADMIN_LISTEN=127.0.0.1:$(instance_port "$name" 2)
		HEX_METRICS_LISTEN=127.0.0.1:$(instance_port "$name" 3)
		export HEX_ROLES HEX_HTTP_LISTEN HEX_PAYMENTS_LISTEN HEX_ADMIN_LISTEN HEX_METRICS_LISTEN
		exec setsid "$HEXD" serve </dev/null >>"$dir/hexd.log" 2>&1 9>&-
	) &
	printf '%s\n' "$!" >"$dir/hexd.pid"
	hex_at_exit instance_stop "$name"
}

# Waits until the instance is ready; on exit or timeout shows its log and gives up.
instance_wait_ready() {
	local name=$1 pid url tries=0
	pid=$(instance_pid "$name")
	url=$(instance_ready_url "$name")
	until http_ok "$url"; do
		# Alive is enough here: for an instant the child is still the shell about to exec.
		if ! hex_pid_alive "$pid"; then
			hex_show_log_tail "$(instance_dir "$name")/hexd.log"
			hex_die "hexd $name exited during start-up (log above)"
		fi
		if [ "$tries" -ge $((HEX_START_TIMEOUT * 5)) ]; then
			hex_show_log_tail "$(instance_dir "$name")/hexd.log"
			hex_die "hexd $name was not ready within ${HEX_START_TIMEOUT}s ($url)"
		fi
		sleep 0.2
		tries=$((tries + 1))
	done
	hex_say "$name ready ($url)"
}

instance_signal() {
	local name=$1 pid
	pid=$(instance_pid "$name")
	hexd_pid_is_ours "$pid" || return 1
	kill -TERM "$pid" 2>/dev/null
}

instance_wait_gone() {
	local name=$1 pid
	pid=$(instance_pid "$name")
	if hexd_pid_is_ours "$pid" && ! hex_wait_pid_gone "$pid" "$STOP_WAIT"; then
		hex_say "hexd $name (pid $pid) did not exit within ${STOP_WAIT}s of SIGTERM; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$(instance_dir "$name")/hexd.pid"
}

instance_stop() {
	if instance_signal "$1"; then
		hex_say "stopping hexd $1 (pid $(instance_pid "$1")), waiting for it to drain"
	fi
	instance_wait_gone "$1"
}

# ---------------------------------------------------------------- nginx

nginx_dir() {
	printf '%s' "$HEX_SERVER_DIR/nginx"
}

nginx_pid() {
	head -n 1 "$(nginx_dir)/nginx.pid" 2>/dev/null || true
}

# The master of our nginx: named nginx and started with our configuration file.
nginx_pid_is_ours() {
	local pid=$1
	case $pid in '' | *[!0-9]*) return 1 ;; esac
	hex_pid_alive "$pid" || return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nginx ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$(nginx_dir)/nginx.conf"
}

nginx_render() {
	[ -f "$NGINX_TEMPLATE" ] || hex_die "$NGINX_TEMPLATE is missing"
	local conf
	conf=$(<"$NGINX_TEMPLATE")
	conf=${conf//@LISTEN_PORT@/$NGINX_PORT}
	conf=${conf//@API1_HTTP_PORT@/$(instance_port api1 0)}
	conf=${conf//@API1_PAYMENTS_PORT@/$(instance_port api1 1)}
	conf=${conf//@API2_HTTP_PORT@/$(instance_port api2 0)}
	conf=${conf//@API2_PAYMENTS_PORT@/$(instance_port api2 1)}
	conf=${conf//@BODY_LIMIT@/$BODY_LIMIT}
	printf '%s\n' "$conf"
}

# Unprivileged: as root it runs as the server user, so its workers do too.
nginx_start() {
	local dir
	dir=$(nginx_dir)
	command -v nginx >/dev/null || hex_die "nginx is not installed"
	hex_make_server_dir "$dir"
	nginx_render >"$dir/nginx.conf"
	hex_chown_to_server_user "$dir/nginx.conf"
	hex_at_exit nginx_stop
	hex_say "starting nginx on 127.0.0.1:$NGINX_PORT (logs: $dir/access.log, $dir/error.log)"
	local from
	from=$(hex_log_size "$dir/error.log")
	if ! hex_as_server_user nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" 9>&- ||
		! hex_wait_until "$HEX_START_TIMEOUT" http_ok "http://127.0.0.1:$NGINX_PORT/readyz"; then
		hex_show_log_tail "$dir/error.log" "$from"
		hex_die "nginx did not start on 127.0.0.1:$NGINX_PORT (log above)"
	fi
}

# QUIT: nginx finishes the requests it is serving, then exits.
nginx_stop() {
	local pid
	pid=$(nginx_pid)
	nginx_pid_is_ours "$pid" || return 0
	hex_say "stopping nginx (pid $pid)"
	kill -QUIT "$pid" 2>/dev/null || true
	hex_wait_pid_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- settings

# Shared by every instance: a token one instance issues must verify on the other, and
# Stripe signs webhooks with one secret whichever instance gets them.
load_secrets() {
	hex_load_secrets "$HEX_STATE/secrets.env"
	[ -n "${HEX_STRIPE_WEBHOOK_SECRET:-}" ] ||
		hex_die "$HEX_STATE/secrets.env lacks HEX_STRIPE_WEBHOOK_SECRET; delete it to generate new ones"
}

export_hexd_env() {
	export HEX_DATABASE_URL="host=127.0.0.1 port=$PG_PORT user=$HEX_SERVER_USER dbname=hex"
	export HEX_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
	export HEX_BODY_LIMIT=$BODY_LIMIT
	# nginx is on loopback: its X-Forwarded-For names the client for per-address limits.
	export HEX_TRUSTED_PROXIES=${HEX_TRUSTED_PROXIES:-127.0.0.1}
	if [ -z "${HEX_GATEWAY:-}" ]; then
		if [ -n "${HEX_STRIPE_SECRET_KEY:-}" ]; then
			export HEX_GATEWAY=stripe
		else
			export HEX_GATEWAY=simulated
		fi
	fi
	# For a second shell: `set -a; . .hex/cluster/hexd.env; . .hex/cluster/secrets.env; set +a`.
	{
		printf 'HEX_DATABASE_URL=%q\n' "$HEX_DATABASE_URL"
		printf 'HEX_REDIS_URL=%q\n' "$HEX_REDIS_URL"
		printf 'HEX_GATEWAY=%q\n' "$HEX_GATEWAY"
	} >"$HEX_STATE/hexd.env"
}

# ---------------------------------------------------------------- commands

# As root the servers belong to the server user; without it, nothing was ever started.
cluster_folders() {
	if hex_is_root && ! id -u "$HEX_SERVER_USER" >/dev/null 2>&1; then
		return 1
	fi
	hex_choose_folders "$CLUSTER_NAME"
}

something_running() {
	local name
	for name in "${INSTANCES[@]}"; do
		hexd_pid_is_ours "$(instance_pid "$name")" && return 0
	done
	nginx_pid_is_ours "$(nginx_pid)"
}

check_ports() {
	local name off
	hex_require_free_port "$NGINX_PORT" nginx "HEX_CLUSTER_PORT=<free port>"
	for name in "${INSTANCES[@]}"; do
		for off in 0 1 2 3; do
			# A worker binds only its admin and metrics ports.
			if [ "$(instance_role "$name")" = worker ] && [ "$off" -lt 2 ]; then
				continue
			fi
			hex_require_free_port "$(instance_port "$name" "$off")" "hexd $name" \
				"HEX_CLUSTER_HEXD_PORT=<first of 40 free ports>"
		done
	done
}

print_banner() {
	local front=http://127.0.0.1:$NGINX_PORT name
	printf '\nhex cluster is up (gateway: %s)\n' "$HEX_GATEWAY"
	printf '  API via nginx  %s  (/v1/... and /v2/... on one port; log %s)\n' "$front" \
		"$(nginx_dir)/access.log"
	for name in "${INSTANCES[@]}"; do
		if [ "$(instance_role "$name")" = api ]; then
			printf '  %-8s api     v1 :%s  v2 :%s  admin :%s  metrics :%s\n' "$name" \
				"$(instance_port "$name" 0)" "$(instance_port "$name" 1)" \
				"$(instance_port "$name" 2)" "$(instance_port "$name" 3)"
		else
			printf '  %-8s worker                      admin :%s  metrics :%s\n' "$name" \
				"$(instance_port "$name" 2)" "$(instance_port "$name" 3)"
		fi
	done
	cat <<EOF
  data      PostgreSQL 127.0.0.1:$PG_PORT (database hex), Redis 127.0.0.1:$REDIS_PORT, in $HEX_SERVER_DIR
  logs      $HEX_STATE/<instance>/hexd.log; secrets in $HEX_STATE/secrets.env

Try it:
  curl -s -X POST $front/v1/users -H 'Content-Type: application/json' \\
       -d '{"email":"ada@example.com","password":"correct horse"}'

./scripts/cluster.sh status shows each process; ./scripts/cluster.sh stop stops them all.

EOF
}

cmd_start() {
	hex_init
	hex_lock "$CLUSTER_NAME"
	command -v nginx >/dev/null 2>&1 || HEX_PACKAGES+=(nginx-light)
	hex_install_packages
	hex_ensure_server_user
	hex_choose_folders "$CLUSTER_NAME"
	if something_running; then
		hex_die "the cluster is already running (./scripts/cluster.sh status; stop it first)"
	fi
	check_ports
	# "dev": durable settings (fsync, Redis snapshots), as for up.sh's data.
	hex_pg_start dev "$PG_PORT" HEX_CLUSTER_PG_PORT
	hex_redis_start dev "$REDIS_PORT" HEX_CLUSTER_REDIS_PORT
	hex_pg_create_database "$PG_PORT" hex

	cd "$HEX_ROOT"
	# HEX_CLUSTER_SKIP_BUILD=1 runs the hexd already built (others may be mid-edit).
	if [ "${HEX_CLUSTER_SKIP_BUILD:-0}" != 1 ]; then
		hex_build "$BUILD_DIR" || hex_die "the build failed (see above)"
	fi
	[ -x "$HEXD" ] || hex_die "the build did not produce $HEXD"

	load_secrets
	export_hexd_env
	# Once, so that a broken migration is one clear error; every `hexd serve` checks
	# again under the same advisory lock and finds nothing to do.
	hex_say "migrating the database"
	"$HEXD" migrate 9>&- || hex_die "hexd migrate failed (exit $?)"
	local name
	for name in "${INSTANCES[@]}"; do
		instance_start "$name"
	done
	for name in "${INSTANCES[@]}"; do
		instance_wait_ready "$name"
	done
	nginx_start
	print_banner
	HEX_CLEANUPS=() # success: everything stays up
}

cmd_stop() {
	hex_init
	hex_lock "$CLUSTER_NAME"
	if ! cluster_folders; then
		hex_say "nothing to stop (the cluster never ran here)"
		return 0
	fi
	local name stopping=()
	for name in "${INSTANCES[@]}"; do
		if instance_signal "$name"; then
			stopping+=("$name")
		fi
	done
	if [ "${#stopping[@]}" -gt 0 ]; then
		hex_say "stopping hexd ${stopping[*]} (each finishes what it is doing first)"
	fi
	for name in "${INSTANCES[@]}"; do
		instance_wait_gone "$name"
	done
	nginx_stop
	hex_redis_stop
	hex_pg_stop
	hex_say "cluster stopped (data kept in $HEX_SERVER_DIR)"
}

status_line() {
	printf '  %-10s %-8s %-8s %s\n' "$@"
}

cmd_status() {
	hex_init
	if ! cluster_folders; then
		hex_say "not running (the cluster never ran here)"
		return 3
	fi
	local bad=0 name pid state health
	status_line component pid state health
	hex_pg_paths
	hex_redis_paths
	pid=$(hex_pg_pid)
	if hex_pid_is_ours "$pid" postgres "$HEX_PG_DATA"; then
		state=running
		health=$("$HEX_PG_BIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" 2>&1) || bad=1
	else
		state=stopped health=- bad=1
	fi
	status_line postgres "${pid:--}" "$state" "$health"
	pid=$(hex_redis_pid)
	if hex_pid_is_ours "$pid" redis-server "$HEX_REDIS_DIR"; then
		state=running health="PING: $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>&1)"
		hex_redis_ping "$REDIS_PORT" || bad=1
	else
		state=stopped health=- bad=1
	fi
	status_line redis "${pid:--}" "$state" "$health"
	for name in "${INSTANCES[@]}"; do
		pid=$(instance_pid "$name")
		if hexd_pid_is_ours "$pid"; then
			state=running
			health="$(instance_ready_url "$name") -> $(curl -s -o /dev/null -w '%{http_code}' \
				--max-time 2 "$(instance_ready_url "$name")" || true)"
			http_ok "$(instance_ready_url "$name")" || bad=1
		else
			state=stopped health=- bad=1
		fi
		status_line "$name" "${pid:--}" "$state" "$health"
	done
	pid=$(nginx_pid)
	if nginx_pid_is_ours "$pid"; then
		state=running
		health="http://127.0.0.1:$NGINX_PORT/readyz -> $(curl -s -o /dev/null \
			-w '%{http_code}' --max-time 2 "http://127.0.0.1:$NGINX_PORT/readyz" || true)"
		http_ok "http://127.0.0.1:$NGINX_PORT/readyz" || bad=1
	else
		state=stopped health=- bad=1
	fi
	status_line nginx "${pid:--}" "$state" "$health"
	[ "$bad" = 0 ] || return 3
}

usage() {
	printf 'usage: %s start|stop|status|nginx-conf\n' "$0" >&2
	exit 2
}

main() {
	[ $# -eq 1 ] || usage
	case $1 in
	start) cmd_start ;;
	stop) cmd_stop ;;
	status) cmd_status ;;
	nginx-conf) nginx_render ;;
	*) usage ;;
	esac
}

main "$@"
