/*
 * ledger.h: the double-entry ledger's types and its pure rules. A journal transaction is
 * two or more entries, amounts are signed int64 minor units, none is zero, and the
 * amounts of each currency sum to zero. An account holds one currency; wallets (one per
 * user and currency) never go below zero, system accounts may.
 */
#ifndef HEX_LEDGER_H
#define HEX_LEDGER_H

#include "core/user.h"

#define LEDGER_ENTRIES_MAX 8
/* Bounds every amount so that sums of LEDGER_ENTRIES_MAX entries can never overflow. */
#define LEDGER_AMOUNT_MAX INT64_C(1000000000000000)
#define LEDGER_KEY_MAX    255 /* idempotency keys and references */

enum ledger_account_kind {
	LEDGER_WALLET = 0,
	LEDGER_STRIPE_CLEARING,
	LEDGER_MEMBERSHIP_REVENUE,
	LEDGER_REFUNDS,
	LEDGER_KIND_COUNT
};

/* Names an account without knowing its id: the repository finds or creates it. */
struct ledger_account_ref {
	enum ledger_account_kind kind;
	char owner_id[HEX_ID_LEN + 1]; /* the user of a wallet; "" for system accounts */
	char currency[4];              /* ISO 4217, lower case */
};

struct ledger_account {
	char id[HEX_ID_LEN + 1];
	struct ledger_account_ref ref;
	int64_t balance;
	bool allow_negative;
	int64_t updated_at_us; /* when its latest entry was posted; filled by balances() */
};

/* One entry to post: amount > 0 credits (adds to) the account, < 0 debits it. */
struct ledger_posting {
	struct ledger_account_ref account;
	int64_t amount;
};

/* A journal transaction to post; checked by ledger_txn_check(). */
struct ledger_txn_request {
	char id[HEX_ID_LEN + 1];                  /* chosen by the service */
	char idempotency_key[LEDGER_KEY_MAX + 1]; /* a second post with it moves nothing */
	char reference[LEDGER_KEY_MAX + 1];       /* "payment:<id>", "refund:<id>", ... */
	int n;
	struct ledger_posting postings[LEDGER_ENTRIES_MAX];
};

struct ledger_entry {
	int64_t id; /* increases with every entry posted: the keyset order */
	char transaction_id[HEX_ID_LEN + 1];
	char account_id[HEX_ID_LEN + 1];
	struct ledger_account_ref account;
	int64_t amount;
	char reference[LEDGER_KEY_MAX + 1];
	int64_t created_at_us;
};

/* A journal transaction as stored. */
struct ledger_txn {
	char id[HEX_ID_LEN + 1];
	char idempotency_key[LEDGER_KEY_MAX + 1];
	char reference[LEDGER_KEY_MAX + 1];
	int64_t created_at_us;
	int n;
	struct ledger_entry entries[LEDGER_ENTRIES_MAX];
};

/* A user's wallets, one per currency they ever held. */
#define LEDGER_WALLETS_MAX 16
struct ledger_balances {
	int n;
	struct ledger_account wallets[LEDGER_WALLETS_MAX];
};

/* One page of a user's entries, newest first; the next cursor is the last entry's id. */
struct ledger_entry_page {
	struct ledger_entry items[HEX_LIST_MAX];
	int count;
	bool has_more;
};

/*
 * One page of every account, system accounts first (by kind, then currency), then wallets
 * (by owner, then currency); the next cursor is the last account's id.
 */
struct ledger_account_page {
	struct ledger_account items[HEX_LIST_MAX];
	int count;
	bool has_more;
};

/* An account whose stored balance differs from the sum of its entries. */
struct ledger_mismatch {
	char account_id[HEX_ID_LEN + 1];
	int64_t balance;     /* as stored */
	int64_t entries_sum; /* as recomputed */
};

#define LEDGER_MISMATCH_MAX 32
#define LEDGER_CURRENCY_MAX 16
struct ledger_verify_report {
	bool ok; /* no mismatch and every currency's entries sum to zero */
	long accounts_checked;
	int nmismatches; /* how many were found; at most LEDGER_MISMATCH_MAX are listed */
	struct ledger_mismatch mismatches[LEDGER_MISMATCH_MAX];
	int nunbalanced; /* currencies whose entries do not sum to zero */
	struct {
		char currency[4];
		int64_t sum;
	} unbalanced[LEDGER_CURRENCY_MAX];
};

const char *ledger_kind_name(enum ledger_account_kind k);
bool ledger_kind_parse(const char *s, enum ledger_account_kind *out);
/* System accounts may go negative (they mirror money owed to or by others); wallets not. */
bool ledger_kind_allows_negative(enum ledger_account_kind k);

/* A wallet names its owner (a UUID) and a system account none; a valid currency. */
bool ledger_account_ref_valid(const struct ledger_account_ref *r);

/*
 * HEX_OK if t may be posted: 2..LEDGER_ENTRIES_MAX postings, valid accounts, every amount
 * non-zero and within LEDGER_AMOUNT_MAX, amounts summing to zero per currency, a
 * transaction id, and a key and reference of 1..LEDGER_KEY_MAX printable characters.
 * Else HEX_INVALID naming the field ("entries", "amount", "currency", "account",
 * "idempotency_key", "reference", "id").
 */
enum hex_status ledger_txn_check(const struct ledger_txn_request *t,
                                 struct hex_err *err) HEX_MUST_CHECK;

/* Appends a posting to t (no check; ledger_txn_check() says whether it all fits). */
void ledger_txn_add(struct ledger_txn_request *t, enum ledger_account_kind kind,
                    const char *owner_id, const char *currency, int64_t amount);

#endif
