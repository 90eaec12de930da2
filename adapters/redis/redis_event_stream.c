/* redis_event_stream.c: the event pipeline's streams on Redis Streams. */
#include "adapters/redis/redis_event_stream.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/logger.h"
#include "core/xmalloc.h"

#define KEY_PREFIX  "hex:events:"
#define KEY_RETRY   ":retry:"
#define KEY_MAX     (sizeof KEY_PREFIX + EVENT_TOPIC_MAX + sizeof KEY_RETRY + EVENT_CONSUMER_MAX)
#define TOPIC_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_.-"
/* XAUTOCLAIM scans at most 10 x COUNT pending entries per call; a few calls per stream
 * reach past a run of fresh ones without turning one claim into a long scan. */
#define CLAIM_ROUNDS    4
#define LOG_INTERVAL_S  10
#define READ_ARGS_MAX   13
#define NUMBER_TEXT_MAX 24

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The two streams of a group, in the order reads and claims take them: retries first,
 * so that a busy topic cannot starve them. */
enum stream_kind { STREAM_RETRY = 0, STREAM_MAIN, STREAM_KINDS };

struct group_keys {
	const char *topic;
	const char *consumer;
	char key[STREAM_KINDS][KEY_MAX];
};

/* What a read or a claim fills, and what a decoded entry must match. */
struct take {
	struct redis_conn *c;
	const struct group_keys *k;
	const char *member;
	int max;
	struct event_batch *out;
	long dropped; /* delivered beyond max: left pending on the member */
};

static int64_t last_invalid_log_s;
static int64_t last_internal_log_s;
static int64_t last_malformed_log_s;
static int64_t last_overflow_log_s;

static enum hex_status invalid(const char *op, const char *what)
{
	if (logger_every(&last_invalid_log_s, LOG_INTERVAL_S))
		log_warn("event_stream_invalid_argument", "event stream %s refused: %s", op, what);
	return HEX_INVALID;
}

static enum hex_status internal(const char *op, const char *key, const char *what)
{
	if (logger_every(&last_internal_log_s, LOG_INTERVAL_S))
		log_error("event_stream_bad_answer", "event stream %s on %s: %s", op, key, what);
	return HEX_INTERNAL;
}

/*
 * redis_conn_command() answers NULL both for a dead link and for an error reply; only the
 * first means "nothing happened, try later". A dead link is dropped and backing off, so
 * the PING costs nothing then; after an error reply the link is kept and PING answers.
 */
static enum hex_status null_reply_status(struct redis_conn *c)
{
	return redis_conn_ping(c) == HEX_OK ? HEX_INTERNAL : HEX_UNAVAILABLE;
}

static bool topic_ok(const char *topic)
{
	size_t n = strlen(topic);
	return n > 0 && n <= EVENT_TOPIC_MAX && strspn(topic, TOPIC_CHARS) == n;
}

static bool member_ok(const char *member)
{
	size_t n = strlen(member);
	if (n == 0 || n > REDIS_EVENT_STREAM_MEMBER_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (member[i] <= ' ' || member[i] > '~')
			return false;
	return true;
}

static void retry_key(char *key, const char *topic, const char *consumer)
{
	snprintf(key, KEY_MAX, KEY_PREFIX "%s" KEY_RETRY "%s", topic, consumer);
}

static enum hex_status group_keys_make(struct group_keys *k, const char *op, const char *topic,
                                       const char *consumer)
{
	if (!topic_ok(topic))
		return invalid(op, "the topic is not 1..63 of [a-z0-9_.-]");
	if (!event_consumer_name_valid(consumer))
		return invalid(op, "the consumer is not 1..31 of [a-z0-9_]");
	k->topic = topic;
	k->consumer = consumer;
	snprintf(k->key[STREAM_MAIN], KEY_MAX, KEY_PREFIX "%s", topic);
	retry_key(k->key[STREAM_RETRY], topic, consumer);
	return HEX_OK;
}

static bool reply_is(const redisReply *r, int type)
{
	return r != NULL && r->type == type;
}

static bool reply_equals(const redisReply *r, const char *s)
{
	return reply_is(r, REDIS_REPLY_STRING) && r->len == strlen(s) &&
	       memcmp(r->str, s, r->len) == 0;
}

/* --- group info (XINFO GROUPS) -------------------------------------------------------- */

struct group_info {
	bool exists;
	long pending;
	long lag; /* -1: Redis does not know it (entries were deleted) */
	char last_delivered[EVENT_STREAM_ID_MAX + 1];
};

/* XINFO GROUPS answers one flat name/value list per group. */
static bool group_info_parse(const redisReply *g, struct group_info *out)
{
	if (!reply_is(g, REDIS_REPLY_ARRAY) || g->elements % 2 != 0)
		return false;
	bool has_pending = false;
	out->lag = -1;
	for (size_t i = 0; i < g->elements; i += 2) {
		const redisReply *name = g->element[i], *v = g->element[i + 1];
		if (reply_equals(name, "pending")) {
			if (!reply_is(v, REDIS_REPLY_INTEGER))
				return false;
			out->pending = (long)v->integer;
			has_pending = true;
		} else if (reply_equals(name, "lag") && reply_is(v, REDIS_REPLY_INTEGER)) {
			out->lag = (long)v->integer;
		} else if (reply_equals(name, "last-delivered-id") &&
		           (reply_is(v, REDIS_REPLY_STRING) || reply_is(v, REDIS_REPLY_STATUS)) &&
		           v->len < sizeof out->last_delivered) {
			memcpy(out->last_delivered, v->str, v->len);
			out->last_delivered[v->len] = '\0';
		}
	}
	return has_pending;
}

static const redisReply *group_name(const redisReply *g)
{
	if (!reply_is(g, REDIS_REPLY_ARRAY))
		return NULL;
	for (size_t i = 0; i + 1 < g->elements; i += 2)
		if (reply_equals(g->element[i], "name"))
			return g->element[i + 1];
	return NULL;
}

/* A stream that does not exist has no group: exists = false, HEX_OK. */
static enum hex_status group_info_get(struct redis_conn *c, const char *key, const char *group,
                                      struct group_info *out)
{
	memset(out, 0, sizeof *out);
	/* Asked first: XINFO on a missing key is an error reply, which is logged as one. */
	const char *exists[] = {"EXISTS", key};
	redisReply *r = redis_conn_command_argv(c, (int)COUNT_OF(exists), exists, NULL);
	if (r == NULL)
		return null_reply_status(c) == HEX_INTERNAL
		           ? internal("group info", key, "EXISTS answered an error")
		           : HEX_UNAVAILABLE;
	bool missing = reply_is(r, REDIS_REPLY_INTEGER) && r->integer == 0;
	freeReplyObject(r);
	if (missing)
		return HEX_OK;
	const char *argv[] = {"XINFO", "GROUPS", key};
	r = redis_conn_command_argv(c, (int)COUNT_OF(argv), argv, NULL);
	enum hex_status st = HEX_OK;
	if (r == NULL) {
		/* The error reply of a missing key ("no such key"). */
		st = null_reply_status(c);
		if (st == HEX_INTERNAL)
			st = HEX_OK;
		goto out;
	}
	if (!reply_is(r, REDIS_REPLY_ARRAY)) {
		st = internal("group info", key, "XINFO GROUPS is not a list");
		goto out;
	}
	for (size_t i = 0; i < r->elements; i++) {
		if (!reply_equals(group_name(r->element[i]), group))
			continue;
		if (!group_info_parse(r->element[i], out)) {
			st = internal("group info", key, "XINFO GROUPS has no pending count");
			goto out;
		}
		out->exists = true;
		break;
	}
out:
	if (r != NULL)
		freeReplyObject(r);
	return st;
}

/* --- publish ------------------------------------------------------------------------ */

static enum hex_status stream_publish(void *self, const struct event_msg *m)
{
	struct redis_conn *c = self;
	if (!topic_ok(m->topic))
		return invalid("publish", "the topic is not 1..63 of [a-z0-9_.-]");
	if (m->consumer[0] != '\0' && !event_consumer_name_valid(m->consumer))
		return invalid("publish", "the consumer is not 1..31 of [a-z0-9_]");
	if (m->event_id[0] == '\0' || m->attempt < 1 || m->outbox_id < 0)
		return invalid("publish", "empty event_id, attempt < 1 or outbox_id < 0");
	if (m->payload == NULL && m->payload_len != 0)
		return invalid("publish", "no payload but a payload length");

	char key[KEY_MAX], attempt[NUMBER_TEXT_MAX], outbox_id[NUMBER_TEXT_MAX];
	if (m->consumer[0] != '\0')
		retry_key(key, m->topic, m->consumer);
	else
		snprintf(key, sizeof key, KEY_PREFIX "%s", m->topic);
	snprintf(attempt, sizeof attempt, "%d", m->attempt);
	snprintf(outbox_id, sizeof outbox_id, "%" PRId64, m->outbox_id);
	const char *argv[] = {
	    "XADD",  key,         "*",        "event_id",  m->event_id,
	    "topic", m->topic,    "consumer", m->consumer, "attempt",
	    attempt, "outbox_id", outbox_id,  "payload",   m->payload != NULL ? m->payload : ""};
	size_t lens[COUNT_OF(argv)];
	for (size_t i = 0; i < COUNT_OF(argv) - 1; i++)
		lens[i] = strlen(argv[i]);
	lens[COUNT_OF(argv) - 1] = m->payload_len;

	redisReply *r = redis_conn_command_argv(c, (int)COUNT_OF(argv), argv, lens);
	if (r == NULL)
		return null_reply_status(c) == HEX_INTERNAL
		           ? internal("publish", key, "XADD answered an error")
		           : HEX_UNAVAILABLE;
	enum hex_status st = reply_is(r, REDIS_REPLY_STRING)
	                         ? HEX_OK
	                         : internal("publish", key, "XADD did not answer an id");
	freeReplyObject(r);
	return st;
}

/* --- join --------------------------------------------------------------------------- */

/* Looks first, so that the usual join (the group is there) costs no error reply. */
static enum hex_status join_key(struct redis_conn *c, const char *key, const char *group)
{
	struct group_info info;
	enum hex_status st = group_info_get(c, key, group, &info);
	if (st != HEX_OK || info.exists)
		return st;
	const char *argv[] = {"XGROUP", "CREATE", key, group, "0", "MKSTREAM"};
	redisReply *r = redis_conn_command_argv(c, (int)COUNT_OF(argv), argv, NULL);
	if (r != NULL) {
		freeReplyObject(r);
		return HEX_OK;
	}
	if (null_reply_status(c) == HEX_UNAVAILABLE)
		return HEX_UNAVAILABLE;
	/* BUSYGROUP from another member that just made it is fine; anything else is not. */
	st = group_info_get(c, key, group, &info);
	if (st != HEX_OK)
		return st;
	return info.exists ? HEX_OK : internal("join", key, "XGROUP CREATE answered an error");
}

static enum hex_status group_join(struct redis_conn *c, const struct group_keys *k)
{
	for (int kind = 0; kind < STREAM_KINDS; kind++) {
		enum hex_status st = join_key(c, k->key[kind], k->consumer);
		if (st != HEX_OK)
			return st;
	}
	return HEX_OK;
}

static enum hex_status stream_join(void *self, const char *topic, const char *consumer)
{
	struct group_keys k;
	enum hex_status st = group_keys_make(&k, "join", topic, consumer);
	if (st != HEX_OK)
		return st;
	return group_join(self, &k);
}

/* --- entries ------------------------------------------------------------------------ */

enum field { F_EVENT_ID = 0, F_TOPIC, F_CONSUMER, F_ATTEMPT, F_OUTBOX_ID, F_PAYLOAD, F_COUNT };

/* What the stream an entry sits on says its topic and consumer are. */
struct entry_home {
	const char *topic;
	const char *consumer;
};

/* Stores v into m, or returns why it cannot (a static sentence). */
typedef const char *(*field_store_fn)(const redisReply *v, const struct entry_home *home,
                                      struct event_msg *m);

/* Digits only, no sign, no spaces, at most max. */
static bool parse_count(const redisReply *v, int64_t max, int64_t *out)
{
	if (v->len == 0 || v->len > 19)
		return false;
	int64_t n = 0;
	for (size_t i = 0; i < v->len; i++) {
		if (v->str[i] < '0' || v->str[i] > '9')
			return false;
		int d = v->str[i] - '0';
		if (n > (max - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*out = n;
	return true;
}

static const char *store_event_id(const redisReply *v, const struct entry_home *home,
                                  struct event_msg *m)
{
	if (v->len == 0 || v->len > EVENT_ID_MAX || memchr(v->str, '\0', v->len) != NULL)
		return "event_id is empty, too long or holds a NUL byte";
	memcpy(m->event_id, v->str, v->len);
	m->event_id[v->len] = '\0';
	return NULL;
}

static const char *store_topic(const redisReply *v, const struct entry_home *home,
                               struct event_msg *m)
{
	if (strlen(home->topic) != v->len || memcmp(home->topic, v->str, v->len) != 0)
		return "topic is not the topic of its stream";
	return NULL;
}

static const char *store_consumer(const redisReply *v, const struct entry_home *home,
                                  struct event_msg *m)
{
	if (strlen(home->consumer) != v->len || memcmp(home->consumer, v->str, v->len) != 0)
		return "consumer is not the consumer of its stream";
	return NULL;
}

static const char *store_attempt(const redisReply *v, const struct entry_home *home,
                                 struct event_msg *m)
{
	int64_t n;
	if (!parse_count(v, INT_MAX, &n) || n < 1)
		return "attempt is not a whole number 1..2147483647";
	m->attempt = (int)n;
	return NULL;
}

static const char *store_outbox_id(const redisReply *v, const struct entry_home *home,
                                   struct event_msg *m)
{
	if (!parse_count(v, INT64_MAX, &m->outbox_id))
		return "outbox_id is not a whole number 0..2^63-1";
	return NULL;
}

static const char *store_payload(const redisReply *v, const struct entry_home *home,
                                 struct event_msg *m)
{
	m->payload = xmalloc(v->len + 1);
	memcpy(m->payload, v->str, v->len);
	m->payload[v->len] = '\0';
	m->payload_len = v->len;
	return NULL;
}

/* In enum field order; the payload last, so that nothing fails after it is copied. */
static const struct field_rule {
	const char *name;
	field_store_fn store;
} field_rules[F_COUNT] = {
    [F_EVENT_ID] = {"event_id", store_event_id},    [F_TOPIC] = {"topic", store_topic},
    [F_CONSUMER] = {"consumer", store_consumer},    [F_ATTEMPT] = {"attempt", store_attempt},
    [F_OUTBOX_ID] = {"outbox_id", store_outbox_id}, [F_PAYLOAD] = {"payload", store_payload},
};

/* A growing NUL-terminated text. */
struct dump {
	char *buf;
	size_t len, cap;
};

static void dump_put(struct dump *d, const char *s, size_t n)
{
	if (d->len + n + 1 > d->cap) {
		while (d->len + n + 1 > d->cap)
			d->cap = d->cap != 0 ? d->cap * 2 : 256;
		d->buf = xrealloc(d->buf, d->cap);
	}
	memcpy(d->buf + d->len, s, n);
	d->len += n;
	d->buf[d->len] = '\0';
}

static void dump_str(struct dump *d, const char *s)
{
	dump_put(d, s, strlen(s));
}

/* Printable ASCII as is, '"' and '\' escaped, every other byte as \xNN; a long value is
 * cut and says how long it was. */
static void dump_escaped(struct dump *d, const char *s, size_t n)
{
	size_t shown =
	    n < REDIS_EVENT_STREAM_DUMP_VALUE_MAX ? n : REDIS_EVENT_STREAM_DUMP_VALUE_MAX;
	for (size_t i = 0; i < shown; i++) {
		unsigned char ch = (unsigned char)s[i];
		char esc[8];
		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			dump_put(d, esc, 2);
		} else if (ch >= ' ' && ch <= '~') {
			dump_put(d, s + i, 1);
		} else {
			snprintf(esc, sizeof esc, "\\x%02x", ch);
			dump_put(d, esc, 4);
		}
	}
	if (shown < n) {
		char more[64];
		snprintf(more, sizeof more, "...(%zu bytes in all)", n);
		dump_str(d, more);
	}
}

/* A field name as is, a value in quotes; anything but a string by its type. */
static void dump_reply(struct dump *d, const redisReply *v, bool quoted)
{
	if (reply_is(v, REDIS_REPLY_STRING) || reply_is(v, REDIS_REPLY_STATUS)) {
		if (quoted)
			dump_put(d, "\"", 1);
		dump_escaped(d, v->str, v->len);
		if (quoted)
			dump_put(d, "\"", 1);
	} else if (reply_is(v, REDIS_REPLY_INTEGER)) {
		dump_str(d, "(integer)");
	} else if (reply_is(v, REDIS_REPLY_ARRAY)) {
		dump_str(d, "(list)");
	} else {
		dump_str(d, "(nil)");
	}
}

/* Turns m into the dead-letter form of an entry that could not be read. */
static void entry_malformed(struct event_msg *m, const char *key, const char *why,
                            const redisReply *fields)
{
	struct dump d = {0};
	dump_str(&d, "malformed stream entry ");
	dump_str(&d, m->stream_id);
	dump_str(&d, " on ");
	dump_str(&d, key);
	dump_str(&d, ": ");
	dump_str(&d, why);
	dump_str(&d, "; fields:");
	for (size_t i = 0; reply_is(fields, REDIS_REPLY_ARRAY) && i < fields->elements; i++) {
		dump_str(&d, i % 2 == 0 ? " " : "=");
		dump_reply(&d, fields->element[i], i % 2 == 1);
	}
	free(m->payload);
	m->payload = d.buf;
	m->payload_len = d.len;
	m->event_id[0] = '\0';
	m->attempt = 1;
	m->outbox_id = 0;
	if (logger_every(&last_malformed_log_s, LOG_INTERVAL_S))
		log_warn("event_stream_malformed_entry", "stream entry %s on %s cannot be read: %s",
		         m->stream_id, key, why);
}

static int field_index(const redisReply *name)
{
	for (int f = 0; f < F_COUNT; f++)
		if (reply_equals(name, field_rules[f].name))
			return f;
	return -1;
}

/* Why the fields cannot be read (NULL: they can), having stored them into m. */
static const char *entry_store(const redisReply *fields, const struct entry_home *home,
                               struct event_msg *m)
{
	const redisReply *vals[F_COUNT] = {0};
	if (!reply_is(fields, REDIS_REPLY_ARRAY) || fields->elements % 2 != 0)
		return "the fields are not name/value pairs";
	for (size_t i = 0; i < fields->elements; i += 2) {
		const redisReply *v = fields->element[i + 1];
		if (!reply_is(fields->element[i], REDIS_REPLY_STRING) ||
		    !reply_is(v, REDIS_REPLY_STRING))
			return "the fields are not name/value pairs";
		int f = field_index(fields->element[i]);
		if (f < 0)
			continue;
		if (vals[f] != NULL)
			return "a field is repeated";
		vals[f] = v;
	}
	for (int f = 0; f < F_COUNT; f++)
		if (vals[f] == NULL)
			return "a field is missing (event_id, topic, consumer, attempt, outbox_id, "
			       "payload)";
	for (int f = 0; f < F_COUNT; f++) {
		const char *why = field_rules[f].store(vals[f], home, m);
		if (why != NULL)
			return why;
	}
	return NULL;
}

/* Adds one entry ([id, fields]) of stream `kind` to t->out; deleted entries are skipped. */
static enum hex_status take_entry(struct take *t, int kind, const redisReply *e)
{
	const char *key = t->k->key[kind];
	if (reply_is(e, REDIS_REPLY_NIL))
		return HEX_OK;
	if (!reply_is(e, REDIS_REPLY_ARRAY) || e->elements != 2 ||
	    !reply_is(e->element[0], REDIS_REPLY_STRING) || e->element[0]->len == 0 ||
	    e->element[0]->len > EVENT_STREAM_ID_MAX)
		return internal("read", key, "an entry is not [id, fields]");
	const redisReply *fields = e->element[1];
	if (reply_is(fields, REDIS_REPLY_NIL))
		return HEX_OK;
	if (t->out->n >= t->max) {
		t->dropped++;
		return HEX_OK;
	}
	struct event_msg *m = &t->out->items[t->out->n];
	memset(m, 0, sizeof *m);
	memcpy(m->stream_id, e->element[0]->str, e->element[0]->len);
	hex_strlcpy(m->topic, t->k->topic, sizeof m->topic);
	if (kind == STREAM_RETRY)
		hex_strlcpy(m->consumer, t->k->consumer, sizeof m->consumer);
	struct entry_home home = {t->k->topic, m->consumer};
	const char *why = entry_store(fields, &home, m);
	if (why != NULL)
		entry_malformed(m, key, why, fields);
	t->out->n++;
	return HEX_OK;
}

static enum hex_status take_entries(struct take *t, int kind, const redisReply *list)
{
	if (!reply_is(list, REDIS_REPLY_ARRAY))
		return internal("read", t->k->key[kind], "the entries are not a list");
	for (size_t i = 0; i < list->elements; i++) {
		enum hex_status st = take_entry(t, kind, list->element[i]);
		if (st != HEX_OK)
			return st;
	}
	return HEX_OK;
}

static int kind_of_key(const struct take *t, const redisReply *key)
{
	for (int kind = 0; kind < STREAM_KINDS; kind++)
		if (reply_equals(key, t->k->key[kind]))
			return kind;
	return -1;
}

/* XREADGROUP answers nil (nothing) or a list of [key, entries]. */
static enum hex_status take_read_reply(struct take *t, const redisReply *r)
{
	if (reply_is(r, REDIS_REPLY_NIL))
		return HEX_OK;
	if (!reply_is(r, REDIS_REPLY_ARRAY))
		return internal("read", t->k->key[STREAM_MAIN], "XREADGROUP is not a list");
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *s = r->element[i];
		int kind = reply_is(s, REDIS_REPLY_ARRAY) && s->elements == 2
		               ? kind_of_key(t, s->element[0])
		               : -1;
		if (kind < 0)
			return internal("read", t->k->key[STREAM_MAIN],
			                "XREADGROUP answered a stream not asked for");
		enum hex_status st = take_entries(t, kind, s->element[1]);
		if (st != HEX_OK)
			return st;
	}
	return HEX_OK;
}

/* --- read --------------------------------------------------------------------------- */

/*
 * One XREADGROUP of new entries over kinds[0..n), up to the room left in t->out.
 * *error_reply: Redis answered an error on a live link (NOGROUP, most likely).
 */
static enum hex_status read_step(struct take *t, const int *kinds, int n, int block_ms,
                                 bool *error_reply)
{
	char count[NUMBER_TEXT_MAX], block[NUMBER_TEXT_MAX];
	const char *argv[READ_ARGS_MAX];
	int argc = 0;
	snprintf(count, sizeof count, "%d", t->max - t->out->n);
	snprintf(block, sizeof block, "%d", block_ms);
	argv[argc++] = "XREADGROUP";
	argv[argc++] = "GROUP";
	argv[argc++] = t->k->consumer;
	argv[argc++] = t->member;
	argv[argc++] = "COUNT";
	argv[argc++] = count;
	if (block_ms > 0) {
		argv[argc++] = "BLOCK";
		argv[argc++] = block;
	}
	argv[argc++] = "STREAMS";
	for (int i = 0; i < n; i++)
		argv[argc++] = t->k->key[kinds[i]];
	for (int i = 0; i < n; i++)
		argv[argc++] = ">";

	*error_reply = false;
	redisReply *r = redis_conn_command_argv(t->c, argc, argv, NULL);
	if (r == NULL) {
		enum hex_status st = null_reply_status(t->c);
		*error_reply = st == HEX_INTERNAL;
		return st;
	}
	enum hex_status st = take_read_reply(t, r);
	freeReplyObject(r);
	return st;
}

/* read_step, joining the group again the first time Redis answers an error (NOGROUP). */
static enum hex_status read_step_joined(struct take *t, const int *kinds, int n, int block_ms,
                                        bool *rejoined)
{
	bool error_reply = false;
	enum hex_status st = read_step(t, kinds, n, block_ms, &error_reply);
	if (error_reply && !*rejoined) {
		*rejoined = true;
		st = group_join(t->c, t->k);
		if (st != HEX_OK)
			return st;
		st = read_step(t, kinds, n, block_ms, &error_reply);
	}
	return error_reply
	           ? internal("read", t->k->key[STREAM_MAIN], "XREADGROUP answered an error")
	           : st;
}

static const int kinds_retry[] = {STREAM_RETRY};
static const int kinds_main[] = {STREAM_MAIN};
static const int kinds_both[] = {STREAM_MAIN, STREAM_RETRY};

static enum hex_status stream_read(void *self, const char *topic, const char *consumer,
                                   const char *member, int max, int block_ms,
                                   struct event_batch *out)
{
	out->n = 0;
	struct group_keys k;
	enum hex_status st = group_keys_make(&k, "read", topic, consumer);
	if (st != HEX_OK)
		return st;
	if (!member_ok(member))
		return invalid("read", "the member is not 1..255 bytes of printable ASCII");
	if (max < 1 || max > EVENT_BATCH_MAX || block_ms < 0)
		return invalid("read", "max is not 1..64 or block_ms < 0");

	struct take t = {.c = self, .k = &k, .member = member, .max = max, .out = out};
	bool rejoined = false;
	st = read_step_joined(&t, kinds_retry, 1, 0, &rejoined);
	if (st == HEX_OK && out->n < max)
		st = read_step_joined(&t, kinds_main, 1, 0, &rejoined);
	if (st == HEX_OK && out->n == 0 && block_ms > 0)
		st = read_step_joined(&t, kinds_both, 2, block_ms, &rejoined);

	if (t.dropped > 0 && logger_every(&last_overflow_log_s, LOG_INTERVAL_S))
		log_info("event_stream_read_overflow",
		         "%ld entries of %s arrived beyond the %d asked for; they wait for a claim",
		         t.dropped, k.key[STREAM_MAIN], max);
	/* Entries taken are pending on member now: hand them out even if a later step failed. */
	if (st != HEX_OK && out->n > 0)
		st = HEX_OK;
	if (st != HEX_OK)
		event_batch_clear(out);
	return st;
}

/* --- claim_idle --------------------------------------------------------------------- */

/* XAUTOCLAIM answers [next cursor, entries, deleted ids] (Redis 7; 6.2 has no third). */
static enum hex_status claim_key(struct take *t, int kind, const char *min_idle)
{
	const char *key = t->k->key[kind];
	char cursor[EVENT_STREAM_ID_MAX + 1] = "0-0";
	for (int round = 0; round < CLAIM_ROUNDS && t->out->n < t->max; round++) {
		char count[NUMBER_TEXT_MAX];
		snprintf(count, sizeof count, "%d", t->max - t->out->n);
		const char *argv[] = {"XAUTOCLAIM", key,    t->k->consumer, t->member,
		                      min_idle,     cursor, "COUNT",        count};
		redisReply *r = redis_conn_command_argv(t->c, (int)COUNT_OF(argv), argv, NULL);
		if (r == NULL) {
			enum hex_status st = null_reply_status(t->c);
			if (st != HEX_INTERNAL)
				return st;
			/* NOGROUP: no group there, so nothing pending in it. */
			struct group_info info;
			st = group_info_get(t->c, key, t->k->consumer, &info);
			if (st != HEX_OK)
				return st;
			return info.exists ? internal("claim", key, "XAUTOCLAIM answered an error")
			                   : HEX_OK;
		}
		enum hex_status st = HEX_OK;
		if (!reply_is(r, REDIS_REPLY_ARRAY) || r->elements < 2 ||
		    !reply_is(r->element[0], REDIS_REPLY_STRING) ||
		    r->element[0]->len >= sizeof cursor)
			st = internal("claim", key, "XAUTOCLAIM is not [cursor, entries, ...]");
		else
			st = take_entries(t, kind, r->element[1]);
		if (st == HEX_OK) {
			memcpy(cursor, r->element[0]->str, r->element[0]->len);
			cursor[r->element[0]->len] = '\0';
		}
		freeReplyObject(r);
		if (st != HEX_OK)
			return st;
		if (strcmp(cursor, "0-0") == 0)
			break;
	}
	return HEX_OK;
}

static enum hex_status stream_claim_idle(void *self, const char *topic, const char *consumer,
                                         const char *member, int64_t min_idle_ms, int max,
                                         struct event_batch *out)
{
	out->n = 0;
	struct group_keys k;
	enum hex_status st = group_keys_make(&k, "claim", topic, consumer);
	if (st != HEX_OK)
		return st;
	if (!member_ok(member))
		return invalid("claim", "the member is not 1..255 bytes of printable ASCII");
	if (max < 1 || max > EVENT_BATCH_MAX || min_idle_ms < 0)
		return invalid("claim", "max is not 1..64 or min_idle_ms < 0");

	char min_idle[NUMBER_TEXT_MAX];
	snprintf(min_idle, sizeof min_idle, "%" PRId64, min_idle_ms);
	struct take t = {.c = self, .k = &k, .member = member, .max = max, .out = out};
	for (int kind = 0; kind < STREAM_KINDS && st == HEX_OK && out->n < max; kind++)
		st = claim_key(&t, kind, min_idle);
	if (st != HEX_OK && out->n > 0)
		st = HEX_OK;
	if (st != HEX_OK)
		event_batch_clear(out);
	return st;
}

/* --- ack and stats ------------------------------------------------------------------ */

static enum hex_status stream_ack(void *self, const char *topic, const char *consumer,
                                  const struct event_msg *m)
{
	struct redis_conn *c = self;
	struct group_keys k;
	enum hex_status st = group_keys_make(&k, "ack", topic, consumer);
	if (st != HEX_OK)
		return st;
	if (m->stream_id[0] == '\0')
		return invalid("ack", "the message has no stream_id");
	if (m->consumer[0] != '\0' && strcmp(m->consumer, consumer) != 0)
		return invalid("ack", "the message is on another consumer's retry stream");
	const char *key = k.key[m->consumer[0] != '\0' ? STREAM_RETRY : STREAM_MAIN];
	const char *argv[] = {"XACK", key, consumer, m->stream_id};
	redisReply *r = redis_conn_command_argv(c, (int)COUNT_OF(argv), argv, NULL);
	if (r == NULL)
		return null_reply_status(c) == HEX_INTERNAL
		           ? internal("ack", key, "XACK answered an error")
		           : HEX_UNAVAILABLE;
	/* 0 is fine: acknowledged before (a redelivery), or the group is gone with Redis. */
	st = reply_is(r, REDIS_REPLY_INTEGER) ? HEX_OK
	                                      : internal("ack", key, "XACK is not a number");
	freeReplyObject(r);
	return st;
}

/* The publication time (ms) of an entry id "<ms>-<seq>"; 0 if it is not one. */
static int64_t entry_ms(const redisReply *id)
{
	if (!reply_is(id, REDIS_REPLY_STRING))
		return 0;
	char *end;
	long long ms = strtoll(id->str, &end, 10);
	return end != id->str && *end == '-' && ms > 0 ? (int64_t)ms : 0;
}

/*
 * The oldest entry of key the group has not acknowledged: the oldest pending one
 * (XPENDING's summary) or else the first one after the last delivered. 0 when none or
 * when Redis cannot tell (the numbers are for a gauge, not for correctness).
 */
static int64_t oldest_unacked_ms(struct redis_conn *c, const char *key, const char *group,
                                 const struct group_info *info)
{
	int64_t oldest = 0;
	if (info->pending > 0) {
		const char *argv[] = {"XPENDING", key, group};
		redisReply *r = redis_conn_command_argv(c, (int)COUNT_OF(argv), argv, NULL);
		if (reply_is(r, REDIS_REPLY_ARRAY) && r->elements >= 2)
			oldest = entry_ms(r->element[1]);
		if (r != NULL)
			freeReplyObject(r);
	}
	if (oldest == 0 && info->lag != 0 && info->last_delivered[0] != '\0') {
		char from[EVENT_STREAM_ID_MAX + 2];
		snprintf(from, sizeof from, "(%s", info->last_delivered);
		const char *argv[] = {"XRANGE", key, from, "+", "COUNT", "1"};
		redisReply *r = redis_conn_command_argv(c, (int)COUNT_OF(argv), argv, NULL);
		if (reply_is(r, REDIS_REPLY_ARRAY) && r->elements == 1 &&
		    reply_is(r->element[0], REDIS_REPLY_ARRAY) && r->element[0]->elements >= 1)
			oldest = entry_ms(r->element[0]->element[0]);
		if (r != NULL)
			freeReplyObject(r);
	}
	return oldest;
}

static enum hex_status stream_stats(void *self, const char *topic, const char *consumer,
                                    struct event_group_stats *out)
{
	*out = (struct event_group_stats){0, 0, 0};
	struct group_keys k;
	enum hex_status st = group_keys_make(&k, "stats", topic, consumer);
	if (st != HEX_OK)
		return st;
	struct event_group_stats sum = {0, 0, 0};
	for (int kind = 0; kind < STREAM_KINDS; kind++) {
		struct group_info info;
		st = group_info_get(self, k.key[kind], consumer, &info);
		if (st != HEX_OK)
			return st;
		if (!info.exists)
			continue;
		sum.pending += info.pending;
		sum.lag = sum.lag < 0 || info.lag < 0 ? -1 : sum.lag + info.lag;
		int64_t oldest = oldest_unacked_ms(self, k.key[kind], consumer, &info);
		if (oldest != 0 && (sum.oldest_ms == 0 || oldest < sum.oldest_ms))
			sum.oldest_ms = oldest;
	}
	*out = sum;
	return HEX_OK;
}

static const struct event_stream_ops redis_event_stream_ops = {
    .publish = stream_publish,
    .join = stream_join,
    .read = stream_read,
    .claim_idle = stream_claim_idle,
    .ack = stream_ack,
    .stats = stream_stats,
};

struct event_stream redis_event_stream_port(struct redis_conn *c)
{
	return (struct event_stream){.ops = &redis_event_stream_ops, .self = c};
}
