/* pg_testdb.c: throwaway databases for integration tests, on the server of HEX_TEST_PG_URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_migrate.h"
#include "support/pg_testdb.h"

static atomic_int testdb_counter;

static const char *admin_url(void)
{
	const char *u = getenv("HEX_TEST_PG_URL");
	if (u == NULL || *u == '\0')
		fail_msg(
		    "HEX_TEST_PG_URL is not set: run the tests with scripts/test.sh, or export "
		    "a superuser conninfo such as 'host=127.0.0.1 port=55432 user=hex "
		    "dbname=postgres'");
	return u;
}

/* Appends key='value' to out, quoted the way libpq reads it. */
static void append_kv(char *out, size_t n, const char *key, const char *val)
{
	size_t o = strlen(out);
	int w = snprintf(out + o, n - o, "%s%s='", o > 0 ? " " : "", key);
	assert_true(w > 0 && (size_t)w < n - o);
	o += (size_t)w;
	for (const char *p = val; *p != '\0'; p++) {
		assert_true(o + 3 < n);
		if (*p == '\'' || *p == '\\')
			out[o++] = '\\';
		out[o++] = *p;
	}
	assert_true(o + 2 < n);
	out[o++] = '\'';
	out[o] = '\0';
}

/* base with dbname replaced and, when host is not NULL, host and port too. */
static void build_conninfo(const char *base, const char *dbname, const char *host, const char *port,
                           char *out, size_t n)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(base, &perr);
	if (opts == NULL)
		fail_msg("not a valid conninfo (%s): %s", base, perr != NULL ? perr : "");
	out[0] = '\0';
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		const char *v = o->val;
		if (strcmp(o->keyword, "dbname") == 0)
			v = dbname;
		else if (host != NULL && strcmp(o->keyword, "host") == 0)
			v = host;
		else if (host != NULL && strcmp(o->keyword, "hostaddr") == 0)
			v = NULL;
		else if (host != NULL && strcmp(o->keyword, "port") == 0)
			v = port;
		if (v != NULL && *v != '\0')
			append_kv(out, n, o->keyword, v);
	}
	PQconninfoFree(opts);
}

/* Server chatter ("does not exist, skipping") would bury the test output. */
static void notice_quiet(void *arg, const char *message)
{
}

static PGconn *connect_or_fail(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);
	PQsetNoticeProcessor(c, notice_quiet, NULL);
	if (PQstatus(c) != CONNECTION_OK) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
		PQfinish(c);
		fail_msg("cannot connect to the test PostgreSQL: %s", msg);
	}
	return c;
}

/* Runs sql on conninfo; the result is the caller's (PQclear), or the test fails. */
static PGresult *run_or_fail(const char *conninfo, const char *sql)
{
	PGconn *c = connect_or_fail(conninfo);
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		fail_msg("test SQL failed: %s: %s", sql, msg);
	}
	PQfinish(c);
	return r;
}

void pg_testdb_create(struct pg_testdb *db)
{
	const char *admin = admin_url();
	snprintf(db->name, sizeof db->name, "hex_it_%ld_%d", (long)getpid(),
	         atomic_fetch_add(&testdb_counter, 1));
	char sql[128];
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
	PQclear(run_or_fail(admin, sql));
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", db->name);
	PQclear(run_or_fail(admin, sql));
	build_conninfo(admin, db->name, NULL, NULL, db->conninfo, sizeof db->conninfo);
}

void pg_testdb_create_migrated(struct pg_testdb *db)
{
	pg_testdb_create(db);
	struct hex_err err = {0};
	struct pg_conn *c = pg_conn_open(db->conninfo, &err);
	if (c == NULL)
		fail_msg("cannot open %s: %s", db->name, err.message);
	int applied = 0;
	enum hex_status st = pg_migrate(c, &applied, &err);
	pg_conn_free(c);
	if (st != HEX_OK)
		fail_msg("cannot migrate %s: %s", db->name, err.message);
}

void pg_testdb_drop(struct pg_testdb *db)
{
	if (db->name[0] == '\0')
		return;
	char sql[128];
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
	PQclear(run_or_fail(admin_url(), sql));
	db->name[0] = '\0';
}

void pg_testdb_exec(const struct pg_testdb *db, const char *sql)
{
	PQclear(run_or_fail(db->conninfo, sql));
}

long long pg_testdb_scalar(const struct pg_testdb *db, const char *sql)
{
	PGresult *r = run_or_fail(db->conninfo, sql);
	long long v = -1;
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

bool pg_testdb_param(const struct pg_testdb *db, const char *key, char *out, size_t n)
{
	PQconninfoOption *opts = PQconninfoParse(db->conninfo, NULL);
	assert_non_null(opts);
	bool found = false;
	for (PQconninfoOption *o = opts; o->keyword != NULL && !found; o++) {
		if (strcmp(o->keyword, key) == 0 && o->val != NULL && *o->val != '\0') {
			snprintf(out, n, "%s", o->val);
			found = true;
		}
	}
	PQconninfoFree(opts);
	return found;
}

void pg_testdb_conninfo_at(const struct pg_testdb *db, const char *host, int port, char *out,
                           size_t n)
{
	char p[16];
	snprintf(p, sizeof p, "%d", port);
	build_conninfo(db->conninfo, db->name, host, p, out, n);
}
