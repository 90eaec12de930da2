/* test_message_service: the message use cases and their rules against in-memory fakes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "support/fakes.h"

#define T0_US        (FAKE_T0_S * 1000000LL)
#define UNKNOWN_ID   "00000000-0000-4000-8000-0000deadbeef"
#define DB_DOWN_MSG  "the database is unavailable"
#define INTERNAL_MSG "internal error"

struct world {
	struct fake_world *w;
	struct user alice, bob, admin;
};

static int setup(void **state)
{
	struct world *t = xcalloc(1, sizeof *t);
	t->w = fake_world_new();
	struct user *users[] = {&t->alice, &t->bob, &t->admin};
	const char *emails[] = {"alice@example.com", "bob@example.com", "root@example.com"};
	for (int i = 0; i < 3; i++) {
		struct hex_err err = {0};
		if (user_service_create(&t->w->users, emails[i], "password-1", users[i], &err) !=
		    HEX_OK)
			fail_msg("create %s: %s", emails[i], err.message);
	}
	struct hex_err err = {0};
	if (user_service_set_role(&t->w->users, t->admin.id, ROLE_ADMIN, &t->admin, &err) != HEX_OK)
		fail_msg("grant admin: %s", err.message);
	fake_world_reset_calls(t->w);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct world *t = *state;
	fake_world_free(t->w);
	free(t);
	return 0;
}

static int msg_calls(struct world *t, const char *op)
{
	return fake_calls(&t->w->messages_repo.base, op);
}

static void assert_err(const struct hex_err *err, const char *field, const char *message)
{
	if (field == NULL)
		assert_null(err->field);
	else
		assert_string_equal(err->field, field);
	assert_string_equal(err->message, message);
}

/* Posts body as u, one second after the previous post; returns the stored message. */
static struct message post(struct world *t, const struct user *u, const char *body)
{
	struct message m = {0};
	struct hex_err err = {0};
	fake_clock_advance_s(&t->w->clock, 1);
	enum hex_status st = message_service_create(&t->w->messages, u, body, &m, &err);
	if (st != HEX_OK)
		fail_msg("post as %s: %s: %s", u->email, hex_status_name(st), err.message);
	return m;
}

/* post() without keeping the result; returns the id in out. */
static void post_id(struct world *t, const struct user *u, const char *body,
                    char out[HEX_ID_LEN + 1])
{
	struct message m = post(t, u, body);
	memcpy(out, m.id, HEX_ID_LEN + 1);
	message_clear(&m);
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

/* ---- create ---- */

static void create_makes_the_caller_the_owner(void **state)
{
	struct world *t = *state;
	char body[] = "hello, world";
	struct message m = {0};
	struct hex_err err = {0};
	assert_int_equal(message_service_create(&t->w->messages, &t->alice, body, &m, &err),
	                 HEX_OK);
	assert_true(message_id_valid(m.id));
	assert_string_equal(m.user_id, t->alice.id);
	assert_string_equal(m.body, "hello, world");
	assert_ptr_not_equal(m.body, body); /* the caller's own copy */
	assert_int_equal(m.created_at_us, T0_US);
	assert_int_equal(m.updated_at_us, T0_US);

	const struct message *row = fake_message_repo_find(&t->w->messages_repo, m.id);
	assert_non_null(row);
	assert_string_equal(row->user_id, t->alice.id);
	assert_string_equal(row->body, "hello, world");
	assert_int_equal(row->created_at_us, T0_US);
	assert_int_equal(msg_calls(t, "insert"), 1);
	message_clear(&m);
}

static void create_gives_each_message_its_own_id(void **state)
{
	struct world *t = *state;
	struct message a = post(t, &t->alice, "one"), b = post(t, &t->alice, "two");
	assert_string_not_equal(a.id, b.id);
	assert_true(b.created_at_us > a.created_at_us);
	assert_int_equal(t->w->messages_repo.count, 2);
	message_clear(&a);
	message_clear(&b);
}

static void create_refuses_bad_bodies_before_storing(void **state)
{
	struct world *t = *state;
	char *over = repeat("\xc3\xbc", HEX_MESSAGE_BODY_MAX + 1);
	const struct {
		const char *body;
		const char *message;
	} cases[] = {
	    {NULL, "body is required"},
	    {"", "body must not be empty"},
	    {" \n\t ", "body must not be empty"},
	    {"caf\xe9", "body must be valid UTF-8"},
	    {over, "body must be at most 10000 characters"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct message m = {0};
		struct hex_err err = {0};
		assert_int_equal(
		    message_service_create(&t->w->messages, &t->alice, cases[i].body, &m, &err),
		    HEX_INVALID);
		assert_err(&err, "body", cases[i].message);
		assert_null(m.body);
	}
	assert_int_equal(msg_calls(t, "insert"), 0);
	assert_int_equal(t->w->messages_repo.count, 0);
	free(over);
}

static void create_takes_exactly_10000_characters_of_any_width(void **state)
{
	struct world *t = *state;
	const char *units[] = {"a", "\xc3\xbc", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
	for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
		char *max = repeat(units[i], HEX_MESSAGE_BODY_MAX);
		char *over = repeat(units[i], HEX_MESSAGE_BODY_MAX + 1);
		struct message m = {0};
		struct hex_err err = {0};
		assert_int_equal(message_service_create(&t->w->messages, &t->bob, max, &m, &err),
		                 HEX_OK);
		assert_string_equal(m.body, max);
		message_clear(&m);
		assert_int_equal(message_service_create(&t->w->messages, &t->bob, over, &m, &err),
		                 HEX_INVALID);
		assert_err(&err, "body", "body must be at most 10000 characters");
		free(max);
		free(over);
	}
	assert_int_equal(t->w->messages_repo.count, 4);
}

static void create_for_a_deleted_owner_is_unauthenticated(void **state)
{
	struct world *t = *state;
	struct hex_err err = {0};
	assert_int_equal(user_service_delete(&t->w->users, t->bob.id, &err), HEX_OK);
	struct message m = {0};
	assert_int_equal(message_service_create(&t->w->messages, &t->bob, "late", &m, &err),
	                 HEX_UNAUTHENTICATED);
	assert_err(&err, NULL, "the user of this token is gone");
	assert_null(m.body);
	assert_int_equal(t->w->messages_repo.count, 0);
}

static void create_reports_repository_failures(void **state)
{
	struct world *t = *state;
	const struct {
		enum hex_status fault, want;
		const char *message;
	} cases[] = {
	    {HEX_UNAVAILABLE, HEX_UNAVAILABLE, DB_DOWN_MSG},
	    {HEX_INTERNAL, HEX_INTERNAL, INTERNAL_MSG},
	    {HEX_CONFLICT, HEX_INTERNAL, INTERNAL_MSG}, /* an id collision is a bug */
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct message m = {0};
		struct hex_err err = {0};
		fake_fail_next(&t->w->messages_repo.base, "insert", cases[i].fault);
		assert_int_equal(message_service_create(&t->w->messages, &t->alice, "x", &m, &err),
		                 cases[i].want);
		assert_err(&err, NULL, cases[i].message);
		assert_null(m.body);
	}
	assert_int_equal(t->w->messages_repo.count, 0);
}

/* ---- read ---- */

static void read_by_owner_and_by_admin(void **state)
{
	struct world *t = *state;
	struct message posted = post(t, &t->alice, "mine");
	const struct user *readers[] = {&t->alice, &t->admin};
	for (int i = 0; i < 2; i++) {
		struct message m = {0};
		struct hex_err err = {0};
		assert_int_equal(
		    message_service_read(&t->w->messages, readers[i], posted.id, &m, &err), HEX_OK);
		assert_string_equal(m.id, posted.id);
		assert_string_equal(m.user_id, t->alice.id);
		assert_string_equal(m.body, "mine");
		assert_int_equal(m.created_at_us, posted.created_at_us);
		assert_int_equal(m.updated_at_us, posted.updated_at_us);
		message_clear(&m);
	}
	message_clear(&posted);
}

static void read_of_another_users_message_is_forbidden(void **state)
{
	struct world *t = *state;
	char id[HEX_ID_LEN + 1];
	post_id(t, &t->alice, "private", id);
	struct message m = {0};
	struct hex_err err = {0};
	assert_int_equal(message_service_read(&t->w->messages, &t->bob, id, &m, &err),
	                 HEX_FORBIDDEN);
	assert_err(&err, NULL, "you may only access your own messages");
	assert_null(m.body); /* nothing of the message leaks out (and nothing leaks) */
}

static void read_unknown_or_malformed_id_is_not_found(void **state)
{
	struct world *t = *state;
	const char *ids[] = {UNKNOWN_ID, "not-a-uuid", "", "00000000-0000-4000-8000-00000000000"};
	for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
		struct message m = {0};
		struct hex_err err = {0};
		assert_int_equal(message_service_read(&t->w->messages, &t->admin, ids[i], &m, &err),
		                 HEX_NOT_FOUND);
		assert_err(&err, NULL, "message not found");
	}
	/* Only the well-formed id was looked up. */
	assert_int_equal(msg_calls(t, "get"), 1);
}

static void read_reports_repository_failures(void **state)
{
	struct world *t = *state;
	char id[HEX_ID_LEN + 1];
	post_id(t, &t->alice, "x", id);
	struct message m = {0};
	struct hex_err err = {0};
	fake_fail_next(&t->w->messages_repo.base, "get", HEX_UNAVAILABLE);
	assert_int_equal(message_service_read(&t->w->messages, &t->alice, id, &m, &err),
	                 HEX_UNAVAILABLE);
	assert_err(&err, NULL, DB_DOWN_MSG);
	fake_fail_next(&t->w->messages_repo.base, "get", HEX_INTERNAL);
	assert_int_equal(message_service_read(&t->w->messages, &t->alice, id, &m, &err),
	                 HEX_INTERNAL);
	assert_err(&err, NULL, INTERNAL_MSG);
}

/* ---- update ---- */

static void update_by_owner_changes_only_body_and_updated_at(void **state)
{
	struct world *t = *state;
	struct message posted = post(t, &t->alice, "first draft");
	fake_clock_advance_s(&t->w->clock, 30);
	struct message m = {0};
	struct hex_err err = {0};
	assert_int_equal(
	    message_service_update(&t->w->messages, &t->alice, posted.id, "second draft", &m, &err),
	    HEX_OK);
	assert_string_equal(m.id, posted.id);
	assert_string_equal(m.user_id, t->alice.id);
	assert_string_equal(m.body, "second draft");
	assert_int_equal(m.created_at_us, posted.created_at_us);
	assert_int_equal(m.updated_at_us, posted.created_at_us + 30 * 1000000LL);
	const struct message *row = fake_message_repo_find(&t->w->messages_repo, posted.id);
	assert_string_equal(row->body, "second draft");
	assert_int_equal(row->updated_at_us, m.updated_at_us);
	message_clear(&m);
	message_clear(&posted);
}

static void update_is_for_the_owner_only_even_for_admins(void **state)
{
	struct world *t = *state;
	char id[HEX_ID_LEN + 1];
	post_id(t, &t->alice, "original", id);
	const struct user *others[] = {&t->bob, &t->admin};
	for (int i = 0; i < 2; i++) {
		struct message m = {0};
		struct hex_err err = {0};
		assert_int_equal(
		    message_service_update(&t->w->messages, others[i], id, "hijacked", &m, &err),
		    HEX_FORBIDDEN);
		assert_err(&err, NULL, "you may only change your own messages");
		assert_null(m.body);
	}
	assert_string_equal(fake_message_repo_find(&t->w->messages_repo, id)->body, "original");
	assert_int_equal(msg_calls(t, "update_body"), 0);

	/* An admin changes its own messages like anyone. */
	char own[HEX_ID_LEN + 1];
	post_id(t, &t->admin, "admin note", own);
	struct message m = {0};
	struct hex_err err = {0};
	assert_int_equal(
	    message_service_update(&t->w->messages, &t->admin, own, "admin note 2", &m, &err),
	    HEX_OK);
	message_clear(&m);
}

static void update_checks_the_body_before_anything_else(void **state)
{
	struct world *t = *state;
	char id[HEX_ID_LEN + 1];
	post_id(t, &t->alice, "keep me", id);
	char *over = repeat("\xe2\x82\xac", HEX_MESSAGE_BODY_MAX + 1);
	const char *bodies[] = {NULL, "", "   ", "\xff", over};
	fake_world_reset_calls(t->w);
	for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
		/* Also on a message of someone else and on an unknown one: 400 comes first. */
		const char *targets[] = {id, UNKNOWN_ID};
		for (int k = 0; k < 2; k++) {
			struct message m = {0};
			struct hex_err err = {0};
			assert_int_equal(message_service_update(&t->w->messages, &t->bob,
			                                        targets[k], bodies[i], &m, &err),
			                 HEX_INVALID);
			assert_string_equal(err.field, "body");
		}
	}
	assert_int_equal(msg_calls(t, "get"), 0);
	assert_int_equal(msg_calls(t, "update_body"), 0);
	assert_string_equal(fake_message_repo_find(&t->w->messages_repo, id)->body, "keep me");
	free(over);
}

static void update_unknown_malformed_or_vanished_message_is_not_found(void **state)
{
	struct world *t = *state;
	const char *ids[] = {UNKNOWN_ID, "nope"};
	for (int i = 0; i < 2; i++) {
		struct message m = {0};
		struct hex_err err = {0};
		assert_int_equal(
		    message_service_update(&t->w->messages, &t->alice, ids[i], "x", &m, &err),
		    HEX_NOT_FOUND);
		assert_err(&err, NULL, "message not found");
	}
	/* Deleted between the ownership check and the write. */
	char id[HEX_ID_LEN + 1];
	post_id(t, &t->alice, "x", id);
	fake_fail_next(&t->w->messages_repo.base, "update_body", HEX_NOT_FOUND);
	struct message m = {0};
	struct hex_err err = {0};
	assert_int_equal(message_service_update(&t->w->messages, &t->alice, id, "y", &m, &err),
	                 HEX_NOT_FOUND);
	assert_err(&err, NULL, "message not found");
	assert_null(m.body);
	fake_fail_next(&t->w->messages_repo.base, "update_body", HEX_UNAVAILABLE);
	assert_int_equal(message_service_update(&t->w->messages, &t->alice, id, "y", &m, &err),
	                 HEX_UNAVAILABLE);
	assert_err(&err, NULL, DB_DOWN_MSG);
	assert_string_equal(fake_message_repo_find(&t->w->messages_repo, id)->body, "x");
}

/* ---- delete ---- */

static void delete_by_owner_and_by_admin(void **state)
{
	struct world *t = *state;
	char a[HEX_ID_LEN + 1], b[HEX_ID_LEN + 1];
	post_id(t, &t->alice, "one", a);
	post_id(t, &t->alice, "two", b);
	struct hex_err err = {0};
	assert_int_equal(message_service_delete(&t->w->messages, &t->alice, a, &err), HEX_OK);
	assert_null(fake_message_repo_find(&t->w->messages_repo, a));
	assert_int_equal(message_service_delete(&t->w->messages, &t->admin, b, &err), HEX_OK);
	assert_null(fake_message_repo_find(&t->w->messages_repo, b));
	assert_int_equal(t->w->messages_repo.count, 0);
	/* Gone is gone. */
	assert_int_equal(message_service_delete(&t->w->messages, &t->alice, a, &err),
	                 HEX_NOT_FOUND);
	assert_err(&err, NULL, "message not found");
}

static void delete_of_another_users_message_is_forbidden(void **state)
{
	struct world *t = *state;
	char id[HEX_ID_LEN + 1];
	post_id(t, &t->alice, "stay", id);
	struct hex_err err = {0};
	assert_int_equal(message_service_delete(&t->w->messages, &t->bob, id, &err), HEX_FORBIDDEN);
	assert_err(&err, NULL, "you may only access your own messages");
	assert_non_null(fake_message_repo_find(&t->w->messages_repo, id));
	assert_int_equal(msg_calls(t, "remove"), 0);
}

static void delete_unknown_malformed_or_failing(void **state)
{
	struct world *t = *state;
	struct hex_err err = {0};
	assert_int_equal(message_service_delete(&t->w->messages, &t->admin, UNKNOWN_ID, &err),
	                 HEX_NOT_FOUND);
	assert_int_equal(message_service_delete(&t->w->messages, &t->admin, "x", &err),
	                 HEX_NOT_FOUND);
	assert_err(&err, NULL, "message not found");
	char id[HEX_ID_LEN + 1];
	post_id(t, &t->alice, "x", id);
	fake_fail_next(&t->w->messages_repo.base, "remove", HEX_UNAVAILABLE);
	assert_int_equal(message_service_delete(&t->w->messages, &t->alice, id, &err),
	                 HEX_UNAVAILABLE);
	assert_err(&err, NULL, DB_DOWN_MSG);
	assert_non_null(fake_message_repo_find(&t->w->messages_repo, id));
	/* Deleted by someone else between the check and the delete. */
	fake_fail_next(&t->w->messages_repo.base, "remove", HEX_NOT_FOUND);
	assert_int_equal(message_service_delete(&t->w->messages, &t->alice, id, &err),
	                 HEX_NOT_FOUND);
}

static void deleting_a_user_takes_its_messages(void **state)
{
	struct world *t = *state;
	char a[HEX_ID_LEN + 1], b[HEX_ID_LEN + 1];
	post_id(t, &t->alice, "alice's", a);
	post_id(t, &t->bob, "bob's", b);
	struct hex_err err = {0};
	assert_int_equal(user_service_delete(&t->w->users, t->alice.id, &err), HEX_OK);
	assert_null(fake_message_repo_find(&t->w->messages_repo, a));
	assert_non_null(fake_message_repo_find(&t->w->messages_repo, b));
}

/* ---- list ---- */

static struct message_list_request request(int limit)
{
	return (struct message_list_request){.limit = limit};
}

static enum hex_status list(struct world *t, const struct user *caller,
                            const struct message_list_request *rq, struct message_page *page,
                            struct hex_err *err)
{
	memset(err, 0, sizeof *err);
	return message_service_list(&t->w->messages, caller, rq, page, err);
}

static void list_shows_the_callers_own_messages_newest_first(void **state)
{
	struct world *t = *state;
	char a1[HEX_ID_LEN + 1], a2[HEX_ID_LEN + 1], b1[HEX_ID_LEN + 1];
	post_id(t, &t->alice, "a1", a1);
	post_id(t, &t->bob, "b1", b1);
	post_id(t, &t->alice, "a2", a2);
	struct message_page *page = xcalloc(1, sizeof *page);
	struct message_list_request rq = request(20);
	struct hex_err err;
	assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_OK);
	assert_int_equal(page->count, 2);
	assert_false(page->has_more);
	assert_string_equal(page->items[0].id, a2);
	assert_string_equal(page->items[1].id, a1);
	assert_string_equal(page->items[0].body, "a2");
	assert_string_equal(t->w->messages_repo.last_filter.user_id, t->alice.id);
	assert_null(t->w->messages_repo.last_filter.query);
	message_page_clear(page);

	/* Naming oneself is the same, in any case of the hex digits. */
	char upper[HEX_ID_LEN + 1];
	for (int i = 0; i <= HEX_ID_LEN; i++)
		upper[i] = (char)toupper((unsigned char)t->alice.id[i]);
	rq.user_id = upper;
	assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_OK);
	assert_int_equal(page->count, 2);
	assert_string_equal(t->w->messages_repo.last_filter.user_id, t->alice.id);
	message_page_clear(page);
	free(page);
}

static void list_of_another_user_is_for_admins(void **state)
{
	struct world *t = *state;
	char a1[HEX_ID_LEN + 1], b1[HEX_ID_LEN + 1], r1[HEX_ID_LEN + 1];
	post_id(t, &t->alice, "a1", a1);
	post_id(t, &t->bob, "b1", b1);
	post_id(t, &t->admin, "r1", r1);
	struct message_page *page = xcalloc(1, sizeof *page);
	struct hex_err err;

	struct message_list_request rq = request(20);
	rq.user_id = t->alice.id;
	assert_int_equal(list(t, &t->bob, &rq, page, &err), HEX_FORBIDDEN);
	assert_err(&err, NULL, "only an admin may list another user's messages");
	assert_int_equal(page->count, 0);
	assert_int_equal(msg_calls(t, "list"), 0);

	assert_int_equal(list(t, &t->admin, &rq, page, &err), HEX_OK);
	assert_int_equal(page->count, 1);
	assert_string_equal(page->items[0].id, a1);
	message_page_clear(page);

	/* An admin without user_id sees everyone's; with its own id only its own. */
	rq.user_id = NULL;
	assert_int_equal(list(t, &t->admin, &rq, page, &err), HEX_OK);
	assert_null(t->w->messages_repo.last_filter.user_id);
	assert_int_equal(page->count, 3);
	assert_string_equal(page->items[0].id, r1);
	assert_string_equal(page->items[1].id, b1);
	assert_string_equal(page->items[2].id, a1);
	message_page_clear(page);
	rq.user_id = t->admin.id;
	assert_int_equal(list(t, &t->admin, &rq, page, &err), HEX_OK);
	assert_int_equal(page->count, 1);
	message_page_clear(page);

	/* An unknown user's list is empty, not an error. */
	rq.user_id = UNKNOWN_ID;
	assert_int_equal(list(t, &t->admin, &rq, page, &err), HEX_OK);
	assert_int_equal(page->count, 0);
	free(page);
}

/* A request that must fail with HEX_INVALID naming field, without asking the repository. */
static void assert_list_invalid(struct world *t, const struct user *caller,
                                const struct message_list_request *rq, const char *field,
                                const char *message)
{
	struct message_page *page = xcalloc(1, sizeof *page);
	struct hex_err err;
	int before = msg_calls(t, "list");
	assert_int_equal(list(t, caller, rq, page, &err), HEX_INVALID);
	assert_err(&err, field, message);
	assert_int_equal(page->count, 0);
	assert_int_equal(msg_calls(t, "list"), before);
	free(page);
}

static void list_checks_limit_and_user_id_first(void **state)
{
	struct world *t = *state;
	const char *limit_msg = "limit must be between 1 and 100";
	int bad_limits[] = {0, -1, 101, 1000000};
	for (size_t i = 0; i < sizeof bad_limits / sizeof *bad_limits; i++) {
		struct message_list_request rq = request(bad_limits[i]);
		assert_list_invalid(t, &t->alice, &rq, "limit", limit_msg);
		assert_list_invalid(t, &t->admin, &rq, "limit", limit_msg);
	}
	const char *bad_ids[] = {"", "me", "not-a-uuid", UNKNOWN_ID "0", "' OR 1=1 --"};
	for (size_t i = 0; i < sizeof bad_ids / sizeof *bad_ids; i++) {
		struct message_list_request rq = request(20);
		rq.user_id = bad_ids[i];
		assert_list_invalid(t, &t->alice, &rq, "user_id", "user_id must be a UUID");
		assert_list_invalid(t, &t->admin, &rq, "user_id", "user_id must be a UUID");
	}
	struct message_page *page = xcalloc(1, sizeof *page);
	struct hex_err err;
	for (int limit = 1; limit <= HEX_LIST_MAX; limit += HEX_LIST_MAX - 1) {
		struct message_list_request rq = request(limit);
		assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_OK);
		assert_int_equal(t->w->messages_repo.last_filter.limit, limit);
	}
	free(page);
}

static void list_limit_and_has_more(void **state)
{
	struct world *t = *state;
	char ids[5][HEX_ID_LEN + 1];
	for (int i = 0; i < 5; i++)
		post_id(t, &t->alice, "m", ids[i]);
	struct message_page *page = xcalloc(1, sizeof *page);
	struct hex_err err;
	struct message_list_request rq = request(4);
	assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_OK);
	assert_int_equal(page->count, 4);
	assert_true(page->has_more);
	assert_string_equal(page->items[0].id, ids[4]);
	message_page_clear(page);
	rq.limit = 5;
	assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_OK);
	assert_int_equal(page->count, 5);
	assert_false(page->has_more);
	message_page_clear(page);
	free(page);
}

static void list_search_text_is_trimmed_and_bounded(void **state)
{
	struct world *t = *state;
	char hit[HEX_ID_LEN + 1], miss[HEX_ID_LEN + 1];
	post_id(t, &t->alice, "Lunch at noon", hit);
	post_id(t, &t->alice, "dinner at eight", miss);
	struct message_page *page = xcalloc(1, sizeof *page);
	struct hex_err err;
	struct message_list_request rq = request(20);

	rq.query = " \tlunch  ";
	assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_OK);
	assert_string_equal(t->w->messages_repo.last_filter.query, "lunch");
	assert_int_equal(page->count, 1);
	assert_string_equal(page->items[0].id, hit);
	message_page_clear(page);

	/* Empty and blank mean no search at all. */
	const char *none[] = {"", "   ", "\n"};
	for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
		rq.query = none[i];
		assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_OK);
		assert_null(t->w->messages_repo.last_filter.query);
		assert_int_equal(page->count, 2);
		message_page_clear(page);
	}

	/* 256 characters of two bytes each pass; 257 do not, nor broken UTF-8. */
	char *max = repeat("\xd0\xb6", HEX_MESSAGE_QUERY_MAX);
	char *over = repeat("\xd0\xb6", HEX_MESSAGE_QUERY_MAX + 1);
	char *padded = xasprintf("   %s   ", max);
	rq.query = max;
	assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_OK);
	rq.query = padded;
	assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_OK);
	assert_string_equal(t->w->messages_repo.last_filter.query, max);
	rq.query = over;
	assert_list_invalid(t, &t->alice, &rq, "q", "q must be at most 256 characters");
	char *far_over = repeat("a", 4 * HEX_MESSAGE_QUERY_MAX + 1);
	rq.query = far_over;
	assert_list_invalid(t, &t->alice, &rq, "q", "q must be at most 256 characters");
	rq.query = "caf\xe9";
	assert_list_invalid(t, &t->alice, &rq, "q", "q must be valid UTF-8");
	free(max);
	free(over);
	free(padded);
	free(far_over);
	free(page);
}

static void list_time_bounds_are_half_open_and_ordered(void **state)
{
	struct world *t = *state;
	char ids[4][HEX_ID_LEN + 1];
	int64_t at[4];
	for (int i = 0; i < 4; i++) {
		post_id(t, &t->alice, "m", ids[i]);
		at[i] = fake_message_repo_find(&t->w->messages_repo, ids[i])->created_at_us;
	}
	struct message_page *page = xcalloc(1, sizeof *page);
	struct hex_err err;
	struct message_list_request rq = request(20);
	rq.has_since = true;
	rq.since_us = at[1];
	rq.has_until = true;
	rq.until_us = at[3];
	assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_OK);
	assert_true(t->w->messages_repo.last_filter.has_since);
	assert_int_equal(t->w->messages_repo.last_filter.since_us, at[1]);
	assert_true(t->w->messages_repo.last_filter.has_until);
	assert_int_equal(t->w->messages_repo.last_filter.until_us, at[3]);
	assert_int_equal(page->count, 2); /* since inclusive, until exclusive */
	assert_string_equal(page->items[0].id, ids[2]);
	assert_string_equal(page->items[1].id, ids[1]);
	message_page_clear(page);

	rq.until_us = rq.since_us; /* an empty range is a question with no answer */
	assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_OK);
	assert_int_equal(page->count, 0);

	rq.until_us = rq.since_us - 1;
	assert_list_invalid(t, &t->alice, &rq, "since", "since must not be later than until");
	/* Either bound alone is fine. */
	rq.has_until = false;
	assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_OK);
	assert_int_equal(page->count, 3);
	assert_false(t->w->messages_repo.last_filter.has_until);
	message_page_clear(page);
	free(page);
}

/* Walks every page of rq as caller; each page's ids are appended to seen. */
static int walk(struct world *t, const struct user *caller, struct message_list_request rq,
                char (*seen)[HEX_ID_LEN + 1], int max, void (*between_pages)(struct world *))
{
	struct message_page *page = xcalloc(1, sizeof *page);
	struct message_cursor after;
	struct hex_err err;
	int n = 0, pages = 0;
	for (;;) {
		assert_int_equal(list(t, caller, &rq, page, &err), HEX_OK);
		assert_true(pages++ < 1000);
		for (int i = 0; i < page->count; i++) {
			assert_true(n < max);
			memcpy(seen[n++], page->items[i].id, HEX_ID_LEN + 1);
		}
		if (!page->has_more)
			break;
		const struct message *last = &page->items[page->count - 1];
		after = (struct message_cursor){.created_at_us = last->created_at_us,
		                                .filter_tag = page->filter_tag};
		memcpy(after.id, last->id, sizeof after.id);
		rq.after = &after;
		message_page_clear(page);
		if (between_pages != NULL)
			between_pages(t);
	}
	message_page_clear(page);
	free(page);
	return n;
}

static void post_two_more(struct world *t)
{
	char id[HEX_ID_LEN + 1];
	post_id(t, &t->alice, "late", id);
	post_id(t, &t->bob, "late", id);
}

static void list_walk_returns_each_message_once_despite_inserts(void **state)
{
	struct world *t = *state;
	enum { N = 47 };
	char before[N][HEX_ID_LEN + 1];
	for (int i = 0; i < N; i++) {
		/* Pairs share a timestamp, so that the id decides their order. */
		if (i % 2 == 0)
			fake_clock_advance_s(&t->w->clock, 1);
		struct message m = {0};
		struct hex_err err = {0};
		assert_int_equal(message_service_create(&t->w->messages, &t->alice, "m", &m, &err),
		                 HEX_OK);
		memcpy(before[i], m.id, sizeof before[i]);
		message_clear(&m);
	}
	char seen[2 * N + 100][HEX_ID_LEN + 1];
	int n = walk(t, &t->alice, request(5), seen, 2 * N + 100, post_two_more);
	assert_int_equal(n, N); /* the later posts are newer than the walk's position */
	for (int i = 0; i < N; i++) {
		int found = 0;
		for (int k = 0; k < n; k++)
			found += strcmp(seen[k], before[i]) == 0;
		if (found != 1)
			fail_msg("message %d seen %d times", i, found);
	}
}

static void list_cursor_is_bound_to_its_filters(void **state)
{
	struct world *t = *state;
	for (int i = 0; i < 3; i++) {
		char id[HEX_ID_LEN + 1];
		post_id(t, &t->alice, "lunch", id);
		post_id(t, &t->bob, "lunch", id);
	}
	struct message_page *page = xcalloc(1, sizeof *page);
	struct hex_err err;
	struct message_list_request rq = request(1);
	rq.query = "lunch";
	rq.has_since = true;
	rq.since_us = T0_US;
	assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_OK);
	assert_true(page->has_more);
	struct message_filter want = {
	    .user_id = t->alice.id, .query = "lunch", .has_since = true, .since_us = T0_US};
	assert_true(page->filter_tag == message_filter_tag(&want));
	struct message_cursor after = {.created_at_us = page->items[0].created_at_us,
	                               .filter_tag = page->filter_tag};
	memcpy(after.id, page->items[0].id, sizeof after.id);
	message_page_clear(page);

	/* The same filters (another limit is fine, and so is padding around q) go on. */
	rq.after = &after;
	rq.limit = 10;
	rq.query = "  lunch ";
	assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_OK);
	assert_int_equal(page->count, 2);
	message_page_clear(page);

	const char *msg = "cursor belongs to a listing with other filters";
	struct message_list_request changed = rq;
	changed.query = "dinner";
	assert_list_invalid(t, &t->alice, &changed, "cursor", msg);
	changed = rq;
	changed.query = NULL;
	assert_list_invalid(t, &t->alice, &changed, "cursor", msg);
	changed = rq;
	changed.since_us = T0_US + 1;
	assert_list_invalid(t, &t->alice, &changed, "cursor", msg);
	changed = rq;
	changed.has_until = true;
	changed.until_us = T0_US + 3600LL * 1000000;
	assert_list_invalid(t, &t->alice, &changed, "cursor", msg);
	/* Someone else replaying alice's cursor is another listing too, and so is an
	 * admin's list of everyone; an admin's list of alice is the same listing. */
	assert_list_invalid(t, &t->bob, &rq, "cursor", msg);
	assert_list_invalid(t, &t->admin, &rq, "cursor", msg);
	changed = rq;
	changed.user_id = t->alice.id;
	assert_int_equal(list(t, &t->admin, &changed, page, &err), HEX_OK);
	assert_int_equal(page->count, 2);
	message_page_clear(page);

	/* A cursor whose position names no valid id is refused, not passed on. */
	struct message_cursor broken = after;
	strcpy(broken.id, "zz");
	changed = rq;
	changed.after = &broken;
	assert_list_invalid(t, &t->alice, &changed, "cursor", "cursor is not valid");
	free(page);
}

static void list_reports_repository_failures(void **state)
{
	struct world *t = *state;
	struct message_page *page = xcalloc(1, sizeof *page);
	struct hex_err err;
	struct message_list_request rq = request(20);
	fake_fail_next(&t->w->messages_repo.base, "list", HEX_UNAVAILABLE);
	assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_UNAVAILABLE);
	assert_err(&err, NULL, DB_DOWN_MSG);
	assert_int_equal(page->count, 0);
	fake_fail_next(&t->w->messages_repo.base, "list", HEX_INVALID);
	assert_int_equal(list(t, &t->alice, &rq, page, &err), HEX_INTERNAL);
	assert_err(&err, NULL, INTERNAL_MSG);
	free(page);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(create_makes_the_caller_the_owner),
	    T(create_gives_each_message_its_own_id),
	    T(create_refuses_bad_bodies_before_storing),
	    T(create_takes_exactly_10000_characters_of_any_width),
	    T(create_for_a_deleted_owner_is_unauthenticated),
	    T(create_reports_repository_failures),
	    T(read_by_owner_and_by_admin),
	    T(read_of_another_users_message_is_forbidden),
	    T(read_unknown_or_malformed_id_is_not_found),
	    T(read_reports_repository_failures),
	    T(update_by_owner_changes_only_body_and_updated_at),
	    T(update_is_for_the_owner_only_even_for_admins),
	    T(update_checks_the_body_before_anything_else),
	    T(update_unknown_malformed_or_vanished_message_is_not_found),
	    T(delete_by_owner_and_by_admin),
	    T(delete_of_another_users_message_is_forbidden),
	    T(delete_unknown_malformed_or_failing),
	    T(deleting_a_user_takes_its_messages),
	    T(list_shows_the_callers_own_messages_newest_first),
	    T(list_of_another_user_is_for_admins),
	    T(list_checks_limit_and_user_id_first),
	    T(list_limit_and_has_more),
	    T(list_search_text_is_trimmed_and_bounded),
	    T(list_time_bounds_are_half_open_and_ordered),
	    T(list_walk_returns_each_message_once_despite_inserts),
	    T(list_cursor_is_bound_to_its_filters),
	    T(list_reports_repository_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
