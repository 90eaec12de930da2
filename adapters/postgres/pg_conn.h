/*
 * pg_conn: one PostgreSQL session, owned by one thread (never shared between threads).
 *
 * Statements are declared once in static tables of {name, sql, nparams} that each
 * repository exports, registered on the connection, and prepared on it the first time
 * they run (again after a reconnect). A session lost while idle is reset on the next call;
 * a session lost inside a transaction fails every call until the transaction ends, so
 * that the rest of a transaction can never run in autocommit on a fresh session.
 * While the server stays down, calls answer HEX_UNAVAILABLE at once for a short backoff.
 */
#ifndef HEX_PG_CONN_H
#define HEX_PG_CONN_H

#include <libpq-fe.h>

#include "core/hex.h"

struct pg_conn;

/* A prepared statement; tables of these are static and outlive every connection. */
struct pg_stmt {
	const char *name; /* unique across all tables: the server-side statement name */
	const char *sql;  /* parameters only, never text built from data */
	int nparams;
};

struct pg_conn_options {
	int connect_timeout_s;    /* used when conninfo has none; default 5 */
	int statement_timeout_ms; /* per session, 0 = none; default 5000 */
	int reconnect_backoff_ms; /* no new attempt this long after a failed one; default 1000 */
};

void pg_conn_options_defaults(struct pg_conn_options *o);

/*
 * Connects. conninfo is a keyword string or a postgresql:// URI; its own settings win over
 * ours (application_name defaults to "hexd", connect_timeout to o->connect_timeout_s).
 * On HEX_OK *out gets the connection, which the caller frees with pg_conn_free(); else
 * *out is NULL and err says why: HEX_INVALID (field "database_url") for a malformed
 * conninfo, HEX_UNAVAILABLE if the server cannot be reached, refuses us or is too slow.
 */
enum hex_status pg_conn_connect(const char *conninfo, const struct pg_conn_options *o,
                                struct pg_conn **out, struct hex_err *err) HEX_MUST_CHECK;
/* The same returning the connection, NULL on failure (err as above). */
struct pg_conn *pg_conn_open_with(const char *conninfo, const struct pg_conn_options *o,
                                  struct hex_err *err);
/* The same with the default options. */
struct pg_conn *pg_conn_open(const char *conninfo, struct hex_err *err);
void pg_conn_free(struct pg_conn *c); /* NULL ok */

/* HEX_OK if the server answers a trivial query now (reconnecting if needed). */
enum hex_status pg_conn_ping(struct pg_conn *c) HEX_MUST_CHECK;

/* Makes the n statements of table usable on c; registering a table twice is harmless. */
void pg_conn_register(struct pg_conn *c, const struct pg_stmt *table, size_t n);

/* Prepares every registered statement now: fails fast on a statement the schema rejects. */
enum hex_status pg_conn_prepare_all(struct pg_conn *c, struct hex_err *err) HEX_MUST_CHECK;

/*
 * Runs registered statement st with st->nparams text parameters (NULL entries are SQL
 * NULL). On HEX_OK, *out (if out is not NULL) gets the result, which the caller frees with
 * PQclear(). Errors: HEX_CONFLICT for a unique violation, HEX_NOT_FOUND for a foreign key
 * violation, HEX_UNAVAILABLE when the server is unreachable, overloaded or too slow
 * (statement_timeout), HEX_INTERNAL otherwise (logged; server text never reaches clients).
 */
enum hex_status pg_conn_query(struct pg_conn *c, const struct pg_stmt *st,
                              const char *const *params, PGresult **out) HEX_MUST_CHECK;

/*
 * Runs fixed SQL text from the binary (one or more statements, no parameters, no result
 * rows kept): transaction control, settings, migrations. Never text built from data.
 */
enum hex_status pg_conn_script(struct pg_conn *c, const char *sql) HEX_MUST_CHECK;

/*
 * Transactions nest, so that a repository that runs its own transaction can also run
 * inside a caller's (an event consumer's, which records the event in the same commit).
 * Every begin that succeeded is ended by exactly one commit or rollback. Inside an open
 * transaction, begin makes a savepoint: its commit releases it (the work now belongs to
 * the enclosing level), its rollback undoes only its own work; only the outermost level
 * really commits or rolls back, so an outer rollback drops inner work that "committed".
 * Deferred constraints are checked at the outermost commit only.
 *
 * A failed begin opens no level; a failed commit ends its level (an inner one rolled
 * back). Rollback with no level open does nothing, so "rollback after a failed begin or
 * commit" is harmless at the outermost level; nested, it ends the enclosing level early,
 * which only rolls back more: an inner begin or commit fails only when the session is
 * lost or the transaction already failed. A session lost inside any level fails every
 * call until all levels have been ended; the next call then runs on a fresh session.
 */
enum hex_status pg_conn_begin(struct pg_conn *c) HEX_MUST_CHECK;
enum hex_status pg_conn_commit(struct pg_conn *c) HEX_MUST_CHECK;
void pg_conn_rollback(struct pg_conn *c);

/* How many transaction levels are open: 0 outside a transaction, 1 in a plain one. */
int pg_conn_depth(const struct pg_conn *c);

/*
 * Whether the last failed statement was a deadlock or a serialization failure: the
 * server rolled the transaction back, and running all of it again may succeed.
 */
bool pg_conn_last_retryable(const struct pg_conn *c);

/* The server's error text of the last failed call ("" if none), for operator output. */
const char *pg_conn_last_error(const struct pg_conn *c);

/* The libpq handle, for adapters that need more (owned by c; may change after a reset). */
PGconn *pg_conn_raw(struct pg_conn *c);

#endif
