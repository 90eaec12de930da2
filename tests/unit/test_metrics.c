/*
 * test_metrics: histogram bucket placement, the Prometheus text writer (its output is
 * parsed back strictly), collectors, concurrent observers, and the per-route HTTP series.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/http/http_metrics.h"
#include "adapters/http/http_routes.h"
#include "core/metrics.h"

/* What the writer must print as `le` for each bound, in seconds, in this order. */
static const char *const want_le[METRICS_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "5",    "10",
};

static uint64_t bucket(const struct metrics_histogram *h, int i)
{
	return atomic_load(&h->buckets[i]);
}

static uint64_t count_of(const struct metrics_histogram *h)
{
	return atomic_load(&h->count);
}

/* ---- a strict reader of the text format ------------------------------------------ */

struct sample {
	char name[128];
	char labels[512]; /* raw text between the braces, "" when none */
	double value;
};

static bool name_char(char c, bool first)
{
	return isalpha((unsigned char)c) || c == '_' || c == ':' ||
	       (!first && isdigit((unsigned char)c));
}

/* Parses `name{labels} value`; false (with why) if the line breaks the format. */
static bool parse_sample(const char *line, struct sample *s, const char **why)
{
	const char *p = line;
	size_t n = 0;
	if (!name_char(*p, true)) {
		*why = "metric name must start with [a-zA-Z_:]";
		return false;
	}
	while (name_char(*p, n == 0) && n + 1 < sizeof s->name)
		s->name[n++] = *p++;
	s->name[n] = '\0';
	s->labels[0] = '\0';
	if (*p == '{') {
		const char *start = ++p;
		for (;;) {
			if (*p == '}')
				break;
			if (!isalpha((unsigned char)*p) && *p != '_') {
				*why = "label name must start with [a-zA-Z_]";
				return false;
			}
			while (isalnum((unsigned char)*p) || *p == '_')
				p++;
			if (p[0] != '=' || p[1] != '"') {
				*why = "label value must be quoted";
				return false;
			}
			p += 2;
			while (*p != '"') {
				if (*p == '\0' || *p == '\n') {
					*why = "unterminated label value";
					return false;
				}
				if (*p == '\\') {
					if (p[1] != '\\' && p[1] != '"' && p[1] != 'n') {
						*why = "bad escape in a label value";
						return false;
					}
					p++;
				}
				p++;
			}
			p++;
			if (*p == ',')
				p++;
			else if (*p != '}') {
				*why = "labels must be separated by ','";
				return false;
			}
		}
		size_t len = (size_t)(p - start);
		if (len >= sizeof s->labels) {
			*why = "labels too long for this reader";
			return false;
		}
		memcpy(s->labels, start, len);
		s->labels[len] = '\0';
		p++;
	}
	if (*p != ' ') {
		*why = "one space must separate the series from its value";
		return false;
	}
	p++;
	char *end;
	s->value = strtod(p, &end);
	if (end == p || isspace((unsigned char)*p)) {
		*why = "value is not a number";
		return false;
	}
	if (*end == ' ') { /* an optional integer timestamp */
		p = end + 1;
		strtoll(p, &end, 10);
		if (end == p || isspace((unsigned char)*p)) {
			*why = "timestamp is not an integer";
			return false;
		}
	}
	if (*end != '\0') {
		*why = "trailing characters after the value";
		return false;
	}
	return true;
}

#define MAX_FAMILIES 64

struct family {
	char name[128];
	char type[16];
	bool help, samples, closed;
};

static struct family *family_find(struct family *f, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(f[i].name, name) == 0)
			return &f[i];
	return NULL;
}

/* The family a sample belongs to: histograms own their _bucket, _sum and _count. */
static struct family *family_of_sample(struct family *f, int n, const char *name)
{
	static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
	for (size_t k = 0; k < sizeof suffixes / sizeof suffixes[0]; k++) {
		size_t ln = strlen(name), ls = strlen(suffixes[k]);
		if (ln > ls && strcmp(name + ln - ls, suffixes[k]) == 0) {
			char base[128];
			snprintf(base, sizeof base, "%.*s", (int)(ln - ls), name);
			struct family *b = family_find(f, n, base);
			if (b != NULL && strcmp(b->type, "histogram") == 0)
				return b;
		}
	}
	return family_find(f, n, name);
}

/*
 * Fails the test unless every line is `# HELP`, `# TYPE`, or a sample, each family has
 * HELP and TYPE before its first sample, and a family's lines are not split up.
 */
static void assert_exposition(const char *text)
{
	struct family fams[MAX_FAMILIES];
	int nf = 0;
	struct family *current = NULL;
	int lineno = 0;
	assert_true(strlen(text) > 0);
	assert_int_equal(text[strlen(text) - 1], '\n');
	for (const char *p = text; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		char line[1024];
		size_t len = (size_t)(nl - p);
		assert_true(len < sizeof line);
		memcpy(line, p, len);
		line[len] = '\0';
		p = nl + 1;
		lineno++;
		if (line[0] == '\0')
			continue;
		if (line[0] == '#') {
			char kw[8], name[128], rest[256] = "";
			int got = sscanf(line, "# %7s %127s %255[^\n]", kw, name, rest);
			if (got < 2 || (strcmp(kw, "HELP") != 0 && strcmp(kw, "TYPE") != 0))
				continue; /* a plain comment */
			struct family *f = family_find(fams, nf, name);
			if (f == NULL) {
				assert_true(nf < MAX_FAMILIES);
				f = &fams[nf++];
				memset(f, 0, sizeof *f);
				snprintf(f->name, sizeof f->name, "%s", name);
			}
			if (f->samples || f->closed)
				fail_msg("line %d: %s after the samples of %s", lineno, kw, name);
			if (strcmp(kw, "TYPE") == 0) {
				if (f->type[0] != '\0')
					fail_msg("line %d: second TYPE for %s", lineno, name);
				if (strcmp(rest, "counter") != 0 && strcmp(rest, "gauge") != 0 &&
				    strcmp(rest, "histogram") != 0 &&
				    strcmp(rest, "summary") != 0 && strcmp(rest, "untyped") != 0)
					fail_msg("line %d: unknown type '%s'", lineno, rest);
				if (strlen(rest) >= sizeof f->type)
					fail_msg("line %d: type too long", lineno);
				memcpy(f->type, rest, strlen(rest) + 1);
			} else {
				if (f->help)
					fail_msg("line %d: second HELP for %s", lineno, name);
				f->help = true;
			}
			if (current != NULL && current != f)
				current->closed = current->samples;
			current = f;
			continue;
		}
		struct sample s;
		const char *why = NULL;
		if (!parse_sample(line, &s, &why))
			fail_msg("line %d '%s': %s", lineno, line, why);
		struct family *f = family_of_sample(fams, nf, s.name);
		if (f == NULL || f->type[0] == '\0' || !f->help)
			fail_msg("line %d: sample of %s without HELP and TYPE before it", lineno,
			         s.name);
		if (f->closed || (current != f && f->samples))
			fail_msg("line %d: the lines of %s are not together", lineno, f->name);
		if (current != NULL && current != f)
			current->closed = true;
		current = f;
		f->samples = true;
	}
}

/* The one line `series value` (series with its braces, if any); fails if absent/repeated. */
static double value_of(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *found = NULL;
	for (const char *p = text; p != NULL && *p != '\0';) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ') {
			if (found != NULL)
				fail_msg("%s appears twice", series);
			found = p + n + 1;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	if (found == NULL)
		fail_msg("no line for %s in:\n%s", series, text);
	return strtod(found, NULL);
}

static bool has_line_prefix(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *p = text; p != NULL && *p != '\0';) {
		if (strncmp(p, prefix, n) == 0)
			return true;
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return false;
}

struct parsed_histogram {
	double le[METRICS_BUCKETS + 1];
	char le_text[METRICS_BUCKETS + 1][16];
	double cum[METRICS_BUCKETS + 1];
	int nbuckets;
	double sum, count;
};

/*
 * Reads one histogram series back (labels: "" or `a="b"`) and checks the histogram
 * rules: le sorted, the last +Inf, cumulative values non-decreasing, +Inf == _count,
 * _sum >= 0.
 */
static void read_histogram(const char *text, const char *name, const char *labels,
                           struct parsed_histogram *out)
{
	char prefix[256];
	snprintf(prefix, sizeof prefix, "%s_bucket{%s%sle=\"", name, labels,
	         labels[0] != '\0' ? "," : "");
	size_t pn = strlen(prefix);
	memset(out, 0, sizeof *out);
	for (const char *p = text; p != NULL && *p != '\0';) {
		if (strncmp(p, prefix, pn) == 0) {
			assert_true(out->nbuckets < METRICS_BUCKETS + 1);
			const char *q = strchr(p + pn, '"');
			assert_non_null(q);
			snprintf(out->le_text[out->nbuckets], sizeof out->le_text[0], "%.*s",
			         (int)(q - (p + pn)), p + pn);
			assert_true(q[1] == '}' && q[2] == ' ');
			out->le[out->nbuckets] = strtod(out->le_text[out->nbuckets], NULL);
			out->cum[out->nbuckets] = strtod(q + 3, NULL);
			out->nbuckets++;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	assert_int_equal(out->nbuckets, METRICS_BUCKETS + 1);
	assert_string_equal(out->le_text[METRICS_BUCKETS], "+Inf");
	assert_true(isinf(out->le[METRICS_BUCKETS]));
	for (int i = 1; i < out->nbuckets; i++) {
		assert_true(out->le[i] > out->le[i - 1]);
		assert_true(out->cum[i] >= out->cum[i - 1]);
	}
	char series[256];
	if (labels[0] != '\0')
		snprintf(series, sizeof series, "%s_sum{%s}", name, labels);
	else
		snprintf(series, sizeof series, "%s_sum", name);
	out->sum = value_of(text, series);
	if (labels[0] != '\0')
		snprintf(series, sizeof series, "%s_count{%s}", name, labels);
	else
		snprintf(series, sizeof series, "%s_count", name);
	out->count = value_of(text, series);
	assert_true(out->sum >= 0);
	assert_true(out->cum[METRICS_BUCKETS] == out->count);
}

/* ---- histograms --------------------------------------------------------------------- */

static void bounds_are_100us_to_10s_increasing(void **state)
{
	assert_int_equal(metrics_bucket_bounds_us[0], 100);
	assert_int_equal(metrics_bucket_bounds_us[1], 250);
	assert_int_equal(metrics_bucket_bounds_us[2], 500);
	assert_int_equal(metrics_bucket_bounds_us[METRICS_BUCKETS - 1], 10000000);
	for (int i = 1; i < METRICS_BUCKETS; i++)
		assert_true(metrics_bucket_bounds_us[i] > metrics_bucket_bounds_us[i - 1]);
}

static void exact_bound_goes_in_its_own_bucket(void **state)
{
	for (int i = 0; i < METRICS_BUCKETS; i++) {
		struct metrics_histogram h = {0};
		metrics_histogram_observe(&h, metrics_bucket_bounds_us[i]);
		for (int k = 0; k < METRICS_BUCKETS; k++)
			if (bucket(&h, k) != (k == i ? 1u : 0u))
				fail_msg("%lld us: bucket %d holds %llu",
				         (long long)metrics_bucket_bounds_us[i], k,
				         (unsigned long long)bucket(&h, k));
		assert_int_equal(count_of(&h), 1);
		assert_int_equal(atomic_load(&h.sum_us), (uint64_t)metrics_bucket_bounds_us[i]);
	}
}

static void one_microsecond_above_a_bound_goes_in_the_next(void **state)
{
	for (int i = 0; i + 1 < METRICS_BUCKETS; i++) {
		struct metrics_histogram h = {0};
		metrics_histogram_observe(&h, metrics_bucket_bounds_us[i] + 1);
		assert_int_equal(bucket(&h, i), 0);
		assert_int_equal(bucket(&h, i + 1), 1);
	}
	/* Also: 100 µs itself is le=0.0001 in the output, 101 µs is not. */
	struct metrics_histogram h = {0};
	metrics_histogram_observe(&h, 100);
	metrics_histogram_observe(&h, 101);
	struct metrics_writer w;
	metrics_writer_init(&w);
	metrics_write_help(&w, "t_seconds", "histogram", "test");
	metrics_write_histogram(&w, "t_seconds", NULL, &h);
	assert_exposition(w.buf);
	assert_true(value_of(w.buf, "t_seconds_bucket{le=\"0.0001\"}") == 1);
	assert_true(value_of(w.buf, "t_seconds_bucket{le=\"0.00025\"}") == 2);
	metrics_writer_free(&w);
}

static void zero_and_negative_durations_count_as_zero(void **state)
{
	struct metrics_histogram h = {0};
	metrics_histogram_observe(&h, 0);
	metrics_histogram_observe(&h, -1);
	metrics_histogram_observe(&h, INT64_MIN);
	assert_int_equal(bucket(&h, 0), 3);
	assert_int_equal(count_of(&h), 3);
	/* A clock step back must not wrap the unsigned sum into a huge number. */
	assert_int_equal(atomic_load(&h.sum_us), 0);
	metrics_histogram_observe(&h, 300);
	assert_int_equal(atomic_load(&h.sum_us), 300);
}

static void above_ten_seconds_only_in_inf(void **state)
{
	struct metrics_histogram h = {0};
	metrics_histogram_observe(&h, 10000001);
	metrics_histogram_observe(&h, INT64_C(3600) * 1000000);
	for (int k = 0; k < METRICS_BUCKETS; k++)
		assert_int_equal(bucket(&h, k), 0);
	assert_int_equal(count_of(&h), 2);

	struct metrics_writer w;
	metrics_writer_init(&w);
	metrics_write_histogram(&w, "slow_seconds", NULL, &h);
	struct parsed_histogram ph;
	read_histogram(w.buf, "slow_seconds", "", &ph);
	assert_true(ph.cum[METRICS_BUCKETS - 1] == 0);
	assert_true(ph.cum[METRICS_BUCKETS] == 2);
	assert_true(fabs(ph.sum - 3610.000001) < 1e-6);
	metrics_writer_free(&w);
}

static void written_histogram_is_cumulative_with_inf_equal_to_count(void **state)
{
	/* One observation in every bucket i, i+1 times, plus 3 above 10 s. */
	struct metrics_histogram h = {0};
	uint64_t total_us = 0, n = 0;
	for (int i = 0; i < METRICS_BUCKETS; i++) {
		for (int k = 0; k <= i; k++) {
			int64_t us = metrics_bucket_bounds_us[i] - k; /* all inside bucket i */
			metrics_histogram_observe(&h, us);
			total_us += (uint64_t)us;
			n++;
		}
	}
	for (int k = 0; k < 3; k++) {
		metrics_histogram_observe(&h, 20000000);
		total_us += 20000000;
		n++;
	}
	struct metrics_writer w;
	metrics_writer_init(&w);
	metrics_write_help(&w, "hex_test_seconds", "histogram", "a test histogram");
	metrics_write_histogram(&w, "hex_test_seconds", "route=\"/v1/users/:id\",method=\"GET\"",
	                        &h);
	assert_exposition(w.buf);

	struct parsed_histogram ph;
	read_histogram(w.buf, "hex_test_seconds", "route=\"/v1/users/:id\",method=\"GET\"", &ph);
	double want_cum = 0;
	for (int i = 0; i < METRICS_BUCKETS; i++) {
		want_cum += i + 1;
		assert_string_equal(ph.le_text[i], want_le[i]);
		assert_true(fabs(ph.le[i] - (double)metrics_bucket_bounds_us[i] / 1e6) < 1e-12);
		if (ph.cum[i] != want_cum)
			fail_msg("le=%s: %g, want %g", ph.le_text[i], ph.cum[i], want_cum);
	}
	assert_true(ph.count == (double)n);
	assert_true(ph.cum[METRICS_BUCKETS] == (double)n);
	assert_true(fabs(ph.sum - (double)total_us / 1e6) < 1e-6);
	metrics_writer_free(&w);
}

static void empty_histogram_writes_zeros(void **state)
{
	struct metrics_histogram h = {0};
	struct metrics_writer w;
	metrics_writer_init(&w);
	metrics_write_help(&w, "e_seconds", "histogram", "empty");
	metrics_write_histogram(&w, "e_seconds", "", &h);
	assert_exposition(w.buf);
	struct parsed_histogram ph;
	read_histogram(w.buf, "e_seconds", "", &ph);
	for (int i = 0; i <= METRICS_BUCKETS; i++)
		assert_true(ph.cum[i] == 0);
	assert_true(ph.sum == 0 && ph.count == 0);
	/* An empty label set is written without braces on _sum and _count. */
	assert_true(has_line_prefix(w.buf, "e_seconds_sum 0"));
	assert_true(has_line_prefix(w.buf, "e_seconds_count 0\n"));
	assert_true(has_line_prefix(w.buf, "e_seconds_bucket{le=\"0.0001\"} 0\n"));
	metrics_writer_free(&w);
}

static void sum_is_seconds_with_microsecond_precision(void **state)
{
	struct metrics_histogram h = {0};
	metrics_histogram_observe(&h, 1);
	metrics_histogram_observe(&h, 1234567);
	struct metrics_writer w;
	metrics_writer_init(&w);
	metrics_write_histogram(&w, "p_seconds", "a=\"b\"", &h);
	assert_true(value_of(w.buf, "p_seconds_sum{a=\"b\"}") == 1.234568);
	assert_true(value_of(w.buf, "p_seconds_count{a=\"b\"}") == 2);
	metrics_writer_free(&w);
}

/* ---- plain values, HELP/TYPE and the buffer ------------------------------------------- */

static void values_and_help_lines(void **state)
{
	struct metrics_writer w;
	metrics_writer_init(&w);
	metrics_write_help(&w, "hex_things_total", "counter", "things done");
	metrics_write_value(&w, "hex_things_total", "kind=\"a\"", 3);
	metrics_write_value(&w, "hex_things_total", "kind=\"b\"", 9007199254740992.0);
	metrics_write_help(&w, "hex_level", "gauge", "a level");
	metrics_write_value(&w, "hex_level", NULL, 0.5);
	metrics_write_help(&w, "hex_other", "gauge", "empty labels");
	metrics_write_value(&w, "hex_other", "", -2);
	assert_string_equal(w.buf, "# HELP hex_things_total things done\n"
	                           "# TYPE hex_things_total counter\n"
	                           "hex_things_total{kind=\"a\"} 3\n"
	                           "hex_things_total{kind=\"b\"} 9007199254740992\n"
	                           "# HELP hex_level a level\n"
	                           "# TYPE hex_level gauge\n"
	                           "hex_level 0.5\n"
	                           "# HELP hex_other empty labels\n"
	                           "# TYPE hex_other gauge\n"
	                           "hex_other -2\n");
	assert_int_equal(w.len, strlen(w.buf));
	assert_exposition(w.buf);
	metrics_writer_free(&w);
	assert_null(w.buf);
}

static void writer_grows_past_its_first_buffer(void **state)
{
	struct metrics_writer w;
	metrics_writer_init(&w);
	char big[5000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	for (int i = 0; i < 50; i++)
		metrics_printf(&w, "%d:%s\n", i, big);
	assert_int_equal(w.len, strlen(w.buf));
	size_t one = strlen(big) + 1;
	size_t want = 0;
	for (int i = 0; i < 50; i++)
		want += (size_t)snprintf(NULL, 0, "%d:", i) + one;
	assert_int_equal(w.len, want);
	assert_true(strncmp(w.buf, "0:xxx", 5) == 0);
	assert_non_null(strstr(w.buf, "\n49:xxx"));
	assert_int_equal(w.buf[w.len - 1], '\n');
	metrics_writer_free(&w);
}

/* The reader used here must itself refuse what Prometheus refuses. */
static void reader_rejects_broken_lines(void **state)
{
	static const char *const bad[] = {
	    "9abc 1",        "abc{x=1} 1",    "abc{x=\"1} 1", "abc{x=\"1\" y=\"2\"} 1",
	    "abc  1",        "abc one",       "abc 1 2 3",    "abc{x=\"\\q\"} 1",
	    "abc{=\"1\"} 1", "abc{x=\"1\"}1", "abc 1x",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct sample s;
		const char *why = NULL;
		if (parse_sample(bad[i], &s, &why))
			fail_msg("accepted '%s'", bad[i]);
	}
	struct sample s;
	const char *why = NULL;
	assert_true(parse_sample("a_b:c{x=\"a\\\"b\",le=\"+Inf\"} +Inf 123", &s, &why));
	assert_string_equal(s.name, "a_b:c");
	assert_true(isinf(s.value));
}

/* ---- collectors and the whole scrape --------------------------------------------------- */

static int collector_calls[2];

static void collector_a(struct metrics_writer *w, void *arg)
{
	collector_calls[0]++;
	assert_ptr_equal(arg, &collector_calls[0]);
	metrics_write_help(w, "test_a_total", "counter", "from collector a");
	metrics_write_value(w, "test_a_total", NULL, 7);
}

static void collector_b(struct metrics_writer *w, void *arg)
{
	collector_calls[1]++;
	assert_ptr_equal(arg, &collector_calls[1]);
	metrics_write_help(w, "test_b", "gauge", "from collector b");
	metrics_write_value(w, "test_b", "x=\"y\"", 1.5);
}

static void collect_writes_core_series_then_collectors_in_order(void **state)
{
	metrics_add_collector(collector_a, &collector_calls[0]);
	metrics_add_collector(collector_b, &collector_calls[1]);
	uint64_t db_before = count_of(&metrics_db_query);
	metrics_histogram_observe(&metrics_db_query, 150);
	metrics_histogram_observe(&metrics_redis_command, 40);

	struct metrics_writer w;
	metrics_writer_init(&w);
	metrics_collect(&w);
	assert_exposition(w.buf);
	assert_int_equal(collector_calls[0], 1);
	assert_int_equal(collector_calls[1], 1);
	struct parsed_histogram ph;
	read_histogram(w.buf, "hex_db_query_duration_seconds", "", &ph);
	assert_true(ph.count == (double)(db_before + 1));
	read_histogram(w.buf, "hex_redis_command_duration_seconds", "", &ph);
	assert_true(ph.count >= 1);
	assert_true(ph.cum[0] >= 1); /* 40 µs is le=0.0001 */
	assert_true(value_of(w.buf, "test_a_total") == 7);
	assert_true(value_of(w.buf, "test_b{x=\"y\"}") == 1.5);
	const char *a = strstr(w.buf, "# HELP test_a_total");
	const char *b = strstr(w.buf, "# HELP test_b ");
	const char *db = strstr(w.buf, "# HELP hex_db_query_duration_seconds");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(db);
	assert_true(db < a && a < b);
	metrics_writer_free(&w);

	/* A second scrape calls them again and does not repeat a family. */
	metrics_writer_init(&w);
	metrics_collect(&w);
	assert_exposition(w.buf);
	assert_int_equal(collector_calls[0], 2);
	metrics_writer_free(&w);
}

/* ---- concurrency: lock-free observers, a scraper reading meanwhile -------------------- */

#define OBSERVERS    4
#define OBSERVE_EACH 100000
static struct metrics_histogram shared_h;
static atomic_bool observers_done;
static int scrapes_done;

static void *observer(void *arg)
{
	int64_t seed = (int64_t)(intptr_t)arg;
	for (int i = 0; i < OBSERVE_EACH; i++)
		metrics_histogram_observe(&shared_h, (seed * 7919 + i * 37) % 12000000);
	return NULL;
}

/* Without cmocka: its failures must not longjmp out of another thread. */
static bool scrape_is_valid(const char *text)
{
	double prev = 0, inf = -1, count = -2;
	int n = 0;
	for (const char *p = text; p != NULL && *p != '\0';) {
		static const char bucket_prefix[] = "c_seconds_bucket{le=\"";
		if (strncmp(p, bucket_prefix, sizeof bucket_prefix - 1) == 0) {
			const char *v = strstr(p, "} ");
			if (v == NULL)
				return false;
			double x = strtod(v + 2, NULL);
			if (x < prev)
				return false;
			prev = x;
			n++;
			if (strncmp(p + sizeof bucket_prefix - 1, "+Inf\"", 5) == 0)
				inf = x;
		} else if (strncmp(p, "c_seconds_count ", 16) == 0) {
			count = strtod(p + 16, NULL);
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return n == METRICS_BUCKETS + 1 && inf == count;
}

static void *scraper(void *arg)
{
	int *bad = arg;
	while (!atomic_load(&observers_done)) {
		struct metrics_writer w;
		metrics_writer_init(&w);
		metrics_write_histogram(&w, "c_seconds", NULL, &shared_h);
		if (!scrape_is_valid(w.buf))
			(*bad)++;
		metrics_writer_free(&w);
		scrapes_done++;
	}
	return NULL;
}

static void concurrent_observers_lose_nothing_and_scrapes_stay_valid(void **state)
{
	pthread_t t[OBSERVERS], s;
	int bad = 0;
	atomic_store(&observers_done, false);
	assert_int_equal(pthread_create(&s, NULL, scraper, &bad), 0);
	for (int i = 0; i < OBSERVERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, observer, (void *)(intptr_t)(i + 1)),
		                 0);
	for (int i = 0; i < OBSERVERS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&observers_done, true);
	pthread_join(s, NULL);
	assert_true(scrapes_done > 0);
	assert_int_equal(bad, 0); /* every scrape cumulative with +Inf == _count */

	uint64_t want_sum = 0, want_inf = 0, in_buckets = 0;
	for (int64_t seed = 1; seed <= OBSERVERS; seed++)
		for (int i = 0; i < OBSERVE_EACH; i++) {
			int64_t us = (seed * 7919 + i * 37) % 12000000;
			want_sum += (uint64_t)us;
			want_inf += us > 10000000;
		}
	for (int k = 0; k < METRICS_BUCKETS; k++)
		in_buckets += bucket(&shared_h, k);
	assert_int_equal(count_of(&shared_h), OBSERVERS * OBSERVE_EACH);
	assert_int_equal(atomic_load(&shared_h.sum_us), want_sum);
	assert_int_equal(in_buckets + want_inf, OBSERVERS * OBSERVE_EACH);
}

/* ---- per-route HTTP series (http_metrics) ------------------------------------------- */

static int route_index(enum http_method m, const char *pattern)
{
	for (int i = 0; i < http_routes_count(); i++) {
		const struct http_route *r = http_routes_at(i);
		if (r->method == m && strcmp(r->pattern, pattern) == 0)
			return i;
	}
	fail_msg("no route %s %s", http_method_name(m), pattern);
	return -1;
}

struct seen_route {
	int calls;
	char method[16], route[64];
	struct latency_stats s;
};

static void on_latency(const char *method, const char *route, const struct latency_stats *s,
                       void *arg)
{
	struct seen_route *seen = arg;
	for (int i = 0; i < 8; i++) {
		if (seen[i].calls == 0) {
			seen[i].calls = 1;
			snprintf(seen[i].method, sizeof seen[i].method, "%s", method);
			snprintf(seen[i].route, sizeof seen[i].route, "%s", route);
			seen[i].s = *s;
			return;
		}
	}
	fail_msg("more routes with traffic than recorded");
}

static void http_series_count_by_route_pattern_and_status(void **state)
{
	http_metrics_register();
	const struct http_route *show = http_routes_at(route_index(HTTP_GET, "/v1/users/:id"));
	const struct http_route *login = http_routes_at(route_index(HTTP_POST, "/v1/login"));
	for (int i = 0; i < 5; i++)
		http_metrics_record(show, 200, 80 + i);
	http_metrics_record(show, 404, 300);
	http_metrics_record(login, 200, 40000);
	http_metrics_record(login, 401, 42000);
	http_metrics_record(login, 503, 100);
	http_metrics_record(NULL, 404, 20);
	http_metrics_record(NULL, 404, -5);

	struct metrics_writer w;
	metrics_writer_init(&w);
	metrics_collect(&w);
	assert_exposition(w.buf);
	const char *c = "hex_http_requests_total";
	char series[256];
#define COUNTER(m, r, st)                                                                          \
	(snprintf(series, sizeof series, "%s{method=\"%s\",route=\"%s\",status=\"%d\"}", c, m, r,  \
	          st),                                                                             \
	 value_of(w.buf, series))
	assert_true(COUNTER("GET", "/v1/users/:id", 200) == 5);
	assert_true(COUNTER("GET", "/v1/users/:id", 404) == 1);
	assert_true(COUNTER("POST", "/v1/login", 200) == 1);
	assert_true(COUNTER("POST", "/v1/login", 401) == 1);
	assert_true(COUNTER("POST", "/v1/login", 503) == 1);
	assert_true(COUNTER("ANY", "unmatched", 404) == 2);
#undef COUNTER
	/* Routes without traffic write no series at all. */
	assert_null(strstr(w.buf, "route=\"/v1/logout\""));

	struct parsed_histogram ph;
	read_histogram(w.buf, "hex_http_request_duration_seconds",
	               "method=\"GET\",route=\"/v1/users/:id\"", &ph);
	assert_true(ph.count == 6);
	assert_true(ph.cum[0] == 5); /* 80..84 µs: le=0.0001 */
	assert_true(ph.cum[1] == 5); /* nothing in (100, 250] */
	assert_true(ph.cum[2] == 6); /* 300 µs: le=0.0005 */
	assert_true(fabs(ph.sum - (80 + 81 + 82 + 83 + 84 + 300) / 1e6) < 1e-9);
	read_histogram(w.buf, "hex_http_request_duration_seconds",
	               "method=\"POST\",route=\"/v1/login\"", &ph);
	assert_true(ph.count == 3);
	assert_true(ph.cum[0] == 1 && ph.cum[7] == 1 && ph.cum[8] == 3); /* 0.025, 0.05 */
	read_histogram(w.buf, "hex_http_request_duration_seconds",
	               "method=\"ANY\",route=\"unmatched\"", &ph);
	assert_true(ph.count == 2 && ph.cum[0] == 2 && ph.sum == 0.00002);
	metrics_writer_free(&w);

	/* The live window sees the same requests, per route; only the 503 is an error. */
	struct seen_route seen[8] = {0};
	http_metrics_latency(10, on_latency, seen);
	int found = 0;
	for (int i = 0; i < 8 && seen[i].calls; i++) {
		if (strcmp(seen[i].route, "/v1/login") == 0) {
			assert_string_equal(seen[i].method, "POST");
			assert_int_equal(seen[i].s.count, 3);
			assert_true(fabs(seen[i].s.error_rate - 1.0 / 3) < 1e-9);
			assert_true(seen[i].s.p50_us >= 40000 && seen[i].s.p50_us <= 50000);
			found++;
		} else if (strcmp(seen[i].route, "/v1/users/:id") == 0) {
			assert_string_equal(seen[i].method, "GET");
			assert_int_equal(seen[i].s.count, 6);
			assert_true(seen[i].s.error_rate == 0);
			found++;
		} else if (strcmp(seen[i].route, "unmatched") == 0) {
			assert_string_equal(seen[i].method, "ANY");
			assert_int_equal(seen[i].s.count, 2);
			found++;
		} else {
			fail_msg("latency for a route without traffic: %s", seen[i].route);
		}
	}
	assert_int_equal(found, 3);
}

/* Loops record into their own sets; /metrics and the latency feed add them all up. */
#define LOOP_THREADS 5
#define LOOP_EACH    20000
static const int loop_of_thread[LOOP_THREADS] = {1, 2, 3, 7, -1 /* clamps to 0 */};

static void *loop_recorder(void *arg)
{
	int t = (int)(intptr_t)arg;
	http_metrics_bind_loop(loop_of_thread[t]);
	const struct http_route *ready = http_routes_at(route_index(HTTP_GET, "/readyz"));
	for (int i = 0; i < LOOP_EACH; i++)
		http_metrics_record(ready, i % 4 == 0 ? 503 : 200, 120);
	return NULL;
}

static void *loop_scraper(void *arg)
{
	int *bad = arg;
	while (!atomic_load(&observers_done)) {
		struct metrics_writer w;
		metrics_writer_init(&w);
		metrics_collect(&w);
		if (strstr(w.buf, "# TYPE hex_http_requests_total counter\n") == NULL)
			(*bad)++;
		metrics_writer_free(&w);
	}
	return NULL;
}

static bool is_readyz(const struct seen_route *r)
{
	return strcmp(r->route, "/readyz") == 0;
}

static void loops_record_apart_and_are_read_together(void **state)
{
	pthread_t t[LOOP_THREADS], s;
	int bad = 0;
	atomic_store(&observers_done, false);
	assert_int_equal(pthread_create(&s, NULL, loop_scraper, &bad), 0);
	for (int i = 0; i < LOOP_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, loop_recorder, (void *)(intptr_t)i),
		                 0);
	for (int i = 0; i < LOOP_THREADS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&observers_done, true);
	pthread_join(s, NULL);
	assert_int_equal(bad, 0);

	struct metrics_writer w;
	metrics_writer_init(&w);
	metrics_collect(&w);
	assert_exposition(w.buf);
	double ok = value_of(
	    w.buf, "hex_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"}");
	double busy = value_of(
	    w.buf, "hex_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"503\"}");
	assert_true(ok == LOOP_THREADS * LOOP_EACH * 3 / 4);
	assert_true(busy == LOOP_THREADS * LOOP_EACH / 4);
	struct parsed_histogram ph;
	read_histogram(w.buf, "hex_http_request_duration_seconds",
	               "method=\"GET\",route=\"/readyz\"", &ph);
	assert_true(ph.count == LOOP_THREADS * LOOP_EACH);
	assert_true(ph.cum[0] == 0 && ph.cum[1] == LOOP_THREADS * LOOP_EACH); /* 120 µs */
	assert_true(fabs(ph.sum - LOOP_THREADS * LOOP_EACH * 120e-6) < 1e-6);
	metrics_writer_free(&w);

	struct seen_route seen[8] = {0};
	http_metrics_latency(10, on_latency, seen);
	const struct seen_route *r = NULL;
	for (int i = 0; i < 8 && seen[i].calls; i++)
		if (is_readyz(&seen[i]))
			r = &seen[i];
	assert_non_null(r);
	assert_int_equal(r->s.count, LOOP_THREADS * LOOP_EACH);
	assert_true(fabs(r->s.error_rate - 0.25) < 1e-9);
	assert_true(r->s.p99_us >= 120 && r->s.p99_us <= 150);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bounds_are_100us_to_10s_increasing),
	    cmocka_unit_test(exact_bound_goes_in_its_own_bucket),
	    cmocka_unit_test(one_microsecond_above_a_bound_goes_in_the_next),
	    cmocka_unit_test(zero_and_negative_durations_count_as_zero),
	    cmocka_unit_test(above_ten_seconds_only_in_inf),
	    cmocka_unit_test(written_histogram_is_cumulative_with_inf_equal_to_count),
	    cmocka_unit_test(empty_histogram_writes_zeros),
	    cmocka_unit_test(sum_is_seconds_with_microsecond_precision),
	    cmocka_unit_test(values_and_help_lines),
	    cmocka_unit_test(writer_grows_past_its_first_buffer),
	    cmocka_unit_test(reader_rejects_broken_lines),
	    cmocka_unit_test(collect_writes_core_series_then_collectors_in_order),
	    cmocka_unit_test(concurrent_observers_lose_nothing_and_scrapes_stay_valid),
	    cmocka_unit_test(http_series_count_by_route_pattern_and_status),
	    cmocka_unit_test(loops_record_apart_and_are_read_together),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
