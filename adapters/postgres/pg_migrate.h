/*
 * pg_migrate: brings a database's schema up to the migrations embedded in this binary.
 * Safe to run from several processes at once: they take turns on an advisory lock and
 * each migration is applied exactly once.
 */
#ifndef HEX_PG_MIGRATE_H
#define HEX_PG_MIGRATE_H

#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_migration_list.h"

/*
 * Applies every embedded migration the database lacks, in version order, each in its own
 * transaction together with its schema_migrations row, and logs each one. *applied
 * (optional) gets how many this call applied, also on failure. HEX_CONFLICT if the
 * database records a version this binary does not know (it was migrated by a newer hexd):
 * nothing is applied then. A failing migration is rolled back whole (err names it).
 * A migration therefore holds no transaction control and nothing that cannot run inside
 * a transaction (CREATE INDEX CONCURRENTLY, VACUUM).
 */
enum hex_status pg_migrate(struct pg_conn *c, int *applied, struct hex_err *err) HEX_MUST_CHECK;

/* The same with another list, sorted by version (tests, tools). */
enum hex_status pg_migrate_with(struct pg_conn *c, const struct pg_migration *list, size_t n,
                                int *applied, struct hex_err *err) HEX_MUST_CHECK;

/* The newest embedded migration: "0001_init" and 1, for --version output. */
const char *pg_migrate_latest_name(void);
int pg_migrate_latest_version(void);

#endif
