/* test_auth_service: login, refresh rotation and reuse, logout and bearer checks, on fakes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "support/fakes.h"

#define ALICE_PW     "alice-password"
#define BOB_PW       "bob-password"
#define BAD_CREDS    "invalid email or password"
#define DB_DOWN_MSG  "the database is unavailable"
#define INTERNAL_MSG "internal error"
#define REUSE_MSG    "refresh token reuse detected; please log in again"

/* Every test starts with two users, alice and bob, and the default policy. */
static struct user alice, bob;

static struct user create_user(struct fake_world *w, const char *email, const char *password)
{
	struct user u;
	struct hex_err err = {0};
	enum hex_status st = user_service_create(&w->users, email, password, &u, &err);
	if (st != HEX_OK)
		fail_msg("create %s: %s: %s", email, hex_status_name(st), err.message);
	return u;
}

static int setup(void **state)
{
	struct fake_world *w = fake_world_new();
	alice = create_user(w, "alice@example.com", ALICE_PW);
	bob = create_user(w, "bob@example.com", BOB_PW);
	fake_world_reset_calls(w);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	fake_world_free(*state);
	return 0;
}

static enum hex_status login(struct fake_world *w, const char *email, const char *password,
                             const char *addr, struct auth_tokens *out, struct hex_err *err)
{
	memset(err, 0, sizeof *err);
	memset(out, 0, sizeof *out);
	return auth_service_login(&w->auth, email, password, addr, out, err);
}

static void login_ok(struct fake_world *w, const char *email, const char *password,
                     struct auth_tokens *out)
{
	struct hex_err err;
	enum hex_status st = login(w, email, password, "192.0.2.1", out, &err);
	if (st != HEX_OK)
		fail_msg("login %s: %s: %s", email, hex_status_name(st), err.message);
}

static enum hex_status refresh_from(struct fake_world *w, const char *token, const char *addr,
                                    struct auth_tokens *out, struct hex_err *err)
{
	memset(err, 0, sizeof *err);
	memset(out, 0, sizeof *out);
	return auth_service_refresh(&w->auth, token, addr, out, err);
}

static enum hex_status refresh(struct fake_world *w, const char *token, struct auth_tokens *out,
                               struct hex_err *err)
{
	return refresh_from(w, token, "192.0.2.1", out, err);
}

static enum hex_status authenticate(struct fake_world *w, const char *token, struct principal *p,
                                    struct hex_err *err)
{
	memset(err, 0, sizeof *err);
	return auth_service_authenticate(&w->auth, token, false, p, err);
}

static struct token_claims claims_of(const char *token)
{
	struct token_claims c;
	if (!fake_signer_peek(token, &c))
		fail_msg("not a token: \"%s\"", token);
	return c;
}

/* token with its role claim rewritten to admin, keeping the old signature. */
static void forge_admin_role(const char *token, char forged[HEX_TOKEN_MAX])
{
	const char *role = strstr(token, "|user|");
	assert_non_null(role);
	snprintf(forged, HEX_TOKEN_MAX, "%.*s|admin|%s", (int)(role - token), token, role + 6);
	struct token_claims c;
	assert_true(fake_signer_peek(forged, &c));
	assert_int_equal(c.role, ROLE_ADMIN);
}

static void assert_bad_credentials(enum hex_status st, const struct hex_err *err)
{
	assert_int_equal(st, HEX_UNAUTHENTICATED);
	assert_null(err->field);
	assert_string_equal(err->message, BAD_CREDS);
}

/* ---- login ---- */

static void login_issues_tokens_from_policy(void **state)
{
	struct fake_world *w = *state;
	w->auth.policy.access_ttl_s = 600;
	w->auth.policy.refresh_ttl_s = 3600;
	struct auth_tokens t;
	login_ok(w, "Alice@Example.COM", ALICE_PW, &t);
	int64_t now = FAKE_T0_S;

	assert_string_equal(t.user.id, alice.id);
	assert_string_equal(t.user.email, "alice@example.com");
	assert_int_equal(t.expires_in, 600);

	struct token_claims a = claims_of(t.access_token);
	assert_int_equal(a.type, TOKEN_ACCESS);
	assert_string_equal(a.sub, alice.id);
	assert_int_equal(a.role, ROLE_USER);
	assert_int_equal(a.ver, 0);
	assert_int_equal(a.iat, now);
	assert_int_equal(a.exp, now + 600);
	assert_true(user_id_valid(a.jti));

	struct token_claims r = claims_of(t.refresh_token);
	assert_int_equal(r.type, TOKEN_REFRESH);
	assert_string_equal(r.sub, alice.id);
	assert_int_equal(r.exp, now + 3600);
	assert_string_not_equal(r.jti, a.jti);

	/* The server remembers the refresh token: a new family, expiring with the token. */
	const struct fake_refresh_row *row = fake_refresh_repo_find(&w->refresh, r.jti);
	assert_non_null(row);
	assert_string_equal(row->rec.user_id, alice.id);
	assert_string_equal(row->rec.family_id, r.jti);
	assert_int_equal(row->rec.expires_at_us, (now + 3600) * 1000000LL);
	assert_false(row->used);
	assert_false(row->revoked);
	assert_int_equal(fake_calls(&w->hasher.base, "verify"), 1);
	assert_string_equal(w->hasher.last_verified_hash, "h:" ALICE_PW);

	/* And the access token opens the door. */
	struct principal p;
	struct hex_err err;
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_OK);
	assert_string_equal(p.user.id, alice.id);
}

static void login_uses_default_policy(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens t;
	login_ok(w, "alice@example.com", ALICE_PW, &t);
	assert_int_equal(t.expires_in, 900);
	assert_int_equal(claims_of(t.access_token).exp, FAKE_T0_S + 900);
	assert_int_equal(claims_of(t.refresh_token).exp, FAKE_T0_S + 604800);
}

static void login_token_carries_role_and_version(void **state)
{
	struct fake_world *w = *state;
	struct user u;
	struct hex_err err;
	assert_int_equal(user_service_set_role(&w->users, bob.id, ROLE_ADMIN, &u, &err), HEX_OK);
	assert_int_equal(user_service_revoke_sessions(&w->users, bob.id, &err), HEX_OK);
	struct auth_tokens t;
	login_ok(w, "bob@example.com", BOB_PW, &t);
	struct token_claims c = claims_of(t.access_token);
	assert_int_equal(c.role, ROLE_ADMIN);
	assert_int_equal(c.ver, 2);
	assert_int_equal(claims_of(t.refresh_token).ver, 2);
	struct principal p;
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_OK);
	assert_int_equal(p.user.role, ROLE_ADMIN);
	assert_int_equal(p.claims.role, ROLE_ADMIN);
}

static void login_unknown_email_and_wrong_password_look_alike(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens t;
	struct hex_err wrong, unknown;

	assert_bad_credentials(
	    login(w, "alice@example.com", "not-her-password", "192.0.2.1", &t, &wrong), &wrong);
	assert_int_equal(fake_calls(&w->hasher.base, "verify"), 1);
	assert_string_equal(w->hasher.last_verified_hash, "h:" ALICE_PW);

	assert_bad_credentials(login(w, "nobody@example.com", ALICE_PW, "192.0.2.1", &t, &unknown),
	                       &unknown);
	assert_int_equal(fake_calls(&w->hasher.base, "verify"), 2);
	/* Same work: a real hash (the dummy), not an empty string that fails fast. */
	assert_true(strlen(w->auth.dummy_hash) > 0);
	assert_string_equal(w->hasher.last_verified_hash, w->auth.dummy_hash);

	assert_string_equal(wrong.message, unknown.message);
	assert_int_equal(wrong.retry_after_s, unknown.retry_after_s);
	assert_int_equal(t.access_token[0], '\0');
	assert_int_equal(fake_calls(&w->signer.base, "sign"), 0);
	assert_int_equal(fake_calls(&w->refresh.base, "insert"), 0);
}

static void login_unknown_email_with_dummy_password_fails(void **state)
{
	struct fake_world *w = *state;
	/* The fake hash is "h:" + password: recover the password nobody has. */
	assert_memory_equal(w->auth.dummy_hash, "h:", 2);
	const char *dummy_password = w->auth.dummy_hash + 2;
	struct auth_tokens t;
	struct hex_err err;
	assert_bad_credentials(login(w, "nobody@example.com", dummy_password, NULL, &t, &err),
	                       &err);
	assert_int_equal(fake_calls(&w->hasher.base, "verify"), 1);
	assert_int_equal(fake_calls(&w->refresh.base, "insert"), 0);
}

static void login_invalid_email_still_verifies_once(void **state)
{
	struct fake_world *w = *state;
	static const char *const emails[] = {"", "not-an-email", "alice@@example.com",
	                                     "ali ce@example.com"};
	for (size_t i = 0; i < sizeof emails / sizeof emails[0]; i++) {
		struct auth_tokens t;
		struct hex_err err;
		assert_bad_credentials(login(w, emails[i], ALICE_PW, NULL, &t, &err), &err);
		if (fake_calls(&w->hasher.base, "verify") != (int)i + 1)
			fail_msg("\"%s\": %d verifies after %zu logins", emails[i],
			         fake_calls(&w->hasher.base, "verify"), i + 1);
	}
	struct auth_tokens t;
	struct hex_err err;
	assert_bad_credentials(login(w, NULL, ALICE_PW, NULL, &t, &err), &err);
	assert_int_equal(fake_calls(&w->hasher.base, "verify"), 5);
	assert_int_equal(fake_calls(&w->repo.base, "get_by_email"), 0);
}

static void login_refuses_missing_or_huge_password(void **state)
{
	struct fake_world *w = *state;
	static char huge[HEX_PASSWORD_MAX + 2];
	memset(huge, 'p', sizeof huge - 1);
	struct auth_tokens t;
	struct hex_err err;
	assert_bad_credentials(login(w, "alice@example.com", NULL, NULL, &t, &err), &err);
	assert_bad_credentials(login(w, "alice@example.com", huge, NULL, &t, &err), &err);
	/* An oversized password is refused before any hashing work (no cheap CPU burn). */
	assert_int_equal(fake_calls(&w->hasher.base, "verify"), 0);
	assert_bad_credentials(login(w, "alice@example.com", "", NULL, &t, &err), &err);
	assert_int_equal(fake_calls(&w->signer.base, "sign"), 0);
}

static void login_rate_limited_per_email(void **state)
{
	struct fake_world *w = *state;
	w->auth.policy.login_limit_per_email = 3;
	w->auth.policy.login_window_s = 60;
	fake_clock_advance_s(&w->clock, 20); /* 20 s into a window */
	struct auth_tokens t;
	struct hex_err err;
	for (int i = 0; i < 3; i++)
		assert_bad_credentials(login(w, "alice@example.com", "guess-guess", NULL, &t, &err),
		                       &err);
	/* Over the limit even with the right password, in any letter case. */
	assert_int_equal(login(w, "ALICE@example.com", ALICE_PW, NULL, &t, &err), HEX_RATE_LIMITED);
	assert_int_equal(err.retry_after_s, 40);
	assert_null(err.field);
	assert_non_null(strstr(err.message, "40"));
	assert_int_equal(t.access_token[0], '\0');
	/* No password work is spent on a limited attempt. */
	assert_int_equal(fake_calls(&w->hasher.base, "verify"), 3);

	/* Another account is not affected. */
	login_ok(w, "bob@example.com", BOB_PW, &t);

	fake_clock_advance_s(&w->clock, 39);
	assert_int_equal(login(w, "alice@example.com", ALICE_PW, NULL, &t, &err), HEX_RATE_LIMITED);
	assert_int_equal(err.retry_after_s, 1);
	fake_clock_advance_s(&w->clock, 1);
	login_ok(w, "alice@example.com", ALICE_PW, &t);
}

static void login_rate_limited_per_address(void **state)
{
	struct fake_world *w = *state;
	w->auth.policy.login_limit_per_addr = 2;
	struct auth_tokens t;
	struct hex_err err;
	assert_bad_credentials(login(w, "x1@example.com", "password-1", "198.51.100.7", &t, &err),
	                       &err);
	assert_bad_credentials(login(w, "x2@example.com", "password-1", "198.51.100.7", &t, &err),
	                       &err);
	assert_int_equal(login(w, "alice@example.com", ALICE_PW, "198.51.100.7", &t, &err),
	                 HEX_RATE_LIMITED);
	assert_int_equal(err.retry_after_s, 60);
	/* An invalid email counts against the address too. */
	assert_int_equal(login(w, "garbage", "password-1", "198.51.100.7", &t, &err),
	                 HEX_RATE_LIMITED);
	assert_int_equal(fake_calls(&w->hasher.base, "verify"), 2);

	/* Other addresses, and callers without one, are not limited. */
	assert_int_equal(login(w, "alice@example.com", ALICE_PW, "198.51.100.8", &t, &err), HEX_OK);
	for (int i = 0; i < 4; i++)
		assert_int_equal(login(w, "alice@example.com", ALICE_PW, NULL, &t, &err), HEX_OK);
}

static void login_limits_can_be_off(void **state)
{
	struct fake_world *w = *state;
	w->auth.policy.login_limit_per_email = 0;
	w->auth.policy.login_limit_per_addr = 0;
	struct auth_tokens t;
	struct hex_err err;
	for (int i = 0; i < 20; i++)
		assert_bad_credentials(
		    login(w, "alice@example.com", "wrong-pass", "192.0.2.9", &t, &err), &err);
	assert_int_equal(fake_calls(&w->limiter.base, "hit"), 0);

	auth_policy_defaults(&w->auth.policy);
	w->auth.limiter.ops = NULL;
	for (int i = 0; i < 20; i++)
		assert_bad_credentials(
		    login(w, "alice@example.com", "wrong-pass", "192.0.2.9", &t, &err), &err);
	login_ok(w, "alice@example.com", ALICE_PW, &t);
}

static void refresh_rate_limited_per_address(void **state)
{
	struct fake_world *w = *state;
	w->auth.policy.refresh_limit_per_addr = 2;
	struct auth_tokens first, next, t;
	struct hex_err err;
	login_ok(w, "alice@example.com", ALICE_PW, &first);
	fake_clock_advance_s(&w->clock, 15);
	/* Garbage counts against the address too: the limit comes before any token work. */
	assert_int_equal(refresh_from(w, "garbage", "198.51.100.7", &t, &err), HEX_UNAUTHENTICATED);
	assert_int_equal(refresh_from(w, first.refresh_token, "198.51.100.7", &next, &err), HEX_OK);
	int verifies = fake_calls(&w->signer.base, "verify");
	assert_int_equal(refresh_from(w, next.refresh_token, "198.51.100.7", &t, &err),
	                 HEX_RATE_LIMITED);
	assert_int_equal(err.retry_after_s, 45);
	assert_non_null(strstr(err.message, "token refreshes"));
	assert_int_equal(t.access_token[0], '\0');
	assert_int_equal(fake_calls(&w->signer.base, "verify"), verifies);
	/* The limited token was not spent: it still works from elsewhere, and after the window. */
	assert_int_equal(refresh_from(w, next.refresh_token, "198.51.100.8", &t, &err), HEX_OK);
	fake_clock_advance_s(&w->clock, 45);
	assert_int_equal(refresh_from(w, t.refresh_token, "198.51.100.7", &next, &err), HEX_OK);
}

static void login_database_down(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens t;
	struct hex_err err;
	fake_fail_next(&w->repo.base, "get_by_email", HEX_UNAVAILABLE);
	assert_int_equal(login(w, "alice@example.com", ALICE_PW, NULL, &t, &err), HEX_UNAVAILABLE);
	assert_string_equal(err.message, DB_DOWN_MSG);
	assert_false(fake_fail_pending(&w->repo.base));
	assert_int_equal(t.access_token[0], '\0');

	fake_fail_next(&w->repo.base, "get_by_email", HEX_INTERNAL);
	assert_int_equal(login(w, "alice@example.com", ALICE_PW, NULL, &t, &err), HEX_INTERNAL);
	assert_string_equal(err.message, INTERNAL_MSG);
	assert_int_equal(fake_calls(&w->refresh.base, "insert"), 0);
	assert_int_equal(fake_calls(&w->signer.base, "sign"), 0);
}

static void login_refresh_store_down(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens t;
	struct hex_err err;
	fake_fail_next(&w->refresh.base, "insert", HEX_UNAVAILABLE);
	assert_int_equal(login(w, "alice@example.com", ALICE_PW, NULL, &t, &err), HEX_UNAVAILABLE);
	assert_string_equal(err.message, DB_DOWN_MSG);
	fake_fail_next(&w->refresh.base, "insert", HEX_INTERNAL);
	assert_int_equal(login(w, "alice@example.com", ALICE_PW, NULL, &t, &err), HEX_INTERNAL);
	assert_string_equal(err.message, INTERNAL_MSG);
	assert_int_equal(fake_calls(&w->signer.base, "sign"), 0);
	assert_int_equal(w->refresh.count, 0);
}

static void login_signer_failure_is_internal(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens t;
	struct hex_err err;
	fake_fail_next(&w->signer.base, "sign", HEX_INTERNAL);
	assert_int_equal(login(w, "alice@example.com", ALICE_PW, NULL, &t, &err), HEX_INTERNAL);
	assert_string_equal(err.message, INTERNAL_MSG);
	assert_false(fake_fail_pending(&w->signer.base));
}

/* ---- refresh ---- */

static void refresh_rotates_and_old_token_dies(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens first, second, third;
	struct hex_err err;
	login_ok(w, "alice@example.com", ALICE_PW, &first);
	fake_clock_advance_s(&w->clock, 10);

	assert_int_equal(refresh(w, first.refresh_token, &second, &err), HEX_OK);
	assert_string_not_equal(second.refresh_token, first.refresh_token);
	assert_string_not_equal(second.access_token, first.access_token);
	assert_string_equal(second.user.id, alice.id);
	assert_int_equal(second.expires_in, 900);
	struct token_claims a = claims_of(second.access_token);
	assert_string_equal(a.sub, alice.id);
	assert_int_equal(a.iat, FAKE_T0_S + 10);
	assert_int_equal(a.exp, FAKE_T0_S + 10 + 900);
	struct token_claims r1 = claims_of(first.refresh_token);
	struct token_claims r2 = claims_of(second.refresh_token);
	assert_int_equal(r2.exp, FAKE_T0_S + 10 + 604800);
	/* The successor belongs to the login's family. */
	assert_string_equal(fake_refresh_repo_find(&w->refresh, r2.jti)->rec.family_id,
	                    fake_refresh_repo_find(&w->refresh, r1.jti)->rec.family_id);
	assert_true(fake_refresh_repo_find(&w->refresh, r1.jti)->used);

	struct principal p;
	assert_int_equal(authenticate(w, second.access_token, &p, &err), HEX_OK);
	/* The chain goes on. */
	assert_int_equal(refresh(w, second.refresh_token, &third, &err), HEX_OK);
	assert_int_equal(fake_refresh_repo_live(&w->refresh, alice.id, w->clock.now_us), 1);
}

static void refresh_reuse_revokes_the_family(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens first, second, again, other, t;
	struct hex_err err;
	login_ok(w, "alice@example.com", ALICE_PW, &first);
	login_ok(w, "alice@example.com", ALICE_PW, &other); /* another device, another family */
	assert_int_equal(refresh(w, first.refresh_token, &second, &err), HEX_OK);

	/* The first token comes back: someone kept a copy. */
	assert_int_equal(refresh(w, first.refresh_token, &again, &err), HEX_UNAUTHENTICATED);
	assert_string_equal(err.message, REUSE_MSG);
	assert_int_equal(again.access_token[0], '\0');
	assert_int_equal(fake_calls(&w->refresh.base, "revoke_family"), 1);

	/* The legitimate successor is dead too. */
	assert_int_equal(refresh(w, second.refresh_token, &t, &err), HEX_UNAUTHENTICATED);
	assert_int_equal(t.refresh_token[0], '\0');
	/* The other device's family lives on. */
	assert_int_equal(refresh(w, other.refresh_token, &t, &err), HEX_OK);
}

static void refresh_expired_token_refused(void **state)
{
	struct fake_world *w = *state;
	w->auth.policy.refresh_ttl_s = 3600;
	struct auth_tokens a, b, t;
	struct hex_err err;
	login_ok(w, "alice@example.com", ALICE_PW, &a);
	login_ok(w, "alice@example.com", ALICE_PW, &b);
	fake_clock_advance_s(&w->clock, 3599);
	assert_int_equal(refresh(w, a.refresh_token, &t, &err), HEX_OK);
	fake_clock_advance_s(&w->clock, 1);
	assert_int_equal(refresh(w, b.refresh_token, &t, &err), HEX_UNAUTHENTICATED);
	assert_int_equal(t.access_token[0], '\0');
	fake_clock_advance_s(&w->clock, 86400);
	assert_int_equal(refresh(w, b.refresh_token, &t, &err), HEX_UNAUTHENTICATED);
}

/* The server's record expires even when a token would still verify (clock skew, policy). */
static void refresh_expired_record_refused(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens a, t;
	struct hex_err err;
	login_ok(w, "alice@example.com", ALICE_PW, &a);
	struct fake_refresh_row *row = &w->refresh.rows[0];
	assert_string_equal(row->rec.jti, claims_of(a.refresh_token).jti);
	row->rec.expires_at_us = w->clock.now_us;
	assert_int_equal(refresh(w, a.refresh_token, &t, &err), HEX_UNAUTHENTICATED);
	assert_string_equal(err.message, "refresh token is not valid");
	assert_int_equal(fake_calls(&w->refresh.base, "revoke_family"), 0);
}

static void refresh_refuses_other_token_kinds(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens a, t;
	struct hex_err err;
	login_ok(w, "alice@example.com", ALICE_PW, &a);
	fake_world_reset_calls(w);

	assert_int_equal(refresh(w, a.access_token, &t, &err), HEX_UNAUTHENTICATED);
	assert_true(strlen(err.message) > 0);
	static const char *const junk[] = {"", "garbage", "fake|refresh|x|y|user|0|0|0|hex|0"};
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
		assert_int_equal(refresh(w, junk[i], &t, &err), HEX_UNAUTHENTICATED);

	/* Signed by someone else. */
	struct token_claims c = claims_of(a.refresh_token);
	char forged[HEX_TOKEN_MAX];
	fake_signer_sign_as("evil", &c, forged);
	assert_int_equal(refresh(w, forged, &t, &err), HEX_UNAUTHENTICATED);
	/* Edited after signing. */
	forge_admin_role(a.refresh_token, forged);
	assert_int_equal(refresh(w, forged, &t, &err), HEX_UNAUTHENTICATED);

	assert_int_equal(fake_calls(&w->refresh.base, "rotate"), 0);
	/* The real token still works: failed attempts consumed nothing. */
	assert_int_equal(refresh(w, a.refresh_token, &t, &err), HEX_OK);
}

static void refresh_unknown_token_refused(void **state)
{
	struct fake_world *w = *state;
	struct token_claims c = {.type = TOKEN_REFRESH,
	                         .sub = "",
	                         .jti = "00000000-0000-4000-8000-00000000abcd",
	                         .iat = FAKE_T0_S,
	                         .exp = FAKE_T0_S + 60};
	hex_strlcpy(c.sub, alice.id, sizeof c.sub);
	char token[HEX_TOKEN_MAX];
	fake_signer_sign_as("hex", &c, token);
	struct auth_tokens t;
	struct hex_err err;
	assert_int_equal(refresh(w, token, &t, &err), HEX_UNAUTHENTICATED);
	assert_string_equal(err.message, "refresh token is not valid");
	assert_int_equal(w->refresh.count, 0);
}

static void refresh_after_logout_refused(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens a, t;
	struct hex_err err;
	login_ok(w, "alice@example.com", ALICE_PW, &a);
	assert_int_equal(auth_service_logout(&w->auth, alice.id, &err), HEX_OK);
	assert_int_equal(refresh(w, a.refresh_token, &t, &err), HEX_UNAUTHENTICATED);
	assert_int_equal(t.access_token[0], '\0');
}

static void refresh_after_delete_refused(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens a, t;
	struct hex_err err;
	login_ok(w, "alice@example.com", ALICE_PW, &a);
	assert_int_equal(user_service_delete(&w->users, alice.id, &err), HEX_OK);
	assert_int_equal(refresh(w, a.refresh_token, &t, &err), HEX_UNAUTHENTICATED);
	assert_string_equal(err.message, "refresh token is not valid");
}

static void refresh_database_down(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens a, t;
	struct hex_err err;
	login_ok(w, "alice@example.com", ALICE_PW, &a);
	fake_fail_next(&w->refresh.base, "rotate", HEX_UNAVAILABLE);
	assert_int_equal(refresh(w, a.refresh_token, &t, &err), HEX_UNAVAILABLE);
	assert_string_equal(err.message, DB_DOWN_MSG);
	fake_fail_next(&w->refresh.base, "rotate", HEX_INTERNAL);
	assert_int_equal(refresh(w, a.refresh_token, &t, &err), HEX_INTERNAL);
	assert_string_equal(err.message, INTERNAL_MSG);
	assert_int_equal(t.access_token[0], '\0');
	/* An outage is not reuse: the token still works once the database is back. */
	assert_int_equal(fake_calls(&w->refresh.base, "revoke_family"), 0);
	assert_int_equal(refresh(w, a.refresh_token, &t, &err), HEX_OK);
}

static void refresh_user_unreadable(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens a, t;
	struct hex_err err;
	login_ok(w, "alice@example.com", ALICE_PW, &a);
	w->cache.down = true;
	fake_fail_next(&w->repo.base, "get", HEX_UNAVAILABLE);
	assert_int_equal(refresh(w, a.refresh_token, &t, &err), HEX_UNAVAILABLE);
	assert_string_equal(err.message, DB_DOWN_MSG);
	assert_false(fake_fail_pending(&w->repo.base));
	assert_int_equal(t.access_token[0], '\0');
	assert_int_equal(t.refresh_token[0], '\0');
}

/* ---- logout ---- */

static void logout_revokes_every_token(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens a1, a2, b;
	struct principal p;
	struct hex_err err;
	login_ok(w, "alice@example.com", ALICE_PW, &a1);
	login_ok(w, "alice@example.com", ALICE_PW, &a2);
	login_ok(w, "bob@example.com", BOB_PW, &b);
	/* Warm the cache so that a stale entry would show. */
	assert_int_equal(authenticate(w, a1.access_token, &p, &err), HEX_OK);

	assert_int_equal(auth_service_logout(&w->auth, alice.id, &err), HEX_OK);
	assert_int_equal(authenticate(w, a1.access_token, &p, &err), HEX_UNAUTHENTICATED);
	assert_string_equal(err.message, "token has been revoked");
	assert_int_equal(authenticate(w, a2.access_token, &p, &err), HEX_UNAUTHENTICATED);
	assert_int_equal(fake_refresh_repo_live(&w->refresh, alice.id, w->clock.now_us), 0);

	/* Bob's session is his own. */
	assert_int_equal(authenticate(w, b.access_token, &p, &err), HEX_OK);
	assert_int_equal(fake_refresh_repo_live(&w->refresh, bob.id, w->clock.now_us), 1);

	/* A fresh login works again. */
	login_ok(w, "alice@example.com", ALICE_PW, &a1);
	assert_int_equal(authenticate(w, a1.access_token, &p, &err), HEX_OK);
}

static void logout_errors(void **state)
{
	struct fake_world *w = *state;
	struct hex_err err = {0};
	assert_int_equal(
	    auth_service_logout(&w->auth, "00000000-0000-4000-8000-0000deadbeef", &err),
	    HEX_NOT_FOUND);
	fake_fail_next(&w->repo.base, "revoke_sessions", HEX_UNAVAILABLE);
	assert_int_equal(auth_service_logout(&w->auth, alice.id, &err), HEX_UNAVAILABLE);
	assert_string_equal(err.message, DB_DOWN_MSG);
}

/* ---- authenticate ---- */

static void authenticate_loads_the_caller(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens t;
	struct principal p;
	struct hex_err err;
	login_ok(w, "bob@example.com", BOB_PW, &t);
	fake_world_reset_calls(w);
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_OK);
	assert_string_equal(p.user.id, bob.id);
	assert_string_equal(p.user.email, "bob@example.com");
	assert_string_equal(p.claims.sub, bob.id);
	assert_int_equal(p.claims.type, TOKEN_ACCESS);
	/* Through the cache: the second request does not touch the database. */
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_OK);
	assert_int_equal(fake_calls(&w->repo.base, "get"), 1);
}

static void authenticate_refuses_bad_tokens(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens t;
	struct principal p;
	struct hex_err err;
	login_ok(w, "alice@example.com", ALICE_PW, &t);
	fake_world_reset_calls(w);
	assert_int_equal(authenticate(w, t.refresh_token, &p, &err), HEX_UNAUTHENTICATED);
	assert_true(strlen(err.message) > 0);
	assert_int_equal(authenticate(w, "", &p, &err), HEX_UNAUTHENTICATED);
	assert_int_equal(authenticate(w, "Bearer x", &p, &err), HEX_UNAUTHENTICATED);

	/* Promoting oneself by editing the token. */
	char forged[HEX_TOKEN_MAX];
	forge_admin_role(t.access_token, forged);
	assert_int_equal(authenticate(w, forged, &p, &err), HEX_UNAUTHENTICATED);

	struct token_claims c = claims_of(t.access_token);
	fake_signer_sign_as("evil", &c, forged);
	assert_int_equal(authenticate(w, forged, &p, &err), HEX_UNAUTHENTICATED);
	assert_int_equal(fake_calls(&w->repo.base, "get"), 0);
}

static void authenticate_expired_token(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens t;
	struct principal p;
	struct hex_err err;
	login_ok(w, "alice@example.com", ALICE_PW, &t);
	fake_clock_advance_s(&w->clock, 899);
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_OK);
	fake_clock_advance_s(&w->clock, 1);
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_UNAUTHENTICATED);
	assert_true(strlen(err.message) > 0);
}

static void authenticate_deleted_user(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens t;
	struct principal p;
	struct hex_err err;
	login_ok(w, "alice@example.com", ALICE_PW, &t);
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_OK); /* cached */
	assert_int_equal(user_service_delete(&w->users, alice.id, &err), HEX_OK);
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_UNAUTHENTICATED);
	assert_string_equal(err.message, "the user no longer exists");
}

static void authenticate_after_password_change(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens t;
	struct principal p;
	struct hex_err err;
	struct user u;
	login_ok(w, "alice@example.com", ALICE_PW, &t);
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_OK);
	struct user_changes ch = {.password = "brand-new-password"};
	assert_int_equal(user_service_update(&w->users, alice.id, &ch, &u, &err), HEX_OK);

	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_UNAUTHENTICATED);
	assert_string_equal(err.message, "token has been revoked");
	struct auth_tokens t2;
	assert_int_equal(refresh(w, t.refresh_token, &t2, &err), HEX_UNAUTHENTICATED);

	assert_bad_credentials(login(w, "alice@example.com", ALICE_PW, NULL, &t, &err), &err);
	login_ok(w, "alice@example.com", "brand-new-password", &t);
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_OK);
	assert_int_equal(p.claims.ver, 1);
}

static void authenticate_after_role_change(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens t;
	struct principal p;
	struct hex_err err;
	struct user u;
	login_ok(w, "alice@example.com", ALICE_PW, &t);
	assert_int_equal(user_service_set_role(&w->users, alice.id, ROLE_ADMIN, &u, &err), HEX_OK);
	/* A token naming the old role must not keep working. */
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_UNAUTHENTICATED);
	login_ok(w, "alice@example.com", ALICE_PW, &t);
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_OK);
	assert_int_equal(p.claims.role, ROLE_ADMIN);
}

static void authenticate_with_dependencies_down(void **state)
{
	struct fake_world *w = *state;
	struct auth_tokens t;
	struct principal p;
	struct hex_err err;
	login_ok(w, "alice@example.com", ALICE_PW, &t);
	/* Cache down: the database answers. */
	w->cache.down = true;
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_OK);
	/* Both down: a clear 503, not a 401 that would log the user out. */
	fake_fail_next(&w->repo.base, "get", HEX_UNAVAILABLE);
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_UNAVAILABLE);
	assert_string_equal(err.message, DB_DOWN_MSG);
	/* Database down, cache up and warm: still served. */
	w->cache.down = false;
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_OK);
	fake_fail_next(&w->repo.base, "get", HEX_UNAVAILABLE);
	assert_int_equal(authenticate(w, t.access_token, &p, &err), HEX_OK);
	assert_true(fake_fail_pending(&w->repo.base));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(login_issues_tokens_from_policy),
	    T(login_uses_default_policy),
	    T(login_token_carries_role_and_version),
	    T(login_unknown_email_and_wrong_password_look_alike),
	    T(login_unknown_email_with_dummy_password_fails),
	    T(login_invalid_email_still_verifies_once),
	    T(login_refuses_missing_or_huge_password),
	    T(login_rate_limited_per_email),
	    T(login_rate_limited_per_address),
	    T(login_limits_can_be_off),
	    T(login_database_down),
	    T(login_refresh_store_down),
	    T(login_signer_failure_is_internal),
	    T(refresh_rate_limited_per_address),
	    T(refresh_rotates_and_old_token_dies),
	    T(refresh_reuse_revokes_the_family),
	    T(refresh_expired_token_refused),
	    T(refresh_expired_record_refused),
	    T(refresh_refuses_other_token_kinds),
	    T(refresh_unknown_token_refused),
	    T(refresh_after_logout_refused),
	    T(refresh_after_delete_refused),
	    T(refresh_database_down),
	    T(refresh_user_unreadable),
	    T(logout_revokes_every_token),
	    T(logout_errors),
	    T(authenticate_loads_the_caller),
	    T(authenticate_refuses_bad_tokens),
	    T(authenticate_expired_token),
	    T(authenticate_deleted_user),
	    T(authenticate_after_password_change),
	    T(authenticate_after_role_change),
	    T(authenticate_with_dependencies_down),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
