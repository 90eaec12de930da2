/*
 * payment_repo: durable storage of payments, of the requests made to the payment provider
 * for them (request storage), and of the provider's events with their effects.
 *
 * Every write is committed when the call returns HEX_OK and has changed nothing when it
 * returns anything else. Ids that are not canonical UUIDs are HEX_NOT_FOUND on lookups.
 */
#ifndef HEX_PORT_PAYMENT_REPO_H
#define HEX_PORT_PAYMENT_REPO_H

#include "core/ports/payment_gateway.h"

/* A payment with what request storage keeps to retry its provider call safely. */
struct payment_record {
	struct payment payment;
	char client_key[HEX_CLIENT_KEY_MAX + 1]; /* the client's Idempotency-Key, "" for none */
	/* Chosen before the first provider call and reused by every retry of it. */
	char stripe_idempotency_key[HEX_IDEMPOTENCY_KEY_MAX + 1];
	char failure_message[HEX_FAILURE_MESSAGE_MAX + 1]; /* why the provider refused, or "" */
	/* The Checkout Session that sells this payment, and where the buyer pays; "" until
	 * the provider answered, and for a payment made without Checkout. */
	char stripe_checkout_session_id[HEX_STRIPE_ID_MAX + 1];
	char checkout_url[HEX_URL_MAX + 1];
};

/* What apply_event did, for the service to report and to act on after the commit. */
struct payment_event_effect {
	bool duplicate;         /* the event id was recorded before: nothing else happened */
	bool payment_found;     /* the event is about a payment of ours */
	bool status_changed;    /* the payment's status advanced */
	struct payment payment; /* the payment after the event, if payment_found */
	/* The user who just became a member ("" if none): their cache entry is stale. */
	char member_user_id[HEX_ID_LEN + 1];
};

/* What record_membership_event did. */
struct membership_effect {
	bool duplicate; /* the event id was recorded before: nothing else happened */
	bool changed;   /* the user's membership is now different */
};

struct payment_repo_ops {
	/*
	 * Stores rec as given (request storage, before any provider call). HEX_CONFLICT when
	 * the user already has a payment with rec->client_key, or the id or the stripe key
	 * exists. A concurrent insert of the same (user, client key) waits for the first and
	 * then gets HEX_CONFLICT.
	 */
	enum hex_status (*insert)(void *self, const struct payment_record *rec);
	/* The payment of user_id made with client_key; HEX_NOT_FOUND if none. */
	enum hex_status (*find_by_client_key)(void *self, const char *user_id,
	                                      const char *client_key, struct payment_record *out);
	enum hex_status (*get)(void *self, const char *id, struct payment *out);
	/* The payment whose PaymentIntent is intent_id; HEX_NOT_FOUND if none. */
	enum hex_status (*get_by_intent)(void *self, const char *intent_id, struct payment *out);
	/*
	 * Records the PaymentIntent the provider created for payment id (intent id and client
	 * secret); the status becomes status only if that advances it (an event may already
	 * have moved it on). out gets the payment as stored.
	 */
	enum hex_status (*attach_intent)(void *self, const char *id, const char *intent_id,
	                                 const char *client_secret, enum payment_status status,
	                                 int64_t now_us, struct payment *out);
	/*
	 * Records the Checkout Session the provider opened for payment id and its URL (both
	 * non-empty). HEX_CONFLICT when another payment already has session_id. out gets the
	 * record as stored.
	 */
	enum hex_status (*attach_checkout)(void *self, const char *id, const char *session_id,
	                                   const char *url, int64_t now_us,
	                                   struct payment_record *out);
	/*
	 * The provider refused payment id for good: status failed if that advances it, and
	 * message (safe to show) kept to answer retries the same way. out as stored.
	 */
	enum hex_status (*mark_failed)(void *self, const char *id, const char *message,
	                               int64_t now_us, struct payment *out);
	/* One page of f, newest first. */
	enum hex_status (*list)(void *self, const struct payment_filter *f,
	                        struct payment_page *out);
	/*
	 * In ONE transaction: records the event by ev->id (a duplicate id: out->duplicate,
	 * nothing else changes, HEX_OK); finds its payment (by ev->payment_id, else by
	 * ev->intent_id) and locks it; records ev->intent_id on a payment that has none; moves
	 * the status to plan->target if payment_status_advances(); if plan->grants_membership
	 * and the payment is a membership purchase, makes its owner a member; writes one outbox
	 * row (topic "payment_events", payload ev->payload) for every event recorded, also one
	 * about a payment we do not know. On failure nothing at all is recorded.
	 */
	enum hex_status (*apply_event)(void *self, const struct payment_event *ev,
	                               const struct payment_event_plan *plan, int64_t now_us,
	                               struct payment_event_effect *out);
	/*
	 * In one transaction: records event_id (unless NULL; a duplicate: out->duplicate,
	 * nothing else changes) and sets the membership of user_id to m. HEX_NOT_FOUND (and
	 * nothing recorded) if the user does not exist.
	 */
	enum hex_status (*record_membership_event)(void *self, const char *event_id,
	                                           const char *user_id, enum membership m,
	                                           int64_t now_us, struct membership_effect *out);
	/*
	 * Up to limit (1..HEX_LIST_MAX) payments whose status is unsettled
	 * (payment_status_unsettled()) and that were created before created_before_us,
	 * oldest first; has_more when more follow.
	 */
	enum hex_status (*stuck)(void *self, int64_t created_before_us, int limit,
	                         struct payment_page *out);
	/*
	 * The provider's events that name payment payment_id (by metadata.payment_id), oldest
	 * first (by their own created time, then arrival); none is HEX_OK with count 0.
	 */
	enum hex_status (*events)(void *self, const char *payment_id,
	                          struct payment_event_list *out);
};

struct payment_repo {
	const struct payment_repo_ops *ops;
	void *self;
};

#endif
