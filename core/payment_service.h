/*
 * payment_service: payments through the payment provider, with request storage (the
 * request and its provider idempotency key are committed before the provider is called,
 * so that a retry can never charge twice), the effects of the provider's events, reads,
 * and the old membership hook. See docs/PAYMENTS.md.
 */
#ifndef HEX_PAYMENT_SERVICE_H
#define HEX_PAYMENT_SERVICE_H

#include "core/ports/clock.h"
#include "core/ports/id_source.h"
#include "core/ports/payment_gateway.h"
#include "core/ports/payment_repo.h"
#include "core/ports/user_cache.h"

struct payment_service {
	struct payment_repo repo;
	struct payment_gateway gateway;
	/* The user cache of the user service: membership changes delete entries from it. */
	struct user_cache cache;
	struct clock clock;
	struct id_source ids;
	/*
	 * What a membership bought through Checkout costs and where the provider sends the
	 * buyer afterwards; from configuration, borrowed, checked at start-up. A service
	 * without them answers checkouts with HEX_INTERNAL.
	 */
	int64_t membership_price; /* minor units of membership_currency */
	const char *membership_currency;
	const char *checkout_success_url;
	const char *checkout_cancel_url;
};

/* A client's request for a payment; strings are borrowed. */
struct payment_create_request {
	const char *user_id; /* the authenticated caller */
	int64_t amount;
	const char *currency;
	const char *purpose;
	const char *client_key;   /* Idempotency-Key header, may be NULL */
	const char *trace_parent; /* W3C traceparent to pass on, may be NULL */
};

/* A client's request for a membership Checkout Session; strings are borrowed. */
struct payment_checkout_request {
	const char *user_id;      /* the authenticated caller */
	const char *client_key;   /* Idempotency-Key header, may be NULL */
	const char *trace_parent; /* W3C traceparent to pass on, may be NULL */
};

/* What a client asks to list, before the rules; strings are borrowed. */
struct payment_list_request {
	const char *user_id; /* NULL: the caller's payments (an admin's: everyone's) */
	const char *status;  /* NULL: any status */
	int limit;           /* 1..HEX_LIST_MAX */
	const struct payment_cursor *after;
};

/*
 * Creates a payment and its PaymentIntent. Checks amount, currency, purpose and the
 * client key first (HEX_INVALID naming the field; nothing stored). With a client key, a
 * repeat of the same request answers what the first one did (the same payment, or the same
 * refusal) and never creates a second intent; the same key with another amount, currency
 * or purpose is HEX_CONFLICT with err->code "idempotency_key_reused". HEX_UNAVAILABLE when
 * the provider could not be reached: the payment stays stored, and a retry with the same
 * client key asks the provider again with the same provider key. HEX_INVALID when the
 * provider refused the payment (it is then failed).
 */
enum hex_status payment_service_create(struct payment_service *s,
                                       const struct payment_create_request *req,
                                       struct payment *out, struct hex_err *err) HEX_MUST_CHECK;

/*
 * Creates a membership payment (price and currency from the service) and the provider's
 * Checkout Session that sells it, with the same request storage as payment_service_create:
 * the payment and its provider key are committed before the provider is called. With a
 * client key, a repeat answers the same session (or the same refusal) and opens no second
 * one; a key that was used for a payment made without Checkout is HEX_CONFLICT with
 * err->code "idempotency_key_reused". HEX_UNAVAILABLE when the provider could not be
 * reached (a retry with the same client key asks again with the same provider key);
 * HEX_INVALID when the provider refused (the payment is then failed). On HEX_OK,
 * out_session_id gets the session id and out_url the page where the buyer pays.
 */
enum hex_status
payment_service_checkout(struct payment_service *s, const struct payment_checkout_request *req,
                         struct payment *out_payment, char out_session_id[HEX_STRIPE_ID_MAX + 1],
                         char out_url[HEX_URL_MAX + 1], struct hex_err *err) HEX_MUST_CHECK;

/*
 * Applies a verified provider event in one transaction (see payment_repo.apply_event).
 * *duplicate is true when the event id was seen before (HEX_OK, nothing changed). An
 * event about an unknown payment or of an unknown type is recorded and HEX_OK. HEX_INVALID
 * (field "id") for an event without id; HEX_UNAVAILABLE / HEX_INTERNAL when it could not be
 * recorded (nothing was: the provider will deliver it again).
 */
enum hex_status payment_service_apply_event(struct payment_service *s,
                                            const struct payment_event *ev, bool *duplicate,
                                            struct hex_err *err) HEX_MUST_CHECK;

/*
 * The payment id for a caller (caller_user_id may be NULL for an admin tool). HEX_NOT_FOUND
 * for an unknown or malformed id, HEX_FORBIDDEN unless the caller owns it or is an admin.
 */
enum hex_status payment_service_get(struct payment_service *s, const char *caller_user_id,
                                    bool caller_is_admin, const char *id, struct payment *out,
                                    struct hex_err *err) HEX_MUST_CHECK;

/*
 * A page of payments, newest first. A non-admin sees only their own (another user_id is
 * HEX_FORBIDDEN). HEX_INVALID names limit, user_id, status or cursor.
 */
enum hex_status payment_service_list(struct payment_service *s, const char *caller_user_id,
                                     bool caller_is_admin, const struct payment_list_request *rq,
                                     struct payment_page *out, struct hex_err *err) HEX_MUST_CHECK;

/*
 * For operators: up to limit (1..HEX_LIST_MAX, else HEX_INVALID "limit") payments not
 * settled PAYMENT_STUCK_AFTER_S after they were made, oldest first.
 */
enum hex_status payment_service_stuck(struct payment_service *s, int limit,
                                      struct payment_page *out, struct hex_err *err) HEX_MUST_CHECK;

/*
 * For operators: the provider's events about payment id, oldest first. HEX_NOT_FOUND for a
 * malformed id (as payment_service_get); an id that names no payment has no events.
 */
enum hex_status payment_service_events(struct payment_service *s, const char *id,
                                       struct payment_event_list *out,
                                       struct hex_err *err) HEX_MUST_CHECK;

/*
 * The old service's "membership_status_updated" hook: sets user_id's membership to status
 * ("member" or "free"). Idempotent on event_id (NULL: no idempotency; a duplicate: HEX_OK,
 * *duplicate true, nothing changes). The user's cache entry is deleted after a change.
 * HEX_INVALID names event_id, user_id or status; HEX_NOT_FOUND for an unknown user.
 * duplicate may be NULL.
 */
enum hex_status payment_service_membership_hook(struct payment_service *s, const char *event_id,
                                                const char *user_id, const char *status,
                                                bool *duplicate,
                                                struct hex_err *err) HEX_MUST_CHECK;

#endif
