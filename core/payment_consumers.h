/*
 * payment_consumers: the consumers of Stripe's payment events (topic payment_events),
 * each an event_handler_fn over the same context:
 *   ledger      posts what the money did: a wallet top-up's success credits the wallet
 *               from Stripe clearing, a membership's success books membership revenue,
 *               a refund reverses the payment's transaction. Each posting's idempotency
 *               key is the payment's ("payment:<id>", "refund:<id>"), so the success and
 *               the checkout completion of one payment post once together. A refund
 *               that arrives before its success is retried until the success is posted.
 *   membership  drops a new member's cached user, durably: the webhook's own delete after
 *               its commit is lost if Redis was down then, this one is retried until done.
 *   notify      one log line per event (where a mail or a push would go).
 * An event about a payment hexd never made (no metadata, unknown PaymentIntent: another
 * integration on the same Stripe account) is ignored; one naming a payment id that does
 * not exist, or that cannot be read, can never succeed and is dead-lettered.
 */
#ifndef HEX_PAYMENT_CONSUMERS_H
#define HEX_PAYMENT_CONSUMERS_H

#include "core/event_consumer.h"
#include "core/ledger_service.h"
#include "core/ports/payment_event_decoder.h"
#include "core/ports/payment_repo.h"
#include "core/ports/user_cache.h"

/* What the handlers share: the handler_ctx of each of their event_consumers. */
struct payment_consumers {
	struct ledger_service ledger;
	struct payment_repo payments;
	struct user_cache cache; /* NULL ops: no cache, nothing to drop */
	struct payment_event_decoder decoder;
};

struct payment_consumer_def {
	const char *name;
	event_handler_fn handle;
};

/* Every consumer of EVENT_TOPIC_PAYMENTS, in the order they are started. */
extern const struct payment_consumer_def payment_consumer_defs[];
extern const int payment_consumer_count;

#endif
