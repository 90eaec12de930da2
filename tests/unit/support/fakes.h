/*
 * fakes: in-memory fakes of every core port, for unit tests of the services.
 *
 * Each fake counts its calls per operation, writes "<fake>.<op>" to a shared call log
 * (so tests can check the order of effects, e.g. the cache is forgotten after the write)
 * and can be told to fail its next call with a chosen status. The user repository and
 * the refresh repository share one "database": revoking a user's sessions revokes its
 * refresh tokens and deleting a user deletes them, as the real schema does.
 *
 * Nothing here allocates except fake_world_new(); every fake lives inside its struct.
 */
#ifndef HEX_TESTS_UNIT_FAKES_H
#define HEX_TESTS_UNIT_FAKES_H

#include "core/auth_service.h"
#include "core/message_service.h"
#include "core/payment_service.h"
#include "core/user_service.h"

#define FAKE_MAX_OPS      12
#define FAKE_MAX_USERS    128
#define FAKE_MAX_TOKENS   128
#define FAKE_CACHE_SLOTS  32
#define FAKE_LIMITER_KEYS 32
#define FAKE_MAX_MESSAGES 256
#define FAKE_T0_S         1800000000LL /* the fake clock's start: 2027-01-15, a minute boundary */

/* The calls every fake made, in order: "repo.get repo.update cache.del ". */
struct fake_log {
	char text[8192];
	size_t len;
	bool overflow;
};

void fake_log_clear(struct fake_log *l);
/* True if seq ("repo.update cache.del") occurs in the log as whole entries. */
bool fake_log_has(const struct fake_log *l, const char *seq);

/* What every fake shares: its name, its operations, call counts and the armed fault. */
struct fake_base {
	const char *name;       /* prefix in the call log: "repo", "cache", ... */
	const char *const *ops; /* operation names; the index is the op */
	int nops;
	int calls[FAKE_MAX_OPS];
	const char *fail_op; /* NULL: any op */
	enum hex_status fail_st;
	bool fail_armed;
	struct fake_log *log; /* may be NULL */
};

/*
 * The next call of op (NULL: of any op) of this fake fails with st. Aborts the test on an
 * unknown op name, so that a typo cannot make a fault silently never fire.
 */
void fake_fail_next(struct fake_base *b, const char *op, enum hex_status st);
/* True while an armed fault has not fired yet. */
bool fake_fail_pending(const struct fake_base *b);
/* Calls of op so far; aborts on an unknown op name. */
int fake_calls(const struct fake_base *b, const char *op);
void fake_calls_reset(struct fake_base *b);

/* clock: settable; starts at FAKE_T0_S. */
struct fake_clock {
	int64_t now_us;
};
struct clock fake_clock_port(struct fake_clock *c);
void fake_clock_advance_s(struct fake_clock *c, int64_t s);
int64_t fake_clock_now_s(const struct fake_clock *c);

/* id_source: sequential valid UUIDs 00000000-0000-4000-8000-000000000001, ...2, ... */
struct fake_ids {
	unsigned long long issued;
};
struct id_source fake_ids_port(struct fake_ids *f);

/* password_hasher: hash is "h:" + password (a digest for long ones); ops hash, verify. */
struct fake_hasher {
	struct fake_base base;
	char last_verified_hash[HEX_HASH_MAX]; /* the hash the last verify compared against */
};
struct password_hasher fake_hasher_port(struct fake_hasher *h);
/* The hash the fake writes for password, into out (size HEX_HASH_MAX). */
void fake_hasher_hash_of(const char *password, char out[HEX_HASH_MAX]);

/* token_signer: readable "fake|typ|sub|jti|role|ver|iat|exp|iss|sig"; ops sign, verify. */
struct fake_signer {
	struct fake_base base;
};
struct token_signer fake_signer_port(struct fake_signer *s);
/* Decodes token without checking signature, type or expiry; false if malformed. */
bool fake_signer_peek(const char *token, struct token_claims *out);
/* Signs c with an arbitrary issuer (the real one is "hex") into out (HEX_TOKEN_MAX). */
void fake_signer_sign_as(const char *iss, const struct token_claims *c, char out[HEX_TOKEN_MAX]);

/* refresh_repo: ops insert, rotate, revoke_family. */
struct fake_refresh_row {
	struct refresh_record rec;
	bool used;
	bool revoked;
};

struct fake_refresh_repo {
	struct fake_base base;
	struct fake_refresh_row rows[FAKE_MAX_TOKENS];
	int count;
};
struct refresh_repo fake_refresh_repo_port(struct fake_refresh_repo *r);
/* The row of jti, or NULL. The pointer is valid until the next write. */
const struct fake_refresh_row *fake_refresh_repo_find(const struct fake_refresh_repo *r,
                                                      const char *jti);
/* Tokens of user_id neither used, revoked nor expired at now_us. */
int fake_refresh_repo_live(const struct fake_refresh_repo *r, const char *user_id, int64_t now_us);

/*
 * user_repo: ops insert, get, get_by_email, get_hash, update, remove, list,
 * revoke_sessions. refresh (may be NULL) is the refresh table of the same database.
 */
struct fake_user_row {
	struct user user;
	char hash[HEX_HASH_MAX];
};

struct fake_message_repo;

struct fake_user_repo {
	struct fake_base base;
	struct fake_user_row rows[FAKE_MAX_USERS];
	int count;
	struct fake_refresh_repo *refresh;
	struct fake_message_repo *messages; /* may be NULL; removing a user removes them */
};
struct user_repo fake_user_repo_port(struct fake_user_repo *r);
/* The row of id, or NULL. The pointer is valid until the next write. */
const struct fake_user_row *fake_user_repo_find(const struct fake_user_repo *r, const char *id);

/* user_cache: ops get, put, del. A cache that is down answers HEX_UNAVAILABLE to get. */
struct fake_cache_slot {
	bool used;
	struct user user;
};

struct fake_user_cache {
	struct fake_base base;
	bool down;
	struct fake_cache_slot slots[FAKE_CACHE_SLOTS];
};
struct user_cache fake_user_cache_port(struct fake_user_cache *c);
/* Reads the entry of id without counting a call; false if absent. */
bool fake_user_cache_peek(const struct fake_user_cache *c, const char *id, struct user *out);
/* Stores u without counting a call. */
void fake_user_cache_store(struct fake_user_cache *c, const struct user *u);

/*
 * rate_limiter: op hit. Fixed windows aligned on multiples of window_s on the fake clock,
 * like the real limiter; limit_override > 0 replaces the limit the caller passes.
 */
struct fake_limiter_key {
	char key[HEX_EMAIL_MAX + 64];
	int64_t window_start_s;
	int count;
};

struct fake_rate_limiter {
	struct fake_base base;
	struct fake_clock *clock;
	int limit_override;
	struct fake_limiter_key keys[FAKE_LIMITER_KEYS];
	int nkeys;
	char last_key[HEX_EMAIL_MAX + 64];
};
struct rate_limiter fake_rate_limiter_port(struct fake_rate_limiter *l);

/*
 * message_repo: ops insert, get, update_body, remove, list. users (may be NULL) is the
 * users table of the same database: insert refuses an owner it lacks (HEX_NOT_FOUND), as
 * the foreign key does. The search is a stand-in for full text search: every
 * space-separated term of the query occurs in the body, ignoring ASCII case.
 */
struct fake_message_repo {
	struct fake_base base;
	struct message rows[FAKE_MAX_MESSAGES]; /* bodies owned by the fake */
	int count;
	struct fake_user_repo *users;
	/* The filter of the last list call, copied, so that tests see what the service asked. */
	struct message_filter last_filter;
	char last_user_id[HEX_ID_LEN + 1];
	char last_query[4 * HEX_MESSAGE_QUERY_MAX + 1];
	struct message_cursor last_after;
};
struct message_repo fake_message_repo_port(struct fake_message_repo *r);
/* The row of id, or NULL. The pointer is valid until the next write. */
const struct message *fake_message_repo_find(const struct fake_message_repo *r, const char *id);
/* Stores a copy of m without counting a call (test set-up). */
void fake_message_repo_store(struct fake_message_repo *r, const struct message *m);
/* Frees every stored body and empties the repository. */
void fake_message_repo_reset(struct fake_message_repo *r);

/*
 * payment_repo: ops insert, find_by_client_key, get, attach_intent, mark_failed, list,
 * apply_event, record_membership_event, attach_checkout. users (may be NULL) is the users table of
 * the same database: membership changes write it directly (no user repo call counted), as the real
 * adapter does in the same transaction. A fault armed on apply_event or
 * record_membership_event fires before anything changes (the transaction never happened).
 */
#define FAKE_MAX_PAYMENTS       64
#define FAKE_MAX_PAYMENT_EVENTS 96
#define FAKE_PAYLOAD_MAX        512

struct fake_payment_event_row {
	char id[HEX_STRIPE_ID_MAX + 1];
	enum payment_event_kind kind;
};

struct fake_outbox_row {
	char event_id[HEX_STRIPE_ID_MAX + 1];
	char topic[32];
	char payload[FAKE_PAYLOAD_MAX];
};

struct fake_membership_event_row {
	char event_id[HEX_EVENT_ID_MAX + 1];
	char user_id[HEX_ID_LEN + 1];
	enum membership membership;
};

struct fake_payment_repo {
	struct fake_base base;
	struct payment_record rows[FAKE_MAX_PAYMENTS];
	int count;
	struct fake_payment_event_row events[FAKE_MAX_PAYMENT_EVENTS];
	int nevents;
	struct fake_outbox_row outbox[FAKE_MAX_PAYMENT_EVENTS];
	int noutbox;
	struct fake_membership_event_row membership_events[FAKE_MAX_PAYMENT_EVENTS];
	int nmembership_events;
	struct fake_user_repo *users;
	/*
	 * Armed: the next insert first stores racer (no call counted), as a concurrent request
	 * with the same client key would have done between our lookup and our insert.
	 */
	bool race_armed;
	struct payment_record racer;
	/* The filter of the last list call, copied. */
	struct payment_filter last_filter;
	char last_user_id[HEX_ID_LEN + 1];
	struct payment_cursor last_after;
};
struct payment_repo fake_payment_repo_port(struct fake_payment_repo *r);
/* The stored record of payment id, or NULL. Valid until the next write. */
const struct payment_record *fake_payment_repo_find(const struct fake_payment_repo *r,
                                                    const char *id);
/* Stores a copy of rec without counting a call (test set-up). */
void fake_payment_repo_store(struct fake_payment_repo *r, const struct payment_record *rec);
/* Outbox rows of event_id. */
int fake_payment_repo_outbox_count(const struct fake_payment_repo *r, const char *event_id);

/*
 * payment_gateway: ops create_intent, create_checkout, retrieve_intent. Behaves like
 * Stripe's idempotency: the first call with a key creates an intent; a later call with the
 * same key and parameters answers the same intent; with other parameters HEX_CONFLICT.
 * A fault armed with fake_fail_next() fires before the provider acts (a request that never
 * arrived); lose_next_answer makes the next create act and then answer HEX_UNAVAILABLE
 * (a timeout after the provider created the intent). An armed HEX_INVALID carries
 * refusal as its message. When storage is set, every create_intent fails the test unless
 * its payment is already stored there with the same provider key and parameters.
 */
#define FAKE_GATEWAY_MAX 64

struct fake_gateway_intent {
	struct gateway_intent_request req;
	struct gateway_intent intent;
};

/* A Checkout Session the "provider" opened; create_checkout keeps the same promises. */
struct fake_gateway_session {
	struct gateway_checkout_request req;
	struct gateway_checkout session;
};

struct fake_gateway {
	struct fake_base base;
	struct fake_gateway_intent intents[FAKE_GATEWAY_MAX]; /* created at the "provider" */
	int nintents;
	struct fake_gateway_session sessions[FAKE_GATEWAY_MAX];
	int nsessions;
	/* The idempotency key of every create call (intent or checkout), in order. */
	char keys_seen[FAKE_GATEWAY_MAX][HEX_IDEMPOTENCY_KEY_MAX + 1];
	int nkeys_seen;
	char last_trace_parent[56];
	bool lose_next_answer;
	char refusal[HEX_FAILURE_MESSAGE_MAX + 1];
	enum payment_status intent_status; /* what new intents report; default the first */
	struct fake_payment_repo *storage;
};
struct payment_gateway fake_gateway_port(struct fake_gateway *g);

/* The checkout settings of the wired world's payment service. */
#define FAKE_MEMBERSHIP_PRICE     999
#define FAKE_MEMBERSHIP_CURRENCY  "usd"
#define FAKE_CHECKOUT_SUCCESS_URL "http://127.0.0.1:5000/checkout/success"
#define FAKE_CHECKOUT_CANCEL_URL  "http://127.0.0.1:5000/checkout/cancel"

/*
 * Every fake, wired into a user service, an auth service (default policy, prepared), a
 * message service and a payment service.
 */
struct fake_world {
	struct fake_log log;
	struct fake_clock clock;
	struct fake_ids ids;
	struct fake_hasher hasher;
	struct fake_signer signer;
	struct fake_user_repo repo;
	struct fake_user_cache cache;
	struct fake_refresh_repo refresh;
	struct fake_rate_limiter limiter;
	struct fake_message_repo messages_repo;
	struct fake_payment_repo payments_repo; /* its users are repo's rows */
	struct fake_gateway gateway;            /* checks request storage in payments_repo */
	struct user_service users;
	struct auth_service auth;
	struct message_service messages;
	struct payment_service payments; /* cache is the user service's cache */
};

/* A new wired world with zeroed counters and an empty log; free with fake_world_free(). */
struct fake_world *fake_world_new(void);
void fake_world_free(struct fake_world *w);
/* Zeroes the call counts of every fake and clears the log. */
void fake_world_reset_calls(struct fake_world *w);

#endif
