/* pg_migrate.c: applies the embedded SQL migrations, once each, under an advisory lock. */
#include "adapters/postgres/pg_migrate.h"

#include <stdio.h>
#include <stdlib.h>

#include "adapters/postgres/pg_result.h"
#include "core/logger.h"
#include "core/xmalloc.h"

/*
 * Taken per transaction, so that a migrator that dies releases it with its session, and
 * held while the versions are read and one migration is applied: another hexd starting
 * at the same moment waits, then sees that migration recorded.
 */
static const char migrate_lock_sql[] =
    "SET LOCAL statement_timeout = 0;" /* migrations and the lock wait may be slow */
    "SELECT pg_advisory_xact_lock(7226450237166233697);" /* hex's own fixed key */
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

enum { MIGRATE_VERSIONS, MIGRATE_RECORD, MIGRATE_STMT_COUNT };

static const struct pg_stmt migrate_stmts[MIGRATE_STMT_COUNT] = {
    [MIGRATE_VERSIONS] = {"migrate_versions",
                          "SELECT version FROM schema_migrations ORDER BY version", 0},
    [MIGRATE_RECORD] = {"migrate_record",
                        "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)", 2},
};

const char *pg_migrate_latest_name(void)
{
	return pg_migration_list[pg_migration_list_count - 1].stem;
}

int pg_migrate_latest_version(void)
{
	return pg_migration_list[pg_migration_list_count - 1].version;
}

static bool list_has(const struct pg_migration *list, size_t n, int version)
{
	for (size_t i = 0; i < n; i++)
		if (list[i].version == version)
			return true;
	return false;
}

/*
 * Inside the locked transaction: *next gets the first migration of list the database
 * lacks, or NULL if it is up to date. HEX_CONFLICT for a recorded version list lacks.
 */
static enum hex_status find_pending(struct pg_conn *c, const struct pg_migration *list, size_t n,
                                    const struct pg_migration **next, struct hex_err *err)
{
	PGresult *r = NULL;
	bool *done = xcalloc(n > 0 ? n : 1, sizeof *done);
	*next = NULL;
	enum hex_status st = pg_conn_query(c, &migrate_stmts[MIGRATE_VERSIONS], NULL, &r);
	if (st != HEX_OK) {
		hex_fail(err, st, NULL, "cannot read schema_migrations: %s", pg_conn_last_error(c));
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		int64_t v = 0;
		if (!pg_result_int64(r, i, 0, &v) || !list_has(list, n, (int)v)) {
			st = hex_fail(err, HEX_CONFLICT, NULL,
			              "the database has schema version %s, which this hexd (schema "
			              "%04d) does not know; run a newer hexd",
			              PQgetvalue(r, i, 0), n > 0 ? list[n - 1].version : 0);
			goto out;
		}
		for (size_t j = 0; j < n; j++)
			if (list[j].version == v)
				done[j] = true;
	}
	for (size_t j = 0; j < n && *next == NULL; j++)
		if (!done[j])
			*next = &list[j];
out:
	free(done);
	PQclear(r);
	return st;
}

/* One transaction: lock, check, apply the next pending migration. *m is NULL when done. */
static enum hex_status apply_next(struct pg_conn *c, const struct pg_migration *list, size_t n,
                                  const struct pg_migration **m, struct hex_err *err)
{
	*m = NULL;
	enum hex_status st = pg_conn_begin(c);
	if (st == HEX_OK)
		st = pg_conn_script(c, migrate_lock_sql);
	if (st != HEX_OK) {
		hex_fail(err, st, NULL, "cannot lock schema_migrations: %s", pg_conn_last_error(c));
		goto out;
	}
	st = find_pending(c, list, n, m, err);
	if (st != HEX_OK || *m == NULL)
		goto out;

	st = pg_conn_script(c, (*m)->sql);
	if (st != HEX_OK) {
		hex_fail(err, st, NULL, "migration %s failed: %s", (*m)->stem,
		         pg_conn_last_error(c));
		goto out;
	}
	char version[16];
	snprintf(version, sizeof version, "%d", (*m)->version);
	const char *params[] = {version, (*m)->name};
	st = pg_conn_query(c, &migrate_stmts[MIGRATE_RECORD], params, NULL);
	if (st == HEX_OK)
		st = pg_conn_commit(c);
	if (st != HEX_OK)
		hex_fail(err, st, NULL, "cannot record migration %s: %s", (*m)->stem,
		         pg_conn_last_error(c));
out:
	if (st != HEX_OK || *m == NULL)
		pg_conn_rollback(c);
	return st;
}

enum hex_status pg_migrate_with(struct pg_conn *c, const struct pg_migration *list, size_t n,
                                int *applied, struct hex_err *err)
{
	int count = 0;
	enum hex_status st = HEX_OK;
	pg_conn_register(c, migrate_stmts, MIGRATE_STMT_COUNT);
	for (;;) {
		const struct pg_migration *m = NULL;
		st = apply_next(c, list, n, &m, err);
		if (st != HEX_OK || m == NULL)
			break;
		count++;
		log_info("migration_applied", "applied migration %s", m->stem);
	}
	if (st == HEX_OK)
		log_info("schema_ready", "database schema is at %s (%d applied now)",
		         n > 0 ? list[n - 1].stem : "nothing", count);
	if (applied != NULL)
		*applied = count;
	return st;
}

enum hex_status pg_migrate(struct pg_conn *c, int *applied, struct hex_err *err)
{
	return pg_migrate_with(c, pg_migration_list, pg_migration_list_count, applied, err);
}
