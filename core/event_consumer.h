/*
 * event_consumer: one consumer group of the pipeline (ledger, membership, notify) as one
 * member of it runs it. Each event is applied in one transaction that also records
 * (consumer, event_id), and acknowledged on the stream only after that commit; a
 * redelivered event is acknowledged without running again. A failed event is retried
 * under the retry policy through the outbox, or dead-lettered at once when it can never
 * succeed (the handler says HEX_INVALID: unparseable, about an account that does not
 * exist, ...). An event is never acknowledged before it was applied, retried or
 * dead-lettered: a member that dies leaves it pending, and claim_idle hands it to another.
 */
#ifndef HEX_EVENT_CONSUMER_H
#define HEX_EVENT_CONSUMER_H

#include <stdatomic.h>

#include "core/ports/clock.h"
#include "core/ports/event_inbox.h"
#include "core/ports/event_stream.h"

/*
 * Applies m inside the consumer's transaction (its repositories share the inbox's
 * session). HEX_OK: applied (or nothing to do). HEX_INVALID: can never succeed, so no
 * retry. Anything else: may succeed later. err->message says why, for the attempt history.
 */
typedef enum hex_status (*event_handler_fn)(void *ctx, const struct event_msg *m,
                                            struct hex_err *err);

struct event_consumer_stats {
	atomic_long applied;    /* committed */
	atomic_long duplicates; /* applied before: acknowledged only */
	atomic_long retried;    /* failed, scheduled again */
	atomic_long dead;       /* failed, dead-lettered */
	atomic_long stalled;    /* left pending (database or stream down) */
};

struct event_consumer {
	const char *name;   /* the consumer group: event_consumer_name_valid() */
	const char *topic;  /* EVENT_TOPIC_PAYMENTS */
	const char *member; /* this member's unique name in the group */
	struct event_inbox inbox;
	struct event_stream stream;
	struct clock clock;
	struct event_retry_policy retry;
	int64_t claim_idle_ms; /* pending this long on a member: taken over */
	int batch;             /* entries per read, 1..EVENT_BATCH_MAX */
	int block_ms;          /* how long a read waits for new entries */
	event_handler_fn handle;
	void *handler_ctx;
	uint64_t seed;                      /* jitter: any value, a different one per member */
	struct event_consumer_stats *stats; /* may be NULL; shared with whoever reports */
};

/* Runs one entry to its end (applied, duplicate, retried or dead-lettered). HEX_OK then;
 * otherwise it stays pending and the status says why (database or stream down). */
enum hex_status event_consumer_handle(struct event_consumer *c, struct event_msg *m);

/*
 * One round: takes over entries idle on other members, then reads new ones (waiting up to
 * block_ms), and handles each in order. *handled gets how many were run to their end.
 * Stops at the first entry that cannot be (its status is returned; the rest stay pending).
 */
enum hex_status event_consumer_poll(struct event_consumer *c, int *handled) HEX_MUST_CHECK;

#endif
