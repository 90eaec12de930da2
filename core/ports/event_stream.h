/*
 * event_stream: the durable log events travel on between the relay and the consumers
 * (Redis Streams). Each topic has one stream that every consumer group reads; each
 * consumer group also has its own retry stream for events addressed to it alone
 * (msg->consumer non-empty). A group's members compete: each entry goes to one member,
 * stays pending until acknowledged, and can be claimed by another member once it has
 * been idle long enough (a member that died mid-event).
 *
 * Every call: HEX_OK, or HEX_UNAVAILABLE when the stream store cannot be reached (nothing
 * happened), or HEX_INTERNAL for an answer that makes no sense (logged).
 */
#ifndef HEX_PORT_EVENT_STREAM_H
#define HEX_PORT_EVENT_STREAM_H

#include "core/event.h"

struct event_group_stats {
	long pending; /* delivered to a member and not yet acknowledged */
	long lag;     /* entries not yet delivered to any member (-1 if unknown) */
	/* When the oldest entry the group has not acknowledged was published (ms since the
	 * epoch, by the stream's clock); 0 when there is none. */
	int64_t oldest_ms;
};

struct event_stream_ops {
	/*
	 * Appends m (event_id, topic, consumer, attempt, outbox_id, payload) to topic's stream,
	 * or to consumer's retry stream of topic when m->consumer is non-empty.
	 */
	enum hex_status (*publish)(void *self, const struct event_msg *m);
	/* Creates group `consumer` on topic's stream and on its retry stream, both read from
	 * their beginning; a group that exists already is fine. */
	enum hex_status (*join)(void *self, const char *topic, const char *consumer);
	/*
	 * Up to max (1..EVENT_BATCH_MAX) entries never delivered to group consumer, from both
	 * its streams, now pending on member; waits up to block_ms (0: do not wait) for the
	 * first. out->items get every field publish() was given plus stream_id. An entry whose
	 * fields cannot be read is still returned, with event_id "" and its raw fields as the
	 * payload, so that the consumer can dead-letter it.
	 */
	enum hex_status (*read)(void *self, const char *topic, const char *consumer,
	                        const char *member, int max, int block_ms, struct event_batch *out);
	/* Up to max entries pending on any member of the group for at least min_idle_ms, now
	 * pending on member (XAUTOCLAIM), from both streams. */
	enum hex_status (*claim_idle)(void *self, const char *topic, const char *consumer,
	                              const char *member, int64_t min_idle_ms, int max,
	                              struct event_batch *out);
	/* Acknowledges m for group consumer (on the stream m came from). */
	enum hex_status (*ack)(void *self, const char *topic, const char *consumer,
	                       const struct event_msg *m);
	enum hex_status (*stats)(void *self, const char *topic, const char *consumer,
	                         struct event_group_stats *out);
};

struct event_stream {
	const struct event_stream_ops *ops;
	void *self;
};

#endif
