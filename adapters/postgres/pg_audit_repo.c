/* pg_audit_repo.c: the operators' audit trail in PostgreSQL. */
#include "adapters/postgres/pg_audit_repo.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adapters/postgres/pg_result.h"
#include "adapters/postgres/pg_sql.h"
#include "core/logger.h"

enum { AUDIT_APPEND, AUDIT_LIST, AUDIT_STMT_COUNT };

/* SQL reads best laid out as SQL. */
/* clang-format off */
const struct pg_stmt pg_audit_repo_stmts[AUDIT_STMT_COUNT] = {
	[AUDIT_APPEND] = {"audit_append",
		"INSERT INTO admin_audit (at, operator, verb, args, ok, error) "
		"VALUES (" PG_SQL_TS("$1") ", $2, $3, $4, $5::boolean, $6) RETURNING id", 6},
	/* A missing cursor is an infinite one, so that one plan serves both pages. */
	[AUDIT_LIST] = {"audit_list",
		"SELECT id, " PG_SQL_US("at") ", operator, verb, args, ok, coalesce(error, '') "
		"FROM admin_audit WHERE id < coalesce(nullif($2::bigint, 0), 9223372036854775807) "
		"ORDER BY id DESC LIMIT $1::int", 2},
};
/* clang-format on */

const size_t pg_audit_repo_stmt_count = AUDIT_STMT_COUNT;

static const struct pg_stmt *stmt(int which)
{
	return &pg_audit_repo_stmts[which];
}

static enum hex_status pg_audit_repo_append(void *self, const struct audit_entry *e,
                                            int64_t *out_id)
{
	char at[24];
	snprintf(at, sizeof at, "%" PRId64, e->at_us);
	const char *params[] = {at,      e->operator_name,         e->verb,
	                        e->args, e->ok ? "true" : "false", e->ok ? NULL : e->error};
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(self, stmt(AUDIT_APPEND), params, &r);
	if (st == HEX_OK && (PQntuples(r) != 1 || !pg_result_int64(r, 0, 0, out_id)))
		st = HEX_INTERNAL;
	PQclear(r);
	return st;
}

static bool row_to_entry(const PGresult *r, int row, struct audit_entry *e)
{
	bool ok = pg_result_int64(r, row, 0, &e->id) && pg_result_int64(r, row, 1, &e->at_us) &&
	          pg_result_text(r, row, 2, e->operator_name, sizeof e->operator_name) &&
	          pg_result_text(r, row, 3, e->verb, sizeof e->verb) &&
	          pg_result_text(r, row, 4, e->args, sizeof e->args) &&
	          pg_result_bool(r, row, 5, &e->ok) &&
	          pg_result_text(r, row, 6, e->error, sizeof e->error);
	if (!ok)
		log_error("pg_audit_row_invalid",
		          "an admin_audit row does not fit struct audit_entry");
	return ok;
}

static enum hex_status pg_audit_repo_list(void *self, int limit, int64_t before_id,
                                          struct audit_page *out)
{
	out->count = 0;
	out->has_more = false;
	if (limit < 1 || limit > HEX_LIST_MAX || before_id < 0)
		return HEX_INVALID;
	char lim[24], before[24];
	snprintf(lim, sizeof lim, "%d", limit + 1); /* one more tells whether more follow */
	snprintf(before, sizeof before, "%" PRId64, before_id);
	const char *params[] = {lim, before};
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(self, stmt(AUDIT_LIST), params, &r);
	if (st != HEX_OK)
		goto out;
	int rows = PQntuples(r);
	for (int i = 0; i < rows && i < limit; i++) {
		if (!row_to_entry(r, i, &out->items[i])) {
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

static const struct audit_repo_ops pg_audit_repo_ops = {
    .append = pg_audit_repo_append,
    .list = pg_audit_repo_list,
};

struct audit_repo pg_audit_repo_port(struct pg_conn *c)
{
	pg_conn_register(c, pg_audit_repo_stmts, pg_audit_repo_stmt_count);
	return (struct audit_repo){.ops = &pg_audit_repo_ops, .self = c};
}
