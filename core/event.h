/*
 * event: what the payment-event pipeline carries (docs/EVENTS.md). A state change writes
 * an outbox row in its own transaction; a relay publishes outbox rows to a stream; each
 * consumer (a named group on the stream) runs every event once, in one transaction that
 * also records (consumer, event id). A failed attempt is retried later through the outbox,
 * addressed to the one consumer that failed, until the retry policy gives up; the event
 * then waits in dead_letters for an operator.
 */
#ifndef HEX_EVENT_H
#define HEX_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/hex.h"

#define EVENT_ID_MAX        255
#define EVENT_TOPIC_MAX     63
#define EVENT_CONSUMER_MAX  31
#define EVENT_STREAM_ID_MAX 63
#define EVENT_ERROR_MAX     511
#define EVENT_BATCH_MAX     64

/* The topic of Stripe's payment events (written by the webhook). */
#define EVENT_TOPIC_PAYMENTS "payment_events"

/* One event on its way from the outbox to a consumer. */
struct event_msg {
	int64_t outbox_id;                       /* the outbox row it was published from */
	char stream_id[EVENT_STREAM_ID_MAX + 1]; /* the stream entry, "" before publishing */
	char event_id[EVENT_ID_MAX + 1];
	char topic[EVENT_TOPIC_MAX + 1];
	/* "" for every consumer of topic; else a retry or replay for that consumer only. */
	char consumer[EVENT_CONSUMER_MAX + 1];
	int attempt;   /* 1 for the first delivery; a retry carries the next number */
	char *payload; /* owned (malloc), NUL-terminated */
	size_t payload_len;
};

struct event_batch {
	int n;
	struct event_msg items[EVENT_BATCH_MAX];
};

/* Frees every payload and empties b. */
void event_batch_clear(struct event_batch *b);

/* How often and how late a failed event is tried again. */
struct event_retry_policy {
	int max_attempts; /* >= 1: attempts in all, the first one included */
	int base_ms;      /* the delay before the second attempt, before jitter */
	int max_ms;       /* no delay grows beyond this */
};

/*
 * The delay before attempt `attempt + 1` after attempt `attempt` failed: exponential
 * (base_ms * 2^(attempt-1), capped at max_ms) with "equal jitter": half of it fixed, the
 * other half scaled by random (0..UINT32_MAX). -1 when attempt was the last one allowed.
 */
int64_t event_retry_delay_ms(const struct event_retry_policy *p, int attempt, uint32_t random);

/* True for a consumer name the pipeline accepts: 1..EVENT_CONSUMER_MAX of [a-z0-9_]. */
bool event_consumer_name_valid(const char *name);

#endif
