/*
 * outbox_repo: the outbox side of the event pipeline. Rows are written by the state
 * changes themselves (in their own transactions); the relay claims them, publishes them,
 * and marks them published. Several relays may run at once: a claim skips rows another
 * relay holds (FOR UPDATE SKIP LOCKED), so each row is published by one of them.
 */
#ifndef HEX_PORT_OUTBOX_REPO_H
#define HEX_PORT_OUTBOX_REPO_H

#include "core/event.h"

struct outbox_lag {
	long unpublished;      /* rows waiting to be published (due or not) */
	int64_t oldest_age_us; /* age of the oldest due unpublished row; 0 if none */
};

struct outbox_repo_ops {
	/*
	 * Begins a transaction and locks up to limit (1..EVENT_BATCH_MAX) unpublished rows
	 * that are due (available at or before now_us), oldest first, skipping rows another
	 * transaction holds; out gets them. With out->n == 0 the transaction is already over.
	 * Otherwise the caller ends it with exactly one of published() or release().
	 */
	enum hex_status (*claim)(void *self, int limit, int64_t now_us, struct event_batch *out);
	/* Marks every row of b published at now_us and commits. */
	enum hex_status (*published)(void *self, const struct event_batch *b, int64_t now_us);
	/* Rolls the claim back: the rows stay unpublished for the next claim. */
	void (*release)(void *self);
	enum hex_status (*lag)(void *self, int64_t now_us, struct outbox_lag *out);
};

struct outbox_repo {
	const struct outbox_repo_ops *ops;
	void *self;
};

#endif
