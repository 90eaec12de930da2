/*
 * test_redis_event_stream: the event_stream port over a private redis-server (the suite
 * flushes, kills and restarts it, so it cannot be the shared one). Its port comes from
 * HEX_TEST_REDIS_PRIVATE_PORT when set, else a free one. Each test works on a topic of
 * its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/redis/redis_event_stream.h"
#include "support/redis_server.h"

/* Longer than any block_ms below, as the port requires. */
#define CONN_TIMEOUT_MS 3000
#define TOPIC_LEN       24
#define BIG_PAYLOAD     (100 * 1024)

struct fixture {
	struct redis_server srv;
	struct redis_conn *conn;
	struct event_stream port;
	redisContext *raw; /* looks behind the adapter's back */
};

static struct fixture fx;

static int setup(void **state)
{
	*state = &fx;
	const char *env = getenv("HEX_TEST_REDIS_PRIVATE_PORT");
	int port = env != NULL ? atoi(env) : 0;
	if (!redis_server_start(&fx.srv, port, NULL))
		return -1;
	struct hex_err err = {0};
	fx.conn = redis_conn_new(fx.srv.url, CONN_TIMEOUT_MS, &err);
	if (fx.conn == NULL) {
		fprintf(stderr, "redis_conn_new: %s\n", err.message);
		return -1;
	}
	fx.port = redis_event_stream_port(fx.conn);
	fx.raw = redis_server_connect(fx.srv.url);
	return fx.raw != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	redis_conn_free(fx.conn);
	if (fx.raw != NULL)
		redisFree(fx.raw);
	redis_server_stop(&fx.srv);
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void unique_topic(char out[TOPIC_LEN])
{
	char id[37];
	redis_server_unique_id(id);
	snprintf(out, TOPIC_LEN, "t_%.8s%.4s", id, id + 9);
}

static void main_key(char *key, size_t n, const char *topic)
{
	snprintf(key, n, "hex:events:%s", topic);
}

static void retry_key(char *key, size_t n, const char *topic, const char *consumer)
{
	snprintf(key, n, "hex:events:%s:retry:%s", topic, consumer);
}

/* A message whose payload is borrowed: for publish only, never cleared. */
static struct event_msg msg(const char *topic, const char *consumer, const char *event_id,
                            int attempt, int64_t outbox_id, const char *payload, size_t len)
{
	struct event_msg m;
	memset(&m, 0, sizeof m);
	hex_strlcpy(m.topic, topic, sizeof m.topic);
	hex_strlcpy(m.consumer, consumer, sizeof m.consumer);
	hex_strlcpy(m.event_id, event_id, sizeof m.event_id);
	m.attempt = attempt;
	m.outbox_id = outbox_id;
	m.payload = (char *)payload;
	m.payload_len = len;
	return m;
}

static void publish_ok(const struct event_msg *m)
{
	assert_int_equal(fx.port.ops->publish(fx.port.self, m), HEX_OK);
}

static void publish_text(const char *topic, const char *consumer, const char *event_id)
{
	struct event_msg m = msg(topic, consumer, event_id, 1, 1, "{}", 2);
	publish_ok(&m);
}

static void join_ok(const char *topic, const char *consumer)
{
	assert_int_equal(fx.port.ops->join(fx.port.self, topic, consumer), HEX_OK);
}

static int read_ok(const char *topic, const char *consumer, const char *member, int max,
                   int block_ms, struct event_batch *b)
{
	assert_int_equal(fx.port.ops->read(fx.port.self, topic, consumer, member, max, block_ms, b),
	                 HEX_OK);
	return b->n;
}

static struct event_group_stats stats_ok(const char *topic, const char *consumer)
{
	struct event_group_stats s = {-7, -7, -7};
	assert_int_equal(fx.port.ops->stats(fx.port.self, topic, consumer, &s), HEX_OK);
	return s;
}

static redisReply *raw(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(fx.raw, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	return r;
}

static long long raw_int(const char *fmt, const char *key)
{
	redisReply *r = raw(fmt, key);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	long long v = r->integer;
	freeReplyObject(r);
	return v;
}

/* The id of a raw XADD. */
static void raw_xadd(char id[EVENT_STREAM_ID_MAX + 1], int argc, const char **argv,
                     const size_t *lens)
{
	redisReply *r = redisCommandArgv(fx.raw, argc, argv, lens);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	hex_strlcpy(id, r->str, EVENT_STREAM_ID_MAX + 1);
	freeReplyObject(r);
}

/* The stream ids of key, oldest first, as XRANGE sees them. */
static size_t raw_ids(const char *key, char ids[][EVENT_STREAM_ID_MAX + 1], size_t max)
{
	redisReply *r = raw("XRANGE %s - +", key);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	size_t n = r->elements < max ? r->elements : max;
	for (size_t i = 0; i < n; i++)
		hex_strlcpy(ids[i], r->element[i]->element[0]->str, EVENT_STREAM_ID_MAX + 1);
	freeReplyObject(r);
	return n;
}

static void assert_same_msg(const struct event_msg *got, const struct event_msg *want)
{
	assert_string_equal(got->event_id, want->event_id);
	assert_string_equal(got->topic, want->topic);
	assert_string_equal(got->consumer, want->consumer);
	assert_int_equal(got->attempt, want->attempt);
	assert_int_equal(got->outbox_id, want->outbox_id);
	assert_int_equal(got->payload_len, want->payload_len);
	assert_non_null(got->payload);
	if (want->payload_len > 0)
		assert_memory_equal(got->payload, want->payload, want->payload_len);
	assert_int_equal(got->payload[got->payload_len], '\0');
	assert_true(got->stream_id[0] != '\0');
}

static void test_round_trip_every_field(void **state)
{
	char topic[TOPIC_LEN], key[128], rkey[128];
	unique_topic(topic);
	main_key(key, sizeof key, topic);
	retry_key(rkey, sizeof rkey, topic, "ledger");
	join_ok(topic, "ledger");

	static const char binary[] = "{\"a\":1}\0after-nul\xff\x01\"q\"";
	char *big = malloc(BIG_PAYLOAD);
	for (size_t i = 0; i < BIG_PAYLOAD; i++)
		big[i] = (char)(i * 7 + 3);
	char long_id[EVENT_ID_MAX + 1];
	memset(long_id, 'e', EVENT_ID_MAX);
	long_id[EVENT_ID_MAX] = '\0';
	struct event_msg sent[] = {
	    msg(topic, "", "evt_binary", 1, 42, binary, sizeof binary - 1),
	    msg(topic, "", long_id, INT_MAX, INT64_MAX, big, BIG_PAYLOAD),
	    msg(topic, "", "evt_empty", 2, 0, NULL, 0),
	    msg(topic, "ledger", "evt_retry", 3, 7, "retry me", 8),
	};
	for (size_t i = 0; i < 4; i++)
		publish_ok(&sent[i]);

	/* The keys and field names others (hexctl, an operator's redis-cli) rely on. */
	assert_int_equal(raw_int("XLEN %s", key), 3);
	assert_int_equal(raw_int("XLEN %s", rkey), 1);
	redisReply *r = raw("XRANGE %s - + COUNT 1", key);
	assert_int_equal(r->element[0]->element[1]->elements, 12);
	static const char *const names[] = {"event_id", "topic",     "consumer",
	                                    "attempt",  "outbox_id", "payload"};
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(r->element[0]->element[1]->element[2 * i]->str, names[i]);
	freeReplyObject(r);

	struct event_batch b = {0};
	assert_int_equal(read_ok(topic, "ledger", "m1", EVENT_BATCH_MAX, 0, &b), 4);
	/* Retries come first, then the topic's stream in order. */
	char ids[3][EVENT_STREAM_ID_MAX + 1], rids[1][EVENT_STREAM_ID_MAX + 1];
	assert_int_equal(raw_ids(key, ids, 3), 3);
	assert_int_equal(raw_ids(rkey, rids, 1), 1);
	assert_same_msg(&b.items[0], &sent[3]);
	assert_string_equal(b.items[0].stream_id, rids[0]);
	for (int i = 0; i < 3; i++) {
		assert_same_msg(&b.items[i + 1], &sent[i]);
		assert_string_equal(b.items[i + 1].stream_id, ids[i]);
	}
	event_batch_clear(&b);
	assert_int_equal(b.n, 0);
	assert_int_equal(read_ok(topic, "ledger", "m1", EVENT_BATCH_MAX, 0, &b), 0);
	free(big);
}

static void test_two_groups_each_get_every_entry(void **state)
{
	char topic[TOPIC_LEN];
	unique_topic(topic);
	join_ok(topic, "ledger");
	join_ok(topic, "membership");
	join_ok(topic, "ledger"); /* joining again is fine and changes nothing */
	char id[16];
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof id, "evt_%d", i);
		publish_text(topic, "", id);
	}
	static const char *const groups[] = {"ledger", "membership"};
	for (size_t g = 0; g < 2; g++) {
		struct event_batch b = {0};
		assert_int_equal(read_ok(topic, groups[g], "m1", 10, 0, &b), 5);
		for (int i = 0; i < 5; i++) {
			snprintf(id, sizeof id, "evt_%d", i);
			assert_string_equal(b.items[i].event_id, id);
			assert_string_equal(b.items[i].consumer, "");
		}
		event_batch_clear(&b);
	}
}

static void test_members_of_a_group_never_share_an_entry(void **state)
{
	enum { N = 25 };
	char topic[TOPIC_LEN];
	unique_topic(topic);
	join_ok(topic, "ledger");
	char id[16];
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof id, "evt_%d", i);
		publish_text(topic, i % 3 == 0 ? "ledger" : "", id);
	}
	int seen[N] = {0}, per_member[2] = {0, 0};
	static const char *const members[] = {"host-a:1", "host-b:2"};
	for (int round = 0, got = 1; got > 0; round++) {
		got = 0;
		for (int m = 0; m < 2; m++) {
			struct event_batch b = {0};
			int n = read_ok(topic, "ledger", members[m], 3, 0, &b);
			assert_true(n <= 3);
			for (int i = 0; i < n; i++) {
				int k = atoi(b.items[i].event_id + 4);
				assert_true(k >= 0 && k < N);
				seen[k]++;
			}
			per_member[m] += n;
			got += n;
			event_batch_clear(&b);
		}
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(seen[i], 1);
	assert_true(per_member[0] > 0 && per_member[1] > 0);
	assert_int_equal(per_member[0] + per_member[1], N);
}

/* One XREADGROUP over both streams could hand out max entries from each. */
static void test_read_never_returns_more_than_max(void **state)
{
	char topic[TOPIC_LEN];
	unique_topic(topic);
	join_ok(topic, "ledger");
	char id[16];
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof id, "main_%d", i);
		publish_text(topic, "", id);
		snprintf(id, sizeof id, "retry_%d", i);
		publish_text(topic, "ledger", id);
	}
	static const char *const want[][4] = {
	    {"retry_0", "retry_1", "retry_2", "retry_3"},
	    {"retry_4", "main_0", "main_1", "main_2"},
	    {"main_3", "main_4", NULL, NULL},
	};
	for (int round = 0; round < 3; round++) {
		struct event_batch b = {0};
		int n = read_ok(topic, "ledger", "m1", 4, 0, &b);
		assert_int_equal(n, round < 2 ? 4 : 2);
		for (int i = 0; i < n; i++)
			assert_string_equal(b.items[i].event_id, want[round][i]);
		event_batch_clear(&b);
	}
	struct event_group_stats s = stats_ok(topic, "ledger");
	assert_int_equal(s.pending, 10);
	assert_int_equal(s.lag, 0);
}

static void test_retry_entries_go_only_to_their_consumer(void **state)
{
	char topic[TOPIC_LEN];
	unique_topic(topic);
	join_ok(topic, "ledger");
	join_ok(topic, "membership");
	struct event_msg m = msg(topic, "ledger", "evt_1", 2, 9, "p", 1);
	publish_ok(&m);

	struct event_batch b = {0};
	assert_int_equal(read_ok(topic, "membership", "m1", 10, 0, &b), 0);
	assert_int_equal(read_ok(topic, "ledger", "m1", 10, 0, &b), 1);
	assert_same_msg(&b.items[0], &m);
	struct event_group_stats s = stats_ok(topic, "ledger");
	assert_int_equal(s.pending, 1);
	/* A retry is acknowledged on the retry stream it came from. */
	assert_int_equal(fx.port.ops->ack(fx.port.self, topic, "ledger", &b.items[0]), HEX_OK);
	s = stats_ok(topic, "ledger");
	assert_int_equal(s.pending, 0);
	/* Another group cannot acknowledge it: it is not on its streams. */
	assert_int_equal(fx.port.ops->ack(fx.port.self, topic, "membership", &b.items[0]),
	                 HEX_INVALID);
	event_batch_clear(&b);
}

static void test_ack_removes_from_pending(void **state)
{
	char topic[TOPIC_LEN];
	unique_topic(topic);
	/* Nothing there yet: no stream, no group. */
	struct event_group_stats s = stats_ok(topic, "ledger");
	assert_int_equal(s.pending, 0);
	assert_int_equal(s.lag, 0);
	assert_int_equal(s.oldest_ms, 0);

	join_ok(topic, "ledger");
	int64_t before_ms = (int64_t)time(NULL) * 1000 - 1000;
	publish_text(topic, "", "evt_a");
	publish_text(topic, "", "evt_b");
	publish_text(topic, "ledger", "evt_c");
	s = stats_ok(topic, "ledger");
	assert_int_equal(s.pending, 0);
	assert_int_equal(s.lag, 3);
	/* Not delivered yet: the oldest undelivered entry's time. */
	assert_in_range(s.oldest_ms, before_ms, (int64_t)time(NULL) * 1000 + 1000);

	struct event_batch b = {0};
	assert_int_equal(read_ok(topic, "ledger", "m1", 10, 0, &b), 3);
	s = stats_ok(topic, "ledger");
	assert_int_equal(s.pending, 3);
	assert_int_equal(s.lag, 0);
	/* Delivered, not acknowledged: the oldest pending entry's time, its id's. */
	int64_t first_ms = INT64_MAX;
	for (int i = 0; i < 3; i++) {
		int64_t ms = strtoll(b.items[i].stream_id, NULL, 10);
		first_ms = ms < first_ms ? ms : first_ms;
	}
	assert_int_equal(s.oldest_ms, first_ms);

	long want = 3;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(fx.port.ops->ack(fx.port.self, topic, "ledger", &b.items[i]),
		                 HEX_OK);
		s = stats_ok(topic, "ledger");
		assert_int_equal(s.pending, --want);
	}
	assert_int_equal(s.oldest_ms, 0); /* all done: nothing is late */
	/* Acknowledging twice (a redelivery) is fine. */
	assert_int_equal(fx.port.ops->ack(fx.port.self, topic, "ledger", &b.items[0]), HEX_OK);
	assert_int_equal(stats_ok(topic, "ledger").pending, 0);
	/* Acknowledged entries are not delivered again. */
	event_batch_clear(&b);
	assert_int_equal(read_ok(topic, "ledger", "m2", 10, 0, &b), 0);

	struct event_msg no_id = msg(topic, "", "evt_a", 1, 1, "", 0);
	assert_int_equal(fx.port.ops->ack(fx.port.self, topic, "ledger", &no_id), HEX_INVALID);
}

static void test_claim_idle_takes_idle_entries_not_fresh_ones(void **state)
{
	char topic[TOPIC_LEN], key[128];
	unique_topic(topic);
	main_key(key, sizeof key, topic);
	join_ok(topic, "ledger");
	struct event_msg sent[] = {
	    msg(topic, "ledger", "evt_retry", 4, 11, "r\0r", 3),
	    msg(topic, "", "evt_1", 1, 12, "one", 3),
	    msg(topic, "", "evt_2", 1, 13, "two", 3),
	};
	for (size_t i = 0; i < 3; i++)
		publish_ok(&sent[i]);
	struct event_batch b = {0};
	assert_int_equal(read_ok(topic, "ledger", "dead", 10, 0, &b), 3);
	event_batch_clear(&b);
	/* An entry deleted while pending is skipped, never handed out empty. */
	char deleted[EVENT_STREAM_ID_MAX + 1];
	const char *argv[] = {"XADD",  key,         "*",        "event_id", "evt_deleted",
	                      "topic", topic,       "consumer", "",         "attempt",
	                      "1",     "outbox_id", "14",       "payload",  "x"};
	raw_xadd(deleted, 15, argv, NULL);
	assert_int_equal(read_ok(topic, "ledger", "dead", 10, 0, &b), 1);
	event_batch_clear(&b);
	freeReplyObject(raw("XDEL %s %s", key, deleted));

	sleep_ms(300);
	publish_text(topic, "", "evt_fresh");
	assert_int_equal(read_ok(topic, "ledger", "busy", 10, 0, &b), 1);
	event_batch_clear(&b);

	/* max counts over both streams. */
	assert_int_equal(fx.port.ops->claim_idle(fx.port.self, topic, "ledger", "live", 200, 2, &b),
	                 HEX_OK);
	assert_int_equal(b.n, 2);
	assert_same_msg(&b.items[0], &sent[0]);
	assert_same_msg(&b.items[1], &sent[1]);
	event_batch_clear(&b);
	assert_int_equal(
	    fx.port.ops->claim_idle(fx.port.self, topic, "ledger", "live", 200, 10, &b), HEX_OK);
	assert_int_equal(b.n, 1);
	assert_same_msg(&b.items[0], &sent[2]);
	event_batch_clear(&b);

	/* Now fresh on "live": nothing more to take, and "busy" keeps its entry. */
	assert_int_equal(
	    fx.port.ops->claim_idle(fx.port.self, topic, "ledger", "other", 200, 10, &b), HEX_OK);
	assert_int_equal(b.n, 0);
	redisReply *r = raw("XPENDING %s ledger - + 10", key);
	assert_int_equal(r->elements, 3);
	int live = 0, busy = 0;
	for (size_t i = 0; i < r->elements; i++) {
		live += strcmp(r->element[i]->element[1]->str, "live") == 0;
		busy += strcmp(r->element[i]->element[1]->str, "busy") == 0;
	}
	freeReplyObject(r);
	assert_int_equal(live, 2);
	assert_int_equal(busy, 1);

	/* A group that was never joined has nothing pending. */
	assert_int_equal(fx.port.ops->claim_idle(fx.port.self, topic, "nobody", "live", 0, 10, &b),
	                 HEX_OK);
	assert_int_equal(b.n, 0);
}

struct late_publish {
	const char *url;
	const char *topic;
	int delay_ms;
};

static void *publish_later(void *arg)
{
	struct late_publish *lp = arg;
	sleep_ms(lp->delay_ms);
	struct redis_conn *c = redis_conn_new(lp->url, CONN_TIMEOUT_MS, NULL);
	struct event_stream p = redis_event_stream_port(c);
	struct event_msg m = msg(lp->topic, "", "evt_late", 1, 1, "late", 4);
	enum hex_status st = p.ops->publish(p.self, &m);
	redis_conn_free(c);
	return st == HEX_OK ? arg : NULL;
}

static void test_read_waits_up_to_block_ms(void **state)
{
	char topic[TOPIC_LEN];
	unique_topic(topic);
	join_ok(topic, "ledger");
	struct event_batch b = {0};

	int64_t t0 = now_ms();
	assert_int_equal(read_ok(topic, "ledger", "m1", 10, 0, &b), 0);
	assert_true(now_ms() - t0 < 100);

	t0 = now_ms();
	assert_int_equal(read_ok(topic, "ledger", "m1", 10, 400, &b), 0);
	int64_t took = now_ms() - t0;
	print_message("an empty read with block_ms 400 took %lld ms\n", (long long)took);
	assert_true(took >= 390 && took < 900);

	/* An entry that comes while waiting ends the wait at once. */
	struct late_publish lp = {fx.srv.url, topic, 200};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, publish_later, &lp), 0);
	t0 = now_ms();
	assert_int_equal(read_ok(topic, "ledger", "m1", 10, 2000, &b), 1);
	took = now_ms() - t0;
	void *res = NULL;
	pthread_join(th, &res);
	assert_non_null(res);
	print_message("a read woken by a publish took %lld ms\n", (long long)took);
	assert_true(took >= 150 && took < 1000);
	assert_string_equal(b.items[0].event_id, "evt_late");
	event_batch_clear(&b);
}

static void test_groups_come_back_after_flushall(void **state)
{
	char topic[TOPIC_LEN];
	unique_topic(topic);
	join_ok(topic, "ledger");
	publish_text(topic, "", "evt_before");
	struct event_batch b = {0};
	assert_int_equal(read_ok(topic, "ledger", "m1", 10, 0, &b), 1);
	event_batch_clear(&b);

	freeReplyObject(raw("FLUSHALL"));
	struct event_group_stats s = stats_ok(topic, "ledger");
	assert_int_equal(s.pending, 0);
	assert_int_equal(s.lag, 0);
	assert_int_equal(fx.port.ops->claim_idle(fx.port.self, topic, "ledger", "m1", 0, 10, &b),
	                 HEX_OK);
	assert_int_equal(b.n, 0);

	/* The relay publishes before any consumer joined again: nothing is lost. */
	publish_text(topic, "", "evt_after");
	publish_text(topic, "ledger", "evt_after_retry");
	assert_int_equal(read_ok(topic, "ledger", "m1", 10, 0, &b), 2);
	assert_string_equal(b.items[0].event_id, "evt_after_retry");
	assert_string_equal(b.items[1].event_id, "evt_after");
	event_batch_clear(&b);

	/* Also when the read waits. */
	freeReplyObject(raw("FLUSHALL"));
	assert_int_equal(read_ok(topic, "ledger", "m1", 10, 100, &b), 0);
	publish_text(topic, "", "evt_later");
	assert_int_equal(read_ok(topic, "ledger", "m1", 10, 100, &b), 1);
	assert_string_equal(b.items[0].event_id, "evt_later");
	event_batch_clear(&b);
}

struct malformed_case {
	const char *why;      /* a part of the reason the dump must give */
	const char *shows;    /* a part of the field dump it must show */
	const char *field[8]; /* name, value pairs, NULL-terminated */
};

static void test_malformed_entries_come_back_with_empty_event_id(void **state)
{
	char topic[TOPIC_LEN], key[128], rkey[128];
	unique_topic(topic);
	main_key(key, sizeof key, topic);
	retry_key(rkey, sizeof rkey, topic, "ledger");
	join_ok(topic, "ledger");
	char long_id[300];
	memset(long_id, 'e', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = '\0';

	/* Each case is the well-formed entry of the last line with one defect. */
	const struct malformed_case cases[] = {
	    {"field is missing", "topic=", {"topic", topic, "consumer", "", "attempt", "1", NULL}},
	    {"attempt is not", "attempt=\"x1\"", {"event_id", "e1", "attempt", "x1", NULL}},
	    {"attempt is not", "attempt=\"0\"", {"event_id", "e1", "attempt", "0", NULL}},
	    {"attempt is not", "attempt=\" 1\"", {"event_id", "e1", "attempt", " 1", NULL}},
	    {"attempt is not", "", {"event_id", "e1", "attempt", "2147483648", NULL}},
	    {"outbox_id is not", "outbox_id=\"-1\"", {"event_id", "e1", "outbox_id", "-1", NULL}},
	    {"outbox_id is not", "", {"event_id", "e1", "outbox_id", "9223372036854775808", NULL}},
	    {"topic is not", "topic=\"other\"", {"event_id", "e1", "topic", "other", NULL}},
	    {"consumer is not",
	     "consumer=\"ledger\"",
	     {"event_id", "e1", "consumer", "ledger", NULL}},
	    {"event_id is empty", "event_id=\"\"", {"event_id", "", NULL}},
	    {"event_id is empty", "eeeeeeeeee", {"event_id", long_id, NULL}},
	    {"repeated", "event_id=\"e2\"", {"event_id", "e1", "event_id", "e2", NULL}},
	};
	const size_t n = sizeof cases / sizeof cases[0];
	for (size_t i = 0; i < n; i++) {
		/* The case's fields first, then the defaults for those it does not give. */
		const char *argv[40] = {"XADD", key, "*"};
		int argc = 3;
		static const char *const defaults[] = {"event_id", "topic",     "consumer",
		                                       "attempt",  "outbox_id", "payload"};
		const char *default_values[] = {"e1", topic, "", "1", "5", "body"};
		for (int j = 0; cases[i].field[j] != NULL; j += 2) {
			argv[argc++] = cases[i].field[j];
			argv[argc++] = cases[i].field[j + 1];
		}
		for (int d = 0; d < 6; d++) {
			bool given = false;
			for (int j = 0; cases[i].field[j] != NULL; j += 2)
				given |= strcmp(cases[i].field[j], defaults[d]) == 0;
			if (given || (i == 0 && d == 0)) /* case 0 has no event_id */
				continue;
			argv[argc++] = defaults[d];
			argv[argc++] = default_values[d];
		}
		char id[EVENT_STREAM_ID_MAX + 1];
		raw_xadd(id, argc, argv, NULL);

		struct event_batch b = {0};
		assert_int_equal(read_ok(topic, "ledger", "m1", 10, 0, &b), 1);
		struct event_msg *m = &b.items[0];
		print_message("case %zu: %s\n", i, m->payload);
		assert_string_equal(m->event_id, "");
		assert_string_equal(m->stream_id, id);
		assert_string_equal(m->topic, topic);
		assert_string_equal(m->consumer, "");
		assert_int_equal(m->payload_len, strlen(m->payload));
		assert_non_null(strstr(m->payload, "malformed stream entry"));
		assert_non_null(strstr(m->payload, id));
		assert_non_null(strstr(m->payload, cases[i].why));
		assert_non_null(strstr(m->payload, cases[i].shows));
		/* It can be acknowledged once it is dead-lettered. */
		assert_int_equal(fx.port.ops->ack(fx.port.self, topic, "ledger", m), HEX_OK);
		assert_int_equal(stats_ok(topic, "ledger").pending, 0);
		event_batch_clear(&b);
	}

	/* Binary values are shown escaped; fields that are not pairs are malformed too. */
	const char *bin[] = {"XADD", key, "*", "event_id", "e1", "payload", "a\0\"b\\\n"};
	size_t bin_lens[] = {4, strlen(key), 1, 8, 2, 7, 6};
	char id[EVENT_STREAM_ID_MAX + 1];
	raw_xadd(id, 7, bin, bin_lens);
	struct event_batch b = {0};
	assert_int_equal(read_ok(topic, "ledger", "m1", 10, 0, &b), 1);
	assert_string_equal(b.items[0].event_id, "");
	assert_non_null(strstr(b.items[0].payload, "payload=\"a\\x00\\\"b\\\\\\x0a\""));
	assert_int_equal(fx.port.ops->ack(fx.port.self, topic, "ledger", &b.items[0]), HEX_OK);
	event_batch_clear(&b);

	/* A very long value is cut in the dump. */
	char *big = malloc(BIG_PAYLOAD);
	memset(big, 'z', BIG_PAYLOAD);
	const char *cut[] = {"XADD", key, "*", "event_id", "", "payload", big};
	size_t cut_lens[] = {4, strlen(key), 1, 8, 0, 7, BIG_PAYLOAD};
	raw_xadd(id, 7, cut, cut_lens);
	assert_int_equal(read_ok(topic, "ledger", "m1", 10, 0, &b), 1);
	assert_string_equal(b.items[0].event_id, "");
	assert_true(b.items[0].payload_len < REDIS_EVENT_STREAM_DUMP_VALUE_MAX + 1000);
	assert_non_null(strstr(b.items[0].payload, "(102400 bytes in all)"));
	assert_int_equal(fx.port.ops->ack(fx.port.self, topic, "ledger", &b.items[0]), HEX_OK);
	event_batch_clear(&b);
	free(big);

	/* On a retry stream the consumer must be its own; the entry keeps that consumer so
	 * that its ack goes to the retry stream. */
	const char *wrong[] = {"XADD",  rkey,        "*",        "event_id", "e1",
	                       "topic", topic,       "consumer", "",         "attempt",
	                       "2",     "outbox_id", "5",        "payload",  "body"};
	raw_xadd(id, 15, wrong, NULL);
	assert_int_equal(read_ok(topic, "ledger", "m1", 10, 0, &b), 1);
	assert_string_equal(b.items[0].event_id, "");
	assert_string_equal(b.items[0].consumer, "ledger");
	assert_non_null(strstr(b.items[0].payload, "consumer is not"));
	assert_int_equal(fx.port.ops->ack(fx.port.self, topic, "ledger", &b.items[0]), HEX_OK);
	assert_int_equal(stats_ok(topic, "ledger").pending, 0);
	event_batch_clear(&b);

	/* The well-formed twin, plus a field of a later version, reads as an event: the
	 * cases above failed for their defect. */
	const char *good[] = {"XADD", key,        "*",    "event_id", "e1", "topic",
	                      topic,  "consumer", "",     "attempt",  "1",  "outbox_id",
	                      "5",    "payload",  "body", "trace",    "abc"};
	raw_xadd(id, 17, good, NULL);
	assert_int_equal(read_ok(topic, "ledger", "m1", 10, 0, &b), 1);
	assert_string_equal(b.items[0].event_id, "e1");
	assert_int_equal(b.items[0].attempt, 1);
	assert_int_equal(b.items[0].outbox_id, 5);
	assert_string_equal(b.items[0].payload, "body");
	event_batch_clear(&b);
}

static void test_bad_arguments_are_invalid_and_change_nothing(void **state)
{
	char topic[TOPIC_LEN], key[128];
	unique_topic(topic);
	main_key(key, sizeof key, topic);
	char long_topic[EVENT_TOPIC_MAX + 2];
	memset(long_topic, 't', sizeof long_topic - 1);
	long_topic[sizeof long_topic - 1] = '\0';
	char long_member[REDIS_EVENT_STREAM_MEMBER_MAX + 2];
	memset(long_member, 'm', sizeof long_member - 1);
	long_member[sizeof long_member - 1] = '\0';
	const struct event_stream_ops *ops = fx.port.ops;
	void *self = fx.port.self;

	static const char *const bad_topics[] = {"", "a:b", "A", "a b"};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(ops->join(self, bad_topics[i], "ledger"), HEX_INVALID);
	assert_int_equal(ops->join(self, long_topic, "ledger"), HEX_INVALID);
	assert_int_equal(ops->join(self, topic, "Ledger"), HEX_INVALID);
	assert_int_equal(ops->join(self, topic, ""), HEX_INVALID);
	assert_int_equal(raw_int("EXISTS %s", key), 0);

	join_ok(topic, "ledger");
	struct event_msg bad[] = {
	    msg(topic, "", "", 1, 1, "p", 1),        msg(topic, "", "e", 0, 1, "p", 1),
	    msg(topic, "", "e", 1, -1, "p", 1),      msg(topic, "", "e", 1, 1, NULL, 3),
	    msg(topic, "Ledger", "e", 1, 1, "p", 1), msg("a:b", "", "e", 1, 1, "p", 1),
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(ops->publish(self, &bad[i]), HEX_INVALID);
	assert_int_equal(raw_int("XLEN %s", key), 0);

	publish_text(topic, "", "evt_1");
	struct event_batch b = {0};
	assert_int_equal(ops->read(self, topic, "ledger", "", 1, 0, &b), HEX_INVALID);
	assert_int_equal(ops->read(self, topic, "ledger", "a b", 1, 0, &b), HEX_INVALID);
	assert_int_equal(ops->read(self, topic, "ledger", long_member, 1, 0, &b), HEX_INVALID);
	assert_int_equal(ops->read(self, topic, "ledger", "m1", 0, 0, &b), HEX_INVALID);
	assert_int_equal(ops->read(self, topic, "ledger", "m1", EVENT_BATCH_MAX + 1, 0, &b),
	                 HEX_INVALID);
	assert_int_equal(ops->read(self, topic, "ledger", "m1", 1, -1, &b), HEX_INVALID);
	assert_int_equal(ops->claim_idle(self, topic, "ledger", "m1", -1, 1, &b), HEX_INVALID);
	assert_int_equal(ops->claim_idle(self, topic, "ledger", "m1", 0, 0, &b), HEX_INVALID);
	assert_int_equal(ops->claim_idle(self, topic, "ledger", "", 0, 1, &b), HEX_INVALID);
	assert_int_equal(b.n, 0);
	struct event_group_stats s;
	assert_int_equal(ops->stats(self, "a:b", "ledger", &s), HEX_INVALID);
	/* Nothing was delivered by the refused calls. */
	s = stats_ok(topic, "ledger");
	assert_int_equal(s.pending, 0);
	assert_int_equal(s.lag, 1);
	assert_int_equal(read_ok(topic, "ledger", "m1", 1, 0, &b), 1);
	event_batch_clear(&b);
}

/* A key of the wrong type answers errors on a live link: not "unavailable". */
static void test_error_replies_are_internal(void **state)
{
	char topic[TOPIC_LEN], key[128];
	unique_topic(topic);
	main_key(key, sizeof key, topic);
	freeReplyObject(raw("SET %s not-a-stream", key));
	publish_text(topic, "ledger", "evt_retry"); /* the retry stream is fine */
	struct event_msg m = msg(topic, "", "evt_1", 1, 1, "p", 1);
	assert_int_equal(fx.port.ops->publish(fx.port.self, &m), HEX_INTERNAL);
	assert_int_equal(fx.port.ops->join(fx.port.self, topic, "ledger"), HEX_INTERNAL);
	struct event_batch b = {0};
	/* The retry stream's entry is still handed out: it is pending now. */
	assert_int_equal(fx.port.ops->read(fx.port.self, topic, "ledger", "m1", 10, 0, &b), HEX_OK);
	assert_int_equal(b.n, 1);
	assert_string_equal(b.items[0].event_id, "evt_retry");
	event_batch_clear(&b);
	assert_int_equal(fx.port.ops->read(fx.port.self, topic, "ledger", "m1", 10, 0, &b),
	                 HEX_INTERNAL);
	assert_int_equal(b.n, 0);
}

static void assert_all_unavailable(const char *topic, const struct event_msg *pending)
{
	const struct event_stream_ops *ops = fx.port.ops;
	void *self = fx.port.self;
	struct event_batch b = {0};
	struct event_group_stats s;
	struct event_msg m = msg(topic, "", "evt_down", 1, 1, "p", 1);
	int64_t t0 = now_ms();
	assert_int_equal(ops->publish(self, &m), HEX_UNAVAILABLE);
	assert_int_equal(ops->join(self, topic, "ledger"), HEX_UNAVAILABLE);
	assert_int_equal(ops->read(self, topic, "ledger", "m1", 10, 0, &b), HEX_UNAVAILABLE);
	assert_int_equal(b.n, 0);
	assert_int_equal(ops->read(self, topic, "ledger", "m1", 10, 500, &b), HEX_UNAVAILABLE);
	assert_int_equal(b.n, 0);
	assert_int_equal(ops->claim_idle(self, topic, "ledger", "m1", 0, 10, &b), HEX_UNAVAILABLE);
	assert_int_equal(b.n, 0);
	assert_int_equal(ops->ack(self, topic, "ledger", pending), HEX_UNAVAILABLE);
	assert_int_equal(ops->stats(self, topic, "ledger", &s), HEX_UNAVAILABLE);
	int64_t took = now_ms() - t0;
	print_message("seven calls against a dead redis took %lld ms\n", (long long)took);
	assert_true(took < 500);
}

static void test_dead_redis_is_unavailable_then_works_again(void **state)
{
	char topic[TOPIC_LEN];
	unique_topic(topic);
	join_ok(topic, "ledger");
	publish_text(topic, "", "evt_1");
	struct event_batch b = {0};
	assert_int_equal(read_ok(topic, "ledger", "m1", 10, 0, &b), 1);

	redis_server_kill(&fx.srv);
	assert_all_unavailable(topic, &b.items[0]);
	/* Still so once the backoff has passed and each call really tries. */
	sleep_ms(REDIS_CONN_BACKOFF_MAX_MS + 100);
	assert_all_unavailable(topic, &b.items[0]);
	event_batch_clear(&b);

	/* Back (empty, as after a crash without persistence): joins again by itself. */
	assert_true(redis_server_restart(&fx.srv));
	redisFree(fx.raw);
	fx.raw = redis_server_connect(fx.srv.url);
	assert_non_null(fx.raw);
	sleep_ms(REDIS_CONN_BACKOFF_MAX_MS + 100);
	publish_text(topic, "", "evt_2");
	assert_int_equal(read_ok(topic, "ledger", "m1", 10, 0, &b), 1);
	assert_string_equal(b.items[0].event_id, "evt_2");
	assert_int_equal(stats_ok(topic, "ledger").pending, 1);
	assert_int_equal(fx.port.ops->ack(fx.port.self, topic, "ledger", &b.items[0]), HEX_OK);
	assert_int_equal(stats_ok(topic, "ledger").pending, 0);
	event_batch_clear(&b);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_every_field),
	    cmocka_unit_test(test_two_groups_each_get_every_entry),
	    cmocka_unit_test(test_members_of_a_group_never_share_an_entry),
	    cmocka_unit_test(test_read_never_returns_more_than_max),
	    cmocka_unit_test(test_retry_entries_go_only_to_their_consumer),
	    cmocka_unit_test(test_ack_removes_from_pending),
	    cmocka_unit_test(test_claim_idle_takes_idle_entries_not_fresh_ones),
	    cmocka_unit_test(test_read_waits_up_to_block_ms),
	    cmocka_unit_test(test_groups_come_back_after_flushall),
	    cmocka_unit_test(test_malformed_entries_come_back_with_empty_event_id),
	    cmocka_unit_test(test_bad_arguments_are_invalid_and_change_nothing),
	    cmocka_unit_test(test_error_replies_are_internal),
	    cmocka_unit_test(test_dead_redis_is_unavailable_then_works_again),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
