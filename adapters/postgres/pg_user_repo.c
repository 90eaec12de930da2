/* pg_user_repo.c: users in PostgreSQL, through prepared statements only. */
#include "adapters/postgres/pg_user_repo.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adapters/postgres/pg_result.h"
#include "adapters/postgres/pg_sql.h"
#include "core/logger.h"

/* The column order row_to_user() reads. */
/* clang-format off */
#define USER_COLUMNS \
	"id, email, membership, role, token_version, " \
	PG_SQL_US("created_at") ", " PG_SQL_US("updated_at")
/* clang-format on */

enum {
	USER_INSERT,
	USER_GET,
	USER_GET_BY_EMAIL,
	USER_GET_HASH,
	USER_UPDATE,
	USER_DELETE,
	USER_LIST_FIRST,
	USER_LIST_AFTER,
	USER_LIST_BY_EMAIL,
	USER_BUMP_VERSION,
	USER_REVOKE_TOKENS,
	USER_LIST_DESC,
	USER_SEARCH_ASC,
	USER_SEARCH_DESC,
	USER_STMT_COUNT
};

/*
 * The list variants share one parameter layout ($1 membership or NULL, $2 limit, $3 and
 * $4 the cursor, $5 the email, or the LIKE pattern of a search) and each takes the prefix
 * it needs. They are separate statements so that each cached plan can use its index: one
 * plan with "$n IS NULL OR" for every filter would fall back to scanning the table. The
 * newest-first walks (and searches, which no btree index can serve anyway) turn a missing
 * cursor into an infinite one instead, so that one plan serves both pages.
 */
/* SQL reads best laid out as SQL. */
/* clang-format off */
const struct pg_stmt pg_user_repo_stmts[USER_STMT_COUNT] = {
	[USER_INSERT] = {"user_insert",
		"INSERT INTO users (id, email, password_hash, membership, role, token_version, "
		"created_at, updated_at) "
		"VALUES ($1::uuid, $2, $3, $4, $5, $6::bigint, "
		PG_SQL_TS("$7") ", " PG_SQL_TS("$8") ")", 8},
	[USER_GET] = {"user_get",
		"SELECT " USER_COLUMNS " FROM users WHERE id = $1::uuid", 1},
	[USER_GET_BY_EMAIL] = {"user_get_by_email",
		"SELECT " USER_COLUMNS ", password_hash FROM users "
		"WHERE lower(email) = lower($1)", 1},
	[USER_GET_HASH] = {"user_get_hash",
		"SELECT password_hash FROM users WHERE id = $1::uuid", 1},
	/* Not token_version: only revoke_sessions changes it, in place, so that no stale
	 * copy of the user can undo a revocation. */
	[USER_UPDATE] = {"user_update",
		"UPDATE users SET email = $2, membership = $3, role = $4, "
		"updated_at = " PG_SQL_TS("$5") ", "
		"password_hash = coalesce($6, password_hash), "
		"token_version = token_version + $7::int "
		"WHERE id = $1::uuid RETURNING " USER_COLUMNS, 7},
	[USER_DELETE] = {"user_delete",
		"DELETE FROM users WHERE id = $1::uuid", 1},
	[USER_LIST_FIRST] = {"user_list_first",
		"SELECT " USER_COLUMNS " FROM users "
		"WHERE ($1::text IS NULL OR membership = $1) "
		"ORDER BY created_at, id LIMIT $2::int", 2},
	[USER_LIST_AFTER] = {"user_list_after",
		"SELECT " USER_COLUMNS " FROM users "
		"WHERE ($1::text IS NULL OR membership = $1) "
		"AND (created_at, id) > (" PG_SQL_TS("$3") ", $4::uuid) "
		"ORDER BY created_at, id LIMIT $2::int", 4},
	[USER_LIST_BY_EMAIL] = {"user_list_by_email",
		"SELECT " USER_COLUMNS " FROM users "
		"WHERE lower(email) = lower($5::text) "
		"AND ($1::text IS NULL OR membership = $1) "
		"AND ($3::bigint IS NULL OR (created_at, id) > (" PG_SQL_TS("$3") ", $4::uuid)) "
		"ORDER BY created_at, id LIMIT $2::int", 5},
	/* revoke_sessions locks the user row first, as rotation does: no deadlock. */
	[USER_BUMP_VERSION] = {"user_bump_version",
		"UPDATE users SET token_version = token_version + 1, "
		"updated_at = " PG_SQL_TS("$2") " "
		"WHERE id = $1::uuid RETURNING " USER_COLUMNS, 2},
	[USER_REVOKE_TOKENS] = {"user_revoke_tokens",
		"UPDATE refresh_tokens SET revoked_at = " PG_SQL_TS("$2") " "
		"WHERE user_id = $1::uuid AND revoked_at IS NULL", 2},
	[USER_LIST_DESC] = {"user_list_desc",
		"SELECT " USER_COLUMNS " FROM users "
		"WHERE ($1::text IS NULL OR membership = $1) "
		"AND (created_at, id) < (coalesce(" PG_SQL_TS("$3") ", 'infinity'), "
		"coalesce($4::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff')) "
		"ORDER BY created_at DESC, id DESC LIMIT $2::int", 4},
	/* $5 is a LIKE pattern whose own '%', '_' and '\' are escaped with '\'. */
	[USER_SEARCH_ASC] = {"user_search_asc",
		"SELECT " USER_COLUMNS " FROM users "
		"WHERE email ILIKE $5::text ESCAPE '\\' "
		"AND ($1::text IS NULL OR membership = $1) "
		"AND (created_at, id) > (coalesce(" PG_SQL_TS("$3") ", '-infinity'), "
		"coalesce($4::uuid, '00000000-0000-0000-0000-000000000000')) "
		"ORDER BY created_at, id LIMIT $2::int", 5},
	[USER_SEARCH_DESC] = {"user_search_desc",
		"SELECT " USER_COLUMNS " FROM users "
		"WHERE email ILIKE $5::text ESCAPE '\\' "
		"AND ($1::text IS NULL OR membership = $1) "
		"AND (created_at, id) < (coalesce(" PG_SQL_TS("$3") ", 'infinity'), "
		"coalesce($4::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff')) "
		"ORDER BY created_at DESC, id DESC LIMIT $2::int", 5},
};
/* clang-format on */

const size_t pg_user_repo_stmt_count = USER_STMT_COUNT;

static const struct pg_stmt *stmt(int which)
{
	return &pg_user_repo_stmts[which];
}

static bool row_to_user(const PGresult *r, int row, struct user *u)
{
	char membership[16], role[16];
	bool ok = pg_result_text(r, row, 0, u->id, sizeof u->id) &&
	          pg_result_text(r, row, 1, u->email, sizeof u->email) &&
	          pg_result_text(r, row, 2, membership, sizeof membership) &&
	          membership_parse(membership, &u->membership) &&
	          pg_result_text(r, row, 3, role, sizeof role) && user_role_parse(role, &u->role) &&
	          pg_result_int64(r, row, 4, &u->token_version) &&
	          pg_result_int64(r, row, 5, &u->created_at_us) &&
	          pg_result_int64(r, row, 6, &u->updated_at_us);
	if (!ok)
		log_error("pg_user_row_invalid", "a users row does not fit struct user");
	return ok;
}

/* Reads the single row of a lookup: HEX_NOT_FOUND if none. */
static enum hex_status one_user(const PGresult *r, struct user *out)
{
	if (PQntuples(r) == 0)
		return HEX_NOT_FOUND;
	return row_to_user(r, 0, out) ? HEX_OK : HEX_INTERNAL;
}

static enum hex_status copy_hash(const PGresult *r, int col, char *hash, size_t hash_len)
{
	if (hash == NULL)
		return HEX_OK;
	if (hash_len == 0 || !pg_result_text(r, 0, col, hash, hash_len)) {
		log_error("pg_user_hash_too_long",
		          "a stored password hash does not fit its buffer");
		return HEX_INTERNAL;
	}
	return HEX_OK;
}

static enum hex_status pg_user_repo_insert(void *self, const struct user *u,
                                           const char *password_hash)
{
	if (!user_id_valid(u->id))
		return HEX_INVALID;
	char version[24], created[24], updated[24];
	snprintf(version, sizeof version, "%" PRId64, u->token_version);
	snprintf(created, sizeof created, "%" PRId64, u->created_at_us);
	snprintf(updated, sizeof updated, "%" PRId64, u->updated_at_us);
	const char *params[] = {u->id,
	                        u->email,
	                        password_hash,
	                        membership_name(u->membership),
	                        user_role_name(u->role),
	                        version,
	                        created,
	                        updated};
	return pg_conn_query(self, stmt(USER_INSERT), params, NULL);
}

static enum hex_status pg_user_repo_get(void *self, const char *id, struct user *out)
{
	if (!user_id_valid(id))
		return HEX_NOT_FOUND;
	PGresult *r = NULL;
	const char *params[] = {id};
	enum hex_status st = pg_conn_query(self, stmt(USER_GET), params, &r);
	if (st == HEX_OK)
		st = one_user(r, out);
	PQclear(r);
	return st;
}

static enum hex_status pg_user_repo_get_by_email(void *self, const char *email, struct user *out,
                                                 char *hash, size_t hash_len)
{
	PGresult *r = NULL;
	const char *params[] = {email};
	enum hex_status st = pg_conn_query(self, stmt(USER_GET_BY_EMAIL), params, &r);
	if (st == HEX_OK)
		st = one_user(r, out);
	if (st == HEX_OK)
		st = copy_hash(r, 7, hash, hash_len);
	PQclear(r);
	return st;
}

static enum hex_status pg_user_repo_get_hash(void *self, const char *id, char *hash,
                                             size_t hash_len)
{
	if (!user_id_valid(id))
		return HEX_NOT_FOUND;
	PGresult *r = NULL;
	const char *params[] = {id};
	enum hex_status st = pg_conn_query(self, stmt(USER_GET_HASH), params, &r);
	if (st == HEX_OK)
		st = PQntuples(r) == 0 ? HEX_NOT_FOUND : copy_hash(r, 0, hash, hash_len);
	PQclear(r);
	return st;
}

static enum hex_status pg_user_repo_update(void *self, const struct user *u,
                                           const char *password_hash, bool end_sessions,
                                           struct user *out)
{
	if (!user_id_valid(u->id))
		return HEX_NOT_FOUND;
	char updated[24];
	snprintf(updated, sizeof updated, "%" PRId64, u->updated_at_us);
	const char *params[] = {
	    u->id,   u->email,      membership_name(u->membership), user_role_name(u->role),
	    updated, password_hash, end_sessions ? "1" : "0"};
	const char *revoke_params[] = {u->id, updated};
	PGresult *r = NULL;
	enum hex_status st = end_sessions ? pg_conn_begin(self) : HEX_OK;
	if (st != HEX_OK)
		return st;
	st = pg_conn_query(self, stmt(USER_UPDATE), params, &r);
	if (st == HEX_OK)
		st = one_user(r, out);
	if (st == HEX_OK && end_sessions)
		st = pg_conn_query(self, stmt(USER_REVOKE_TOKENS), revoke_params, NULL);
	if (end_sessions) {
		if (st == HEX_OK)
			st = pg_conn_commit(self);
		else
			pg_conn_rollback(self);
	}
	PQclear(r);
	return st;
}

static enum hex_status pg_user_repo_remove(void *self, const char *id)
{
	if (!user_id_valid(id))
		return HEX_NOT_FOUND;
	PGresult *r = NULL;
	const char *params[] = {id};
	/* One statement: the refresh tokens go with the user through ON DELETE CASCADE. */
	enum hex_status st = pg_conn_query(self, stmt(USER_DELETE), params, &r);
	if (st == HEX_OK && pg_result_affected(r) == 0)
		st = HEX_NOT_FOUND;
	PQclear(r);
	return st;
}

/* "%text%" for ILIKE ... ESCAPE '\', with the text's own wildcards taken literally. */
static void like_pattern(const char *text, char *out, size_t n)
{
	size_t j = 0;
	out[j++] = '%';
	for (size_t i = 0; text[i] != '\0' && j + 3 < n; i++) {
		if (text[i] == '%' || text[i] == '_' || text[i] == '\\')
			out[j++] = '\\';
		out[j++] = text[i];
	}
	out[j++] = '%';
	out[j] = '\0';
}

/* The statement that serves f (checked). */
static int list_stmt(const struct user_filter *f)
{
	if (f->email != NULL)
		return USER_LIST_BY_EMAIL; /* at most one row: the order does not matter */
	if (f->email_contains != NULL)
		return f->newest_first ? USER_SEARCH_DESC : USER_SEARCH_ASC;
	if (f->newest_first)
		return USER_LIST_DESC;
	return f->after != NULL ? USER_LIST_AFTER : USER_LIST_FIRST;
}

static enum hex_status pg_user_repo_list(void *self, const struct user_filter *f,
                                         struct user_page *out)
{
	out->count = 0;
	out->has_more = false;
	if (f->limit < 1 || f->limit > HEX_LIST_MAX)
		return HEX_INVALID;
	if (f->membership != -1 && f->membership != MEMBERSHIP_FREE &&
	    f->membership != MEMBERSHIP_MEMBER)
		return HEX_INVALID;
	if (f->after != NULL && !user_id_valid(f->after->id))
		return HEX_INVALID;
	if (f->email_contains != NULL && (f->email != NULL || f->email_contains[0] == '\0' ||
	                                  strlen(f->email_contains) > HEX_EMAIL_MAX))
		return HEX_INVALID;
	char pattern[2 * HEX_EMAIL_MAX + 3];
	if (f->email_contains != NULL)
		like_pattern(f->email_contains, pattern, sizeof pattern);

	char limit[16], after_ts[24];
	/* One more row than asked tells whether another page follows. */
	snprintf(limit, sizeof limit, "%d", f->limit + 1);
	if (f->after != NULL)
		snprintf(after_ts, sizeof after_ts, "%" PRId64, f->after->created_at_us);
	const char *params[] = {
	    f->membership == -1 ? NULL : membership_name((enum membership)f->membership),
	    limit,
	    f->after != NULL ? after_ts : NULL,
	    f->after != NULL ? f->after->id : NULL,
	    f->email_contains != NULL ? pattern : f->email,
	};
	int which = list_stmt(f);

	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(self, stmt(which), params, &r);
	if (st != HEX_OK)
		goto out;
	int rows = PQntuples(r);
	out->has_more = rows > f->limit;
	for (int i = 0; i < rows && i < f->limit; i++) {
		if (!row_to_user(r, i, &out->items[i])) {
			st = HEX_INTERNAL;
			out->count = 0;
			out->has_more = false;
			goto out;
		}
		out->count = i + 1;
	}
out:
	PQclear(r);
	return st;
}

static enum hex_status pg_user_repo_revoke_sessions(void *self, const char *id, int64_t now_us,
                                                    struct user *out)
{
	if (!user_id_valid(id))
		return HEX_NOT_FOUND;
	char now[24];
	snprintf(now, sizeof now, "%" PRId64, now_us);
	const char *params[] = {id, now};
	PGresult *r = NULL;
	enum hex_status st = pg_conn_begin(self);
	if (st != HEX_OK)
		return st;
	st = pg_conn_query(self, stmt(USER_BUMP_VERSION), params, &r);
	if (st == HEX_OK)
		st = one_user(r, out);
	if (st == HEX_OK)
		st = pg_conn_query(self, stmt(USER_REVOKE_TOKENS), params, NULL);
	if (st == HEX_OK)
		st = pg_conn_commit(self);
	else
		pg_conn_rollback(self);
	PQclear(r);
	return st;
}

static const struct user_repo_ops pg_user_repo_ops = {
    .insert = pg_user_repo_insert,
    .get = pg_user_repo_get,
    .get_by_email = pg_user_repo_get_by_email,
    .get_hash = pg_user_repo_get_hash,
    .update = pg_user_repo_update,
    .remove = pg_user_repo_remove,
    .list = pg_user_repo_list,
    .revoke_sessions = pg_user_repo_revoke_sessions,
};

struct user_repo pg_user_repo_port(struct pg_conn *c)
{
	pg_conn_register(c, pg_user_repo_stmts, pg_user_repo_stmt_count);
	return (struct user_repo){.ops = &pg_user_repo_ops, .self = c};
}
