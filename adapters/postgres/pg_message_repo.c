/* pg_message_repo.c: messages in PostgreSQL, through prepared statements only. */
#include "adapters/postgres/pg_message_repo.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/postgres/pg_result.h"
#include "adapters/postgres/pg_sql.h"
#include "core/logger.h"
#include "core/xmalloc.h"

/* The column order row_to_message() reads. */
/* clang-format off */
#define MESSAGE_COLUMNS \
	"id, user_id, body, " PG_SQL_US("created_at") ", " PG_SQL_US("updated_at")

/*
 * The list filters shared by every list statement: $1 limit, $2 since, $3 until, $4 and
 * $5 the cursor; each NULL when absent. A missing bound becomes an infinite one rather
 * than an "IS NULL OR", so that one cached plan serves every combination and still uses
 * the (created_at, id) index for the range and the cursor.
 */
#define LIST_RANGE \
	"created_at >= coalesce(" PG_SQL_TS("$2") ", '-infinity') " \
	"AND created_at < coalesce(" PG_SQL_TS("$3") ", 'infinity') " \
	"AND (created_at, id) < (coalesce(" PG_SQL_TS("$4") ", 'infinity'), " \
	"coalesce($5::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff')) "

#define LIST_ORDER "ORDER BY created_at DESC, id DESC "

/*
 * A search collects its matches through the GIN index first (a materialised CTE is a
 * fence the planner keeps), then applies range, cursor and order to them. Left to itself,
 * a cached plan walks the time index and tests every row, which costs a full scan for a
 * rare word; collecting costs at most the number of matches.
 */
#define LIST_SEARCH(match) \
	"WITH hits AS MATERIALIZED (SELECT id, created_at FROM messages WHERE " match ") " \
	"SELECT " MESSAGE_COLUMNS " FROM messages WHERE id IN (" \
	"SELECT id FROM hits WHERE " LIST_RANGE LIST_ORDER "LIMIT $1::int) " LIST_ORDER
/* clang-format on */

enum {
	MESSAGE_INSERT,
	MESSAGE_GET,
	MESSAGE_UPDATE_BODY,
	MESSAGE_DELETE,
	MESSAGE_LIST_ALL,
	MESSAGE_LIST_USER,
	MESSAGE_SEARCH_ALL,
	MESSAGE_SEARCH_USER,
	MESSAGE_STMT_COUNT
};

/* SQL reads best laid out as SQL. */
/* clang-format off */
const struct pg_stmt pg_message_repo_stmts[MESSAGE_STMT_COUNT] = {
	[MESSAGE_INSERT] = {"message_insert",
		"INSERT INTO messages (id, user_id, body, created_at, updated_at) "
		"VALUES ($1::uuid, $2::uuid, $3, " PG_SQL_TS("$4") ", " PG_SQL_TS("$5") ")", 5},
	[MESSAGE_GET] = {"message_get",
		"SELECT " MESSAGE_COLUMNS " FROM messages WHERE id = $1::uuid", 1},
	[MESSAGE_UPDATE_BODY] = {"message_update_body",
		"UPDATE messages SET body = $3, updated_at = " PG_SQL_TS("$4") " "
		"WHERE id = $1::uuid AND user_id = $2::uuid RETURNING " MESSAGE_COLUMNS, 4},
	[MESSAGE_DELETE] = {"message_delete",
		"DELETE FROM messages WHERE id = $1::uuid", 1},
	[MESSAGE_LIST_ALL] = {"message_list_all",
		"SELECT " MESSAGE_COLUMNS " FROM messages WHERE " LIST_RANGE
		LIST_ORDER "LIMIT $1::int", 5},
	[MESSAGE_LIST_USER] = {"message_list_user",
		"SELECT " MESSAGE_COLUMNS " FROM messages WHERE user_id = $6::uuid AND "
		LIST_RANGE LIST_ORDER "LIMIT $1::int", 6},
	[MESSAGE_SEARCH_ALL] = {"message_search_all",
		LIST_SEARCH("search @@ websearch_to_tsquery('simple', $6::text)"), 6},
	[MESSAGE_SEARCH_USER] = {"message_search_user",
		LIST_SEARCH("user_id = $6::uuid "
			    "AND search @@ websearch_to_tsquery('simple', $7::text)"), 7},
};
/* clang-format on */

const size_t pg_message_repo_stmt_count = MESSAGE_STMT_COUNT;

static const struct pg_stmt *stmt(int which)
{
	return &pg_message_repo_stmts[which];
}

/* Fills m from row; m->body is a new allocation on success, untouched on failure. */
static bool row_to_message(const PGresult *r, int row, struct message *m)
{
	bool ok = !PQgetisnull(r, row, 2) && pg_result_text(r, row, 0, m->id, sizeof m->id) &&
	          pg_result_text(r, row, 1, m->user_id, sizeof m->user_id) &&
	          pg_result_int64(r, row, 3, &m->created_at_us) &&
	          pg_result_int64(r, row, 4, &m->updated_at_us);
	if (!ok) {
		log_error("pg_message_row_invalid", "a messages row does not fit struct message");
		return false;
	}
	m->body = xstrdup(PQgetvalue(r, row, 2));
	return true;
}

/* Reads the single row of a lookup: HEX_NOT_FOUND if none. */
static enum hex_status one_message(const PGresult *r, struct message *out)
{
	if (PQntuples(r) == 0)
		return HEX_NOT_FOUND;
	return row_to_message(r, 0, out) ? HEX_OK : HEX_INTERNAL;
}

static enum hex_status pg_message_repo_insert(void *self, const struct message *m)
{
	if (!message_id_valid(m->id) || !user_id_valid(m->user_id) || m->body == NULL)
		return HEX_INVALID;
	char created[24], updated[24];
	snprintf(created, sizeof created, "%" PRId64, m->created_at_us);
	snprintf(updated, sizeof updated, "%" PRId64, m->updated_at_us);
	const char *params[] = {m->id, m->user_id, m->body, created, updated};
	/* A missing owner is a foreign key violation, which pg_conn reports as not found. */
	return pg_conn_query(self, stmt(MESSAGE_INSERT), params, NULL);
}

static enum hex_status pg_message_repo_get(void *self, const char *id, struct message *out)
{
	if (!message_id_valid(id))
		return HEX_NOT_FOUND;
	PGresult *r = NULL;
	const char *params[] = {id};
	enum hex_status st = pg_conn_query(self, stmt(MESSAGE_GET), params, &r);
	if (st == HEX_OK)
		st = one_message(r, out);
	PQclear(r);
	return st;
}

static enum hex_status pg_message_repo_update_body(void *self, const char *id, const char *owner_id,
                                                   const char *body, int64_t updated_at_us,
                                                   struct message *out)
{
	if (!message_id_valid(id) || !user_id_valid(owner_id))
		return HEX_NOT_FOUND;
	char updated[24];
	snprintf(updated, sizeof updated, "%" PRId64, updated_at_us);
	const char *params[] = {id, owner_id, body, updated};
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(self, stmt(MESSAGE_UPDATE_BODY), params, &r);
	if (st == HEX_OK)
		st = one_message(r, out);
	PQclear(r);
	return st;
}

static enum hex_status pg_message_repo_remove(void *self, const char *id)
{
	if (!message_id_valid(id))
		return HEX_NOT_FOUND;
	PGresult *r = NULL;
	const char *params[] = {id};
	enum hex_status st = pg_conn_query(self, stmt(MESSAGE_DELETE), params, &r);
	if (st == HEX_OK && pg_result_affected(r) == 0)
		st = HEX_NOT_FOUND;
	PQclear(r);
	return st;
}

static enum hex_status pg_message_repo_list(void *self, const struct message_filter *f,
                                            struct message_page *out)
{
	out->count = 0;
	out->has_more = false;
	if (f->limit < 1 || f->limit > HEX_LIST_MAX)
		return HEX_INVALID;
	if ((f->user_id != NULL && !user_id_valid(f->user_id)) ||
	    (f->after != NULL && !message_id_valid(f->after->id)))
		return HEX_INVALID;

	char limit[16], since[24], until[24], after_ts[24];
	/* One more row than asked tells whether another page follows. */
	snprintf(limit, sizeof limit, "%d", f->limit + 1);
	snprintf(since, sizeof since, "%" PRId64, f->since_us);
	snprintf(until, sizeof until, "%" PRId64, f->until_us);
	if (f->after != NULL)
		snprintf(after_ts, sizeof after_ts, "%" PRId64, f->after->created_at_us);
	const char *params[7] = {
	    limit,
	    f->has_since ? since : NULL,
	    f->has_until ? until : NULL,
	    f->after != NULL ? after_ts : NULL,
	    f->after != NULL ? f->after->id : NULL,
	};
	/* $6 and $7 are the user and the search, in that order, as far as present. */
	int n = 5;
	if (f->user_id != NULL)
		params[n++] = f->user_id;
	if (f->query != NULL)
		params[n++] = f->query;
	static const int variants[2][2] = {
	    {MESSAGE_LIST_ALL, MESSAGE_SEARCH_ALL},
	    {MESSAGE_LIST_USER, MESSAGE_SEARCH_USER},
	};
	int which = variants[f->user_id != NULL][f->query != NULL];

	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(self, stmt(which), params, &r);
	if (st != HEX_OK)
		goto out;
	int rows = PQntuples(r);
	for (int i = 0; i < rows && i < f->limit; i++) {
		if (!row_to_message(r, i, &out->items[i])) {
			message_page_clear(out);
			st = HEX_INTERNAL;
			goto out;
		}
		out->count = i + 1;
	}
	out->has_more = rows > f->limit;
out:
	PQclear(r);
	return st;
}

static const struct message_repo_ops pg_message_repo_ops = {
    .insert = pg_message_repo_insert,
    .get = pg_message_repo_get,
    .update_body = pg_message_repo_update_body,
    .remove = pg_message_repo_remove,
    .list = pg_message_repo_list,
};

struct message_repo pg_message_repo_port(struct pg_conn *c)
{
	pg_conn_register(c, pg_message_repo_stmts, pg_message_repo_stmt_count);
	return (struct message_repo){.ops = &pg_message_repo_ops, .self = c};
}
