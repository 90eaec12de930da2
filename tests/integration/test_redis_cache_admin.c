/*
 * test_redis_cache_admin: counting and flushing cached users on a real Redis, in a
 * database of the shared test Redis (HEX_TEST_REDIS_URL) that no other test uses, so that
 * a flush of everything is this test's own: only hex:user:v1:* keys go (never a stream,
 * a rate-limit counter or any other key), in SCAN batches beyond one DEL's size, one user
 * at a time too; a Redis that cannot be reached is HEX_UNAVAILABLE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "adapters/redis/redis_cache_admin.h"
#include "adapters/redis/redis_user_cache.h"
#include "support/redis_server.h"

/* The database of the shared test Redis this suite owns. */
#define OWN_DB 7
#define MANY   (2 * REDIS_CACHE_ADMIN_BATCH + 37)

struct fixture {
	char url[128];
	struct redis_conn *conn;
	struct user_cache_admin admin;
	struct redis_user_cache cache;
	struct user_cache port;
	redisContext *raw;
};

static void reply_ok(redisContext *raw, const char *cmd)
{
	redisReply *r = redisCommand(raw, cmd);
	assert_non_null(r);
	assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
}

static long long dbsize(redisContext *raw)
{
	redisReply *r = redisCommand(raw, "DBSIZE");
	assert_non_null(r);
	long long n = r->integer;
	freeReplyObject(r);
	return n;
}

static int setup(void **state)
{
	const char *shared = redis_server_test_url();
	if (shared == NULL)
		return -1;
	static struct fixture f;
	*state = &f;
	/* The same server, our own database: "redis://host:port[/db]" with /OWN_DB. */
	const char *slash = strrchr(shared, '/');
	size_t base = slash != NULL && slash > shared && slash[-1] != '/' ? (size_t)(slash - shared)
	                                                                  : strlen(shared);
	snprintf(f.url, sizeof f.url, "%.*s/%d", (int)base, shared, OWN_DB);
	struct hex_err err = {0};
	f.conn = redis_conn_new(f.url, 2000, &err);
	if (f.conn == NULL) {
		fprintf(stderr, "%s: %s\n", f.url, err.message);
		return -1;
	}
	f.admin = redis_cache_admin_port(f.conn);
	f.cache = (struct redis_user_cache){.conn = f.conn, .ttl_s = 600};
	f.port = redis_user_cache_port(&f.cache);
	f.raw = redis_server_connect(f.url);
	if (f.raw == NULL)
		return -1;
	reply_ok(f.raw, "FLUSHDB");
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f == NULL)
		return 0;
	if (f->raw != NULL) {
		reply_ok(f->raw, "FLUSHDB");
		redisFree(f->raw);
	}
	redis_conn_free(f->conn);
	return 0;
}

static struct user user_n(int n)
{
	struct user u = {.membership = MEMBERSHIP_FREE, .role = ROLE_USER};
	snprintf(u.id, sizeof u.id, "00000000-0000-4000-8000-%012d", n);
	snprintf(u.email, sizeof u.email, "u%d@example.com", n);
	u.created_at_us = u.updated_at_us = 1764439200000000 + n;
	return u;
}

static void test_count_and_flush_all_touch_only_cached_users(void **state)
{
	struct fixture *f = *state;
	for (int i = 1; i <= MANY; i++) {
		struct user u = user_n(i);
		f->port.ops->put(f->port.self, &u);
	}
	/* Keys of other owners, some of them close to ours. */
	reply_ok(f->raw, "SET hex:user:v2:00000000-0000-4000-8000-000000000001 x");
	reply_ok(f->raw, "SET hex:users x");
	reply_ok(f->raw, "SET hex:rl:login:someone 3");
	reply_ok(f->raw, "XADD hex:events:payment_events * event_id evt_1");
	long keys = -1;
	assert_int_equal(f->admin.ops->count(f->admin.self, &keys), HEX_OK);
	assert_int_equal(keys, MANY);

	long deleted = -1;
	assert_int_equal(f->admin.ops->flush(f->admin.self, NULL, &deleted), HEX_OK);
	assert_int_equal(deleted, MANY);
	assert_int_equal(f->admin.ops->count(f->admin.self, &keys), HEX_OK);
	assert_int_equal(keys, 0);
	assert_int_equal(dbsize(f->raw), 4);
	/* An empty cache: nothing to do, no error. */
	assert_int_equal(f->admin.ops->flush(f->admin.self, NULL, &deleted), HEX_OK);
	assert_int_equal(deleted, 0);
	/* And the user cache works on as before. */
	struct user u = user_n(1), got;
	assert_int_equal(f->port.ops->get(f->port.self, u.id, &got), HEX_NOT_FOUND);
	f->port.ops->put(f->port.self, &u);
	assert_int_equal(f->port.ops->get(f->port.self, u.id, &got), HEX_OK);
}

static void test_flush_one_user(void **state)
{
	struct fixture *f = *state;
	reply_ok(f->raw, "FLUSHDB");
	struct user a = user_n(11), b = user_n(12), got;
	f->port.ops->put(f->port.self, &a);
	f->port.ops->put(f->port.self, &b);
	long deleted = -1;
	assert_int_equal(f->admin.ops->flush(f->admin.self, a.id, &deleted), HEX_OK);
	assert_int_equal(deleted, 1);
	assert_int_equal(f->port.ops->get(f->port.self, a.id, &got), HEX_NOT_FOUND);
	assert_int_equal(f->port.ops->get(f->port.self, b.id, &got), HEX_OK);
	/* Not cached (any more): 0, no error; a malformed id cannot name a key. */
	assert_int_equal(f->admin.ops->flush(f->admin.self, a.id, &deleted), HEX_OK);
	assert_int_equal(deleted, 0);
	assert_int_equal(f->admin.ops->flush(f->admin.self, "*", &deleted), HEX_OK);
	assert_int_equal(deleted, 0);
	long keys = -1;
	assert_int_equal(f->admin.ops->count(f->admin.self, &keys), HEX_OK);
	assert_int_equal(keys, 1);
}

static void test_counters_are_the_user_caches(void **state)
{
	struct fixture *f = *state;
	struct user_cache_counters before, after;
	f->admin.ops->counters(f->admin.self, &before);
	struct user u = user_n(21), got;
	f->port.ops->put(f->port.self, &u);
	assert_int_equal(f->port.ops->get(f->port.self, u.id, &got), HEX_OK);
	assert_int_equal(f->port.ops->get(f->port.self, user_n(22).id, &got), HEX_NOT_FOUND);
	f->admin.ops->counters(f->admin.self, &after);
	assert_int_equal(after.hits, before.hits + 1);
	assert_int_equal(after.misses, before.misses + 1);
}

static void test_unreachable_redis_is_unavailable(void **state)
{
	/* Port 1 on loopback: nothing listens there, the connection is refused at once. */
	struct hex_err err = {0};
	struct redis_conn *dead = redis_conn_new("redis://127.0.0.1:1/0", 200, &err);
	assert_non_null(dead);
	struct user_cache_admin admin = redis_cache_admin_port(dead);
	long n = -1;
	assert_int_equal(admin.ops->count(admin.self, &n), HEX_UNAVAILABLE);
	assert_int_equal(admin.ops->flush(admin.self, NULL, &n), HEX_UNAVAILABLE);
	assert_int_equal(admin.ops->flush(admin.self, "00000000-0000-4000-8000-000000000001", &n),
	                 HEX_UNAVAILABLE);
	redis_conn_free(dead);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_count_and_flush_all_touch_only_cached_users),
	    cmocka_unit_test(test_flush_one_user),
	    cmocka_unit_test(test_counters_are_the_user_caches),
	    cmocka_unit_test(test_unreachable_redis_is_unavailable),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
