/*
 * pg_testdb: a fresh database per test suite on the PostgreSQL server named by
 * HEX_TEST_PG_URL (a superuser conninfo with dbname=postgres). Every failure fails the
 * running cmocka test or fixture: an unset variable is an error, never a skip.
 */
#ifndef HEX_TESTS_PG_TESTDB_H
#define HEX_TESTS_PG_TESTDB_H

#include <stdbool.h>
#include <stddef.h>

struct pg_testdb {
	char name[64];       /* hex_it_<pid>_<counter> */
	char conninfo[1024]; /* keyword conninfo of the new database */
};

/* Creates an empty database. */
void pg_testdb_create(struct pg_testdb *db);

/* Creates a database and applies the embedded migrations to it. */
void pg_testdb_create_migrated(struct pg_testdb *db);

/* Drops the database, ending any session still connected to it. */
void pg_testdb_drop(struct pg_testdb *db);

/* Runs fixed SQL text of the test on db through a short-lived connection. */
void pg_testdb_exec(const struct pg_testdb *db, const char *sql);

/* The first column of the first row of a fixed query, as a number (-1 if no row/NULL). */
long long pg_testdb_scalar(const struct pg_testdb *db, const char *sql);

/* Value of a connection keyword of db ("host", "port", "user"); false if unset. */
bool pg_testdb_param(const struct pg_testdb *db, const char *key, char *out, size_t n);

/* db's conninfo pointed at another host and port (for proxies and dead addresses). */
void pg_testdb_conninfo_at(const struct pg_testdb *db, const char *host, int port, char *out,
                           size_t n);

#endif
