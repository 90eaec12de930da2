/* test_pg_idempotency_store: the first answer to a key is kept 24 hours, then forgotten. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "adapters/postgres/pg_idempotency_store.h"
#include "support/pg_testdb.h"

#define USER  "0190f3a2-7b1c-7d4e-8f00-123456789abc"
#define OTHER "0190f3a2-7b1c-7d4e-8f00-cba987654321"
#define FP_A  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FP_B  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static struct pg_testdb db;
static struct pg_conn *conn;
static struct idempotency_store store;

static int group_setup(void **state)
{
	pg_testdb_create_migrated(&db);
	struct hex_err err = {0};
	conn = pg_conn_open(db.conninfo, &err);
	if (conn == NULL)
		fail_msg("%s", err.message);
	store = pg_idempotency_store_port(conn);
	return 0;
}

static int group_teardown(void **state)
{
	pg_conn_free(conn);
	pg_testdb_drop(&db);
	return 0;
}

static int setup(void **state)
{
	pg_testdb_exec(&db, "TRUNCATE idempotency_keys");
	return 0;
}

static enum hex_status find(const char *user, const char *key, struct idempotent_answer *a)
{
	return store.ops->find(store.self, user, "/v2/payments", key, a);
}

static void unknown_key_is_not_found(void **state)
{
	struct idempotent_answer a = {0};
	assert_int_equal(find(USER, "k1", &a), HEX_NOT_FOUND);
	assert_null(a.body);
}

static void the_first_answer_wins(void **state)
{
	assert_int_equal(store.ops->save(store.self, USER, "/v2/payments", "k1", FP_A, 201,
	                                 "{\"id\":\"first\"}"),
	                 HEX_OK);
	assert_int_equal(store.ops->save(store.self, USER, "/v2/payments", "k1", FP_B, 201,
	                                 "{\"id\":\"second\"}"),
	                 HEX_OK);
	struct idempotent_answer a = {0};
	assert_int_equal(find(USER, "k1", &a), HEX_OK);
	assert_string_equal(a.fingerprint, FP_A);
	assert_int_equal(a.status, 201);
	assert_string_equal(a.body, "{\"id\":\"first\"}");
	free(a.body);
}

static void keys_are_per_user_and_route(void **state)
{
	assert_int_equal(store.ops->save(store.self, USER, "/v2/payments", "k1", FP_A, 201, "{}"),
	                 HEX_OK);
	struct idempotent_answer a = {0};
	assert_int_equal(find(OTHER, "k1", &a), HEX_NOT_FOUND);
	assert_int_equal(store.ops->find(store.self, USER, "/v2/wallet/transfers", "k1", &a),
	                 HEX_NOT_FOUND);
}

static void answers_older_than_a_day_are_forgotten_and_replaced(void **state)
{
	assert_int_equal(
	    store.ops->save(store.self, USER, "/v2/payments", "k1", FP_A, 201, "{\"v\":1}"),
	    HEX_OK);
	pg_testdb_exec(&db, "UPDATE idempotency_keys SET created_at = now() - interval '25 hours'");
	struct idempotent_answer a = {0};
	assert_int_equal(find(USER, "k1", &a), HEX_NOT_FOUND);
	assert_int_equal(
	    store.ops->save(store.self, USER, "/v2/payments", "k1", FP_B, 200, "{\"v\":2}"),
	    HEX_OK);
	assert_int_equal(find(USER, "k1", &a), HEX_OK);
	assert_string_equal(a.body, "{\"v\":2}");
	assert_int_equal(a.status, 200);
	free(a.body);
}

static void a_bad_fingerprint_is_refused_by_the_schema(void **state)
{
	assert_int_not_equal(
	    store.ops->save(store.self, USER, "/v2/payments", "k1", "not-hex", 201, "{}"), HEX_OK);
	struct idempotent_answer a = {0};
	assert_int_equal(find(USER, "k1", &a), HEX_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(unknown_key_is_not_found, setup),
	    cmocka_unit_test_setup(the_first_answer_wins, setup),
	    cmocka_unit_test_setup(keys_are_per_user_and_route, setup),
	    cmocka_unit_test_setup(answers_older_than_a_day_are_forgotten_and_replaced, setup),
	    cmocka_unit_test_setup(a_bad_fingerprint_is_refused_by_the_schema, setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
