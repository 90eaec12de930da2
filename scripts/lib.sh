# shellcheck shell=bash
# lib.sh: the parts scripts/up.sh and scripts/test.sh share. Sourced, never run.
#
# Debian packages (installed only when missing), a private PostgreSQL 15 and Redis on
# loopback whose data lives under .hex/<mode>/ of the project, port checks, stale pid
# files, and one exit handler that stops whatever this run started.
#
# Servers never run as root: PostgreSQL refuses to, and Redis need not. As root, they
# run as the system user `hex` (created when missing); otherwise as the invoking user.

HEX_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
HEX_PG_BIN=/usr/lib/postgresql/15/bin
HEX_SERVER_USER=hex
HEX_START_TIMEOUT=${HEX_START_TIMEOUT:-60}

HEX_PACKAGES=(
	build-essential cmake pkg-config
	libevent-dev libpq-dev libhiredis-dev libcurl4-openssl-dev libjansson-dev
	libncurses-dev libreadline-dev libcmocka-dev libssl-dev libcrypt-dev
	postgresql-15 postgresql-client-15 redis-server
	python3 curl ca-certificates procps iproute2 tmux
	# tests/e2e/test_cluster.py and scripts/cluster.sh put nginx in front of hexd.
	nginx-light
	# tests/drills: drill 1 kills an API instance under wrk load.
	wrk
	# tests/fuzz: libFuzzer's runtime is only a Recommends of clang, so it is named too.
	clang libclang-rt-dev
)

HEX_SCRIPT=${HEX_SCRIPT:-$(basename "$0" .sh)}
HEX_CLEANUPS=()
HEX_HEXD_PID=

hex_say() {
	printf '%s: %s\n' "$HEX_SCRIPT" "$*"
}

hex_die() {
	printf '%s: error: %s\n' "$HEX_SCRIPT" "$*" >&2
	exit 1
}

# Cleanups run newest first, once, whether the script ends well, fails or is interrupted.
hex_at_exit() {
	HEX_CLEANUPS+=("$*")
}

hex_run_cleanups() {
	local i
	for ((i = ${#HEX_CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${HEX_CLEANUPS[i]}" || true
	done
	HEX_CLEANUPS=()
}

# While hexd runs, a signal asks it to drain (it sits in its own session, so the
# terminal's Ctrl-C reaches only this script); before that, a signal ends the script.
hex_on_signal() {
	local sig=$1 code=$2
	if [ -n "$HEX_HEXD_PID" ] && kill -0 "$HEX_HEXD_PID" 2>/dev/null; then
		hex_say "stopping hexd (pid $HEX_HEXD_PID), waiting for in-flight requests"
		kill -TERM "$HEX_HEXD_PID" 2>/dev/null || true
		return 0
	fi
	trap - "$sig"
	exit "$code"
}

hex_init() {
	trap 'hex_run_cleanups' EXIT
	trap 'hex_on_signal INT 130' INT
	trap 'hex_on_signal TERM 143' TERM
	trap 'hex_on_signal HUP 129' HUP
}

hex_is_root() {
	[ "$(id -u)" = 0 ]
}

# Runs a command as root: directly when we are root, else through sudo.
hex_privileged() {
	if hex_is_root; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		hex_die "need root to run '$*': run this script as root or install sudo"
	fi
}

# Runs a command as the user that owns the servers' data, from / so that a working
# directory the server user cannot enter does not matter.
hex_as_server_user() {
	if hex_is_root; then
		(cd / && runuser -u "$HEX_SERVER_USER" -- "$@")
	else
		(cd / && "$@")
	fi
}

hex_chown_to_server_user() {
	if hex_is_root; then
		chown "$HEX_SERVER_USER:" "$@"
	fi
}

# ---------------------------------------------------------------- secrets

hex_random_hex() {
	od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# hex_load_secrets FILE: hexd's shared secrets (JWT, admin token, Stripe webhook secret),
# generated once into FILE (mode 600) so that tokens survive restarts and every instance
# of a cluster agrees, then exported. A value already in the environment wins.
hex_load_secrets() {
	local file=$1 key value
	if [ ! -f "$file" ]; then
		hex_say "generating secrets in $file"
		(
			umask 077
			printf 'HEX_JWT_SECRET=%s\n' "$(hex_random_hex 32)"
			printf 'HEX_ADMIN_TOKEN=%s\n' "$(hex_random_hex 24)"
			printf 'HEX_STRIPE_WEBHOOK_SECRET=whsec_%s\n' "$(hex_random_hex 16)"
		) >"$file.tmp"
		mv "$file.tmp" "$file"
	fi
	chmod 600 "$file"
	while IFS='=' read -r key value; do
		case $key in
		HEX_JWT_SECRET | HEX_ADMIN_TOKEN | HEX_STRIPE_WEBHOOK_SECRET)
			[ -n "${!key:-}" ] || export "$key=$value"
			;;
		esac
	done <"$file"
	if [ -z "${HEX_JWT_SECRET:-}" ] || [ -z "${HEX_ADMIN_TOKEN:-}" ]; then
		hex_die "$file lacks HEX_JWT_SECRET or HEX_ADMIN_TOKEN; delete it to generate new ones"
	fi
}

# ---------------------------------------------------------------- packages

hex_missing_packages() {
	local pkg status
	for pkg in "${HEX_PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
		[ "$status" = installed ] || printf '%s\n' "$pkg"
	done
}

# Debian would otherwise create and start a system cluster on 5432 when postgresql-15
# is installed; we run our own clusters instead.
hex_disable_main_cluster() {
	local conf=/etc/postgresql-common/createcluster.conf
	hex_privileged mkdir -p /etc/postgresql-common
	if [ -f "$conf" ] && grep -Eq '^[[:space:]]*create_main_cluster[[:space:]]*=' "$conf"; then
		hex_privileged sed -i -E \
			's/^[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' "$conf"
	else
		printf 'create_main_cluster = false\n' | hex_privileged tee -a "$conf" >/dev/null
	fi
}

hex_remove_policy_rc() {
	hex_privileged rm -f /usr/sbin/policy-rc.d
}

hex_install_packages() {
	local missing
	mapfile -t missing < <(hex_missing_packages)
	if [ "${#missing[@]}" -eq 0 ]; then
		return 0
	fi
	hex_say "installing missing Debian packages: ${missing[*]}"
	hex_disable_main_cluster
	# Package scripts must not start daemons (redis on 6379, postgresql on 5432): a
	# policy-rc.d that answers 101 ("action forbidden") stops invoke-rc.d from doing so.
	local created_policy=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | hex_privileged tee /usr/sbin/policy-rc.d >/dev/null
		hex_privileged chmod 755 /usr/sbin/policy-rc.d
		created_policy=1
		hex_at_exit hex_remove_policy_rc
	fi
	local rc=0
	hex_privileged env DEBIAN_FRONTEND=noninteractive apt-get update -q || rc=$?
	if [ "$rc" -eq 0 ]; then
		hex_privileged env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends "${missing[@]}" || rc=$?
	fi
	if [ "$created_policy" = 1 ]; then
		hex_remove_policy_rc
	fi
	[ "$rc" -eq 0 ] || hex_die "apt-get failed (exit $rc) while installing: ${missing[*]}"
}

# ---------------------------------------------------------------- folders, users, locks

# Serialises runs of the same mode in one project: a second up.sh (or test.sh) would
# otherwise restart the servers under the first one. Children must not inherit fd 9, or a
# server left running would hold the lock forever; every daemon is started with 9>&-.
hex_lock() {
	local mode=$1
	mkdir -p "$HEX_ROOT/.hex"
	exec 9>"$HEX_ROOT/.hex/$mode.lock"
	flock -n 9 || hex_die "another ./scripts/$HEX_SCRIPT.sh is already running in $HEX_ROOT"
}

hex_ensure_server_user() {
	hex_is_root || return 0
	id -u "$HEX_SERVER_USER" >/dev/null 2>&1 && return 0
	hex_say "creating system user '$HEX_SERVER_USER' to run PostgreSQL and Redis (they do not run as root)"
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin "$HEX_SERVER_USER"
}

# Sets HEX_STATE (project folder for this mode: secrets, logs, pids) and HEX_SERVER_DIR
# (where the servers keep their data: HEX_STATE itself, unless the server user cannot
# reach the project, e.g. a checkout under /root).
hex_choose_folders() {
	local mode=$1
	HEX_STATE=$HEX_ROOT/.hex/$mode
	mkdir -p "$HEX_STATE"
	HEX_SERVER_DIR=$HEX_STATE
	hex_is_root || return 0
	chmod 755 "$HEX_ROOT/.hex" "$HEX_STATE"
	if ! hex_as_server_user test -x "$HEX_STATE" 2>/dev/null; then
		local hash
		hash=$(printf '%s' "$HEX_ROOT" | sha256sum | cut -c1-12)
		HEX_SERVER_DIR=/var/tmp/hex-$hash/$mode
		hex_say "user '$HEX_SERVER_USER' cannot reach $HEX_STATE; keeping server data in $HEX_SERVER_DIR instead"
		mkdir -p "$HEX_SERVER_DIR"
		chmod 755 "/var/tmp/hex-$hash" "$HEX_SERVER_DIR"
	fi
}

hex_make_server_dir() {
	mkdir -p "$@"
	hex_chown_to_server_user "$@"
}

# ---------------------------------------------------------------- processes and ports

# True when pid is a live process named `name` whose working directory is `dir`: a
# postmaster and redis-server both chdir to their data folder, which tells our server
# apart from an unrelated process that reused the pid.
hex_pid_is_ours() {
	local pid=$1 name=$2 dir=$3 comm cwd real
	case $pid in '' | *[!0-9]*) return 1 ;; esac
	hex_pid_alive "$pid" || return 1
	comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
	[ "$comm" = "$name" ] || return 1
	cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || return 1
	real=$(cd "$dir" 2>/dev/null && pwd -P) || return 1
	[ "$cwd" = "$real" ]
}

# A zombie counts as gone: it holds no port or file, and in containers whose init is slow
# to reap, waiting for it would only time out.
hex_pid_alive() {
	local state
	state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

hex_wait_pid_gone() {
	local pid=$1 timeout=$2 waited=0
	while hex_pid_alive "$pid"; do
		[ "$waited" -lt $((timeout * 5)) ] || return 1
		sleep 0.2
		waited=$((waited + 1))
	done
}

hex_port_in_use() {
	[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

# True when a server could bind 127.0.0.1:port now. Both PostgreSQL and Redis set
# SO_REUSEADDR, so our own previous run's TIME-WAIT sockets do not matter; but our fixed
# ports lie inside Linux's ephemeral range (32768-60999), so another program's outgoing
# connection may hold one, and keeps it 60 s in TIME-WAIT after closing.
hex_port_bindable() {
	python3 -I -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

hex_require_free_port() {
	local port=$1 what=$2 how=$3 waited=0
	if hex_port_in_use "$port"; then
		hex_die "port $port ($what) is already in use by another program; set $how"
	fi
	hex_port_bindable "$port" && return 0
	hex_say "port $port ($what) is held by another program's connection; waiting up to 70s for it"
	until hex_port_bindable "$port"; do
		[ "$waited" -lt 70 ] ||
			hex_die "port $port ($what) is still held by another program's connection; set $how"
		sleep 1
		waited=$((waited + 1))
	done
	hex_say "port $port is free (waited ${waited}s)"
}

# Retries a command until it succeeds or `timeout` seconds pass.
hex_wait_until() {
	local timeout=$1 tries=0
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$tries" -lt $((timeout * 5)) ] || return 1
		sleep 0.2
		tries=$((tries + 1))
	done
}

hex_log_size() {
	stat -c %s "$1" 2>/dev/null || echo 0
}

# Shows the end of a server log, from byte `from` on (what this run wrote).
hex_show_log_tail() {
	local log=$1 from=${2:-0}
	[ -f "$log" ] || return 0
	printf '%s: last lines of %s:\n' "$HEX_SCRIPT" "$log" >&2
	tail -c +"$((from + 1))" "$log" | tail -n 20 >&2 || true
}

# ---------------------------------------------------------------- PostgreSQL

hex_pg_paths() {
	HEX_PG_DIR=$HEX_SERVER_DIR/pg
	HEX_PG_DATA=$HEX_PG_DIR/data
	HEX_PG_LOG=$HEX_PG_DIR/postgres.log
}

hex_pg_pid() {
	head -n 1 "$HEX_PG_DATA/postmaster.pid" 2>/dev/null || true
}

# A postmaster of this data folder still running (a previous run killed with -9) is
# stopped and started again, so that it picks up this run's port and settings; a
# pid file whose process is gone is removed.
hex_pg_clear_leftover() {
	hex_pg_paths
	[ -f "$HEX_PG_DATA/postmaster.pid" ] || return 0
	local pid
	pid=$(hex_pg_pid)
	if hex_pid_is_ours "$pid" postgres "$HEX_PG_DATA"; then
		hex_say "PostgreSQL from a previous run is still running (pid $pid); restarting it"
		hex_pg_stop
	else
		hex_say "removing stale $HEX_PG_DATA/postmaster.pid (pid ${pid:-?} is not running)"
		rm -f "$HEX_PG_DATA/postmaster.pid" "$HEX_PG_DIR"/run/.s.PGSQL.*
	fi
}

hex_pg_stop() {
	hex_pg_paths
	local pid
	pid=$(hex_pg_pid)
	hex_pid_is_ours "$pid" postgres "$HEX_PG_DATA" || return 0
	hex_say "stopping PostgreSQL (pid $pid)"
	if ! hex_as_server_user "$HEX_PG_BIN/pg_ctl" stop -D "$HEX_PG_DATA" -m fast -w -t 60 \
		>/dev/null 2>&1; then
		kill -QUIT "$pid" 2>/dev/null || true
		hex_wait_pid_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
	fi
}

# Settings that depend on this run (port, folders) live in hex.conf, rewritten at every
# start and included from postgresql.conf, so a moved project or a new port just works.
hex_pg_write_conf() {
	local port=$1 mode=$2 q="'"
	local sock=${HEX_PG_DIR//$q/$q$q}/run
	{
		printf '# written by scripts/lib.sh at every start; edits are lost\n'
		printf "listen_addresses = '127.0.0.1'\n"
		printf 'port = %s\n' "$port"
		printf "unix_socket_directories = '%s'\n" "$sock"
		printf 'max_connections = 200\n'
		if [ "$mode" = test ]; then
			# Test data is thrown away: durability only costs time.
			printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n'
		fi
	} >"$HEX_PG_DATA/hex.conf"
	hex_chown_to_server_user "$HEX_PG_DATA/hex.conf"
}

hex_pg_init() {
	if [ -s "$HEX_PG_DATA/PG_VERSION" ]; then
		return 0
	fi
	rm -rf "$HEX_PG_DATA"
	hex_say "creating a PostgreSQL cluster in $HEX_PG_DATA"
	if ! hex_as_server_user "$HEX_PG_BIN/initdb" -D "$HEX_PG_DATA" --auth=trust \
		-U "$HEX_SERVER_USER" --encoding=UTF8 --locale=C.UTF-8 >"$HEX_PG_DIR/initdb.log" 2>&1; then
		hex_show_log_tail "$HEX_PG_DIR/initdb.log"
		hex_die "initdb failed (log: $HEX_PG_DIR/initdb.log)"
	fi
	printf "include_if_exists = 'hex.conf'\n" >>"$HEX_PG_DATA/postgresql.conf"
}

# Starts PostgreSQL on 127.0.0.1:port; `port_env` names the variable that changes it.
hex_pg_start() {
	local mode=$1 port=$2 port_env=$3
	hex_pg_paths
	[ -x "$HEX_PG_BIN/postgres" ] || hex_die "PostgreSQL 15 is not installed ($HEX_PG_BIN/postgres missing)"
	hex_make_server_dir "$HEX_PG_DIR"
	hex_make_server_dir "$HEX_PG_DIR/run"
	hex_pg_clear_leftover
	hex_require_free_port "$port" PostgreSQL "$port_env=<free port>"
	hex_pg_init
	hex_pg_write_conf "$port" "$mode"
	hex_at_exit hex_pg_stop
	hex_say "starting PostgreSQL on 127.0.0.1:$port (log: $HEX_PG_LOG)"
	local from
	from=$(hex_log_size "$HEX_PG_LOG")
	if ! hex_as_server_user "$HEX_PG_BIN/pg_ctl" start -D "$HEX_PG_DATA" -l "$HEX_PG_LOG" \
		-w -t "$HEX_START_TIMEOUT" >/dev/null 2>&1 9>&- ||
		! hex_wait_until "$HEX_START_TIMEOUT" "$HEX_PG_BIN/pg_isready" -q -h 127.0.0.1 \
			-p "$port" -U "$HEX_SERVER_USER" -d postgres; then
		hex_show_log_tail "$HEX_PG_LOG" "$from"
		hex_die "PostgreSQL did not start on 127.0.0.1:$port within ${HEX_START_TIMEOUT}s (log above)"
	fi
}

hex_pg_create_database() {
	local port=$1 db=$2 exists
	exists=$("$HEX_PG_BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U "$HEX_SERVER_USER" -d postgres \
		-tAc "SELECT 1 FROM pg_database WHERE datname = '$db'") ||
		hex_die "cannot query PostgreSQL on 127.0.0.1:$port"
	[ "$exists" = 1 ] && return 0
	hex_say "creating database '$db'"
	"$HEX_PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U "$HEX_SERVER_USER" "$db" ||
		hex_die "createdb $db failed"
}

# ---------------------------------------------------------------- Redis

hex_redis_paths() {
	HEX_REDIS_DIR=$HEX_SERVER_DIR/redis
	HEX_REDIS_PIDFILE=$HEX_REDIS_DIR/redis.pid
	HEX_REDIS_LOG=$HEX_REDIS_DIR/redis.log
}

hex_redis_pid() {
	head -n 1 "$HEX_REDIS_PIDFILE" 2>/dev/null || true
}

hex_redis_clear_leftover() {
	hex_redis_paths
	[ -f "$HEX_REDIS_PIDFILE" ] || return 0
	local pid
	pid=$(hex_redis_pid)
	if hex_pid_is_ours "$pid" redis-server "$HEX_REDIS_DIR"; then
		hex_say "Redis from a previous run is still running (pid $pid); restarting it"
		hex_redis_stop
	else
		hex_say "removing stale $HEX_REDIS_PIDFILE (pid ${pid:-?} is not running)"
		rm -f "$HEX_REDIS_PIDFILE"
	fi
}

# SIGTERM makes Redis write its snapshot (when --save is on) and exit.
hex_redis_stop() {
	hex_redis_paths
	local pid
	pid=$(hex_redis_pid)
	hex_pid_is_ours "$pid" redis-server "$HEX_REDIS_DIR" || return 0
	hex_say "stopping Redis (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	hex_wait_pid_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
	rm -f "$HEX_REDIS_PIDFILE"
}

hex_redis_ping() {
	[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
}

# Starts Redis on 127.0.0.1:port. Dev keeps RDB snapshots in its folder (the cache and
# streams survive a restart); tests never write to disk.
hex_redis_start() {
	local mode=$1 port=$2 port_env=$3
	hex_redis_paths
	command -v redis-server >/dev/null || hex_die "redis-server is not installed"
	hex_make_server_dir "$HEX_REDIS_DIR"
	hex_redis_clear_leftover
	hex_require_free_port "$port" Redis "$port_env=<free port>"
	local save=''
	[ "$mode" = dev ] && save='300 1'
	hex_at_exit hex_redis_stop
	hex_say "starting Redis on 127.0.0.1:$port (log: $HEX_REDIS_LOG)"
	local from
	from=$(hex_log_size "$HEX_REDIS_LOG")
	if ! hex_as_server_user redis-server --bind 127.0.0.1 --port "$port" --save "$save" \
		--appendonly no --daemonize yes --pidfile "$HEX_REDIS_PIDFILE" \
		--logfile "$HEX_REDIS_LOG" --dir "$HEX_REDIS_DIR" 9>&- ||
		! hex_wait_until "$HEX_START_TIMEOUT" hex_redis_ping "$port"; then
		hex_show_log_tail "$HEX_REDIS_LOG" "$from"
		hex_die "Redis did not start on 127.0.0.1:$port within ${HEX_START_TIMEOUT}s (log above)"
	fi
}

# ---------------------------------------------------------------- build

hex_build() {
	local dir=$1
	shift
	hex_say "building $dir/ $*"
	cmake -S "$HEX_ROOT" -B "$HEX_ROOT/$dir" "$@" 9>&- &&
		cmake --build "$HEX_ROOT/$dir" -j"$(nproc)" 9>&-
}
