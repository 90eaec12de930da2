/* pg_dead_letter_repo.c: dead letters and their attempt history in PostgreSQL. */
#include "adapters/postgres/pg_dead_letter_repo.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/postgres/pg_result.h"
#include "adapters/postgres/pg_sql.h"
#include "core/logger.h"
#include "core/xmalloc.h"

/* The column order row_to_letter() reads; a statement adds its extras after them. */
/* clang-format off */
#define LETTER_COLUMNS \
	"id, consumer, event_id, topic, attempts, error, status, " PG_SQL_US("created_at") ", " \
	"coalesce(" PG_SQL_US("resolved_at") ", 0), coalesce(resolved_by, ''), " \
	"coalesce(reason, '')"
#define LETTER_NCOLS 11
/* A missing cursor is an infinite one, so that one plan serves both. */
#define BEFORE_ID "id < coalesce(nullif($2::bigint, 0), 9223372036854775807) "
/* clang-format on */

enum {
	DL_LIST_OPEN,
	DL_LIST_ALL,
	DL_GET,
	DL_ROW,
	DL_HISTORY,
	DL_LOCK,
	DL_REPLAY_OUTBOX,
	DL_REPLAY,
	DL_DISCARD,
	DL_COUNT_OPEN,
	DL_STMT_COUNT
};

/* SQL reads best laid out as SQL. */
/* clang-format off */
const struct pg_stmt pg_dead_letter_repo_stmts[DL_STMT_COUNT] = {
	/* Two statements, not "$3 OR status = 'open'": the open list walks its partial index. */
	[DL_LIST_OPEN] = {"dead_letter_list_open",
		"SELECT " LETTER_COLUMNS " FROM dead_letters WHERE status = 'open' AND " BEFORE_ID
		"ORDER BY id DESC LIMIT $1::int", 2},
	[DL_LIST_ALL] = {"dead_letter_list_all",
		"SELECT " LETTER_COLUMNS " FROM dead_letters WHERE " BEFORE_ID
		"ORDER BY id DESC LIMIT $1::int", 2},
	[DL_GET] = {"dead_letter_get",
		"SELECT " LETTER_COLUMNS ", payload FROM dead_letters WHERE id = $1::bigint", 1},
	[DL_ROW] = {"dead_letter_row",
		"SELECT " LETTER_COLUMNS " FROM dead_letters WHERE id = $1::bigint", 1},
	/*
	 * The attempts up to the row's own: after a replay the same event may fail again and
	 * die in a newer row, whose attempts are not this one's story.
	 */
	[DL_HISTORY] = {"dead_letter_history",
		"SELECT attempt, " PG_SQL_US("failed_at") ", error FROM "
		"(SELECT attempt, failed_at, error FROM event_failures "
		"WHERE consumer = $1 AND event_id = $2 AND attempt <= $3::int "
		"ORDER BY attempt DESC LIMIT $4::int) h ORDER BY attempt", 4},
	/* Replay and discard of one row by two operators: the second one waits, then sees it closed. */
	[DL_LOCK] = {"dead_letter_lock",
		"SELECT " LETTER_COLUMNS " FROM dead_letters WHERE id = $1::bigint FOR UPDATE", 1},
	/* No row when the payload is not JSON or there is no topic: nothing could relay it. */
	[DL_REPLAY_OUTBOX] = {"dead_letter_replay_outbox",
		"INSERT INTO outbox (event_id, topic, payload, consumer, attempt, available_at, "
		"created_at) "
		"SELECT event_id, topic, p.j, consumer, attempts + 1, " PG_SQL_TS("$2") ", "
		PG_SQL_TS("$2") " FROM dead_letters, LATERAL (SELECT event_json_or_null(payload) AS j) p "
		"WHERE id = $1::bigint AND p.j IS NOT NULL AND topic <> ''", 2},
	[DL_REPLAY] = {"dead_letter_replay",
		"UPDATE dead_letters SET status = 'replayed', resolved_at = " PG_SQL_TS("$2") ", "
		"resolved_by = $3 WHERE id = $1::bigint AND status = 'open' "
		"RETURNING " LETTER_COLUMNS, 3},
	[DL_DISCARD] = {"dead_letter_discard",
		"UPDATE dead_letters SET status = 'discarded', resolved_at = " PG_SQL_TS("$2") ", "
		"resolved_by = $3, reason = $4 WHERE id = $1::bigint AND status = 'open' "
		"RETURNING " LETTER_COLUMNS, 4},
	[DL_COUNT_OPEN] = {"dead_letter_count_open",
		"SELECT count(*) FROM dead_letters WHERE status = 'open'", 0},
};
/* clang-format on */

const size_t pg_dead_letter_repo_stmt_count = DL_STMT_COUNT;

static const struct pg_stmt *stmt(int which)
{
	return &pg_dead_letter_repo_stmts[which];
}

static void fmt_i64(char buf[24], int64_t v)
{
	snprintf(buf, 24, "%" PRId64, v);
}

/* The names are the core's (dead_letter_status_name), so that they are spelled once. */
static bool status_parse(const char *s, enum dead_letter_status *out)
{
	static const enum dead_letter_status all[] = {DEAD_LETTER_OPEN, DEAD_LETTER_REPLAYED,
	                                              DEAD_LETTER_DISCARDED};
	for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
		if (strcmp(s, dead_letter_status_name(all[i])) == 0) {
			*out = all[i];
			return true;
		}
	}
	return false;
}

/* LETTER_COLUMNS of row into d, which is cleared first (no payload, no history). */
static bool row_to_letter(const PGresult *r, int row, struct dead_letter *d)
{
	char status[16];
	int64_t attempts = 0;
	memset(d, 0, sizeof *d);
	bool ok = pg_result_int64(r, row, 0, &d->id) &&
	          pg_result_text(r, row, 1, d->consumer, sizeof d->consumer) &&
	          pg_result_text(r, row, 2, d->event_id, sizeof d->event_id) &&
	          pg_result_text(r, row, 3, d->topic, sizeof d->topic) &&
	          pg_result_int64(r, row, 4, &attempts) && attempts >= 1 && attempts <= INT_MAX &&
	          pg_result_text(r, row, 5, d->error, sizeof d->error) &&
	          pg_result_text(r, row, 6, status, sizeof status) &&
	          status_parse(status, &d->status) &&
	          pg_result_int64(r, row, 7, &d->created_at_us) &&
	          pg_result_int64(r, row, 8, &d->resolved_at_us) &&
	          pg_result_text(r, row, 9, d->resolved_by, sizeof d->resolved_by) &&
	          pg_result_text(r, row, 10, d->reason, sizeof d->reason);
	if (!ok) {
		log_error("pg_dead_letter_row_invalid",
		          "a dead_letters row does not fit struct dead_letter");
		return false;
	}
	d->attempts = (int)attempts;
	return true;
}

/* Runs a statement that returns at most one LETTER_COLUMNS row: HEX_NOT_FOUND if none. */
static enum hex_status query_letter(struct pg_conn *c, int which, const char *const *params,
                                    struct dead_letter *out)
{
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(c, stmt(which), params, &r);
	if (st == HEX_OK && PQntuples(r) == 0)
		st = HEX_NOT_FOUND;
	else if (st == HEX_OK && !row_to_letter(r, 0, out))
		st = HEX_INTERNAL;
	PQclear(r);
	return st;
}

static enum hex_status pg_dead_letter_repo_list(void *self, bool all, int limit, int64_t before_id,
                                                struct dead_letter_page *out)
{
	out->count = 0;
	out->has_more = false;
	if (limit < 1 || limit > HEX_LIST_MAX || before_id < 0)
		return HEX_INVALID;
	char lim[24], before[24];
	fmt_i64(lim, limit + 1); /* one more tells whether there is a next page */
	fmt_i64(before, before_id);
	const char *params[] = {lim, before};
	PGresult *r = NULL;
	enum hex_status st =
	    pg_conn_query(self, stmt(all ? DL_LIST_ALL : DL_LIST_OPEN), params, &r);
	if (st != HEX_OK)
		goto out;
	int rows = PQntuples(r);
	for (int i = 0; i < rows && i < limit; i++) {
		if (!row_to_letter(r, i, &out->items[i])) {
			st = HEX_INTERNAL;
			out->count = 0;
			goto out;
		}
		out->count = i + 1;
	}
	out->has_more = rows > limit;
out:
	PQclear(r);
	return st;
}

/* d's attempts, oldest first, into d->history. */
static enum hex_status read_history(struct pg_conn *c, struct dead_letter *d)
{
	char attempts[24], max[24];
	fmt_i64(attempts, d->attempts);
	fmt_i64(max, DEAD_LETTER_HISTORY_MAX);
	const char *params[] = {d->consumer, d->event_id, attempts, max};
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(c, stmt(DL_HISTORY), params, &r);
	for (int i = 0; st == HEX_OK && i < PQntuples(r) && i < DEAD_LETTER_HISTORY_MAX; i++) {
		struct dead_letter_attempt *a = &d->history[i];
		int64_t attempt = 0;
		if (!pg_result_int64(r, i, 0, &attempt) || attempt < 1 || attempt > INT_MAX ||
		    !pg_result_int64(r, i, 1, &a->failed_at_us) ||
		    !pg_result_text(r, i, 2, a->error, sizeof a->error)) {
			log_error("pg_dead_letter_row_invalid",
			          "an event_failures row does not fit struct dead_letter_attempt");
			st = HEX_INTERNAL;
			break;
		}
		a->attempt = (int)attempt;
		d->nhistory = i + 1;
	}
	PQclear(r);
	return st;
}

static enum hex_status pg_dead_letter_repo_get(void *self, int64_t id, struct dead_letter *out)
{
	struct pg_conn *c = self;
	memset(out, 0, sizeof *out);
	if (id <= 0)
		return HEX_NOT_FOUND;
	char idbuf[24];
	fmt_i64(idbuf, id);
	const char *params[] = {idbuf};
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(c, stmt(DL_GET), params, &r);
	if (st != HEX_OK)
		goto out;
	if (PQntuples(r) == 0) {
		st = HEX_NOT_FOUND;
		goto out;
	}
	if (!row_to_letter(r, 0, out) || PQgetisnull(r, 0, LETTER_NCOLS)) {
		st = HEX_INTERNAL;
		goto out;
	}
	out->payload =
	    xstrndup(PQgetvalue(r, 0, LETTER_NCOLS), (size_t)PQgetlength(r, 0, LETTER_NCOLS));
	st = read_history(c, out);
out:
	if (st != HEX_OK) {
		free(out->payload);
		memset(out, 0, sizeof *out);
	}
	PQclear(r);
	return st;
}

/* Inside replay's transaction, the row locked and open: the outbox row of its next attempt. */
static enum hex_status schedule_replay(struct pg_conn *c, const char *id, const char *now)
{
	const char *params[] = {id, now};
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(c, stmt(DL_REPLAY_OUTBOX), params, &r);
	if (st == HEX_OK && pg_result_affected(r) != 1)
		st = HEX_INVALID;
	PQclear(r);
	return st;
}

static bool text_fits(const char *s, size_t max)
{
	return s != NULL && s[0] != '\0' && strlen(s) <= max;
}

static enum hex_status pg_dead_letter_repo_replay(void *self, int64_t id, const char *actor,
                                                  int64_t now_us, struct dead_letter *out)
{
	struct pg_conn *c = self;
	memset(out, 0, sizeof *out);
	if (!text_fits(actor, DEAD_LETTER_ACTOR_MAX))
		return HEX_INVALID;
	if (id <= 0)
		return HEX_NOT_FOUND;
	char idbuf[24], now[24];
	fmt_i64(idbuf, id);
	fmt_i64(now, now_us);
	const char *lock_params[] = {idbuf};
	const char *replay_params[] = {idbuf, now, actor};
	bool closed = false;

	enum hex_status st = pg_conn_begin(c);
	if (st != HEX_OK)
		goto out;
	if ((st = query_letter(c, DL_LOCK, lock_params, out)) != HEX_OK)
		goto out;
	if (out->status != DEAD_LETTER_OPEN) {
		closed = true; /* out keeps the row: who closed it, and how */
		st = HEX_CONFLICT;
		goto out;
	}
	if ((st = schedule_replay(c, idbuf, now)) != HEX_OK)
		goto out;
	if ((st = query_letter(c, DL_REPLAY, replay_params, out)) != HEX_OK)
		goto out;
	st = pg_conn_commit(c);
out:
	if (st != HEX_OK) {
		pg_conn_rollback(c);
		if (!closed)
			memset(out, 0, sizeof *out);
	}
	return st;
}

static enum hex_status pg_dead_letter_repo_discard(void *self, int64_t id, const char *actor,
                                                   const char *reason, int64_t now_us,
                                                   struct dead_letter *out)
{
	struct pg_conn *c = self;
	memset(out, 0, sizeof *out);
	if (!text_fits(actor, DEAD_LETTER_ACTOR_MAX) || !text_fits(reason, DEAD_LETTER_REASON_MAX))
		return HEX_INVALID;
	if (id <= 0)
		return HEX_NOT_FOUND;
	char idbuf[24], now[24];
	fmt_i64(idbuf, id);
	fmt_i64(now, now_us);
	const char *params[] = {idbuf, now, actor, reason};
	enum hex_status st = query_letter(c, DL_DISCARD, params, out);
	if (st != HEX_NOT_FOUND)
		return st;
	/* Nothing open had that id: say whether it is closed already or does not exist. */
	const char *row_params[] = {idbuf};
	st = query_letter(c, DL_ROW, row_params, out);
	if (st == HEX_OK)
		st = out->status != DEAD_LETTER_OPEN ? HEX_CONFLICT : HEX_INTERNAL;
	if (st != HEX_CONFLICT)
		memset(out, 0, sizeof *out);
	return st;
}

static enum hex_status pg_dead_letter_repo_count_open(void *self, long *out)
{
	*out = 0;
	PGresult *r = NULL;
	int64_t n = 0;
	enum hex_status st = pg_conn_query(self, stmt(DL_COUNT_OPEN), NULL, &r);
	if (st == HEX_OK && !pg_result_int64(r, 0, 0, &n))
		st = HEX_INTERNAL;
	if (st == HEX_OK)
		*out = (long)n;
	PQclear(r);
	return st;
}

static const struct dead_letter_repo_ops pg_dead_letter_repo_ops = {
    .list = pg_dead_letter_repo_list,
    .get = pg_dead_letter_repo_get,
    .replay = pg_dead_letter_repo_replay,
    .discard = pg_dead_letter_repo_discard,
    .count_open = pg_dead_letter_repo_count_open,
};

struct dead_letter_repo pg_dead_letter_repo_port(struct pg_conn *c)
{
	pg_conn_register(c, pg_dead_letter_repo_stmts, pg_dead_letter_repo_stmt_count);
	return (struct dead_letter_repo){.ops = &pg_dead_letter_repo_ops, .self = c};
}
