# shellcheck shell=bash
# bench_messages.sh: the message table of the messages cases (issue 3): a few hundred
# thousand rows written straight into hexd A's database in one INSERT ... SELECT (through
# the API it would take longer than the whole benchmark), then checks through the API
# that both measured routes answer as a client expects. Sourced by run.sh, never run.

BENCH_MESSAGE_AUTHORS=5

# bench_psql_value DB SQL: the single value the query returns.
bench_psql_value() {
	psql -X -q -t -A -h 127.0.0.1 -p "$PG_PORT" -U "$HEX_SERVER_USER" -d "$1" \
		-v ON_ERROR_STOP=1 -c "$2"
}

# BENCH_MESSAGES rows for the reader and the first login users, one in
# BENCH_MESSAGE_AUTHORS each, round robin: the reader owns a fifth. Ten seconds apart,
# newest now, so every page of the list is full; bodies of a few words, varied enough
# that the search index holds real words. The table's own defaults and its generated
# search column fill in the rest, exactly as for a message posted through the API.
bench_seed_messages() {
	local authors="'$BENCH_READER_EMAIL'" i started=$SECONDS
	for ((i = 0; i < BENCH_MESSAGE_AUTHORS - 1; i++)); do
		authors="$authors, 'bench-login-$i@example.com'"
	done
	hex_say "seeding $BENCH_MESSAGES messages for $BENCH_MESSAGE_AUTHORS users in SQL"
	bench_psql "$BENCH_DB" "
		INSERT INTO messages (id, user_id, body, created_at, updated_at)
		SELECT gen_random_uuid(), a.ids[1 + i % $BENCH_MESSAGE_AUTHORS],
		       format('bench message %s about %s and %s, %s', i,
		              (ARRAY['payments', 'the cache', 'postgres', 'lunch', 'the release',
		                     'a bug', 'metrics'])[1 + i % 7],
		              (ARRAY['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot',
		                     'golf', 'hotel', 'india', 'juliet', 'kilo'])[1 + i % 11],
		              left(md5(i::text), 12)),
		       t.at, t.at
		FROM generate_series(0, $BENCH_MESSAGES - 1) AS i,
		     (SELECT array_agg(id ORDER BY (email <> '$BENCH_READER_EMAIL'), email) AS ids
		      FROM users WHERE email IN ($authors)) AS a,
		     LATERAL (SELECT now() - make_interval(secs => ($BENCH_MESSAGES - 1 - i) * 10.0)) AS t(at)"
	local n mine
	n=$(bench_psql_value "$BENCH_DB" 'SELECT count(*) FROM messages')
	mine=$(bench_psql_value "$BENCH_DB" \
		"SELECT count(*) FROM messages WHERE user_id = '$BENCH_READER_ID'")
	[ "$n" = "$BENCH_MESSAGES" ] || hex_die "seeded $BENCH_MESSAGES messages, the table has $n"
	BENCH_READER_MESSAGES=$mine
	hex_say "seeded $n messages in $((SECONDS - started))s (the reader owns $mine)"
}

# The two routes measured answer 200/201 with the shapes API.md gives, and the list is
# really the reader's newest messages: a full page with a cursor to the next.
bench_check_messages() {
	local api=$1 verdict
	bench_api GET "$api/v1/messages?limit=20" '' "$BENCH_TOKEN"
	bench_expect 200 "GET /v1/messages?limit=20"
	verdict=$(BENCH_ME=$BENCH_READER_ID python3 -c '
import json, os, sys
d = json.load(sys.stdin)
ok = len(d["data"]) == 20 and isinstance(d["next_cursor"], str) and all(
    m["user_id"] == os.environ["BENCH_ME"] for m in d["data"])
print("ok" if ok else "bad")' <<<"$API_BODY" 2>/dev/null || echo bad)
	[ "$verdict" = ok ] ||
		hex_die "GET /v1/messages?limit=20 is not a full page of the reader's messages: ${API_BODY:0:300}"
	bench_api POST "$api/v1/messages" '{"body":"bench check"}' "$BENCH_TOKEN"
	bench_expect 201 "POST /v1/messages"
	[ "$(bench_json_field user_id)" = "$BENCH_READER_ID" ] ||
		hex_die "POST /v1/messages answered an unexpected message: ${API_BODY:0:300}"
}
