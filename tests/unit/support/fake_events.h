/*
 * fake_events: in-memory fakes of the payment-event pipeline's ports (outbox_repo,
 * event_stream, event_inbox, dead_letter_repo, payment_event_decoder) and of the two
 * repositories the payment consumers use: a payment_repo that answers get and
 * get_by_intent, and a ledger_repo that keeps the promises of PostgreSQL's (idempotency
 * keys, no negative wallet).
 *
 * Same conventions as fakes.h: every fake has a struct fake_base (call counts, a fault
 * armed with fake_fail_next() that fires before the fake acts, an optional shared call
 * log), and a caller that breaks a port's contract (a claim left open, a transaction begun
 * twice, fail() inside the attempt's transaction) fails the running test at once.
 *
 * Ownership: what the ports hand out as malloc'd (payloads of claim, read, claim_idle and
 * dead_letter get) is malloc'd here too and becomes the caller's, so that the sanitizer
 * build sees every payload the core forgets to free. Everything else lives in the structs.
 */
#ifndef HEX_TESTS_UNIT_FAKE_EVENTS_H
#define HEX_TESTS_UNIT_FAKE_EVENTS_H

#include "core/ports/dead_letter_repo.h"
#include "core/ports/event_inbox.h"
#include "core/ports/event_stream.h"
#include "core/ports/ledger_repo.h"
#include "core/ports/outbox_repo.h"
#include "core/ports/payment_event_decoder.h"
#include "core/ports/payment_repo.h"
#include "fakes.h"

#define FAKE_EVENT_PAYLOAD_MAX 512
#define FAKE_EVENT_ROWS        64

/* Appends "<who>.<what> " to l (may be NULL), as the fakes do for their calls. */
void fake_log_note(struct fake_log *l, const char *who, const char *what);

/* A message with its payload kept inline (msg.payload stays NULL). */
struct fake_event_entry {
	struct event_msg msg;
	char payload[FAKE_EVENT_PAYLOAD_MAX];
};

/* ---- outbox_repo: ops claim, published, release, lag ---- */

struct fake_outbox_item {
	struct fake_event_entry e; /* e.msg.outbox_id is the row id, from 1 */
	int64_t available_at_us;
	bool published;
	int64_t published_at_us;
};

struct fake_outbox {
	struct fake_base base;
	struct fake_outbox_item rows[FAKE_EVENT_ROWS];
	int count;
	bool claim_open; /* a claim's transaction waits for published() or release() */
	int last_limit;
	int64_t last_claim_now_us;
};
struct outbox_repo fake_outbox_port(struct fake_outbox *o, struct fake_log *log);
/* Adds an unpublished row of topic EVENT_TOPIC_PAYMENTS, due at available_at_us; its id. */
int64_t fake_outbox_add(struct fake_outbox *o, const char *event_id, const char *consumer,
                        int attempt, const char *payload, int64_t available_at_us);
/* Rows not published yet. */
int fake_outbox_unpublished(const struct fake_outbox *o);

/* ---- event_stream: ops publish, join, read, claim_idle, ack, stats ---- */

struct fake_stream {
	struct fake_base base;
	/* What publish() took, in order. */
	struct fake_event_entry published[FAKE_EVENT_ROWS];
	int npublished;
	/* The publish call (1-based, counted since the port was made) that answers
	 * publish_fail_st instead of appending; 0: none. For a failure part-way into a batch. */
	int publish_fail_on;
	enum hex_status publish_fail_st;
	/* What read() (fresh) and claim_idle() (idle) deliver next, each entry once. */
	struct fake_event_entry fresh[FAKE_EVENT_ROWS];
	int nfresh, fresh_next;
	struct fake_event_entry idle[FAKE_EVENT_ROWS];
	int nidle, idle_next;
	/* The stream ids acknowledged, in order. */
	char acked[FAKE_EVENT_ROWS][EVENT_STREAM_ID_MAX + 1];
	int nacked;
	/* The arguments of the last read, claim_idle and ack. */
	char last_topic[EVENT_TOPIC_MAX + 1];
	char last_consumer[EVENT_CONSUMER_MAX + 1];
	char last_member[64];
	int last_read_max;
	int last_block_ms;
	int last_claim_max;
	int64_t last_min_idle_ms;
	char last_ack_topic[EVENT_TOPIC_MAX + 1];
	char last_ack_consumer[EVENT_CONSUMER_MAX + 1];
};
struct event_stream fake_stream_port(struct fake_stream *s, struct fake_log *log);
/* Queues an entry for the next read() (idle false) or claim_idle() (idle true); the entry,
 * to adjust fields (consumer, outbox_id) before it is delivered. */
struct event_msg *fake_stream_push(struct fake_stream *s, bool idle, const char *stream_id,
                                   const char *event_id, int attempt, const char *payload);
bool fake_stream_acked(const struct fake_stream *s, const char *stream_id);

/* ---- event_inbox: ops begin, commit, rollback, fail ---- */

struct fake_inbox_pair {
	char consumer[EVENT_CONSUMER_MAX + 1];
	char event_id[EVENT_ID_MAX + 1];
};

struct fake_inbox_failure {
	char consumer[EVENT_CONSUMER_MAX + 1];
	char event_id[EVENT_ID_MAX + 1];
	int attempt;
	char error[EVENT_ERROR_MAX + 1];
	int64_t now_us;
	int64_t retry_at_us; /* 0: dead-lettered */
};

struct fake_inbox {
	struct fake_base base;
	struct fake_inbox_pair applied[FAKE_EVENT_ROWS]; /* committed (consumer, event_id) */
	int napplied;
	struct fake_inbox_failure failures[FAKE_EVENT_ROWS]; /* fail() calls recorded */
	int nfailures;
	bool in_txn;
	struct fake_inbox_pair txn;          /* the pair the open transaction records */
	bool in_batch;                       /* batch ports only: a batch transaction is open */
	int batch_napplied, batch_nfailures; /* what a batch rollback goes back to */
};
struct event_inbox fake_inbox_port(struct fake_inbox *i, struct fake_log *log);
/* The same with the batch ops (batch_begin, batch_commit, batch_rollback): a batch
 * rollback forgets what was applied and failed inside it. */
struct event_inbox fake_inbox_batch_port(struct fake_inbox *i, struct fake_log *log);
/* Records (consumer, event_id) as applied without counting a call (set-up). */
void fake_inbox_mark_applied(struct fake_inbox *i, const char *consumer, const char *event_id);
bool fake_inbox_applied(const struct fake_inbox *i, const char *consumer, const char *event_id);
/* The last failure recorded, or NULL. */
const struct fake_inbox_failure *fake_inbox_last_failure(const struct fake_inbox *i);

/* ---- dead_letter_repo: ops list, get, replay, discard, count_open ---- */

#define FAKE_DEAD_LETTERS 32

struct fake_dead_letter_repo {
	struct fake_base base;
	struct dead_letter rows[FAKE_DEAD_LETTERS]; /* payload NULL: the text is in payloads */
	char payloads[FAKE_DEAD_LETTERS][FAKE_EVENT_PAYLOAD_MAX];
	int count;
	/* The arguments of the last call that took them. */
	bool last_all;
	int last_limit;
	int64_t last_before_id;
	char last_actor[DEAD_LETTER_ACTOR_MAX + 1];
	char last_reason[DEAD_LETTER_REASON_MAX + 1];
	int64_t last_now_us;
};
struct dead_letter_repo fake_dead_letter_repo_port(struct fake_dead_letter_repo *r,
                                                   struct fake_log *log);
/*
 * Adds an open dead letter (ids from 1, in the order added) with one attempt in its
 * history; its id. replay() answers HEX_INVALID for a payload that does not start with
 * '{' (the fake's stand-in for "not JSON").
 */
int64_t fake_dead_letter_repo_add(struct fake_dead_letter_repo *r, const char *consumer,
                                  const char *event_id, int attempts, const char *error,
                                  const char *payload, int64_t created_at_us);
/* The stored row of id, or NULL. */
const struct dead_letter *fake_dead_letter_repo_find(const struct fake_dead_letter_repo *r,
                                                     int64_t id);

/* ---- payment_event_decoder: op decode ---- */

#define FAKE_DECODER_EVENTS 16

struct fake_decoder_entry {
	char payload[FAKE_EVENT_PAYLOAD_MAX];
	struct payment_event ev;
};

struct fake_decoder {
	struct fake_base base;
	struct fake_decoder_entry known[FAKE_DECODER_EVENTS];
	int count;
};
struct payment_event_decoder fake_decoder_port(struct fake_decoder *d, struct fake_log *log);
/* decode(payload) will answer ev (its payload fields then borrow the caller's payload);
 * any payload not added this way is HEX_INVALID "unexpected token at offset 0". */
void fake_decoder_add(struct fake_decoder *d, const char *payload, const struct payment_event *ev);

/*
 * ---- payment_repo, read side only: ops get, get_by_intent ----
 * The other operations are NULL: the consumers only read payments, and a call to any
 * other crashes the test.
 */
#define FAKE_LOOKUP_PAYMENTS 16

struct fake_payment_lookup {
	struct fake_base base;
	struct payment rows[FAKE_LOOKUP_PAYMENTS];
	int count;
};
struct payment_repo fake_payment_lookup_port(struct fake_payment_lookup *l, struct fake_log *log);
void fake_payment_lookup_add(struct fake_payment_lookup *l, const struct payment *p);

/*
 * ---- ledger_repo: ops post, get_by_key, balances (entries and verify are NULL) ----
 * post() keeps the port's promises: a second post with a key moves nothing and answers
 * the first transaction (*duplicate); HEX_CONFLICT when a wallet would go negative.
 */
#define FAKE_LEDGER_ACCOUNTS 16
#define FAKE_LEDGER_TXNS     16

struct fake_ledger_repo {
	struct fake_base base;
	struct ledger_account accounts[FAKE_LEDGER_ACCOUNTS];
	int naccounts;
	struct ledger_txn txns[FAKE_LEDGER_TXNS];
	int ntxns;
	int64_t next_entry;
};
struct ledger_repo fake_ledger_repo_port(struct fake_ledger_repo *r, struct fake_log *log);
/* The transaction posted under key, or NULL. */
const struct ledger_txn *fake_ledger_repo_find(const struct fake_ledger_repo *r, const char *key);
/* The balance of the account ref names (owner_id "" for a system account); 0 if none. */
int64_t fake_ledger_repo_balance(const struct fake_ledger_repo *r, enum ledger_account_kind kind,
                                 const char *owner_id, const char *currency);

#endif
