/* pg_outbox_repo.c: claiming, publishing and measuring the outbox in PostgreSQL. */
#include "adapters/postgres/pg_outbox_repo.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/postgres/pg_result.h"
#include "adapters/postgres/pg_sql.h"
#include "core/logger.h"
#include "core/xmalloc.h"

enum { OUTBOX_CLAIM, OUTBOX_PUBLISHED, OUTBOX_LAG, OUTBOX_STMT_COUNT };

/* SQL reads best laid out as SQL. */
/* clang-format off */
const struct pg_stmt pg_outbox_repo_stmts[OUTBOX_STMT_COUNT] = {
	/*
	 * Walks outbox_due_idx. SKIP LOCKED: a row another relay holds is its to publish, so
	 * concurrent relays share the work instead of queueing behind each other's batch.
	 */
	[OUTBOX_CLAIM] = {"outbox_claim",
		"SELECT id, event_id, topic, consumer, attempt, payload::text FROM outbox "
		"WHERE published_at IS NULL AND available_at <= " PG_SQL_TS("$1") " "
		"ORDER BY available_at, id LIMIT $2::int FOR UPDATE SKIP LOCKED", 2},
	[OUTBOX_PUBLISHED] = {"outbox_published",
		"UPDATE outbox SET published_at = " PG_SQL_TS("$2") " "
		"WHERE id = ANY ($1::bigint[]) AND published_at IS NULL", 2},
	[OUTBOX_LAG] = {"outbox_lag",
		"SELECT count(*), coalesce($1::bigint - " PG_SQL_US(
			"min(available_at) FILTER (WHERE available_at <= " PG_SQL_TS("$1") ")") ", 0) "
		"FROM outbox WHERE published_at IS NULL", 1},
};
/* clang-format on */

const size_t pg_outbox_repo_stmt_count = OUTBOX_STMT_COUNT;

static const struct pg_stmt *stmt(int which)
{
	return &pg_outbox_repo_stmts[which];
}

static void fmt_i64(char buf[24], int64_t v)
{
	snprintf(buf, 24, "%" PRId64, v);
}

/* One claimed row into m; the payload is copied last, so a failure allocates nothing. */
static bool row_to_msg(const PGresult *r, int row, struct event_msg *m)
{
	int64_t attempt = 0;
	memset(m, 0, sizeof *m);
	bool ok = pg_result_int64(r, row, 0, &m->outbox_id) &&
	          pg_result_text(r, row, 1, m->event_id, sizeof m->event_id) &&
	          pg_result_text(r, row, 2, m->topic, sizeof m->topic) &&
	          pg_result_text(r, row, 3, m->consumer, sizeof m->consumer) &&
	          pg_result_int64(r, row, 4, &attempt) && attempt >= 1 && attempt <= INT_MAX &&
	          !PQgetisnull(r, row, 5);
	if (!ok) {
		log_error("pg_outbox_row_invalid", "an outbox row does not fit struct event_msg");
		return false;
	}
	m->attempt = (int)attempt;
	m->payload_len = (size_t)PQgetlength(r, row, 5);
	m->payload = xstrndup(PQgetvalue(r, row, 5), m->payload_len);
	return true;
}

static enum hex_status pg_outbox_repo_claim(void *self, int limit, int64_t now_us,
                                            struct event_batch *out)
{
	struct pg_conn *c = self;
	out->n = 0;
	if (limit < 1 || limit > EVENT_BATCH_MAX)
		return HEX_INVALID;
	char now[24], lim[24];
	fmt_i64(now, now_us);
	fmt_i64(lim, limit);
	const char *params[] = {now, lim};
	PGresult *r = NULL;

	enum hex_status st = pg_conn_begin(c);
	if (st != HEX_OK)
		return st;
	if ((st = pg_conn_query(c, stmt(OUTBOX_CLAIM), params, &r)) != HEX_OK)
		goto out;
	for (int i = 0; i < PQntuples(r) && i < EVENT_BATCH_MAX; i++) {
		if (!row_to_msg(r, i, &out->items[i])) {
			st = HEX_INTERNAL;
			goto out;
		}
		out->n = i + 1;
	}
	if (out->n == 0)
		pg_conn_rollback(c); /* nothing locked: the port says the claim is over */
out:
	if (st != HEX_OK) {
		pg_conn_rollback(c);
		event_batch_clear(out);
	}
	PQclear(r);
	return st;
}

static enum hex_status pg_outbox_repo_published(void *self, const struct event_batch *b,
                                                int64_t now_us)
{
	struct pg_conn *c = self;
	if (b->n == 0)
		return HEX_OK; /* claim() already ended that transaction */
	if (pg_conn_depth(c) == 0) {
		/* Outside the claim the update would autocommit rows nobody locked. */
		log_error("pg_outbox_publish_unclaimed", "published() called with no claim open");
		return HEX_INTERNAL;
	}
	/* A bigint array literal: at most 20 characters and a comma per id. */
	char ids[EVENT_BATCH_MAX * 21 + 3] = "{";
	size_t len = 1;
	for (int i = 0; i < b->n && i < EVENT_BATCH_MAX; i++)
		len += (size_t)snprintf(ids + len, sizeof ids - len, "%s%" PRId64, i > 0 ? "," : "",
		                        b->items[i].outbox_id);
	snprintf(ids + len, sizeof ids - len, "}");
	char now[24];
	fmt_i64(now, now_us);
	const char *params[] = {ids, now};
	PGresult *r = NULL;

	enum hex_status st = pg_conn_query(c, stmt(OUTBOX_PUBLISHED), params, &r);
	if (st == HEX_OK && pg_result_affected(r) != b->n) {
		/* Not the rows a claim returned: stamping some of them would hide the bug. */
		log_error("pg_outbox_publish_mismatch",
		          "%ld of %d outbox rows could be marked published", pg_result_affected(r),
		          b->n);
		st = HEX_INTERNAL;
	}
	if (st == HEX_OK)
		st = pg_conn_commit(c);
	if (st != HEX_OK)
		pg_conn_rollback(c);
	PQclear(r);
	return st;
}

static void pg_outbox_repo_release(void *self)
{
	pg_conn_rollback(self);
}

static enum hex_status pg_outbox_repo_lag(void *self, int64_t now_us, struct outbox_lag *out)
{
	memset(out, 0, sizeof *out);
	char now[24];
	fmt_i64(now, now_us);
	const char *params[] = {now};
	PGresult *r = NULL;
	int64_t count = 0, age = 0;
	enum hex_status st = pg_conn_query(self, stmt(OUTBOX_LAG), params, &r);
	if (st == HEX_OK && (!pg_result_int64(r, 0, 0, &count) || !pg_result_int64(r, 0, 1, &age)))
		st = HEX_INTERNAL;
	if (st == HEX_OK) {
		out->unpublished = (long)count;
		out->oldest_age_us = age;
	}
	PQclear(r);
	return st;
}

static const struct outbox_repo_ops pg_outbox_repo_ops = {
    .claim = pg_outbox_repo_claim,
    .published = pg_outbox_repo_published,
    .release = pg_outbox_repo_release,
    .lag = pg_outbox_repo_lag,
};

struct outbox_repo pg_outbox_repo_port(struct pg_conn *c)
{
	pg_conn_register(c, pg_outbox_repo_stmts, pg_outbox_repo_stmt_count);
	return (struct outbox_repo){.ops = &pg_outbox_repo_ops, .self = c};
}
