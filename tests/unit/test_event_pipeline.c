/*
 * test_event_pipeline: the payment-event pipeline's core (retry policy, outbox relay,
 * consumer, dead-letter service) against the in-memory fakes of support/fake_events.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dead_letter_service.h"
#include "core/event_consumer.h"
#include "core/event_relay.h"
#include "core/xmalloc.h"
#include "support/fake_events.h"

#define T0_US     (FAKE_T0_S * 1000000LL)
#define MS        1000LL /* microseconds in a millisecond */
#define PAYLOAD_A "{\"id\":\"evt_a\",\"type\":\"payment_intent.succeeded\"}"
#define PAYLOAD_B "{\"id\":\"evt_b\",\"type\":\"charge.refunded\"}"
#define PAYLOAD_C "{\"id\":\"evt_c\",\"type\":\"checkout.session.completed\"}"

static long stat_of(const atomic_long *v)
{
	return atomic_load(v);
}

/* ---- the retry policy ---- */

static const struct event_retry_policy policy = {
    .max_attempts = 10, .base_ms = 1000, .max_ms = 30000};

static void retry_delay_doubles_until_the_cap(void **state)
{
	/* UINT32_MAX: the whole delay, no jitter taken off. */
	const int64_t want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000};
	for (int attempt = 1; attempt <= 9; attempt++)
		assert_int_equal(event_retry_delay_ms(&policy, attempt, UINT32_MAX),
		                 want[attempt - 1]);
	/* A cap that is a power of two away from the base is reached exactly, not passed. */
	struct event_retry_policy exact = {.max_attempts = 50, .base_ms = 500, .max_ms = 4000};
	assert_int_equal(event_retry_delay_ms(&exact, 4, UINT32_MAX), 4000);
	assert_int_equal(event_retry_delay_ms(&exact, 49, UINT32_MAX), 4000);
}

static void retry_jitter_keeps_half_of_the_delay(void **state)
{
	for (int attempt = 1; attempt <= 9; attempt++) {
		int64_t full = event_retry_delay_ms(&policy, attempt, UINT32_MAX);
		assert_int_equal(event_retry_delay_ms(&policy, attempt, 0), full / 2);
		int64_t mid = event_retry_delay_ms(&policy, attempt, UINT32_MAX / 2);
		assert_true(mid > full / 2 && mid < full);
	}
	/* Odd delays: the fixed half rounds down, the top is still the whole delay. */
	struct event_retry_policy odd = {.max_attempts = 3, .base_ms = 1001, .max_ms = 5000};
	assert_int_equal(event_retry_delay_ms(&odd, 1, 0), 500);
	assert_int_equal(event_retry_delay_ms(&odd, 1, UINT32_MAX), 1001);
	/* Every random value lands inside [delay/2, delay], and the spread is used. */
	int64_t lo = INT64_MAX, hi = 0;
	for (uint64_t r = 0; r <= UINT32_MAX; r += 65537) {
		int64_t d = event_retry_delay_ms(&policy, 3, (uint32_t)r);
		assert_in_range(d, 2000, 4000);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	assert_true(lo < 2100 && hi > 3900);
}

static void retry_gives_up_at_the_last_attempt(void **state)
{
	assert_true(event_retry_delay_ms(&policy, 9, UINT32_MAX) > 0);
	assert_int_equal(event_retry_delay_ms(&policy, 10, UINT32_MAX), -1);
	assert_int_equal(event_retry_delay_ms(&policy, 11, 0), -1);
	assert_int_equal(event_retry_delay_ms(&policy, 1000, 0), -1);
	assert_int_equal(event_retry_delay_ms(&policy, 0, UINT32_MAX), -1);
	assert_int_equal(event_retry_delay_ms(&policy, -3, UINT32_MAX), -1);
	struct event_retry_policy once = {.max_attempts = 1, .base_ms = 1000, .max_ms = 1000};
	assert_int_equal(event_retry_delay_ms(&once, 1, UINT32_MAX), -1);
}

static void consumer_names_are_short_lower_snake_case(void **state)
{
	const char *good[] = {"ledger",
	                      "membership",
	                      "notify",
	                      "a",
	                      "notify_2",
	                      "_x",
	                      "abcdefghijklmnopqrstuvwxyz01234"}; /* 31 */
	const char *bad[] = {
	    "",         "Ledger",      "led-ger",  "led ger",
	    "ledger\n", "l\u00e9dger", "ledger.x", "abcdefghijklmnopqrstuvwxyz012345"}; /* 32 */
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_true(event_consumer_name_valid(good[i]));
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_false(event_consumer_name_valid(bad[i]));
}

/* ---- the outbox relay ---- */

struct relay_fx {
	struct fake_log log;
	struct fake_clock clock;
	struct fake_outbox outbox;
	struct fake_stream stream;
	struct event_relay relay;
	struct hex_err err;
};

static int relay_setup(void **state)
{
	struct relay_fx *fx = xcalloc(1, sizeof *fx);
	fx->clock.now_us = T0_US;
	fx->relay = (struct event_relay){
	    .outbox = fake_outbox_port(&fx->outbox, &fx->log),
	    .stream = fake_stream_port(&fx->stream, &fx->log),
	    .clock = fake_clock_port(&fx->clock),
	    .batch = 16,
	};
	*state = fx;
	return 0;
}

static int relay_teardown(void **state)
{
	struct relay_fx *fx = *state;
	/* Every claim the relay made was ended, whatever happened. */
	assert_false(fx->outbox.claim_open);
	free(fx);
	return 0;
}

static enum hex_status relay_run(struct relay_fx *fx, int *published)
{
	memset(&fx->err, 0, sizeof fx->err);
	*published = -1;
	return event_relay_run_once(&fx->relay, published, &fx->err);
}

static void relay_publishes_due_rows_in_order_and_marks_them(void **state)
{
	struct relay_fx *fx = *state;
	int64_t a = fake_outbox_add(&fx->outbox, "evt_a", "", 1, PAYLOAD_A, T0_US - 5000);
	int64_t later = fake_outbox_add(&fx->outbox, "evt_z", "", 1, PAYLOAD_C, T0_US + 60000000);
	int64_t b = fake_outbox_add(&fx->outbox, "evt_b", "ledger", 3, PAYLOAD_B, T0_US - 10);
	int64_t c = fake_outbox_add(&fx->outbox, "evt_c", "", 1, PAYLOAD_C, T0_US);

	int n;
	assert_int_equal(relay_run(fx, &n), HEX_OK);
	assert_int_equal(n, 3);
	assert_true(fake_log_has(&fx->log, "outbox.claim stream.publish stream.publish "
	                                   "stream.publish outbox.published"));
	assert_int_equal(fx->outbox.last_limit, 16);
	assert_int_equal(fx->outbox.last_claim_now_us, T0_US);

	/* In outbox order, every field carried: a retry keeps its consumer and attempt. */
	assert_int_equal(fx->stream.npublished, 3);
	const struct event_msg *m = &fx->stream.published[0].msg;
	assert_string_equal(m->event_id, "evt_a");
	assert_int_equal(m->outbox_id, a);
	assert_string_equal(m->topic, EVENT_TOPIC_PAYMENTS);
	assert_string_equal(m->consumer, "");
	assert_int_equal(m->attempt, 1);
	assert_string_equal(fx->stream.published[0].payload, PAYLOAD_A);
	m = &fx->stream.published[1].msg;
	assert_string_equal(m->event_id, "evt_b");
	assert_int_equal(m->outbox_id, b);
	assert_string_equal(m->consumer, "ledger");
	assert_int_equal(m->attempt, 3);
	assert_string_equal(fx->stream.published[1].payload, PAYLOAD_B);
	assert_int_equal(fx->stream.published[2].msg.outbox_id, c);

	assert_true(fx->outbox.rows[a - 1].published);
	assert_int_equal(fx->outbox.rows[a - 1].published_at_us, T0_US);
	assert_true(fx->outbox.rows[b - 1].published);
	assert_true(fx->outbox.rows[c - 1].published);
	assert_false(fx->outbox.rows[later - 1].published); /* not due yet */
	assert_int_equal(fake_calls(&fx->outbox.base, "release"), 0);

	/* A minute later the delayed row is due, and goes alone. */
	fake_clock_advance_s(&fx->clock, 60);
	assert_int_equal(relay_run(fx, &n), HEX_OK);
	assert_int_equal(n, 1);
	assert_int_equal(fx->stream.npublished, 4);
	assert_string_equal(fx->stream.published[3].msg.event_id, "evt_z");
	assert_int_equal(fake_outbox_unpublished(&fx->outbox), 0);
}

static void relay_claims_at_most_one_batch(void **state)
{
	struct relay_fx *fx = *state;
	fx->relay.batch = 2;
	for (int i = 0; i < 5; i++) {
		char id[16];
		snprintf(id, sizeof id, "evt_%d", i);
		fake_outbox_add(&fx->outbox, id, "", 1, PAYLOAD_A, T0_US);
	}
	const int want[] = {2, 2, 1, 0};
	for (int round = 0; round < 4; round++) {
		int n;
		assert_int_equal(relay_run(fx, &n), HEX_OK);
		assert_int_equal(n, want[round]);
		assert_int_equal(fx->outbox.last_limit, 2);
	}
	assert_int_equal(fx->stream.npublished, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(fx->stream.published[i].msg.outbox_id, i + 1);
}

static void relay_with_nothing_due_publishes_nothing(void **state)
{
	struct relay_fx *fx = *state;
	fake_outbox_add(&fx->outbox, "evt_later", "", 1, PAYLOAD_A, T0_US + 1);
	int n;
	assert_int_equal(relay_run(fx, &n), HEX_OK);
	assert_int_equal(n, 0);
	assert_int_equal(fake_calls(&fx->outbox.base, "claim"), 1);
	/* The empty claim is over already: neither published() nor release() follows. */
	assert_int_equal(fake_calls(&fx->outbox.base, "published"), 0);
	assert_int_equal(fake_calls(&fx->outbox.base, "release"), 0);
	assert_int_equal(fake_calls(&fx->stream.base, "publish"), 0);
	assert_int_equal(fake_outbox_unpublished(&fx->outbox), 1);
}

static void relay_releases_the_claim_when_the_stream_fails_midway(void **state)
{
	struct relay_fx *fx = *state;
	fake_outbox_add(&fx->outbox, "evt_a", "", 1, PAYLOAD_A, T0_US);
	fake_outbox_add(&fx->outbox, "evt_b", "", 1, PAYLOAD_B, T0_US);
	fake_outbox_add(&fx->outbox, "evt_c", "", 1, PAYLOAD_C, T0_US);
	fx->stream.publish_fail_on = 2;
	fx->stream.publish_fail_st = HEX_UNAVAILABLE;

	int n;
	assert_int_equal(relay_run(fx, &n), HEX_UNAVAILABLE);
	assert_int_equal(n, 0);
	assert_non_null(strstr(fx->err.message, "evt_b"));
	/* Released, not marked: the third row never reached the stream either. */
	assert_true(fake_log_has(&fx->log, "outbox.claim stream.publish stream.publish "
	                                   "outbox.release"));
	assert_int_equal(fake_calls(&fx->outbox.base, "release"), 1);
	assert_int_equal(fake_calls(&fx->outbox.base, "published"), 0);
	assert_int_equal(fake_calls(&fx->stream.base, "publish"), 2);
	assert_int_equal(fake_outbox_unpublished(&fx->outbox), 3);
	/* (The sanitizer build checks the claimed payloads were freed on this path.) */

	/* The stream is back: everything goes out, the first row a second time (at least
	 * once; the consumers skip the repeat). */
	assert_int_equal(relay_run(fx, &n), HEX_OK);
	assert_int_equal(n, 3);
	assert_int_equal(fx->stream.npublished, 4);
	assert_string_equal(fx->stream.published[0].msg.event_id, "evt_a");
	assert_string_equal(fx->stream.published[1].msg.event_id, "evt_a");
	assert_string_equal(fx->stream.published[3].msg.event_id, "evt_c");
	assert_int_equal(fake_outbox_unpublished(&fx->outbox), 0);
}

static void relay_reports_an_outbox_it_cannot_read(void **state)
{
	struct relay_fx *fx = *state;
	fake_outbox_add(&fx->outbox, "evt_a", "", 1, PAYLOAD_A, T0_US);
	fake_fail_next(&fx->outbox.base, "claim", HEX_UNAVAILABLE);
	int n;
	assert_int_equal(relay_run(fx, &n), HEX_UNAVAILABLE);
	assert_int_equal(n, 0);
	assert_string_equal(fx->err.message, "the outbox cannot be read");
	assert_int_equal(fake_calls(&fx->stream.base, "publish"), 0);
	assert_int_equal(fake_calls(&fx->outbox.base, "release"), 0);
	assert_int_equal(fake_calls(&fx->outbox.base, "published"), 0);
	assert_int_equal(fake_outbox_unpublished(&fx->outbox), 1);
}

static void relay_reports_rows_it_could_not_mark(void **state)
{
	struct relay_fx *fx = *state;
	fake_outbox_add(&fx->outbox, "evt_a", "", 1, PAYLOAD_A, T0_US);
	fake_outbox_add(&fx->outbox, "evt_b", "", 1, PAYLOAD_B, T0_US);
	fake_fail_next(&fx->outbox.base, "published", HEX_UNAVAILABLE);
	int n;
	assert_int_equal(relay_run(fx, &n), HEX_UNAVAILABLE);
	assert_int_equal(n, 0);
	assert_string_equal(fx->err.message, "published events could not be marked");
	assert_int_equal(fx->stream.npublished, 2);
	assert_int_equal(fake_outbox_unpublished(&fx->outbox), 2);
	/* They go out again on the next run. */
	assert_int_equal(relay_run(fx, &n), HEX_OK);
	assert_int_equal(n, 2);
	assert_int_equal(fx->stream.npublished, 4);
	assert_int_equal(fake_outbox_unpublished(&fx->outbox), 0);
}

static void relay_works_without_error_detail(void **state)
{
	struct relay_fx *fx = *state;
	fake_outbox_add(&fx->outbox, "evt_a", "", 1, PAYLOAD_A, T0_US);
	fx->stream.publish_fail_on = 1;
	fx->stream.publish_fail_st = HEX_UNAVAILABLE;
	int n = -1;
	assert_int_equal(event_relay_run_once(&fx->relay, &n, NULL), HEX_UNAVAILABLE);
	assert_int_equal(n, 0);
	assert_int_equal(event_relay_run_once(&fx->relay, &n, NULL), HEX_OK);
	assert_int_equal(n, 1);
}

/* ---- the consumer ---- */

/* A handler that answers a script of statuses, one per call (then HEX_OK). */
struct script {
	enum hex_status answers[8];
	int nanswers;
	const char *message; /* set in err on failure; NULL leaves err empty */
	int calls;
	char seen[16][EVENT_ID_MAX + 1];
	char payload_seen[FAKE_EVENT_PAYLOAD_MAX];
	struct fake_log *log;
};

static enum hex_status script_handle(void *ctx, const struct event_msg *m, struct hex_err *err)
{
	struct script *s = ctx;
	fake_log_note(s->log, "handler", "run");
	if (s->calls < 16)
		hex_strlcpy(s->seen[s->calls], m->event_id, sizeof s->seen[0]);
	hex_strlcpy(s->payload_seen, m->payload, sizeof s->payload_seen);
	enum hex_status st = s->calls < s->nanswers ? s->answers[s->calls] : HEX_OK;
	s->calls++;
	if (st != HEX_OK && s->message != NULL)
		hex_fail(err, st, NULL, "%s", s->message);
	return st;
}

struct consumer_fx {
	struct fake_log log;
	struct fake_clock clock;
	struct fake_inbox inbox;
	struct fake_stream stream;
	struct script script;
	struct event_consumer_stats stats;
	struct event_consumer c;
};

static int consumer_setup(void **state)
{
	struct consumer_fx *fx = xcalloc(1, sizeof *fx);
	fx->clock.now_us = T0_US;
	fx->script.log = &fx->log;
	fx->c = (struct event_consumer){
	    .name = "ledger",
	    .topic = EVENT_TOPIC_PAYMENTS,
	    .member = "host-1:42",
	    .inbox = fake_inbox_port(&fx->inbox, &fx->log),
	    .stream = fake_stream_port(&fx->stream, &fx->log),
	    .clock = fake_clock_port(&fx->clock),
	    .retry = {.max_attempts = 5, .base_ms = 1000, .max_ms = 60000},
	    .claim_idle_ms = 30000,
	    .batch = 8,
	    .block_ms = 2000,
	    .handle = script_handle,
	    .handler_ctx = &fx->script,
	    .seed = 12345,
	    .stats = &fx->stats,
	};
	*state = fx;
	return 0;
}

static int consumer_teardown(void **state)
{
	struct consumer_fx *fx = *state;
	assert_false(fx->inbox.in_txn); /* every attempt's transaction was ended */
	free(fx);
	return 0;
}

static void script_answers(struct script *s, enum hex_status st, const char *message)
{
	s->answers[s->nanswers++] = st;
	s->message = message;
}

/* Hands one message to event_consumer_handle with its own malloc'd payload, as read does. */
static enum hex_status handle(struct consumer_fx *fx, const char *stream_id, const char *event_id,
                              int attempt, const char *payload)
{
	struct event_msg m = {.attempt = attempt};
	hex_strlcpy(m.stream_id, stream_id, sizeof m.stream_id);
	hex_strlcpy(m.event_id, event_id, sizeof m.event_id);
	hex_strlcpy(m.topic, EVENT_TOPIC_PAYMENTS, sizeof m.topic);
	m.payload = xstrdup(payload);
	m.payload_len = strlen(payload);
	enum hex_status st = event_consumer_handle(&fx->c, &m);
	free(m.payload);
	return st;
}

static void assert_stats(const struct consumer_fx *fx, long applied, long duplicates, long retried,
                         long dead, long stalled)
{
	assert_int_equal(stat_of(&fx->stats.applied), applied);
	assert_int_equal(stat_of(&fx->stats.duplicates), duplicates);
	assert_int_equal(stat_of(&fx->stats.retried), retried);
	assert_int_equal(stat_of(&fx->stats.dead), dead);
	assert_int_equal(stat_of(&fx->stats.stalled), stalled);
}

static void consumer_applies_a_first_delivery_then_acks(void **state)
{
	struct consumer_fx *fx = *state;
	assert_int_equal(handle(fx, "1-0", "evt_a", 1, PAYLOAD_A), HEX_OK);
	assert_int_equal(fx->script.calls, 1);
	assert_string_equal(fx->script.seen[0], "evt_a");
	assert_string_equal(fx->script.payload_seen, PAYLOAD_A);
	/* Acknowledged only after the commit that recorded the event. */
	assert_true(fake_log_has(&fx->log, "inbox.begin handler.run inbox.commit stream.ack"));
	assert_true(fake_inbox_applied(&fx->inbox, "ledger", "evt_a"));
	assert_true(fake_stream_acked(&fx->stream, "1-0"));
	assert_string_equal(fx->stream.last_ack_topic, EVENT_TOPIC_PAYMENTS);
	assert_string_equal(fx->stream.last_ack_consumer, "ledger");
	assert_int_equal(fake_calls(&fx->inbox.base, "fail"), 0);
	assert_stats(fx, 1, 0, 0, 0, 0);
}

static void consumer_acks_a_duplicate_without_running_it(void **state)
{
	struct consumer_fx *fx = *state;
	fake_inbox_mark_applied(&fx->inbox, "ledger", "evt_a");
	/* Applied by another consumer only: that does not count for this one. */
	fake_inbox_mark_applied(&fx->inbox, "notify", "evt_b");

	assert_int_equal(handle(fx, "1-0", "evt_a", 1, PAYLOAD_A), HEX_OK);
	assert_int_equal(fx->script.calls, 0);
	assert_int_equal(fake_calls(&fx->inbox.base, "commit"), 0);
	assert_int_equal(fake_calls(&fx->inbox.base, "rollback"), 0);
	assert_true(fake_stream_acked(&fx->stream, "1-0"));
	assert_stats(fx, 0, 1, 0, 0, 0);

	assert_int_equal(handle(fx, "2-0", "evt_b", 1, PAYLOAD_B), HEX_OK);
	assert_int_equal(fx->script.calls, 1);
	assert_stats(fx, 1, 1, 0, 0, 0);
}

static void consumer_dead_letters_what_can_never_succeed(void **state)
{
	struct consumer_fx *fx = *state;
	script_answers(&fx->script, HEX_INVALID, "payment 42 does not exist");
	assert_int_equal(handle(fx, "1-0", "evt_a", 1, PAYLOAD_A), HEX_OK);

	assert_true(fake_log_has(&fx->log, "inbox.begin handler.run inbox.rollback inbox.fail "
	                                   "stream.ack"));
	assert_int_equal(fake_calls(&fx->inbox.base, "commit"), 0);
	assert_false(fake_inbox_applied(&fx->inbox, "ledger", "evt_a"));
	const struct fake_inbox_failure *f = fake_inbox_last_failure(&fx->inbox);
	assert_non_null(f);
	assert_string_equal(f->consumer, "ledger");
	assert_string_equal(f->event_id, "evt_a");
	assert_int_equal(f->attempt, 1);
	assert_string_equal(f->error, "payment 42 does not exist");
	assert_int_equal(f->now_us, T0_US);
	assert_int_equal(f->retry_at_us, 0); /* no retry, although attempts were left */
	assert_true(fake_stream_acked(&fx->stream, "1-0"));
	assert_stats(fx, 0, 0, 0, 1, 0);
}

static void consumer_schedules_a_retry_within_the_policy(void **state)
{
	struct consumer_fx *fx = *state;
	script_answers(&fx->script, HEX_CONFLICT, "insufficient funds in the wallet");
	assert_int_equal(handle(fx, "1-0", "evt_a", 1, PAYLOAD_A), HEX_OK);

	const struct fake_inbox_failure *f = fake_inbox_last_failure(&fx->inbox);
	assert_non_null(f);
	assert_int_equal(f->attempt, 1);
	assert_string_equal(f->error, "insufficient funds in the wallet");
	/* After attempt 1: base_ms, half of it fixed. */
	assert_in_range(f->retry_at_us, T0_US + 500 * MS, T0_US + 1000 * MS);
	assert_true(fake_stream_acked(&fx->stream, "1-0"));
	assert_stats(fx, 0, 0, 1, 0, 0);

	/* After attempt 3 of a retry: base * 4, half of it fixed; "now" is the clock's. */
	fake_clock_advance_s(&fx->clock, 7);
	script_answers(&fx->script, HEX_UNAVAILABLE, NULL);
	assert_int_equal(handle(fx, "2-0", "evt_a", 3, PAYLOAD_A), HEX_OK);
	f = fake_inbox_last_failure(&fx->inbox);
	assert_int_equal(f->attempt, 3);
	assert_int_equal(f->now_us, T0_US + 7000 * MS);
	assert_in_range(f->retry_at_us, f->now_us + 2000 * MS, f->now_us + 4000 * MS);
	/* A handler that says nothing still leaves a line in the history. */
	assert_string_equal(f->error, "unavailable");
	assert_stats(fx, 0, 0, 2, 0, 0);
}

static void consumer_jitter_differs_between_retries(void **state)
{
	struct consumer_fx *fx = *state;
	fx->c.retry =
	    (struct event_retry_policy){.max_attempts = 5, .base_ms = 60000, .max_ms = 60000};
	int64_t seen[4];
	for (int i = 0; i < 4; i++) {
		char id[16];
		snprintf(id, sizeof id, "evt_%d", i);
		script_answers(&fx->script, HEX_UNAVAILABLE, "down");
		assert_int_equal(handle(fx, "1-0", id, 1, PAYLOAD_A), HEX_OK);
		seen[i] = fake_inbox_last_failure(&fx->inbox)->retry_at_us;
		assert_in_range(seen[i], T0_US + 30000 * MS, T0_US + 60000 * MS);
	}
	/* Events that failed together do not all come back together. */
	assert_false(seen[0] == seen[1] && seen[1] == seen[2] && seen[2] == seen[3]);
}

static void consumer_dead_letters_after_the_last_attempt(void **state)
{
	struct consumer_fx *fx = *state;
	script_answers(&fx->script, HEX_UNAVAILABLE, "the database is unavailable");
	assert_int_equal(handle(fx, "9-0", "evt_a", 5, PAYLOAD_A), HEX_OK); /* max_attempts */
	const struct fake_inbox_failure *f = fake_inbox_last_failure(&fx->inbox);
	assert_int_equal(f->attempt, 5);
	assert_int_equal(f->retry_at_us, 0);
	assert_true(fake_stream_acked(&fx->stream, "9-0"));
	assert_stats(fx, 0, 0, 0, 1, 0);

	/* A replayed dead letter comes back as attempt max + 1: one more try, then dead. */
	script_answers(&fx->script, HEX_UNAVAILABLE, "still down");
	assert_int_equal(handle(fx, "10-0", "evt_a", 6, PAYLOAD_A), HEX_OK);
	assert_int_equal(fake_inbox_last_failure(&fx->inbox)->retry_at_us, 0);
	assert_stats(fx, 0, 0, 0, 2, 0);
}

static void consumer_treats_a_failed_commit_as_a_failed_attempt(void **state)
{
	struct consumer_fx *fx = *state;
	fake_fail_next(&fx->inbox.base, "commit", HEX_UNAVAILABLE);
	assert_int_equal(handle(fx, "1-0", "evt_a", 2, PAYLOAD_A), HEX_OK);

	assert_true(fake_log_has(&fx->log, "inbox.begin handler.run inbox.commit inbox.rollback "
	                                   "inbox.fail stream.ack"));
	assert_false(fake_inbox_applied(&fx->inbox, "ledger", "evt_a"));
	const struct fake_inbox_failure *f = fake_inbox_last_failure(&fx->inbox);
	assert_non_null(f);
	assert_int_equal(f->attempt, 2);
	assert_string_equal(f->error, "the commit failed");
	assert_in_range(f->retry_at_us, T0_US + 1000 * MS, T0_US + 2000 * MS);
	assert_stats(fx, 0, 0, 1, 0, 0);
}

static void consumer_leaves_pending_what_it_cannot_begin(void **state)
{
	struct consumer_fx *fx = *state;
	fake_fail_next(&fx->inbox.base, "begin", HEX_UNAVAILABLE);
	assert_int_equal(handle(fx, "1-0", "evt_a", 1, PAYLOAD_A), HEX_UNAVAILABLE);
	assert_int_equal(fx->script.calls, 0);
	assert_int_equal(fake_calls(&fx->inbox.base, "fail"), 0);
	assert_int_equal(fake_calls(&fx->stream.base, "ack"), 0);
	assert_stats(fx, 0, 0, 0, 0, 1);

	/* Redelivered once the database is back: applied then. */
	assert_int_equal(handle(fx, "1-0", "evt_a", 1, PAYLOAD_A), HEX_OK);
	assert_true(fake_stream_acked(&fx->stream, "1-0"));
	assert_stats(fx, 1, 0, 0, 0, 1);
}

static void consumer_leaves_pending_a_failure_it_cannot_record(void **state)
{
	struct consumer_fx *fx = *state;
	script_answers(&fx->script, HEX_CONFLICT, "conflict");
	fake_fail_next(&fx->inbox.base, "fail", HEX_UNAVAILABLE);
	assert_int_equal(handle(fx, "1-0", "evt_a", 1, PAYLOAD_A), HEX_UNAVAILABLE);
	assert_int_equal(fake_calls(&fx->inbox.base, "rollback"), 1);
	assert_int_equal(fx->inbox.nfailures, 0);
	assert_int_equal(fake_calls(&fx->stream.base, "ack"), 0);
	assert_stats(fx, 0, 0, 0, 0, 1);

	/* A dead letter that cannot be written is not acknowledged either. */
	script_answers(&fx->script, HEX_INVALID, "never");
	fake_fail_next(&fx->inbox.base, "fail", HEX_UNAVAILABLE);
	assert_int_equal(handle(fx, "2-0", "evt_b", 1, PAYLOAD_B), HEX_UNAVAILABLE);
	assert_int_equal(fake_calls(&fx->stream.base, "ack"), 0);
	assert_stats(fx, 0, 0, 0, 0, 2);
}

static void consumer_survives_a_lost_ack(void **state)
{
	struct consumer_fx *fx = *state;
	fake_fail_next(&fx->stream.base, "ack", HEX_UNAVAILABLE);
	/* Applied and committed: the entry stays pending, is taken over later, found applied
	 * and acknowledged then. Not a failure of the event. */
	assert_int_equal(handle(fx, "1-0", "evt_a", 1, PAYLOAD_A), HEX_OK);
	assert_true(fake_inbox_applied(&fx->inbox, "ledger", "evt_a"));
	assert_false(fake_stream_acked(&fx->stream, "1-0"));
	assert_stats(fx, 1, 0, 0, 0, 0);

	assert_int_equal(handle(fx, "1-0", "evt_a", 1, PAYLOAD_A), HEX_OK);
	assert_int_equal(fx->script.calls, 1);
	assert_true(fake_stream_acked(&fx->stream, "1-0"));
	assert_stats(fx, 1, 1, 0, 0, 0);
}

static void consumer_dead_letters_a_malformed_entry_by_its_stream_id(void **state)
{
	struct consumer_fx *fx = *state;
	assert_int_equal(handle(fx, "1700000000000-3", "", 0, "event_id=&attempt=x"), HEX_OK);
	assert_int_equal(fx->script.calls, 0);
	assert_int_equal(fake_calls(&fx->inbox.base, "begin"), 0);
	const struct fake_inbox_failure *f = fake_inbox_last_failure(&fx->inbox);
	assert_non_null(f);
	assert_string_equal(f->event_id, "stream:1700000000000-3");
	assert_int_equal(f->attempt, 1);
	assert_int_equal(f->retry_at_us, 0);
	assert_string_equal(f->error, "the stream entry is malformed");
	assert_true(fake_stream_acked(&fx->stream, "1700000000000-3"));
	assert_stats(fx, 0, 0, 0, 1, 0);
}

static void consumer_runs_without_stats(void **state)
{
	struct consumer_fx *fx = *state;
	fx->c.stats = NULL;
	script_answers(&fx->script, HEX_OK, NULL);
	script_answers(&fx->script, HEX_CONFLICT, "x");
	assert_int_equal(handle(fx, "1-0", "evt_a", 1, PAYLOAD_A), HEX_OK);
	assert_int_equal(handle(fx, "2-0", "evt_b", 1, PAYLOAD_B), HEX_OK);
	assert_int_equal(fx->stream.nacked, 2);
	assert_stats(fx, 0, 0, 0, 0, 0);
}

/* ---- one polling round ---- */

static enum hex_status poll(struct consumer_fx *fx, int *handled)
{
	*handled = -1;
	return event_consumer_poll(&fx->c, handled);
}

static void poll_handles_idle_entries_before_new_ones(void **state)
{
	struct consumer_fx *fx = *state;
	fake_stream_push(&fx->stream, true, "1-0", "evt_old", 2, PAYLOAD_A);
	fake_stream_push(&fx->stream, false, "5-0", "evt_new1", 1, PAYLOAD_B);
	fake_stream_push(&fx->stream, false, "6-0", "evt_new2", 1, PAYLOAD_C);

	int handled;
	assert_int_equal(poll(fx, &handled), HEX_OK);
	assert_int_equal(handled, 3);
	assert_true(fake_log_has(&fx->log, "stream.claim_idle inbox.begin handler.run "
	                                   "inbox.commit stream.ack stream.read"));
	assert_string_equal(fx->script.seen[0], "evt_old");
	assert_string_equal(fx->script.seen[1], "evt_new1");
	assert_string_equal(fx->script.seen[2], "evt_new2");
	/* The group's own names and sizes reach the stream. */
	assert_string_equal(fx->stream.last_topic, EVENT_TOPIC_PAYMENTS);
	assert_string_equal(fx->stream.last_consumer, "ledger");
	assert_string_equal(fx->stream.last_member, "host-1:42");
	assert_int_equal(fx->stream.last_min_idle_ms, 30000);
	assert_int_equal(fx->stream.last_claim_max, 8);
	assert_int_equal(fx->stream.last_read_max, 8);
	/* Busy with idle entries: the read does not wait for new ones. */
	assert_int_equal(fx->stream.last_block_ms, 0);
	assert_int_equal(fx->stream.nacked, 3);
	assert_stats(fx, 3, 0, 0, 0, 0);
}

static void poll_waits_for_new_entries_when_none_is_idle(void **state)
{
	struct consumer_fx *fx = *state;
	int handled;
	assert_int_equal(poll(fx, &handled), HEX_OK);
	assert_int_equal(handled, 0);
	assert_int_equal(fx->stream.last_block_ms, 2000);

	fake_stream_push(&fx->stream, false, "5-0", "evt_new1", 1, PAYLOAD_B);
	assert_int_equal(poll(fx, &handled), HEX_OK);
	assert_int_equal(handled, 1);
	assert_int_equal(fx->stream.last_block_ms, 2000);
	assert_true(fake_stream_acked(&fx->stream, "5-0"));
}

static void poll_counts_retried_and_dead_entries_as_handled(void **state)
{
	struct consumer_fx *fx = *state;
	script_answers(&fx->script, HEX_CONFLICT, "later");
	script_answers(&fx->script, HEX_INVALID, "never");
	fake_stream_push(&fx->stream, false, "1-0", "evt_a", 1, PAYLOAD_A);
	fake_stream_push(&fx->stream, false, "2-0", "evt_b", 1, PAYLOAD_B);
	fake_stream_push(&fx->stream, false, "3-0", "", 1, "garbage");
	int handled;
	assert_int_equal(poll(fx, &handled), HEX_OK);
	assert_int_equal(handled, 3);
	assert_int_equal(fx->stream.nacked, 3);
	assert_stats(fx, 0, 0, 1, 2, 0);
}

static void poll_stops_at_the_first_entry_left_pending(void **state)
{
	struct consumer_fx *fx = *state;
	script_answers(&fx->script, HEX_OK, NULL);
	script_answers(&fx->script, HEX_CONFLICT, "conflict");
	fake_fail_next(&fx->inbox.base, "fail", HEX_UNAVAILABLE); /* entry 2 stalls */
	fake_stream_push(&fx->stream, false, "1-0", "evt_a", 1, PAYLOAD_A);
	fake_stream_push(&fx->stream, false, "2-0", "evt_b", 1, PAYLOAD_B);
	fake_stream_push(&fx->stream, false, "3-0", "evt_c", 1, PAYLOAD_C);

	int handled;
	assert_int_equal(poll(fx, &handled), HEX_UNAVAILABLE);
	assert_int_equal(handled, 1);
	assert_int_equal(fx->script.calls, 2); /* the third was never run */
	assert_true(fake_stream_acked(&fx->stream, "1-0"));
	assert_false(fake_stream_acked(&fx->stream, "2-0"));
	assert_false(fake_stream_acked(&fx->stream, "3-0"));
	assert_stats(fx, 1, 0, 0, 0, 1);
}

static void poll_reads_nothing_new_after_a_stalled_idle_entry(void **state)
{
	struct consumer_fx *fx = *state;
	fake_stream_push(&fx->stream, true, "1-0", "evt_old", 2, PAYLOAD_A);
	fake_stream_push(&fx->stream, true, "2-0", "evt_old2", 2, PAYLOAD_B);
	fake_stream_push(&fx->stream, false, "5-0", "evt_new", 1, PAYLOAD_C);
	fake_fail_next(&fx->inbox.base, "begin", HEX_UNAVAILABLE);

	int handled;
	assert_int_equal(poll(fx, &handled), HEX_UNAVAILABLE);
	assert_int_equal(handled, 0);
	assert_int_equal(fake_calls(&fx->stream.base, "read"), 0);
	assert_int_equal(fx->script.calls, 0);
	assert_int_equal(fx->stream.nacked, 0);
	assert_stats(fx, 0, 0, 0, 0, 1);
}

static void poll_returns_a_stream_failure(void **state)
{
	struct consumer_fx *fx = *state;
	fake_fail_next(&fx->stream.base, "claim_idle", HEX_UNAVAILABLE);
	int handled;
	assert_int_equal(poll(fx, &handled), HEX_UNAVAILABLE);
	assert_int_equal(handled, 0);
	assert_int_equal(fake_calls(&fx->stream.base, "read"), 0);

	/* Idle entries handled, then the read fails: both facts are reported. */
	fake_stream_push(&fx->stream, true, "1-0", "evt_old", 2, PAYLOAD_A);
	fake_fail_next(&fx->stream.base, "read", HEX_UNAVAILABLE);
	assert_int_equal(poll(fx, &handled), HEX_UNAVAILABLE);
	assert_int_equal(handled, 1);
	assert_true(fake_stream_acked(&fx->stream, "1-0"));

	fake_fail_next(&fx->stream.base, "read", HEX_INTERNAL);
	assert_int_equal(poll(fx, &handled), HEX_INTERNAL);
	assert_int_equal(handled, 0);
}

static void poll_takes_at_most_a_batch_per_call(void **state)
{
	struct consumer_fx *fx = *state;
	fx->c.batch = 2;
	for (int i = 0; i < 5; i++) {
		char sid[16], id[16];
		snprintf(sid, sizeof sid, "%d-0", i + 1);
		snprintf(id, sizeof id, "evt_%d", i);
		fake_stream_push(&fx->stream, false, sid, id, 1, PAYLOAD_A);
	}
	int handled, total = 0;
	for (int round = 0; round < 3; round++) {
		assert_int_equal(poll(fx, &handled), HEX_OK);
		assert_true(handled <= 2);
		total += handled;
	}
	assert_int_equal(total, 5);
	assert_int_equal(fx->stream.nacked, 5);
}

/* ---- the dead-letter service ---- */

/* ---- batches: one transaction around a poll's entries ---- */

static void batch_port(struct consumer_fx *fx)
{
	fx->c.inbox = fake_inbox_batch_port(&fx->inbox, &fx->log);
}

static void push_three(struct consumer_fx *fx)
{
	fake_stream_push(&fx->stream, false, "1-0", "evt_a", 1, PAYLOAD_A);
	fake_stream_push(&fx->stream, false, "2-0", "evt_b", 1, PAYLOAD_B);
	fake_stream_push(&fx->stream, false, "3-0", "evt_c", 1, PAYLOAD_C);
}

static void batch_commits_once_then_acks_every_entry(void **state)
{
	struct consumer_fx *fx = *state;
	batch_port(fx);
	push_three(fx);
	int handled;
	assert_int_equal(poll(fx, &handled), HEX_OK);
	assert_int_equal(handled, 3);
	/* One commit for the three; no acknowledgement before it. */
	assert_int_equal(fake_calls(&fx->inbox.base, "batch_begin"), 1);
	assert_int_equal(fake_calls(&fx->inbox.base, "batch_commit"), 1);
	assert_true(fake_log_has(&fx->log, "inbox.begin handler.run inbox.commit inbox.begin "
	                                   "handler.run inbox.commit inbox.begin handler.run "
	                                   "inbox.commit inbox.batch_commit stream.ack stream.ack "
	                                   "stream.ack"));
	assert_true(fake_inbox_applied(&fx->inbox, "ledger", "evt_c"));
	assert_stats(fx, 3, 0, 0, 0, 0);
}

static void batch_keeps_a_failed_event_apart_from_the_others(void **state)
{
	struct consumer_fx *fx = *state;
	batch_port(fx);
	script_answers(&fx->script, HEX_OK, NULL);
	script_answers(&fx->script, HEX_CONFLICT, "insufficient funds");
	push_three(fx);
	int handled;
	assert_int_equal(poll(fx, &handled), HEX_OK);
	assert_int_equal(handled, 3);
	assert_true(fake_inbox_applied(&fx->inbox, "ledger", "evt_a"));
	assert_false(fake_inbox_applied(&fx->inbox, "ledger", "evt_b"));
	assert_true(fake_inbox_applied(&fx->inbox, "ledger", "evt_c"));
	/* The failure is recorded in the batch, with the retry scheduled. */
	const struct fake_inbox_failure *f = fake_inbox_last_failure(&fx->inbox);
	assert_non_null(f);
	assert_string_equal(f->event_id, "evt_b");
	assert_true(f->retry_at_us > T0_US);
	assert_int_equal(fx->stream.nacked, 3);
	assert_stats(fx, 2, 0, 1, 0, 0);
}

static void batch_that_cannot_commit_runs_one_event_at_a_time(void **state)
{
	struct consumer_fx *fx = *state;
	batch_port(fx);
	fake_fail_next(&fx->inbox.base, "batch_commit", HEX_INTERNAL);
	push_three(fx);
	int handled;
	assert_int_equal(poll(fx, &handled), HEX_OK);
	assert_int_equal(handled, 3);
	/* The batch's work was undone, then each event ran again in its own transaction. */
	assert_int_equal(fx->script.calls, 6);
	assert_int_equal(fx->inbox.napplied, 3);
	assert_int_equal(fx->stream.nacked, 3);
	assert_stats(fx, 3, 0, 0, 0, 0);
}

static void batch_on_a_database_gone_acks_nothing(void **state)
{
	struct consumer_fx *fx = *state;
	batch_port(fx);
	fake_fail_next(&fx->inbox.base, "batch_commit", HEX_UNAVAILABLE);
	push_three(fx);
	int handled;
	assert_int_equal(poll(fx, &handled), HEX_UNAVAILABLE);
	assert_int_equal(handled, 0);
	assert_int_equal(fx->inbox.napplied, 0);
	assert_int_equal(fx->stream.nacked, 0);
	assert_stats(fx, 0, 0, 0, 0, 1);

	/* The second event's failure cannot be recorded: the first one, applied in the same
	 * batch, is undone and not acknowledged either; both stay pending. */
	fx->script.calls = 0;
	script_answers(&fx->script, HEX_OK, NULL);
	script_answers(&fx->script, HEX_CONFLICT, "conflict");
	fake_fail_next(&fx->inbox.base, "fail", HEX_UNAVAILABLE);
	fake_stream_push(&fx->stream, false, "4-0", "evt_d", 1, PAYLOAD_A);
	fake_stream_push(&fx->stream, false, "5-0", "evt_e", 1, PAYLOAD_B);
	assert_int_equal(poll(fx, &handled), HEX_UNAVAILABLE);
	assert_int_equal(fake_calls(&fx->inbox.base, "batch_rollback"), 1);
	assert_false(fake_inbox_applied(&fx->inbox, "ledger", "evt_d"));
	assert_false(fake_stream_acked(&fx->stream, "4-0"));
	assert_int_equal(fx->stream.nacked, 0);
}

struct dlq_fx {
	struct fake_log log;
	struct fake_clock clock;
	struct fake_dead_letter_repo repo;
	struct dead_letter_service svc;
	struct dead_letter out;
	struct dead_letter_page page;
	struct hex_err err;
};

static int dlq_setup(void **state)
{
	struct dlq_fx *fx = xcalloc(1, sizeof *fx);
	fx->clock.now_us = T0_US;
	fx->svc = (struct dead_letter_service){
	    .repo = fake_dead_letter_repo_port(&fx->repo, &fx->log),
	    .clock = fake_clock_port(&fx->clock),
	};
	fake_dead_letter_repo_add(&fx->repo, "ledger", "evt_1", 5, "the database is unavailable",
	                          PAYLOAD_A, T0_US - 3000);
	fake_dead_letter_repo_add(&fx->repo, "membership", "evt_2", 1, "not a payment event",
	                          "not json at all", T0_US - 2000);
	fake_dead_letter_repo_add(&fx->repo, "ledger", "evt_3", 2, "payment x does not exist",
	                          PAYLOAD_C, T0_US - 1000);
	*state = fx;
	return 0;
}

static int dlq_teardown(void **state)
{
	struct dlq_fx *fx = *state;
	free(fx->out.payload);
	free(fx);
	return 0;
}

static void assert_err(const struct hex_err *err, const char *field, const char *message)
{
	if (field == NULL)
		assert_null(err->field);
	else {
		assert_non_null(err->field);
		assert_string_equal(err->field, field);
	}
	assert_string_equal(err->message, message);
}

static void dlq_list_checks_limit_and_cursor(void **state)
{
	struct dlq_fx *fx = *state;
	const int bad_limits[] = {0, -1, HEX_LIST_MAX + 1, 1000000};
	for (size_t i = 0; i < sizeof bad_limits / sizeof bad_limits[0]; i++) {
		memset(&fx->err, 0, sizeof fx->err);
		assert_int_equal(dead_letter_service_list(&fx->svc, false, bad_limits[i], 0,
		                                          &fx->page, &fx->err),
		                 HEX_INVALID);
		assert_err(&fx->err, "limit", "limit must be 1 to 100");
	}
	assert_int_equal(dead_letter_service_list(&fx->svc, false, 10, -1, &fx->page, &fx->err),
	                 HEX_INVALID);
	assert_err(&fx->err, "cursor", "cursor must be a dead letter id");
	assert_int_equal(fake_calls(&fx->repo.base, "list"), 0);

	assert_int_equal(dead_letter_service_list(&fx->svc, false, 1, 0, &fx->page, &fx->err),
	                 HEX_OK);
	assert_int_equal(fx->page.count, 1);
	assert_true(fx->page.has_more);
	assert_int_equal(
	    dead_letter_service_list(&fx->svc, true, HEX_LIST_MAX, 0, &fx->page, &fx->err), HEX_OK);
	assert_int_equal(fx->repo.last_limit, HEX_LIST_MAX);
	assert_true(fx->repo.last_all);
	assert_int_equal(fx->page.count, 3);
}

static void dlq_list_walks_newest_first_with_a_cursor(void **state)
{
	struct dlq_fx *fx = *state;
	assert_int_equal(dead_letter_service_list(&fx->svc, false, 2, 0, &fx->page, &fx->err),
	                 HEX_OK);
	assert_int_equal(fx->page.count, 2);
	assert_true(fx->page.has_more);
	assert_int_equal(fx->page.items[0].id, 3);
	assert_int_equal(fx->page.items[1].id, 2);
	assert_null(fx->page.items[0].payload);

	assert_int_equal(
	    dead_letter_service_list(&fx->svc, false, 2, fx->page.items[1].id, &fx->page, &fx->err),
	    HEX_OK);
	assert_int_equal(fx->repo.last_before_id, 2);
	assert_int_equal(fx->page.count, 1);
	assert_false(fx->page.has_more);
	assert_int_equal(fx->page.items[0].id, 1);
	assert_string_equal(fx->page.items[0].event_id, "evt_1");

	/* A closed letter leaves the default list, not the full one. */
	assert_int_equal(dead_letter_service_discard(&fx->svc, 3, "ops@host", "posted by hand",
	                                             &fx->out, &fx->err),
	                 HEX_OK);
	assert_int_equal(dead_letter_service_list(&fx->svc, false, 10, 0, &fx->page, &fx->err),
	                 HEX_OK);
	assert_int_equal(fx->page.count, 2);
	assert_int_equal(fx->page.items[0].id, 2);
	assert_int_equal(dead_letter_service_list(&fx->svc, true, 10, 0, &fx->page, &fx->err),
	                 HEX_OK);
	assert_int_equal(fx->page.count, 3);
	assert_int_equal(fx->page.items[0].status, DEAD_LETTER_DISCARDED);
}

static void dlq_list_reports_a_store_that_is_down(void **state)
{
	struct dlq_fx *fx = *state;
	fake_fail_next(&fx->repo.base, "list", HEX_UNAVAILABLE);
	assert_int_equal(dead_letter_service_list(&fx->svc, false, 10, 0, &fx->page, &fx->err),
	                 HEX_UNAVAILABLE);
	assert_err(&fx->err, NULL, "the database is unavailable");
	fake_fail_next(&fx->repo.base, "list", HEX_INTERNAL);
	assert_int_equal(dead_letter_service_list(&fx->svc, false, 10, 0, &fx->page, &fx->err),
	                 HEX_INTERNAL);
}

static void dlq_show_gives_the_payload_and_history(void **state)
{
	struct dlq_fx *fx = *state;
	assert_int_equal(dead_letter_service_show(&fx->svc, 1, &fx->out, &fx->err), HEX_OK);
	assert_int_equal(fx->out.id, 1);
	assert_string_equal(fx->out.consumer, "ledger");
	assert_string_equal(fx->out.event_id, "evt_1");
	assert_int_equal(fx->out.attempts, 5);
	assert_string_equal(fx->out.error, "the database is unavailable");
	assert_int_equal(fx->out.status, DEAD_LETTER_OPEN);
	assert_non_null(fx->out.payload); /* the caller's: freed in teardown */
	assert_string_equal(fx->out.payload, PAYLOAD_A);
	assert_int_equal(fx->out.nhistory, 1);
	assert_string_equal(dead_letter_status_name(fx->out.status), "open");
}

static void dlq_show_names_the_missing_id(void **state)
{
	struct dlq_fx *fx = *state;
	assert_int_equal(dead_letter_service_show(&fx->svc, 42, &fx->out, &fx->err), HEX_NOT_FOUND);
	assert_err(&fx->err, "id", "dead letter 42 not found");
	assert_null(fx->out.payload);

	fake_fail_next(&fx->repo.base, "get", HEX_UNAVAILABLE);
	assert_int_equal(dead_letter_service_show(&fx->svc, 1, &fx->out, &fx->err),
	                 HEX_UNAVAILABLE);
	assert_err(&fx->err, NULL, "the database is unavailable");
}

static void dlq_replay_reopens_the_event_for_its_consumer(void **state)
{
	struct dlq_fx *fx = *state;
	fake_clock_advance_s(&fx->clock, 30);
	assert_int_equal(dead_letter_service_replay(&fx->svc, 1, "alice@ops", &fx->out, &fx->err),
	                 HEX_OK);
	assert_int_equal(fx->out.status, DEAD_LETTER_REPLAYED);
	assert_string_equal(fx->out.resolved_by, "alice@ops");
	assert_int_equal(fx->out.resolved_at_us, T0_US + 30000 * MS);
	assert_string_equal(fx->repo.last_actor, "alice@ops");
	assert_int_equal(fx->repo.last_now_us, T0_US + 30000 * MS);
	assert_int_equal(fake_dead_letter_repo_find(&fx->repo, 1)->status, DEAD_LETTER_REPLAYED);
}

static void dlq_replay_and_discard_need_an_actor(void **state)
{
	struct dlq_fx *fx = *state;
	char too_long[DEAD_LETTER_ACTOR_MAX + 2];
	memset(too_long, 'a', sizeof too_long - 1);
	too_long[sizeof too_long - 1] = '\0';
	const char *bad[] = {NULL, "", too_long, "ops\n", "o\tps", "op\x7f", "\xc3\xa9t\xc3\xa9"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&fx->err, 0, sizeof fx->err);
		assert_int_equal(
		    dead_letter_service_replay(&fx->svc, 1, bad[i], &fx->out, &fx->err),
		    HEX_INVALID);
		assert_err(&fx->err, "actor", "say who replays it");
		memset(&fx->err, 0, sizeof fx->err);
		assert_int_equal(dead_letter_service_discard(&fx->svc, 1, bad[i], "a reason",
		                                             &fx->out, &fx->err),
		                 HEX_INVALID);
		assert_err(&fx->err, "actor", "say who discards it");
	}
	assert_int_equal(fake_calls(&fx->repo.base, "replay"), 0);
	assert_int_equal(fake_calls(&fx->repo.base, "discard"), 0);
	assert_int_equal(fake_dead_letter_repo_find(&fx->repo, 1)->status, DEAD_LETTER_OPEN);

	/* The longest name allowed, with spaces, is fine. */
	too_long[DEAD_LETTER_ACTOR_MAX] = '\0';
	too_long[3] = ' ';
	assert_int_equal(dead_letter_service_replay(&fx->svc, 1, too_long, &fx->out, &fx->err),
	                 HEX_OK);
}

static void dlq_discard_needs_a_printable_reason(void **state)
{
	struct dlq_fx *fx = *state;
	char too_long[DEAD_LETTER_REASON_MAX + 2];
	memset(too_long, 'r', sizeof too_long - 1);
	too_long[sizeof too_long - 1] = '\0';
	const char *bad[] = {NULL,        "",       too_long,     "line one\nline two",
	                     "tab\there", "bell\a", "esc\x1b[31m"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&fx->err, 0, sizeof fx->err);
		assert_int_equal(
		    dead_letter_service_discard(&fx->svc, 1, "ops", bad[i], &fx->out, &fx->err),
		    HEX_INVALID);
		assert_err(&fx->err, "reason",
		           "a discard needs a reason of 1 to 255 printable characters");
	}
	assert_int_equal(fake_calls(&fx->repo.base, "discard"), 0);
	assert_int_equal(fake_dead_letter_repo_find(&fx->repo, 1)->status, DEAD_LETTER_OPEN);

	too_long[DEAD_LETTER_REASON_MAX] = '\0'; /* exactly the maximum */
	fake_clock_advance_s(&fx->clock, 5);
	assert_int_equal(
	    dead_letter_service_discard(&fx->svc, 1, "ops", too_long, &fx->out, &fx->err), HEX_OK);
	assert_int_equal(fx->out.status, DEAD_LETTER_DISCARDED);
	assert_string_equal(fx->out.reason, too_long);
	assert_string_equal(fx->repo.last_reason, too_long);
	assert_int_equal(fx->repo.last_now_us, T0_US + 5000 * MS);
	const struct dead_letter *d = fake_dead_letter_repo_find(&fx->repo, 1);
	assert_int_equal(d->status, DEAD_LETTER_DISCARDED);
	assert_string_equal(d->resolved_by, "ops");
}

static void dlq_a_closed_letter_says_how_it_was_closed(void **state)
{
	struct dlq_fx *fx = *state;
	assert_int_equal(dead_letter_service_replay(&fx->svc, 1, "ops", &fx->out, &fx->err),
	                 HEX_OK);
	assert_int_equal(dead_letter_service_discard(&fx->svc, 3, "ops", "dup", &fx->out, &fx->err),
	                 HEX_OK);

	assert_int_equal(dead_letter_service_replay(&fx->svc, 1, "ops", &fx->out, &fx->err),
	                 HEX_CONFLICT);
	assert_err(&fx->err, "id", "dead letter 1 is already replayed");
	assert_int_equal(dead_letter_service_discard(&fx->svc, 1, "ops", "why", &fx->out, &fx->err),
	                 HEX_CONFLICT);
	assert_err(&fx->err, "id", "dead letter 1 is already replayed");
	assert_int_equal(dead_letter_service_replay(&fx->svc, 3, "ops", &fx->out, &fx->err),
	                 HEX_CONFLICT);
	assert_err(&fx->err, "id", "dead letter 3 is already discarded");
	/* The first resolution stands. */
	assert_int_equal(fake_dead_letter_repo_find(&fx->repo, 1)->status, DEAD_LETTER_REPLAYED);
	assert_int_equal(fake_dead_letter_repo_find(&fx->repo, 3)->status, DEAD_LETTER_DISCARDED);
}

static void dlq_a_payload_that_is_not_json_can_only_be_discarded(void **state)
{
	struct dlq_fx *fx = *state;
	assert_int_equal(dead_letter_service_replay(&fx->svc, 2, "ops", &fx->out, &fx->err),
	                 HEX_INVALID);
	assert_err(&fx->err, "payload", "dead letter 2 has a payload that is not JSON: discard it");
	assert_int_equal(fake_dead_letter_repo_find(&fx->repo, 2)->status, DEAD_LETTER_OPEN);
	assert_int_equal(
	    dead_letter_service_discard(&fx->svc, 2, "ops", "unreadable", &fx->out, &fx->err),
	    HEX_OK);
}

static void dlq_replay_and_discard_of_a_missing_letter(void **state)
{
	struct dlq_fx *fx = *state;
	assert_int_equal(dead_letter_service_replay(&fx->svc, 77, "ops", &fx->out, &fx->err),
	                 HEX_NOT_FOUND);
	assert_err(&fx->err, "id", "dead letter 77 not found");
	assert_int_equal(dead_letter_service_discard(&fx->svc, 78, "ops", "r", &fx->out, &fx->err),
	                 HEX_NOT_FOUND);
	assert_err(&fx->err, "id", "dead letter 78 not found");

	fake_fail_next(&fx->repo.base, "replay", HEX_UNAVAILABLE);
	assert_int_equal(dead_letter_service_replay(&fx->svc, 1, "ops", &fx->out, &fx->err),
	                 HEX_UNAVAILABLE);
	assert_err(&fx->err, NULL, "the database is unavailable");
	fake_fail_next(&fx->repo.base, "discard", HEX_INTERNAL);
	assert_int_equal(dead_letter_service_discard(&fx->svc, 1, "ops", "r", &fx->out, &fx->err),
	                 HEX_INTERNAL);
	assert_int_equal(fake_dead_letter_repo_find(&fx->repo, 1)->status, DEAD_LETTER_OPEN);
}

static void dlq_status_names(void **state)
{
	assert_string_equal(dead_letter_status_name(DEAD_LETTER_OPEN), "open");
	assert_string_equal(dead_letter_status_name(DEAD_LETTER_REPLAYED), "replayed");
	assert_string_equal(dead_letter_status_name(DEAD_LETTER_DISCARDED), "discarded");
	assert_string_equal(dead_letter_status_name((enum dead_letter_status)7), "?");
}

#define RELAY(t)    cmocka_unit_test_setup_teardown(t, relay_setup, relay_teardown)
#define CONSUMER(t) cmocka_unit_test_setup_teardown(t, consumer_setup, consumer_teardown)
#define DLQ(t)      cmocka_unit_test_setup_teardown(t, dlq_setup, dlq_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(retry_delay_doubles_until_the_cap),
	    cmocka_unit_test(retry_jitter_keeps_half_of_the_delay),
	    cmocka_unit_test(retry_gives_up_at_the_last_attempt),
	    cmocka_unit_test(consumer_names_are_short_lower_snake_case),
	    RELAY(relay_publishes_due_rows_in_order_and_marks_them),
	    RELAY(relay_claims_at_most_one_batch),
	    RELAY(relay_with_nothing_due_publishes_nothing),
	    RELAY(relay_releases_the_claim_when_the_stream_fails_midway),
	    RELAY(relay_reports_an_outbox_it_cannot_read),
	    RELAY(relay_reports_rows_it_could_not_mark),
	    RELAY(relay_works_without_error_detail),
	    CONSUMER(consumer_applies_a_first_delivery_then_acks),
	    CONSUMER(consumer_acks_a_duplicate_without_running_it),
	    CONSUMER(consumer_dead_letters_what_can_never_succeed),
	    CONSUMER(consumer_schedules_a_retry_within_the_policy),
	    CONSUMER(consumer_jitter_differs_between_retries),
	    CONSUMER(consumer_dead_letters_after_the_last_attempt),
	    CONSUMER(consumer_treats_a_failed_commit_as_a_failed_attempt),
	    CONSUMER(consumer_leaves_pending_what_it_cannot_begin),
	    CONSUMER(consumer_leaves_pending_a_failure_it_cannot_record),
	    CONSUMER(consumer_survives_a_lost_ack),
	    CONSUMER(consumer_dead_letters_a_malformed_entry_by_its_stream_id),
	    CONSUMER(consumer_runs_without_stats),
	    CONSUMER(poll_handles_idle_entries_before_new_ones),
	    CONSUMER(poll_waits_for_new_entries_when_none_is_idle),
	    CONSUMER(poll_counts_retried_and_dead_entries_as_handled),
	    CONSUMER(poll_stops_at_the_first_entry_left_pending),
	    CONSUMER(poll_reads_nothing_new_after_a_stalled_idle_entry),
	    CONSUMER(poll_returns_a_stream_failure),
	    CONSUMER(poll_takes_at_most_a_batch_per_call),
	    CONSUMER(batch_commits_once_then_acks_every_entry),
	    CONSUMER(batch_keeps_a_failed_event_apart_from_the_others),
	    CONSUMER(batch_that_cannot_commit_runs_one_event_at_a_time),
	    CONSUMER(batch_on_a_database_gone_acks_nothing),
	    DLQ(dlq_list_checks_limit_and_cursor),
	    DLQ(dlq_list_walks_newest_first_with_a_cursor),
	    DLQ(dlq_list_reports_a_store_that_is_down),
	    DLQ(dlq_show_gives_the_payload_and_history),
	    DLQ(dlq_show_names_the_missing_id),
	    DLQ(dlq_replay_reopens_the_event_for_its_consumer),
	    DLQ(dlq_replay_and_discard_need_an_actor),
	    DLQ(dlq_discard_needs_a_printable_reason),
	    DLQ(dlq_a_closed_letter_says_how_it_was_closed),
	    DLQ(dlq_a_payload_that_is_not_json_can_only_be_discarded),
	    DLQ(dlq_replay_and_discard_of_a_missing_letter),
	    DLQ(dlq_status_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
