/*
 * event_inbox: the consumer side's durable memory. A consumer runs each event inside a
 * transaction begun here, which also records (consumer, event_id): the record commits with
 * the event's effects or not at all, so an event is applied at most once per consumer
 * whatever the stream redelivers. Failed attempts are recorded (the attempt history) and
 * either scheduled again (an outbox row addressed to the consumer, due later) or moved to
 * dead_letters.
 */
#ifndef HEX_PORT_EVENT_INBOX_H
#define HEX_PORT_EVENT_INBOX_H

#include "core/event.h"

struct event_inbox_ops {
	/*
	 * Optional (NULL: every event commits alone). A batch is one transaction around the
	 * transactions of several events, which then nest inside it: their effects and
	 * records, and the failures recorded by fail(), all become durable at batch_commit()
	 * (one commit, one flush to disk) or not at all.
	 */
	enum hex_status (*batch_begin)(void *self);
	enum hex_status (*batch_commit)(void *self);
	void (*batch_rollback)(void *self);
	/*
	 * Begins the transaction and records (consumer, event_id). When the pair was recorded
	 * before (the event was applied already) *first is false and the transaction is over;
	 * else the caller's repositories run inside it (on the same session) until commit()
	 * or rollback(). Waits while another transaction holds the same pair.
	 */
	enum hex_status (*begin)(void *self, const char *consumer, const char *event_id,
	                         bool *first);
	enum hex_status (*commit)(void *self);
	void (*rollback)(void *self);
	/*
	 * In its own transaction: records that attempt m->attempt of m by consumer failed
	 * with error (one line), then, if retry_at_us > 0, schedules attempt m->attempt + 1
	 * (an outbox row addressed to consumer, due at retry_at_us), else opens a dead letter
	 * with the payload and the attempt history (*dead set). Recording the same attempt a
	 * second time (two members raced) changes nothing.
	 */
	enum hex_status (*fail)(void *self, const char *consumer, const struct event_msg *m,
	                        const char *error, int64_t now_us, int64_t retry_at_us, bool *dead);
};

struct event_inbox {
	const struct event_inbox_ops *ops;
	void *self;
};

#endif
