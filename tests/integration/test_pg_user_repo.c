/* pg_user_repo against a real PostgreSQL: every method, every error path, exact timestamps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_refresh_repo.h"
#include "adapters/postgres/pg_user_repo.h"
#include "support/pg_testdb.h"

#define T0 INT64_C(1764439200123456) /* 2025-11-29T18:00:00.123456Z */

static struct pg_testdb db;
static struct pg_conn *conn;
static struct user_repo repo;
static struct refresh_repo refresh;
static int id_counter;
static struct user updated_scratch; /* update()'s out when a test does not look */

static void new_id(char out[HEX_ID_LEN + 1])
{
	/* Not in creation order, so that ordering by id is really tested. */
	unsigned n = (unsigned)++id_counter;
	snprintf(out, HEX_ID_LEN + 1, "%08x-0000-4000-8000-%012x", (n * 2654435761u), n);
}

static struct user make_user(const char *email, int64_t created_us)
{
	struct user u = {.membership = MEMBERSHIP_FREE, .role = ROLE_USER};
	new_id(u.id);
	snprintf(u.email, sizeof u.email, "%s", email);
	u.created_at_us = created_us;
	u.updated_at_us = created_us;
	return u;
}

static struct user insert_user(const char *email, int64_t created_us)
{
	struct user u = make_user(email, created_us);
	assert_int_equal(repo.ops->insert(repo.self, &u, "$y$hash-of-secret"), HEX_OK);
	return u;
}

static void assert_user_equal(const struct user *a, const struct user *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->email, b->email);
	assert_int_equal(a->membership, b->membership);
	assert_int_equal(a->role, b->role);
	assert_int_equal(a->token_version, b->token_version);
	assert_int_equal(a->created_at_us, b->created_at_us);
	assert_int_equal(a->updated_at_us, b->updated_at_us);
}

static long long count_where(const char *fmt, const char *arg)
{
	char sql[512];
	snprintf(sql, sizeof sql, fmt, arg);
	return pg_testdb_scalar(&db, sql);
}

static int group_setup(void **state)
{
	pg_testdb_create_migrated(&db);
	struct hex_err err = {0};
	conn = pg_conn_open(db.conninfo, &err);
	if (conn == NULL)
		fail_msg("%s", err.message);
	repo = pg_user_repo_port(conn);
	refresh = pg_refresh_repo_port(conn);
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
	return 0;
}

static void test_insert_then_get_returns_every_field(void **state)
{
	struct user u = make_user("alice@example.com", T0);
	u.membership = MEMBERSHIP_MEMBER;
	u.role = ROLE_ADMIN;
	u.token_version = 7;
	u.updated_at_us = T0 + 1;
	assert_int_equal(repo.ops->insert(repo.self, &u, "$y$hash"), HEX_OK);

	struct user got;
	memset(&got, 0xff, sizeof got);
	assert_int_equal(repo.ops->get(repo.self, u.id, &got), HEX_OK);
	assert_user_equal(&got, &u);
	/* Stored as given, and its RFC 3339 form is the microsecond one. */
	assert_int_equal(count_where("SELECT count(*) FROM users WHERE created_at = "
	                             "'2025-11-29T18:00:00.123456Z' AND id = '%s'",
	                             u.id),
	                 1);
}

static void test_timestamps_round_trip_to_the_microsecond(void **state)
{
	const int64_t values[] = {
	    0,
	    1,
	    -1, /* 1969-12-31T23:59:59.999999Z */
	    T0,
	    T0 + 999999,
	    INT64_C(-8640000000000000), /* 1696 */
	    (INT64_C(1) << 53) - 1,     /* 2255: the largest exact value */
	};
	for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
		char email[64];
		snprintf(email, sizeof email, "ts%zu@example.com", i);
		struct user u = make_user(email, values[i]);
		u.updated_at_us = values[i] + 1;
		assert_int_equal(repo.ops->insert(repo.self, &u, "h"), HEX_OK);
		struct user got;
		assert_int_equal(repo.ops->get(repo.self, u.id, &got), HEX_OK);
		assert_int_equal(got.created_at_us, values[i]);
		assert_int_equal(got.updated_at_us, values[i] + 1);
	}
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM users WHERE created_at = "
	                                       "'1969-12-31T23:59:59.999999Z'"),
	                 1);
}

static void test_get_unknown_or_malformed_id_is_not_found(void **state)
{
	struct user got;
	char id[HEX_ID_LEN + 1];
	new_id(id);
	assert_int_equal(repo.ops->get(repo.self, id, &got), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->get(repo.self, "not-a-uuid", &got), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->get(repo.self, "", &got), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->get(repo.self, "'; DROP TABLE users; --", &got), HEX_NOT_FOUND);
}

static void test_get_by_email_ignores_case_and_returns_the_hash(void **state)
{
	struct user u = insert_user("carol@example.com", T0);
	struct user got;
	char hash[HEX_HASH_MAX];

	assert_int_equal(
	    repo.ops->get_by_email(repo.self, "CAROL@Example.COM", &got, hash, sizeof hash),
	    HEX_OK);
	assert_user_equal(&got, &u);
	assert_string_equal(hash, "$y$hash-of-secret");
	/* The hash is optional. */
	assert_int_equal(repo.ops->get_by_email(repo.self, "carol@example.com", &got, NULL, 0),
	                 HEX_OK);
	/* A hash that does not fit is an error, not a truncated hash. */
	char tiny[4];
	assert_int_equal(
	    repo.ops->get_by_email(repo.self, "carol@example.com", &got, tiny, sizeof tiny),
	    HEX_INTERNAL);
	assert_int_equal(
	    repo.ops->get_by_email(repo.self, "dave@example.com", &got, hash, sizeof hash),
	    HEX_NOT_FOUND);
	assert_int_equal(repo.ops->get_by_email(repo.self, "' OR ''='", &got, hash, sizeof hash),
	                 HEX_NOT_FOUND);
}

static void test_duplicate_email_conflicts_in_any_case(void **state)
{
	insert_user("bob@example.com", T0);
	struct user same = make_user("bob@example.com", T0);
	struct user upper = make_user("BOB@Example.com", T0);
	assert_int_equal(repo.ops->insert(repo.self, &same, "h"), HEX_CONFLICT);
	assert_int_equal(repo.ops->insert(repo.self, &upper, "h"), HEX_CONFLICT);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM users"), 1);
	/* The same id twice conflicts too. */
	struct user again = insert_user("erin@example.com", T0);
	snprintf(again.email, sizeof again.email, "frank@example.com");
	assert_int_equal(repo.ops->insert(repo.self, &again, "h"), HEX_CONFLICT);
}

static void test_insert_refuses_a_malformed_id(void **state)
{
	struct user u = make_user("gina@example.com", T0);
	snprintf(u.id, sizeof u.id, "x");
	assert_int_equal(repo.ops->insert(repo.self, &u, "h"), HEX_INVALID);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM users"), 0);
}

static void test_get_hash(void **state)
{
	struct user u = insert_user("hank@example.com", T0);
	char hash[HEX_HASH_MAX];
	assert_int_equal(repo.ops->get_hash(repo.self, u.id, hash, sizeof hash), HEX_OK);
	assert_string_equal(hash, "$y$hash-of-secret");
	char id[HEX_ID_LEN + 1];
	new_id(id);
	assert_int_equal(repo.ops->get_hash(repo.self, id, hash, sizeof hash), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->get_hash(repo.self, "zzz", hash, sizeof hash), HEX_NOT_FOUND);
}

static void test_update_writes_fields_and_keeps_or_replaces_the_hash(void **state)
{
	struct user u = insert_user("ivan@example.com", T0);
	u.membership = MEMBERSHIP_MEMBER;
	u.role = ROLE_ADMIN;
	u.updated_at_us = T0 + 5000001;
	snprintf(u.email, sizeof u.email, "ivan.new@example.com");
	assert_int_equal(repo.ops->update(repo.self, &u, NULL, false, &updated_scratch), HEX_OK);

	struct user got;
	assert_int_equal(repo.ops->get(repo.self, u.id, &got), HEX_OK);
	assert_user_equal(&got, &u); /* created_at untouched, updated_at as given */
	char hash[HEX_HASH_MAX];
	assert_int_equal(repo.ops->get_hash(repo.self, u.id, hash, sizeof hash), HEX_OK);
	assert_string_equal(hash, "$y$hash-of-secret");

	assert_int_equal(repo.ops->update(repo.self, &u, "$y$new-hash", false, &updated_scratch),
	                 HEX_OK);
	assert_int_equal(repo.ops->get_hash(repo.self, u.id, hash, sizeof hash), HEX_OK);
	assert_string_equal(hash, "$y$new-hash");
	/* Its own email again, in another case, is not a conflict. */
	snprintf(u.email, sizeof u.email, "IVAN.NEW@example.com");
	assert_int_equal(repo.ops->update(repo.self, &u, NULL, false, &updated_scratch), HEX_OK);
}

static void test_update_never_writes_the_token_version(void **state)
{
	/* A copy read before a logout must not undo the logout when written back. */
	struct user stale = insert_user("iris@example.com", T0);
	struct user out;
	assert_int_equal(repo.ops->revoke_sessions(repo.self, stale.id, T0 + 10, &out), HEX_OK);
	assert_int_equal(out.token_version, 1);
	stale.membership = MEMBERSHIP_MEMBER;
	stale.updated_at_us = T0 + 20;
	stale.token_version = 0;
	assert_int_equal(repo.ops->update(repo.self, &stale, NULL, false, &updated_scratch),
	                 HEX_OK);
	struct user got;
	assert_int_equal(repo.ops->get(repo.self, stale.id, &got), HEX_OK);
	assert_int_equal(got.token_version, 1);
	assert_int_equal(got.membership, MEMBERSHIP_MEMBER);
	assert_int_equal(got.updated_at_us, T0 + 20);
}

static void test_update_conflict_changes_nothing(void **state)
{
	insert_user("judy@example.com", T0);
	struct user u = insert_user("kim@example.com", T0);
	struct user before = u;
	snprintf(u.email, sizeof u.email, "JUDY@example.com");
	u.membership = MEMBERSHIP_MEMBER;
	assert_int_equal(repo.ops->update(repo.self, &u, "$y$other", false, &updated_scratch),
	                 HEX_CONFLICT);

	struct user got;
	char hash[HEX_HASH_MAX];
	assert_int_equal(repo.ops->get(repo.self, u.id, &got), HEX_OK);
	assert_user_equal(&got, &before);
	assert_int_equal(repo.ops->get_hash(repo.self, u.id, hash, sizeof hash), HEX_OK);
	assert_string_equal(hash, "$y$hash-of-secret");
}

static void test_update_of_a_missing_user_is_not_found(void **state)
{
	struct user u = make_user("leo@example.com", T0);
	assert_int_equal(repo.ops->update(repo.self, &u, NULL, false, &updated_scratch),
	                 HEX_NOT_FOUND);
	snprintf(u.id, sizeof u.id, "nope");
	assert_int_equal(repo.ops->update(repo.self, &u, NULL, false, &updated_scratch),
	                 HEX_NOT_FOUND);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM users"), 0);
}

static struct refresh_record token_of(const struct user *u, int64_t expires_us)
{
	struct refresh_record r = {.expires_at_us = expires_us};
	new_id(r.jti);
	snprintf(r.user_id, sizeof r.user_id, "%s", u->id);
	snprintf(r.family_id, sizeof r.family_id, "%s", r.jti);
	assert_int_equal(refresh.ops->insert(refresh.self, &r), HEX_OK);
	return r;
}

static void test_remove_deletes_the_user_and_its_tokens(void **state)
{
	struct user u = insert_user("mia@example.com", T0);
	struct user other = insert_user("ned@example.com", T0);
	token_of(&u, T0 + 1000);
	token_of(&u, T0 + 2000);
	token_of(&other, T0 + 1000);

	assert_int_equal(repo.ops->remove(repo.self, u.id), HEX_OK);
	struct user got;
	assert_int_equal(repo.ops->get(repo.self, u.id, &got), HEX_NOT_FOUND);
	assert_int_equal(
	    count_where("SELECT count(*) FROM refresh_tokens WHERE user_id = '%s'", u.id), 0);
	assert_int_equal(
	    count_where("SELECT count(*) FROM refresh_tokens WHERE user_id = '%s'", other.id), 1);
	assert_int_equal(repo.ops->remove(repo.self, u.id), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->remove(repo.self, "bad"), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->get(repo.self, other.id, &got), HEX_OK);
}

static void test_update_ending_sessions_is_one_transaction(void **state)
{
	insert_user("quin@example.com", T0);
	struct user u = insert_user("rita@example.com", T0);
	token_of(&u, T0 + 1000000);
	struct user out;

	/* A conflict rolls back the whole change: sessions stay alive, version unchanged. */
	struct user clash = u;
	snprintf(clash.email, sizeof clash.email, "quin@example.com");
	assert_int_equal(repo.ops->update(repo.self, &clash, "$y$new", true, &out), HEX_CONFLICT);
	assert_int_equal(count_where("SELECT count(*) FROM refresh_tokens WHERE user_id = '%s' "
	                             "AND revoked_at IS NULL",
	                             u.id),
	                 1);
	struct user got;
	assert_int_equal(repo.ops->get(repo.self, u.id, &got), HEX_OK);
	assert_int_equal(got.token_version, 0);

	/* Success: hash replaced, version bumped, every refresh token revoked, out current. */
	u.updated_at_us = T0 + 5;
	assert_int_equal(repo.ops->update(repo.self, &u, "$y$new", true, &out), HEX_OK);
	assert_int_equal(out.token_version, 1);
	assert_int_equal(out.updated_at_us, T0 + 5);
	assert_int_equal(count_where("SELECT count(*) FROM refresh_tokens WHERE user_id = '%s' "
	                             "AND revoked_at IS NULL",
	                             u.id),
	                 0);
	char hash[HEX_HASH_MAX];
	assert_int_equal(repo.ops->get_hash(repo.self, u.id, hash, sizeof hash), HEX_OK);
	assert_string_equal(hash, "$y$new");
}

static void test_revoke_sessions_bumps_the_version_and_revokes_tokens(void **state)
{
	struct user u = insert_user("olga@example.com", T0);
	struct user other = insert_user("pete@example.com", T0);
	pg_testdb_exec(&db, "UPDATE users SET token_version = 3 WHERE email = 'olga@example.com'");
	token_of(&u, T0 + 1000000);
	token_of(&u, T0 + 2000000);
	struct refresh_record old = token_of(&u, T0 + 3000000);
	char sql[256];
	snprintf(sql, sizeof sql,
	         "UPDATE refresh_tokens SET revoked_at = '2020-01-01Z' WHERE jti = '%s'", old.jti);
	pg_testdb_exec(&db, sql);
	token_of(&other, T0 + 1000000);

	struct user out;
	int64_t now = T0 + 60000001;
	assert_int_equal(repo.ops->revoke_sessions(repo.self, u.id, now, &out), HEX_OK);
	assert_string_equal(out.id, u.id);
	assert_int_equal(out.token_version, 4);
	assert_int_equal(out.updated_at_us, now);
	assert_int_equal(out.created_at_us, T0);
	struct user got;
	assert_int_equal(repo.ops->get(repo.self, u.id, &got), HEX_OK);
	assert_user_equal(&got, &out);

	assert_int_equal(count_where("SELECT count(*) FROM refresh_tokens WHERE user_id = '%s' "
	                             "AND revoked_at IS NULL",
	                             u.id),
	                 0);
	assert_int_equal(count_where("SELECT count(*) FROM refresh_tokens WHERE user_id = '%s' "
	                             "AND revoked_at = '2025-11-29T18:01:00.123457Z'",
	                             u.id),
	                 2);
	/* An earlier revocation keeps its time; other users keep their sessions. */
	assert_int_equal(count_where("SELECT count(*) FROM refresh_tokens WHERE jti = '%s' "
	                             "AND revoked_at = '2020-01-01Z'",
	                             old.jti),
	                 1);
	assert_int_equal(count_where("SELECT count(*) FROM refresh_tokens WHERE user_id = '%s' "
	                             "AND revoked_at IS NULL",
	                             other.id),
	                 1);

	assert_int_equal(repo.ops->revoke_sessions(repo.self, u.id, now + 1, &out), HEX_OK);
	assert_int_equal(out.token_version, 5);
	char id[HEX_ID_LEN + 1];
	new_id(id);
	assert_int_equal(repo.ops->revoke_sessions(repo.self, id, now, &out), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->revoke_sessions(repo.self, "bad", now, &out), HEX_NOT_FOUND);
}

/* Asserts the page is in strictly ascending (created_at, id) order. */
static void assert_ordered(const struct user_page *p)
{
	for (int i = 1; i < p->count; i++) {
		const struct user *a = &p->items[i - 1], *b = &p->items[i];
		assert_true(a->created_at_us < b->created_at_us ||
		            (a->created_at_us == b->created_at_us && strcmp(a->id, b->id) < 0));
	}
}

static void test_list_filters(void **state)
{
	struct user_page *page = calloc(1, sizeof *page);
	struct user_filter f = {.membership = -1, .limit = 20};
	assert_int_equal(repo.ops->list(repo.self, &f, page), HEX_OK);
	assert_int_equal(page->count, 0);
	assert_false(page->has_more);

	struct user a = insert_user("a@example.com", T0 + 3);
	struct user b = insert_user("b@example.com", T0 + 1);
	struct user c = insert_user("c@example.com", T0 + 2);
	b.membership = MEMBERSHIP_MEMBER;
	assert_int_equal(repo.ops->update(repo.self, &b, NULL, false, &updated_scratch), HEX_OK);
	c.membership = MEMBERSHIP_MEMBER;
	assert_int_equal(repo.ops->update(repo.self, &c, NULL, false, &updated_scratch), HEX_OK);

	assert_int_equal(repo.ops->list(repo.self, &f, page), HEX_OK);
	assert_int_equal(page->count, 3);
	assert_false(page->has_more);
	assert_user_equal(&page->items[0], &b);
	assert_user_equal(&page->items[1], &c);
	assert_user_equal(&page->items[2], &a);

	f.membership = MEMBERSHIP_MEMBER;
	assert_int_equal(repo.ops->list(repo.self, &f, page), HEX_OK);
	assert_int_equal(page->count, 2);
	assert_string_equal(page->items[0].id, b.id);
	assert_string_equal(page->items[1].id, c.id);

	f.membership = MEMBERSHIP_FREE;
	assert_int_equal(repo.ops->list(repo.self, &f, page), HEX_OK);
	assert_int_equal(page->count, 1);
	assert_string_equal(page->items[0].id, a.id);

	f.membership = -1;
	f.email = "C@EXAMPLE.COM";
	assert_int_equal(repo.ops->list(repo.self, &f, page), HEX_OK);
	assert_int_equal(page->count, 1);
	assert_user_equal(&page->items[0], &c);
	f.membership = MEMBERSHIP_FREE; /* both filters apply */
	assert_int_equal(repo.ops->list(repo.self, &f, page), HEX_OK);
	assert_int_equal(page->count, 0);
	f.membership = MEMBERSHIP_MEMBER;
	struct user_cursor after_c = {.created_at_us = c.created_at_us};
	snprintf(after_c.id, sizeof after_c.id, "%s", c.id);
	f.after = &after_c; /* and the cursor too */
	assert_int_equal(repo.ops->list(repo.self, &f, page), HEX_OK);
	assert_int_equal(page->count, 0);
	f.email = "nobody@example.com";
	f.after = NULL;
	assert_int_equal(repo.ops->list(repo.self, &f, page), HEX_OK);
	assert_int_equal(page->count, 0);

	/* limit and has_more */
	f = (struct user_filter){.membership = -1, .limit = 2};
	assert_int_equal(repo.ops->list(repo.self, &f, page), HEX_OK);
	assert_int_equal(page->count, 2);
	assert_true(page->has_more);
	f.limit = 3;
	assert_int_equal(repo.ops->list(repo.self, &f, page), HEX_OK);
	assert_int_equal(page->count, 3);
	assert_false(page->has_more);
	free(page);
}

static void test_list_refuses_bad_arguments(void **state)
{
	struct user_page *page = calloc(1, sizeof *page);
	struct user_cursor bad_cursor = {.created_at_us = T0};
	snprintf(bad_cursor.id, sizeof bad_cursor.id, "garbage");
	const struct user_filter bad[] = {
	    {.membership = -1, .limit = 0},  {.membership = -1, .limit = HEX_LIST_MAX + 1},
	    {.membership = -1, .limit = -5}, {.membership = 2, .limit = 10},
	    {.membership = -2, .limit = 10}, {.membership = -1, .limit = 10, .after = &bad_cursor},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(repo.ops->list(repo.self, &bad[i], page), HEX_INVALID);
	const struct user_filter max = {.membership = -1, .limit = HEX_LIST_MAX};
	assert_int_equal(repo.ops->list(repo.self, &max, page), HEX_OK);
	free(page);
}

#define WALK_USERS 250

static void test_keyset_walk_returns_each_user_exactly_once(void **state)
{
	/* Ties on created_at (three users per microsecond) are broken by id. */
	static char ids[WALK_USERS + 200][HEX_ID_LEN + 1];
	static int seen[WALK_USERS + 200];
	int n = 0;
	for (int i = 0; i < WALK_USERS; i++) {
		char email[64];
		snprintf(email, sizeof email, "walk%d@example.com", i);
		struct user u = insert_user(email, T0 + i / 3);
		memcpy(ids[n++], u.id, sizeof u.id);
	}
	int originals = n;

	struct user_page *page = calloc(1, sizeof *page);
	struct user_cursor cur;
	struct user_filter f = {.membership = -1, .limit = 7};
	struct user last = {.created_at_us = INT64_MIN};
	int pages = 0, total = 0;
	for (;;) {
		assert_int_equal(repo.ops->list(repo.self, &f, page), HEX_OK);
		assert_ordered(page);
		for (int i = 0; i < page->count; i++) {
			const struct user *u = &page->items[i];
			/* Never behind the cursor: each page continues the last one. */
			assert_true(
			    u->created_at_us > last.created_at_us ||
			    (u->created_at_us == last.created_at_us && strcmp(u->id, last.id) > 0));
			last = *u;
			int k = 0;
			while (k < n && strcmp(ids[k], u->id) != 0)
				k++;
			assert_true(k < n); /* only users we made */
			seen[k]++;
			total++;
		}
		pages++;
		/* Writers keep going during the walk: some behind the cursor, some ahead. */
		char email[64];
		snprintf(email, sizeof email, "late%d@example.com", pages);
		struct user behind = insert_user(email, T0 - pages);
		(void)behind;
		snprintf(email, sizeof email, "ahead%d@example.com", pages);
		struct user ahead = insert_user(email, T0 + WALK_USERS + pages);
		memcpy(ids[n++], ahead.id, sizeof ahead.id);
		if (!page->has_more)
			break;
		assert_int_equal(page->count, f.limit);
		cur.created_at_us = page->items[page->count - 1].created_at_us;
		memcpy(cur.id, page->items[page->count - 1].id, sizeof cur.id);
		f.after = &cur;
		assert_true(pages < 200);
	}
	for (int k = 0; k < originals; k++)
		assert_int_equal(seen[k], 1);
	/* Users added ahead of the cursor are met once, except the one added after the end. */
	for (int k = originals; k < n - 1; k++)
		assert_int_equal(seen[k], 1);
	assert_int_equal(seen[n - 1], 0);
	assert_int_equal(total, originals + (n - 1 - originals));
	free(page);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_update_ending_sessions_is_one_transaction, setup),
	    cmocka_unit_test_setup(test_insert_then_get_returns_every_field, setup),
	    cmocka_unit_test_setup(test_timestamps_round_trip_to_the_microsecond, setup),
	    cmocka_unit_test_setup(test_get_unknown_or_malformed_id_is_not_found, setup),
	    cmocka_unit_test_setup(test_get_by_email_ignores_case_and_returns_the_hash, setup),
	    cmocka_unit_test_setup(test_duplicate_email_conflicts_in_any_case, setup),
	    cmocka_unit_test_setup(test_insert_refuses_a_malformed_id, setup),
	    cmocka_unit_test_setup(test_get_hash, setup),
	    cmocka_unit_test_setup(test_update_writes_fields_and_keeps_or_replaces_the_hash, setup),
	    cmocka_unit_test_setup(test_update_never_writes_the_token_version, setup),
	    cmocka_unit_test_setup(test_update_conflict_changes_nothing, setup),
	    cmocka_unit_test_setup(test_update_of_a_missing_user_is_not_found, setup),
	    cmocka_unit_test_setup(test_remove_deletes_the_user_and_its_tokens, setup),
	    cmocka_unit_test_setup(test_revoke_sessions_bumps_the_version_and_revokes_tokens,
	                           setup),
	    cmocka_unit_test_setup(test_list_filters, setup),
	    cmocka_unit_test_setup(test_list_refuses_bad_arguments, setup),
	    cmocka_unit_test_setup(test_keyset_walk_returns_each_user_exactly_once, setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
