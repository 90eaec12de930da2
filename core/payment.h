/* payment.h: the payment domain type and its rules (amounts, currencies, state order). */
#ifndef HEX_PAYMENT_H
#define HEX_PAYMENT_H

#include "core/user.h"

#define HEX_STRIPE_ID_MAX     255 /* pi_..., cs_..., evt_... */
#define HEX_CLIENT_SECRET_MAX 255
#define HEX_URL_MAX           2048
#define HEX_AMOUNT_MAX        99999999 /* Stripe's limit for most currencies: 999,999.99 */

enum payment_purpose { PURPOSE_WALLET_TOP_UP = 0, PURPOSE_MEMBERSHIP };

/*
 * Declared in the order a payment may move: a status only ever changes to a later one,
 * whatever order Stripe's events arrive in (failed -> succeeded is a retry with another
 * card; nothing leaves refunded, nothing goes back from succeeded to failed).
 */
enum payment_status {
	PAYMENT_REQUIRES_PAYMENT_METHOD = 0,
	PAYMENT_PROCESSING,
	PAYMENT_FAILED,
	PAYMENT_SUCCEEDED,
	PAYMENT_REFUNDED,
};

struct payment {
	char id[HEX_ID_LEN + 1];
	char user_id[HEX_ID_LEN + 1];
	int64_t amount;   /* minor units of currency, > 0 */
	char currency[4]; /* ISO 4217, lower case */
	enum payment_purpose purpose;
	enum payment_status status;
	char stripe_payment_intent_id[HEX_STRIPE_ID_MAX + 1]; /* "" until Stripe answered */
	char client_secret[HEX_CLIENT_SECRET_MAX + 1];        /* "" until Stripe answered */
	int64_t created_at_us;
	int64_t updated_at_us;
};

/* What a Stripe event means for us, parsed from its JSON by the Stripe adapter. */
enum payment_event_kind {
	EVENT_INTENT_SUCCEEDED = 0, /* payment_intent.succeeded */
	EVENT_INTENT_FAILED,        /* payment_intent.payment_failed */
	EVENT_CHECKOUT_COMPLETED,   /* checkout.session.completed */
	EVENT_CHARGE_REFUNDED,      /* charge.refunded */
	EVENT_OTHER,                /* recorded and ignored */
};

struct payment_event {
	char id[HEX_STRIPE_ID_MAX + 1]; /* evt_... : the idempotency key of delivery */
	char type[64];
	enum payment_event_kind kind;
	char intent_id[HEX_STRIPE_ID_MAX + 1]; /* the PaymentIntent it is about, or "" */
	char payment_id[HEX_ID_LEN + 1];       /* metadata.payment_id, or "" */
	int64_t amount;                        /* amount received / refunded, minor units */
	char currency[4];
	int64_t created_s;   /* event.created */
	const char *payload; /* the raw JSON body, borrowed */
	size_t payload_len;
};

/* HEX_INVALID naming "amount" unless 0 < amount <= HEX_AMOUNT_MAX. */
enum hex_status payment_amount_check(int64_t amount, struct hex_err *err) HEX_MUST_CHECK;
/* Lower-cases a three-letter code into out[4]; HEX_INVALID naming "currency" otherwise
 * or when the currency is not one hexd accepts (see payment.c). */
enum hex_status payment_currency_normalize(const char *in, char out[4],
                                           struct hex_err *err) HEX_MUST_CHECK;
/* True when a payment in status `from` may move to `to`. */
bool payment_status_advances(enum payment_status from, enum payment_status to);

const char *payment_purpose_name(enum payment_purpose p);
bool payment_purpose_parse(const char *s, enum payment_purpose *out);
const char *payment_status_name(enum payment_status s);
bool payment_status_parse(const char *s, enum payment_status *out);

/* ---- added with the payment service (issue 4) ---- */

#define HEX_CLIENT_KEY_MAX      255 /* our own Idempotency-Key header, like Stripe's */
#define HEX_EVENT_ID_MAX        255 /* membership hook event ids */
#define HEX_FAILURE_MESSAGE_MAX 199 /* why the provider refused, as hex_err.message holds */

/* A payment id is a canonical UUID text (either case). */
bool payment_id_valid(const char *id);
/* A provider id (pi_..., cs_...): 1..HEX_STRIPE_ID_MAX letters, digits and '_', so that
 * it can go into a URL path as it is. */
bool payment_provider_id_valid(const char *id);

/*
 * HEX_OK for 1..HEX_CLIENT_KEY_MAX printable ASCII characters without spaces; else
 * HEX_INVALID naming "idempotency_key".
 */
enum hex_status payment_client_key_check(const char *key, struct hex_err *err) HEX_MUST_CHECK;

/* What an event of a kind does to the payment it is about (see payment_event_plan_of). */
struct payment_event_plan {
	bool has_target;            /* false: the event changes no payment */
	enum payment_status target; /* applied only if payment_status_advances() */
	/*
	 * The owner of a membership purchase becomes a member. Applied whether or not the
	 * status advanced, so that a success that arrives after the refund still counts and
	 * every delivery order ends in the same state.
	 */
	bool grants_membership;
};

void payment_event_plan_of(enum payment_event_kind kind, struct payment_event_plan *out);
const char *payment_event_kind_name(enum payment_event_kind k);

/* Keyset position in the list order (created_at DESC, id DESC). */
struct payment_cursor {
	int64_t created_at_us;
	char id[HEX_ID_LEN + 1];
};

/* What the repository lists: already checked and normalised by the service. */
struct payment_filter {
	const char *user_id; /* lower-case owner id, or NULL for every user's payments */
	int status;          /* -1 for any, else enum payment_status */
	int limit;           /* 1..HEX_LIST_MAX */
	const struct payment_cursor *after; /* NULL for the first page */
};

struct payment_page {
	struct payment items[HEX_LIST_MAX];
	int count;
	bool has_more; /* the next cursor is the last item's position */
};

/* ---- added with the admin port (issue 6) ---- */

/* A payment that has not settled this long after it was made needs an operator's look. */
#define PAYMENT_STUCK_AFTER_S 300

/* Not settled: no money has moved yet and the buyer or the provider still has to act. */
bool payment_status_unsettled(enum payment_status s);

/* One of the provider's events as recorded about a payment. */
struct payment_event_record {
	char id[HEX_STRIPE_ID_MAX + 1];
	char type[64];
	int64_t created_at_us;  /* the event's own "created" */
	int64_t received_at_us; /* when the webhook took it */
};

#define PAYMENT_EVENTS_MAX 50

/* A payment's events, oldest first; has_more when there were more than fit. */
struct payment_event_list {
	struct payment_event_record items[PAYMENT_EVENTS_MAX];
	int count;
	bool has_more;
};

#endif
