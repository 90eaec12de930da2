/* pg_refresh_repo.c: refresh token records, rotation and family revocation in PostgreSQL. */
#include "adapters/postgres/pg_refresh_repo.h"

#include <inttypes.h>
#include <stdio.h>

#include "adapters/postgres/pg_result.h"
#include "adapters/postgres/pg_sql.h"
#include "core/logger.h"

enum {
	REFRESH_INSERT,
	REFRESH_LOCK_OWNER,
	REFRESH_LOCK,
	REFRESH_MARK_USED,
	REFRESH_LOCK_FAMILY_OWNER,
	REFRESH_REVOKE_FAMILY,
	REFRESH_STMT_COUNT
};

/*
 * Lock order, shared with user revoke_sessions and delete: the users row first, then the
 * refresh_tokens rows. Rotation holds the user FOR SHARE, so rotations of different
 * tokens of one user run side by side, while a logout (which updates the user row) or a
 * family revocation waits for them and then, in a new statement, sees the token they
 * inserted: a rotation racing a logout cannot leave a live token behind.
 */
/* SQL reads best laid out as SQL. */
/* clang-format off */
const struct pg_stmt pg_refresh_repo_stmts[REFRESH_STMT_COUNT] = {
	[REFRESH_INSERT] = {"refresh_insert",
		"INSERT INTO refresh_tokens (jti, user_id, family_id, expires_at) "
		"VALUES ($1::uuid, $2::uuid, $3::uuid, " PG_SQL_TS("$4") ")", 4},
	[REFRESH_LOCK_OWNER] = {"refresh_lock_owner",
		"SELECT id FROM users "
		"WHERE id = (SELECT user_id FROM refresh_tokens WHERE jti = $1::uuid) "
		"FOR SHARE", 1},
	/* FOR UPDATE: a second rotation of the same token waits here, then sees it used. */
	[REFRESH_LOCK] = {"refresh_lock",
		"SELECT jti, user_id, family_id, " PG_SQL_US("expires_at") ", "
		"used_at IS NOT NULL OR revoked_at IS NOT NULL "
		"FROM refresh_tokens WHERE jti = $1::uuid FOR UPDATE", 1},
	[REFRESH_MARK_USED] = {"refresh_mark_used",
		"UPDATE refresh_tokens SET used_at = " PG_SQL_TS("$2") " "
		"WHERE jti = $1::uuid", 2},
	[REFRESH_LOCK_FAMILY_OWNER] = {"refresh_lock_family_owner",
		"SELECT id FROM users "
		"WHERE id IN (SELECT user_id FROM refresh_tokens WHERE family_id = $1::uuid) "
		"ORDER BY id FOR NO KEY UPDATE", 1},
	[REFRESH_REVOKE_FAMILY] = {"refresh_revoke_family",
		"UPDATE refresh_tokens SET revoked_at = now() "
		"WHERE family_id = $1::uuid AND revoked_at IS NULL", 1},
};
/* clang-format on */

const size_t pg_refresh_repo_stmt_count = REFRESH_STMT_COUNT;

static const struct pg_stmt *stmt(int which)
{
	return &pg_refresh_repo_stmts[which];
}

static enum hex_status pg_refresh_repo_insert(void *self, const struct refresh_record *r)
{
	if (!user_id_valid(r->jti) || !user_id_valid(r->user_id) || !user_id_valid(r->family_id))
		return HEX_INVALID;
	char expires[24];
	snprintf(expires, sizeof expires, "%" PRId64, r->expires_at_us);
	const char *params[] = {r->jti, r->user_id, r->family_id, expires};
	return pg_conn_query(self, stmt(REFRESH_INSERT), params, NULL);
}

/* Reads the locked token; *dead is true if it was used or revoked. */
static enum hex_status read_locked(const PGresult *res, struct refresh_record *out, bool *dead)
{
	if (PQntuples(res) == 0)
		return HEX_NOT_FOUND;
	if (!pg_result_text(res, 0, 0, out->jti, sizeof out->jti) ||
	    !pg_result_text(res, 0, 1, out->user_id, sizeof out->user_id) ||
	    !pg_result_text(res, 0, 2, out->family_id, sizeof out->family_id) ||
	    !pg_result_int64(res, 0, 3, &out->expires_at_us) || !pg_result_bool(res, 0, 4, dead)) {
		log_error("pg_refresh_row_invalid", "a refresh_tokens row does not fit its record");
		return HEX_INTERNAL;
	}
	return HEX_OK;
}

static enum hex_status pg_refresh_repo_rotate(void *self, const char *old_jti, int64_t now_us,
                                              struct refresh_record *next,
                                              struct refresh_record *out)
{
	if (!user_id_valid(old_jti))
		return HEX_NOT_FOUND;
	if (!user_id_valid(next->jti))
		return HEX_INVALID;
	char now[24];
	snprintf(now, sizeof now, "%" PRId64, now_us);
	const char *params[] = {old_jti, now};
	PGresult *owner = NULL, *res = NULL;
	bool dead = false;

	enum hex_status st = pg_conn_begin(self);
	if (st != HEX_OK)
		return st;
	st = pg_conn_query(self, stmt(REFRESH_LOCK_OWNER), params, &owner);
	if (st == HEX_OK && PQntuples(owner) == 0)
		st = HEX_NOT_FOUND;
	if (st == HEX_OK)
		st = pg_conn_query(self, stmt(REFRESH_LOCK), params, &res);
	if (st == HEX_OK)
		st = read_locked(res, out, &dead);
	if (st != HEX_OK)
		goto out;
	if (dead) {
		st = HEX_CONFLICT;
		goto out;
	}
	if (out->expires_at_us <= now_us) {
		st = HEX_NOT_FOUND;
		goto out;
	}
	hex_strlcpy(next->user_id, out->user_id, sizeof next->user_id);
	hex_strlcpy(next->family_id, out->family_id, sizeof next->family_id);
	st = pg_conn_query(self, stmt(REFRESH_MARK_USED), params, NULL);
	if (st == HEX_OK)
		st = pg_refresh_repo_insert(self, next);
	if (st == HEX_OK)
		st = pg_conn_commit(self);
out:
	if (st != HEX_OK)
		pg_conn_rollback(self);
	PQclear(owner);
	PQclear(res);
	return st;
}

static enum hex_status pg_refresh_repo_revoke_family(void *self, const char *family_id)
{
	if (!user_id_valid(family_id))
		return HEX_NOT_FOUND;
	const char *params[] = {family_id};
	enum hex_status st = pg_conn_begin(self);
	if (st != HEX_OK)
		return st;
	st = pg_conn_query(self, stmt(REFRESH_LOCK_FAMILY_OWNER), params, NULL);
	if (st == HEX_OK)
		st = pg_conn_query(self, stmt(REFRESH_REVOKE_FAMILY), params, NULL);
	if (st == HEX_OK)
		st = pg_conn_commit(self);
	else
		pg_conn_rollback(self);
	return st;
}

static const struct refresh_repo_ops pg_refresh_repo_ops = {
    .insert = pg_refresh_repo_insert,
    .rotate = pg_refresh_repo_rotate,
    .revoke_family = pg_refresh_repo_revoke_family,
};

struct refresh_repo pg_refresh_repo_port(struct pg_conn *c)
{
	pg_conn_register(c, pg_refresh_repo_stmts, pg_refresh_repo_stmt_count);
	return (struct refresh_repo){.ops = &pg_refresh_repo_ops, .self = c};
}
