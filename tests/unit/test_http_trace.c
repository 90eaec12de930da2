/*
 * test_http_trace: W3C traceparent handling: a valid header continues the caller's
 * trace under a new span of ours, anything invalid starts a new trace, and what we
 * format parses back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/http/http_trace.h"

#define TRACE  "4bf92f3577b34da6a3ce929d0e0e4736"
#define PARENT "00f067aa0ba902b7"
#define VALID  "00-" TRACE "-" PARENT "-01"

static bool lower_hex(const char *s, size_t n)
{
	return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

static bool all_zero(const char *s)
{
	return strspn(s, "0") == strlen(s);
}

/* Fills t with junk first, so that a field left unwritten shows. */
static void begin(struct http_trace *t, const char *header)
{
	memset(t, 'Z', sizeof *t);
	http_trace_begin(t, header);
}

static void assert_new_trace(const struct http_trace *t, const char *header)
{
	if (!lower_hex(t->trace_id, 32) || all_zero(t->trace_id))
		fail_msg("bad new trace id '%.33s' for header '%s'", t->trace_id, header);
	if (strcmp(t->trace_id, TRACE) == 0)
		fail_msg("invalid header '%s' kept its trace id", header);
	if (!lower_hex(t->span_id, 16) || all_zero(t->span_id))
		fail_msg("bad span id '%.17s' for header '%s'", t->span_id, header);
	assert_string_equal(t->parent_id, "");
	assert_int_equal(t->flags, 0);
}

static void valid_header_continues_the_trace(void **state)
{
	struct http_trace t;
	begin(&t, VALID);
	assert_string_equal(t.trace_id, TRACE);
	assert_string_equal(t.parent_id, PARENT);
	assert_int_equal(t.flags, 1);
	assert_true(lower_hex(t.span_id, 16));
	assert_false(all_zero(t.span_id));
	assert_string_not_equal(t.span_id, PARENT); /* our span is new */

	begin(&t, "00-" TRACE "-" PARENT "-00"); /* not sampled */
	assert_string_equal(t.trace_id, TRACE);
	assert_string_equal(t.parent_id, PARENT);
	assert_int_equal(t.flags, 0);
}

static void each_request_gets_its_own_span(void **state)
{
	struct http_trace a, b;
	begin(&a, VALID);
	begin(&b, VALID);
	assert_string_equal(a.trace_id, b.trace_id);
	assert_string_not_equal(a.span_id, b.span_id);
}

static void unknown_flag_bits_keep_sampled(void **state)
{
	/* Only "sampled" (bit 0) is defined by version 00; the sampled decision must hold. */
	struct http_trace t;
	begin(&t, "00-" TRACE "-" PARENT "-03");
	assert_string_equal(t.trace_id, TRACE);
	assert_int_equal(t.flags & 1, 1);
	begin(&t, "00-" TRACE "-" PARENT "-fe");
	assert_string_equal(t.trace_id, TRACE);
	assert_int_equal(t.flags & 1, 0);
}

static void missing_header_starts_a_trace(void **state)
{
	struct http_trace a, b;
	begin(&a, NULL);
	assert_new_trace(&a, "(none)");
	begin(&b, NULL);
	assert_new_trace(&b, "(none)");
	assert_string_not_equal(a.trace_id, b.trace_id);
	assert_string_not_equal(a.span_id, b.span_id);
}

static void invalid_headers_start_a_new_trace(void **state)
{
	static const char *const bad[] = {
	    "",
	    "00",
	    "00-" TRACE "-" PARENT "-0",                         /* 54 chars */
	    "00-" TRACE "-" PARENT "-011",                       /* 56 chars, version 00 */
	    "00-" TRACE "-" PARENT,                              /* no flags */
	    "00-" TRACE "a-" PARENT "-01",                       /* long trace id */
	    "00-4bf92f3577b34da6a3ce929d0e0e473-" PARENT "-01",  /* short trace id */
	    "00-4BF92F3577B34DA6A3CE929D0E0E4736-" PARENT "-01", /* upper-case trace id */
	    "00-4bf92f3577b34da6a3ce929d0e0e473A-" PARENT "-01", /* one upper-case digit */
	    "00-" TRACE "-00F067AA0BA902B7-01",                  /* upper-case parent id */
	    "00-" TRACE "-" PARENT "-0A",                        /* upper-case flags */
	    "0A-" TRACE "-" PARENT "-01",                        /* upper-case version */
	    "00-00000000000000000000000000000000-" PARENT "-01", /* all-zero trace id */
	    "00-" TRACE "-0000000000000000-01",                  /* all-zero parent id */
	    "ff-" TRACE "-" PARENT "-01",                        /* version ff is invalid */
	    "ff-" TRACE "-" PARENT "-01-extra",
	    "00_" TRACE "-" PARENT "-01", /* bad separators */
	    "00-" TRACE "_" PARENT "-01",
	    "00-" TRACE "-" PARENT "_01",
	    "00 " TRACE " " PARENT " 01",
	    "00-" TRACE "-" PARENT "-01-extra", /* version 00 with extra data */
	    "00-" TRACE "-" PARENT "-01-",
	    "00-" TRACE "-" PARENT "-01 ",
	    "00-4bf92f3577b34da6a3ce929d0e0e473g-" PARENT "-01", /* not hex */
	    "00-" TRACE "-00f067aa0ba902bz-01",
	    "00-" TRACE "-" PARENT "-0x",
	    "0g-" TRACE "-" PARENT "-01",
	    "-00-" TRACE "-" PARENT "-01",
	    "cc-" TRACE "-" PARENT "-01.future", /* a later version: only "-" may follow */
	    "cc-" TRACE "-" PARENT "-1",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct http_trace t;
		memset(&t, 'Z', sizeof t);
		if (http_trace_parse(bad[i], &t))
			fail_msg("parse accepted '%s'", bad[i]);
		begin(&t, bad[i]);
		assert_new_trace(&t, bad[i]);
	}
}

static void future_versions_are_read_as_00(void **state)
{
	static const char *const ok[] = {
	    "01-" TRACE "-" PARENT "-01",
	    "cc-" TRACE "-" PARENT "-01-what-the-future-will-be-like",
	    "fe-" TRACE "-" PARENT "-01-",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct http_trace t;
		memset(&t, 'Z', sizeof t);
		if (!http_trace_parse(ok[i], &t))
			fail_msg("parse refused '%s'", ok[i]);
		assert_string_equal(t.trace_id, TRACE);
		assert_string_equal(t.parent_id, PARENT);
		assert_int_equal(t.flags, 1);
		begin(&t, ok[i]);
		assert_string_equal(t.trace_id, TRACE);
		assert_string_equal(t.parent_id, PARENT);
		/* We answer in the version we speak. */
		char out[HTTP_TRACEPARENT_LEN + 1];
		http_trace_format(&t, out);
		assert_true(strncmp(out, "00-" TRACE "-", 36) == 0);
	}
}

static void format_is_version_00_and_parses_back(void **state)
{
	static const char *const inputs[] = {VALID, "00-" TRACE "-" PARENT "-00", NULL, "junk"};
	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
		struct http_trace t;
		begin(&t, inputs[i]);
		char out[HTTP_TRACEPARENT_LEN + 1];
		memset(out, 'Z', sizeof out);
		http_trace_format(&t, out);
		assert_int_equal(strlen(out), HTTP_TRACEPARENT_LEN);
		char want[HTTP_TRACEPARENT_LEN + 1];
		snprintf(want, sizeof want, "00-%s-%s-%02x", t.trace_id, t.span_id, t.flags);
		assert_string_equal(out, want);

		/* The next hop continues our trace, with our span as its parent. */
		struct http_trace next;
		memset(&next, 'Z', sizeof next);
		assert_true(http_trace_parse(out, &next));
		assert_string_equal(next.trace_id, t.trace_id);
		assert_string_equal(next.parent_id, t.span_id);
		assert_int_equal(next.flags, t.flags);
	}
	struct http_trace t;
	begin(&t, VALID);
	char out[HTTP_TRACEPARENT_LEN + 1];
	http_trace_format(&t, out);
	assert_true(strncmp(out, "00-" TRACE "-", 36) == 0);
	assert_string_equal(out + 52, "-01");
	assert_true(strncmp(out + 36, PARENT, 16) != 0);
}

#define MANY 20000

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Each thread writes its trace ids into its own rows of ids. */
static char (*ids)[33];

static void *make_ids(void *arg)
{
	size_t from = (size_t)(uintptr_t)arg;
	for (size_t i = from; i < from + MANY; i++) {
		struct http_trace t;
		http_trace_begin(&t, NULL);
		memcpy(ids[i], t.trace_id, 33);
	}
	return NULL;
}

static void ids_are_unique_across_threads(void **state)
{
	/* Per-thread generators: two threads seeded alike would repeat each other. */
	enum { THREADS = 4 };
	ids = calloc(THREADS * MANY, sizeof *ids);
	assert_non_null(ids);
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, make_ids, (void *)(uintptr_t)((size_t)i * MANY)),
		    0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (size_t i = 0; i < THREADS * MANY; i++)
		assert_true(lower_hex(ids[i], 32));
	qsort(ids, THREADS * MANY, sizeof *ids, cmp_str);
	for (size_t i = 1; i < THREADS * MANY; i++)
		if (strcmp(ids[i - 1], ids[i]) == 0)
			fail_msg("trace id %s generated twice", ids[i]);
	free(ids);

	/* Span ids within one thread, too. */
	char(*spans)[17] = calloc(MANY, sizeof *spans);
	assert_non_null(spans);
	for (size_t i = 0; i < MANY; i++) {
		struct http_trace t;
		http_trace_begin(&t, VALID);
		memcpy(spans[i], t.span_id, 17);
	}
	qsort(spans, MANY, sizeof *spans, cmp_str);
	for (size_t i = 1; i < MANY; i++)
		assert_string_not_equal(spans[i - 1], spans[i]);
	free(spans);
}

static void random_hex_writes_exactly_what_it_says(void **state)
{
	/* Request ids come from here too: 16 lower-case hex digits per word, then a NUL. */
	for (int words = 0; words <= 4; words++) {
		char buf[80], prev[80] = "";
		for (int round = 0; round < 50; round++) {
			memset(buf, 'Z', sizeof buf);
			http_trace_random_hex(buf, words);
			size_t n = (size_t)words * 16;
			assert_int_equal(strlen(buf), n);
			assert_true(lower_hex(buf, n));
			assert_int_equal(buf[n + 1], 'Z'); /* nothing written past the NUL */
			if (words > 0)
				assert_string_not_equal(buf, prev);
			memcpy(prev, buf, n + 1);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(valid_header_continues_the_trace),
	    cmocka_unit_test(each_request_gets_its_own_span),
	    cmocka_unit_test(unknown_flag_bits_keep_sampled),
	    cmocka_unit_test(missing_header_starts_a_trace),
	    cmocka_unit_test(invalid_headers_start_a_new_trace),
	    cmocka_unit_test(future_versions_are_read_as_00),
	    cmocka_unit_test(format_is_version_00_and_parses_back),
	    cmocka_unit_test(ids_are_unique_across_threads),
	    cmocka_unit_test(random_hex_writes_exactly_what_it_says),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
