/* pg_conn.c: one PostgreSQL session with its prepared statements, reconnects and error map. */
#include "adapters/postgres/pg_conn.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/logger.h"
#include "core/metrics.h"
#include "core/xmalloc.h"

/* A registered statement table and which of its statements this session has prepared. */
struct pg_table {
	const struct pg_stmt *stmts;
	size_t n;
	bool *prepared;
};

struct pg_conn {
	PGconn *conn;
	struct pg_conn_options opts;
	struct pg_table *tables;
	size_t ntables;
	int depth; /* open transaction levels: 0 outside, 1 = BEGIN, more = savepoints */
	int64_t next_attempt_us; /* monotonic; no reconnect attempt before it */
	int64_t last_down_log_s; /* for logger_every() */
	char last_error[256];
	bool last_retryable; /* the last failure was a deadlock or serialization failure */
};

/*
 * How a server error reaches the core. Matched by prefix, first match wins, so a whole
 * SQLSTATE class can be listed by its two characters.
 */
static const struct {
	const char *sqlstate;
	enum hex_status status;
	enum logger_level level;
	bool retryable; /* the server rolled the transaction back: running it again may work */
} sqlstate_map[] = {
    {"23505", HEX_CONFLICT, LOGGER_DEBUG, false},   /* unique_violation */
    {"23503", HEX_NOT_FOUND, LOGGER_DEBUG, false},  /* foreign_key_violation: the owner is gone */
    {"40001", HEX_UNAVAILABLE, LOGGER_WARN, true},  /* serialization_failure */
    {"40P01", HEX_UNAVAILABLE, LOGGER_WARN, true},  /* deadlock_detected */
    {"55P03", HEX_UNAVAILABLE, LOGGER_WARN, false}, /* lock_not_available */
    {"57014", HEX_UNAVAILABLE, LOGGER_WARN, false}, /* query_canceled: statement_timeout */
    {"57P", HEX_UNAVAILABLE, LOGGER_WARN, false},   /* shutdown, crash, cannot connect now */
    {"08", HEX_UNAVAILABLE, LOGGER_WARN, false},    /* connection_exception */
    {"53", HEX_UNAVAILABLE, LOGGER_WARN, false},    /* insufficient_resources (too many conns) */
};

/* Server messages below WARNING are chatter (CREATE ... IF NOT EXISTS skipping, ...). */
static const char *const quiet_severities[] = {"DEBUG", "LOG", "INFO", "NOTICE"};

static int64_t monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Copies libpq's message (often several lines) into dst as one line. */
static void one_line(char *dst, size_t n, const char *msg)
{
	hex_strlcpy(dst, msg != NULL ? msg : "", n);
	for (char *p = dst; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	size_t len = strlen(dst);
	while (len > 0 && dst[len - 1] == ' ')
		dst[--len] = '\0';
}

static void pg_conn_notice(void *arg, const PGresult *r)
{
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	enum logger_level lvl = LOGGER_WARN;
	for (size_t i = 0; sev != NULL && i < sizeof quiet_severities / sizeof *quiet_severities;
	     i++)
		if (strcmp(sev, quiet_severities[i]) == 0)
			lvl = LOGGER_DEBUG;
	logger_write(lvl, "pg_notice", "%s: %s", sev != NULL ? sev : "NOTICE",
	             msg != NULL ? msg : "");
}

void pg_conn_options_defaults(struct pg_conn_options *o)
{
	o->connect_timeout_s = 5;
	o->statement_timeout_ms = 5000;
	o->reconnect_backoff_ms = 1000;
}

/* Per-session settings, applied after every (re)connect. */
static bool session_setup(struct pg_conn *c)
{
	char sql[64];
	snprintf(sql, sizeof sql, "SET statement_timeout = %d", c->opts.statement_timeout_ms);
	PGresult *r = PQexec(c->conn, sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		one_line(c->last_error, sizeof c->last_error, PQerrorMessage(c->conn));
	PQclear(r);
	return ok;
}

struct pg_conn *pg_conn_open(const char *conninfo, struct hex_err *err)
{
	struct pg_conn_options o;
	pg_conn_options_defaults(&o);
	return pg_conn_open_with(conninfo, &o, err);
}

struct pg_conn *pg_conn_open_with(const char *conninfo, const struct pg_conn_options *o,
                                  struct hex_err *err)
{
	struct pg_conn *c = NULL;
	if (pg_conn_connect(conninfo, o, &c, err) != HEX_OK)
		return NULL;
	return c;
}

enum hex_status pg_conn_connect(const char *conninfo, const struct pg_conn_options *o,
                                struct pg_conn **out, struct hex_err *err)
{
	enum hex_status st = HEX_OK;
	struct pg_conn *c = NULL;
	char *perr = NULL;
	PQconninfoOption *parsed = PQconninfoParse(conninfo != NULL ? conninfo : "", &perr);
	if (parsed == NULL) {
		char line[160];
		one_line(line, sizeof line, perr != NULL ? perr : "out of memory");
		st = hex_fail(err, HEX_INVALID, "database_url", "invalid database_url: %s", line);
		goto out;
	}

	c = xcalloc(1, sizeof *c);
	c->opts = *o;
	char timeout[16];
	snprintf(timeout, sizeof timeout, "%d", o->connect_timeout_s);
	/* Later keywords win: the expanded conninfo ("dbname") overrides our defaults. */
	const char *const keys[] = {"fallback_application_name", "connect_timeout", "dbname", NULL};
	const char *const vals[] = {"hexd", timeout, conninfo != NULL ? conninfo : "", NULL};
	c->conn = PQconnectdbParams(keys, vals, 1);
	if (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK) {
		one_line(c->last_error, sizeof c->last_error,
		         c->conn != NULL ? PQerrorMessage(c->conn) : "out of memory");
		st = hex_fail(err, HEX_UNAVAILABLE, NULL, "cannot connect to PostgreSQL: %s",
		              c->last_error);
		log_warn("pg_connect_failed", "cannot connect to PostgreSQL: %s", c->last_error);
		goto out;
	}
	PQsetNoticeReceiver(c->conn, pg_conn_notice, NULL);
	if (!session_setup(c))
		st = hex_fail(err, HEX_UNAVAILABLE, NULL, "cannot set up the session: %s",
		              c->last_error);
out:
	if (st != HEX_OK) {
		pg_conn_free(c);
		c = NULL;
	}
	*out = c;
	PQconninfoFree(parsed);
	PQfreemem(perr);
	return st;
}

void pg_conn_free(struct pg_conn *c)
{
	if (c == NULL)
		return;
	PQfinish(c->conn);
	for (size_t i = 0; i < c->ntables; i++)
		free(c->tables[i].prepared);
	free(c->tables);
	free(c);
}

void pg_conn_register(struct pg_conn *c, const struct pg_stmt *table, size_t n)
{
	for (size_t i = 0; i < c->ntables; i++)
		if (c->tables[i].stmts == table)
			return;
	/* Names share one server-side namespace: a clash would run the wrong SQL. */
	for (size_t i = 0; i < c->ntables; i++)
		for (size_t j = 0; j < c->tables[i].n; j++)
			for (size_t k = 0; k < n; k++)
				if (strcmp(c->tables[i].stmts[j].name, table[k].name) == 0)
					log_error("pg_statement_name_clash",
					          "statement name %s is registered twice",
					          table[k].name);
	c->tables = xrealloc(c->tables, (c->ntables + 1) * sizeof *c->tables);
	c->tables[c->ntables++] = (struct pg_table){
	    .stmts = table, .n = n, .prepared = xcalloc(n > 0 ? n : 1, sizeof(bool))};
}

static bool find_stmt(struct pg_conn *c, const struct pg_stmt *st, bool **prepared)
{
	uintptr_t p = (uintptr_t)st;
	for (size_t i = 0; i < c->ntables; i++) {
		uintptr_t lo = (uintptr_t)c->tables[i].stmts;
		if (p >= lo && p < lo + c->tables[i].n * sizeof *st) {
			*prepared = &c->tables[i].prepared[(p - lo) / sizeof *st];
			return true;
		}
	}
	return false;
}

static enum hex_status result_status(struct pg_conn *c, PGresult *r, const char *what)
{
	ExecStatusType es = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK || es == PGRES_EMPTY_QUERY) {
		c->last_error[0] = '\0';
		c->last_retryable = false;
		return HEX_OK;
	}
	c->last_retryable = false;
	const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	one_line(c->last_error, sizeof c->last_error, msg != NULL ? msg : PQerrorMessage(c->conn));

	if (PQstatus(c->conn) != CONNECTION_OK) {
		if (logger_every(&c->last_down_log_s, 10))
			log_warn("pg_connection_lost", "%s: %s", what, c->last_error);
		return HEX_UNAVAILABLE;
	}
	enum hex_status st = HEX_INTERNAL;
	enum logger_level lvl = LOGGER_ERROR;
	for (size_t i = 0; state != NULL && i < sizeof sqlstate_map / sizeof *sqlstate_map; i++) {
		if (strncmp(state, sqlstate_map[i].sqlstate, strlen(sqlstate_map[i].sqlstate)) ==
		    0) {
			st = sqlstate_map[i].status;
			lvl = sqlstate_map[i].level;
			c->last_retryable = sqlstate_map[i].retryable;
			break;
		}
	}
	logger_write(lvl, "pg_query_failed", "%s: SQLSTATE %s: %s", what,
	             state != NULL ? state : "none", c->last_error);
	return st;
}

/*
 * An idle session that the server closed (restart, pg_terminate_backend) has left an
 * error and an end-of-file in the socket. Reading them before the next statement lets
 * that statement run on a fresh session instead of failing.
 */
static bool session_alive(struct pg_conn *c)
{
	for (int i = 0; i < 8 && PQstatus(c->conn) == CONNECTION_OK; i++) {
		struct pollfd p = {.fd = PQsocket(c->conn), .events = POLLIN};
		if (poll(&p, 1, 0) <= 0 || !PQconsumeInput(c->conn))
			break;
		(void)PQisBusy(c->conn); /* parses, so the server's last words reach the log */
		PGnotify *n;
		while ((n = PQnotifies(c->conn)) != NULL)
			PQfreemem(n);
	}
	return PQstatus(c->conn) == CONNECTION_OK;
}

static enum hex_status reconnect(struct pg_conn *c)
{
	int64_t now = monotonic_us();
	if (now < c->next_attempt_us) {
		hex_strlcpy(c->last_error, "PostgreSQL is unreachable (retrying shortly)",
		            sizeof c->last_error);
		return HEX_UNAVAILABLE;
	}
	PQreset(c->conn);
	if (PQstatus(c->conn) != CONNECTION_OK || !session_setup(c)) {
		if (PQstatus(c->conn) != CONNECTION_OK)
			one_line(c->last_error, sizeof c->last_error, PQerrorMessage(c->conn));
		c->next_attempt_us = monotonic_us() + (int64_t)c->opts.reconnect_backoff_ms * 1000;
		if (logger_every(&c->last_down_log_s, 10))
			log_warn("pg_reconnect_failed", "%s", c->last_error);
		return HEX_UNAVAILABLE;
	}
	for (size_t i = 0; i < c->ntables; i++)
		memset(c->tables[i].prepared, 0, c->tables[i].n * sizeof(bool));
	c->next_attempt_us = 0;
	log_info("pg_reconnected", "PostgreSQL session re-established");
	return HEX_OK;
}

static enum hex_status ensure_ready(struct pg_conn *c)
{
	c->last_retryable = false; /* each statement answers for itself */
	if (session_alive(c))
		return HEX_OK;
	if (c->depth > 0) {
		/* The transaction died with the session; the caller must roll back. */
		hex_strlcpy(c->last_error, "the session was lost inside a transaction",
		            sizeof c->last_error);
		return HEX_UNAVAILABLE;
	}
	return reconnect(c);
}

static enum hex_status prepare(struct pg_conn *c, const struct pg_stmt *st, bool *prepared)
{
	PGresult *r = PQprepare(c->conn, st->name, st->sql, st->nparams, NULL);
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	enum hex_status s = HEX_OK;
	/* 42P05: prepared by an earlier attempt whose answer was lost; it is the same SQL. */
	if (state == NULL || strcmp(state, "42P05") != 0)
		s = result_status(c, r, st->name);
	PQclear(r);
	if (s == HEX_OK)
		*prepared = true;
	return s;
}

enum hex_status pg_conn_prepare_all(struct pg_conn *c, struct hex_err *err)
{
	enum hex_status s = ensure_ready(c);
	if (s != HEX_OK)
		return hex_fail(err, s, NULL, "%s", c->last_error);
	for (size_t i = 0; i < c->ntables; i++) {
		struct pg_table *t = &c->tables[i];
		for (size_t j = 0; j < t->n; j++) {
			if (t->prepared[j])
				continue;
			s = prepare(c, &t->stmts[j], &t->prepared[j]);
			if (s != HEX_OK)
				return hex_fail(err, s, NULL, "cannot prepare statement %s: %s",
				                t->stmts[j].name, c->last_error);
		}
	}
	return HEX_OK;
}

enum hex_status pg_conn_query(struct pg_conn *c, const struct pg_stmt *st,
                              const char *const *params, PGresult **out)
{
	if (out != NULL)
		*out = NULL;
	bool *prepared = NULL;
	if (!find_stmt(c, st, &prepared)) {
		log_error("pg_unregistered_statement", "statement %s was never registered",
		          st->name);
		return HEX_INTERNAL;
	}
	enum hex_status s = ensure_ready(c);
	if (s == HEX_OK && !*prepared)
		s = prepare(c, st, prepared);
	if (s != HEX_OK)
		return s;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	PGresult *r = PQexecPrepared(c->conn, st->name, st->nparams, params, NULL, NULL, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	metrics_histogram_observe(&metrics_db_query, (t1.tv_sec - t0.tv_sec) * 1000000 +
	                                                 (t1.tv_nsec - t0.tv_nsec) / 1000);
	s = result_status(c, r, st->name);
	if (s == HEX_OK && out != NULL) {
		*out = r;
		r = NULL;
	}
	PQclear(r);
	return s;
}

enum hex_status pg_conn_script(struct pg_conn *c, const char *sql)
{
	enum hex_status s = ensure_ready(c);
	if (s != HEX_OK)
		return s;
	PGresult *r = PQexec(c->conn, sql);
	s = result_status(c, r, "script");
	PQclear(r);
	return s;
}

/*
 * The savepoint of the level begun at depth d (>= 1) is "hex_sp_<d>": fixed text from
 * the binary, never data, so pg_conn_script()-style SQL is safe here.
 */
#define SAVEPOINT_NAME "hex_sp_%d"

/*
 * Undoes the innermost savepoint's work and drops it (c->depth already names it), leaving
 * the enclosing level as it was before that begin, even if the inner level had failed.
 */
static void undo_savepoint(struct pg_conn *c)
{
	char sql[96];
	snprintf(sql, sizeof sql,
	         "ROLLBACK TO SAVEPOINT " SAVEPOINT_NAME "; RELEASE SAVEPOINT " SAVEPOINT_NAME,
	         c->depth, c->depth);
	PGresult *r = PQexec(c->conn, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		char line[256]; /* keeps last_error about what made the caller roll back */
		one_line(line, sizeof line, PQerrorMessage(c->conn));
		log_warn("pg_rollback_failed", "%s", line);
	}
	PQclear(r);
}

enum hex_status pg_conn_begin(struct pg_conn *c)
{
	char sql[40] = "BEGIN";
	if (c->depth > 0)
		snprintf(sql, sizeof sql, "SAVEPOINT " SAVEPOINT_NAME, c->depth);
	enum hex_status s = pg_conn_script(c, sql);
	if (s == HEX_OK)
		c->depth++;
	return s;
}

enum hex_status pg_conn_commit(struct pg_conn *c)
{
	if (c->depth == 0) {
		log_error("pg_commit_without_begin", "commit called outside a transaction");
		return HEX_INTERNAL;
	}
	enum hex_status s = ensure_ready(c);
	c->depth--;
	if (s != HEX_OK)
		return s;
	if (c->depth > 0) {
		char sql[40];
		snprintf(sql, sizeof sql, "RELEASE SAVEPOINT " SAVEPOINT_NAME, c->depth);
		PGresult *r = PQexec(c->conn, sql);
		s = result_status(c, r, "release savepoint");
		PQclear(r);
		/* Only an aborted level fails to release: its work goes, the enclosing one goes on.
		 */
		if (s != HEX_OK && PQstatus(c->conn) == CONNECTION_OK)
			undo_savepoint(c);
		return s;
	}
	PGresult *r = PQexec(c->conn, "COMMIT");
	s = result_status(c, r, "commit");
	/* COMMIT of a transaction that had failed succeeds and says ROLLBACK. */
	if (s == HEX_OK && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
		hex_strlcpy(c->last_error, "the transaction was rolled back", sizeof c->last_error);
		log_error("pg_commit_rolled_back", "commit of a failed transaction");
		s = HEX_INTERNAL;
	}
	PQclear(r);
	return s;
}

void pg_conn_rollback(struct pg_conn *c)
{
	if (c->depth == 0)
		return;
	c->depth--;
	if (PQstatus(c->conn) != CONNECTION_OK)
		return; /* the server already dropped the transaction with the session */
	if (c->depth > 0) {
		undo_savepoint(c);
		return;
	}
	PGresult *r = PQexec(c->conn, "ROLLBACK");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		char line[256]; /* keeps last_error about what made the caller roll back */
		one_line(line, sizeof line, PQerrorMessage(c->conn));
		log_warn("pg_rollback_failed", "%s", line);
	}
	PQclear(r);
}

int pg_conn_depth(const struct pg_conn *c)
{
	return c->depth;
}

enum hex_status pg_conn_ping(struct pg_conn *c)
{
	return pg_conn_script(c, "SELECT 1");
}

bool pg_conn_last_retryable(const struct pg_conn *c)
{
	return c->last_retryable;
}

const char *pg_conn_last_error(const struct pg_conn *c)
{
	return c->last_error;
}

PGconn *pg_conn_raw(struct pg_conn *c)
{
	return c->conn;
}
