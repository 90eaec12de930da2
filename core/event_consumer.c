/* event_consumer.c: the consume use case over the event_inbox and event_stream ports. */
#include "core/event_consumer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/logger.h"
#include "core/xmalloc.h"

static void bump(struct event_consumer *c, size_t offset)
{
	if (c->stats != NULL)
		atomic_fetch_add((atomic_long *)((char *)c->stats + offset), 1);
}

#define COUNT(c, field) bump((c), offsetof(struct event_consumer_stats, field))

/* xorshift64*: jitter needs spread, not secrecy. */
static uint32_t next_random(struct event_consumer *c)
{
	uint64_t x = c->seed != 0 ? c->seed : 0x9e3779b97f4a7c15u;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	c->seed = x;
	return (uint32_t)((x * 0x2545f4914f6cdd1du) >> 32);
}

static enum hex_status ack(struct event_consumer *c, const struct event_msg *m)
{
	enum hex_status st = c->stream.ops->ack(c->stream.self, c->topic, c->name, m);
	if (st != HEX_OK)
		/* Stays pending: taken over later, found applied, acknowledged then. */
		log_warn("event_ack_failed", "%s: event %s could not be acknowledged", c->name,
		         m->event_id);
	return HEX_OK;
}

/* What the entries of one transaction came to, counted once it committed. */
struct tally {
	long applied, duplicates, retried, dead;
};

static void count(struct event_consumer *c, const struct tally *t)
{
	if (c->stats == NULL)
		return;
	atomic_fetch_add(&c->stats->applied, t->applied);
	atomic_fetch_add(&c->stats->duplicates, t->duplicates);
	atomic_fetch_add(&c->stats->retried, t->retried);
	atomic_fetch_add(&c->stats->dead, t->dead);
}

/* The attempt failed with err: schedules the next one or dead-letters the event. */
static enum hex_status failed(struct event_consumer *c, const struct event_msg *m,
                              enum hex_status why, const struct hex_err *err, struct tally *t)
{
	int64_t now = c->clock.ops->now_us(c->clock.self);
	int64_t delay =
	    why == HEX_INVALID ? -1 : event_retry_delay_ms(&c->retry, m->attempt, next_random(c));
	const char *text = err->message[0] != '\0' ? err->message : hex_status_name(why);
	bool dead = false;
	enum hex_status st = c->inbox.ops->fail(c->inbox.self, c->name, m, text, now,
	                                        delay < 0 ? 0 : now + delay * 1000, &dead);
	if (st != HEX_OK) {
		log_error("event_fail_unrecorded",
		          "%s: attempt %d of event %s failed (%s) and could "
		          "not be recorded; it stays pending",
		          c->name, m->attempt, m->event_id, text);
		return st;
	}
	if (dead) {
		t->dead++;
		log_error("event_dead_lettered", "%s: event %s dead-lettered after attempt %d: %s",
		          c->name, m->event_id, m->attempt, text);
	} else {
		t->retried++;
		log_warn("event_retry", "%s: attempt %d of event %s failed: %s; next in %lld ms",
		         c->name, m->attempt, m->event_id, text, (long long)delay);
	}
	return HEX_OK;
}

/*
 * Runs m to its end in its own transaction (nested in a batch's, if one is open), without
 * acknowledging it: applied, found applied before, scheduled again or dead-lettered.
 * Anything else (the database is gone) is returned and m stays pending.
 */
static enum hex_status settle(struct event_consumer *c, struct event_msg *m, struct tally *t)
{
	struct hex_err err = {0};
	if (m->event_id[0] == '\0') {
		/* Unreadable on the stream: name it by its entry so that it can be dead-lettered.
		 */
		snprintf(m->event_id, sizeof m->event_id, "stream:%s", m->stream_id);
		if (m->attempt < 1)
			m->attempt = 1;
		hex_fail(&err, HEX_INVALID, NULL, "the stream entry is malformed");
		return failed(c, m, HEX_INVALID, &err, t);
	}
	bool first = false;
	enum hex_status st = c->inbox.ops->begin(c->inbox.self, c->name, m->event_id, &first);
	if (st != HEX_OK)
		return st;
	if (!first) {
		t->duplicates++;
		return HEX_OK;
	}
	st = c->handle(c->handler_ctx, m, &err);
	if (st == HEX_OK && (st = c->inbox.ops->commit(c->inbox.self)) != HEX_OK)
		hex_fail(&err, st, NULL, "the commit failed");
	if (st != HEX_OK) {
		c->inbox.ops->rollback(c->inbox.self);
		return failed(c, m, st, &err, t);
	}
	t->applied++;
	return HEX_OK;
}

enum hex_status event_consumer_handle(struct event_consumer *c, struct event_msg *m)
{
	struct tally t = {0};
	enum hex_status st = settle(c, m, &t);
	if (st != HEX_OK) {
		COUNT(c, stalled);
		return st;
	}
	count(c, &t);
	return ack(c, m);
}

/* Handles every entry of b in order, each in its own transaction; stops at the first
 * that stays pending. */
static enum hex_status handle_each(struct event_consumer *c, struct event_batch *b, int *handled)
{
	for (int i = *handled; i < b->n; i++) {
		enum hex_status st = event_consumer_handle(c, &b->items[i]);
		if (st != HEX_OK)
			return st;
		(*handled)++;
	}
	return HEX_OK;
}

/*
 * Handles b in one batch transaction when the inbox has them: one commit (one flush to
 * disk) for the whole batch instead of one per event, and the acknowledgements after it.
 * A batch that cannot commit (an event whose effects the database refuses only at commit)
 * is run again one event at a time, so that one bad event cannot hold the others back.
 */
static enum hex_status handle_all(struct event_consumer *c, struct event_batch *b, int *handled)
{
	*handled = 0;
	if (c->inbox.ops->batch_begin == NULL || b->n < 2)
		return handle_each(c, b, handled);
	enum hex_status st = c->inbox.ops->batch_begin(c->inbox.self);
	struct tally t = {0};
	for (int i = 0; st == HEX_OK && i < b->n; i++)
		st = settle(c, &b->items[i], &t);
	if (st == HEX_OK)
		st = c->inbox.ops->batch_commit(c->inbox.self);
	else
		c->inbox.ops->batch_rollback(c->inbox.self);
	if (st == HEX_UNAVAILABLE) {
		COUNT(c, stalled);
		return st;
	}
	if (st != HEX_OK) {
		log_warn("event_batch_failed",
		         "%s: a batch of %d events did not commit (%s); "
		         "running them one at a time",
		         c->name, b->n, hex_status_name(st));
		return handle_each(c, b, handled);
	}
	count(c, &t);
	for (int i = 0; i < b->n; i++)
		ack(c, &b->items[i]);
	*handled = b->n;
	return HEX_OK;
}

enum hex_status event_consumer_poll(struct event_consumer *c, int *handled)
{
	*handled = 0;
	struct event_batch *b = xcalloc(1, sizeof *b);
	enum hex_status st = c->stream.ops->claim_idle(c->stream.self, c->topic, c->name, c->member,
	                                               c->claim_idle_ms, c->batch, b);
	if (st == HEX_OK && b->n > 0) {
		log_info("event_claimed", "%s: took over %d idle events", c->name, b->n);
		st = handle_all(c, b, handled);
	}
	int claimed = *handled;
	event_batch_clear(b);
	if (st == HEX_OK) {
		/* Do not wait for new entries when idle ones kept us busy. */
		st = c->stream.ops->read(c->stream.self, c->topic, c->name, c->member, c->batch,
		                         claimed > 0 ? 0 : c->block_ms, b);
		int fresh = 0;
		if (st == HEX_OK)
			st = handle_all(c, b, &fresh);
		*handled = claimed + fresh;
		event_batch_clear(b);
	}
	free(b);
	return st;
}
