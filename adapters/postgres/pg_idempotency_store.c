/* pg_idempotency_store.c: stored first answers to Idempotency-Keys. */
#include "adapters/postgres/pg_idempotency_store.h"

#include "core/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IDEM_FIND, IDEM_SAVE, IDEM_STMT_COUNT };

/* clang-format off */
static const struct pg_stmt stmts[IDEM_STMT_COUNT] = {
	[IDEM_FIND] = {"idem_find",
		"SELECT fingerprint, status, body FROM idempotency_keys "
		"WHERE user_id = $1::uuid AND route = $2 AND key = $3 "
		"AND created_at > now() - interval '24 hours'", 3},
	/* A row older than 24 h is replaced; a younger one is kept: the first answer wins. */
	[IDEM_SAVE] = {"idem_save",
		"INSERT INTO idempotency_keys (user_id, route, key, fingerprint, status, body) "
		"VALUES ($1::uuid, $2, $3, $4, $5::int, $6) "
		"ON CONFLICT (user_id, route, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, "
		"status = EXCLUDED.status, body = EXCLUDED.body, created_at = now() "
		"WHERE idempotency_keys.created_at <= now() - interval '24 hours'", 6},
};
/* clang-format on */

static enum hex_status idem_find(void *self, const char *user_id, const char *route,
                                 const char *key, struct idempotent_answer *out)
{
	const char *params[] = {user_id, route, key};
	PGresult *r = NULL;
	enum hex_status st = pg_conn_query(self, &stmts[IDEM_FIND], params, &r);
	if (st == HEX_OK && PQntuples(r) == 0)
		st = HEX_NOT_FOUND;
	if (st == HEX_OK) {
		hex_strlcpy(out->fingerprint, PQgetvalue(r, 0, 0), sizeof out->fingerprint);
		out->status = atoi(PQgetvalue(r, 0, 1));
		out->body = xstrdup(PQgetvalue(r, 0, 2));
	}
	PQclear(r);
	return st;
}

static enum hex_status idem_save(void *self, const char *user_id, const char *route,
                                 const char *key, const char *fingerprint, int status,
                                 const char *body)
{
	char code[16];
	snprintf(code, sizeof code, "%d", status);
	const char *params[] = {user_id, route, key, fingerprint, code, body};
	return pg_conn_query(self, &stmts[IDEM_SAVE], params, NULL);
}

static const struct idempotency_store_ops ops = {.find = idem_find, .save = idem_save};

struct idempotency_store pg_idempotency_store_port(struct pg_conn *c)
{
	pg_conn_register(c, stmts, IDEM_STMT_COUNT);
	return (struct idempotency_store){&ops, c};
}
