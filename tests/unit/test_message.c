/* test_message: the message domain rules (UTF-8 length, body bounds, ids, filter tags). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/message.h"
#include "core/xmalloc.h"

/* n copies of the UTF-8 text unit, NUL-terminated; the caller frees it. */
static char *repeat(const char *unit, size_t n)
{
	size_t len = strlen(unit);
	char *s = xmalloc(len * n + 1);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * len, unit, len);
	s[len * n] = '\0';
	return s;
}

static void assert_body_ok(const char *body)
{
	struct hex_err err = {0};
	enum hex_status st = message_body_check(body, &err);
	if (st != HEX_OK)
		fail_msg("body of %zu bytes refused: %s", strlen(body), err.message);
}

static void assert_body_bad(const char *body, const char *message)
{
	struct hex_err err = {0};
	assert_int_equal(message_body_check(body, &err), HEX_INVALID);
	assert_non_null(err.field);
	assert_string_equal(err.field, "body");
	assert_string_equal(err.message, message);
}

#define TOO_LONG "body must be at most 10000 characters"
#define EMPTY    "body must not be empty"
#define NOT_UTF8 "body must be valid UTF-8"

static void utf8_length_counts_code_points(void **state)
{
	assert_int_equal(message_utf8_length(""), 0);
	assert_int_equal(message_utf8_length("abc"), 3);
	assert_int_equal(message_utf8_length("\xc3\xa9"), 1);         /* é */
	assert_int_equal(message_utf8_length("\xe2\x82\xac"), 1);     /* € */
	assert_int_equal(message_utf8_length("\xf0\x9f\x98\x80"), 1); /* 😀 */
	assert_int_equal(message_utf8_length("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"), 5);
	/* A combining accent is a code point of its own: e + U+0301 is two. */
	assert_int_equal(message_utf8_length("e\xcc\x81"), 2);
	/* The extremes of each length. */
	assert_int_equal(message_utf8_length("\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf"), 5);
	assert_int_equal(message_utf8_length("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"), 2);
}

static void utf8_length_refuses_malformed_text(void **state)
{
	const char *bad[] = {
	    "\x80",             /* a lone continuation byte */
	    "a\xbf",            /* another */
	    "\xc3",             /* cut short at the end */
	    "\xe2\x82",         /* cut short */
	    "\xf0\x9f\x98",     /* cut short */
	    "\xc3\x41",         /* a lead byte followed by ASCII */
	    "\xc0\x80",         /* overlong NUL */
	    "\xc1\xbf",         /* overlong */
	    "\xe0\x80\x80",     /* overlong 3-byte */
	    "\xe0\x9f\xbf",     /* overlong 3-byte, at the edge */
	    "\xf0\x80\x80\x80", /* overlong 4-byte */
	    "\xf0\x8f\xbf\xbf", /* overlong 4-byte, at the edge */
	    "\xed\xa0\x80",     /* UTF-16 surrogate U+D800 */
	    "\xed\xbf\xbf",     /* surrogate U+DFFF */
	    "\xf4\x90\x80\x80", /* U+110000, beyond Unicode */
	    "\xf5\x80\x80\x80", /* never a lead byte */
	    "\xff",
	    "\xfe",
	    "ok\xe2\x82\xac\xe2\x28\xa1", /* valid text, then a bad continuation */
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		if (message_utf8_length(bad[i]) != -1)
			fail_msg("case %zu accepted as UTF-8", i);
	}
}

static void body_bounds_in_ascii(void **state)
{
	assert_body_ok("x");
	assert_body_ok(" hello ");
	char *max = repeat("a", HEX_MESSAGE_BODY_MAX);
	char *over = repeat("a", HEX_MESSAGE_BODY_MAX + 1);
	assert_body_ok(max);
	assert_body_bad(over, TOO_LONG);
	free(max);
	free(over);
}

static void body_bounds_count_characters_not_bytes(void **state)
{
	/* Each unit is one character of 2, 3 and 4 bytes: the limit is the same 10000. */
	const char *units[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
	for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
		char *max = repeat(units[i], HEX_MESSAGE_BODY_MAX);
		char *over = repeat(units[i], HEX_MESSAGE_BODY_MAX + 1);
		assert_true(strlen(max) > HEX_MESSAGE_BODY_MAX);
		assert_body_ok(max);
		assert_body_bad(over, TOO_LONG);
		free(max);
		free(over);
	}
	/* 9999 ASCII characters and one 4-byte one: 10000 characters in 10003 bytes. */
	char *mixed = xmalloc(HEX_MESSAGE_BODY_MAX + 4);
	memset(mixed, 'a', HEX_MESSAGE_BODY_MAX - 1);
	memcpy(mixed + HEX_MESSAGE_BODY_MAX - 1, "\xf0\x9f\x98\x80", 5);
	assert_body_ok(mixed);
	free(mixed);
}

static void body_must_not_be_empty_or_blank(void **state)
{
	struct hex_err err = {0};
	assert_int_equal(message_body_check(NULL, &err), HEX_INVALID);
	assert_string_equal(err.field, "body");
	assert_string_equal(err.message, "body is required");
	assert_body_bad("", EMPTY);
	assert_body_bad(" ", EMPTY);
	assert_body_bad(" \t\r\n\f\v ", EMPTY);
	/* Blank means ASCII white space only; a no-break space is a character. */
	assert_body_ok("\xc2\xa0");
	assert_body_ok("\n.\n");
}

static void body_must_be_utf8(void **state)
{
	assert_body_bad("caf\xe9", NOT_UTF8); /* Latin-1, not UTF-8 */
	assert_body_bad("\xed\xa0\x80", NOT_UTF8);
	assert_body_bad("ok \xc0\xaf", NOT_UTF8);
	/* Far too long and malformed: the length is what it is told first. */
	char *huge = repeat("\xff", HEX_MESSAGE_BODY_BYTES_MAX + 1);
	assert_body_bad(huge, TOO_LONG);
	free(huge);
}

static void body_check_without_err_still_answers(void **state)
{
	assert_int_equal(message_body_check("", NULL), HEX_INVALID);
	assert_int_equal(message_body_check("fine", NULL), HEX_OK);
}

static void ids_are_canonical_uuids(void **state)
{
	assert_true(message_id_valid("01a228a7-063b-78c6-a2d4-afc0624e5904"));
	assert_true(message_id_valid("01A228A7-063B-78C6-A2D4-AFC0624E5904"));
	assert_false(message_id_valid(NULL));
	assert_false(message_id_valid(""));
	assert_false(message_id_valid("01a228a7063b78c6a2d4afc0624e5904"));
	assert_false(message_id_valid("01a228a7-063b-78c6-a2d4-afc0624e590"));
	assert_false(message_id_valid("01a228a7-063b-78c6-a2d4-afc0624e59040"));
	assert_false(message_id_valid("01a228a7-063b-78c6-a2d4-afc0624e590g"));
	assert_false(message_id_valid("{1a228a7-063b-78c6-a2d4-afc0624e5904"));
}

static void filter_tag_depends_on_every_filter_and_nothing_else(void **state)
{
	struct message_cursor c = {.created_at_us = 5,
	                           .id = "01a228a7-063b-78c6-a2d4-afc0624e5904"};
	struct message_filter base = {.user_id = "01a228a7-05be-709f-97a0-60f60d3d88bf",
	                              .query = "hello",
	                              .has_since = true,
	                              .since_us = 100,
	                              .has_until = true,
	                              .until_us = 200,
	                              .limit = 20};
	uint64_t t = message_filter_tag(&base);

	struct message_filter same = base;
	same.limit = 7;
	same.after = &c;
	char uid[] = "01a228a7-05be-709f-97a0-60f60d3d88bf";
	char q[] = "hello";
	same.user_id = uid; /* equal text elsewhere in memory */
	same.query = q;
	assert_true(message_filter_tag(&same) == t);

	struct message_filter v[8];
	for (int i = 0; i < 8; i++)
		v[i] = base;
	v[0].user_id = NULL;
	v[1].user_id = "01a228a7-05be-709f-97a0-60f60d3d88be";
	v[2].query = NULL;
	v[3].query = "hell";
	v[4].has_since = false;
	v[5].since_us = 101;
	v[6].has_until = false;
	v[7].until_us = 199;
	for (int i = 0; i < 8; i++) {
		if (message_filter_tag(&v[i]) == t)
			fail_msg("variant %d has the same tag", i);
		for (int j = 0; j < i; j++)
			if (message_filter_tag(&v[i]) == message_filter_tag(&v[j]))
				fail_msg("variants %d and %d share a tag", i, j);
	}

	/* An absent filter and an empty one are different walks. */
	struct message_filter a = {.limit = 1}, b = {.limit = 1, .query = ""};
	assert_true(message_filter_tag(&a) != message_filter_tag(&b));
	/* A bound that is absent does not depend on a stale value next to it. */
	struct message_filter c1 = {.since_us = 1}, c2 = {.since_us = 2};
	assert_true(message_filter_tag(&c1) == message_filter_tag(&c2));
}

static void clear_frees_and_accepts_null(void **state)
{
	message_clear(NULL);
	message_page_clear(NULL);
	struct message m = {.body = xstrdup("x")};
	message_clear(&m);
	assert_null(m.body);
	message_clear(&m); /* twice is harmless */

	struct message_page *p = xcalloc(1, sizeof *p);
	for (int i = 0; i < 3; i++)
		p->items[i].body = xstrdup("body");
	p->count = 3;
	p->has_more = true;
	message_page_clear(p); /* the leak checker of the sanitizer build sees the rest */
	assert_int_equal(p->count, 0);
	assert_false(p->has_more);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(utf8_length_counts_code_points),
	    cmocka_unit_test(utf8_length_refuses_malformed_text),
	    cmocka_unit_test(body_bounds_in_ascii),
	    cmocka_unit_test(body_bounds_count_characters_not_bytes),
	    cmocka_unit_test(body_must_not_be_empty_or_blank),
	    cmocka_unit_test(body_must_be_utf8),
	    cmocka_unit_test(body_check_without_err_still_answers),
	    cmocka_unit_test(ids_are_canonical_uuids),
	    cmocka_unit_test(filter_tag_depends_on_every_filter_and_nothing_else),
	    cmocka_unit_test(clear_frees_and_accepts_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
