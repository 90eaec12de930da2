/*
 * pg_message_repo against a real PostgreSQL: every method and error path, the cascade from
 * users, each list filter and the full text search, and keyset walks that stay exact while
 * another connection inserts messages all around the walk's position.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_message_repo.h"
#include "adapters/postgres/pg_user_repo.h"
#include "core/message_service.h"
#include "core/xmalloc.h"
#include "support/pg_testdb.h"

#define T0 INT64_C(1764439200123456) /* 2025-11-29T18:00:00.123456Z */
#define MS INT64_C(1000)

static struct pg_testdb db;
static struct pg_conn *conn;
static struct message_repo repo;
static struct user_repo users;
static atomic_uint id_counter;

static void new_id(char out[HEX_ID_LEN + 1])
{
	/* Not in creation order, so that ordering by id is really tested. */
	unsigned n = atomic_fetch_add(&id_counter, 1) + 1;
	snprintf(out, HEX_ID_LEN + 1, "%08x-0000-4000-8000-%012x", (n * 2654435761u), n);
}

static struct pg_conn *open_or_fail(void)
{
	struct hex_err err = {0};
	struct pg_conn *c = pg_conn_open(db.conninfo, &err);
	if (c == NULL)
		fail_msg("%s", err.message);
	return c;
}

static struct user insert_user(const char *email)
{
	struct user u = {.membership = MEMBERSHIP_FREE, .role = ROLE_USER};
	new_id(u.id);
	snprintf(u.email, sizeof u.email, "%s", email);
	u.created_at_us = u.updated_at_us = T0;
	assert_int_equal(users.ops->insert(users.self, &u, "$y$hash"), HEX_OK);
	return u;
}

/* A message of owner with a new id; body is borrowed. */
static struct message make_message(const struct user *owner, const char *body, int64_t at)
{
	struct message m = {.body = (char *)body, .created_at_us = at, .updated_at_us = at};
	new_id(m.id);
	memcpy(m.user_id, owner->id, sizeof m.user_id);
	return m;
}

static struct message insert_message(const struct user *owner, const char *body, int64_t at)
{
	struct message m = make_message(owner, body, at);
	assert_int_equal(repo.ops->insert(repo.self, &m), HEX_OK);
	return m;
}

static long long count_where(const char *fmt, const char *arg)
{
	char sql[512];
	snprintf(sql, sizeof sql, fmt, arg);
	return pg_testdb_scalar(&db, sql);
}

static void assert_message_equal(const struct message *a, const struct message *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->user_id, b->user_id);
	assert_string_equal(a->body, b->body);
	assert_int_equal(a->created_at_us, b->created_at_us);
	assert_int_equal(a->updated_at_us, b->updated_at_us);
}

static char *repeat(const char *unit, size_t n)
{
	size_t len = strlen(unit);
	char *s = xmalloc(len * n + 1);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * len, unit, len);
	s[len * n] = '\0';
	return s;
}

static int group_setup(void **state)
{
	pg_testdb_create_migrated(&db);
	conn = open_or_fail();
	repo = pg_message_repo_port(conn);
	users = pg_user_repo_port(conn);
	/* Every statement is valid SQL for the migrated schema. */
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
	return 0;
}

/* ---- single messages ---- */

static void test_insert_then_get_returns_every_field(void **state)
{
	struct user u = insert_user("ann@example.com");
	struct message m =
	    make_message(&u, "Grüße aus Köln \xf0\x9f\x98\x80\n\"quoted\" \\ back", T0);
	m.updated_at_us = T0 + 1;
	assert_int_equal(repo.ops->insert(repo.self, &m), HEX_OK);

	struct message got = {0};
	assert_int_equal(repo.ops->get(repo.self, m.id, &got), HEX_OK);
	assert_message_equal(&got, &m);
	assert_ptr_not_equal(got.body, m.body);
	message_clear(&got);
	/* Stored as given, to the microsecond. */
	assert_int_equal(count_where("SELECT count(*) FROM messages WHERE created_at = "
	                             "'2025-11-29T18:00:00.123456Z' AND id = '%s'",
	                             m.id),
	                 1);
	/* The upper-case spelling of an id is the same id. */
	char upper[HEX_ID_LEN + 1];
	for (int i = 0; i <= HEX_ID_LEN; i++)
		upper[i] = (char)(m.id[i] >= 'a' && m.id[i] <= 'f' ? m.id[i] - 32 : m.id[i]);
	assert_int_equal(repo.ops->get(repo.self, upper, &got), HEX_OK);
	message_clear(&got);
}

static void test_longest_bodies_round_trip(void **state)
{
	struct user u = insert_user("bea@example.com");
	const char *units[] = {"a", "\xc3\xbc", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
	for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
		char *body = repeat(units[i], HEX_MESSAGE_BODY_MAX);
		struct message m = insert_message(&u, body, T0 + (int64_t)i);
		struct message got = {0};
		assert_int_equal(repo.ops->get(repo.self, m.id, &got), HEX_OK);
		assert_string_equal(got.body, body);
		message_clear(&got);
		free(body);
	}
	/* The database holds the same character limit as the core, whatever the bytes. */
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM messages "
	                                       "WHERE char_length(body) = 10000"),
	                 4);
	char *over = repeat("\xc3\xbc", HEX_MESSAGE_BODY_MAX + 1);
	struct message m = make_message(&u, over, T0);
	assert_int_equal(repo.ops->insert(repo.self, &m), HEX_INTERNAL);
	m.body = "";
	new_id(m.id);
	assert_int_equal(repo.ops->insert(repo.self, &m), HEX_INTERNAL);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM messages"), 4);
	free(over);
}

static void test_insert_refuses_unknown_owner_and_bad_ids(void **state)
{
	struct user ghost = {0};
	new_id(ghost.id);
	struct message m = make_message(&ghost, "hello", T0);
	assert_int_equal(repo.ops->insert(repo.self, &m), HEX_NOT_FOUND);

	struct user u = insert_user("cat@example.com");
	m = make_message(&u, "hello", T0);
	snprintf(m.id, sizeof m.id, "nope");
	assert_int_equal(repo.ops->insert(repo.self, &m), HEX_INVALID);
	m = make_message(&u, "hello", T0);
	snprintf(m.user_id, sizeof m.user_id, "x");
	assert_int_equal(repo.ops->insert(repo.self, &m), HEX_INVALID);
	m = make_message(&u, NULL, T0);
	assert_int_equal(repo.ops->insert(repo.self, &m), HEX_INVALID);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM messages"), 0);

	/* The same id twice is a conflict, not a second row. */
	m = insert_message(&u, "once", T0);
	assert_int_equal(repo.ops->insert(repo.self, &m), HEX_CONFLICT);
}

static void test_get_unknown_or_malformed_id_is_not_found(void **state)
{
	struct message got = {0};
	char id[HEX_ID_LEN + 1];
	new_id(id);
	assert_int_equal(repo.ops->get(repo.self, id, &got), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->get(repo.self, "not-a-uuid", &got), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->get(repo.self, "", &got), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->get(repo.self, "'; DROP TABLE messages; --", &got),
	                 HEX_NOT_FOUND);
	assert_null(got.body);
}

static void test_update_body_by_owner_only(void **state)
{
	struct user u = insert_user("dan@example.com"), other = insert_user("eve@example.com");
	struct message m = insert_message(&u, "first", T0);

	struct message out = {0};
	assert_int_equal(repo.ops->update_body(repo.self, m.id, u.id, "second", T0 + 5, &out),
	                 HEX_OK);
	assert_string_equal(out.id, m.id);
	assert_string_equal(out.user_id, u.id);
	assert_string_equal(out.body, "second");
	assert_int_equal(out.created_at_us, T0);
	assert_int_equal(out.updated_at_us, T0 + 5);
	message_clear(&out);

	/* Someone else's id as owner, an unknown message, malformed ids: nothing changes. */
	char unknown[HEX_ID_LEN + 1];
	new_id(unknown);
	assert_int_equal(repo.ops->update_body(repo.self, m.id, other.id, "x", T0 + 9, &out),
	                 HEX_NOT_FOUND);
	assert_int_equal(repo.ops->update_body(repo.self, unknown, u.id, "x", T0 + 9, &out),
	                 HEX_NOT_FOUND);
	assert_int_equal(repo.ops->update_body(repo.self, "bad", u.id, "x", T0 + 9, &out),
	                 HEX_NOT_FOUND);
	assert_int_equal(repo.ops->update_body(repo.self, m.id, "bad", "x", T0 + 9, &out),
	                 HEX_NOT_FOUND);
	assert_null(out.body);
	struct message got = {0};
	assert_int_equal(repo.ops->get(repo.self, m.id, &got), HEX_OK);
	assert_string_equal(got.body, "second");
	assert_int_equal(got.updated_at_us, T0 + 5);
	message_clear(&got);

	/* The search follows the body. */
	assert_int_equal(count_where("SELECT count(*) FROM messages WHERE id = '%s' "
	                             "AND search @@ to_tsquery('simple', 'second')",
	                             m.id),
	                 1);
}

static void test_remove(void **state)
{
	struct user u = insert_user("fay@example.com");
	struct message a = insert_message(&u, "a", T0), b = insert_message(&u, "b", T0);
	assert_int_equal(repo.ops->remove(repo.self, a.id), HEX_OK);
	struct message got = {0};
	assert_int_equal(repo.ops->get(repo.self, a.id, &got), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->remove(repo.self, a.id), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->remove(repo.self, "bad"), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->get(repo.self, b.id, &got), HEX_OK);
	message_clear(&got);
}

static void test_deleting_a_user_deletes_its_messages(void **state)
{
	struct user u = insert_user("gus@example.com"), other = insert_user("hal@example.com");
	for (int i = 0; i < 5; i++)
		insert_message(&u, "mine", T0 + i);
	struct message kept = insert_message(&other, "theirs", T0);

	/* The user repository's one DELETE statement: the cascade runs inside it. */
	assert_int_equal(users.ops->remove(users.self, u.id), HEX_OK);
	assert_int_equal(count_where("SELECT count(*) FROM messages WHERE user_id = '%s'", u.id),
	                 0);
	struct message got = {0};
	assert_int_equal(repo.ops->get(repo.self, kept.id, &got), HEX_OK);
	message_clear(&got);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM pg_constraint "
	                                       "WHERE conrelid = 'messages'::regclass "
	                                       "AND contype = 'f' AND confdeltype = 'c'"),
	                 1);
}

/* ---- lists ---- */

static struct message_page *page_new(void)
{
	return xcalloc(1, sizeof(struct message_page));
}

/* Asserts the page is in strictly descending (created_at, id) order. */
static void assert_newest_first(const struct message_page *p)
{
	for (int i = 1; i < p->count; i++) {
		const struct message *a = &p->items[i - 1], *b = &p->items[i];
		assert_true(a->created_at_us > b->created_at_us ||
		            (a->created_at_us == b->created_at_us && strcmp(a->id, b->id) > 0));
	}
}

/* The bodies of one page of f, in order, space-separated, into out. */
static void list_bodies(const struct message_filter *f, char *out, size_t n)
{
	struct message_page *p = page_new();
	assert_int_equal(repo.ops->list(repo.self, f, p), HEX_OK);
	assert_newest_first(p);
	out[0] = '\0';
	for (int i = 0; i < p->count; i++) {
		strncat(out, p->items[i].body, n - strlen(out) - 1);
		strncat(out, i + 1 < p->count ? " " : "", n - strlen(out) - 1);
	}
	message_page_clear(p);
	free(p);
}

static void assert_list(const struct message_filter *f, const char *want)
{
	char got[2048];
	list_bodies(f, got, sizeof got);
	assert_string_equal(got, want);
}

static void test_list_filters(void **state)
{
	struct user a = insert_user("ida@example.com"), b = insert_user("jon@example.com");
	insert_message(&a, "a1", T0);
	insert_message(&b, "b1", T0 + 1 * MS);
	insert_message(&a, "a2", T0 + 2 * MS);
	insert_message(&b, "b2", T0 + 3 * MS);
	insert_message(&a, "a3", T0 + 4 * MS);

	struct message_filter f = {.limit = 20};
	assert_list(&f, "a3 b2 a2 b1 a1");
	f.user_id = a.id;
	assert_list(&f, "a3 a2 a1");
	f.user_id = b.id;
	assert_list(&f, "b2 b1");
	char unknown[HEX_ID_LEN + 1];
	new_id(unknown);
	f.user_id = unknown;
	assert_list(&f, "");

	/* since is inclusive, until exclusive, to the microsecond. */
	f = (struct message_filter){.limit = 20, .has_since = true, .since_us = T0 + 1 * MS};
	assert_list(&f, "a3 b2 a2 b1");
	f.since_us = T0 + 1 * MS + 1;
	assert_list(&f, "a3 b2 a2");
	f = (struct message_filter){.limit = 20, .has_until = true, .until_us = T0 + 3 * MS};
	assert_list(&f, "a2 b1 a1");
	f.until_us = T0 + 3 * MS + 1;
	assert_list(&f, "b2 a2 b1 a1");
	f.has_since = true;
	f.since_us = T0 + 2 * MS;
	assert_list(&f, "b2 a2");
	f.user_id = a.id;
	assert_list(&f, "a2");
	f.since_us = f.until_us;
	assert_list(&f, "");

	/* limit, and one more row tells has_more. */
	struct message_page *p = page_new();
	f = (struct message_filter){.limit = 2};
	assert_int_equal(repo.ops->list(repo.self, &f, p), HEX_OK);
	assert_int_equal(p->count, 2);
	assert_true(p->has_more);
	message_page_clear(p);
	f.limit = 5;
	assert_int_equal(repo.ops->list(repo.self, &f, p), HEX_OK);
	assert_int_equal(p->count, 5);
	assert_false(p->has_more);
	message_page_clear(p);
	free(p);
}

static void test_list_cursor_breaks_ties_by_id(void **state)
{
	struct user a = insert_user("kay@example.com");
	/* Five messages in the same microsecond: only the id orders them. */
	char ids[5][HEX_ID_LEN + 1];
	for (int i = 0; i < 5; i++)
		memcpy(ids[i], insert_message(&a, "tie", T0).id, HEX_ID_LEN + 1);
	struct message_page *p = page_new();
	struct message_filter f = {.limit = 2};
	struct message_cursor after;
	int seen = 0;
	for (;;) {
		assert_int_equal(repo.ops->list(repo.self, &f, p), HEX_OK);
		assert_newest_first(p);
		seen += p->count;
		if (!p->has_more)
			break;
		after =
		    (struct message_cursor){.created_at_us = p->items[p->count - 1].created_at_us};
		memcpy(after.id, p->items[p->count - 1].id, sizeof after.id);
		f.after = &after;
		message_page_clear(p);
	}
	message_page_clear(p);
	assert_int_equal(seen, 5);

	/* A position between rows that exist: everything strictly older, in order. */
	after = (struct message_cursor){.created_at_us = T0 + 1};
	strcpy(after.id, "00000000-0000-0000-0000-000000000000");
	f = (struct message_filter){.limit = 20, .after = &after};
	assert_int_equal(repo.ops->list(repo.self, &f, p), HEX_OK);
	assert_int_equal(p->count, 5);
	message_page_clear(p);
	after.created_at_us = T0;
	assert_int_equal(repo.ops->list(repo.self, &f, p), HEX_OK);
	assert_int_equal(p->count, 0);
	free(p);
}

static void test_search_finds_words_in_any_case_and_language(void **state)
{
	struct user a = insert_user("lee@example.com"), b = insert_user("max@example.com");
	insert_message(&a, "Lunch at noon, then the Meeting", T0);
	insert_message(&a, "MEETING notes: budget", T0 + 1 * MS);
	insert_message(&b, "Grüße aus Köln", T0 + 2 * MS);
	insert_message(&b, "lunch meeting moved", T0 + 3 * MS);
	insert_message(&a, "東京 trip", T0 + 4 * MS);
	insert_message(&b, "e-mail me at x@example.com", T0 + 5 * MS);

	struct message_filter f = {.limit = 20, .query = "meeting"};
	char got[2048];
	list_bodies(&f, got, sizeof got);
	assert_string_equal(got,
	                    "lunch meeting moved MEETING notes: budget Lunch at noon, then the "
	                    "Meeting");
	f.query = "LUNCH meeting"; /* every word, in any order and case */
	list_bodies(&f, got, sizeof got);
	assert_string_equal(got, "lunch meeting moved Lunch at noon, then the Meeting");
	f.query = "\"lunch meeting\""; /* a phrase */
	assert_list(&f, "lunch meeting moved");
	f.query = "meeting -lunch"; /* websearch syntax: exclusion */
	assert_list(&f, "MEETING notes: budget");
	f.query = "budget or köln";
	assert_list(&f, "Grüße aus Köln MEETING notes: budget");
	f.query = "GRÜSSE"; /* no stemming and no folding of ß: words, lower-cased */
	assert_list(&f, "");
	f.query = "grüße";
	assert_list(&f, "Grüße aus Köln");
	f.query = "東京";
	assert_list(&f, "東京 trip");
	f.query = "x@example.com";
	assert_list(&f, "e-mail me at x@example.com");
	f.query = "meet"; /* whole words, not prefixes */
	assert_list(&f, "");
	f.query = "!!! ???"; /* nothing to search for matches nothing */
	assert_list(&f, "");
	f.query = "'; DROP TABLE messages; --";
	assert_list(&f, "");
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM messages"), 6);

	/* Combined with the owner, time bounds and a cursor. */
	f = (struct message_filter){.limit = 20, .query = "meeting", .user_id = a.id};
	assert_list(&f, "MEETING notes: budget Lunch at noon, then the Meeting");
	f.has_since = true;
	f.since_us = T0 + 1;
	assert_list(&f, "MEETING notes: budget");
	struct message_cursor after = {.created_at_us = T0 + 1 * MS};
	strcpy(after.id, "ffffffff-ffff-ffff-ffff-ffffffffffff");
	f = (struct message_filter){.limit = 20, .query = "meeting", .after = &after};
	assert_list(&f, "MEETING notes: budget Lunch at noon, then the Meeting");
	strcpy(after.id, "00000000-0000-0000-0000-000000000000");
	assert_list(&f, "Lunch at noon, then the Meeting");

	/* The search has a limit and has_more like any list. */
	struct message_page *p = page_new();
	f = (struct message_filter){.limit = 1, .query = "meeting"};
	assert_int_equal(repo.ops->list(repo.self, &f, p), HEX_OK);
	assert_int_equal(p->count, 1);
	assert_true(p->has_more);
	message_page_clear(p);
	free(p);
}

static void test_list_refuses_bad_arguments(void **state)
{
	struct message_page *p = page_new();
	struct message_filter f = {.limit = 0};
	assert_int_equal(repo.ops->list(repo.self, &f, p), HEX_INVALID);
	f.limit = HEX_LIST_MAX + 1;
	assert_int_equal(repo.ops->list(repo.self, &f, p), HEX_INVALID);
	f = (struct message_filter){.limit = 1, .user_id = "me"};
	assert_int_equal(repo.ops->list(repo.self, &f, p), HEX_INVALID);
	struct message_cursor after = {.created_at_us = T0, .id = "zz"};
	f = (struct message_filter){.limit = 1, .after = &after};
	assert_int_equal(repo.ops->list(repo.self, &f, p), HEX_INVALID);
	assert_int_equal(p->count, 0);
	free(p);
}

/* ---- keyset walks under concurrent inserts ---- */

#define WALK_N      500
#define WALK_MAX    (WALK_N + 4000)
#define WALK_OWNERS 2

struct inserter {
	const struct user *owners;
	int64_t lo_us, hi_us; /* inserts land anywhere in [lo, hi) */
	atomic_int inserted;
	atomic_int target; /* the walk asks for a few rows between two pages */
	atomic_bool stop;
	atomic_int failure; /* an enum hex_status; cmocka asserts only on the main thread */
	char failure_text[256];
};

/* A second connection inserting messages all over the walk's range, and newer ones. */
static void *inserter_run(void *arg)
{
	struct inserter *in = arg;
	struct hex_err err = {0};
	struct pg_conn *c = pg_conn_open(db.conninfo, &err);
	if (c == NULL) {
		snprintf(in->failure_text, sizeof in->failure_text, "%s", err.message);
		atomic_store(&in->failure, HEX_UNAVAILABLE);
		return NULL;
	}
	struct message_repo r = pg_message_repo_port(c);
	unsigned seed = 12345;
	struct timespec nap = {0, 200000};
	while (!atomic_load(&in->stop)) {
		int k = atomic_load(&in->inserted);
		if (k >= atomic_load(&in->target)) {
			nanosleep(&nap, NULL);
			continue;
		}
		int64_t span = in->hi_us - in->lo_us;
		int64_t at = in->lo_us + (int64_t)(rand_r(&seed) % (unsigned)span);
		if (k % 5 == 0)
			at = in->hi_us + k; /* newer than everything, as real new posts are */
		struct message m = make_message(&in->owners[k % WALK_OWNERS],
		                                k % 2 ? "late apple" : "late pear", at);
		enum hex_status st = r.ops->insert(r.self, &m);
		if (st != HEX_OK) {
			snprintf(in->failure_text, sizeof in->failure_text, "insert %d: %s", k,
			         hex_status_name(st));
			atomic_store(&in->failure, st);
			break;
		}
		atomic_fetch_add(&in->inserted, 1);
	}
	pg_conn_free(c);
	return NULL;
}

/* Lets the inserter commit n more rows and waits until it has. */
static void let_insert(struct inserter *in, int n)
{
	int at_least = atomic_fetch_add(&in->target, n) + n;
	struct timespec nap = {0, 1000000};
	for (int i = 0; i < 10000 && atomic_load(&in->inserted) < at_least; i++) {
		if (atomic_load(&in->failure) != HEX_OK)
			break;
		nanosleep(&nap, NULL);
	}
	if (atomic_load(&in->inserted) < at_least)
		fail_msg("the concurrent inserter stalled (%s)", in->failure_text);
}

struct walk_seed {
	char id[HEX_ID_LEN + 1];
	int owner;
	bool apple;
	int64_t at;
};

static int count_in(char (*ids)[HEX_ID_LEN + 1], int n, const char *id)
{
	int c = 0;
	for (int i = 0; i < n; i++)
		c += strcmp(ids[i], id) == 0;
	return c;
}

/*
 * Walks every page of base with limit while the inserter runs, checking that the whole
 * walk is strictly newest first and that each pre-existing message that matches appears
 * exactly once (wanted says which).
 */
static void walk_exactly_once(const struct walk_seed *seeds, const bool *wanted,
                              struct message_filter base, struct inserter *in)
{
	char(*seen)[HEX_ID_LEN + 1] = xcalloc(WALK_MAX, HEX_ID_LEN + 1);
	struct message_page *p = page_new();
	struct message_cursor after;
	struct message_filter f = base;
	struct message last = {0};
	int n = 0, pages = 0;
	for (;;) {
		assert_int_equal(repo.ops->list(repo.self, &f, p), HEX_OK);
		assert_newest_first(p);
		if (n > 0 && p->count > 0) {
			const struct message *first = &p->items[0];
			assert_true(first->created_at_us < last.created_at_us ||
			            (first->created_at_us == last.created_at_us &&
			             strcmp(first->id, last.id) < 0));
		}
		for (int i = 0; i < p->count; i++) {
			assert_true(n < WALK_MAX);
			memcpy(seen[n++], p->items[i].id, HEX_ID_LEN + 1);
		}
		pages++;
		if (!p->has_more)
			break;
		last = p->items[p->count - 1];
		last.body = NULL;
		after = (struct message_cursor){.created_at_us = last.created_at_us};
		memcpy(after.id, last.id, sizeof after.id);
		f.after = &after;
		message_page_clear(p);
		/* Between every two pages, the other connection commits more rows. */
		let_insert(in, 3);
	}
	message_page_clear(p);
	assert_true(pages > 10);
	int expected = 0;
	for (int i = 0; i < WALK_N; i++) {
		int c = count_in(seen, n, seeds[i].id);
		if (wanted[i] && c != 1)
			fail_msg("pre-existing message %d (%s) seen %d times", i, seeds[i].id, c);
		if (!wanted[i] && c != 0)
			fail_msg("message %d (%s) does not match but was listed", i, seeds[i].id);
		expected += wanted[i];
	}
	assert_true(expected > 0);
	assert_true(n >= expected);
	free(seen);
	free(p);
}

static void test_keyset_walks_return_each_message_exactly_once(void **state)
{
	struct user owners[WALK_OWNERS] = {insert_user("ned@example.com"),
	                                   insert_user("ora@example.com")};
	struct walk_seed *seeds = xcalloc(WALK_N, sizeof *seeds);
	bool *wanted = xcalloc(WALK_N, sizeof *wanted);
	for (int i = 0; i < WALK_N; i++) {
		seeds[i].owner = (i * 7) % WALK_OWNERS;
		seeds[i].apple = i % 3 != 0;
		seeds[i].at = T0 + (i / 3) * MS; /* triples share a timestamp */
		struct message m = insert_message(
		    &owners[seeds[i].owner], seeds[i].apple ? "an apple" : "a pear", seeds[i].at);
		memcpy(seeds[i].id, m.id, sizeof seeds[i].id);
	}
	struct inserter in = {.owners = owners, .lo_us = T0, .hi_us = T0 + (WALK_N / 3 + 1) * MS};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, inserter_run, &in), 0);

	const struct {
		const char *user_id; /* set below */
		int owner;           /* -1: every owner */
		const char *query;
		int limit;
		bool ranged;
	} walks[] = {
	    {NULL, -1, NULL, 7, false},     {NULL, 0, NULL, 11, false},
	    {NULL, -1, "apple", 13, false}, {NULL, 1, "apple", 5, false},
	    {NULL, -1, NULL, 9, true},
	};
	int64_t since = T0 + 50 * MS, until = T0 + 120 * MS;
	for (size_t w = 0; w < sizeof walks / sizeof *walks; w++) {
		struct message_filter f = {.limit = walks[w].limit, .query = walks[w].query};
		if (walks[w].owner >= 0)
			f.user_id = owners[walks[w].owner].id;
		if (walks[w].ranged) {
			f.has_since = f.has_until = true;
			f.since_us = since;
			f.until_us = until;
		}
		for (int i = 0; i < WALK_N; i++)
			wanted[i] =
			    (walks[w].owner < 0 || seeds[i].owner == walks[w].owner) &&
			    (walks[w].query == NULL || seeds[i].apple) &&
			    (!walks[w].ranged || (seeds[i].at >= since && seeds[i].at < until));
		walk_exactly_once(seeds, wanted, f, &in);
	}
	atomic_store(&in.stop, true);
	pthread_join(t, NULL);
	if (atomic_load(&in.failure) != HEX_OK)
		fail_msg("concurrent inserter: %s", in.failure_text);
	assert_true(atomic_load(&in.inserted) > 100);
	free(seeds);
	free(wanted);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_insert_then_get_returns_every_field, setup),
	    cmocka_unit_test_setup(test_longest_bodies_round_trip, setup),
	    cmocka_unit_test_setup(test_insert_refuses_unknown_owner_and_bad_ids, setup),
	    cmocka_unit_test_setup(test_get_unknown_or_malformed_id_is_not_found, setup),
	    cmocka_unit_test_setup(test_update_body_by_owner_only, setup),
	    cmocka_unit_test_setup(test_remove, setup),
	    cmocka_unit_test_setup(test_deleting_a_user_deletes_its_messages, setup),
	    cmocka_unit_test_setup(test_list_filters, setup),
	    cmocka_unit_test_setup(test_list_cursor_breaks_ties_by_id, setup),
	    cmocka_unit_test_setup(test_search_finds_words_in_any_case_and_language, setup),
	    cmocka_unit_test_setup(test_list_refuses_bad_arguments, setup),
	    cmocka_unit_test_setup(test_keyset_walks_return_each_message_exactly_once, setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
