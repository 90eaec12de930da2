/*
 * test_cache_service: CACHE STATS and CACHE FLUSH over the user_cache_admin port: no
 * cache configured, a cache that fails, a bad user id (refused before the cache is
 * touched), and ids flushed as the cache keys them (lower case).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/cache_service.h"
#include "support/fake_admin.h"

#define USER_UPPER "ABCDEF00-0000-4000-8000-00000000000A"
#define USER_LOWER "abcdef00-0000-4000-8000-00000000000a"

static void test_stats_are_counters_and_keys(void **state)
{
	struct fake_cache_admin f = {.keys = 12};
	struct cache_service s = {.admin = fake_cache_admin_port(&f)};
	struct cache_stats st;
	struct hex_err err = {0};
	assert_int_equal(cache_service_stats(&s, &st, &err), HEX_OK);
	assert_int_equal(st.keys, 12);
	assert_int_equal(st.counters.hits, 7);
	assert_int_equal(st.counters.misses, 3);
	assert_int_equal(st.counters.errors, 1);
}

static void test_no_cache_configured_is_unavailable(void **state)
{
	struct cache_service s = {0};
	struct cache_stats st;
	long deleted = -1;
	struct hex_err err = {0};
	assert_int_equal(cache_service_stats(&s, &st, &err), HEX_UNAVAILABLE);
	assert_non_null(strstr(err.message, "no cache is configured"));
	err = (struct hex_err){0};
	assert_int_equal(cache_service_flush(&s, NULL, &deleted, &err), HEX_UNAVAILABLE);
	assert_non_null(strstr(err.message, "no cache is configured"));
	assert_int_equal(deleted, 0);
	/* A bad id is still the operator's mistake first. */
	err = (struct hex_err){0};
	assert_int_equal(cache_service_flush(&s, "nope", &deleted, &err), HEX_INVALID);
	assert_string_equal(err.field, "user_id");
}

static void test_a_failing_cache_is_unavailable(void **state)
{
	struct fake_cache_admin f = {.keys = 3, .fail = HEX_UNAVAILABLE};
	struct cache_service s = {.admin = fake_cache_admin_port(&f)};
	struct cache_stats st;
	long deleted = -1;
	struct hex_err err = {0};
	assert_int_equal(cache_service_stats(&s, &st, &err), HEX_UNAVAILABLE);
	assert_string_equal(err.message, "the cache is unavailable");
	f.fail = HEX_INTERNAL;
	assert_int_equal(cache_service_flush(&s, NULL, &deleted, &err), HEX_UNAVAILABLE);
	assert_int_equal(deleted, 0);
}

static void test_flush_all_or_one_lower_cased(void **state)
{
	struct fake_cache_admin f = {.keys = 5, .cached = USER_LOWER};
	struct cache_service s = {.admin = fake_cache_admin_port(&f)};
	long deleted = -1;
	struct hex_err err = {0};
	/* One user, named in upper case: the entry is keyed by the id as stored. */
	assert_int_equal(cache_service_flush(&s, USER_UPPER, &deleted, &err), HEX_OK);
	assert_false(f.flushed_all);
	assert_string_equal(f.flushed_id, USER_LOWER);
	assert_int_equal(deleted, 1);
	assert_int_equal(f.keys, 4);
	/* Again: nothing left to delete, and that is no error. */
	assert_int_equal(cache_service_flush(&s, USER_LOWER, &deleted, &err), HEX_OK);
	assert_int_equal(deleted, 0);
	/* Everyone. */
	assert_int_equal(cache_service_flush(&s, NULL, &deleted, &err), HEX_OK);
	assert_true(f.flushed_all);
	assert_int_equal(deleted, 4);
	assert_int_equal(f.keys, 0);
}

static void test_bad_ids_never_reach_the_cache(void **state)
{
	struct fake_cache_admin f = {.keys = 5};
	struct cache_service s = {.admin = fake_cache_admin_port(&f)};
	const char *bad[] = {"", "42", USER_LOWER "0", "abcdef00-0000-4000-8000-00000000000g",
	                     "abcdef00+0000-4000-8000-00000000000a"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		long deleted = -1;
		struct hex_err err = {0};
		assert_int_equal(cache_service_flush(&s, bad[i], &deleted, &err), HEX_INVALID);
		assert_string_equal(err.field, "user_id");
		assert_int_equal(deleted, 0);
	}
	assert_int_equal(f.flushes, 0);
	assert_int_equal(f.keys, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stats_are_counters_and_keys),
	    cmocka_unit_test(test_no_cache_configured_is_unavailable),
	    cmocka_unit_test(test_a_failing_cache_is_unavailable),
	    cmocka_unit_test(test_flush_all_or_one_lower_cased),
	    cmocka_unit_test(test_bad_ids_never_reach_the_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
