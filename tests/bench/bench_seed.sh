# shellcheck shell=bash
# bench_seed.sh: the data the benchmark needs, made through hexd's own API as a client
# would: one reader (id + access token), BENCH_LOGIN_USERS users for the login load, and
# checks that every route measured answers 200 before any load is put on it.
# Sourced by run.sh, never run.

BENCH_PASSWORD='correct horse battery staple'
BENCH_READER_EMAIL='bench-reader@example.com'

# bench_api METHOD URL [JSON] [TOKEN]: sets API_STATUS and API_BODY.
bench_api() {
	local method=$1 url=$2 json=${3:-} token=${4:-} out=$BENCH_TMP/api-reply
	local args=(-sS -o "$out" -w '%{http_code}' -X "$method")
	[ -n "$json" ] && args+=(-H 'Content-Type: application/json' --data-binary "$json")
	[ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
	API_STATUS=$(curl "${args[@]}" "$url") || API_STATUS=000
	API_BODY=$(cat "$out" 2>/dev/null || true)
}

# bench_json_field NAME: the string value of a top-level field of API_BODY. Good enough
# for ids, emails and JWTs, which never contain a quote.
bench_json_field() {
	sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" <<<"$API_BODY" | head -n 1
}

bench_expect() {
	local want=$1 what=$2
	[ "$API_STATUS" = "$want" ] ||
		hex_die "$what: expected HTTP $want, got $API_STATUS: ${API_BODY:0:300}"
}

bench_credentials() {
	printf '{"email":"%s","password":"%s"}' "$1" "$BENCH_PASSWORD"
}

# Sets BENCH_READER_ID, BENCH_TOKEN (exported for get_user.lua) and BENCH_USER_JSON.
bench_seed() {
	local api_a=$1 api_b=$2 i
	hex_say "seeding through the API: 1 reader and $BENCH_LOGIN_USERS login users"
	bench_api POST "$api_a/v1/users" "$(bench_credentials "$BENCH_READER_EMAIL")"
	bench_expect 201 "POST /v1/users (reader)"
	BENCH_READER_ID=$(bench_json_field id)
	[ -n "$BENCH_READER_ID" ] || hex_die "POST /v1/users returned no id: $API_BODY"
	bench_api POST "$api_a/v1/login" "$(bench_credentials "$BENCH_READER_EMAIL")"
	bench_expect 200 "POST /v1/login (reader)"
	BENCH_TOKEN=$(bench_json_field access_token)
	[ -n "$BENCH_TOKEN" ] || hex_die "POST /v1/login returned no access_token"
	export BENCH_TOKEN

	for ((i = 0; i < BENCH_LOGIN_USERS; i++)); do
		bench_api POST "$api_a/v1/users" "$(bench_credentials "bench-login-$i@example.com")"
		bench_expect 201 "POST /v1/users (bench-login-$i)"
	done
	export BENCH_LOGIN_USERS BENCH_PASSWORD

	# Both instances must send the same bytes (the user JSON has no per-request field),
	# or the cached and uncached cases would not measure the same reply.
	bench_api GET "$api_b/v1/users/$BENCH_READER_ID" '' "$BENCH_TOKEN"
	bench_expect 200 "GET /v1/users/:id on hexd B"
	local from_b=$API_BODY
	bench_api GET "$api_a/v1/users/$BENCH_READER_ID" '' "$BENCH_TOKEN"
	bench_expect 200 "GET /v1/users/:id on hexd A"
	BENCH_USER_JSON=$API_BODY
	[ "$from_b" = "$BENCH_USER_JSON" ] ||
		hex_die "hexd A and B disagree on the user: '$BENCH_USER_JSON' vs '$from_b'"
	case $BENCH_USER_JSON in *password* | *hash*)
		hex_die "the user JSON carries password material: $BENCH_USER_JSON" ;;
	esac
	bench_api POST "$api_a/v1/login" "$(bench_credentials "bench-login-$((BENCH_LOGIN_USERS - 1))@example.com")"
	bench_expect 200 "POST /v1/login (last login user)"
}

# Median wall time of 5 logins one after another on an idle hexd, in ms: the cost of one
# password hash plus one round trip, the floor of every login latency in the table.
bench_login_latency_ms() {
	local api=$1 i reply times=()
	for ((i = 0; i < 5; i++)); do
		reply=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' -X POST \
			-H 'Content-Type: application/json' \
			--data-binary "$(bench_credentials "bench-login-$i@example.com")" "$api/v1/login")
		[ "${reply%% *}" = 200 ] || hex_die "POST /v1/login (bench-login-$i): HTTP ${reply%% *}"
		times+=("${reply#* }")
	done
	printf '%s\n' "${times[@]}" | sort -g | awk 'NR == 3 { printf "%.1f\n", $1 * 1000 }'
}
