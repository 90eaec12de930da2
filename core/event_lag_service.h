/*
 * event_lag_service: how far behind the payment-event pipeline is, for operators (EVENTS
 * LAG, the events part of STATS): rows waiting in the outbox and the age of the oldest
 * due one, open dead letters (all from the database), and per consumer of
 * payment_consumer_defs what the stream holds for it (from Redis).
 */
#ifndef HEX_EVENT_LAG_SERVICE_H
#define HEX_EVENT_LAG_SERVICE_H

#include "core/ports/clock.h"
#include "core/ports/dead_letter_repo.h"
#include "core/ports/event_stream.h"
#include "core/ports/outbox_repo.h"

#define EVENT_LAG_CONSUMERS_MAX 8

struct event_consumer_lag {
	char name[EVENT_CONSUMER_MAX + 1];
	bool known;   /* false: the stream could not say (no Redis configured, or Redis down) */
	long pending; /* delivered, not acknowledged */
	long lag;     /* on the stream, not delivered yet; -1 if Redis does not know */
};

struct event_lag {
	long outbox_unpublished;
	int64_t oldest_unpublished_us; /* age of the oldest due unpublished row; 0 if none */
	long dead_letters_open;
	int nconsumers; /* 0 unless asked for */
	struct event_consumer_lag consumers[EVENT_LAG_CONSUMERS_MAX];
};

struct event_lag_service {
	struct outbox_repo outbox;
	struct dead_letter_repo dead;
	struct event_stream stream; /* NULL ops: no Redis configured */
	struct clock clock;
};

/*
 * Fills out; with consumers, also the stream's numbers of every payment consumer. The
 * stream being unreachable is not an error (those consumers are not known): a stuck
 * pipeline is exactly when an operator asks. HEX_UNAVAILABLE when the database is.
 */
enum hex_status event_lag_service_read(struct event_lag_service *s, bool consumers,
                                       struct event_lag *out, struct hex_err *err) HEX_MUST_CHECK;

#endif
