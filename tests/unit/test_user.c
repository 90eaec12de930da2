/* test_user: the user domain rules (email, password, id, membership and role names). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/user.h"

/* Normalises in; on success out holds the result, on failure err says why. */
static enum hex_status normalize(const char *in, char out[HEX_EMAIL_MAX + 1], struct hex_err *err)
{
	memset(err, 0, sizeof *err);
	memset(out, 'X', HEX_EMAIL_MAX + 1);
	return user_email_normalize(in, out, err);
}

static void assert_email_ok(const char *in, const char *want)
{
	char out[HEX_EMAIL_MAX + 1];
	struct hex_err err;
	enum hex_status st = normalize(in, out, &err);
	if (st != HEX_OK)
		fail_msg("\"%s\" refused: %s", in, err.message);
	assert_string_equal(out, want);
}

static void assert_email_bad(const char *in)
{
	char out[HEX_EMAIL_MAX + 1];
	struct hex_err err;
	enum hex_status st = normalize(in, out, &err);
	if (st != HEX_INVALID)
		fail_msg("\"%s\" gave %s, want invalid_request", in ? in : "(null)",
		         hex_status_name(st));
	assert_non_null(err.field);
	assert_string_equal(err.field, "email");
	assert_true(strlen(err.message) > 0);
}

/* An address of exactly len characters: a 64-character local part and a dotted domain. */
static void make_email(char *buf, size_t len)
{
	memset(buf, 'a', 64);
	buf[64] = '@';
	for (size_t i = 65; i < len; i++)
		buf[i] = (i - 65) % 10 == 9 ? '.' : 'b';
	if (buf[len - 1] == '.')
		buf[len - 1] = 'c';
	buf[len] = '\0';
}

static void email_is_lower_cased(void **state)
{
	assert_email_ok("Alice.Smith@Example.COM", "alice.smith@example.com");
	assert_email_ok("bob@example.com", "bob@example.com");
	assert_email_ok("BOB+Tag_1@Sub-Domain.Example.org", "bob+tag_1@sub-domain.example.org");
}

static void email_required(void **state)
{
	char out[HEX_EMAIL_MAX + 1];
	struct hex_err err;
	assert_int_equal(normalize(NULL, out, &err), HEX_INVALID);
	assert_string_equal(err.field, "email");
	assert_string_equal(err.message, "email is required");
	assert_int_equal(normalize("", out, &err), HEX_INVALID);
	assert_string_equal(err.field, "email");
	assert_string_equal(err.message, "email is required");
}

static void email_length_limit_is_254(void **state)
{
	char in[300], out[HEX_EMAIL_MAX + 1], want[300];
	struct hex_err err;
	make_email(in, 254);
	assert_int_equal(strlen(in), 254);
	assert_int_equal(normalize(in, out, &err), HEX_OK);
	assert_string_equal(out, in);

	make_email(in, 255);
	assert_int_equal(normalize(in, out, &err), HEX_INVALID);
	assert_string_equal(err.field, "email");
	snprintf(want, sizeof want, "email is longer than %d characters", HEX_EMAIL_MAX);
	assert_string_equal(err.message, want);

	make_email(in, 299);
	assert_email_bad(in);
}

static void email_local_part_limit_is_64(void **state)
{
	char in[100];
	memset(in, 'x', 64);
	strcpy(in + 64, "@example.com");
	assert_email_ok(in, in);
	memset(in, 'x', 65);
	strcpy(in + 65, "@example.com");
	assert_email_bad(in);
}

static void email_needs_exactly_one_at(void **state)
{
	assert_email_bad("alice.example.com");
	assert_email_bad("alice@@example.com");
	assert_email_bad("alice@example@example.com");
	assert_email_bad("@example.com");
	assert_email_bad("alice@");
}

static void email_domain_needs_dotted_labels(void **state)
{
	assert_email_bad("alice@example");
	assert_email_bad("alice@localhost");
	assert_email_bad("alice@.example.com");
	assert_email_bad("alice@example.com.");
	assert_email_bad("alice@example..com");
	assert_email_bad("alice@-example.com");
	assert_email_bad("alice@.c");
	assert_email_bad("alice@exa_mple.com");
	assert_email_bad("alice@[127.0.0.1]");
	assert_email_ok("alice@a.b", "alice@a.b");
}

/*
 * RFC 5321/5322 dot-atoms: a local part cannot start or end with a dot nor hold two in a
 * row; such addresses bounce, so accepting them lets a user register an address that can
 * never receive mail.
 */
static void email_local_part_dots(void **state)
{
	assert_email_ok("a.b.c@example.com", "a.b.c@example.com");
	assert_email_bad(".alice@example.com");
	assert_email_bad("alice.@example.com");
	assert_email_bad("al..ice@example.com");
}

static void email_refuses_spaces_and_controls(void **state)
{
	assert_email_bad("ali ce@example.com");
	assert_email_bad(" alice@example.com");
	assert_email_bad("alice@example.com ");
	assert_email_bad("alice@exa mple.com");
	assert_email_bad("alice\t@example.com");
	assert_email_bad("alice@example.com\n");
	assert_email_bad("ali\x7f"
	                 "ce@example.com");
}

static void email_refuses_quotes_and_brackets(void **state)
{
	assert_email_bad("\"alice\"@example.com");
	assert_email_bad("<alice>@example.com");
	assert_email_bad("al,ice@example.com");
	assert_email_bad("al:ice@example.com");
	assert_email_bad("al;ice@example.com");
	assert_email_bad("al(ice)@example.com");
	assert_email_bad("al\\ice@example.com");
}

static void email_refuses_non_ascii(void **state)
{
	assert_email_bad("j\xc3\xb6rg@example.com");              /* jörg */
	assert_email_bad("jorg@exa\xc3\xa4mple.com");             /* exämple */
	assert_email_bad("\xe7\x94\xa8\xe6\x88\xb7@example.com"); /* 用户 */
	assert_email_bad("jorg@example.c\xc3\xb6m");
}

static void email_normalize_without_err(void **state)
{
	/* Login normalises without an error detail: NULL err must be safe on both paths. */
	char out[HEX_EMAIL_MAX + 1];
	assert_int_equal(user_email_normalize("bad address@example.com", out, NULL), HEX_INVALID);
	assert_int_equal(user_email_normalize("ok@example.com", out, NULL), HEX_OK);
	assert_string_equal(out, "ok@example.com");
}

static enum hex_status check_password_of_len(size_t len, struct hex_err *err)
{
	static char pw[HEX_PASSWORD_MAX + 10];
	memset(pw, 'p', len);
	pw[len] = '\0';
	memset(err, 0, sizeof *err);
	return user_password_check(pw, err);
}

static void password_length_bounds(void **state)
{
	struct hex_err err;
	assert_int_equal(check_password_of_len(7, &err), HEX_INVALID);
	assert_string_equal(err.field, "password");
	assert_string_equal(err.message, "password must be at least 8 characters");
	assert_int_equal(check_password_of_len(0, &err), HEX_INVALID);
	assert_string_equal(err.field, "password");
	assert_int_equal(check_password_of_len(8, &err), HEX_OK);
	assert_int_equal(check_password_of_len(1024, &err), HEX_OK);
	assert_int_equal(check_password_of_len(1025, &err), HEX_INVALID);
	assert_string_equal(err.field, "password");
	assert_string_equal(err.message, "password must be at most 1024 characters");
}

static void password_required(void **state)
{
	struct hex_err err = {0};
	assert_int_equal(user_password_check(NULL, &err), HEX_INVALID);
	assert_string_equal(err.field, "password");
	assert_string_equal(err.message, "password is required");
	assert_int_equal(user_password_check(NULL, NULL), HEX_INVALID);
}

static void user_id_valid_accepts_canonical_uuids(void **state)
{
	assert_true(user_id_valid("00000000-0000-4000-8000-000000000001"));
	assert_true(user_id_valid("0190f1a2-7b3c-7def-8a12-3456789abcde"));
	assert_true(user_id_valid("ffffffff-ffff-ffff-ffff-ffffffffffff"));
}

static void user_id_valid_refuses_the_rest(void **state)
{
	static const char *const bad[] = {
	    "",
	    "0190f1a2-7b3c-7def-8a12-3456789abcd",   /* 35 */
	    "0190f1a2-7b3c-7def-8a12-3456789abcdef", /* 37 */
	    "0190f1a27b3c7def8a123456789abcde",      /* no dashes */
	    "0190f1a2-7b3c-7def-8a123-456789abcde",  /* dash misplaced */
	    "0190f1a2-7b3c-7def-8a12-3456789abcdg",  /* not hex */
	    "0190f1a2-7b3c-7def-8a12_3456789abcde",
	    "{190f1a2-7b3c-7def-8a12-3456789abcd}",
	    "0190f1a2-7b3c-7def-8a12-3456789abc e",
	    "0190f1a2-7b3c-7def-8a12-3456789abc\xc3\xa9",
	    "../../../../../../../../../etc/pass",
	    "1 OR 1=1; DROP TABLE users; --------",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (user_id_valid(bad[i]))
			fail_msg("accepted id \"%s\"", bad[i]);
	assert_false(user_id_valid(NULL));
}

static void membership_names_round_trip(void **state)
{
	enum membership m = MEMBERSHIP_MEMBER;
	assert_string_equal(membership_name(MEMBERSHIP_FREE), "free");
	assert_string_equal(membership_name(MEMBERSHIP_MEMBER), "member");
	assert_true(membership_parse("free", &m));
	assert_int_equal(m, MEMBERSHIP_FREE);
	assert_true(membership_parse("member", &m));
	assert_int_equal(m, MEMBERSHIP_MEMBER);
}

static void membership_parse_refuses_unknown(void **state)
{
	static const char *const bad[] = {"", "Member", "FREE", "members", "gold", "free "};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum membership m = MEMBERSHIP_MEMBER;
		if (membership_parse(bad[i], &m))
			fail_msg("accepted membership \"%s\"", bad[i]);
		assert_int_equal(m, MEMBERSHIP_MEMBER); /* untouched */
	}
	enum membership m = MEMBERSHIP_FREE;
	assert_false(membership_parse(NULL, &m));
	assert_int_equal(m, MEMBERSHIP_FREE);
}

static void role_names_round_trip(void **state)
{
	enum user_role r = ROLE_ADMIN;
	assert_string_equal(user_role_name(ROLE_USER), "user");
	assert_string_equal(user_role_name(ROLE_ADMIN), "admin");
	assert_true(user_role_parse("user", &r));
	assert_int_equal(r, ROLE_USER);
	assert_true(user_role_parse("admin", &r));
	assert_int_equal(r, ROLE_ADMIN);
}

static void role_parse_refuses_unknown(void **state)
{
	static const char *const bad[] = {"", "Admin", "root", "superuser", "admin\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum user_role r = ROLE_USER;
		if (user_role_parse(bad[i], &r))
			fail_msg("accepted role \"%s\"", bad[i]);
		assert_int_equal(r, ROLE_USER);
	}
	enum user_role r = ROLE_USER;
	assert_false(user_role_parse(NULL, &r));
	assert_int_equal(r, ROLE_USER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(email_is_lower_cased),
	    cmocka_unit_test(email_required),
	    cmocka_unit_test(email_length_limit_is_254),
	    cmocka_unit_test(email_local_part_limit_is_64),
	    cmocka_unit_test(email_needs_exactly_one_at),
	    cmocka_unit_test(email_domain_needs_dotted_labels),
	    cmocka_unit_test(email_local_part_dots),
	    cmocka_unit_test(email_refuses_spaces_and_controls),
	    cmocka_unit_test(email_refuses_quotes_and_brackets),
	    cmocka_unit_test(email_refuses_non_ascii),
	    cmocka_unit_test(email_normalize_without_err),
	    cmocka_unit_test(password_length_bounds),
	    cmocka_unit_test(password_required),
	    cmocka_unit_test(user_id_valid_accepts_canonical_uuids),
	    cmocka_unit_test(user_id_valid_refuses_the_rest),
	    cmocka_unit_test(membership_names_round_trip),
	    cmocka_unit_test(membership_parse_refuses_unknown),
	    cmocka_unit_test(role_names_round_trip),
	    cmocka_unit_test(role_parse_refuses_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
