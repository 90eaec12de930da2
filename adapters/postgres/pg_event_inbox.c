/* pg_event_inbox.c: applied events, the attempt history, retries and dead letters. */
#include "adapters/postgres/pg_event_inbox.h"

#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/postgres/pg_result.h"
#include "adapters/postgres/pg_sql.h"
#include "core/logger.h"
#include "core/xmalloc.h"

enum { INBOX_RECORD, INBOX_FAILURE, INBOX_RETRY, INBOX_DEAD, INBOX_STMT_COUNT };

/* SQL reads best laid out as SQL. */
/* clang-format off */
const struct pg_stmt pg_event_inbox_stmts[INBOX_STMT_COUNT] = {
	/* A second insert of the pair waits for the first one's transaction, then does nothing. */
	[INBOX_RECORD] = {"event_inbox_record",
		"INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) "
		"ON CONFLICT DO NOTHING", 2},
	[INBOX_FAILURE] = {"event_inbox_failure",
		"INSERT INTO event_failures (consumer, event_id, attempt, error, failed_at) "
		"VALUES ($1, $2, $3::int, $4, " PG_SQL_TS("$5") ") ON CONFLICT DO NOTHING", 5},
	/* No row when the payload is not JSON or there is no topic: nothing could relay it. */
	[INBOX_RETRY] = {"event_inbox_retry",
		"INSERT INTO outbox (event_id, topic, payload, consumer, attempt, available_at, "
		"created_at) "
		"SELECT $1, $2, p.j, $4, $5::int + 1, " PG_SQL_TS("$6") ", " PG_SQL_TS("$7") " "
		"FROM (SELECT event_json_or_null($3) AS j) p WHERE p.j IS NOT NULL AND $2 <> ''", 7},
	[INBOX_DEAD] = {"event_inbox_dead",
		"INSERT INTO dead_letters (consumer, event_id, topic, payload, attempts, error, "
		"created_at) VALUES ($1, $2, $3, $4, $5::int, $6, " PG_SQL_TS("$7") ") "
		"ON CONFLICT (consumer, event_id) WHERE status = 'open' DO NOTHING", 7},
};
/* clang-format on */

const size_t pg_event_inbox_stmt_count = INBOX_STMT_COUNT;

static const struct pg_stmt *stmt(int which)
{
	return &pg_event_inbox_stmts[which];
}

static void fmt_i64(char buf[24], int64_t v)
{
	snprintf(buf, 24, "%" PRId64, v);
}

/*
 * The well-formed UTF-8 sequences (Unicode table 3-7), which is what PostgreSQL accepts
 * in text: a lead byte range, the range of the byte after it, the sequence length. NUL
 * is missing on purpose: text cannot hold it.
 */
static const struct {
	unsigned char lead_lo, lead_hi, next_lo, next_hi;
	size_t len;
} utf8_forms[] = {
    {0x01, 0x7f, 0x00, 0x00, 1}, {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3},
    {0xe1, 0xec, 0x80, 0xbf, 3}, {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3},
    {0xf0, 0xf0, 0x90, 0xbf, 4}, {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
};

/* The length of the well-formed sequence at s (n bytes available), 0 if there is none. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
	for (size_t f = 0; f < sizeof utf8_forms / sizeof *utf8_forms; f++) {
		size_t len = utf8_forms[f].len;
		if (s[0] < utf8_forms[f].lead_lo || s[0] > utf8_forms[f].lead_hi)
			continue;
		if (len > n ||
		    (len > 1 && (s[1] < utf8_forms[f].next_lo || s[1] > utf8_forms[f].next_hi)))
			return 0;
		for (size_t i = 2; i < len; i++)
			if (s[i] < 0x80 || s[i] > 0xbf)
				return 0;
		return len;
	}
	return 0;
}

/*
 * The first len bytes of s as text PostgreSQL stores: each byte that starts no
 * well-formed sequence becomes '?', whole characters up to max bytes are kept, and with
 * one_line control characters become spaces. Never longer than s, and cleaning twice
 * changes nothing more, so that a retried event keeps its (cleaned) id. Caller frees.
 */
static char *text_clean(const char *s, size_t len, size_t max, bool one_line)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = xmalloc((len < max ? len : max) + 1);
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_sequence(p + i, len - i);
		if (o + (n > 0 ? n : 1) > max)
			break;
		if (n == 0 || (one_line && n == 1 && p[i] < 0x20)) {
			out[o++] = n == 0 ? '?' : ' ';
			i++;
			continue;
		}
		memcpy(out + o, p + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

static char *event_id_clean(const char *event_id)
{
	return text_clean(event_id, strnlen(event_id, EVENT_ID_MAX), EVENT_ID_MAX, false);
}

static enum hex_status pg_event_inbox_begin(void *self, const char *consumer, const char *event_id,
                                            bool *first)
{
	struct pg_conn *c = self;
	*first = false;
	if (consumer == NULL || !event_consumer_name_valid(consumer) || event_id == NULL ||
	    event_id[0] == '\0')
		return HEX_INVALID;
	char *id = event_id_clean(event_id);
	const char *params[] = {consumer, id};
	PGresult *r = NULL;

	enum hex_status st = pg_conn_begin(c);
	if (st != HEX_OK)
		goto out;
	if ((st = pg_conn_query(c, stmt(INBOX_RECORD), params, &r)) != HEX_OK)
		goto out;
	*first = pg_result_affected(r) == 1;
out:
	/* Applied before: the port says the transaction is over. */
	if (st != HEX_OK || !*first)
		pg_conn_rollback(c);
	PQclear(r);
	free(id);
	return st;
}

static enum hex_status pg_event_inbox_commit(void *self)
{
	return pg_conn_commit(self);
}

static void pg_event_inbox_rollback(void *self)
{
	pg_conn_rollback(self);
}

/* Inside fail()'s transaction: the retry row; *scheduled false if it cannot exist. */
static enum hex_status schedule_retry(struct pg_conn *c, const char *const *params, bool *scheduled)
{
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(c, stmt(INBOX_RETRY), params, &r);
	*scheduled = st == HEX_OK && pg_result_affected(r) == 1;
	PQclear(r);
	return st;
}

static enum hex_status pg_event_inbox_fail(void *self, const char *consumer,
                                           const struct event_msg *m, const char *error,
                                           int64_t now_us, int64_t retry_at_us, bool *dead)
{
	struct pg_conn *c = self;
	*dead = false;
	if (consumer == NULL || !event_consumer_name_valid(consumer) || m->event_id[0] == '\0' ||
	    m->attempt < 1)
		return HEX_INVALID;
	char *event_id = event_id_clean(m->event_id);
	char *topic =
	    text_clean(m->topic, strnlen(m->topic, EVENT_TOPIC_MAX), EVENT_TOPIC_MAX, false);
	char *why = text_clean(error != NULL ? error : "", error != NULL ? strlen(error) : 0,
	                       EVENT_ERROR_MAX, true);
	char *payload = text_clean(m->payload != NULL ? m->payload : "",
	                           m->payload != NULL ? m->payload_len : 0, SIZE_MAX, false);
	char attempt[24], now[24], retry_at[24];
	fmt_i64(attempt, m->attempt);
	fmt_i64(now, now_us);
	fmt_i64(retry_at, retry_at_us);
	const char *failure_params[] = {consumer, event_id, attempt, why, now};
	const char *retry_params[] = {event_id, topic, payload, consumer, attempt, retry_at, now};
	const char *dead_params[] = {consumer, event_id, topic, payload, attempt, why, now};
	PGresult *r = NULL;
	bool recorded = false, scheduled = false;

	enum hex_status st = pg_conn_begin(c);
	if (st != HEX_OK)
		goto out;
	if ((st = pg_conn_query(c, stmt(INBOX_FAILURE), failure_params, &r)) != HEX_OK)
		goto out;
	/* Another member recorded this attempt and did the rest: nothing more to do. */
	if (!(recorded = pg_result_affected(r) == 1))
		goto out;
	if (retry_at_us > 0 && m->attempt < INT_MAX) {
		if ((st = schedule_retry(c, retry_params, &scheduled)) != HEX_OK)
			goto out;
		if (!scheduled)
			log_warn("event_retry_impossible",
			         "%s: event %s cannot be relayed again (payload not JSON or no "
			         "topic); dead-lettering it",
			         consumer, event_id);
	}
	if (!scheduled) {
		if ((st = pg_conn_query(c, stmt(INBOX_DEAD), dead_params, NULL)) != HEX_OK)
			goto out;
		*dead = true;
	}
	st = pg_conn_commit(c);
out:
	if (st != HEX_OK || !recorded)
		pg_conn_rollback(c);
	if (st != HEX_OK)
		*dead = false;
	PQclear(r);
	free(event_id);
	free(topic);
	free(why);
	free(payload);
	return st;
}

/* A batch is the outer transaction: each event's own begin() becomes a savepoint in it. */
static enum hex_status pg_event_inbox_batch_begin(void *self)
{
	return pg_conn_begin(self);
}

static const struct event_inbox_ops pg_event_inbox_ops = {
    .batch_begin = pg_event_inbox_batch_begin,
    .batch_commit = pg_event_inbox_commit,
    .batch_rollback = pg_event_inbox_rollback,
    .begin = pg_event_inbox_begin,
    .commit = pg_event_inbox_commit,
    .rollback = pg_event_inbox_rollback,
    .fail = pg_event_inbox_fail,
};

struct event_inbox pg_event_inbox_port(struct pg_conn *c)
{
	pg_conn_register(c, pg_event_inbox_stmts, pg_event_inbox_stmt_count);
	return (struct event_inbox){.ops = &pg_event_inbox_ops, .self = c};
}
