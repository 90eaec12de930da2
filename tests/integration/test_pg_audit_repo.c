/*
 * test_pg_audit_repo: the admin port's audit trail on a real PostgreSQL: rows as written
 * and read back (through the audit service too), newest first with a keyset cursor, the
 * table's checks, and that nobody can change or remove a row, not even from psql.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/postgres/pg_audit_repo.h"
#include "adapters/postgres/pg_conn.h"
#include "core/audit_service.h"
#include "core/xmalloc.h"
#include "support/pg_testdb.h"

#define T0 INT64_C(1764439200123456) /* 2025-11-29T18:00:00.123456Z */

static struct pg_testdb db;
static struct pg_conn *conn;
static struct audit_repo repo;
static PGconn *raw; /* for the SQL a user of psql could type */
static int64_t clock_us;

static int64_t test_now_us(void *self)
{
	return clock_us += 1000;
}

static const struct clock_ops test_clock_ops = {.now_us = test_now_us};

static void quiet(void *arg, const char *message)
{
}

static int group_setup(void **state)
{
	pg_testdb_create_migrated(&db);
	struct hex_err err = {0};
	conn = pg_conn_open(db.conninfo, &err);
	if (conn == NULL)
		fail_msg("%s", err.message);
	repo = pg_audit_repo_port(conn);
	assert_int_equal(pg_conn_prepare_all(conn, &err), HEX_OK);
	raw = PQconnectdb(db.conninfo);
	assert_int_equal(PQstatus(raw), CONNECTION_OK);
	PQsetNoticeProcessor(raw, quiet, NULL);
	return 0;
}

static int group_teardown(void **state)
{
	PQfinish(raw);
	pg_conn_free(conn);
	pg_testdb_drop(&db);
	return 0;
}

static struct audit_entry entry(const char *op, const char *verb, const char *args, bool ok,
                                const char *error)
{
	struct audit_entry e;
	memset(&e, 0, sizeof e);
	e.at_us = clock_us += 1000000;
	snprintf(e.operator_name, sizeof e.operator_name, "%s", op);
	snprintf(e.verb, sizeof e.verb, "%s", verb);
	snprintf(e.args, sizeof e.args, "%s", args);
	e.ok = ok;
	snprintf(e.error, sizeof e.error, "%s", error);
	return e;
}

static bool raw_ok(const char *sql)
{
	PGresult *r = PQexec(raw, sql);
	ExecStatusType s = PQresultStatus(r);
	PQclear(r);
	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

static void test_rows_round_trip_newest_first_with_a_cursor(void **state)
{
	clock_us = T0;
	int64_t ids[5];
	const char *errors[] = {"", "dead letter 9 is already replayed", "", "", ""};
	for (int i = 0; i < 5; i++) {
		char args[32];
		snprintf(args, sizeof args, "%d \"why not\" caf\xc3\xa9", i);
		struct audit_entry e = entry(i % 2 ? "bob@ops" : "alice", "DLQ REPLAY", args,
		                             errors[i][0] == '\0', errors[i]);
		assert_int_equal(repo.ops->append(repo.self, &e, &ids[i]), HEX_OK);
		assert_true(i == 0 || ids[i] > ids[i - 1]);
	}
	struct audit_page *page = xcalloc(1, sizeof *page);
	assert_int_equal(repo.ops->list(repo.self, 2, 0, page), HEX_OK);
	assert_int_equal(page->count, 2);
	assert_true(page->has_more);
	assert_int_equal(page->items[0].id, ids[4]);
	assert_int_equal(page->items[1].id, ids[3]);
	assert_int_equal(repo.ops->list(repo.self, 2, page->items[1].id, page), HEX_OK);
	assert_int_equal(page->count, 2);
	assert_true(page->has_more);
	const struct audit_entry *failed = &page->items[1];
	assert_int_equal(failed->id, ids[1]);
	assert_string_equal(failed->operator_name, "bob@ops");
	assert_string_equal(failed->verb, "DLQ REPLAY");
	assert_string_equal(failed->args, "1 \"why not\" caf\xc3\xa9");
	assert_false(failed->ok);
	assert_string_equal(failed->error, "dead letter 9 is already replayed");
	assert_int_equal(failed->at_us, T0 + 2000000); /* to the microsecond */
	assert_int_equal(repo.ops->list(repo.self, 2, page->items[1].id, page), HEX_OK);
	assert_int_equal(page->count, 1);
	assert_false(page->has_more);
	assert_true(page->items[0].ok);
	assert_string_equal(page->items[0].error, "");
	/* The ok row stored no error at all. */
	char sql[128];
	snprintf(sql, sizeof sql,
	         "SELECT count(*) FROM admin_audit WHERE id = %lld AND error IS NULL",
	         (long long)ids[0]);
	assert_int_equal(pg_testdb_scalar(&db, sql), 1);

	assert_int_equal(repo.ops->list(repo.self, 0, 0, page), HEX_INVALID);
	assert_int_equal(repo.ops->list(repo.self, HEX_LIST_MAX + 1, 0, page), HEX_INVALID);
	assert_int_equal(repo.ops->list(repo.self, 5, -1, page), HEX_INVALID);
	free(page);
}

static void test_the_table_refuses_what_the_port_forbids(void **state)
{
	long long before = pg_testdb_scalar(&db, "SELECT count(*) FROM admin_audit");
	int64_t id = 0;
	struct audit_entry bad[] = {
	    entry("al ice", "PING", "", true, ""),     /* operator charset */
	    entry("", "PING", "", true, ""),           /* no operator */
	    entry("op", "", "", true, ""),             /* no verb */
	    entry("op", "DLQ REPLAY", "1", false, ""), /* a failure that says nothing */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(repo.ops->append(repo.self, &bad[i], &id), HEX_INTERNAL);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM admin_audit"), before);
	/* The longest of everything fits. */
	struct audit_entry big = entry("o", "V", "", false, "");
	memset(big.operator_name, 'o', AUDIT_OPERATOR_MAX);
	memset(big.verb, 'V', AUDIT_VERB_MAX);
	memset(big.args, 'a', AUDIT_ARGS_MAX);
	memset(big.error, 'e', AUDIT_ERROR_MAX);
	assert_int_equal(repo.ops->append(repo.self, &big, &id), HEX_OK);
}

static void test_nobody_changes_or_removes_a_row(void **state)
{
	struct audit_entry e = entry("alice", "CACHE FLUSH", "", true, "");
	int64_t id = 0;
	assert_int_equal(repo.ops->append(repo.self, &e, &id), HEX_OK);
	long long n = pg_testdb_scalar(&db, "SELECT count(*) FROM admin_audit");
	assert_false(raw_ok("UPDATE admin_audit SET operator = 'mallory'"));
	assert_false(
	    raw_ok("UPDATE admin_audit SET ok = false, error = 'x' WHERE verb = 'CACHE FLUSH'"));
	assert_false(raw_ok("DELETE FROM admin_audit"));
	assert_false(raw_ok("TRUNCATE admin_audit"));
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM admin_audit"), n);
	assert_int_equal(
	    pg_testdb_scalar(&db, "SELECT count(*) FROM admin_audit WHERE operator = 'mallory'"),
	    0);
}

static void test_through_the_service(void **state)
{
	struct audit_service svc = {.repo = repo, .clock = {&test_clock_ops, NULL}};
	clock_us = T0 + INT64_C(86400000000);
	struct audit_entry out;
	struct hex_err err = {0};
	/* What an operator typed may hold anything; the trail holds readable text. */
	assert_int_equal(audit_service_record(&svc, "carol", "DLQ DISCARD", "7 bad\x01\xff reason",
	                                      false, "dead letter 7 not found", &out, &err),
	                 HEX_OK);
	struct audit_page *page = xcalloc(1, sizeof *page);
	assert_int_equal(audit_service_list(&svc, 1, 0, page, &err), HEX_OK);
	assert_int_equal(page->count, 1);
	assert_int_equal(page->items[0].id, out.id);
	assert_string_equal(page->items[0].args, "7 bad?? reason");
	assert_string_equal(page->items[0].operator_name, "carol");
	assert_int_equal(page->items[0].at_us, out.at_us);
	free(page);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rows_round_trip_newest_first_with_a_cursor),
	    cmocka_unit_test(test_the_table_refuses_what_the_port_forbids),
	    cmocka_unit_test(test_nobody_changes_or_removes_a_row),
	    cmocka_unit_test(test_through_the_service),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
