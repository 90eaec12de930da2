#!/usr/bin/env bash
# up.sh: bring hex up on this machine in one command.
#
# Installs missing Debian packages, builds build/, starts a PostgreSQL 15 and a Redis of
# its own on loopback (data in .hex/dev/, kept between runs), creates the database `hex`,
# migrates, then runs `hexd serve` in the foreground. Ctrl-C stops hexd (it drains its
# in-flight requests), then Redis and PostgreSQL.
#
# Environment: HEX_DEV_PG_PORT (15432), HEX_DEV_REDIS_PORT (16379), and every HEX_* key
# of hexd (e.g. HEX_HTTP_LISTEN, HEX_LOG_FORMAT=text, HEX_STRIPE_SECRET_KEY).
set -euo pipefail

HEX_SCRIPT=up
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT=${HEX_DEV_PG_PORT:-15432}
REDIS_PORT=${HEX_DEV_REDIS_PORT:-16379}
HEXD=$HEX_ROOT/build/bin/hexd

export_hexd_env() {
	export HEX_DATABASE_URL="host=127.0.0.1 port=$PG_PORT user=$HEX_SERVER_USER dbname=hex"
	export HEX_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
	if [ -z "${HEX_GATEWAY:-}" ]; then
		if [ -n "${HEX_STRIPE_SECRET_KEY:-}" ]; then
			export HEX_GATEWAY=stripe
		else
			export HEX_GATEWAY=simulated
		fi
	fi
	# For a second shell: `set -a; . .hex/dev/hexd.env; . .hex/dev/secrets.env; set +a`.
	{
		printf 'HEX_DATABASE_URL=%q\n' "$HEX_DATABASE_URL"
		printf 'HEX_REDIS_URL=%q\n' "$HEX_REDIS_URL"
		printf 'HEX_GATEWAY=%q\n' "$HEX_GATEWAY"
	} >"$HEX_STATE/hexd.env"
}

# A hexd of this project left running by a killed run would hold the ports.
stop_leftover_hexd() {
	local pidfile=$HEX_STATE/hexd.pid pid exe
	[ -f "$pidfile" ] || return 0
	pid=$(head -n 1 "$pidfile" 2>/dev/null || true)
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
	if [ -n "$pid" ] && [ "$exe" = "$HEXD" ]; then
		hex_say "hexd from a previous run is still running (pid $pid); stopping it"
		kill -TERM "$pid" 2>/dev/null || true
		hex_wait_pid_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

listen_port() {
	printf '%s' "${1##*:}"
}

check_listen_ports() {
	local var addr
	for var in HEX_HTTP_LISTEN HEX_PAYMENTS_LISTEN HEX_ADMIN_LISTEN; do
		addr=${!var}
		hex_require_free_port "$(listen_port "$addr")" "hexd, $var" "$var=127.0.0.1:<free port>"
	done
}

print_banner() {
	local api=http://$HEX_HTTP_LISTEN
	cat <<EOF

hex is starting (hexd serve; gateway: $HEX_GATEWAY)
  API       $api
  payments  http://$HEX_PAYMENTS_LISTEN
  admin     $HEX_ADMIN_LISTEN  (hexctl; token: HEX_ADMIN_TOKEN in .hex/dev/secrets.env:
            set -a; . .hex/dev/secrets.env; set +a; build/bin/hexctl)
  data      PostgreSQL 127.0.0.1:$PG_PORT, Redis 127.0.0.1:$REDIS_PORT, in $HEX_SERVER_DIR

Try it (in another terminal):
  curl -s -X POST $api/v1/users -H 'Content-Type: application/json' \\
       -d '{"email":"ada@example.com","password":"correct horse"}'
  curl -s -X POST $api/v1/login -H 'Content-Type: application/json' \\
       -d '{"email":"ada@example.com","password":"correct horse"}'

Ctrl-C stops hexd, Redis and PostgreSQL (data is kept for the next run).

EOF
}

# hexd runs in its own session so that Ctrl-C reaches only this script, which then sends
# hexd exactly one SIGTERM (see hex_on_signal) and waits for it to drain.
run_hexd() {
	setsid "$HEXD" serve 9>&- &
	HEX_HEXD_PID=$!
	printf '%s\n' "$HEX_HEXD_PID" >"$HEX_STATE/hexd.pid"
	hex_at_exit "rm -f $(printf %q "$HEX_STATE/hexd.pid")"
	while kill -0 "$HEX_HEXD_PID" 2>/dev/null; do
		wait "$HEX_HEXD_PID" || true
	done
	local rc=0
	wait "$HEX_HEXD_PID" || rc=$?
	HEX_HEXD_PID=
	hex_say "hexd exited with status $rc"
	return "$rc"
}

main() {
	hex_init
	hex_lock dev
	hex_install_packages
	hex_ensure_server_user
	hex_choose_folders dev
	: "${HEX_HTTP_LISTEN:=127.0.0.1:5000}" "${HEX_PAYMENTS_LISTEN:=127.0.0.1:4242}"
	: "${HEX_ADMIN_LISTEN:=127.0.0.1:7070}"
	export HEX_HTTP_LISTEN HEX_PAYMENTS_LISTEN HEX_ADMIN_LISTEN
	stop_leftover_hexd
	check_listen_ports

	hex_pg_start dev "$PG_PORT" HEX_DEV_PG_PORT
	hex_redis_start dev "$REDIS_PORT" HEX_DEV_REDIS_PORT
	hex_pg_create_database "$PG_PORT" hex

	cd "$HEX_ROOT"
	hex_build build || hex_die "the build failed (see above)"
	[ -x "$HEXD" ] || hex_die "the build did not produce $HEXD"

	hex_load_secrets "$HEX_STATE/secrets.env"
	export_hexd_env
	hex_say "migrating the database"
	"$HEXD" migrate 9>&- || hex_die "hexd migrate failed (exit $?)"
	print_banner
	run_hexd
}

main "$@"
