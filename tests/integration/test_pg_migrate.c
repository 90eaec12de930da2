/* Migrations against a real PostgreSQL: once each, recorded, refused when too new, race-free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_migrate.h"
#include "support/pg_testdb.h"

static struct pg_conn *open_or_fail(const struct pg_testdb *db)
{
	struct hex_err err = {0};
	struct pg_conn *c = pg_conn_open(db->conninfo, &err);
	if (c == NULL)
		fail_msg("cannot open %s: %s", db->name, err.message);
	return c;
}

static void test_fresh_database_gets_every_migration_recorded(void **state)
{
	struct pg_testdb db;
	pg_testdb_create(&db);
	struct pg_conn *c = open_or_fail(&db);
	struct hex_err err = {0};
	int applied = -1;

	assert_int_equal(pg_migrate(c, &applied, &err), HEX_OK);
	assert_int_equal(applied, (int)pg_migration_list_count);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM schema_migrations"),
	                 (long long)pg_migration_list_count);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM schema_migrations "
	                                       "WHERE version = 1 AND name = 'init' "
	                                       "AND applied_at <= now()"),
	                 1);
	/* The schema of 0001 is there, with its rules. */
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM information_schema.tables "
	                                       "WHERE table_name IN ('users', 'refresh_tokens')"),
	                 2);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM pg_indexes WHERE indexname "
	                                       "IN ('users_email_key', 'users_created_at_id_idx', "
	                                       "'refresh_tokens_user_id_idx', "
	                                       "'refresh_tokens_family_id_idx')"),
	                 4);

	pg_conn_free(c);
	pg_testdb_drop(&db);
}

static void test_second_run_applies_nothing(void **state)
{
	struct pg_testdb db;
	pg_testdb_create_migrated(&db);
	struct pg_conn *c = open_or_fail(&db);
	struct hex_err err = {0};
	int applied = -1;

	assert_int_equal(pg_migrate(c, &applied, &err), HEX_OK);
	assert_int_equal(applied, 0);
	assert_int_equal(pg_migrate(c, &applied, &err), HEX_OK);
	assert_int_equal(applied, 0);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM schema_migrations"),
	                 (long long)pg_migration_list_count);

	pg_conn_free(c);
	pg_testdb_drop(&db);
}

static void test_schema_rejects_what_the_contract_forbids(void **state)
{
	struct pg_testdb db;
	pg_testdb_create_migrated(&db);
	struct pg_conn *c = open_or_fail(&db);
	static const struct pg_stmt stmts[] = {
	    {"t_insert_user",
	     "INSERT INTO users (id, email, password_hash, membership, role) "
	     "VALUES ($1::uuid, $2, 'h', $3, $4)",
	     4},
	};
	pg_conn_register(c, stmts, 1);
	const char *ok[] = {"00000000-0000-4000-8000-000000000001", "a@b.io", "free", "user"};
	const char *gold[] = {"00000000-0000-4000-8000-000000000002", "b@b.io", "gold", "user"};
	const char *root[] = {"00000000-0000-4000-8000-000000000003", "c@b.io", "free", "root"};
	const char *noemail[] = {"00000000-0000-4000-8000-000000000004", NULL, "free", "user"};
	const char *upper[] = {"00000000-0000-4000-8000-000000000005", "A@B.IO", "free", "user"};

	assert_int_equal(pg_conn_query(c, &stmts[0], ok, NULL), HEX_OK);
	assert_int_equal(pg_conn_query(c, &stmts[0], gold, NULL), HEX_INTERNAL);
	assert_int_equal(pg_conn_query(c, &stmts[0], root, NULL), HEX_INTERNAL);
	assert_int_equal(pg_conn_query(c, &stmts[0], noemail, NULL), HEX_INTERNAL);
	assert_int_equal(pg_conn_query(c, &stmts[0], upper, NULL), HEX_CONFLICT);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM users"), 1);
	/* New rows get the contract's defaults. */
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM users WHERE membership = "
	                                       "'free' AND role = 'user' AND token_version = 0"),
	                 1);

	pg_conn_free(c);
	pg_testdb_drop(&db);
}

static void test_unknown_future_version_is_refused(void **state)
{
	struct pg_testdb db;
	pg_testdb_create_migrated(&db);
	pg_testdb_exec(&db,
	               "INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')");
	struct pg_conn *c = open_or_fail(&db);
	struct hex_err err = {0};
	int applied = -1;

	assert_int_equal(pg_migrate(c, &applied, &err), HEX_CONFLICT);
	assert_int_equal(applied, 0);
	assert_non_null(strstr(err.message, "9999"));
	assert_non_null(strstr(err.message, "newer hexd"));

	pg_conn_free(c);
	pg_testdb_drop(&db);
}

static void test_too_new_database_gets_nothing_applied(void **state)
{
	struct pg_testdb db;
	pg_testdb_create(&db);
	pg_testdb_exec(&db, "CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
	                    "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());"
	                    "INSERT INTO schema_migrations (version, name) VALUES (9999, 'x')");
	struct pg_conn *c = open_or_fail(&db);
	struct hex_err err = {0};
	int applied = -1;

	assert_int_equal(pg_migrate(c, &applied, &err), HEX_CONFLICT);
	assert_int_equal(applied, 0);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM information_schema.tables "
	                                       "WHERE table_name = 'users'"),
	                 0);

	pg_conn_free(c);
	pg_testdb_drop(&db);
}

static void test_failing_migration_is_rolled_back_whole(void **state)
{
	struct pg_testdb db;
	pg_testdb_create(&db);
	struct pg_conn *c = open_or_fail(&db);
	struct hex_err err = {0};
	int applied = -1;
	const struct pg_migration bad[] = {
	    {1, "a", "0001_a", "CREATE TABLE a (x int)"},
	    {2, "b", "0002_b", "CREATE TABLE b (x int); INSERT INTO a VALUES (1); SELECT 1/0"},
	};
	const struct pg_migration fixed[] = {
	    bad[0],
	    {2, "b", "0002_b", "CREATE TABLE b (x int); INSERT INTO a VALUES (1)"},
	};

	assert_int_equal(pg_migrate_with(c, bad, 2, &applied, &err), HEX_INTERNAL);
	assert_int_equal(applied, 1);
	assert_non_null(strstr(err.message, "0002_b"));
	assert_non_null(strstr(err.message, "division by zero"));
	assert_int_equal(pg_testdb_scalar(&db, "SELECT max(version) FROM schema_migrations"), 1);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM information_schema.tables "
	                                       "WHERE table_name = 'b'"),
	                 0);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM a"), 0);

	/* The connection is usable and the fixed migration goes in. */
	assert_int_equal(pg_migrate_with(c, fixed, 2, &applied, &err), HEX_OK);
	assert_int_equal(applied, 1);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM a"), 1);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM schema_migrations"), 2);

	pg_conn_free(c);
	pg_testdb_drop(&db);
}

struct racer {
	const struct pg_testdb *db;
	const struct pg_migration *list;
	size_t n;
	pthread_barrier_t *start;
	enum hex_status status;
	int applied;
	char message[200];
};

static void *race_migrate(void *arg)
{
	struct racer *r = arg;
	struct hex_err err = {0};
	struct pg_conn *c = pg_conn_open(r->db->conninfo, &err);
	pthread_barrier_wait(r->start);
	if (c == NULL) {
		r->status = HEX_UNAVAILABLE;
	} else {
		r->status = pg_migrate_with(c, r->list, r->n, &r->applied, &err);
		pg_conn_free(c);
	}
	snprintf(r->message, sizeof r->message, "%s", err.message);
	return NULL;
}

/* Runs nthreads migrators at once on a fresh database; each migration lands once. */
static void race(const struct pg_migration *list, size_t n, int nthreads)
{
	struct pg_testdb db;
	pg_testdb_create(&db);
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, (unsigned)nthreads);
	struct racer r[4];
	pthread_t th[4];
	assert_true(nthreads <= 4);
	for (int i = 0; i < nthreads; i++) {
		r[i] = (struct racer){.db = &db, .list = list, .n = n, .start = &start};
		assert_int_equal(pthread_create(&th[i], NULL, race_migrate, &r[i]), 0);
	}
	int total = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		if (r[i].status != HEX_OK)
			fail_msg("migrator %d: %s: %s", i, hex_status_name(r[i].status),
			         r[i].message);
		total += r[i].applied;
	}
	pthread_barrier_destroy(&start);
	assert_int_equal(total, (int)n);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM schema_migrations"),
	                 (long long)n);
	pg_testdb_drop(&db);
}

static void test_concurrent_migrators_apply_each_migration_once(void **state)
{
	race(pg_migration_list, pg_migration_list_count, 2);
}

static void test_concurrent_migrators_wait_for_a_slow_migration(void **state)
{
	/* Without the lock, the second CREATE TABLE fails while the first one sleeps. */
	const struct pg_migration slow[] = {
	    {1, "slow", "0001_slow", "CREATE TABLE slow (x int); SELECT pg_sleep(0.3)"},
	    {2, "next", "0002_next", "CREATE TABLE next (x int)"},
	};
	race(slow, 2, 3);
}

static void test_embedded_list_matches_the_sql_folder(void **state)
{
	/* __FILE__ is tests/integration/test_pg_migrate.c under the source root. */
	char root[1024];
	snprintf(root, sizeof root, "%s", __FILE__);
	char *cut = strstr(root, "tests/integration/");
	assert_non_null(cut);
	*cut = '\0';

	assert_true(pg_migration_list_count >= 1);
	for (size_t i = 0; i < pg_migration_list_count; i++) {
		const struct pg_migration *m = &pg_migration_list[i];
		if (i > 0)
			assert_true(m->version > pg_migration_list[i - 1].version);
		char expect[64];
		snprintf(expect, sizeof expect, "%04d_%s", m->version, m->name);
		assert_string_equal(m->stem, expect);

		char path[1200];
		snprintf(path, sizeof path, "%ssql/%s.sql", root, m->stem);
		FILE *f = fopen(path, "rb");
		assert_non_null(f);
		char *text = calloc(1, 1 << 20);
		size_t len = fread(text, 1, (1 << 20) - 1, f);
		fclose(f);
		assert_int_equal(len, strlen(m->sql));
		assert_memory_equal(text, m->sql, len);
		free(text);
	}
	const struct pg_migration *last = &pg_migration_list[pg_migration_list_count - 1];
	assert_string_equal(pg_migrate_latest_name(), last->stem);
	assert_int_equal(pg_migrate_latest_version(), last->version);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fresh_database_gets_every_migration_recorded),
	    cmocka_unit_test(test_second_run_applies_nothing),
	    cmocka_unit_test(test_schema_rejects_what_the_contract_forbids),
	    cmocka_unit_test(test_unknown_future_version_is_refused),
	    cmocka_unit_test(test_too_new_database_gets_nothing_applied),
	    cmocka_unit_test(test_failing_migration_is_rolled_back_whole),
	    cmocka_unit_test(test_concurrent_migrators_apply_each_migration_once),
	    cmocka_unit_test(test_concurrent_migrators_wait_for_a_slow_migration),
	    cmocka_unit_test(test_embedded_list_matches_the_sql_folder),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
