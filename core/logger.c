/* logger.c: leveled one-line logs, JSON or text, with the thread's request context. */
#include "core/logger.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum logger_format log_format = LOGGER_JSON;
static enum logger_level log_min = LOGGER_INFO;
static _Thread_local const char *ctx_request_id;
static _Thread_local const char *ctx_trace_id;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void logger_setup(enum logger_format fmt, enum logger_level min_level)
{
	log_format = fmt;
	log_min = min_level;
}

int logger_parse_level(const char *s)
{
	for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return (int)i;
	return -1;
}

void logger_set_context(const char *request_id, const char *trace_id)
{
	ctx_request_id = request_id;
	ctx_trace_id = trace_id;
}

void logger_json_escape(char *buf, size_t n, const char *s)
{
	size_t o = strlen(buf);
	for (; *s != '\0' && o + 7 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(buf + o, n - o, "\\u%04x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o] = '\0';
}

/* `"k":"v","n":1` -> `k=v n=1`: the same fields, for human eyes. */
static void fields_as_text(const char *fields, char *out, size_t n)
{
	size_t o = 0;
	bool quoted = false;
	for (const char *p = fields; *p != '\0' && o + 1 < n; p++) {
		if (*p == '\\' && quoted && p[1] != '\0') {
			out[o++] = *++p;
		} else if (*p == '"') {
			quoted = !quoted;
		} else if (!quoted && *p == ':') {
			out[o++] = '=';
		} else if (!quoted && *p == ',') {
			out[o++] = ' ';
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
}

/* Writers take the read side, so taps run in parallel on every thread that logs;
 * adding and removing take the write side, which waits for running taps. */
static pthread_rwlock_t tap_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct {
	logger_tap_fn fn;
	void *arg;
} taps[LOGGER_TAPS_MAX];
static atomic_int tap_count;

int logger_tap_add(logger_tap_fn fn, void *arg)
{
	int id = -1;
	pthread_rwlock_wrlock(&tap_lock);
	for (int i = 0; i < LOGGER_TAPS_MAX && id < 0; i++) {
		if (taps[i].fn == NULL) {
			taps[i].fn = fn;
			taps[i].arg = arg;
			id = i;
			atomic_fetch_add(&tap_count, 1);
		}
	}
	pthread_rwlock_unlock(&tap_lock);
	return id;
}

void logger_tap_remove(int id)
{
	if (id < 0 || id >= LOGGER_TAPS_MAX)
		return;
	pthread_rwlock_wrlock(&tap_lock);
	if (taps[id].fn != NULL) {
		taps[id].fn = NULL;
		taps[id].arg = NULL;
		atomic_fetch_sub(&tap_count, 1);
	}
	pthread_rwlock_unlock(&tap_lock);
}

static void run_taps(const char *line, size_t len)
{
	if (atomic_load_explicit(&tap_count, memory_order_relaxed) == 0)
		return;
	pthread_rwlock_rdlock(&tap_lock);
	for (int i = 0; i < LOGGER_TAPS_MAX; i++)
		if (taps[i].fn != NULL)
			taps[i].fn(line, len, taps[i].arg);
	pthread_rwlock_unlock(&tap_lock);
}

#define THREAD_BUFFER 16384

static _Thread_local char thread_buf[THREAD_BUFFER];
static _Thread_local size_t thread_len;

void logger_flush(void)
{
	if (thread_len == 0)
		return;
	fwrite(thread_buf, 1, thread_len, stderr);
	thread_len = 0;
}

struct line_buf {
	char *p;
	size_t len, cap; /* cap leaves room for the newline and the NUL */
};

/* Appends s, cutting it at the capacity: a long line is cut, never overrun. */
static void put(struct line_buf *b, const char *s)
{
	size_t n = strlen(s);
	if (n > b->cap - b->len)
		n = b->cap - b->len;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Appends before, value and after when value is not NULL. */
static void put_pair(struct line_buf *b, const char *before, const char *value, const char *after)
{
	if (value == NULL)
		return;
	put(b, before);
	put(b, value);
	put(b, after);
}

static void emit(enum logger_level lvl, const char *event, const char *fields, const char *msg,
                 bool buffered)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* Formatting the date is the dearest part of a line: once per second per thread. */
	static _Thread_local time_t cached_sec = -1;
	static _Thread_local char cached_when[24];
	static _Thread_local size_t cached_len;
	if (ts.tv_sec != cached_sec) {
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		cached_len = strftime(cached_when, sizeof cached_when, "%Y-%m-%dT%H:%M:%S", &tm);
		cached_sec = ts.tv_sec;
	}
	char when[40];
	memcpy(when, cached_when, cached_len);
	size_t w = cached_len;
	long micros = ts.tv_nsec / 1000;
	when[w++] = '.';
	for (int d = 5; d >= 0; d--, micros /= 10)
		when[w + (size_t)d] = (char)('0' + micros % 10);
	w += 6;
	when[w++] = 'Z';
	when[w] = '\0';

	/* Built by appending, not by one long printf: this runs for every request. */
	char line[4096];
	struct line_buf b = {line, 0, sizeof line - 2};
	if (log_format == LOGGER_TEXT) {
		char text[2048];
		text[0] = '\0';
		if (fields != NULL)
			fields_as_text(fields, text, sizeof text);
		put(&b, when);
		put(&b, " ");
		put(&b, level_names[lvl]);
		put(&b, &"      "[strlen(level_names[lvl])]); /* pads the level to 6 columns */
		put(&b, event);
		put_pair(&b, " request_id=", ctx_request_id, "");
		put_pair(&b, " trace_id=", ctx_trace_id, "");
		put_pair(&b, " ", fields != NULL ? text : NULL, "");
		put_pair(&b, " ", msg, "");
	} else {
		char esc[2048];
		esc[0] = '\0';
		if (msg != NULL)
			logger_json_escape(esc, sizeof esc, msg);
		put(&b, "{\"time\":\"");
		put(&b, when);
		put(&b, "\",\"level\":\"");
		put(&b, level_names[lvl]);
		put(&b, "\",\"event\":\"");
		put(&b, event);
		put(&b, "\"");
		put_pair(&b, ",\"request_id\":\"", ctx_request_id, "\"");
		put_pair(&b, ",\"trace_id\":\"", ctx_trace_id, "\"");
		put_pair(&b, ",", fields, "");
		put_pair(&b, ",\"msg\":\"", msg != NULL ? esc : NULL, "\"");
		put(&b, "}");
	}
	run_taps(line, b.len);
	line[b.len++] = '\n';
	line[b.len] = '\0';
	if (!buffered) {
		fputs(line, stderr);
		return;
	}
	size_t n = b.len;
	if (thread_len + n > sizeof thread_buf)
		logger_flush();
	memcpy(thread_buf + thread_len, line, n);
	thread_len += n;
}

void logger_write(enum logger_level lvl, const char *event, const char *fmt, ...)
{
	if (lvl < log_min)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	emit(lvl, event, NULL, msg, false);
}

void logger_write_fields(enum logger_level lvl, const char *event, const char *fields)
{
	if (lvl < log_min)
		return;
	emit(lvl, event, fields, NULL, false);
}

void logger_write_fields_buffered(enum logger_level lvl, const char *event, const char *fields)
{
	if (lvl < log_min)
		return;
	emit(lvl, event, fields, NULL, true);
}

int logger_every(int64_t *last_s, int interval_s)
{
	int64_t now = (int64_t)time(NULL);
	_Atomic int64_t *slot = (_Atomic int64_t *)last_s;
	int64_t prev = atomic_load(slot);
	if (now - prev < interval_s)
		return 0;
	return atomic_compare_exchange_strong(slot, &prev, now);
}
