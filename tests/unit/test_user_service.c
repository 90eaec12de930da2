/* test_user_service: the user use cases against in-memory fakes of every port. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "support/fakes.h"

#define T0_US        (FAKE_T0_S * 1000000LL)
#define UNKNOWN_ID   "00000000-0000-4000-8000-0000deadbeef"
#define DB_DOWN_MSG  "the database is unavailable"
#define INTERNAL_MSG "internal error"

static int setup(void **state)
{
	*state = fake_world_new();
	return 0;
}

static int teardown(void **state)
{
	fake_world_free(*state);
	return 0;
}

static struct user create_user(struct fake_world *w, const char *email, const char *password)
{
	struct user u;
	struct hex_err err = {0};
	enum hex_status st = user_service_create(&w->users, email, password, &u, &err);
	if (st != HEX_OK)
		fail_msg("create %s: %s: %s", email, hex_status_name(st), err.message);
	return u;
}

/* A live refresh token of user_id, as a login would have left it. */
static void add_refresh_token(struct fake_world *w, const char *user_id, int n)
{
	struct fake_refresh_row *row = &w->refresh.rows[w->refresh.count++];
	memset(row, 0, sizeof *row);
	snprintf(row->rec.jti, sizeof row->rec.jti, "10000000-0000-4000-8000-%012d", n);
	hex_strlcpy(row->rec.user_id, user_id, sizeof row->rec.user_id);
	hex_strlcpy(row->rec.family_id, row->rec.jti, sizeof row->rec.family_id);
	row->rec.expires_at_us = w->clock.now_us + 3600LL * 1000000;
}

static void forget_cache(struct fake_world *w)
{
	memset(w->cache.slots, 0, sizeof w->cache.slots);
}

/* Field by field: struct padding is not part of a user. */
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

static void assert_err(const struct hex_err *err, const char *field, const char *message)
{
	if (field == NULL)
		assert_null(err->field);
	else
		assert_string_equal(err->field, field);
	assert_string_equal(err->message, message);
}

/* ---- create ---- */

static void create_stores_lower_cased_email(void **state)
{
	struct fake_world *w = *state;
	struct user u;
	struct hex_err err = {0};
	assert_int_equal(
	    user_service_create(&w->users, "Alice@Example.COM", "correct horse", &u, &err), HEX_OK);
	assert_string_equal(u.email, "alice@example.com");
	assert_true(user_id_valid(u.id));
	assert_int_equal(u.membership, MEMBERSHIP_FREE);
	assert_int_equal(u.role, ROLE_USER);
	assert_int_equal(u.token_version, 0);
	assert_int_equal(u.created_at_us, T0_US);
	assert_int_equal(u.updated_at_us, T0_US);

	const struct fake_user_row *row = fake_user_repo_find(&w->repo, u.id);
	assert_non_null(row);
	assert_string_equal(row->user.email, "alice@example.com");
	assert_user_equal(&row->user, &u);
	/* The repository gets the hash, never the password. */
	assert_string_equal(row->hash, "h:correct horse");
	assert_int_equal(fake_calls(&w->hasher.base, "hash"), 1);
	assert_int_equal(fake_calls(&w->repo.base, "insert"), 1);
}

static void create_gives_each_user_its_own_id(void **state)
{
	struct fake_world *w = *state;
	struct user a = create_user(w, "a@example.com", "password-a");
	struct user b = create_user(w, "b@example.com", "password-b");
	assert_string_not_equal(a.id, b.id);
	assert_int_equal(w->repo.count, 2);
}

static void create_accepts_longest_password(void **state)
{
	struct fake_world *w = *state;
	char pw[HEX_PASSWORD_MAX + 1], want[HEX_HASH_MAX];
	memset(pw, 'q', HEX_PASSWORD_MAX);
	pw[HEX_PASSWORD_MAX] = '\0';
	struct user u = create_user(w, "long@example.com", pw);
	fake_hasher_hash_of(pw, want);
	assert_string_equal(fake_user_repo_find(&w->repo, u.id)->hash, want);
}

static void create_conflict_is_case_insensitive(void **state)
{
	struct fake_world *w = *state;
	create_user(w, "alice@example.com", "password-1");
	struct user u;
	struct hex_err err = {0};
	assert_int_equal(
	    user_service_create(&w->users, "ALICE@example.COM", "password-2", &u, &err),
	    HEX_CONFLICT);
	assert_err(&err, "email", "a user with this email already exists");
	assert_int_equal(w->repo.count, 1);
	assert_string_equal(w->repo.rows[0].hash, "h:password-1");
}

static void create_invalid_input_touches_nothing(void **state)
{
	struct fake_world *w = *state;
	static const struct {
		const char *email, *password, *field;
	} cases[] = {
	    {NULL, "password-1", "email"},
	    {"", "password-1", "email"},
	    {"not-an-email", "password-1", "email"},
	    {"a@b@example.com", "password-1", "email"},
	    {"alice@example.com", NULL, "password"},
	    {"alice@example.com", "", "password"},
	    {"alice@example.com", "1234567", "password"},
	    /* The email is judged first: one error at a time, the first field wins. */
	    {"nope", "short", "email"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct user u;
		struct hex_err err = {0};
		enum hex_status st =
		    user_service_create(&w->users, cases[i].email, cases[i].password, &u, &err);
		if (st != HEX_INVALID)
			fail_msg("case %zu: %s, want invalid_request", i, hex_status_name(st));
		assert_string_equal(err.field, cases[i].field);
	}
	char too_long[HEX_PASSWORD_MAX + 2];
	memset(too_long, 'x', sizeof too_long - 1);
	too_long[sizeof too_long - 1] = '\0';
	struct user u;
	struct hex_err err = {0};
	assert_int_equal(user_service_create(&w->users, "alice@example.com", too_long, &u, &err),
	                 HEX_INVALID);
	assert_string_equal(err.field, "password");

	assert_int_equal(fake_calls(&w->hasher.base, "hash"), 0);
	assert_int_equal(fake_calls(&w->repo.base, "insert"), 0);
	assert_int_equal(w->ids.issued, 0);
	assert_int_equal(w->repo.count, 0);
}

static void create_hasher_failure_is_internal(void **state)
{
	struct fake_world *w = *state;
	fake_fail_next(&w->hasher.base, "hash", HEX_UNAVAILABLE);
	struct user u;
	struct hex_err err = {0};
	assert_int_equal(
	    user_service_create(&w->users, "alice@example.com", "password-1", &u, &err),
	    HEX_INTERNAL);
	assert_err(&err, NULL, INTERNAL_MSG);
	assert_false(fake_fail_pending(&w->hasher.base));
	assert_int_equal(fake_calls(&w->repo.base, "insert"), 0);
}

/* ---- read ---- */

static void read_cache_hit_skips_repo(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	struct user cached = u;
	/* Distinguishable from the truth, to see which one answered. */
	strcpy(cached.email, "cached@example.com");
	fake_user_cache_store(&w->cache, &cached);
	fake_world_reset_calls(w);

	struct user got;
	struct hex_err err = {0};
	assert_int_equal(user_service_read(&w->users, u.id, &got, &err), HEX_OK);
	assert_string_equal(got.email, "cached@example.com");
	assert_int_equal(fake_calls(&w->cache.base, "get"), 1);
	assert_int_equal(fake_calls(&w->repo.base, "get"), 0);
	assert_int_equal(fake_calls(&w->cache.base, "put"), 0);
}

static void read_miss_fills_cache(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	fake_world_reset_calls(w);

	struct user got, cached;
	struct hex_err err = {0};
	assert_int_equal(user_service_read(&w->users, u.id, &got, &err), HEX_OK);
	assert_user_equal(&got, &u);
	assert_true(fake_log_has(&w->log, "cache.get repo.get cache.put"));
	assert_true(fake_user_cache_peek(&w->cache, u.id, &cached));
	assert_user_equal(&cached, &u);

	/* The second read is served by the cache. */
	assert_int_equal(user_service_read(&w->users, u.id, &got, &err), HEX_OK);
	assert_int_equal(fake_calls(&w->repo.base, "get"), 1);
	assert_int_equal(fake_calls(&w->cache.base, "get"), 2);
	assert_string_equal(got.email, "alice@example.com");
}

static void read_cache_down_falls_back_to_repo(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	w->cache.down = true;
	fake_world_reset_calls(w);

	struct user got;
	struct hex_err err = {0};
	assert_int_equal(user_service_read(&w->users, u.id, &got, &err), HEX_OK);
	assert_string_equal(got.email, "alice@example.com");
	assert_int_equal(fake_calls(&w->repo.base, "get"), 1);

	/* A cache that errors once (a stalled Redis) is a miss too. */
	w->cache.down = false;
	fake_fail_next(&w->cache.base, "get", HEX_INTERNAL);
	assert_int_equal(user_service_read(&w->users, u.id, &got, &err), HEX_OK);
	assert_false(fake_fail_pending(&w->cache.base));
	assert_string_equal(got.email, "alice@example.com");
	assert_int_equal(fake_calls(&w->repo.base, "get"), 2);
}

static void read_without_cache_configured(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	w->users.cache.ops = NULL;
	struct user got;
	struct hex_err err = {0};
	assert_int_equal(user_service_read(&w->users, u.id, &got, &err), HEX_OK);
	assert_string_equal(got.email, "alice@example.com");
	assert_int_equal(fake_calls(&w->cache.base, "get"), 0);
}

static void read_unknown_id_not_found(void **state)
{
	struct fake_world *w = *state;
	create_user(w, "alice@example.com", "password-1");
	fake_world_reset_calls(w);
	struct user got;
	struct hex_err err = {0};
	assert_int_equal(user_service_read(&w->users, UNKNOWN_ID, &got, &err), HEX_NOT_FOUND);
	assert_err(&err, NULL, "user not found");
	assert_int_equal(fake_calls(&w->repo.base, "get"), 1);
	assert_int_equal(fake_calls(&w->cache.base, "put"), 0);
}

static void read_malformed_id_not_found_without_lookup(void **state)
{
	struct fake_world *w = *state;
	create_user(w, "alice@example.com", "password-1");
	fake_world_reset_calls(w);
	static const char *const ids[] = {
	    "",
	    "1",
	    "not-a-uuid",
	    "00000000-0000-4000-8000-00000000000g",
	    "00000000-0000-4000-8000-0000000000011",
	    "' OR 1=1 --",
	};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
		struct user got;
		struct hex_err err = {0};
		enum hex_status st = user_service_read(&w->users, ids[i], &got, &err);
		if (st != HEX_NOT_FOUND)
			fail_msg("id \"%s\": %s, want not_found", ids[i], hex_status_name(st));
		assert_err(&err, NULL, "user not found");
	}
	struct user got;
	struct hex_err err = {0};
	assert_int_equal(user_service_read(&w->users, NULL, &got, &err), HEX_NOT_FOUND);
	assert_int_equal(fake_calls(&w->repo.base, "get"), 0);
	assert_int_equal(fake_calls(&w->cache.base, "get"), 0);
}

static void read_repo_failure_is_not_cached(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	struct user got;
	struct hex_err err = {0};
	fake_fail_next(&w->repo.base, "get", HEX_UNAVAILABLE);
	assert_int_equal(user_service_read(&w->users, u.id, &got, &err), HEX_UNAVAILABLE);
	assert_err(&err, NULL, DB_DOWN_MSG);
	assert_int_equal(fake_calls(&w->cache.base, "put"), 0);
	assert_false(fake_user_cache_peek(&w->cache, u.id, NULL));
}

/* ---- update ---- */

static void update_email(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	struct user got;
	struct hex_err err = {0};
	assert_int_equal(user_service_read(&w->users, u.id, &got, &err), HEX_OK); /* cached */
	fake_clock_advance_s(&w->clock, 10);
	fake_world_reset_calls(w);

	struct user_changes ch = {.email = "Alice2@Example.com"};
	assert_int_equal(user_service_update(&w->users, u.id, &ch, &got, &err), HEX_OK);
	assert_string_equal(got.email, "alice2@example.com");
	assert_string_equal(got.id, u.id);
	assert_int_equal(got.created_at_us, T0_US);
	assert_int_equal(got.updated_at_us, T0_US + 10 * 1000000LL);
	assert_int_equal(got.token_version, 0);

	const struct fake_user_row *row = fake_user_repo_find(&w->repo, u.id);
	assert_string_equal(row->user.email, "alice2@example.com");
	assert_string_equal(row->hash, "h:password-1");
	assert_int_equal(fake_calls(&w->hasher.base, "hash"), 0);
	assert_int_equal(fake_calls(&w->repo.base, "revoke_sessions"), 0);
	assert_true(fake_log_has(&w->log, "repo.update cache.del"));
	assert_false(fake_user_cache_peek(&w->cache, u.id, NULL));

	/* The next read sees the change, and the old address is free again. */
	assert_int_equal(user_service_read(&w->users, u.id, &got, &err), HEX_OK);
	assert_string_equal(got.email, "alice2@example.com");
	create_user(w, "alice@example.com", "password-2");
}

static void update_password_revokes_every_session(void **state)
{
	struct fake_world *w = *state;
	struct user alice = create_user(w, "alice@example.com", "password-1");
	struct user bob = create_user(w, "bob@example.com", "password-b");
	add_refresh_token(w, alice.id, 1);
	add_refresh_token(w, alice.id, 2);
	add_refresh_token(w, bob.id, 3);
	struct user got;
	struct hex_err err = {0};
	assert_int_equal(user_service_read(&w->users, alice.id, &got, &err), HEX_OK);
	fake_world_reset_calls(w);

	struct user_changes ch = {.password = "a new password"};
	assert_int_equal(user_service_update(&w->users, alice.id, &ch, &got, &err), HEX_OK);
	assert_int_equal(got.token_version, 1);
	assert_string_equal(got.email, "alice@example.com");

	const struct fake_user_row *row = fake_user_repo_find(&w->repo, alice.id);
	assert_string_equal(row->hash, "h:a new password");
	assert_int_equal(row->user.token_version, 1);
	assert_int_equal(fake_calls(&w->hasher.base, "hash"), 1);
	assert_int_equal(fake_refresh_repo_live(&w->refresh, alice.id, w->clock.now_us), 0);
	assert_int_equal(fake_refresh_repo_live(&w->refresh, bob.id, w->clock.now_us), 1);
	assert_int_equal(fake_user_repo_find(&w->repo, bob.id)->user.token_version, 0);
	/* One repository call: the new hash and the revocation commit together. */
	assert_int_equal(fake_calls(&w->repo.base, "revoke_sessions"), 0);
	assert_true(fake_log_has(&w->log, "repo.update cache.del"));
	assert_false(fake_user_cache_peek(&w->cache, alice.id, NULL));
}

static void update_email_and_password_together(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	struct user got;
	struct hex_err err = {0};
	struct user_changes ch = {.email = "ALICIA@example.com", .password = "password-2"};
	assert_int_equal(user_service_update(&w->users, u.id, &ch, &got, &err), HEX_OK);
	const struct fake_user_row *row = fake_user_repo_find(&w->repo, u.id);
	assert_string_equal(row->user.email, "alicia@example.com");
	assert_string_equal(row->hash, "h:password-2");
	assert_int_equal(row->user.token_version, 1);
	assert_user_equal(&got, &row->user);
}

static void update_email_conflict(void **state)
{
	struct fake_world *w = *state;
	create_user(w, "alice@example.com", "password-1");
	struct user bob = create_user(w, "bob@example.com", "password-b");
	fake_user_cache_store(&w->cache, &bob);
	fake_world_reset_calls(w);

	struct user got;
	struct hex_err err = {0};
	struct user_changes ch = {.email = "ALICE@example.com"};
	assert_int_equal(user_service_update(&w->users, bob.id, &ch, &got, &err), HEX_CONFLICT);
	assert_err(&err, "email", "a user with this email already exists");
	assert_string_equal(fake_user_repo_find(&w->repo, bob.id)->user.email, "bob@example.com");
	/* Forgotten even on failure: the cache must never outlive a write attempt. */
	assert_true(fake_log_has(&w->log, "repo.update cache.del"));
	assert_false(fake_user_cache_peek(&w->cache, bob.id, NULL));
}

/*
 * DESIGN.md: bad input "gets a clear error and changes nothing". A taken email is bad
 * input; answering 409 must not also end the caller's sessions as if the password had
 * changed.
 */
static void update_conflict_with_password_changes_nothing(void **state)
{
	struct fake_world *w = *state;
	create_user(w, "alice@example.com", "password-1");
	struct user bob = create_user(w, "bob@example.com", "password-b");
	add_refresh_token(w, bob.id, 1);

	struct user got;
	struct hex_err err = {0};
	struct user_changes ch = {.email = "alice@example.com", .password = "password-new"};
	assert_int_equal(user_service_update(&w->users, bob.id, &ch, &got, &err), HEX_CONFLICT);
	assert_string_equal(err.field, "email");
	const struct fake_user_row *row = fake_user_repo_find(&w->repo, bob.id);
	assert_string_equal(row->user.email, "bob@example.com");
	assert_string_equal(row->hash, "h:password-b");
	assert_int_equal(row->user.token_version, 0);
	assert_int_equal(fake_refresh_repo_live(&w->refresh, bob.id, w->clock.now_us), 1);
}

static void update_invalid_input_writes_nothing(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	fake_world_reset_calls(w);
	static const struct {
		struct user_changes ch;
		const char *field;
	} cases[] = {
	    {{.email = ""}, "email"},
	    {{.email = "alice at example.com"}, "email"},
	    {{.password = "1234567"}, "password"},
	    {{.password = ""}, "password"},
	    {{.email = "ok@example.com", .password = "short"}, "password"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct user got;
		struct hex_err err = {0};
		enum hex_status st = user_service_update(&w->users, u.id, &cases[i].ch, &got, &err);
		if (st != HEX_INVALID)
			fail_msg("case %zu: %s, want invalid_request", i, hex_status_name(st));
		assert_string_equal(err.field, cases[i].field);
	}
	const struct fake_user_row *row = fake_user_repo_find(&w->repo, u.id);
	assert_user_equal(&row->user, &u);
	assert_string_equal(row->hash, "h:password-1");
	assert_int_equal(fake_calls(&w->repo.base, "update"), 0);
	assert_int_equal(fake_calls(&w->repo.base, "revoke_sessions"), 0);
	assert_int_equal(fake_calls(&w->hasher.base, "hash"), 0);
}

static void update_unknown_user_not_found(void **state)
{
	struct fake_world *w = *state;
	struct user got;
	struct hex_err err = {0};
	struct user_changes ch = {.email = "x@example.com"};
	assert_int_equal(user_service_update(&w->users, UNKNOWN_ID, &ch, &got, &err),
	                 HEX_NOT_FOUND);
	assert_err(&err, NULL, "user not found");
	assert_int_equal(fake_calls(&w->repo.base, "update"), 0);
}

static void update_write_failure_still_forgets_cache(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	fake_user_cache_store(&w->cache, &u);
	fake_world_reset_calls(w);
	fake_fail_next(&w->repo.base, "update", HEX_UNAVAILABLE);

	struct user got;
	struct hex_err err = {0};
	struct user_changes ch = {.email = "new@example.com"};
	assert_int_equal(user_service_update(&w->users, u.id, &ch, &got, &err), HEX_UNAVAILABLE);
	assert_err(&err, NULL, DB_DOWN_MSG);
	assert_false(fake_fail_pending(&w->repo.base));
	assert_true(fake_log_has(&w->log, "repo.update cache.del"));
	assert_false(fake_user_cache_peek(&w->cache, u.id, NULL));
	assert_string_equal(fake_user_repo_find(&w->repo, u.id)->user.email, "alice@example.com");
}

static void update_password_failure_keeps_old_password_and_sessions(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	add_refresh_token(w, u.id, 1);
	fake_world_reset_calls(w);
	fake_fail_next(&w->repo.base, "update", HEX_UNAVAILABLE);

	struct user got;
	struct hex_err err = {0};
	struct user_changes ch = {.password = "password-2"};
	assert_int_equal(user_service_update(&w->users, u.id, &ch, &got, &err), HEX_UNAVAILABLE);
	assert_err(&err, NULL, DB_DOWN_MSG);
	assert_string_equal(fake_user_repo_find(&w->repo, u.id)->hash, "h:password-1");
	assert_int_equal(fake_user_repo_find(&w->repo, u.id)->user.token_version, 0);
	assert_int_equal(fake_refresh_repo_live(&w->refresh, u.id, w->clock.now_us), 1);
	assert_int_equal(fake_calls(&w->cache.base, "del"), 1);
}

static void update_hasher_failure_is_internal(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	fake_fail_next(&w->hasher.base, "hash", HEX_INTERNAL);
	struct user got;
	struct hex_err err = {0};
	struct user_changes ch = {.password = "password-2"};
	assert_int_equal(user_service_update(&w->users, u.id, &ch, &got, &err), HEX_INTERNAL);
	assert_err(&err, NULL, INTERNAL_MSG);
	const struct fake_user_row *row = fake_user_repo_find(&w->repo, u.id);
	assert_string_equal(row->hash, "h:password-1");
	assert_int_equal(row->user.token_version, 0);
}

/* ---- delete ---- */

static void delete_removes_user_tokens_and_cache(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	struct user bob = create_user(w, "bob@example.com", "password-b");
	add_refresh_token(w, u.id, 1);
	add_refresh_token(w, bob.id, 2);
	struct user got;
	struct hex_err err = {0};
	assert_int_equal(user_service_read(&w->users, u.id, &got, &err), HEX_OK); /* cached */
	fake_world_reset_calls(w);

	assert_int_equal(user_service_delete(&w->users, u.id, &err), HEX_OK);
	assert_null(fake_user_repo_find(&w->repo, u.id));
	assert_true(fake_log_has(&w->log, "repo.remove cache.del"));
	assert_false(fake_user_cache_peek(&w->cache, u.id, NULL));
	assert_int_equal(w->refresh.count, 1);
	assert_string_equal(w->refresh.rows[0].rec.user_id, bob.id);

	/* Gone for readers too, not served from a stale cache entry. */
	assert_int_equal(user_service_read(&w->users, u.id, &got, &err), HEX_NOT_FOUND);
	assert_int_equal(user_service_read(&w->users, bob.id, &got, &err), HEX_OK);
	create_user(w, "alice@example.com", "password-3");
}

static void delete_unknown_user_not_found(void **state)
{
	struct fake_world *w = *state;
	create_user(w, "alice@example.com", "password-1");
	struct hex_err err = {0};
	assert_int_equal(user_service_delete(&w->users, UNKNOWN_ID, &err), HEX_NOT_FOUND);
	assert_err(&err, NULL, "user not found");
	assert_int_equal(w->repo.count, 1);
}

static void delete_failure_keeps_user_and_forgets_cache(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	fake_user_cache_store(&w->cache, &u);
	fake_fail_next(&w->repo.base, "remove", HEX_UNAVAILABLE);
	struct hex_err err = {0};
	assert_int_equal(user_service_delete(&w->users, u.id, &err), HEX_UNAVAILABLE);
	assert_err(&err, NULL, DB_DOWN_MSG);
	assert_non_null(fake_user_repo_find(&w->repo, u.id));
	assert_false(fake_user_cache_peek(&w->cache, u.id, NULL));
}

/* ---- list ---- */

static enum hex_status list_users(struct fake_world *w, const char *email, int membership,
                                  int limit, const struct user_cursor *after,
                                  struct user_page *page, struct hex_err *err)
{
	struct user_filter f = {
	    .email = email, .membership = membership, .limit = limit, .after = after};
	memset(err, 0, sizeof *err);
	return user_service_list(&w->users, &f, page, err);
}

static void list_limit_bounds(void **state)
{
	struct fake_world *w = *state;
	static struct user_page page;
	struct hex_err err;
	char want[80];
	snprintf(want, sizeof want, "limit must be between 1 and %d", HEX_LIST_MAX);
	static const int bad[] = {0, -1, HEX_LIST_MAX + 1, 1000000};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(list_users(w, NULL, -1, bad[i], NULL, &page, &err), HEX_INVALID);
		assert_err(&err, "limit", want);
	}
	assert_int_equal(fake_calls(&w->repo.base, "list"), 0);

	for (int i = 0; i < HEX_LIST_MAX + 5; i++) {
		char email[40];
		snprintf(email, sizeof email, "user%d@example.com", i);
		create_user(w, email, "password-1");
	}
	assert_int_equal(list_users(w, NULL, -1, 1, NULL, &page, &err), HEX_OK);
	assert_int_equal(page.count, 1);
	assert_true(page.has_more);
	assert_int_equal(list_users(w, NULL, -1, HEX_LIST_MAX, NULL, &page, &err), HEX_OK);
	assert_int_equal(page.count, HEX_LIST_MAX);
	assert_true(page.has_more);
}

static void list_email_filter_is_normalised(void **state)
{
	struct fake_world *w = *state;
	create_user(w, "alice@example.com", "password-1");
	create_user(w, "bob@example.com", "password-b");
	static struct user_page page;
	struct hex_err err;
	assert_int_equal(list_users(w, "ALICE@Example.COM", -1, 20, NULL, &page, &err), HEX_OK);
	assert_int_equal(page.count, 1);
	assert_string_equal(page.items[0].email, "alice@example.com");
	assert_false(page.has_more);

	assert_int_equal(list_users(w, "nobody@example.com", -1, 20, NULL, &page, &err), HEX_OK);
	assert_int_equal(page.count, 0);

	fake_world_reset_calls(w);
	assert_int_equal(list_users(w, "not an email", -1, 20, NULL, &page, &err), HEX_INVALID);
	assert_string_equal(err.field, "email");
	assert_int_equal(fake_calls(&w->repo.base, "list"), 0);
}

static void list_pages_in_creation_order(void **state)
{
	struct fake_world *w = *state;
	struct user u[5];
	for (int i = 0; i < 5; i++) {
		char email[40];
		snprintf(email, sizeof email, "u%d@example.com", i);
		u[i] = create_user(w, email, "password-1");
		fake_clock_advance_s(&w->clock, 1);
	}
	static struct user_page page;
	struct hex_err err;
	struct user_cursor cur;
	int seen = 0;
	for (int pages = 0; pages < 3; pages++) {
		assert_int_equal(list_users(w, NULL, -1, 2, pages ? &cur : NULL, &page, &err),
		                 HEX_OK);
		for (int i = 0; i < page.count; i++)
			assert_string_equal(page.items[i].id, u[seen++].id);
		assert_int_equal(page.has_more, pages < 2);
		cur.created_at_us = page.items[page.count - 1].created_at_us;
		hex_strlcpy(cur.id, page.items[page.count - 1].id, sizeof cur.id);
	}
	assert_int_equal(seen, 5);
}

static void list_membership_filter(void **state)
{
	struct fake_world *w = *state;
	struct user a = create_user(w, "a@example.com", "password-1");
	create_user(w, "b@example.com", "password-1");
	struct user got;
	struct hex_err err;
	assert_int_equal(
	    user_service_set_membership(&w->users, a.id, MEMBERSHIP_MEMBER, &got, &err), HEX_OK);
	static struct user_page page;
	assert_int_equal(list_users(w, NULL, MEMBERSHIP_MEMBER, 20, NULL, &page, &err), HEX_OK);
	assert_int_equal(page.count, 1);
	assert_string_equal(page.items[0].id, a.id);
	assert_int_equal(list_users(w, NULL, MEMBERSHIP_FREE, 20, NULL, &page, &err), HEX_OK);
	assert_int_equal(page.count, 1);
	assert_string_equal(page.items[0].email, "b@example.com");
	assert_int_equal(list_users(w, NULL, -1, 20, NULL, &page, &err), HEX_OK);
	assert_int_equal(page.count, 2);
}

/* ---- membership, role, sessions ---- */

static void set_membership_keeps_sessions(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	add_refresh_token(w, u.id, 1);
	fake_user_cache_store(&w->cache, &u);
	fake_clock_advance_s(&w->clock, 5);
	fake_world_reset_calls(w);

	struct user got;
	struct hex_err err = {0};
	assert_int_equal(
	    user_service_set_membership(&w->users, u.id, MEMBERSHIP_MEMBER, &got, &err), HEX_OK);
	assert_int_equal(got.membership, MEMBERSHIP_MEMBER);
	assert_int_equal(got.token_version, 0);
	assert_int_equal(got.updated_at_us, T0_US + 5 * 1000000LL);
	const struct fake_user_row *row = fake_user_repo_find(&w->repo, u.id);
	assert_int_equal(row->user.membership, MEMBERSHIP_MEMBER);
	assert_int_equal(row->user.token_version, 0);
	assert_string_equal(row->hash, "h:password-1");
	assert_int_equal(fake_refresh_repo_live(&w->refresh, u.id, w->clock.now_us), 1);
	assert_true(fake_log_has(&w->log, "repo.update cache.del"));
	assert_false(fake_user_cache_peek(&w->cache, u.id, NULL));

	assert_int_equal(user_service_set_membership(&w->users, u.id, MEMBERSHIP_FREE, &got, &err),
	                 HEX_OK);
	assert_int_equal(fake_user_repo_find(&w->repo, u.id)->user.membership, MEMBERSHIP_FREE);
}

static void set_membership_errors(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	struct user got;
	struct hex_err err = {0};
	assert_int_equal(
	    user_service_set_membership(&w->users, UNKNOWN_ID, MEMBERSHIP_MEMBER, &got, &err),
	    HEX_NOT_FOUND);
	assert_err(&err, NULL, "user not found");

	fake_user_cache_store(&w->cache, &u);
	fake_fail_next(&w->repo.base, "update", HEX_UNAVAILABLE);
	assert_int_equal(
	    user_service_set_membership(&w->users, u.id, MEMBERSHIP_MEMBER, &got, &err),
	    HEX_UNAVAILABLE);
	assert_err(&err, NULL, DB_DOWN_MSG);
	assert_int_equal(fake_user_repo_find(&w->repo, u.id)->user.membership, MEMBERSHIP_FREE);
	assert_false(fake_user_cache_peek(&w->cache, u.id, NULL));
}

static void set_role_revokes_sessions(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	add_refresh_token(w, u.id, 1);
	fake_user_cache_store(&w->cache, &u);
	fake_world_reset_calls(w);

	struct user got;
	struct hex_err err = {0};
	assert_int_equal(user_service_set_role(&w->users, u.id, ROLE_ADMIN, &got, &err), HEX_OK);
	assert_int_equal(got.role, ROLE_ADMIN);
	assert_int_equal(got.token_version, 1);
	const struct fake_user_row *row = fake_user_repo_find(&w->repo, u.id);
	assert_int_equal(row->user.role, ROLE_ADMIN);
	assert_int_equal(row->user.token_version, 1);
	assert_int_equal(fake_refresh_repo_live(&w->refresh, u.id, w->clock.now_us), 0);
	assert_int_equal(fake_calls(&w->cache.base, "del"), 1);
	assert_false(fake_user_cache_peek(&w->cache, u.id, NULL));
	/* The cache is forgotten after the last write, not between two of them. */
	const char *del = strstr(w->log.text, "cache.del");
	assert_non_null(del);
	assert_null(strstr(del, "repo."));

	assert_int_equal(user_service_set_role(&w->users, u.id, ROLE_USER, &got, &err), HEX_OK);
	assert_int_equal(got.role, ROLE_USER);
	assert_int_equal(got.token_version, 2);
}

static void set_role_errors(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	struct user got;
	struct hex_err err = {0};
	assert_int_equal(user_service_set_role(&w->users, UNKNOWN_ID, ROLE_ADMIN, &got, &err),
	                 HEX_NOT_FOUND);
	assert_err(&err, NULL, "user not found");

	fake_fail_next(&w->repo.base, "update", HEX_UNAVAILABLE);
	assert_int_equal(user_service_set_role(&w->users, u.id, ROLE_ADMIN, &got, &err),
	                 HEX_UNAVAILABLE);
	assert_err(&err, NULL, DB_DOWN_MSG);
	const struct fake_user_row *row = fake_user_repo_find(&w->repo, u.id);
	assert_int_equal(row->user.role, ROLE_USER);
}

/*
 * set_role's own rule: "a role change must not leave stale tokens valid". When ending the
 * sessions fails, the change must not be half done: either the role is unchanged, or the
 * old tokens are dead: the repository does both in one transaction.
 */
static void set_role_failure_leaves_no_stale_session(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "admin@example.com", "password-1");
	struct user got;
	struct hex_err err = {0};
	assert_int_equal(user_service_set_role(&w->users, u.id, ROLE_ADMIN, &got, &err), HEX_OK);
	int64_t ver = got.token_version;
	add_refresh_token(w, u.id, 1);

	/* Demotion, and the database fails. */
	fake_fail_next(&w->repo.base, "update", HEX_UNAVAILABLE);
	assert_int_equal(user_service_set_role(&w->users, u.id, ROLE_USER, &got, &err),
	                 HEX_UNAVAILABLE);
	assert_false(fake_fail_pending(&w->repo.base));
	const struct fake_user_row *row = fake_user_repo_find(&w->repo, u.id);
	bool role_unchanged = row->user.role == ROLE_ADMIN;
	bool sessions_ended = row->user.token_version != ver &&
	                      fake_refresh_repo_live(&w->refresh, u.id, w->clock.now_us) == 0;
	if (!role_unchanged && !sessions_ended)
		fail_msg("role changed to user but the admin's tokens (ver %lld) stay valid",
		         (long long)ver);
}

static void revoke_sessions_ends_tokens(void **state)
{
	struct fake_world *w = *state;
	struct user u = create_user(w, "alice@example.com", "password-1");
	add_refresh_token(w, u.id, 1);
	add_refresh_token(w, u.id, 2);
	fake_user_cache_store(&w->cache, &u);
	fake_clock_advance_s(&w->clock, 3);
	fake_world_reset_calls(w);

	struct hex_err err = {0};
	assert_int_equal(user_service_revoke_sessions(&w->users, u.id, &err), HEX_OK);
	const struct fake_user_row *row = fake_user_repo_find(&w->repo, u.id);
	assert_int_equal(row->user.token_version, 1);
	assert_int_equal(fake_refresh_repo_live(&w->refresh, u.id, w->clock.now_us), 0);
	assert_true(fake_log_has(&w->log, "repo.revoke_sessions cache.del"));
	assert_false(fake_user_cache_peek(&w->cache, u.id, NULL));
	/* A reader sees the new version at once. */
	struct user got;
	assert_int_equal(user_service_read(&w->users, u.id, &got, &err), HEX_OK);
	assert_int_equal(got.token_version, 1);

	assert_int_equal(user_service_revoke_sessions(&w->users, UNKNOWN_ID, &err), HEX_NOT_FOUND);
	assert_err(&err, NULL, "user not found");
}

/* ---- every use case maps repository failures to a safe answer ---- */

static struct user g_target;

static enum hex_status run_create(struct fake_world *w, struct hex_err *err)
{
	struct user u;
	return user_service_create(&w->users, "new@example.com", "password-1", &u, err);
}

static enum hex_status run_read(struct fake_world *w, struct hex_err *err)
{
	struct user u;
	return user_service_read(&w->users, g_target.id, &u, err);
}

static enum hex_status run_update(struct fake_world *w, struct hex_err *err)
{
	struct user u;
	struct user_changes ch = {.email = "other@example.com", .password = "password-2"};
	return user_service_update(&w->users, g_target.id, &ch, &u, err);
}

static enum hex_status run_delete(struct fake_world *w, struct hex_err *err)
{
	return user_service_delete(&w->users, g_target.id, err);
}

static enum hex_status run_list(struct fake_world *w, struct hex_err *err)
{
	static struct user_page page;
	struct user_filter f = {.membership = -1, .limit = 10};
	return user_service_list(&w->users, &f, &page, err);
}

static enum hex_status run_set_membership(struct fake_world *w, struct hex_err *err)
{
	struct user u;
	return user_service_set_membership(&w->users, g_target.id, MEMBERSHIP_MEMBER, &u, err);
}

static enum hex_status run_set_role(struct fake_world *w, struct hex_err *err)
{
	struct user u;
	return user_service_set_role(&w->users, g_target.id, ROLE_ADMIN, &u, err);
}

static enum hex_status run_revoke_sessions(struct fake_world *w, struct hex_err *err)
{
	return user_service_revoke_sessions(&w->users, g_target.id, err);
}

static void repo_failures_have_safe_answers(void **state)
{
	struct fake_world *w = *state;
	g_target = create_user(w, "target@example.com", "password-1");
	static const struct {
		const char *name;
		enum hex_status (*run)(struct fake_world *, struct hex_err *);
	} cases[] = {
	    {"create", run_create},     {"read", run_read},
	    {"update", run_update},     {"delete", run_delete},
	    {"list", run_list},         {"set_membership", run_set_membership},
	    {"set_role", run_set_role}, {"revoke_sessions", run_revoke_sessions},
	};
	static const struct {
		enum hex_status injected, want;
		const char *message;
	} faults[] = {
	    {HEX_UNAVAILABLE, HEX_UNAVAILABLE, DB_DOWN_MSG},
	    {HEX_INTERNAL, HEX_INTERNAL, INTERNAL_MSG},
	    /* A status the port never promises must not leak out as a client error. */
	    {HEX_INVALID, HEX_INTERNAL, INTERNAL_MSG},
	    {HEX_FORBIDDEN, HEX_INTERNAL, INTERNAL_MSG},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		for (size_t f = 0; f < sizeof faults / sizeof faults[0]; f++) {
			forget_cache(w);
			fake_world_reset_calls(w);
			/* The first database call of the use case fails. */
			fake_fail_next(&w->repo.base, NULL, faults[f].injected);
			struct hex_err err = {0};
			enum hex_status st = cases[c].run(w, &err);
			if (fake_fail_pending(&w->repo.base))
				fail_msg("%s never called the repository", cases[c].name);
			if (st != faults[f].want || err.field != NULL ||
			    strcmp(err.message, faults[f].message) != 0)
				fail_msg("%s with %s: got %s \"%s\", want %s \"%s\"", cases[c].name,
				         hex_status_name(faults[f].injected), hex_status_name(st),
				         err.message, hex_status_name(faults[f].want),
				         faults[f].message);
		}
	}
	/* Nothing was written by any of the failed attempts. */
	const struct fake_user_row *row = fake_user_repo_find(&w->repo, g_target.id);
	assert_non_null(row);
	assert_user_equal(&row->user, &g_target);
	assert_int_equal(w->repo.count, 1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(create_stores_lower_cased_email),
	    T(create_gives_each_user_its_own_id),
	    T(create_accepts_longest_password),
	    T(create_conflict_is_case_insensitive),
	    T(create_invalid_input_touches_nothing),
	    T(create_hasher_failure_is_internal),
	    T(read_cache_hit_skips_repo),
	    T(read_miss_fills_cache),
	    T(read_cache_down_falls_back_to_repo),
	    T(read_without_cache_configured),
	    T(read_unknown_id_not_found),
	    T(read_malformed_id_not_found_without_lookup),
	    T(read_repo_failure_is_not_cached),
	    T(update_email),
	    T(update_password_revokes_every_session),
	    T(update_email_and_password_together),
	    T(update_email_conflict),
	    T(update_conflict_with_password_changes_nothing),
	    T(update_invalid_input_writes_nothing),
	    T(update_unknown_user_not_found),
	    T(update_write_failure_still_forgets_cache),
	    T(update_password_failure_keeps_old_password_and_sessions),
	    T(update_hasher_failure_is_internal),
	    T(delete_removes_user_tokens_and_cache),
	    T(delete_unknown_user_not_found),
	    T(delete_failure_keeps_user_and_forgets_cache),
	    T(list_limit_bounds),
	    T(list_email_filter_is_normalised),
	    T(list_pages_in_creation_order),
	    T(list_membership_filter),
	    T(set_membership_keeps_sessions),
	    T(set_membership_errors),
	    T(set_role_revokes_sessions),
	    T(set_role_errors),
	    T(set_role_failure_leaves_no_stale_session),
	    T(revoke_sessions_ends_tokens),
	    T(repo_failures_have_safe_answers),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
