/* pg_refresh_repo against a real PostgreSQL: rotation, reuse, expiry, families, races. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_refresh_repo.h"
#include "adapters/postgres/pg_user_repo.h"
#include "support/pg_testdb.h"

#define T0   INT64_C(1764439200123456) /* 2025-11-29T18:00:00.123456Z */
#define HOUR INT64_C(3600000000)

static struct pg_testdb db;
static struct pg_conn *conn;
static struct user_repo users;
static struct refresh_repo repo;
static struct user owner;
static atomic_int id_counter;

static void new_id(char out[HEX_ID_LEN + 1])
{
	unsigned n = (unsigned)atomic_fetch_add(&id_counter, 1) + 1;
	snprintf(out, HEX_ID_LEN + 1, "%08x-1111-4000-8000-%012x", n * 2654435761u, n);
}

static struct pg_conn *open_or_fail(void)
{
	struct hex_err err = {0};
	struct pg_conn *c = pg_conn_open(db.conninfo, &err);
	if (c == NULL)
		fail_msg("%s", err.message);
	return c;
}

static struct user insert_user(void)
{
	struct user u = {.created_at_us = T0, .updated_at_us = T0};
	new_id(u.id);
	snprintf(u.email, sizeof u.email, "u%d@example.com", atomic_load(&id_counter));
	assert_int_equal(users.ops->insert(users.self, &u, "h"), HEX_OK);
	return u;
}

/* A login: a new family whose id is the first token's jti. */
static struct refresh_record login(const struct user *u, int64_t expires_us)
{
	struct refresh_record r = {.expires_at_us = expires_us};
	new_id(r.jti);
	snprintf(r.user_id, sizeof r.user_id, "%s", u->id);
	snprintf(r.family_id, sizeof r.family_id, "%s", r.jti);
	assert_int_equal(repo.ops->insert(repo.self, &r), HEX_OK);
	return r;
}

/* What the core passes as next: a new jti and expiry, family and user unknown. */
static struct refresh_record next_token(int64_t expires_us)
{
	struct refresh_record r = {.expires_at_us = expires_us};
	new_id(r.jti);
	return r;
}

static long long count_where(const char *fmt, const char *arg)
{
	char sql[512];
	snprintf(sql, sizeof sql, fmt, arg);
	return pg_testdb_scalar(&db, sql);
}

static bool exists(const char *jti)
{
	return count_where("SELECT count(*) FROM refresh_tokens WHERE jti = '%s'", jti) == 1;
}

static int group_setup(void **state)
{
	pg_testdb_create_migrated(&db);
	conn = open_or_fail();
	users = pg_user_repo_port(conn);
	repo = pg_refresh_repo_port(conn);
	struct hex_err err = {0};
	assert_int_equal(pg_conn_prepare_all(conn, &err), HEX_OK);
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
	pg_testdb_exec(&db, "TRUNCATE users CASCADE");
	owner = insert_user();
	return 0;
}

static void test_rotate_live_token(void **state)
{
	struct refresh_record first = login(&owner, T0 + HOUR);
	struct refresh_record next = next_token(T0 + 2 * HOUR);
	struct refresh_record old;
	memset(&old, 0, sizeof old);

	assert_int_equal(repo.ops->rotate(repo.self, first.jti, T0 + 1, &next, &old), HEX_OK);
	assert_string_equal(old.jti, first.jti);
	assert_string_equal(old.user_id, owner.id);
	assert_string_equal(old.family_id, first.family_id);
	assert_int_equal(old.expires_at_us, T0 + HOUR);
	/* next joined the family and user of the old token. */
	assert_string_equal(next.family_id, first.family_id);
	assert_string_equal(next.user_id, owner.id);

	assert_int_equal(
	    count_where("SELECT count(*) FROM refresh_tokens WHERE jti = '%s' AND "
	                "used_at = '2025-11-29T18:00:00.123457Z' AND revoked_at IS NULL",
	                first.jti),
	    1);
	assert_int_equal(
	    count_where("SELECT count(*) FROM refresh_tokens WHERE jti = '%s' AND "
	                "expires_at = '2025-11-29T20:00:00.123456Z' AND used_at IS NULL",
	                next.jti),
	    1);
	assert_int_equal(count_where("SELECT count(*) FROM refresh_tokens WHERE family_id = '%s'",
	                             first.family_id),
	                 2);

	/* The chain goes on from the new token. */
	struct refresh_record third = next_token(T0 + 3 * HOUR);
	assert_int_equal(repo.ops->rotate(repo.self, next.jti, T0 + 2, &third, &old), HEX_OK);
	assert_string_equal(old.jti, next.jti);
	assert_string_equal(third.family_id, first.family_id);
}

static void test_reuse_is_a_conflict_and_inserts_nothing(void **state)
{
	struct refresh_record first = login(&owner, T0 + HOUR);
	struct refresh_record next = next_token(T0 + 2 * HOUR), again = next_token(T0 + 2 * HOUR);
	struct refresh_record old;
	assert_int_equal(repo.ops->rotate(repo.self, first.jti, T0, &next, &old), HEX_OK);

	memset(&old, 0, sizeof old);
	assert_int_equal(repo.ops->rotate(repo.self, first.jti, T0 + 5, &again, &old),
	                 HEX_CONFLICT);
	/* The caller learns the family, to revoke it. */
	assert_string_equal(old.jti, first.jti);
	assert_string_equal(old.family_id, first.family_id);
	assert_string_equal(old.user_id, owner.id);
	assert_false(exists(again.jti));
	/* The first use keeps its time. */
	assert_int_equal(count_where("SELECT count(*) FROM refresh_tokens WHERE jti = '%s' AND "
	                             "used_at = '2025-11-29T18:00:00.123456Z'",
	                             first.jti),
	                 1);
}

static void test_expired_unknown_and_malformed_are_not_found(void **state)
{
	struct refresh_record t = login(&owner, T0 + 100);
	struct refresh_record next = next_token(T0 + HOUR), old;

	/* Expiry is exclusive: at expires_at the token is dead. */
	assert_int_equal(repo.ops->rotate(repo.self, t.jti, T0 + 100, &next, &old), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->rotate(repo.self, t.jti, T0 + 5000, &next, &old), HEX_NOT_FOUND);
	assert_false(exists(next.jti));
	assert_int_equal(count_where("SELECT count(*) FROM refresh_tokens WHERE jti = '%s' AND "
	                             "used_at IS NULL",
	                             t.jti),
	                 1);
	assert_int_equal(repo.ops->rotate(repo.self, t.jti, T0 + 99, &next, &old), HEX_OK);

	char unknown[HEX_ID_LEN + 1];
	new_id(unknown);
	struct refresh_record next2 = next_token(T0 + HOUR);
	assert_int_equal(repo.ops->rotate(repo.self, unknown, T0, &next2, &old), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->rotate(repo.self, "not-a-jti", T0, &next2, &old), HEX_NOT_FOUND);
	assert_false(exists(next2.jti));
}

static void test_used_and_expired_counts_as_reuse(void **state)
{
	struct refresh_record t = login(&owner, T0 + 100);
	struct refresh_record next = next_token(T0 + HOUR), again = next_token(T0 + HOUR), old;
	assert_int_equal(repo.ops->rotate(repo.self, t.jti, T0, &next, &old), HEX_OK);
	assert_int_equal(repo.ops->rotate(repo.self, t.jti, T0 + 5000, &again, &old), HEX_CONFLICT);
}

static void test_revoke_family_kills_the_family_only(void **state)
{
	struct refresh_record a = login(&owner, T0 + HOUR);
	struct refresh_record b = login(&owner, T0 + HOUR); /* another device */
	struct refresh_record a2 = next_token(T0 + HOUR), old;
	assert_int_equal(repo.ops->rotate(repo.self, a.jti, T0, &a2, &old), HEX_OK);

	assert_int_equal(repo.ops->revoke_family(repo.self, a.family_id), HEX_OK);
	assert_int_equal(count_where("SELECT count(*) FROM refresh_tokens WHERE family_id = '%s' "
	                             "AND revoked_at IS NOT NULL",
	                             a.family_id),
	                 2);
	struct refresh_record a3 = next_token(T0 + HOUR);
	assert_int_equal(repo.ops->rotate(repo.self, a2.jti, T0 + 1, &a3, &old), HEX_CONFLICT);
	assert_false(exists(a3.jti));

	struct refresh_record b2 = next_token(T0 + HOUR);
	assert_int_equal(repo.ops->rotate(repo.self, b.jti, T0 + 1, &b2, &old), HEX_OK);

	char unknown[HEX_ID_LEN + 1];
	new_id(unknown);
	assert_int_equal(repo.ops->revoke_family(repo.self, unknown), HEX_OK);
	assert_int_equal(repo.ops->revoke_family(repo.self, "bad"), HEX_NOT_FOUND);
	/* Revoking twice keeps the first revocation time. */
	assert_int_equal(repo.ops->revoke_family(repo.self, a.family_id), HEX_OK);
}

static void test_insert_errors(void **state)
{
	struct refresh_record t = login(&owner, T0 + HOUR);
	assert_int_equal(repo.ops->insert(repo.self, &t), HEX_CONFLICT);

	struct refresh_record orphan = next_token(T0 + HOUR);
	new_id(orphan.user_id);
	snprintf(orphan.family_id, sizeof orphan.family_id, "%s", orphan.jti);
	assert_int_equal(repo.ops->insert(repo.self, &orphan), HEX_NOT_FOUND);

	struct refresh_record bad = t;
	snprintf(bad.jti, sizeof bad.jti, "x");
	assert_int_equal(repo.ops->insert(repo.self, &bad), HEX_INVALID);
	bad = t;
	new_id(bad.jti);
	snprintf(bad.family_id, sizeof bad.family_id, "x");
	assert_int_equal(repo.ops->insert(repo.self, &bad), HEX_INVALID);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM refresh_tokens"), 1);
}

static void test_rotate_after_the_user_is_deleted_is_not_found(void **state)
{
	struct refresh_record t = login(&owner, T0 + HOUR);
	assert_int_equal(users.ops->remove(users.self, owner.id), HEX_OK);
	struct refresh_record next = next_token(T0 + HOUR), old;
	assert_int_equal(repo.ops->rotate(repo.self, t.jti, T0, &next, &old), HEX_NOT_FOUND);
	assert_false(exists(next.jti));
}

/* Two sessions acting at once, released together by a barrier. */
enum race_op { RACE_ROTATE, RACE_LOGOUT, RACE_REVOKE_FAMILY };

struct racer {
	pthread_barrier_t *start;
	enum race_op op;
	char jti[HEX_ID_LEN + 1]; /* RACE_ROTATE: the token; RACE_REVOKE_FAMILY: the family */
	enum hex_status status;
};

static void *race_run(void *arg)
{
	struct racer *r = arg;
	struct pg_conn *c = open_or_fail();
	struct refresh_repo rr = pg_refresh_repo_port(c);
	struct user_repo ur = pg_user_repo_port(c);
	struct hex_err err = {0};
	if (pg_conn_prepare_all(c, &err) != HEX_OK)
		r->status = HEX_INTERNAL;
	struct refresh_record next = next_token(T0 + HOUR), old;
	struct user out;
	pthread_barrier_wait(r->start);
	switch (r->op) {
	case RACE_ROTATE:
		r->status = rr.ops->rotate(rr.self, r->jti, T0, &next, &old);
		break;
	case RACE_LOGOUT:
		r->status = ur.ops->revoke_sessions(ur.self, owner.id, T0, &out);
		break;
	case RACE_REVOKE_FAMILY:
		r->status = rr.ops->revoke_family(rr.self, r->jti);
		break;
	}
	pg_conn_free(c);
	return NULL;
}

static void race(struct racer *a, struct racer *b)
{
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, 2);
	a->start = b->start = &start;
	pthread_t ta, tb;
	assert_int_equal(pthread_create(&ta, NULL, race_run, a), 0);
	assert_int_equal(pthread_create(&tb, NULL, race_run, b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&start);
}

static void test_two_rotations_of_one_token_succeed_once(void **state)
{
	for (int round = 0; round < 20; round++) {
		struct refresh_record t = login(&owner, T0 + HOUR);
		struct racer a = {.op = RACE_ROTATE}, b = {.op = RACE_ROTATE};
		memcpy(a.jti, t.jti, sizeof a.jti);
		memcpy(b.jti, t.jti, sizeof b.jti);
		race(&a, &b);
		int ok = (a.status == HEX_OK) + (b.status == HEX_OK);
		int reuse = (a.status == HEX_CONFLICT) + (b.status == HEX_CONFLICT);
		assert_int_equal(ok, 1);
		assert_int_equal(reuse, 1);
		assert_int_equal(count_where("SELECT count(*) FROM refresh_tokens WHERE "
		                             "family_id = '%s'",
		                             t.family_id),
		                 2);
	}
}

static void test_logout_racing_a_rotation_leaves_no_live_token(void **state)
{
	for (int round = 0; round < 20; round++) {
		struct refresh_record t = login(&owner, T0 + HOUR);
		struct racer a = {.op = RACE_ROTATE}, b = {.op = RACE_LOGOUT};
		memcpy(a.jti, t.jti, sizeof a.jti);
		race(&a, &b);
		assert_int_equal(b.status, HEX_OK);
		assert_true(a.status == HEX_OK || a.status == HEX_CONFLICT);
		assert_int_equal(
		    count_where("SELECT count(*) FROM refresh_tokens WHERE "
		                "user_id = '%s' AND revoked_at IS NULL AND used_at IS NULL",
		                owner.id),
		    0);
	}
}

static void test_family_revocation_racing_a_rotation_leaves_no_live_token(void **state)
{
	for (int round = 0; round < 20; round++) {
		struct refresh_record t = login(&owner, T0 + HOUR);
		struct racer a = {.op = RACE_ROTATE}, b = {.op = RACE_REVOKE_FAMILY};
		memcpy(a.jti, t.jti, sizeof a.jti);
		memcpy(b.jti, t.family_id, sizeof b.jti);
		race(&a, &b);
		assert_int_equal(b.status, HEX_OK);
		assert_true(a.status == HEX_OK || a.status == HEX_CONFLICT);
		assert_int_equal(
		    count_where("SELECT count(*) FROM refresh_tokens WHERE "
		                "family_id = '%s' AND revoked_at IS NULL AND used_at IS NULL",
		                t.family_id),
		    0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_rotate_live_token, setup),
	    cmocka_unit_test_setup(test_reuse_is_a_conflict_and_inserts_nothing, setup),
	    cmocka_unit_test_setup(test_expired_unknown_and_malformed_are_not_found, setup),
	    cmocka_unit_test_setup(test_used_and_expired_counts_as_reuse, setup),
	    cmocka_unit_test_setup(test_revoke_family_kills_the_family_only, setup),
	    cmocka_unit_test_setup(test_insert_errors, setup),
	    cmocka_unit_test_setup(test_rotate_after_the_user_is_deleted_is_not_found, setup),
	    cmocka_unit_test_setup(test_two_rotations_of_one_token_succeed_once, setup),
	    cmocka_unit_test_setup(test_logout_racing_a_rotation_leaves_no_live_token, setup),
	    cmocka_unit_test_setup(test_family_revocation_racing_a_rotation_leaves_no_live_token,
	                           setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
