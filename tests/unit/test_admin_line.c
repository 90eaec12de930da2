/*
 * test_admin_line: how an admin-port command line becomes words: blanks, quotes and
 * their escapes, empty words, and every refusal (an open quote, too many words, a NUL
 * byte, bytes that are not UTF-8) leaving nothing allocated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/admin/admin_line.h"

struct split {
	enum hex_status st;
	int argc;
	char *argv[ADMIN_ARGS_MAX];
	struct hex_err err;
};

static void split_n(const char *line, size_t len, struct split *out)
{
	memset(out, 0, sizeof *out);
	for (int i = 0; i < ADMIN_ARGS_MAX; i++)
		out->argv[i] = (char *)0x1; /* garbage in: only argv[0..argc-1] may be set */
	out->argc = -7;
	out->st = admin_line_split(line, len, &out->argc, out->argv, &out->err);
}

static void split(const char *line, struct split *out)
{
	split_n(line, strlen(line), out);
}

/* The words of line must be exactly the NULL-terminated list. */
static void assert_words(const char *line, const char *const *words)
{
	struct split s;
	split(line, &s);
	assert_int_equal(s.st, HEX_OK);
	int n = 0;
	while (words[n] != NULL)
		n++;
	assert_int_equal(s.argc, n);
	for (int i = 0; i < n; i++)
		assert_string_equal(s.argv[i], words[i]);
	admin_line_free(s.argc, s.argv);
	for (int i = 0; i < n; i++)
		assert_null(s.argv[i]);
}

static void assert_refused(const char *line, size_t len, const char *message_part)
{
	struct split s;
	split_n(line, len, &s);
	assert_int_equal(s.st, HEX_INVALID);
	assert_int_equal(s.argc, 0);
	assert_null(s.err.field);
	if (strstr(s.err.message, message_part) == NULL)
		fail_msg("message \"%s\" does not say \"%s\"", s.err.message, message_part);
}

static void blanks_separate_words(void **state)
{
	assert_words("PING", (const char *[]){"PING", NULL});
	assert_words("  users   show\t\tabc  ", (const char *[]){"users", "show", "abc", NULL});
	assert_words("DLQ DISCARD 42 reason",
	             (const char *[]){"DLQ", "DISCARD", "42", "reason", NULL});
}

static void blank_line_has_no_words(void **state)
{
	assert_words("", (const char *[]){NULL});
	assert_words(" \t  \t", (const char *[]){NULL});
}

static void quotes_hold_blanks(void **state)
{
	assert_words("DLQ DISCARD 7 \"not ours\"",
	             (const char *[]){"DLQ", "DISCARD", "7", "not ours", NULL});
	assert_words("\"a\tb\"", (const char *[]){"a\tb", NULL});
	assert_words("\"  lead and trail  \"", (const char *[]){"  lead and trail  ", NULL});
}

static void escapes_inside_quotes(void **state)
{
	assert_words("\"say \\\"hi\\\"\"", (const char *[]){"say \"hi\"", NULL});
	assert_words("\"back\\\\slash\"", (const char *[]){"back\\slash", NULL});
	/* any other backslash stays as typed */
	assert_words("\"c:\\temp\\n\"", (const char *[]){"c:\\temp\\n", NULL});
}

static void backslash_outside_quotes_is_plain(void **state)
{
	assert_words("a\\b c\\", (const char *[]){"a\\b", "c\\", NULL});
}

static void quoted_part_joins_its_word(void **state)
{
	assert_words("ab\"c d\"e f", (const char *[]){"abc de", "f", NULL});
	assert_words("\"x\"\"y\"", (const char *[]){"xy", NULL});
}

static void empty_quotes_are_an_empty_word(void **state)
{
	assert_words("SEARCH \"\" LIMIT 5", (const char *[]){"SEARCH", "", "LIMIT", "5", NULL});
	assert_words("\"\"", (const char *[]){"", NULL});
}

static void utf8_words_pass(void **state)
{
	assert_words("USERS SEARCH \"zoë ñ 日本 😀\"",
	             (const char *[]){"USERS", "SEARCH", "zoë ñ 日本 😀", NULL});
}

static void unterminated_quote_refused(void **state)
{
	assert_refused("DLQ DISCARD 7 \"not ours", 23, "quote");
	assert_refused("\"", 1, "quote");
	/* an escaped quote does not close */
	assert_refused("\"abc\\\"", 6, "quote");
}

static void too_many_words_refused(void **state)
{
	char line[ADMIN_ARGS_MAX * 3 + 32];
	size_t o = 0;
	for (int i = 0; i < ADMIN_ARGS_MAX; i++)
		o += (size_t)snprintf(line + o, sizeof line - o, "w%d ", i % 10);
	struct split s;
	split_n(line, o, &s); /* exactly the maximum: fine */
	assert_int_equal(s.st, HEX_OK);
	assert_int_equal(s.argc, ADMIN_ARGS_MAX);
	admin_line_free(s.argc, s.argv);
	o += (size_t)snprintf(line + o, sizeof line - o, "one-more");
	assert_refused(line, o, "more than 32 words");
}

static void nul_byte_refused(void **state)
{
	assert_refused("PING\0x", 6, "NUL");
	assert_refused("\"a\0b\"", 5, "NUL");
}

static void bad_utf8_refused(void **state)
{
	static const char *const bad[] = {
	    "\xff",             /* never valid */
	    "ab\xc3",           /* cut short */
	    "\xc0\xaf",         /* overlong '/' */
	    "\xed\xa0\x80",     /* a surrogate */
	    "\xf4\x90\x80\x80", /* above U+10FFFF */
	    "\x80zz",           /* a lone continuation */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_refused(bad[i], strlen(bad[i]), "UTF-8");
}

static void length_is_respected(void **state)
{
	/* the bytes after len are not part of the line */
	struct split s;
	split_n("PING PONG", 4, &s);
	assert_int_equal(s.st, HEX_OK);
	assert_int_equal(s.argc, 1);
	assert_string_equal(s.argv[0], "PING");
	admin_line_free(s.argc, s.argv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(blanks_separate_words),
	    cmocka_unit_test(blank_line_has_no_words),
	    cmocka_unit_test(quotes_hold_blanks),
	    cmocka_unit_test(escapes_inside_quotes),
	    cmocka_unit_test(backslash_outside_quotes_is_plain),
	    cmocka_unit_test(quoted_part_joins_its_word),
	    cmocka_unit_test(empty_quotes_are_an_empty_word),
	    cmocka_unit_test(utf8_words_pass),
	    cmocka_unit_test(unterminated_quote_refused),
	    cmocka_unit_test(too_many_words_refused),
	    cmocka_unit_test(nul_byte_refused),
	    cmocka_unit_test(bad_utf8_refused),
	    cmocka_unit_test(length_is_respected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
